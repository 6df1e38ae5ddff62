"""Actual file sizes of model files on the validation photos (whole .pxz files, default tiles, the current
format), as docs/models.md's tables give them. Run from the repository root:

    python train/experiments/measure_val.py models/rowlstm-202a1738.npz models/pixelcnn-51901d66.npz
"""
import sys
from pathlib import Path

from pixzip import registry
from pixzip.export import measure

VAL = Path("../shared/data/val")

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        result = measure(registry.load_file(Path(path)), VAL)
        print(f"{Path(path).name}: {result['bpsp']:.4f} bpsp ({result['ideal_bpsp']:.4f} ideal)", flush=True)
