"""The integer format: what a model file's integers mean, shared by training, export and the coding path.

The float models (pixzip.pixelcnn, pixzip.pixelrnn, pixzip.multiscale) are trained to compute exactly these
integers and export into them; the integer networks (pixzip.intnet, pixzip.intlstm, pixzip.intscale) run
them. Decoding needs this module and not the training code: its constants (activation ranges, weight
widths, the fixed point of the rescaling and of the LSTM cell), the causal masks, the gate tables, and the
config dataclasses stored with every model file. Changing anything here changes the format: the golden
files of tests/test_shipped.py say whether it did.
"""
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from .config import from_dict
from .predictor import PREDICTORS

# ---- activations, weights, rescaling -------------------------------------------------------------------
ACT_MAX = 127  # activations are int8 (ReLU outputs 0..127, the residual stream -127..127)
WEIGHT_MAX = 127  # weights are int8, symmetric, one scale per output channel
# ... except the first layer's with first_weight_bits > 8 (up to 15: |w| <= 16383). It reads raw pixel values
# and prediction errors and must resolve differences of one grey level; int8 weights cost 0.14 bpsp there
# (docs/models.md, "The quantization gap"). The integer model splits such weights into two int8 halves.
# ... and the output layer's with out_weight_bits > 8 (up to 12): its weights share one power-of-two unit
# (the logits' unit), so int8 leaves the smaller ones a few levels: 0.033 bpsp in the calibrated integer
# model, 0.006 after quantization-aware training (docs/models.md). Its sums stay exact in float32 (below
# 2^24, checked at load).
WIDE_WEIGHT_MAX = 2**14 - 1  # a wide layer's weights (first_weight_bits up to 15, out_weight_bits up to 12)
# The residual stream is int8 (in units of its scale s), or with stream_bits = 16 int16 in units of
# s / 2^STREAM_FINE_SHIFT: the layers that add into it keep 8 more bits, which an int8 stream rounds away
# at every block (docs/models.md, "The quantization gap"); its relu, which the next layer reads, is still
# int8 in units of s, rounded by a shift.
STREAM_FINE_SHIFT = 8
STREAM16_MAX = 2**15 - 1
MAX_LOGIT_SHIFT = 13  # logits are integers in units of 2^-k nats, k <= this (bounds the exp table)
MULTIPLIER_BITS = 20  # requantization multipliers are < 2^MULTIPLIER_BITS
INPUT_SCALE = 1 / 128  # the network sees a0 = x - 128, an integer in [-128, 127], as a0 / 128

# ---- the LSTM cell's fixed point (pixzip.pixelrnn's quantization-aware arithmetic, pixzip.kernels) -------
GATE_BITS, CELL_BITS = 15, 12  # sigmoid and tanh in units of 2^-GATE_BITS, the cell in units of 2^-CELL_BITS
CELL_MAX = 16 << CELL_BITS  # the cell is clamped to +-16
PRODUCT_SHIFT = 2 * GATE_BITS - CELL_BITS  # i g (units of 2^-30) -> the cell's units
INDEX_SHIFT = CELL_BITS - 5  # the cell -> the tanh table's index, in units of 1/GATE_STEP
GATE_STEP = 32  # gate inputs are integers in units of 1/32 ...
GATE_MAX = 256  # ... clamped to +-8, where sigmoid and tanh are flat to 2^-12
assert GATE_STEP == 2 ** (CELL_BITS - INDEX_SHIFT)


