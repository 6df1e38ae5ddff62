"""Encode and decode seconds per megapixel on the validation photos with the adaptive stage of format 7, of
format 6, and without it (format 3), in one process, twice, alternating (docs/benchmarks.md, "Speed"):

    python train/experiments/speed.py        # the OpenMP wait policy is the environment's (pixzip: PASSIVE)
"""
import glob
import os
import time

import numpy as np
from PIL import Image

import pixzip

images = [np.asarray(Image.open(p)) for p in sorted(glob.glob("../shared/data/val/*.png"))]
megapixels = sum(im.shape[0] * im.shape[1] for im in images) / 1e6
FORMATS = {7: {}, 6: {"stage": 6}, 3: {"adapt": False}}
for options in FORMATS.values():  # the kernels loaded before timing
    pixzip.decompress(pixzip.compress(images[0][:16, :16], **options))
for version in (7, 6, 3) * 2:
    encode = decode = 0.0
    for im in images:
        t0 = time.perf_counter()
        data = pixzip.compress(im, **FORMATS[version])
        t1 = time.perf_counter()
        back = pixzip.decompress(data)
        t2 = time.perf_counter()
        assert np.array_equal(np.asarray(back), im)
        encode, decode = encode + t1 - t0, decode + t2 - t1
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} format {version}: encode {encode / megapixels:.2f} "
          f"s/MP, decode {decode / megapixels:.2f} s/MP", flush=True)
