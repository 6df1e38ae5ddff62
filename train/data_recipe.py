"""Build a training set (issue 20): photos and wallpaper art from Debian packages, icon sheets, matplotlib charts and
xterm screenshots, every image an 8-bit RGB PNG without metadata, plus MANIFEST.tsv (file, kind, package, version,
licence, source, preparation).

    python train/data_recipe.py [OUT]      # OUT defaults to runs/data/train-v1

Run by hand, never at run time. Needs `apt-get download` (no root) and `dpkg-deb`; the .deb files stay in
runs/data/debs/ so a rerun downloads nothing. The sources and their kinds are in train/data_sources.toml.

Kept out of training, by `excluded()` and a final check over every output: the package gnome-icon-theme (our
graphics icons came from it), codec test data (libjxl-testdata, anything named *testdata* / *test-images*),
scikit-image's bundled images, and the val / graphics test images in ../shared/data/{val,graphics}: by name (a source
whose name is a val image's name) and by content (file bytes and decoded pixels of every source and every output are
hashed and compared with those of the test images).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCES = Path(__file__).with_name("data_sources.toml")
SHARED = Path(os.environ.get("PIXZIP_SHARED_DATA", ROOT.parent / "shared" / "data"))
PROTECTED_DIRS = [SHARED / "val", SHARED / "graphics"]
MAX_SIDE = 1024  # longer side of an output, cropped (not resized) to it
CROP = 512
SEED = 20

EXCLUDED_PACKAGES = {
    "gnome-icon-theme",  # the graphics test icons came from it: the whole package stays out
    "libjxl-testdata",
    "python3-skimage",
    "python3-skimage-lib",
    "scikit-image",
}
EXCLUDED_NAME_PARTS = ("testdata", "test-data", "test_data", "test-images", "test_images", "testimages",
                       "skimage", "scikit-image", "scikit_image")


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def pixel_hash(im: Image.Image) -> str:
    """Hash of the decoded pixels (mode and size included), so re-encodings of the same image compare equal."""
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA")
    h = hashlib.sha256(f"{im.mode} {im.size}".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def pixel_hashes(im: Image.Image) -> set[str]:
    """Hashes of an image as loaded and as RGB and RGBA, so an RGBA source matches its RGB composite's origin."""
    out = {pixel_hash(im)}
    for mode in ("RGB", "RGBA"):
        out.add(pixel_hash(im.convert(mode)))
    return out


@dataclass
class Protected:
    """What must never be trained on: val / graphics names and hashes (file bytes and pixels)."""

    names: set[str]
    hashes: set[str]

    @classmethod
    def load(cls, dirs=PROTECTED_DIRS, extra_images: list[Path] = ()) -> "Protected":
        names, hashes = set(), set()
        files = [p for d in dirs if Path(d).is_dir() for p in sorted(Path(d).iterdir()) if p.is_file()]
        for p in files + list(extra_images):
            hashes.add(hashlib.sha256(p.read_bytes()).hexdigest())
            try:
                with Image.open(p) as im:
                    hashes |= pixel_hashes(im)
            except OSError:
                continue
        for d in dirs:
            if Path(d).name == "val" and Path(d).is_dir():  # val photos are named after their source wallpaper
                names |= {norm(p.stem) for p in Path(d).iterdir()}
        return cls(names, hashes)


