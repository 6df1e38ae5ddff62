"""Tuning the adaptive stage fast (docs/models.md, "The adaptive stage"): record what the stage is given
(the network's frequencies, in stream order) for centre crops of some images once, then replay it through
variants of the stage, in seconds instead of the network's minutes:

    python train/experiments/stage_replay.py record runs/rec-384.pkl 384 IMAGES...
    python train/experiments/stage_replay.py replay runs/rec-384.pkl MODULE[:K=V...][,MODULE...] [--save]

MODULE is an importable copy of pixzip/adaptive.py (changed to try something; put it on PYTHONPATH), or
pixzip.adaptive itself; K=V sets entry K of its settings (its LATEST format version's, if SETTINGS is per
version). Replay prints each variant's size change against the saved base (--save: the first variant is the
base), photos and graphics apart (graphics: file names with desk, term, chart or icon), and per image.
"""
import importlib
import pickle
import sys
import time
from pathlib import Path

import numpy as np

GRAPHICS = ("desk", "term", "chart", "icon")


def record(out: str, size: int, paths: list[str]) -> None:
    from PIL import Image

    from pixzip import adaptive, codec, modes, registry

    model, rec = registry.resolve(None), []
    push, begin = adaptive.Encoder.push, adaptive.Encoder.begin

    def recording_begin(self, img):
        earlier = None if self.earlier is None else self.earlier.copy()
        rec[-1]["stages"].append({"img": img.copy(), "side": earlier, "batches": []})
        return begin(self, img)

    def recording_push(self, symbols, freqs, where, trace=None):
        rec[-1]["stages"][-1]["batches"].append((symbols.copy(), freqs.copy(), where))
        return push(self, symbols, freqs, where, trace)

    adaptive.Encoder.begin, adaptive.Encoder.push = recording_begin, recording_push
    for path in paths:
        im = Image.open(path)
        x0, y0 = max(0, (im.width - size) // 2), max(0, (im.height - size) // 2)
        im = im.crop((x0, y0, min(im.width, x0 + size), min(im.height, y0 + size)))
        rec.append({"name": Path(path).name, "stages": []})
        rec[-1]["bytes"] = len(codec.compress_planes(modes.split(im), model)[0])
        print(rec[-1]["name"], rec[-1]["bytes"], flush=True)
    with open(out, "wb") as f:
        pickle.dump(rec, f, protocol=4)


def replay_one(rec: list, module, settings: np.ndarray) -> np.ndarray:
    """Each recorded image's payload bytes through module's stage with these settings."""
    sizes = []
    for image in rec:
        total = 0
        for stage in image["stages"]:
            enc = module.Encoder(stage["side"])
            enc.settings, enc.state = settings, module.State.new(settings)
            enc.begin(stage["img"])
            for symbols, freqs, w in stage["batches"]:
                enc.push(symbols, freqs, module.Where(w.rows, w.cols, w.chans, w.boxes, w.preds))
            total += len(enc.finish())
        sizes.append(total)
    return np.array(sizes)


def replay(path: str, variants: str, save: bool) -> None:
    with open(path, "rb") as f:
        rec = pickle.load(f)
    base_file = Path(path).with_suffix(".base.npy")
    names = [image["name"] for image in rec]
    graphics = np.array([any(g in n for g in GRAPHICS) for n in names])
    for n, variant in enumerate(variants.split(",")):
        name, *assignments = variant.split(":")
        module = importlib.import_module(name)
        settings = (module.SETTINGS[module.LATEST] if isinstance(module.SETTINGS, dict) else module.SETTINGS).copy()
        for kv in assignments:
            k, v = kv.split("=")
            settings[int(k)] = int(v)
        start = time.time()
        sizes = replay_one(rec, module, settings)
        if save and n == 0:
            np.save(base_file, sizes)
        base = np.load(base_file)
        change = lambda sel: 100 * (sizes[sel].sum() / base[sel].sum() - 1)  # noqa: E731
        print(f"{variant:24s} photos {change(~graphics):+.3f} %  graphics {change(graphics):+.3f} %  "
              + " ".join(f"{n[:6]}:{100 * (a / b - 1):+.2f}" for n, a, b in zip(names, sizes, base)),
              f"({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    else:
        replay(sys.argv[2], sys.argv[3], "--save" in sys.argv)
