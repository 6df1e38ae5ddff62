"""Encode/decode seconds per megapixel (docs/benchmarks.md, "Speed of format 4") on the validation photos, with and without the adaptive stage, in one
process, alternating (python train/experiments/speed.py; the OpenMP wait policy is the environment's)."""
import glob, os, sys, time
import numpy as np
from PIL import Image
import pixzip
from pixzip import codec, modes
images = [np.asarray(Image.open(p)) for p in sorted(glob.glob("../shared/data/val/*.png"))]
mp = sum(im.shape[0] * im.shape[1] for im in images) / 1e6
pixzip.decompress(pixzip.compress(images[0][:16, :16]))  # kernels loaded
pixzip.decompress(pixzip.compress(images[0][:16, :16], adapt=False))
t = {}
for adapt in (True, False, True, False):
    enc = dec = 0.0
    for im in images:
        t0 = time.perf_counter(); data = pixzip.compress(im, adapt=adapt); t1 = time.perf_counter()
        back = pixzip.decompress(data); t2 = time.perf_counter()
        assert np.array_equal(np.asarray(back), im)
        enc += t1 - t0; dec += t2 - t1
    t.setdefault(adapt, []).append((enc / mp, dec / mp))
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} adapt={adapt}: encode {enc / mp:.2f} s/MP, decode {dec / mp:.2f} s/MP", flush=True)
