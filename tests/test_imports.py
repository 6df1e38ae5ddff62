"""Coding never imports training code: compress and decompress run on the integer network alone."""
import json
import os
import subprocess
import sys

from .conftest import REPO

# The float models and their training: what a decoder must not need (nor load: torch.nn models, tqdm...).
TRAINING = ["pixzip.pixelcnn", "pixzip.pixelrnn", "pixzip.multiscale", "pixzip.train", "pixzip.export"]

SCRIPT = """
import json, sys
import numpy as np
from pixzip import codec
after_import = sorted(sys.modules)
pixels = (np.arange(6 * 5 * 3).reshape(6, 5, 3) * 7 % 256).astype(np.uint8)
data, _ = codec.compress_pixels(pixels, "RGB")
back, mode = codec.decompress_pixels(data)
assert mode == "RGB" and (back == pixels).all()
print(json.dumps({"import": after_import, "coding": sorted(sys.modules)}))
"""


def test_coding_imports_no_training_code():
    """Importing pixzip.codec, and compressing and decompressing with the shipped default model, in a
    fresh interpreter loads none of the training modules."""
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    for stage in ("import", "coding"):
        assert not [m for m in TRAINING if m in loaded[stage]], stage


def test_openmp_threads_sleep_while_waiting_unless_the_user_says_otherwise():
    """pixzip sets OMP_WAIT_POLICY=PASSIVE before OpenMP starts (spinning threads made decoding 8x slower
    beside another busy process, pixzip/__init__.py), and keeps a value the user set."""
    script = "import os, pixzip; print(os.environ['OMP_WAIT_POLICY'])"
    for preset, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if preset:
            env["OMP_WAIT_POLICY"] = preset
        out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == expected
