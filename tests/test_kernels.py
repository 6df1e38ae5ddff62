"""The fused kernels compute exactly what their definitions say: the numba versions (CPU) against plain
torch versions (what CUDA runs) and against the written-out formulas, on random and extreme inputs."""
import numpy as np
import pytest
import torch

from pixzip import codec, kernels, softmax
from tests.test_exactness import SHAPES, smooth_image


def reference_frequencies(logits: torch.Tensor, table: torch.Tensor,
                          sharpness: torch.Tensor | None = None) -> torch.Tensor:
    """The integer softmax of pixzip.softmax written as whole-tensor torch operations."""
    d = (logits.amax(dim=1, keepdim=True) - logits).long()
    if sharpness is not None:
        d = (d * sharpness[:, None] + 16) >> 5
    d = d.clamp_(max=len(table) - 1)
    e = torch.take(table, d)
    total = e.sum(dim=1, keepdim=True, dtype=torch.float64)
    r = (total.reciprocal() * softmax.FREQ_TOTAL * (1 - 2.0**-20)).float()
    f = (e * r).floor_()
    f[:, 0] += softmax.FREQ_TOTAL - f.sum(dim=1)
    return f


@pytest.mark.parametrize("k", [0, 4, 7, 13])
def test_frequencies_match_the_formula(k):
    """Arbitrary logits (through the bias, one group per row), from near-uniform to one dominant symbol."""
    table = torch.from_numpy(softmax.exp_table(k)).float()
    gen = torch.Generator().manual_seed(k)
    spread = [1, 2**k, 2**(k + 4), 2**20]
    logits = torch.cat([torch.randint(-s, s + 1, (500, 256), generator=gen) for s in spread]).float()
    logits[0] = 0  # all equal
    logits[1, 17] = 2**22  # one symbol far above the rest
    n = len(logits)
    got = softmax.frequencies(np.zeros((n, 1), np.int8), np.arange(n), np.zeros((n, 1, 256), np.float32),
                              logits.numpy(), table.int().numpy())
    expect = reference_frequencies(logits, table).numpy()
    assert np.array_equal(got, expect)
    assert (expect.sum(axis=1) == softmax.FREQ_TOTAL).all() and expect.min() >= 0


def test_sharpness_scales_the_logit_differences():
    """Each row's sharpness a multiplies its logit differences by a / 32, rounded half up; 32 is the
    model's own distribution, bit for bit, and 0 the uniform one."""
    table = torch.from_numpy(softmax.exp_table(6)).float()
    gen = torch.Generator().manual_seed(8)
    logits = torch.randint(-2**12, 2**12, (1024, 256), generator=gen).float()
    sharpness = torch.cat([torch.arange(256), torch.randint(0, 256, (768,), generator=gen)])
    sharpness[-1] = 255
    n = len(logits)
    args = np.zeros((n, 1), np.int8), np.arange(n), np.zeros((n, 1, 256), np.float32)  # row i: group i
    got = softmax.frequencies(*args, logits.numpy(), table.int().numpy(), sharpness.numpy())
    assert np.array_equal(got, reference_frequencies(logits, table, sharpness).numpy())
    own = np.full(n, softmax.SHARPNESS_ONE)
    assert np.array_equal(softmax.frequencies(*args, logits.numpy(), table.int().numpy(), own),
                          softmax.frequencies(*args, logits.numpy(), table.int().numpy()))
    assert (np.ptp(got[sharpness.numpy() == 0][:, 1:], axis=1) == 0).all()  # uniform but for the remainder


