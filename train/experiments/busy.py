"""Decoding speed on a busy machine, numba threads 1 and 2 alternating (docs/benchmarks.md, "Busy machines"):

    python train/experiments/busy.py         # with other work on the cores; OMP_WAIT_POLICY as the environment's
"""
import time

import numba
import numpy as np
from PIL import Image

import pixzip

px = np.asarray(Image.open("../shared/data/val/ladybird.png"))[:128, :256]
data = pixzip.compress(px)
pixzip.decompress(data)
print("threading layer", numba.threading_layer(), flush=True)
for rep in range(2):
    for n in (1, 2):
        numba.set_num_threads(n)
        t = time.perf_counter()
        pixzip.decompress(data)
        seconds = time.perf_counter() - t
        print(f"threads {n}: {seconds / (px.shape[0] * px.shape[1] / 1e6):.1f} s/MP", flush=True)
