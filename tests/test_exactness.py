"""The coding path is integer-exact: encoder and decoder compute the same frequencies, and the bytes do
not depend on thread count (tests/test_threads.py), batch composition or device."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from pixzip import codec, container, encoder, intformat, intnet
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
    header = container.Header(mode, shape[1], shape[0], 16, 4, tiny_rgb.name, tiny_rgb.sha256, checksum(pixels),
                              version=3)
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
        monkeypatch.setattr(encoder, "ENCODE_BATCH", encode_batch)
        monkeypatch.setattr(encoder, "FREQ_BATCH", freq_batch)
        assert codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16)[0] == reference


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(rgb_model):
    """Every architecture (rgb_model's fixtures: 8- and 16-bit streams, wide first layers, the recurrent and
    multi-scale models) codes the same bytes on CUDA as on the CPU, and decodes them on either."""
    for shape in SHAPES:
        pixels = smooth_image(*shape)
        cpu = codec.compress_pixels(pixels, "RGB", rgb_model, tile=16)[0]
        gpu = codec.compress_pixels(pixels, "RGB", rgb_model, tile=16, device="cuda")[0]
        assert gpu == cpu
        for device in ("cpu", "cuda"):  # GPU-made files decode on the CPU and the reverse
            out, _ = codec.decompress_pixels(gpu, device=device, models=rgb_model)
            np.testing.assert_array_equal(out, pixels)


@given(st.lists(st.integers(-intformat.WIDE_WEIGHT_MAX, intformat.WIDE_WEIGHT_MAX), min_size=1, max_size=50))
def test_wide_weights_split_into_int8_halves(values):
    w = torch.tensor(values)
    high, low = intformat.split_wide(w)
    assert (256 * high + low == w).all()
    assert high.abs().max() <= 64 and low.min() >= -128 and low.max() <= 127


@pytest.mark.parametrize("fixture", ["tiny_residual", "tiny_multiscale_rowlstm"])
def test_wide_first_layers_are_exercised(request, fixture):
    """These models' first layers need the two-matmul path and their output layers are wide too (the
    round-trip and encoder/decoder tests use them); the others' stay int8."""
    with np.load(request.getfixturevalue(fixture).path) as f:
        arrays = {k: f[k] for k in f.files if k.endswith(".weight")}
    wide = [k for k in arrays if k.endswith(("first.weight", "out.weight"))]
    assert len(wide) >= 2 and all(np.abs(arrays[k]).max() > 127 for k in wide)
    assert all(np.abs(v).max() <= 127 for k, v in arrays.items() if k not in wide)


@pytest.mark.parametrize("change, message", [
    (lambda a: a["first.weight"].__setitem__((0, 0, 0, 0), intformat.WIDE_WEIGHT_MAX + 1), "weights beyond"),
    (lambda a: a["inner0.bias"].__setitem__(0, 2**24), "exact float32"),  # an int8 layer
    (lambda a: a["first.bias"].__setitem__(0, 2**24), "exact float32"),  # each of a wide layer's halves
])
def test_loading_refuses_weights_that_could_round(tiny_residual, change, message):
    arrays = {k: v.copy() for k, v in tiny_residual.network.arrays.items()}
    intnet.IntegerPixelCNN(tiny_residual.config, arrays)  # as exported: fine
    change(arrays)
    with pytest.raises(ValueError, match=message):
        intnet.IntegerPixelCNN(tiny_residual.config, arrays)


def test_wide_layer_sums_must_fit_int32(tmp_path):
    """Halves that are each exact in float32 can still overflow the combined int32 accumulator: a 15x15
    first layer (1,350 weights per output) of 256 x 63 each passes 2^31 with high halves summing below 2^24."""
    from .conftest import make_model

    model = make_model(tmp_path, residual_inputs=True, first_weight_bits=15, first_kernel=15)
    arrays = {k: v.copy() for k, v in model.network.arrays.items()}
    arrays["first.weight"][0] = 256 * 63
    n = arrays["first.weight"][0].size
    assert n * 63 * 128 < 2**24 and n * 256 * 63 * 128 >= 2**31
    with pytest.raises(ValueError, match="exact int32"):
        intnet.IntegerPixelCNN(model.config, arrays)


