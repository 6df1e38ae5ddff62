"""Decode speed on a busy machine: numba threads 1 vs 2, alternating (python train/experiments/busy.py; docs/benchmarks.md, "Busy machines")."""
import time, numba, numpy as np
from PIL import Image
import pixzip
px = np.asarray(Image.open("../shared/data/val/ladybird.png"))[:128, :256]
data = pixzip.compress(px)
pixzip.decompress(data)
print("threading layer", numba.threading_layer(), flush=True)
for rep in range(2):
    for n in (1, 2):
        numba.set_num_threads(n)
        t = time.perf_counter(); pixzip.decompress(data); dt = time.perf_counter() - t
        print(f"threads {n}: {dt / (px.shape[0] * px.shape[1] / 1e6):.1f} s/MP", flush=True)
