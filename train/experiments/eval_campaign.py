"""The campaign's network against the default it started from, on every set, with and without the adaptive
stage (docs/models.md, "The training campaign"): whole files, encoded (their decoding is what the tests and
benchmarks check).

    python train/experiments/eval_campaign.py runs/campaign/checkpoint.pt
"""
import glob
import sys
import tempfile
from pathlib import Path

from pixzip import codec, export, modes, registry
from pixzip.image import load_image

SETS = {"val": "../shared/data/val/*.png", "scikit-image photos": "runs/skphotos/*.png",
        "graphics": "../shared/data/graphics/*.png"}


def bpsp(model: registry.Model, pattern: str, adapt: bool) -> float:
    bits = subpixels = 0
    for path in sorted(glob.glob(pattern)):
        planes = modes.split(load_image(Path(path))[0])
        data, _ = codec.compress_planes(planes, model, adapt=adapt)
        bits, subpixels = bits + 8 * len(data), subpixels + sum(p.size for p in planes.planes)
    return bits / subpixels


with tempfile.TemporaryDirectory() as folder:
    run = Path(tempfile.mkdtemp())
    (run / "checkpoint.pt").symlink_to(Path(sys.argv[1]).resolve())
    entry = export.export(run, "campaign", Path(folder))
    start = registry.load_file(Path("models/pixelcnn-f20b173f.npz"))
    models = {"pixelcnn-f20b173f (the default it started from)": start,
              f"campaign step {entry['training']['steps']}, {entry['training']['minutes']} min":
                  registry.load_file(Path(folder) / entry["file"])}
    print("| model | " + " | ".join(f"{s} (network alone) | {s} (adaptive)" for s in SETS) + " |")
    print("|---|" + "---:|" * (2 * len(SETS)))
    for name, model in models.items():
        cells = [f"{bpsp(model, pattern, adapt):.4f}" for pattern in SETS.values() for adapt in (False, True)]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
