"""Decoding seconds per megapixel on the validation photos with the chunk's tiles in 1 to 4 parts side by
side (pixzip.decoder.PARTS), and how much of it the adaptive stage's decoding calls took (on the worker
thread, where there is one) - alternating, twice (docs/benchmarks.md, "Speed"):

    python train/experiments/decode_parts.py
"""
import glob
import time

import numpy as np
from PIL import Image

import pixzip
from pixzip import adaptive, decoder

images = [np.asarray(Image.open(p)) for p in sorted(glob.glob("../shared/data/val/*.png"))]
megapixels = sum(im.shape[0] * im.shape[1] for im in images) / 1e6
files = [pixzip.compress(im) for im in images]
spent = [0.0]
pop = adaptive.Decoder.pop


def timed_pop(*args):
    t = time.perf_counter()
    try:
        return pop(*args)
    finally:
        spent[0] += time.perf_counter() - t


adaptive.Decoder.pop = timed_pop
for parts in (1, 2, 3, 4) * 2:
    decoder.PARTS = parts
    spent[0] = 0.0
    t = time.perf_counter()
    for data, im in zip(files, images):
        assert np.array_equal(np.asarray(pixzip.decompress(data)), im)
    total = time.perf_counter() - t
    print(f"{parts} part(s): decode {total / megapixels:.2f} s/MP, of it the stage's calls {spent[0] / megapixels:.2f}",
          flush=True)
