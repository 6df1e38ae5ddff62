"""Encode and decode seconds per megapixel on the validation photos with two or more models side by side,
format 7 (the adaptive stage) and format 3 (the network alone), alternating, twice (docs/benchmarks.md,
"Speed"; how the default's speed was checked when the campaign's network replaced it):

    python train/experiments/speed_models.py models/pixelcnn-f20b173f.npz pixelcnn
"""
import glob
import sys
import time

import numpy as np
from PIL import Image

from pixzip import codec, registry

images = [np.asarray(Image.open(p)) for p in sorted(glob.glob("../shared/data/val/*.png"))]
megapixels = sum(im.shape[0] * im.shape[1] for im in images) / 1e6
models = {name: registry.resolve(name) for name in sys.argv[1:]}
for model in models.values():  # the kernels loaded before timing
    for adapt in (True, False):
        codec.decompress_pixels(codec.compress_pixels(images[0][:16, :16], "RGB", model, adapt=adapt)[0], models=model)
for run in range(2):
    for adapt in (True, False):
        for name, model in models.items():
            encode = decode = 0.0
            for im in images:
                t0 = time.perf_counter()
                data = codec.compress_pixels(im, "RGB", model, adapt=adapt)[0]
                t1 = time.perf_counter()
                back = codec.decompress_pixels(data, models=model)[0]
                t2 = time.perf_counter()
                assert np.array_equal(back, im)
                encode, decode = encode + t1 - t0, decode + t2 - t1
            print(f"run {run} {name} ({model.sha256.hex()[:8]}) format {7 if adapt else 3}: "
                  f"encode {encode / megapixels:.2f}, decode {decode / megapixels:.2f} s/MP", flush=True)