def gate_tables() -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid, tanh) at z = -GATE_MAX .. GATE_MAX units of 1/GATE_STEP, in units of 2^-GATE_BITS: int64
    (2 GATE_MAX + 1,). Stored with the weights, so no machine evaluates sigmoid or tanh on the coding path."""
    z = np.arange(-GATE_MAX, GATE_MAX + 1) / GATE_STEP
    one = 2.0**GATE_BITS
    return (np.floor(one / (1 + np.exp(-z)) + 0.5).astype(np.int64),
            np.floor(one * np.tanh(z) + 0.5).astype(np.int64))


def split_wide(w):
    """Integer weights (numpy or torch) with |w| <= WIDE_WEIGHT_MAX -> int8-range halves (high, low) with
    w = 256 high + low, low in -128..127, high in -64..64: a wide layer is two int8 matmuls."""
    low = (w + 128) % 256 - 128
    return (w - low) // 256, low


# ---- causal masks ----------------------------------------------------------------------------------------
def causal_mask(out_features: int, in_features: int, kernel: int, groups: int, mask: str) -> torch.Tensor:
    """(out, in, k, k) 0/1 mask. mask "A": centre tap sees earlier groups; "B": earlier and own group;
    "own": centre tap sees only its own group and no other tap is used (the per-channel output layer);
    "none": every tap sees everything."""
    m = torch.zeros(out_features, in_features, kernel, kernel)
    c = kernel // 2
    g_out = torch.arange(out_features) // (out_features // groups)  # (out,)
    g_in = torch.arange(in_features) // (in_features // groups)  # (in,)
    if mask == "own":
        m[:, :, c, c] = (g_in[None, :] == g_out[:, None]).float()
        return m
    if mask == "none":  # an unmasked layer, reading only what is known in advance (pixzip.multiscale)
        return torch.ones(out_features, in_features, kernel, kernel)
    m[:, :, :c, :] = 1  # rows above
    m[:, :, c, :c] = 1  # left in the same row
    allowed = g_in[None, :] < g_out[:, None] if mask == "A" else g_in[None, :] <= g_out[:, None]
    m[:, :, c, c] = allowed.float()
    return m


def input_mask(features: int, kernel: int, groups: int) -> torch.Tensor:
    """(4F, F, k) 0/1 mask of the LSTM's input-to-state row convolution: taps left of the centre see
    everything, the centre tap its own and earlier channel groups, taps to the right nothing."""
    m = torch.zeros(4 * features, features, kernel)
    c = kernel // 2
    g_out = (torch.arange(4 * features) % features) // (features // groups)
    g_in = torch.arange(features) // (features // groups)
    m[:, :, :c] = 1
    m[:, :, c] = (g_in[None, :] <= g_out[:, None]).float()
    return m


# ---- the configs stored with every model file ----------------------------------------------------------
# No `from __future__ import annotations` here: pixzip.config.from_dict checks values against the fields' types.
@dataclass(frozen=True)
class PixelCNNConfig:
    """Everything needed to rebuild the network; stored inside every checkpoint and weights file."""

    channels: int = 3  # image channels: 3 (RGB) or 1 (grayscale)
    hidden: int = 48  # features F, divisible by channels (one group per channel)
    blocks: int = 5  # residual blocks
    first_kernel: int = 7  # the mask-A layer's kernel (paper: 7x7)
    kernel: int = 3  # the mask-B layers' kernel
    predictor: str = "med"  # "med": softmax over residuals of pixzip.predictor; "none": over raw values
    residual_inputs: bool = False  # also feed the network each coded subpixel's prediction error
    first_weight_bits: int = 8  # the first layer's signed weight width, 8..15
    out_weight_bits: int = 8  # the output layer's, 8..12 (the layers between are always int8)
    channel_scales: bool = False  # one int8 scale per feature of the residual stream, not one for all
    stream_bits: int = 8  # the residual stream's width, 8 or 16 (its relu, the next layer's input, is int8)
    # False: the paper's masks, G's features see R at the same pixel and B's see R and G (the decoder runs the
    # network three times a step). True: every feature sees earlier pixels only (the head's output is still
    # split among the channels' softmaxes), so the decoder runs the network once a step; G and B still depend
    # on R (and G) through the predictor, which centres their softmax on the previous channels' errors.
    joint_channels: bool = False

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels}")
        if self.hidden % self.channels or self.hidden <= 0:
            raise ValueError(f"hidden ({self.hidden}) must be a positive multiple of channels ({self.channels})")
        if self.first_kernel % 2 == 0 or self.kernel % 2 == 0:
            raise ValueError("kernels must be odd")
        if self.stream_bits not in (8, 16):
            raise ValueError(f"stream_bits must be 8 or 16, not {self.stream_bits}")
        if not 8 <= self.first_weight_bits <= 15:
            raise ValueError(f"first_weight_bits must be 8..15, not {self.first_weight_bits}")
        if not 8 <= self.out_weight_bits <= 12:
            raise ValueError(f"out_weight_bits must be 8..12, not {self.out_weight_bits}")
        if self.joint_channels and type(self) is not PixelCNNConfig:
            raise ValueError("joint_channels is an option of the pixelcnn architecture only")
        if self.predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {PREDICTORS}, not {self.predictor!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "PixelCNNConfig":
        return from_dict(cls, d, "model config")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def mask_groups(self) -> int:
        """Channel groups of the causal masks: one per channel, or a single one with joint_channels."""
        return 1 if self.joint_channels else self.channels


@dataclass(frozen=True)
class RowLSTMConfig(PixelCNNConfig):
    """The PixelCNN's settings, read for the Row LSTM: `blocks` is the number of LSTM layers and `kernel`
    the width of both the input-to-state and the state-to-state convolutions."""

    hidden: int = 48
    blocks: int = 4

    @classmethod
    def from_dict(cls, d: dict) -> "RowLSTMConfig":
        return from_dict(cls, d, "model config")


@dataclass(frozen=True)
class DiagonalBiLSTMConfig(RowLSTMConfig):
    """As RowLSTMConfig; `kernel` is unused (the diagonal LSTMs' convolutions are 1x1 and 2x1)."""

    @classmethod
    def from_dict(cls, d: dict) -> "DiagonalBiLSTMConfig":
        return from_dict(cls, d, "model config")


@dataclass(frozen=True)
class MultiScaleConfig(PixelCNNConfig):
    """The base architecture's settings, for both stages (`blocks`: its blocks or LSTM layers);
    base: the single-scale architecture of both stages (one whose pixzip.registry record has a conditional
    variant); cond_hidden: features of the upsampling network."""

    base: str = "pixelcnn"
    cond_hidden: int = 24
    levels: int = 1  # subsampling levels: the small image of a model with levels > 1 is itself multi-scale

    def __post_init__(self):
        super().__post_init__()
        bases = _base_configs()
        if self.base not in bases:
            raise ValueError(f"base must be one of {', '.join(bases)}, not {self.base!r}")
        if self.levels < 1:
            raise ValueError(f"levels must be at least 1, not {self.levels}")

    @classmethod
    def from_dict(cls, d: dict) -> "MultiScaleConfig":
        return from_dict(cls, d, "model config")

    def base_config(self) -> PixelCNNConfig:
        """The config of a single-scale network of the base architecture, as both stages use."""
        d = self.to_dict()
        del d["cond_hidden"], d["base"], d["levels"]
        return _base_configs()[self.base](**d)

    def small_config(self) -> "PixelCNNConfig | MultiScaleConfig":
        """The small image's model's config: the base's, or with more levels a multi-scale one of one fewer."""
        return replace(self, levels=self.levels - 1) if self.levels > 1 else self.base_config()


def _base_configs() -> dict[str, type]:
    """Multi-scale base architecture -> its config class, from the architectures' records."""
    from .registry import ARCHITECTURES  # it imports this module

    return {name: arch.config for name, arch in ARCHITECTURES.items() if arch.conditional}
