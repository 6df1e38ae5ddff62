"""Float-model cost (bits per subpixel) on the whole validation images for training checkpoints, as the
rows of docs/models.md's "what training compute buys" table. Run from the repository root:

    python train/eval_snapshots.py runs/snapshots/*.pt
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pixzip.export import load_checkpoint  # noqa: E402
from pixzip.train import load_dataset, nll_bits  # noqa: E402

VAL = Path("../shared/data/val")

if __name__ == "__main__":
    val = load_dataset(VAL, 3, 48)
    for path in sys.argv[1:]:
        model, state = load_checkpoint(Path(path))
        total = count = 0.0
        with torch.no_grad():
            for im in val:
                total += float(nll_bits(model, im[None])) * im.numel()
                count += im.numel()
        pixels = state["step"] * state["train"]["batch"] * state["train"]["crop"] ** 2
        print(f"| {state['step']} | {pixels / 1e6:.0f} | {state['seconds'] / 60:.0f} | "
              f"{'yes' if model.quantized else 'no'} | {total / count:.3f} |", flush=True)
