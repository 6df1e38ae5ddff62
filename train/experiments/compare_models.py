"""The architecture comparison table of docs/models.md, in the spirit of the paper's Table: per shipped
model its parameters, training budget, validation cost of the float weights (the NLL), of the exact
integer model (ideal) and of actual files, and measured speed. Run from the repository root after

    pixzip bench ../shared/data/val -m pixelcnn -m rowlstm -m diagbilstm -m multiscale --codecs png \
        --out runs/bench-models

as  python train/experiments/compare_models.py runs/bench-models/results.csv [NAME=RUN_DIR ...] \
        [--manifest FILE]

The models are those of models/manifest.json, or of the manifest FILE that `pixzip export --models-dir`
wrote (train/experiments/equal_budget.sh's models). Each NAME=RUN_DIR (the training run of model NAME) adds
the float NLL: the run's final weights evaluated as the float model (activation scales switched off) on the
whole validation images; and a second table, the runs' training cost (running mean over the last 100 steps,
bits per subpixel of the training crops) at every 100th step.
"""
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

from pixzip.export import load_checkpoint
from pixzip.train import load_dataset, nll_bits

VAL = Path("../shared/data/val")


def float_nll(run: Path) -> float:
    model, _ = load_checkpoint(run / "checkpoint.pt")
    for name, buffer in model.named_buffers():
        if name.endswith("scales"):
            buffer.zero_()
    bits = count = 0.0
    with torch.no_grad():
        for im in load_dataset(VAL, model.config.channels, 1):
            bits += float(nll_bits(model, im[None].float(), model.config.predictor)) * im.numel()
            count += im.numel()
    return bits / count


def architecture(entry: dict) -> str:
    base = entry["config"].get("base")
    return f"{entry['arch']}, {base}" if base else entry["arch"]


if __name__ == "__main__":
    args = sys.argv[1:]
    manifest_path = Path("models/manifest.json")
    if "--manifest" in args:
        k = args.index("--manifest")
        manifest_path = Path(args[k + 1])
        del args[k : k + 2]
    totals = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # codec -> bytes, subpixels, encode s, decode s
    pixels = defaultdict(float)
    with open(args[0]) as f:
        for row in csv.DictReader(f):
            t = totals[row["codec"]]
            t[0] += float(row["bytes"])
            t[1] += float(row["subpixels"])
            t[2] += float(row["encode_s"])
            t[3] += float(row["decode_s"])
            pixels[row["codec"]] += float(row["pixels"])
    nll = {name: float_nll(Path(run)) for name, run in (a.split("=", 1) for a in args[1:])}
    manifest = json.loads(manifest_path.read_text())
    print("| model | parameters | training | val NLL, float weights | val ideal, integer model | "
          "val actual files | encode s/MP | decode s/MP |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for e in manifest["models"]:
        codec = f"pixzip {e['name']}"
        if codec not in totals:
            continue
        b, sub, enc, dec = totals[codec]
        tr = e["training"]
        mp = pixels[codec] / 1e6
        nll_text = f"{nll[e['name']]:.3f}" if e["name"] in nll else "-"
        print(f"| `{e['name']}` ({architecture(e)}) | {e['parameters']:,} | {tr['steps']:,} steps, "
              f"{tr['pixels'] / 1e6:.0f} M pixels, {tr['minutes']:.0f} min | {nll_text} | {e['val_ideal_bpsp']:.3f} | "
              f"{8 * b / sub:.3f} | {enc / mp:.1f} | {dec / mp:.1f} |")
    runs = dict(a.split("=", 1) for a in args[1:])
    if runs:
        logs = {}
        for name, run in runs.items():
            log = torch.load(Path(run) / "checkpoint.pt", weights_only=False)["log"]
            logs[name] = {e["step"]: e["train_bpsp"] for e in log if "train_bpsp" in e}
        print("\n| step | " + " | ".join(f"`{name}`" for name in logs) + " |")
        print("|---:|" + "---:|" * len(logs))
        for step in sorted(set().union(*logs.values())):
            print(f"| {step} | "
                  + " | ".join(f"{log[step]:.3f}" if step in log else "-" for log in logs.values()) + " |")