def skimage_images() -> list[Path]:
    """scikit-image's bundled images, if scikit-image is installed (without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return sorted(p for p in data.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".gif"))


def excluded(package: str, path: str | Path = "", protected: Protected | None = None,
             data: bytes | None = None, image: Image.Image | None = None) -> str | None:
    """Why a source may not be used for training (None: it may). path is the file inside the package."""
    if package in EXCLUDED_PACKAGES or any(part in package.lower() for part in EXCLUDED_NAME_PARTS):
        return f"package {package} is excluded"
    p = str(path).lower()
    if any(part in p for part in EXCLUDED_NAME_PARTS):
        return f"{path}: test data"
    if protected is not None:
        comps = [norm(Path(c).stem) for c in Path(str(path)).parts]
        hit = protected.names.intersection(comps)
        if hit:
            return f"{path}: named like the val image {sorted(hit)[0]}"
        if data is not None and hashlib.sha256(data).hexdigest() in protected.hashes:
            return f"{path}: same file as a val/graphics image"
        if image is not None and pixel_hashes(image) & protected.hashes:
            return f"{path}: same pixels as a val/graphics image"
    return None


# ---------------------------------------------------------------- packages


def fetch(package: str, debs: Path) -> Path:
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True, stdout=subprocess.DEVNULL)
        found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1]


def unpack(package: str, debs: Path, work: Path) -> tuple[Path, str]:
    deb = fetch(package, debs)
    dest = work / package
    if not dest.exists():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    return dest, version


def licence(root: Path, package: str, inside: str) -> str:
    """The licence the package's copyright file states for a file: the DEP-5 stanza whose Files: pattern matches the
    end of the installed path, else the `Files: *` stanza, else every licence named in the file."""
    cp = root / "usr/share/doc" / package / "copyright"
    if not cp.exists():
        return "unknown (no copyright file)"
    text = cp.read_text(errors="replace")
    stanzas = [s for s in re.split(r"\n\s*\n", text) if s.startswith("Files:") or "\nFiles:" in s]
    default, best = None, None
    for s in stanzas:
        fm = re.search(r"^Files:(.*(?:\n[ \t].*)*)", s, re.M)
        lm = re.search(r"^License:\s*(.*)", s, re.M)
        if not fm or not lm:
            continue
        pats = fm.group(1).split()
        lic = lm.group(1).strip()
        if "*" in pats and default is None:
            default = lic
        for pat in pats:
            if pat == "*":
                continue
            n = pat.count("/") + 1
            tail = "/".join(inside.strip("/").split("/")[-n:])
            if fnmatch.fnmatch(tail, pat) or fnmatch.fnmatch(Path(inside).name, Path(pat).name):
                best = best or lic
    if best or default:
        return best or default
    lics = sorted(set(re.findall(r"^License:\s*(.+)$", text, re.M)))
    if lics:
        return "; ".join(lics)
    m = re.search(r"(GNU (Lesser |Library )?General Public License[^.\n]*|Creative Commons[^.\n]*|public domain)",
                  text, re.I)
    return m.group(1).strip() if m else "see copyright file"


# ---------------------------------------------------------------- preparation


def to_rgb(im: Image.Image, background=(255, 255, 255)) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in ("P", "PA", "LA", "L", "I;16", "I", "CMYK"):
        im = im.convert("RGBA") if ("A" in im.mode or "transparency" in im.info) else im.convert("RGB")
        if im.mode == "RGB":
            return im
    if im.mode == "RGBA":
        bg = Image.new("RGBA", im.size, background + (255,))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


def cap(im: Image.Image) -> Image.Image:
    """Centre crop to at most MAX_SIDE on each side."""
    w, h = im.size
    cw, ch = min(w, MAX_SIDE), min(h, MAX_SIDE)
    x, y = (w - cw) // 2, (h - ch) // 2
    return im.crop((x, y, x + cw, y + ch)) if (cw, ch) != (w, h) else im


class Writer:
    def __init__(self, out: Path, protected: Protected):
        self.out, self.protected = out, protected
        self.rows: list[dict] = []
        self.names: set[str] = set()

    def save(self, im: Image.Image, name: str, kind: str, package: str, version: str, lic: str, source: str,
             prep: str) -> None:
        im = to_rgb(im)
        assert im.mode == "RGB" and min(im.size) >= 48, (name, im.mode, im.size)
        if pixel_hashes(im) & self.protected.hashes:
            raise SystemExit(f"{name}: output has the pixels of a val/graphics image")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        assert name not in self.names, name
        self.names.add(name)
        clean = Image.frombytes("RGB", im.size, im.tobytes())  # no info / metadata carried over
        clean.save(self.out / name, format="PNG", optimize=False, compress_level=6)
        self.rows.append(dict(file=name, kind=kind, package=package, version=version, licence=lic, source=source,
                              preparation=prep, width=im.size[0], height=im.size[1]))


def largest(files: list[Path]) -> Path:
    def area(p):
        with Image.open(p) as im:
            return im.size[0] * im.size[1]

    return max(sorted(files), key=area)


def resolve(root: Path, package: str, entry: str) -> Path:
    """A file named in data_sources.toml: a path under the package's background folder, or (plasma) a wallpaper
    folder, of which the largest image of contents/images is used."""
    if package == "plasma-workspace-wallpapers":
        folder = root / "usr/share/wallpapers" / entry / "contents/images"
        return largest([p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png")])
    hits = sorted(p for p in root.rglob("*") if p.is_file() and str(p).endswith("/" + entry))
    if len(hits) != 1:
        raise SystemExit(f"{package}: {entry} found {len(hits)} times")
    return hits[0]


def photos_and_art(cfg: dict, w: Writer, debs: Path, work: Path, protected: Protected) -> None:
    for kind in ("photo", "art"):
        for package, spec in sorted(cfg.get(kind, {}).items()):
            root, version = unpack(package, debs, work)
            for entry in spec["files"]:
                src = resolve(root, package, entry)
                inside = "/" + str(src.relative_to(root))
                data = src.read_bytes()
                im = Image.open(io.BytesIO(data))
                im.load()
                why = excluded(package, inside, protected, data, im)
                if why:
                    print(f"  skip {why}")
                    continue
                lic = licence(root, package, inside)
                lossy = src.suffix.lower() in (".jpg", ".jpeg", ".webp")
                stem = f"{kind}-{norm(package)[:12]}-{norm(entry if package.startswith('plasma') else src.stem)}"
                rgb = to_rgb(im)
                longer = max(rgb.size)
                if kind == "photo" and lossy:
                    for k in (2, 3, 4):
                        w.save(cap(rgb.reduce(k)), f"{stem}-r{k}.png", kind, package, version, lic, inside,
                               f"{src.suffix[1:].upper()} box-downscaled by {k} (Image.reduce), centre crop to "
                               f"<= {MAX_SIDE}")
                elif kind == "photo":
                    wd, ht = rgb.size
                    spots = [(wd // 4, ht // 4), (3 * wd // 4, ht // 4), (wd // 4, 3 * ht // 4),
                             (3 * wd // 4, 3 * ht // 4)]
                    for i, (cx, cy) in enumerate(spots):
                        x = min(max(cx - CROP // 2, 0), wd - CROP)
                        y = min(max(cy - CROP // 2, 0), ht - CROP)
                        w.save(rgb.crop((x, y, x + CROP, y + CROP)), f"{stem}-c{i}.png", kind, package, version,
                               lic, inside, f"lossless source, full-resolution {CROP}x{CROP} crop at ({x},{y})")
                    w.save(cap(rgb.reduce(2)), f"{stem}-r2.png", kind, package, version, lic, inside,
                           f"lossless source box-downscaled by 2, centre crop to <= {MAX_SIDE}")
                else:  # art: one image, downscaled to about 1280 px on the longer side
                    k = min(4, max(1, round(longer / 1280)))
                    w.save(cap(rgb.reduce(k) if k > 1 else rgb), f"{stem}-r{k}.png", kind, package, version, lic,
                           inside, f"{'lossy' if lossy else 'lossless'} source"
                                   f"{' (alpha over white)' if 'A' in im.mode else ''}, box-downscaled by {k}, "
                                   f"centre crop to <= {MAX_SIDE}")
            print(f"  {kind} {package} {version}: {sum(r['package'] == package and r['kind'] == kind for r in w.rows)}"
                  " images")


# ---------------------------------------------------------------- icons

ICON_BACKGROUNDS = [(255, 255, 255), (242, 242, 242), (46, 52, 54), (53, 132, 228), (250, 240, 220), (30, 30, 30)]
SHEETS_PER_SIZE = 4


def icons(cfg: dict, w: Writer, debs: Path, work: Path, protected: Protected) -> None:
    sheet_no = 0
    for package in cfg["icons"]["packages"]:
        root, version = unpack(package, debs, work)
        by_size: dict[int, list[Path]] = {}
        for p in sorted(root.rglob("*.png")):
            m = re.search(r"/(\d+)x(\d+)/", str(p))
            if not m or m.group(1) != m.group(2) or "symbolic" in p.name:
                continue
            s = int(m.group(1))
            if s in cfg["icons"]["sizes"]:
                by_size.setdefault(s, []).append(p)
        for s, files in sorted(by_size.items()):
            pad = max(4, s // 8)
            n = max(1, CROP // (s + pad))
            side = n * (s + pad) + pad
            per = n * n
            # icons spread evenly over the sorted list, so each sheet mixes categories
            want = min(len(files), per * SHEETS_PER_SIZE)
            idx = np.linspace(0, len(files) - 1, want).round().astype(int)
            chosen = [files[i] for i in sorted(set(idx.tolist()))]
            used = []
            for p in chosen:
                inside = "/" + str(p.relative_to(root))
                data = p.read_bytes()
                im = Image.open(io.BytesIO(data))
                im.load()
                if im.size != (s, s) or excluded(package, inside, protected, data, im):
                    continue
                used.append((inside, im.convert("RGBA")))
            lic = licence(root, package, used[0][0]) if used else ""
            for k in range(0, len(used) // per * per or (len(used) if len(used) >= 4 else 0), per):
                group = used[k : k + per]
                bg = ICON_BACKGROUNDS[sheet_no % len(ICON_BACKGROUNDS)]
                rows = (len(group) + n - 1) // n
                sheet = Image.new("RGBA", (side, max(48, rows * (s + pad) + pad)), bg + (255,))
                for j, (_, icon) in enumerate(group):
                    sheet.alpha_composite(icon, (pad + (j % n) * (s + pad), pad + (j // n) * (s + pad)))
                src = f"{len(group)} icons {s}x{s}: {group[0][0]} .. {group[-1][0]}"
                w.save(sheet.convert("RGB"), f"icons-{norm(package)[:12]}-{s}-{k // per}.png", "icons", package,
                       version, lic, src, f"{n}x{n} grid sheet, alpha composited over RGB{bg}")
                sheet_no += 1
        print(f"  icons {package} {version}: {sum(r['package'] == package for r in w.rows)} sheets")


# ---------------------------------------------------------------- charts

CHART_STYLES = ["default", "ggplot", "seaborn-v0_8-whitegrid", "bmh", "dark_background", "fivethirtyeight", "classic",
                "grayscale", "Solarize_Light2", "seaborn-v0_8-darkgrid", "tableau-colorblind10", "fast"]
N_CHARTS = 40


def charts(w: Writer) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(SEED)
    kinds = ["bars", "lines", "scatter", "bands", "hist", "stacked", "errorbars", "pie", "steps", "mixed"]
    for i in range(N_CHARTS):
        style = CHART_STYLES[i % len(CHART_STYLES)]
        kind = kinds[i % len(kinds)]
        dpi = [72, 80, 96, 100, 110, 120][i % 6]
        size = [(8, 5), (6, 4), (10, 4), (7, 7), (9, 6), (5, 4)][(i // 2) % 6]
        with plt.style.context(style):
            ncols = 1 + (i % 3 == 2)
            fig, axes = plt.subplots(1, ncols, figsize=size, dpi=dpi, squeeze=False)
            for ax in axes[0]:
                x = np.arange(int(rng.integers(15, 60)))
                k = int(rng.integers(1, 5))
                if kind == "bars":
                    cats = [f"Q{j + 1}" for j in range(int(rng.integers(3, 9)))]
                    for j in range(k):
                        ax.bar(np.arange(len(cats)) + j * 0.8 / k, rng.gamma(3, 10, len(cats)), 0.8 / k,
                               label=f"series {j}")
                    ax.set_xticks(np.arange(len(cats)) + 0.4 - 0.4 / k, cats)
                elif kind == "lines":
                    for j in range(k):
                        ax.plot(x, np.cumsum(rng.normal(0, 1, len(x))), marker="o" if j == 0 else None,
                                label=f"run {j}")
                elif kind == "scatter":
                    for j in range(k):
                        ax.scatter(rng.normal(j, 1, 80), rng.normal(0, 1 + j / 2, 80), s=rng.uniform(5, 60, 80),
                                   alpha=0.7, label=f"group {j}")
                elif kind == "bands":
                    m = np.sin(x / 5) * 10 + rng.normal(0, 0.5, len(x))
                    sd = rng.uniform(0.5, 2.0, len(x))
                    ax.fill_between(x, m - 2 * sd, m + 2 * sd, alpha=0.25, label="95%")
                    ax.fill_between(x, m - sd, m + sd, alpha=0.4, label="68%")
                    ax.plot(x, m, label="mean")
                elif kind == "hist":
                    for j in range(k):
                        ax.hist(rng.normal(j, 1, 500), bins=int(rng.integers(10, 40)), alpha=0.6, label=f"h{j}")
                elif kind == "stacked":
                    ys = rng.uniform(1, 5, (k + 1, len(x)))
                    ax.stackplot(x, ys, labels=[f"s{j}" for j in range(k + 1)])
                elif kind == "errorbars":
                    ax.errorbar(x[:15], rng.normal(5, 1, 15), yerr=rng.uniform(0.2, 1, 15), fmt="s", capsize=3,
                                label="measured")
                elif kind == "pie":
                    ax.pie(rng.uniform(1, 10, k + 2), labels=[f"part {j}" for j in range(k + 2)], autopct="%1.0f%%")
                elif kind == "steps":
                    for j in range(k):
                        ax.step(x, np.cumsum(rng.integers(0, 3, len(x))), where="mid", label=f"c{j}")
                else:
                    ax.bar(x[:12], rng.uniform(1, 9, 12), alpha=0.5, label="count")
                    ax.plot(x[:12], rng.uniform(1, 9, 12), "k--", label="trend")
                if kind != "pie":
                    ax.set_xlabel(["time (s)", "epoch", "size (kB)", "step"][i % 4])
                    ax.set_ylabel(["value", "bits per subpixel", "MB/s", "loss"][i % 4])
                    ax.legend(fontsize="small")
                ax.set_title(f"Figure {i + 1}: {kind}")
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi)
            plt.close(fig)
        im = Image.open(buf)
        bg = (0, 0, 0) if style == "dark_background" else (255, 255, 255)
        w.save(cap(to_rgb(im, bg)), f"charts-{i:02d}-{kind}.png", "charts", "matplotlib (pip)",
               matplotlib.__version__, "output of the recipe (matplotlib: PSF-based licence)",
               f"{kind} chart, style {style}", f"rendered at {dpi} dpi, {size[0]}x{size[1]} in, seed {SEED}")
    print(f"  charts: {N_CHARTS} images")


# ---------------------------------------------------------------- screens


def read_xwd(data: bytes) -> Image.Image:
    """A 24/32-bit TrueColor XWD dump as an RGB image."""
    import struct

    h = struct.unpack(">25I", data[:100])
    header_size, w, ht, byte_order, bpp, bpl, ncolors = h[0], h[4], h[5], h[7], h[11], h[12], h[19]
    assert bpp == 32, bpp
    off = header_size + ncolors * 12
    px = np.frombuffer(data[off : off + bpl * ht], np.uint8).reshape(ht, bpl)[:, : w * 4].reshape(ht, w, 4)
    rgb = px[:, :, [2, 1, 0]] if byte_order == 0 else px[:, :, [1, 2, 3]]
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")


# (theme fg, bg), font: ("fn", bitmap font) not antialiased, or ("fa", size) DejaVu Sans Mono antialiased (Xft)
SCREEN_THEMES = [("white", "black"), ("black", "white"), ("#d0d0d0", "#1d1f21"), ("#333333", "#fdf6e3"),
                 ("#e0e0e0", "#002b36"), ("black", "#ffffdd")]
SCREEN_FONTS = [("fn", "6x13"), ("fa", 10), ("fn", "9x15"), ("fa", 12), ("fn", "10x20"), ("fa", 8), ("fn", "7x14"),
                ("fa", 14)]
STDLIB_FILES = ["argparse.py", "textwrap.py", "json/decoder.py", "heapq.py", "bisect.py", "csv.py",
                "fractions.py", "shlex.py", "difflib.py", "string.py", "colorsys.py", "queue.py"]
N_SCREENS = 24


def screen_commands(i: int, stdlib: Path, fonts: Path, shots: Path) -> tuple[tuple, list[str]]:
    """Screenshot i's plan (i, fg, bg, font, mode, what, retro) and its shell lines: an X server of its
    own, one xterm (two in mode "two") showing Python stdlib text in theme and font i, and an xwd dump of
    the root window into shots/NN.xwd."""
    fg, bg = SCREEN_THEMES[i % len(SCREEN_THEMES)]
    font = SCREEN_FONTS[i % len(SCREEN_FONTS)]
    src = STDLIB_FILES[i % len(STDLIB_FILES)]
    mode = ["ls", "code", "grep", "two"][i % 4]
    fontargs = f"-fn {font[1]}" if font[0] == "fn" else f"-fa 'DejaVu Sans Mono' -fs {font[1]}"
    if mode == "ls":
        cmd = f"ls -l --color=always --time-style=long-iso {stdlib}/{Path(src).parent if '/' in src else ''}"
        what = f"ls -l --color of {stdlib}"
    elif mode == "code":
        cmd = f"cat -n {stdlib}/{src} | sed -n {20 + 7 * i},400p"
        what = f"cat -n {stdlib}/{src}"
    elif mode == "grep":
        cmd = f"grep -n --color=always -E 'def |class |return' {stdlib}/{src}"
        what = f"grep --color {stdlib}/{src}"
    else:
        cmd = f"ls -C --color=always {stdlib}"
        what = f"ls -C --color {stdlib} beside cat -n {stdlib}/{src}"
    retro = "-retro" if i % 3 == 0 else ""
    lines = [f"Xvfb :{77} -screen 0 1024x640x24 -nolisten tcp {retro} -fp {fonts},built-ins "
             f">/dev/null 2>&1 & XP=$!; sleep 1.5"]
    geo = "100x32+20+20" if mode != "two" else "60x30+10+10"
    lines.append(f"DISPLAY=:77 xterm {fontargs} -fg '{fg}' -bg '{bg}' -geometry {geo} -title t -e bash -c "
                 f"\"{cmd} | head -200; sleep 30\" >/dev/null 2>&1 &")
    if mode == "two":
        lines.append(f"DISPLAY=:77 xterm {fontargs} -fg '{bg}' -bg '{fg}' -geometry 70x28+420+200 -e bash -c "
                     f"\"cat -n {stdlib}/{src} | head -60; sleep 30\" >/dev/null 2>&1 &")
    lines.append(f"sleep 2; DISPLAY=:77 xwd -root -silent > {shots}/{i:02d}.xwd; kill $XP; wait $XP 2>/dev/null; "
                 "sleep 0.5")
    return (i, fg, bg, font, mode, what, retro), lines


def screens(cfg: dict, w: Writer, debs: Path, work: Path) -> None:
    """xterm screenshots under Xvfb. Xvfb runs xkbcomp from /usr/bin, so it runs in a private mount namespace
    (`unshare -m`) where /usr/bin is a hard-linked copy plus the unpacked X programs; nothing is installed."""
    xroot = work / "xroot"
    versions = {}
    for package in cfg["screens"]["packages"]:
        root, versions[package] = unpack(package, debs, work)
        if package != "fonts-dejavu-core":
            shutil.copytree(root, xroot, dirs_exist_ok=True, symlinks=True)
    usrbin = Path(tempfile.mkdtemp(prefix="usrbin-", dir="/tmp"))
    shutil.rmtree(usrbin)
    r = subprocess.run(["cp", "-al", "/usr/bin", str(usrbin)], capture_output=True)
    if r.returncode:
        shutil.copytree("/usr/bin", usrbin, symlinks=True)
    for p in (xroot / "usr/bin").iterdir():
        (usrbin / p.name).unlink(missing_ok=True)
        shutil.copy2(p, usrbin / p.name)
    stdlib = Path(os.__file__).parent
    lib = xroot / "usr/lib/x86_64-linux-gnu"
    fonts = xroot / "usr/share/fonts/X11/misc"
    # the packages' postinst would index the bitmap fonts: mkfontdir, and the short names as aliases
    env = dict(os.environ, PATH=f"{xroot / 'usr/bin'}:{os.environ['PATH']}", LD_LIBRARY_PATH=str(lib))
    subprocess.run(["mkfontdir", str(fonts)], env=env, check=True)
    index = (fonts / "fonts.dir").read_text().splitlines()[1:]
    with open(fonts / "fonts.alias", "w") as f:
        for line in index:
            file, xlfd = line.split(" ", 1)
            short = file.split(".")[0]
            if re.fullmatch(r"\d+x\d+", short) and xlfd.endswith("iso10646-1"):
                f.write(f"{short} {xlfd}\n")
    shots = work / "shots"
    shots.mkdir(exist_ok=True)
    lines = []
    plan = []
    for i in range(N_SCREENS):
        step, commands = screen_commands(i, stdlib, fonts, shots)
        plan.append(step)
        lines += commands
    script = "\n".join([
        "set -u",
        f"mount --bind {usrbin} /usr/bin",
        f"export LD_LIBRARY_PATH={lib}",
        "export LC_ALL=C.UTF-8 TZ=UTC",
        *lines,
    ])
    r = subprocess.run(["unshare", "-m", "bash", "-c", script], capture_output=True, text=True)
    shutil.rmtree(usrbin, ignore_errors=True)
    n = 0
    for i, fg, bg, font, mode, what, retro in plan:
        p = shots / f"{i:02d}.xwd"
        if not p.exists() or p.stat().st_size < 1000:
            print(f"  screen {i}: no screenshot ({r.stderr.strip()[-200:]})")
            continue
        im = read_xwd(p.read_bytes())
        aa = "bitmap font " + font[1] + " (not antialiased)" if font[0] == "fn" else \
            f"DejaVu Sans Mono {font[1]} pt (Xft, antialiased)"
        w.save(im, f"screens-{i:02d}-{mode}.png", "screens", "xterm+xvfb", versions["xterm"],
               "output of the recipe (xterm: MIT/X11; shows Python stdlib text: PSF)", what,
               f"xterm {fg} on {bg}, {aa}{', Xvfb -retro root' if retro else ''}, 1024x640 xwd screenshot")
        n += 1
    print(f"  screens: {n} images")


# ---------------------------------------------------------------- main


def check(out: Path, rows: list[dict], protected: Protected) -> None:
    names = {r["file"] for r in rows}
    files = sorted(p for p in out.iterdir() if p.suffix == ".png")
    assert {p.name for p in files} == names, "manifest and folder differ"
    for r in rows:
        assert excluded(r["package"], r["source"]) is None, r
    for p in files:
        with Image.open(p) as im:
            im.load()
            assert im.mode == "RGB" and min(im.size) >= 48, (p, im.mode, im.size)
            assert not (pixel_hashes(im) & protected.hashes), p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default=str(ROOT / "runs/data/train-v1"))
    ap.add_argument("--debs", default=str(ROOT / "runs/data/debs"))
    ap.add_argument("--work", default=None, help="unpack folder (default: a temporary one)")
    ap.add_argument("--no-screens", action="store_true")
    args = ap.parse_args(argv)
    out, debs = Path(args.out), Path(args.debs)
    cfg = tomllib.loads(SOURCES.read_text())
    for kind in ("photo", "art"):
        for package in cfg.get(kind, {}):
            assert excluded(package) is None, package
    for package in cfg["icons"]["packages"] + cfg["screens"]["packages"]:
        assert excluded(package) is None, package
    if not all(d.is_dir() for d in PROTECTED_DIRS):
        raise SystemExit(f"the test sets {PROTECTED_DIRS} are needed for the exclusion check")
    protected = Protected.load(extra_images=skimage_images())
    print(f"protected: {len(protected.hashes)} hashes, val names {sorted(protected.names)}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pixzip-data-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    w = Writer(out, protected)
    photos_and_art(cfg, w, debs, work, protected)
    icons(cfg, w, debs, work, protected)
    charts(w)
    if not args.no_screens:
        screens(cfg, w, debs, work)
    check(out, w.rows, protected)
    cols = ["file", "kind", "package", "version", "licence", "source", "preparation", "width", "height"]
    with open(out / "MANIFEST.tsv", "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in w.rows:
            f.write("\t".join(str(r[c]).replace("\t", " ") for c in cols) + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    total = sum(r["width"] * r["height"] for r in w.rows)
    print(f"\n{len(w.rows)} images, {total / 1e6:.1f} MP in {out} ({time.time() - t0:.0f} s)")
    for side, kinds in (("photo side", ("photo", "art")), ("graphics", ("icons", "charts", "screens"))):
        a = sum(r["width"] * r["height"] for r in w.rows if r["kind"] in kinds)
        print(f"{side}: {a / 1e6:.1f} MP ({100 * a / total:.1f} % of the area)")
        for k in kinds:
            rs = [r for r in w.rows if r["kind"] == k]
            print(f"  {k:8s} {len(rs):4d} images {sum(r['width'] * r['height'] for r in rs) / 1e6:6.1f} MP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
