"""Where a model's bits go between the pixels a multi-scale model codes first (even row and even column of
each tile: the small image) and the rest, in bits per subpixel over a folder of photos. For a multi-scale
model that is bits(small) and bits(rest | small); for a single-scale model, the same pixels' share of its
raster-order code, which is what the scales are compared against. Run from the repository root:

    PIXZIP_MODEL_PATH=runs/equal/models python train/experiments/scale_split.py ../shared/data/val MODEL...

(models by name or path; the ideal code lengths of the exact integer model, 128 x 128 tiles).
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pixzip import codec, registry
from pixzip.intscale import is_known


def split(model: registry.Model, images: list[Path], tile: int = codec.DEFAULT_TILE) -> tuple[float, float, float]:
    """(small-image pixels' bpsp, the rest's, all) over the images."""
    small_bits = rest_bits = small_sub = rest_sub = 0.0
    for path in images:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        costs = np.zeros(pixels.shape[:2])
        codec.compress_pixels(pixels, "RGB", model, tile=tile, costs=costs)
        rows, cols = np.indices(pixels.shape[:2])
        small = is_known(rows, cols, tile)
        small_bits, rest_bits = small_bits + costs[small].sum(), rest_bits + costs[~small].sum()
        small_sub, rest_sub = small_sub + 3 * small.sum(), rest_sub + 3 * (~small).sum()
    return small_bits / small_sub, rest_bits / rest_sub, (small_bits + rest_bits) / (small_sub + rest_sub)


if __name__ == "__main__":
    folder, names = Path(sys.argv[1]), sys.argv[2:]
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    print("| model | small-image pixels (1/4) | the rest (3/4) | all |")
    print("|---|---:|---:|---:|")
    for name in names:
        small, rest, total = split(registry.resolve(name), images)
        print(f"| `{name}` | {small:.3f} | {rest:.3f} | {total:.3f} |")
