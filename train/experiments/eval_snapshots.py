"""Float-model cost (bits per subpixel) on the whole validation images for training checkpoints, as the
rows of docs/models.md's "what training compute buys" table. Run from the repository root:

    python train/experiments/eval_snapshots.py runs/snapshots/*.pt
    python train/experiments/eval_snapshots.py --float runs/rowlstm/checkpoint.pt   # a quantized one's float model

(--float evaluates a quantization-aware checkpoint's weights as the float model, scales switched off.)
"""
import sys
from pathlib import Path

import torch

from pixzip.export import load_checkpoint
from pixzip.train import load_dataset, nll_bits

VAL = Path("../shared/data/val")

if __name__ == "__main__":
    val = load_dataset(VAL, 3, 48)
    as_float = "--float" in sys.argv
    for path in [a for a in sys.argv[1:] if a != "--float"]:
        model, state = load_checkpoint(Path(path))
        if as_float:
            model.scales.zero_()
        total = count = 0.0
        with torch.no_grad():
            for im in val:
                total += float(nll_bits(model, im[None].float(), model.config.predictor)) * im.numel()
                count += im.numel()
        pixels = state["step"] * state["train"]["batch"] * state["train"]["crop"] ** 2
        print(f"| {state['step']} | {pixels / 1e6:.0f} | {state['seconds'] / 60:.0f} | "
              f"{'yes' if model.quantized else 'no'} | {total / count:.3f} |", flush=True)
