"""Golden bytes of sharpened files (format version 3) for every shipped architecture.

Per-tile sharpness (pixzip.sharpness: the encoder's fit and its rounding to 0..255; pixzip.softmax: the
sharpened logit differences' rounding) is computed the same way by encoder and decoder, so a rounding
changed in both still round-trips, and the crop goldens of tests/test_shipped.py are unsharpened (version
2). These pin the sharpened bytes of the same 40 x 48 crop for each shipped model - the default included -
without the adaptive stage (version 4 refines what these code; its own tests cover it); that such files
decode is tests/test_shipped.py's. Change one only on purpose (a new model of that name, a new sharpness
rule), never to make a test pass.
"""
import hashlib

import pytest

from pixzip import codec, container, registry
from tests.test_shipped import GOLDEN_CROP, sample_crop

# Model name (None: the default) -> (its file's hash prefix, the SHA-256 of the crop's version 3 file).
GOLDEN_SHARPENED = {
    "rowlstm": ("202a1738", "ae0c2dca80153a355eb0a332bae48d9a23d1752b6d20d8c2c1a5c4163656286b"),
    "diagbilstm": ("a7151a5d", "040ff33bba6a153b9d420c6977935908452f5b78201b644c261e092fc8be5efd"),
    "multiscale": ("f849ddb9", "0aa88cdb0c9265e13be4eb2e88ecd615c95dce48b1b58df1ba545ddd7dba2768"),
    "multiscale-rowlstm": ("a90aac84", "5808062a20f91d92ef03db5d238e52b31d507782ff21d14448a508964d7e9091"),
    None: ("8188344c", "10cf21f67b1f7fd0ea333b00cdb22b506351d2bb18007bdc01596dc32d8f763e"),
}


def test_every_shipped_architecture_is_pinned():
    assert set(GOLDEN_SHARPENED) == set(GOLDEN_CROP) | {None}


@pytest.mark.parametrize("name", list(GOLDEN_SHARPENED), ids=lambda n: n or "default")
def test_sharpened_crop_golden_bytes(name):
    model = registry.resolve(name)
    prefix, golden = GOLDEN_SHARPENED[name]
    assert model.sha256.hex().startswith(prefix), f"model {name} was replaced: pin its sharpened bytes anew"
    pixels = sample_crop()
    data = codec.compress_pixels(pixels, "RGB", model, adapt=False)[0]
    assert container.unpack(data)[0].version == 3
    digest = hashlib.sha256(data).hexdigest()
    assert digest == golden, f"model {name}'s sharpened bytes changed: {digest}"
