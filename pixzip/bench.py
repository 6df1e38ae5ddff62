"""Benchmark pixzip against the classical lossless codecs on the same images in the same run.

Every codec's round trip is verified pixel for pixel; a codec whose library is missing is reported as
missing, never silently dropped. Totals are aggregate bits over aggregate subpixels, and seconds per
megapixel over all images together. pixzip's one-time start-up in a process (loading the compiled kernels
from numba's cache, or compiling them on the very first run) is measured apart and reported, not spread
over the images.
"""
import csv
import io
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from . import codec, modes, registry, widepng
from .image import ImageError, load_image

Codec = tuple[Callable[[np.ndarray], bytes], Callable[[bytes], np.ndarray]]


def _classical() -> dict[str, Codec | str]:
    """name -> (encode, decode), or the reason it is unavailable."""
    out: dict[str, Codec | str] = {}
    try:
        import oxipng

        def png_encode(px):
            buf = io.BytesIO()
            Image.fromarray(px.squeeze(2) if px.shape[2] == 1 else px).save(buf, format="PNG")
            return oxipng.optimize_from_memory(buf.getvalue(), level=6)

        # oxipng reduces what it can (grey to 1 bit, colours to a palette, opaque alpha away): read back as RGBA
        out["png (oxipng -o6)"] = (png_encode, lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGBA")))
    except ImportError:
        out["png (oxipng -o6)"] = "missing: pip install pyoxipng (or .[bench])"
    try:
        import imagecodecs as ic

        def webp_encode(px):  # WebP holds colour (and alpha) only: grey goes in as R = G = B
            if px.shape[2] < 3:
                px = np.concatenate([np.repeat(px[:, :, :1], 3, axis=2), px[:, :, 1:]], axis=2)
            return ic.webp_encode(px, lossless=True, method=6, level=100)

        out["webp lossless (m6)"] = (webp_encode, ic.webp_decode)
        out["jpeg-xl lossless e7"] = (lambda px: ic.jpegxl_encode(px, lossless=True, effort=7), ic.jpegxl_decode)
        out["jpeg-xl lossless e9"] = (lambda px: ic.jpegxl_encode(px, lossless=True, effort=9), ic.jpegxl_decode)
        out["jpeg-ls"] = (lambda px: ic.jpegls_encode(px), ic.jpegls_decode)
        out["jpeg 2000 lossless"] = (lambda px: ic.jpeg2k_encode(px, level=0, reversible=True), ic.jpeg2k_decode)
    except ImportError:
        for name in ("webp lossless (m6)", "jpeg-xl lossless e7", "jpeg-xl lossless e9", "jpeg-ls",
                     "jpeg 2000 lossless"):
            out[name] = "missing: pip install imagecodecs (or .[bench])"
    return out


@dataclass
class Row:
    image: str
    codec: str
    pixels: int
    subpixels: int
    bytes: int
    encode_s: float
    decode_s: float


BENCH_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channels -> the mode pixels are benchmarked in


def _pixzip_codec(model: registry.Model, adapt: bool) -> Codec:
    def encode(px):
        image = Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px, BENCH_MODES[px.shape[2]])
        return codec.compress_planes(modes.split(image), model, adapt=adapt)[0]

    def decode(data):
        planes = codec.decompress_planes(data, models=model)
        return np.concatenate(planes.planes, axis=2)  # RGB then alpha, L then alpha: the image's channels

    return encode, decode


def load_bench_pixels(path: Path) -> np.ndarray:
    """An image file -> (H, W, C) 8-bit pixels every codec is given: L, LA, RGB or RGBA (palette images
    as RGB or RGBA, 16-bit ones at 8 bits: the benchmark compares codecs, not modes; docs/modes.md does)."""
    image, _ = load_image(path)
    if isinstance(image, widepng.WideImage):
        image = image.colours_8bit()
    if image.mode not in BENCH_MODES.values():
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    px = np.asarray(image, dtype=np.uint8)
    return np.ascontiguousarray(px[:, :, None] if px.ndim == 2 else px)


def _same(back: np.ndarray, px: np.ndarray) -> bool:
    """A codec's decoded pixels equal px (H, W, C); one that drops or adds an alpha channel that is all
    opaque, or gives grey as R = G = B, is exact too."""
    back = back.reshape(px.shape[:2] + (-1,))
    if back.shape[2] == 4 and px.shape[2] in (1, 3) and (back[:, :, 3] == 255).all():  # opaque alpha added
        back = back[:, :, :3]
    if back.shape[2] == px.shape[2] - 1 and (px[:, :, -1] == 255).all():
        px = px[:, :, :-1]
    if px.shape[2] < 3 <= back.shape[2]:  # grey coded as R = G = B (WebP): exact if the three are equal
        if not (np.array_equal(back[:, :, 0], back[:, :, 1]) and np.array_equal(back[:, :, 0], back[:, :, 2])):
            return False
        back = back[:, :, [0, 3]] if back.shape[2] == 4 and px.shape[2] == 2 else back[:, :, :1]
        if back.shape[2] == 1 and px.shape[2] == 2 and (px[:, :, 1] == 255).all():
            px = px[:, :, :1]
    return back.shape == px.shape and np.array_equal(back, px)


