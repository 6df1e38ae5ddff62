"""Causality of every model configuration (van den Oord et al. 2016, section 3.4 masks): the distribution of
subpixel k depends on no subpixel at or after k in coding order, and does use the intended context - rows
above, pixels to the left, and earlier channels of the same pixel."""
import pytest
import torch

from pixzip.pixelcnn import PixelCNN, PixelCNNConfig
from pixzip.pixelrnn import DiagonalBiLSTMConfig, RowLSTMConfig
from pixzip.train import MODELS, arch_of

# Wide enough that no channel group's ReLUs are all closed at the probed pixel of a random model.
CONFIGS = [
    PixelCNNConfig(hidden=48, blocks=2),
    PixelCNNConfig(hidden=30, blocks=1, first_kernel=3),
    PixelCNNConfig(channels=1, hidden=16, blocks=2),
    PixelCNNConfig(hidden=36, blocks=2, predictor="none"),
    PixelCNNConfig(hidden=48, blocks=2, residual_inputs=True),
    PixelCNNConfig(channels=1, hidden=16, blocks=1, residual_inputs=True),
    PixelCNNConfig(hidden=48, blocks=2, joint_channels=True),
    PixelCNNConfig(hidden=48, blocks=2, residual_inputs=True, joint_channels=True),
    RowLSTMConfig(hidden=48, blocks=2),
    RowLSTMConfig(hidden=36, blocks=2, residual_inputs=True, first_kernel=3),
    RowLSTMConfig(channels=1, hidden=16, blocks=2, kernel=5),
    DiagonalBiLSTMConfig(hidden=48, blocks=2),
    DiagonalBiLSTMConfig(hidden=36, blocks=2, residual_inputs=True, first_kernel=3),
    DiagonalBiLSTMConfig(channels=1, hidden=16, blocks=2),
]
IDS = [f"{arch_of(c)}-c{c.channels}h{c.hidden}k{c.first_kernel}{c.kernel}{c.predictor}{'-res' * c.residual_inputs}"
       f"{'-joint' * c.joint_channels}" for c in CONFIGS]


def input_gradient(model: PixelCNN, x: torch.Tensor, i: int, j: int, c: int) -> torch.Tensor:
    """|d logits(i, j, c) / d x| for every subpixel: (C, H, W)."""
    x = x.clone().requires_grad_(True)
    model(x)[0, c, :, i, j].sum().backward()
    return x.grad[0].abs()


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_no_dependence_on_future_subpixels(config, quantized):
    torch.manual_seed(0)
    model = MODELS[arch_of(config)](config)
    h = w = 9
    x = torch.randint(0, 256, (1, config.channels, h, w)).float()
    if quantized:
        model.calibrate([x])
    for i, j in [(0, 0), (4, 4), (8, 8), (3, 0), (0, 8)]:
        for c in range(config.channels):
            g = input_gradient(model, x, i, j, c)  # (C, H, W)
            future = torch.zeros_like(g, dtype=torch.bool)
            future[:, i, j + 1 :] = True
            future[:, i + 1 :, :] = True
            future[c:, i, j] = True  # this subpixel and later channels of the same pixel
            if config.joint_channels:  # the network sees none of its own pixel (the predictor does)
                future[:, i, j] = True
            if not quantized:
                assert g[future].max() == 0, f"subpixel ({i},{j},{c}) sees the future"
            else:  # straight-through gradients leak nothing either: check with a real perturbation
                with torch.no_grad():
                    base = model(x)[0, c, :, i, j]
                    y = x.clone()
                    y[future.unsqueeze(0)] = 255 - y[future.unsqueeze(0)]
                    assert torch.equal(model(y)[0, c, :, i, j], base)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_intended_context_is_used(config):
    torch.manual_seed(0)
    model = MODELS[arch_of(config)](config)
    x = torch.randint(0, 256, (1, config.channels, 9, 9)).float()
    i, j = 4, 4
    with torch.no_grad():
        base = model(x)[0, :, :, i, j]  # (C, 256)

        def changes(c: int, ci: int, y: int, xx: int) -> bool:
            """Does flipping subpixel (y, xx, ci) change the distribution of subpixel (i, j, c)?"""
            z = x.clone()
            z[0, ci, y, xx] = 255 - z[0, ci, y, xx]
            return not torch.equal(model(z)[0, c, :, i, j], base[c])

        for c in range(config.channels):
            assert any(changes(c, ci, i - 1, j) for ci in range(config.channels)), "the pixel above is not seen"
            assert any(changes(c, ci, i, j - 1) for ci in range(config.channels)), "the pixel to the left is not seen"
            assert any(changes(c, ci, i - 1, j + 1) for ci in range(config.channels)), "above right is not seen"
            for earlier in range(c):
                sees = changes(c, earlier, i, j)
                if config.joint_channels:  # G and B see R (and G) through the predictor only
                    assert not sees, f"channel {c} sees channel {earlier} of its own pixel"
                else:
                    assert sees, f"channel {c} does not see channel {earlier} of its own pixel"


