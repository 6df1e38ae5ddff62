"""The coding path is integer-exact: encoder and decoder compute the same frequencies, and the bytes do
not depend on thread count, batch composition or device."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pixzip import codec, container
from pixzip.image import checksum

SHAPES = [(1, 1), (2, 3), (7, 5), (17, 40), (33, 9), (64, 64), (70, 71)]


def smooth_image(h, w, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / 7 + rng.uniform(0, 6)) * np.cos(y / 5)
    px = base[:, :, None] + rng.integers(-30, 30, channels) + rng.integers(-4, 5, (h, w, channels))
    return np.clip(px, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_encoder_and_decoder_frequencies_identical(rgb_model, shape, mode):
    tiny_rgb = rgb_model
    pixels = smooth_image(*shape, channels=3 if mode == "RGB" else 1)
    enc_trace, dec_trace = [], []
    payload, _ = codec.encode_pixels(pixels, mode, tiny_rgb, tile=16, chunk=4, trace=enc_trace)
    header = container.Header(mode, shape[1], shape[0], 16, 4, tiny_rgb.name, tiny_rgb.sha256, checksum(pixels))
    out = codec.decode_pixels(header, payload, tiny_rgb, trace=dec_trace)
    np.testing.assert_array_equal(out, pixels)
    enc, dec = np.concatenate(enc_trace), np.concatenate(dec_trace)
    assert enc.shape == dec.shape == (shape[0] * shape[1] * (3 if mode == "RGB" else 1), 256)
    assert np.array_equal(enc, dec)
    assert (enc.astype(np.int64).sum(axis=1) == 2**24 - 256).all() and enc.min() >= 0


def test_batch_composition_does_not_change_bytes(tiny_rgb, monkeypatch):
    pixels = smooth_image(45, 70)
    reference = codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16)[0]
    for encode_batch, freq_batch in ((7, 5), (1000, 33), (10**6, 10**6)):
        monkeypatch.setattr(codec, "ENCODE_BATCH", encode_batch)
        monkeypatch.setattr(codec, "FREQ_BATCH", freq_batch)
        assert codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16)[0] == reference


def test_thread_count_does_not_change_bytes(tiny_rgb, tmp_path):
    script = textwrap.dedent(f"""
        import sys, hashlib, numpy as np, torch
        sys.path[:0] = {sys.path!r}
        torch.set_num_threads(int(sys.argv[1]))
        from pixzip import codec, registry
        from test_exactness import smooth_image
        model = registry.load_file({str(tiny_rgb.path)!r})
        data = codec.compress_pixels(smooth_image(40, 90), "RGB", model, tile=32)[0]
        print(hashlib.sha256(data).hexdigest())
    """)
    digests = set()
    for threads in (1, 2):
        env = {"PYTHONPATH": str(Path(__file__).parent), "NUMBA_NUM_THREADS": str(threads)}
        run = subprocess.run([sys.executable, "-c", script, str(threads)], capture_output=True, text=True,
                             cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stderr
        digests.add(run.stdout.strip())
    assert len(digests) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(tiny_rgb):
    for shape in SHAPES:
        pixels = smooth_image(*shape)
        cpu = codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16)[0]
        gpu = codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16, device="cuda")[0]
        assert gpu == cpu
        for device in ("cpu", "cuda"):  # GPU-made files decode on the CPU and the reverse
            out, _ = codec.decompress_pixels(gpu, device=device, models=tiny_rgb)
            np.testing.assert_array_equal(out, pixels)
