"""The thread count changes no integer: every frequency the encoder and the decoder compute (traced, not only
the bytes), format 3 and the latest (the adaptive stage), with 1 to 7 numba and torch threads on however
few cores, run after run.

A kernel whose threads share scratch memory (a race) computes some rows wrongly only when two threads run
at once and only in some runs; bytes compared after a round trip can hide it where encoder and decoder
happen to agree. So one process with NUMBA_NUM_THREADS = 7 (more threads than this project's machines have
cores) codes an image whose frequency batches give every thread many rows, again and again, and reports a
digest of each trace; all must agree.
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import pixzip
from pixzip import codec, container
from pixzip.adaptive import LATEST
from pixzip.image import checksum
from tests.test_exactness import smooth_image

THREADS = (1, 2, 4, 7)
REPEATS = 2
SHAPE = (48, 128)  # 24 tiles of 16 x 16 in one chunk: the decoder's steps have ~70 rows per channel
TILE, CHUNK = 16, 64


def _digest(arrays: list[np.ndarray]) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.concatenate(arrays)).tobytes()).hexdigest()[:16]


def traces(model, pixels: np.ndarray, version: int) -> dict[str, str]:
    """Encode and decode with traces in format `version` (3, or LATEST: the adaptive stage) -> digests of the
    encoder's trace, the decoder's trace and the payload, and whether the pixels came back (a decoder that
    went wrong may raise: then its error instead of its digest)."""
    enc, dec = [], []
    payload, _ = codec.encode_pixels(pixels, "RGB", model, tile=TILE, chunk=CHUNK, trace=enc, adapt=version == LATEST)
    h, w = pixels.shape[:2]
    header = container.Header("RGB", w, h, TILE, CHUNK, model.name, model.sha256, checksum(pixels), version=version)
    result = {"encoder": _digest(enc), "payload": hashlib.sha256(payload).hexdigest()[:16]}
    try:
        out = codec.decode_pixels(header, payload, model, trace=dec)
    except (ValueError, RuntimeError, IndexError) as e:
        return {**result, "decoder": f"raised {type(e).__name__}", "pixels": False}
    return {**result, "decoder": _digest(dec), "pixels": bool(np.array_equal(out, pixels))}


def worker(model_path: str) -> None:
    """In a process started with NUMBA_NUM_THREADS = max(THREADS): prints {threads/run/version: digests}, a
    line each."""
    import numba
    import torch

    from pixzip import registry

    model = registry.load_file(model_path)
    pixels = smooth_image(*SHAPE, seed=3)
    for run in range(REPEATS):
        for threads in THREADS:
            numba.set_num_threads(threads)
            torch.set_num_threads(threads)
            for version in (3, LATEST):
                key = f"{threads} threads, run {run}, format {version}"
                print(json.dumps({key: traces(model, pixels, version)}), flush=True)  # as far as it got


def run_worker(model_path: Path) -> dict[str, dict[str, str]]:
    root = Path(pixzip.__file__).resolve().parent.parent  # the pixzip under test, wherever it is
    env = {**os.environ, "PYTHONPATH": str(root), "NUMBA_NUM_THREADS": str(max(THREADS)), "OMP_NUM_THREADS": "1"}
    script = f"from tests.test_threads import worker; worker({str(model_path)!r})"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, env=env)
    assert run.returncode == 0, f"the worker failed ({run.returncode}) after\n{run.stdout}{run.stderr}"
    return {k: v for line in run.stdout.splitlines() for k, v in json.loads(line).items()}


def test_thread_count_changes_no_frequency(tiny_residual):
    """The default's kind (wide first layer, 16-bit stream, 12-bit output layer): its decoder runs the
    compiled sub-pass (pixzip.subpass), its encoder the gathers and rescaling (pixzip.kernels), both the
    fused softmax (pixzip.softmax) - all parallel over rows. (A Row LSTM, whose decoder runs layer by layer,
    took 30 s more here.)"""
    results = run_worker(tiny_residual.path)
    assert len(results) == len(THREADS) * REPEATS * 2
    for version in (3, LATEST):
        runs = {k: v for k, v in results.items() if k.endswith(f"format {version}")}
        for side in ("encoder", "decoder", "payload"):
            seen = {k: v[side] for k, v in runs.items()}
            assert len(set(seen.values())) == 1, f"format {version}, {side} differs with the thread count: {seen}"
        assert all(v["pixels"] for v in runs.values()), f"format {version}: not decoded: {runs}"
        one = next(iter(runs.values()))
        assert one["encoder"] == one["decoder"], f"format {version}: encoder and decoder differ"