def test_row_lstm_sees_the_triangle_above():
    """The recurrence over rows carries context from far above, beyond any kernel: with a 3x3 stem and two
    layers, a convolutional network sees 3 rows up; the Row LSTM sees the whole triangle (section 3.1)."""
    torch.manual_seed(0)
    config = RowLSTMConfig(hidden=36, blocks=2, first_kernel=3)
    model = MODELS["rowlstm"](config)
    x = torch.randint(0, 256, (1, 3, 12, 12)).float()
    i, j = 11, 4
    with torch.no_grad():
        base = model(x)[0, 0, :, i, j]
        for y, xx in [(0, 4), (2, 8), (5, 0), (3, 10)]:  # 6 to 11 rows up, up to i - y columns to the right
            z = x.clone()
            z[0, :, y, xx] = 255 - z[0, :, y, xx]
            assert not torch.equal(model(z)[0, 0, :, i, j], base), f"({y}, {xx}) is not seen from ({i}, {j})"


@pytest.mark.parametrize("quantized", [False, True])
def test_diagonal_bilstm_has_no_blind_spot(quantized):
    """The right-to-left LSTM, shifted down a row, brings the far right of the rows above (section 3.2),
    which the Row LSTM's triangle misses; and it brings nothing of the current row or below (the future)."""
    h, w, i, j = 8, 14, 5, 1
    far = [(i - 1, w - 1), (i - 3, w - 2)]  # right of the stem's window and of the Row LSTM's triangle
    for arch, sees in (("diagbilstm", True), ("rowlstm", False)):
        torch.manual_seed(0)
        config = (DiagonalBiLSTMConfig if arch == "diagbilstm" else RowLSTMConfig)(hidden=36, blocks=2, first_kernel=3)
        model = MODELS[arch](config)
        x = torch.randint(0, 256, (1, 3, h, w)).float()
        if quantized:
            model.calibrate([x])
        with torch.no_grad():
            base = model(x)[0, :, :, i, j]
            for y, xx in far:
                z = x.clone()
                z[0, 0, y, xx] = 255 - z[0, 0, y, xx]  # R, which G and B of that pixel see
                assert (not torch.equal(model(z)[0, :, :, i, j], base)) == sees, (arch, y, xx)


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("base, levels", [("pixelcnn", 1), ("rowlstm", 1), ("diagbilstm", 1), ("pixelcnn", 2)])
def test_multiscale_sees_the_small_image_and_no_other_future(quantized, channels, base, levels):
    """At every level, the conditional stage's distribution of a pixel it codes depends on no later pixel it
    codes, and does depend on later pixels of its small image (coded first, seen through the upsampling
    network)."""
    from pixzip.multiscale import MultiScale, MultiScaleConfig, known, subsample

    torch.manual_seed(0)
    config = MultiScaleConfig(channels=channels, hidden=12 * channels, blocks=2, cond_hidden=8, base=base,
                              levels=levels)
    model = MultiScale(config)
    x = torch.randint(0, 256, (1, channels, 13, 15)).float()
    if quantized:
        model.calibrate([x])
    with torch.no_grad():
        for level in range(levels):
            _check_conditional_stage(model, x, known(*x.shape[2:]))
            model, x = model.small, subsample(x)  # the next level codes the small image
        assert not isinstance(model, MultiScale)


def _check_conditional_stage(model, x: torch.Tensor, small: torch.Tensor) -> None:
    channels, h, w = x.shape[1:]
    for i, j in [(0, 1), (h // 2, w // 2 - 1), (h - 1, w - 2), (h // 2 - 1, 0), (1, w - 1)]:
        for c in range(channels):
            ref = model(x)[1][0, c, :, i, j]
            future = torch.zeros(channels, h, w, dtype=torch.bool)
            future[:, i, j + 1 :] = True
            future[:, i + 1 :] = True
            future[c:, i, j] = True
            y = x.clone()
            y[0][future & ~small] = 255 - y[0][future & ~small]
            assert torch.equal(model(y)[1][0, c, :, i, j], ref), f"({i}, {j}, {c}) sees a later coded pixel"
            y = x.clone()
            y[0][future & small] = 255 - y[0][future & small]
            assert not torch.equal(model(y)[1][0, c, :, i, j], ref), f"({i}, {j}, {c}) misses the small image"