def run(images: list[Path], models: list[str | None], codecs: list[str] | None = None,
        log: Callable[[str], None] = print,
        adapt: tuple[bool, ...] = (True,)) -> tuple[list[Row], dict[str, str], float]:
    """Measure every codec on every image; returns the rows, the codecs that are unavailable and pixzip's
    start-up seconds. adapt: pixzip with the adaptive stage (True), without (False), or both."""
    table: dict[str, Codec | str] = {}
    start = time.perf_counter()
    for name in models:
        m = registry.resolve(name)
        label = f"pixzip {m.name}"
        # two models of one name (e.g. a release's default and the one before it)
        if any(k.startswith(label) for k in table):
            label = f"pixzip {m.name}-{m.sha256.hex()[:8]}"
        for a in adapt:
            table[label + ("" if a else " --no-adapt")] = _pixzip_codec(m, a)
            encode, decode = table[label + ("" if a else " --no-adapt")]
            decode(encode(np.zeros((8, 8, m.config.channels), np.uint8)))  # load the kernels
    startup = time.perf_counter() - start
    for name, c in _classical().items():
        if codecs is None or any(name.startswith(k) for k in codecs):
            table[name] = c
    missing = {k: v for k, v in table.items() if isinstance(v, str)}
    available = {k: v for k, v in table.items() if not isinstance(v, str)}
    rows = []
    bar = tqdm(total=len(images) * len(available), desc="bench", unit="run", leave=False, disable=None,
               file=sys.stderr)
    for path in images:
        try:
            px = load_bench_pixels(path)
        except ImageError as e:
            raise ImageError(f"{path}: {e}") from None
        for name, (encode, decode) in available.items():
            bar.set_postfix_str(f"{path.name}: {name}")
            t0 = time.perf_counter()
            data = encode(px)
            t1 = time.perf_counter()
            back = np.asarray(decode(data))
            t2 = time.perf_counter()
            if not _same(back, px):
                raise AssertionError(f"{name} did not round-trip {path}")
            rows.append(Row(path.name, name, px.shape[0] * px.shape[1], px.size, len(data), t1 - t0, t2 - t1))
            bar.update()
            log(f"{path.name:<24} {name:<22} {8 * len(data) / px.size:6.3f} bpsp  "
                f"enc {t1 - t0:7.2f} s  dec {t2 - t1:7.2f} s")
    bar.close()
    return rows, missing, startup


def totals(rows: list[Row]) -> list[dict]:
    out = {}
    for r in rows:
        t = out.setdefault(r.codec, {"codec": r.codec, "pixels": 0, "subpixels": 0, "bytes": 0, "enc": 0.0, "dec": 0.0})
        t["pixels"] += r.pixels
        t["subpixels"] += r.subpixels
        t["bytes"] += r.bytes
        t["enc"] += r.encode_s
        t["dec"] += r.decode_s
    return [{"codec": t["codec"], "bpsp": 8 * t["bytes"] / t["subpixels"],
             "encode_s_per_mp": t["enc"] / (t["pixels"] / 1e6), "decode_s_per_mp": t["dec"] / (t["pixels"] / 1e6)}
            for t in out.values()]


def markdown(rows: list[Row], missing: dict[str, str], startup: float) -> str:
    lines = ["| codec | bpsp | encode s/MP | decode s/MP |", "|---|---:|---:|---:|"]
    for t in sorted(totals(rows), key=lambda t: t["bpsp"]):
        lines.append(f"| {t['codec']} | {t['bpsp']:.3f} | {t['encode_s_per_mp']:.2f} | {t['decode_s_per_mp']:.2f} |")
    for name, why in missing.items():
        lines.append(f"| {name} | {why} | | |")
    images = sorted({r.image for r in rows})
    codecs = list(dict.fromkeys(r.codec for r in rows))
    lines += ["", "| image | " + " | ".join(codecs) + " |", "|---|" + "---:|" * len(codecs)]
    by = {(r.image, r.codec): r for r in rows}
    for im in images:
        lines.append(f"| {im} | "
                     + " | ".join(f"{8 * by[im, c].bytes / by[im, c].subpixels:.3f}" for c in codecs) + " |")
    lines += ["", f"pixzip start-up in this process (kernels loaded, not included above): {startup:.2f} s"]
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> None:
    """bpsp against decode seconds per megapixel, one point per codec (log time axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for t in totals(rows):
        ax.scatter(t["decode_s_per_mp"], t["bpsp"], s=40, color="C3" if t["codec"].startswith("pixzip") else "C0")
        ax.annotate(t["codec"], (t["decode_s_per_mp"], t["bpsp"]), textcoords="offset points", xytext=(6, 3),
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("decode seconds per megapixel (log scale)")
    ax.set_ylabel("bits per subpixel (lower is better)")
    ax.set_title(f"Lossless codecs on {len({r.image for r in rows})} images")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(rows: list[Row], missing: dict[str, str], startup: float, folder: Path) -> list[str]:
    """report.md, results.csv and plot.png in folder; returns what could not be written and why."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text(markdown(rows, missing, startup))
    with open(folder / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
    try:
        plot(rows, folder / "plot.png")
    except ImportError:
        return ["plot.png: missing matplotlib (pip install matplotlib, or .[bench])"]
    return []