def test_sharpness_fit_finds_the_factor_of_the_data():
    """Symbols drawn from the model's distribution with its logits times 0.6 in one tile and 1.5 in the
    other: the fit finds those factors (in 32nds, to within the noise of a sample)."""
    from pixzip import sharpness

    rng = np.random.default_rng(0)
    shift = 6
    logit = -np.abs(np.arange(256) - 100.0) * 0.8 * 2**shift  # a peaked distribution, in 2^-6 nats
    bias = np.tile(logit.astype(np.float32), (3, 1))
    weight = np.zeros((3, 1, 256), np.float32)
    n = 8 * 4000
    tile_of = np.repeat([0, 1], n // 2)
    symbols = np.empty((3, n), np.int64)
    for t, f in enumerate((0.6, 1.5)):
        p = np.exp(f * (logit - logit.max()) / 2**shift)
        symbols[:, tile_of == t] = rng.choice(256, (3, n // 2), p=p / p.sum())
    got = sharpness.fit(np.zeros((n, 3), np.int8), tile_of, [0, 1, 2], symbols, weight, bias, shift, 2)
    assert got.shape == (2, 3)
    assert (np.abs(got - np.array([[0.6 * 32] * 3, [1.5 * 32] * 3])) <= 1.5).all(), got


def test_output_layer_matches_a_matmul():
    """The fused output layer: group g's own features of each row times its weights, plus its bias."""
    gen = torch.Generator().manual_seed(5)
    features = torch.randint(0, 128, (300, 12), generator=gen).to(torch.int8)
    groups = torch.randint(0, 3, (300,), generator=gen)
    weight = torch.randint(-127, 128, (3, 4, 256), generator=gen).float()
    bias = torch.randint(-5000, 5000, (3, 256), generator=gen).float()
    table = torch.from_numpy(softmax.exp_table(6)).float()
    own = features.view(300, 3, 4)[torch.arange(300), groups].float()  # (N, 4) each row's own group
    logits = torch.einsum("nk,nks->ns", own, weight[groups]) + bias[groups]
    got = softmax.frequencies(features.numpy(), groups.numpy(), weight.numpy(), bias.numpy(), table.int().numpy())
    assert np.array_equal(got, reference_frequencies(logits, table).numpy())


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("dtype, top", [(torch.int8, 127), (torch.int16, 2**15 - 1)])  # 8- or 16-bit stream
@pytest.mark.parametrize("acc_dtype", [torch.int32, torch.float32])  # a wide layer's sums, or a float32 product's
def test_requant_numba_matches_torch(residual, dtype, top, acc_dtype, monkeypatch):
    gen = torch.Generator().manual_seed(1)
    acc = torch.randint(-2**23, 2**23, (300, 20), generator=gen, dtype=torch.int32).to(acc_dtype)
    multiplier = torch.randint(1, 2**20, (20,), generator=gen)
    offset = torch.randint(-2**40, 2**40, (20,), generator=gen)
    res = torch.randint(-top, top + 1, (300, 20), generator=gen).to(dtype) if residual else None
    for shift, lo in ((20, -top), (28, 0), (0, -top), (12, -top)):
        out = torch.empty(300, 20, dtype=dtype)
        got = kernels.requant(acc, multiplier, offset, shift, lo, top, res, out)
        y = ((acc.long() * multiplier + offset) >> shift).clamp(lo, top)  # the definition, floor shift
        expect = (y + res).clamp(lo, top) if residual else y
        assert torch.equal(got.long(), expect)
        monkeypatch.setattr(kernels, "USE_NUMBA", False)
        assert torch.equal(kernels.requant(acc, multiplier, offset, shift, lo, top, res, out.clone()), got)
        monkeypatch.setattr(kernels, "USE_NUMBA", True)


@pytest.mark.parametrize("dtype, shift", [(torch.int8, 0), (torch.int16, 8)])  # an 8- or 16-bit stream
def test_gather_and_scatter_numba_match_torch(dtype, shift, monkeypatch):
    gen = torch.Generator().manual_seed(2)
    buffer = torch.randint(-128, 128, (500, 6), generator=gen).to(torch.int8)
    pos, taps = torch.randint(80, 420, (77,), generator=gen), torch.tensor([-71, -70, -69, -1, 0])
    top = torch.iinfo(dtype).max
    values = torch.randint(-top, top + 1, (77, 12), generator=gen).to(dtype)[:, 3:9]  # a column slice
    if shift:  # rounding half up at the edges: relu 0, 1, 0, 0
        values[0, :4] = torch.tensor([127, 128, -128, -129])
    got = kernels.gather(buffer, pos, taps)
    targets = pos.unique()[:40]  # distinct rows
    scattered = buffer.clone()
    kernels.scatter_relu(values[:40], targets, scattered, col=0, shift=shift)
    relu = ((values[:40].long() + (1 << shift) // 2) // 2**shift).clamp(0, 127)  # the definition, rounding
    assert torch.equal(scattered[targets, :6].long(), relu)  # half up, then int8
    assert torch.equal(kernels.stream_relu(values[:40], shift).long(), relu)
    monkeypatch.setattr(kernels, "USE_NUMBA", False)
    assert torch.equal(kernels.gather(buffer, pos, taps), got)
    expect = buffer.clone()
    kernels.scatter_relu(values[:40], targets, expect, col=0, shift=shift)
    assert torch.equal(scattered, expect)


def test_portable_path_gives_the_same_bytes(rgb_model, monkeypatch):
    """The torch versions (the CUDA path) code the same bytes as the numba ones, decoding included."""
    for shape in SHAPES[2:5]:
        pixels = smooth_image(*shape)
        fast = codec.compress_pixels(pixels, "RGB", rgb_model, tile=16)[0]
        monkeypatch.setattr(kernels, "USE_NUMBA", False)
        assert codec.compress_pixels(pixels, "RGB", rgb_model, tile=16)[0] == fast
        np.testing.assert_array_equal(codec.decompress_pixels(fast, models=rgb_model)[0], pixels)
        monkeypatch.setattr(kernels, "USE_NUMBA", True)


def test_lstm_cell_numba_matches_torch(monkeypatch):
    """The fused LSTM cell equals its torch formulation, saturated gates and clamped cells included."""
    from pixzip.pixelrnn import gate_tables

    gen = torch.Generator().manual_seed(3)
    sigmoid, tanh = (torch.from_numpy(t) for t in gate_tables())
    acc = torch.randint(-2**23, 2**23, (200, 4 * 6), generator=gen, dtype=torch.int32)
    multiplier = torch.randint(1, 2**12, (24,), generator=gen)
    offset = torch.randint(-2**30, 2**30, (24,), generator=gen)
    c_prev = torch.randint(-(16 << 12), (16 << 12) + 1, (200, 6), generator=gen, dtype=torch.int32)
    h, c = kernels.lstm_cell(acc, multiplier, offset, 24, c_prev, sigmoid, tanh)
    assert h.dtype == torch.int8 and c.dtype == torch.int32
    assert h.abs().max() == 127 and c.abs().max() == 16 << 12  # the extremes are reached
    monkeypatch.setattr(kernels, "USE_NUMBA", False)
    h2, c2 = kernels.lstm_cell(acc, multiplier, offset, 24, c_prev, sigmoid, tanh)
    assert torch.equal(h, h2) and torch.equal(c, c2)


def _random_decoder(net, seed: int):
    """A bound decoder of an integer network for four 16 x 16 tiles whose buffers (conditioning features
    included) hold random activations, and its wavefront."""
    from pixzip.schedule import Layout, tiles, wavefront

    layout = Layout(16, net.reach, 4)
    bn = net.bind(layout, torch.device("cpu"), decoder=True)
    gen = torch.Generator().manual_seed(seed)
    bn.a0.copy_(torch.randint(-128, 128, bn.a0.shape, generator=gen, dtype=torch.int8))
    bn.relu_stack.copy_(torch.randint(0, 128, bn.relu_stack.shape, generator=gen, dtype=torch.int8))
    if hasattr(bn, "cond"):
        bn.cond.copy_(torch.randint(0, 128, bn.cond.shape, generator=gen, dtype=torch.int8))
    return bn, wavefront(layout, tiles(32, 32, 16), net.schedule_slope(16))


@pytest.mark.parametrize("fixture", ["tiny_rgb", "tiny_residual", "tiny_joint", "tiny_gray", "tiny_multiscale"])
def test_compiled_subpass_matches_layer_by_layer(fixture, request):
    """pixzip.subpass's one-call sub-pass writes exactly what group_pass and head write - the stream, every
    block's activations, the relu buffers, the head's output - for position counts that fill blocks of four
    and that do not, with and without the head, in every channel group (8- and 16-bit streams, a wide first
    layer, joint channels, grey, a multi-scale model's conditional network with its projections)."""
    net = request.getfixturevalue(fixture).network
    net = getattr(net, "full", net)  # a multi-scale model: its conditional network
    for n in (1, 3, 5, 16):  # part of a wavefront line of the four tiles (16 positions): independent
        (fused, schedule), (plain, _) = _random_decoder(net, n), _random_decoder(net, n)
        assert fused._compile() is not None
        pos = torch.from_numpy(schedule.flat[schedule.step(20)][:n])
        st_fused, st_plain = fused.state(n), plain.state(n)
        for g in range(net.groups):
            with_head = g != 1
            fused.decode_pass(g, pos, st_fused, with_head)
            plain.group_pass(g, pos, st_plain)
            if with_head:
                plain.head(st_plain["h"], g, out=st_plain["o"][:, plain.cols[g]])
            for key in ("h", "v", "o"):
                assert torch.equal(st_fused[key], st_plain[key]), (n, g, key)
            assert torch.equal(fused.relu_stack, plain.relu_stack), (n, g)
        assert st_fused["o"].abs().sum() > 0 and st_fused["h"].abs().sum() > 0  # not trivially equal


@pytest.mark.parametrize("inputs", [1, 2])
def test_write_pixels_and_medians_numba_match_torch(inputs, monkeypatch):
    """The predictor's compiled helpers equal their torch versions: writing decoded values (and their
    clamped prediction errors) into the buffers, and the MED predictions from them, on random pixels."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randint(0, 256, (400, 3), generator=gen, dtype=torch.int32)
    a0 = torch.randint(-128, 128, (400, 3 * inputs), generator=gen).to(torch.int8)
    pos = torch.randperm(300, generator=gen)[:50] + 30  # distinct rows with room for the taps
    taps = torch.tensor([-1, -21, -22])
    values = torch.randint(0, 256, (50,), generator=gen)
    pred = torch.randint(0, 256, (50,), generator=gen, dtype=torch.int32)
    results = []
    for numba_on in (True, False):
        monkeypatch.setattr(kernels, "USE_NUMBA", numba_on)
        xs, a0s = x.clone(), a0.clone()
        kernels.write_pixels(xs, a0s, pos, 1, values, pred, inputs)
        results.append((xs, a0s, kernels.medians(xs, pos, taps)))
    for got, expect in zip(*results):
        assert torch.equal(got, expect)
    xs, a0s, m = results[0]
    assert torch.equal(xs[pos, 1], values.int()) and torch.equal(a0s[pos, inputs].long(), values - 128)
    if inputs == 2:
        assert torch.equal(a0s[pos, 3].long(), (values - pred).clamp(-127, 127))
    assert 0 < (m != xs[pos + taps[0]]).sum() < m.numel()  # not always the left neighbour: MED picks
