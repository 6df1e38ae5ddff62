"""Round-trip properties: any image, any shape, comes back pixel for pixel."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pixzip import codec

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def images(draw, channels: int):
    """Noise, gradients, constant and few-colour images from 1x1 to 64x64."""
    h = draw(st.integers(1, 64))
    w = draw(st.integers(1, 64))
    kind = draw(st.sampled_from(["noise", "gradient", "constant", "few"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "noise":
        px = rng.integers(0, 256, (h, w, channels))
    elif kind == "gradient":
        y, x = np.mgrid[0:h, 0:w]
        a, b = rng.uniform(-8, 8, 2)
        px = (a * y + b * x + rng.integers(0, 256))[:, :, None] + rng.integers(-40, 40, channels)
    elif kind == "constant":
        px = np.broadcast_to(rng.integers(0, 256, channels), (h, w, channels))
    else:
        palette = rng.integers(0, 256, (rng.integers(2, 5), channels))
        px = palette[rng.integers(0, len(palette), (h, w))]
    return np.ascontiguousarray(np.clip(px, 0, 255).astype(np.uint8))


def roundtrip(pixels, mode, model, **options):
    data, report = codec.compress_pixels(pixels, mode, model, **options)
    out, out_mode = codec.decompress_pixels(data, models=model)
    assert out_mode == mode
    np.testing.assert_array_equal(out, pixels)
    return data, report


@SETTINGS
@given(pixels=images(3), tile=st.sampled_from([8, 13, 64]), chunk=st.sampled_from([1, 3, 256]))
def test_rgb_roundtrip(rgb_model, pixels, tile, chunk):
    roundtrip(pixels, "RGB", rgb_model, tile=tile, chunk=chunk)


@SETTINGS
@given(pixels=images(1), tile=st.sampled_from([8, 64]))
def test_gray_roundtrip_with_rgb_model(rgb_model, pixels, tile):
    roundtrip(pixels, "L", rgb_model, tile=tile)


@pytest.fixture(params=["tiny_gray", "tiny_rowlstm_gray", "tiny_diagbilstm_gray", "tiny_multiscale_gray",
                        "tiny_multiscale_diagbilstm_gray"])
def gray_model(request):
    return request.getfixturevalue(request.param)


@SETTINGS
@given(pixels=images(1))
def test_gray_roundtrip_with_gray_model(gray_model, pixels):
    roundtrip(pixels, "L", gray_model, tile=16)


def test_pil_api_roundtrip(tiny_rgb):
    from PIL import Image

    import pixzip

    rng = np.random.default_rng(1)
    for mode, shape in (("RGB", (9, 11, 3)), ("L", (9, 11))):
        image = Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8), mode=mode)
        data = pixzip.compress(image, model=tiny_rgb)
        back = pixzip.decompress(data, models=tiny_rgb)
        assert back.mode == mode and back.tobytes() == image.tobytes()


def test_pixel_costs_add_up_to_the_ideal_length(rgb_model):
    pixels = np.random.default_rng(2).integers(0, 256, (19, 23, 3)).astype(np.uint8)
    for sharpen in (False, True):
        costs = np.zeros(pixels.shape[:2])
        _, report = codec.compress_pixels(pixels, "RGB", rgb_model, tile=8, costs=costs, sharpen=sharpen)
        assert (costs > 0).all()
        # The rest is 8 bits for each tile's and channel's sharpness (3 x 3 tiles; a multi-scale model's
        # small images have tiles too), which belongs to no pixel.
        sharpness_symbols = (report.ideal_bits - costs.sum()) / 8
        assert sharpness_symbols == pytest.approx(round(sharpness_symbols), abs=1e-6)
        if sharpen:  # 27 a stage: the small images of a multi-scale model's levels have 3 x 3 tiles too
            assert round(sharpness_symbols) % 27 == 0 and sharpness_symbols > 0
        else:
            assert round(sharpness_symbols) == 0


@pytest.mark.parametrize("arch", ["rowlstm", "diagbilstm"])
def test_twelve_layer_pixelrnn_roundtrip(tmp_path, arch):
    """The paper's deepest PixelRNNs have 12 layers: the integer models and schedules take that depth."""
    from tests.conftest import make_model

    model = make_model(tmp_path, f"deep-{arch}", arch=arch, hidden=6, blocks=12)
    pixels = np.random.default_rng(4).integers(0, 256, (11, 13, 3)).astype(np.uint8)
    roundtrip(pixels, "RGB", model, tile=8)


def test_progress_rises_to_the_total(rgb_model):
    """Progress reports (pixels done, pixels total) that never go back and end at the total, for every
    architecture (a multi-scale model spreads its two stages over the image's pixels)."""
    pixels = np.random.default_rng(5).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    for direction in ("compress", "decompress"):
        seen = []
        if direction == "compress":
            data, _ = codec.compress_pixels(pixels, "RGB", rgb_model, tile=8, progress=lambda d, t: seen.append((d, t)))
        else:
            codec.decompress_pixels(data, models=rgb_model, progress=lambda d, t: seen.append((d, t)))
        assert seen[-1] == (600, 600)
        assert all(a[0] <= b[0] and b[1] == 600 for a, b in zip(seen, seen[1:]))