def test_wide_output_layer_sums_must_fit_float32(tmp_path):
    """The softmax sums the output layer in float32 over whole weights, wide or not (pixzip.softmax): a
    12-bit output layer whose sums could pass 2^24 is refused, though each int8 half of it would fit."""
    from .conftest import make_model

    model = make_model(tmp_path, hidden=48, out_weight_bits=12)
    arrays = {k: v.copy() for k, v in model.network.arrays.items()}
    own = model.network.masked_weight("out")[0, :, 0, 0] != 0  # output 0's 16 weights of its own group
    arrays["out.weight"][0, own.numpy(), 0, 0] = 2047
    bias = 2**24 - 16 * 2047 * 128  # the whole sum reaches 2^24; each half's (high |w| = 8) stays far below
    arrays["out.bias"][0] = bias
    with pytest.raises(ValueError, match="layer out can exceed exact float32"):
        intnet.IntegerPixelCNN(model.config, arrays)
    arrays["out.bias"][0] = 0
    intnet.IntegerPixelCNN(model.config, arrays)  # the same weights alone fit


@pytest.mark.parametrize("arch, config", [
    ("pixelcnn", {}),
    ("pixelcnn", {"residual_inputs": True, "first_weight_bits": 15}),
    ("pixelcnn", {"residual_inputs": True, "first_weight_bits": 15, "channel_scales": True}),
    ("rowlstm", {"residual_inputs": True, "first_weight_bits": 12, "channel_scales": True}),
    ("diagbilstm", {"channel_scales": True}),
    ("multiscale", {"residual_inputs": True, "first_weight_bits": 15, "cond_hidden": 6, "channel_scales": True}),
    ("pixelcnn", {"stream_bits": 16}),
    ("pixelcnn", {"residual_inputs": True, "first_weight_bits": 15, "channel_scales": True, "stream_bits": 16}),
    ("rowlstm", {"channel_scales": True, "stream_bits": 16}),
    ("multiscale", {"residual_inputs": True, "cond_hidden": 6, "channel_scales": True, "stream_bits": 16}),
    ("pixelcnn", {"residual_inputs": True, "first_weight_bits": 15, "channel_scales": True, "stream_bits": 16,
                  "out_weight_bits": 12}),
    ("rowlstm", {"out_weight_bits": 10}),
    ("pixelcnn", {"residual_inputs": True, "first_weight_bits": 15, "channel_scales": True, "stream_bits": 16,
                  "out_weight_bits": 12, "joint_channels": True}),
])
def test_integer_model_codes_what_training_predicts(tmp_path, arch, config):
    """The quantization-aware float model (what training optimizes) and the exported integer model (what
    files cost) agree: the integer arithmetic, wide layers included, is the one training simulates."""
    from pixzip import registry
    from pixzip.train import nll_bits
    from .conftest import calibrated_model

    model = calibrated_model(0, arch, **config)
    if config.get("channel_scales"):  # the per-feature scales really differ
        stream = (model.full if arch == "multiscale" else model).stream_scales
        assert len(stream.unique()) > stream.numel() // 2
    file = tmp_path / "m.npz"
    registry.save_model(file, "m", arch, model.config, registry.ARCHITECTURES[arch].export(model))
    pixels = smooth_image(40, 48)
    with torch.no_grad():
        x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
        trained = float(nll_bits(model, x, model.config.predictor)) * pixels.size
    coded = codec.encode_pixels(pixels, "RGB", registry.load_file(file), sharpen=False)[1]  # the model's own
    assert abs(coded - trained) < 1e-3 * trained


@pytest.mark.parametrize("per_feature", [False, True])
def test_quantized_layer_approximates_the_float_layer(per_feature):
    """A layer on integer inputs (one scale, or one per input feature folded into the weights) rescaled
    to integer outputs (one scale per output) stays within 2 % of the float layer's range."""
    from pixzip.pixelcnn import MaskedConv

    torch.manual_seed(0)
    conv = MaskedConv(12, 12, 3, 3, "B")
    spread = torch.logspace(-1, 1, 12)[torch.randperm(12)]  # features of very different ranges
    a = torch.randn(2, 12, 9, 9).relu() * spread[None, :, None, None]
    top = a.amax(dim=(0, 2, 3)) if per_feature else a.max()
    s_in = top / 127
    s_out = torch.full((12,), 0.05)
    with torch.no_grad():
        q = conv(torch.floor(a / (s_in[None, :, None, None] if per_feature else s_in) + 0.5),
                 (s_in if per_feature else float(s_in), s_out, -10**6, 10**6))
        exact = conv(a) / s_out[None, :, None, None]
    assert (q - exact).abs().max() < 0.02 * exact.abs().max()
