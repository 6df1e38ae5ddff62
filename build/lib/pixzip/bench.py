"""Benchmark pixzip against the classical lossless codecs on the same images in the same run.

Every codec's round trip is verified pixel for pixel; a codec whose library is missing is reported as
missing, never silently dropped. Totals are aggregate bits over aggregate subpixels, and seconds per
megapixel over all images together.
"""
import csv
import io
import time
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from . import codec, registry
from .image import load_pixels

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

        out["png (oxipng -o6)"] = (png_encode, lambda b: np.asarray(Image.open(io.BytesIO(b))))
    except ImportError:
        out["png (oxipng -o6)"] = "missing: pip install pyoxipng (or .[bench])"
    try:
        import imagecodecs as ic

        out["webp lossless (m6)"] = (lambda px: ic.webp_encode(px, lossless=True, method=6, level=100),
                                     ic.webp_decode)
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


def _pixzip_codec(model: registry.Model) -> Codec:
    def encode(px):
        return codec.compress_pixels(px, "RGB" if px.shape[2] == 3 else "L", model)[0]

    def decode(data):
        return codec.decompress_pixels(data, models=model)[0]

    return encode, decode


def run(images: list[Path], models: list[str | None], codecs: list[str] | None = None,
        log: Callable[[str], None] = print) -> tuple[list[Row], dict[str, str]]:
    """Measure every codec on every image; returns the rows and the codecs that are unavailable."""
    table: dict[str, Codec | str] = {}
    for name in models:
        m = registry.resolve(name)
        table[f"pixzip {m.name}"] = _pixzip_codec(m)
    for name, c in _classical().items():
        if codecs is None or any(name.startswith(k) for k in codecs):
            table[name] = c
    missing = {k: v for k, v in table.items() if isinstance(v, str)}
    rows = []
    for path in images:
        px, mode = load_pixels(path)
        for name, c in table.items():
            if isinstance(c, str):
                continue
            encode, decode = c
            t0 = time.perf_counter()
            data = encode(px)
            t1 = time.perf_counter()
            back = np.asarray(decode(data))
            t2 = time.perf_counter()
            if not np.array_equal(back.reshape(px.shape), px):
                raise AssertionError(f"{name} did not round-trip {path}")
            rows.append(Row(path.name, name, px.shape[0] * px.shape[1], px.size, len(data), t1 - t0, t2 - t1))
            log(f"{path.name:<24} {name:<22} {8 * len(data) / px.size:6.3f} bpsp  "
                f"enc {t1 - t0:7.2f} s  dec {t2 - t1:7.2f} s")
    return rows, missing


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


def markdown(rows: list[Row], missing: dict[str, str]) -> str:
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
        lines.append(f"| {im} | " + " | ".join(f"{8 * by[im, c].bytes / by[im, c].subpixels:.3f}" for c in codecs) + " |")
    return "\n".join(lines) + "\n"


def write_report(rows: list[Row], missing: dict[str, str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text(markdown(rows, missing))
    with open(folder / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
