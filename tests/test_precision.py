"""Coding leaves torch's global float32 precision settings as the caller set them (pixzip.precision), and
runs its own matmuls in full precision whatever they are."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pixzip
from pixzip import codec, precision
from tests.test_exactness import smooth_image

LEGACY = {  # the settings as torch < 2.9 names them (still settable)
    "cuda.matmul.allow_tf32": (lambda: torch.backends.cuda.matmul.allow_tf32,
                               lambda v: setattr(torch.backends.cuda.matmul, "allow_tf32", v)),
    "cudnn.allow_tf32": (lambda: torch.backends.cudnn.allow_tf32,
                         lambda v: setattr(torch.backends.cudnn, "allow_tf32", v)),
    "float32_matmul_precision": (torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
}
NEW = [("generic", "all"), ("cuda", "matmul"), ("mkldnn", "matmul"), ("cuda", "conv"), ("cuda", "rnn"),
       ("mkldnn", "conv"), ("mkldnn", "rnn")]  # torch >= 2.9's fp32_precision (cudnn's are "cuda")


def snapshot() -> dict:
    """Every setting readable, as it reads (or the error reading it raises: torch 2.9+ refuses the legacy
    getters after some mixes of the two interfaces)."""
    out = {}
    for name, (get, _) in LEGACY.items():
        try:
            out[name] = get()
        except RuntimeError as e:
            out[name] = f"raises {str(e)[:40]}"
    if precision.NEW_API:
        for backend, op in NEW:
            out[f"{backend}.{op}"] = torch._C._get_fp32_precision_getter(backend, op)
    return out


def legacy_settings():
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("medium")


def new_settings():
    torch.backends.fp32_precision = "tf32"
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    torch.backends.cudnn.conv.fp32_precision = "ieee"


def mixed_settings():  # the new interface's generic setting under the legacy one's
    torch.backends.fp32_precision = "tf32"
    torch.set_float32_matmul_precision("high")


SETTINGS = {"legacy": legacy_settings, "new": new_settings, "mixed": mixed_settings}


def check(which: str, model_paths: list[str]) -> None:
    """In a process of its own (the settings are the process's): with settings `which`, compress (formats 3
    and 4) and decompress with each model; the settings must read the same after each, every matmul of the
    network must have run in full precision, and the bytes must be those coded with torch's defaults."""
    from pixzip import registry

    pixels = smooth_image(10, 21, seed=1)
    models = [registry.load_file(p) for p in model_paths]
    reference = [codec.compress_pixels(pixels, "RGB", m, tile=16, adapt=a)[0] for m in models for a in (False, True)]
    SETTINGS[which]()
    chosen = snapshot()
    seen = []
    product = torch.Tensor.__matmul__

    def spy(a, b):  # every float32 product torch computes, whoever calls it
        seen.append(precision.is_exact(precision.state()))
        return product(a, b)

    torch.Tensor.__matmul__ = spy
    coded = []
    for model in models:
        for adapt in (False, True):
            data = codec.compress_pixels(pixels, "RGB", model, tile=16, adapt=adapt)[0]
            assert snapshot() == chosen, f"compressing changed torch's settings: {snapshot()} != {chosen}"
            np.testing.assert_array_equal(codec.decompress_pixels(data, models=model)[0], pixels)
            assert snapshot() == chosen, f"decompressing changed torch's settings: {snapshot()} != {chosen}"
            coded.append(data)
    assert coded == reference
    assert seen and all(seen), "a matmul ran without full precision"
    with pytest.raises(ZeroDivisionError):  # put back after an error too
        with precision.full_precision():
            assert precision.is_exact(precision.state())
            1 / 0
    assert snapshot() == chosen
    print("ok", chosen)


@pytest.mark.parametrize("which", list(SETTINGS))
def test_coding_keeps_the_callers_settings(which, tiny_residual, tiny_rowlstm):
    """The default's kind (its decoder compiled, no torch matmul) and a Row LSTM (its decoder's layers are
    torch matmuls)."""
    if which != "legacy" and not precision.NEW_API:
        pytest.skip("torch < 2.9 has one interface")
    root = Path(pixzip.__file__).resolve().parent.parent
    paths = [str(tiny_residual.path), str(tiny_rowlstm.path)]
    script = f"from tests.test_precision import check; check({which!r}, {paths!r})"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
