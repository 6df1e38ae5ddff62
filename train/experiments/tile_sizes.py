"""What the tile size costs and buys with the default model: whole files of every image in a folder, coded
with each TILE/CHUNK (tile side in pixels / tiles decoded together), timed in one process after a warm-up,
every round trip checked (docs/benchmarks.md, "What the tiles cost"). Run from the repository root:

    python train/experiments/tile_sizes.py ../shared/data/val 128/64 64/64 64/256 48/512 32/64 32/1024
"""
import sys
import time
from pathlib import Path

from pixzip import codec, registry
from pixzip.image import load_pixels
from pixzip.train import find_images


def main(folder: str, *specs: str) -> None:
    model = registry.resolve(None)
    images = [load_pixels(p) for p in find_images(Path(folder))]
    print(f"{folder}, {model.name}-{model.sha256.hex()[:8]}\n")
    print("| tile | chunk | bpsp (files) | encode s/MP | decode s/MP |\n|---:|---:|---:|---:|---:|")
    for spec in specs:
        tile, chunk = map(int, spec.split("/"))
        bits = subpixels = pixels = 0
        encode = decode = 0.0
        for image, mode in images:
            codec.compress_pixels(image[:64, :64], mode, model, tile=tile, chunk=chunk)  # warm-up
            start = time.perf_counter()
            data = codec.compress_pixels(image, mode, model, tile=tile, chunk=chunk)[0]
            encode += time.perf_counter() - start
            start = time.perf_counter()
            out = codec.decompress_pixels(data)[0]
            decode += time.perf_counter() - start
            assert (out == image).all()
            bits, subpixels, pixels = (bits + 8 * len(data), subpixels + image.size,
                                       pixels + image.shape[0] * image.shape[1])
        print(f"| {tile} | {chunk} | {bits / subpixels:.4f} | {encode / pixels * 1e6:.2f} "
              f"| {decode / pixels * 1e6:.2f} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
