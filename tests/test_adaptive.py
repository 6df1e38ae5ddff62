"""The adaptive stage (pixzip.adaptive): encoder and decoder compute the same probability for every binary
decision (traced, not only round trips), on every architecture and every kind of content; its tables are the
same on every machine; its state is per call, never shared."""
import threading
from decimal import Decimal, getcontext

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pixzip import adaptive, codec, container, contexts, decoder, modes
from pixzip.image import checksum

from tests.test_exactness import smooth_image


def contents(h: int, w: int, channels: int, kind: str, seed: int = 0) -> np.ndarray:
    """Test images of a kind: photo-like, screenshot-like, constant, noise, stripes, checkerboard, palette,
    repeated tiles."""
    rng = np.random.default_rng(seed)
    if kind == "photo":
        return smooth_image(h, w, channels, seed)
    if kind == "constant":
        return np.full((h, w, channels), rng.integers(0, 256), dtype=np.uint8)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    if kind == "stripes":
        return np.broadcast_to((np.arange(w) // 3 % 2 * 200)[None, :, None], (h, w, channels)).astype(np.uint8)
    if kind == "checkerboard":
        y, x = np.mgrid[0:h, 0:w]
        return np.repeat(((x + y) % 2 * 255).astype(np.uint8)[:, :, None], channels, axis=2)
    if kind == "palette":
        colours = rng.integers(0, 256, (5, channels), dtype=np.uint8)
        return colours[rng.integers(0, 5, (h, w))]
    if kind == "screenshot":  # text-like glyph blocks in two colours on a background
        px = np.full((h, w, channels), 30, dtype=np.uint8)
        glyphs = rng.random((h // 2 + 1, w // 2 + 1)) < 0.3
        px[np.kron(glyphs, np.ones((2, 2), bool))[:h, :w]] = 220
        return px
    if kind == "tiles":
        tile = rng.integers(0, 256, (6, 5, channels), dtype=np.uint8)
        return np.tile(tile, (h // 6 + 1, w // 5 + 1, 1))[:h, :w]
    raise ValueError(kind)


KINDS = ["photo", "constant", "noise", "stripes", "checkerboard", "palette", "screenshot", "tiles"]


def traced_round_trip(model, pixels: np.ndarray, mode: str, tile: int = 16, chunk: int = 4, side=None,
                      version: int = adaptive.LATEST):
    """Encode and decode adaptively (the stage of format `version`) with traces: (decoded pixels, encoder
    trace, decoder trace, payload)."""
    enc_trace, dec_trace = [], []
    payload, _ = codec.encode_pixels(pixels, mode, model, tile=tile, chunk=chunk, trace=enc_trace, adapt=True,
                                     side=side, stage=version)
    h, w = pixels.shape[:2]
    header = container.Header(mode, w, h, tile, chunk, model.name, model.sha256, checksum(pixels), version=version)
    out = codec.decode_pixels(header, payload, model, trace=dec_trace, side=side)
    return out, np.concatenate(enc_trace), np.concatenate(dec_trace), payload


VERSIONS = sorted(adaptive.SETTINGS)  # every format version's stage: 4 to 7


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (20, 33)])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_encoder_and_decoder_decisions_identical_every_architecture(rgb_model, shape, mode):
    """The latest stage with every architecture (the older stage differs only in settings: every content below)."""
    pixels = smooth_image(*shape, channels=3 if mode == "RGB" else 1)
    out, enc, dec, _ = traced_round_trip(rgb_model, pixels, mode)
    np.testing.assert_array_equal(out, pixels)
    assert enc.shape == dec.shape == (pixels.size, adaptive.MAX_DECISIONS)
    assert np.array_equal(enc, dec)
    assert (enc[:, 0] >= 1).all() and enc.max() < adaptive.PROB_ONE


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", VERSIONS)
def test_encoder_and_decoder_decisions_identical_every_content(tiny_residual, kind, version):
    pixels = contents(37, 45, 3, kind)
    out, enc, dec, _ = traced_round_trip(tiny_residual, pixels, "RGB", version=version)
    np.testing.assert_array_equal(out, pixels)
    assert np.array_equal(enc, dec)


def test_the_stage_learns_repetition(tiny_residual):
    """Repeated tiles cost far less adaptively than with the network alone (it cannot know they repeat)."""
    pixels = contents(64, 64, 3, "tiles")
    plain = len(codec.encode_pixels(pixels, "RGB", tiny_residual, tile=32)[0])
    adapted = len(codec.encode_pixels(pixels, "RGB", tiny_residual, tile=32, adapt=True)[0])
    assert adapted < plain / 4


@pytest.mark.parametrize("version", VERSIONS)
def test_an_earlier_plane_is_context(tiny_gray, version):
    """A plane equal to the plane before it (alpha = grey) costs almost nothing given that plane as context."""
    grey = smooth_image(48, 48, channels=1, seed=3)
    alone = len(codec.encode_pixels(grey, "L", tiny_gray, tile=16, adapt=True, stage=version)[0])
    repeated, _ = codec.encode_pixels(grey, "L", tiny_gray, tile=16, adapt=True, side=grey, stage=version)
    assert len(repeated) < alone / 5
    out, enc, dec, _ = traced_round_trip(tiny_gray, grey, "L", side=grey, version=version)
    np.testing.assert_array_equal(out, grey)
    assert np.array_equal(enc, dec)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), h=st.integers(1, 24), w=st.integers(1, 24), seed=st.integers(0, 2**16),
       mode=st.sampled_from(["RGB", "RGBA", "LA", "L", "P"]))
def test_hostile_content_round_trips(tiny_residual, kind, h, w, seed, mode):
    from PIL import Image

    channels = {"RGB": 3, "RGBA": 4, "LA": 2, "L": 1, "P": 1}[mode]
    px = contents(h, w, channels, kind, seed)
    if mode == "RGBA" and seed % 2:  # alpha equal to a colour plane
        px[:, :, 3] = px[:, :, 0]
    image = Image.fromarray(px.squeeze(2) if channels == 1 else px, None if mode == "P" else mode)
    if mode == "P":
        image = image.convert("P")
    data, _ = codec.compress_planes(modes.split(image), tiny_residual, tile=8, chunk=3)
    assert data[4] == container.VERSION == adaptive.LATEST
    back = codec.decompress_planes(data, models=tiny_residual)
    for a, b in zip(back.planes, modes.split(image).planes):
        np.testing.assert_array_equal(a, b)


def test_squash_table_is_exact_and_far_from_rounding():
    """The float64-built table equals exact decimal arithmetic, and no entry is within 10^-4 of a rounding
    boundary: any libm's exp() (errors ~10^-16) builds the same table."""
    getcontext().prec = 30
    xs = range(-adaptive.STRETCH_MAX, adaptive.STRETCH_MAX + 1)
    exact = [Decimal(adaptive.PROB_ONE) / (1 + (Decimal(-x) / adaptive.STRETCH_ONE).exp()) for x in xs]
    margins = [abs(e - int(e) - Decimal("0.5")) for e in exact]
    assert min(margins) > Decimal("0.0001")
    rounded = np.clip([int(e.to_integral_value()) for e in exact], 1, adaptive.PROB_ONE - 1)
    np.testing.assert_array_equal(adaptive.SQUASH, rounded)
    assert (np.diff(adaptive.STRETCH) >= 0).all()


def test_raw_bits_round_trip_and_a_short_payload_is_refused():
    values = np.random.default_rng(0).integers(0, 256, 500)
    enc = adaptive.Encoder()
    enc.push_raw(values, 8)
    payload = enc.finish()
    np.testing.assert_array_equal(adaptive.Decoder(payload).pop_raw(500, 8), values)
    with pytest.raises(ValueError, match="ended long before"):
        adaptive.Decoder(payload[:100]).pop_raw(5000, 8)


def test_state_is_not_shared_between_threads(tiny_residual):
    """Two images coded at once in two threads (the kernels release the GIL) give the bytes they give alone:
    state kept anywhere but in each coder's own arrays would mix them."""
    images = [contents(40, 50, 3, "screenshot", 1), contents(40, 50, 3, "photo", 2)]
    alone = [codec.encode_pixels(px, "RGB", tiny_residual, tile=16, adapt=True)[0] for px in images]
    together = [None, None]

    def run(k):
        for _ in range(3):
            together[k] = codec.encode_pixels(images[k], "RGB", tiny_residual, tile=16, adapt=True)[0]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="the parts decoder needs two threads")
@pytest.mark.parametrize("model_name", ["tiny_residual", "tiny_multiscale"])
@pytest.mark.parametrize("kind", ["photo", "screenshot"])
def test_parts_decode_as_one_part(request, model_name, kind, monkeypatch):
    """The decoder's parts (pixzip.decoder.parts: a chunk's tiles side by side, the stage on a worker thread,
    one request behind) decode what a one-part decoder decodes, decision for decision, on tiles of unequal
    sizes (the image's edges); and the stage did run on the worker."""
    model = request.getfixturevalue(model_name)
    pixels = contents(21, 27, 3, kind, 3)  # 3 x 4 tiles of 8 x 8, the last row and column smaller: one chunk
    payload, _ = codec.encode_pixels(pixels, "RGB", model, tile=8, chunk=64, adapt=True)
    header = container.Header("RGB", 27, 21, 8, 64, model.name, model.sha256, checksum(pixels))
    where, pop = [], adaptive.Decoder.pop
    monkeypatch.setattr(adaptive.Decoder, "pop", lambda *a: where.append(threading.current_thread()) or pop(*a))
    traces = {}
    for n in (1, decoder.PARTS):
        monkeypatch.setattr(decoder, "PARTS", n)
        traces[n] = []
        np.testing.assert_array_equal(codec.decode_pixels(header, payload, model, trace=traces[n]), pixels)
    assert np.array_equal(np.concatenate(traces[1]), np.concatenate(traces[decoder.PARTS]))
    assert any(t is not threading.main_thread() for t in where)


def test_heat_map_costs_are_the_adaptive_stage_bits(tiny_residual):
    """The per-pixel costs (the bit heat map's) add up to the adaptive stage's ideal bits, less the tiles'
    8-bit sharpness, and are well below the network's own on content the stage learns."""
    pixels = contents(40, 50, 3, "tiles")
    costs, plain_costs = np.zeros((40, 50)), np.zeros((40, 50))
    _, ideal = codec.encode_pixels(pixels, "RGB", tiny_residual, tile=16, chunk=4, costs=costs, adapt=True)
    codec.encode_pixels(pixels, "RGB", tiny_residual, tile=16, chunk=4, costs=plain_costs)
    sharpness_bits = 8 * 12 * 3  # 12 tiles of 16 x 16, 3 channels
    assert abs(costs.sum() + sharpness_bits - ideal) < 1e-3 * ideal
    assert costs.sum() < plain_costs.sum() / 2


def test_lms_predictor_learns_a_linear_relation():
    """The LMS predictor (version 6) learns weights that predict a value which is a linear function of its
    inputs: after a few hundred subpixels its error is a small fraction of the value's spread."""
    rng = np.random.default_rng(0)
    true = np.zeros(contexts.LMS_INPUTS)
    true[[0, 1, 2, 10]] = [0.5, 0.75, -0.5, 0.25]  # W, N, NW and the channel before carried over from W
    lms = np.zeros((adaptive.MAX_CHANNELS, contexts.LMS_INPUTS), dtype=np.int64)
    errors = []
    for _ in range(600):
        d = rng.integers(-40, 41, contexts.LMS_INPUTS).astype(np.int64)
        target = int(round(float(true @ d)))
        p = contexts._lms_predict(lms, 1, d)
        errors.append(abs(p / (1 << contexts.LMS_SHIFT) - target))
        contexts._lms_learn(lms, 1, d, target, p, adaptive.SETTINGS[6][10])
    assert np.mean(errors[:20]) > 10 and np.mean(errors[-100:]) < 1.5
    assert not lms[[0, 2]].any()  # the other channels' weights untouched


def test_stale_kernel_caches_are_dropped():
    """A cached compiled kernel older than any of pixzip's sources is deleted at import (numba checks only
    the kernel's own file; see pixzip._drop_stale_kernel_caches); a newer one is kept."""
    import os
    from pathlib import Path

    import pixzip

    cache = Path(pixzip.__file__).parent / "__pycache__"
    cache.mkdir(exist_ok=True)
    stale, fresh = cache / "zz_test_stale.nbi", cache / "zz_test_fresh.nbi"
    try:
        for f in (stale, fresh):
            f.write_bytes(b"")
        os.utime(stale, (0, 0))
        os.utime(fresh, (2**40, 2**40))
        pixzip._drop_stale_kernel_caches()
        assert not stale.exists() and fresh.exists()
    finally:
        stale.unlink(missing_ok=True)
        fresh.unlink(missing_ok=True)


def test_moved_distribution_is_the_network_s_at_a_new_centre():
    """Version 7's moved distributions (adaptive._moved_frequency): the network's frequencies moved by `at`
    eighths of a level, whole levels exactly, fractions interpolated, the total unchanged."""
    rng = np.random.default_rng(1)
    freqs = rng.integers(0, 1000, (1, 256)).astype(np.float32)
    freqs[0, 0] = 50_000  # the peak at residual 0
    moved = lambda at: np.array([adaptive._moved_frequency(freqs, 0, r, at) for r in range(256)])  # noqa: E731
    plain = 8 * (freqs[0].astype(np.int64) + 1)
    np.testing.assert_array_equal(moved(0), plain)
    np.testing.assert_array_equal(moved(3 * 8), np.roll(plain, 3))  # 3 levels up: the peak at residual 3
    np.testing.assert_array_equal(moved(-2 * 8), np.roll(plain, -2))
    np.testing.assert_array_equal(moved(4), (np.roll(plain, 1) + plain) // 2)  # half a level: between
    for at in (-512, -13, 5, 511):
        assert moved(at).sum() == plain.sum()
