"""Multi-Scale PixelRNN (van den Oord et al. 2016, section 3.4) on any of pixzip's single-scale networks -
the PixelCNN, the Row LSTM or the Diagonal BiLSTM (`MultiScaleConfig.base`): the float models that are
trained, with their quantization-aware mode (pixzip.intscale is the integer side).

For lossless coding the small image is an exact subsample: the pixels at even rows and even columns of a
tile (`subsample`), s = ceil(size / 2) on a side. It is coded first by an unconditional network of the base
architecture (`small`); then a conditional one (`full`) codes the other three quarters of the pixels in
raster order, never the subsampled ones again. Total bits = bits(small) + bits(rest | small).
With `levels` > 1 the small image is itself coded by a multi-scale model of one level fewer (its own small
image is every fourth pixel of the tile, and so on): the paper's "several levels may be stacked".

The conditional network sees the whole small image through an upsampling network of unmasked
convolutions - it is known before any of the rest is coded:
    small (B, C, s, s) -> 3x3 conv, relu (cond_small) -> nearest 2x upsampling, cropped to H x W
    -> 3x3 conv, relu (cond_full) -> c (B, Fc, H, W)
and adds a 1x1 projection of c (proj[k]) into its residual stream after the first layer and after every
block (a PixelCNN block or an LSTM layer with its 1x1 output): "features added into every layer". Its own
masked layers see the full-resolution pixels causally, the subsampled ones included (they are known, but
the mask keeps the network's view the same as the decoder's, which writes them as their turn in raster
order comes).
"""
import math
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import registry
from .intformat import ACT_MAX, INPUT_SCALE, MultiScaleConfig  # noqa: F401 (MultiScaleConfig: its old home)
from .pixelcnn import MaskedConv, PixelCNN, _collect
from .pixelrnn import DiagonalBiLSTM, RowLSTM
from .predictor import image_residuals

def subsample(x: torch.Tensor) -> torch.Tensor:
    """The small image: (..., H, W) -> (..., ceil(H / 2), ceil(W / 2)), even rows and columns."""
    return x[..., ::2, ::2]


def known(height: int, width: int, device=None) -> torch.Tensor:
    """(H, W) bool: the pixels the small image holds, which the conditional stage does not code."""
    rows = torch.arange(height, device=device) % 2 == 0
    cols = torch.arange(width, device=device) % 2 == 0
    return rows[:, None] & cols[None, :]


class Conditional(nn.Module):
    """Makes a single-scale network (the next class in the MRO) conditional on the small image: the
    upsampling network, the projections, and `add_condition`, the hook its forward calls."""

    def __init__(self, config: MultiScaleConfig):
        super().__init__(config)
        c, f, fc = config.channels, config.hidden, config.cond_hidden
        self.cond_small = MaskedConv(c, fc, 3, 1, "none")
        self.cond_full = MaskedConv(fc, fc, 3, 1, "none")
        self.proj = nn.ModuleList(MaskedConv(fc, f, 1, 1, "none") for _ in range(config.blocks + 1))
        for conv in self.proj:
            conv.weight.data.mul_(0.1)
        self.register_buffer("cond_scales", torch.zeros(2))  # cond_small's and cond_full's outputs

    def features(self, x: torch.Tensor, stats: dict | None = None) -> torch.Tensor:
        """x (B, C, H, W) -> c (B, Fc, H, W) from its small image only: float, or once quantized integers
        in units of cond_scales[1]."""
        hh, ww = x.shape[2:]
        a0 = subsample(x.float()) - 128  # (B, C, s, s)
        up = lambda t: t.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[:, :, :hh, :ww]
        if not self.quantized:
            c1 = F.relu(self.cond_small(a0 * INPUT_SCALE))
            _collect(stats, "cond_small", c1)
            c2 = F.relu(self.cond_full(up(c1)))
            _collect(stats, "cond_full", c2)
            return c2
        s1, s2 = self.cond_scales.tolist()
        c1 = self.cond_small(a0, (INPUT_SCALE, s1, 0, ACT_MAX))
        return self.cond_full(up(c1), (s1, s2, 0, ACT_MAX))

    def add_condition(self, k: int, h: torch.Tensor, cond: torch.Tensor, stream: tuple | None = None) -> torch.Tensor:
        """The stream after the first layer (k = 0) or block k - 1, plus projection k of the features;
        quantization-aware with the stream's (unit, top) (PixelCNN.stream_format)."""
        if stream is None:
            return h + self.proj[k](cond)
        unit, top = stream
        return (h + self.proj[k](cond, (float(self.cond_scales[1]), unit, -top, top))).clamp(-top, top)

    def forward(self, x: torch.Tensor, stats: dict | None = None, cond=None) -> torch.Tensor:
        return super().forward(x, stats, self.features(x, stats))

    def _set_scales(self, tops: dict[str, float]) -> None:
        super()._set_scales(tops)
        self.cond_scales.copy_(torch.tensor([tops["cond_small"] / ACT_MAX, tops["cond_full"] / ACT_MAX]))


@lru_cache(maxsize=None)
def conditional_model(base: type) -> type:
    """The conditional version of a single-scale float model class (Conditional on top of it): a multi-scale
    model's full stage (pixzip.registry's Architecture.conditional_model). One class per base."""
    name = "Conditional" + base.__name__
    return type(name, (Conditional, base), {"__module__": __name__, "__qualname__": name})


ConditionalPixelCNN = conditional_model(PixelCNN)
ConditionalRowLSTM = conditional_model(RowLSTM)
ConditionalDiagonalBiLSTM = conditional_model(DiagonalBiLSTM)


class MultiScale(nn.Module):
    """The two stages. forward(x) -> (small image's logits (B, C, 256, s, s), or with levels > 1 its own
    pair; full logits (B, C, 256, H, W)); `bits` turns them into the code length."""

    def __init__(self, config: MultiScaleConfig):
        super().__init__()
        self.config = config
        base = registry.ARCHITECTURES[config.base]
        small = MultiScale if config.levels > 1 else base.model
        self.small = small(config.small_config())
        self.full = base.conditional_model(config)

    @property
    def quantized(self) -> bool:
        return self.full.quantized

    def forward(self, x: torch.Tensor) -> tuple:
        return self.small(subsample(x)), self.full(x)

    def calibrate(self, batches, quantile: float = 0.9999) -> None:
        batches = list(batches)
        self.small.calibrate([subsample(x) for x in batches], quantile)
        self.full.calibrate(batches, quantile)


def bits(logits: tuple, x: torch.Tensor, predictor: str) -> torch.Tensor:
    """Total code length in bits of x (B, C, H, W): the small image's every subpixel plus the rest's."""
    return _nats(logits, x, predictor) / math.log(2)


def _nats(logits, x: torch.Tensor, predictor: str) -> torch.Tensor:
    if not isinstance(logits, tuple):  # a single-scale network's (B, C, 256, H, W)
        return F.cross_entropy(logits.transpose(1, 2), image_residuals(x, predictor), reduction="sum")
    small_logits, full_logits = logits
    rest = F.cross_entropy(full_logits.transpose(1, 2), image_residuals(x, predictor), reduction="none")
    rest = rest.masked_fill(known(*x.shape[2:], device=x.device), 0)  # (B, C, H, W): the small image's coded already
    return _nats(small_logits, subsample(x), predictor) + rest.sum()
