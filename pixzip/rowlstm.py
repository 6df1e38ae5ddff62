"""Row LSTM (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 3.1): the float model that
is trained, with the quantization-aware mode whose arithmetic the integer model (pixzip.intlstm) reproduces.

Data flow (B batch, C image channels, F hidden features in C channel groups, H x W pixels):
    x (B, C, H, W) uint8
    -> 7x7 mask-A conv                                    -> s  (B, F, H, W)   residual stream
    -> layers x [Row LSTM over relu(s) -> h (B, F, H, W), 1x1 mask-B conv of h added to s]
    -> relu, 1x1 mask-B conv, relu, 1x1 conv per group     -> logits (B, C, 256, H, W)
exactly the PixelCNN's stem, residual stream and output (pixzip.pixelcnn), with each block's kxk
convolution replaced by a Row LSTM layer.

A Row LSTM layer computes its rows top to bottom. At pixel (i, j), with u = relu(s):
    z = W_in * u(i, j-k//2 .. j)  +  W_state * h(i-1, j-k//2 .. j+k//2)  +  b      (4F gate inputs)
    i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
    c(i, j) = f * c(i-1, j) + i * g;   h(i, j) = o * tanh(c(i, j))
The input-to-state convolution runs along the row and is masked: the left taps see every feature, the
centre tap sees channel groups up to the output's own (mask B), so R's gates at (i, j) never read G or B
of (i, j), and no tap reads to the right. The state-to-state convolution reads the row above, fully known.
The receptive field is the triangle above the pixel (plus the stem's 7x7 half-window): the "blind spot"
of the paper. Each of the 4F gate outputs belongs to the channel group of its feature (feature index mod F).

Quantization-aware mode, mirrored bit for bit by pixzip.intlstm (integers; q15 means units of 2^-15):
  - the gate accumulator reads u (int8, the stream's scale) and h (int8, units of 1/127) with weights
    quantized to one unit per output so both sums share an accumulator: one int8 matmul;
  - it is rescaled by multiply + shift to z in units of 1/GATE_STEP, clamped to +-GATE_MAX (+-8);
  - sigmoid and tanh come from tables (q15) indexed by z, built once at export (`gate_tables`);
  - c (units of 2^-CELL_BITS) = round(f c_up / 2^15) + round(i g / 2^(30 - CELL_BITS)), clamped to +-16;
  - h = round(o tanh(c) 127 / 2^30), tanh(c) from the same table at c rounded to units of 1/GATE_STEP.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import from_dict
from .pixelcnn import ACT_MAX, PixelCNN, PixelCNNConfig, round_ste, requant_multiplier

GATE_STEP = 32  # gate inputs are integers in units of 1/32 ...
GATE_MAX = 256  # ... clamped to +-8, where sigmoid and tanh are flat to 2^-12
GATE_BITS = 15  # sigmoid and tanh values in units of 2^-15
CELL_BITS = 12  # the cell state in units of 2^-12 ...
CELL_MAX = 16 << CELL_BITS  # ... clamped to +-16
HIDDEN_SCALE = 1 / ACT_MAX  # h in [-1, 1] is int8 in units of 1/127


@dataclass(frozen=True)
class RowLSTMConfig(PixelCNNConfig):
    """The PixelCNN's settings, read for the Row LSTM: `blocks` is the number of LSTM layers and `kernel`
    the width of both the input-to-state and the state-to-state convolutions."""

    hidden: int = 48
    blocks: int = 4

    @classmethod
    def from_dict(cls, d: dict) -> "RowLSTMConfig":
        return from_dict(cls, d, "model config")


def gate_tables() -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid, tanh) at z = -GATE_MAX .. GATE_MAX units of 1/GATE_STEP, in units of 2^-GATE_BITS: int64
    (2 GATE_MAX + 1,). Stored with the weights, so no machine evaluates sigmoid or tanh on the coding path."""
    z = np.arange(-GATE_MAX, GATE_MAX + 1) / GATE_STEP
    one = 2.0**GATE_BITS
    return (np.floor(one / (1 + np.exp(-z)) + 0.5).astype(np.int64),
            np.floor(one * np.tanh(z) + 0.5).astype(np.int64))


def input_mask(features: int, kernel: int, groups: int) -> torch.Tensor:
    """(4F, F, k) 0/1 mask of the input-to-state row convolution: taps left of the centre see everything,
    the centre tap its own and earlier channel groups, taps to the right nothing."""
    m = torch.zeros(4 * features, features, kernel)
    c = kernel // 2
    g_out = (torch.arange(4 * features) % features) // (features // groups)
    g_in = torch.arange(features) // (features // groups)
    m[:, :, :c] = 1
    m[:, :, c] = (g_in[None, :] <= g_out[:, None]).float()
    return m


class RowLSTMLayer(nn.Module):
    def __init__(self, features: int, kernel: int, groups: int):
        super().__init__()
        self.features, self.kernel = features, kernel
        self.w_in = nn.Parameter(torch.empty(4 * features, features, kernel))
        self.w_state = nn.Parameter(torch.empty(4 * features, features, kernel))
        self.bias = nn.Parameter(torch.zeros(4 * features))
        self.register_buffer("mask", input_mask(features, kernel, groups))
        nn.init.normal_(self.w_in, std=1 / math.sqrt(features * (kernel // 2 + 0.5)))
        nn.init.normal_(self.w_state, std=1 / math.sqrt(features * kernel))
        with torch.no_grad():
            self.bias[features : 2 * features] = 1.0  # forget gates start open

    def integer_params(self, s_in: float):
        """Integer input weight (4F, F, k) and state weight (4F, F, k) in one accumulator unit per output,
        bias (4F,), and the (multiplier (4F,), shift) taking the accumulator to units of 1/GATE_STEP."""
        w_in = self.w_in * self.mask
        top = torch.maximum(w_in.detach().abs().amax(dim=(1, 2)) * s_in,
                            self.w_state.detach().abs().amax(dim=(1, 2)) * HIDDEN_SCALE)
        unit = top.clamp_min(1e-12) / ACT_MAX  # (4F,)
        w_in_int = round_ste(w_in * s_in / unit[:, None, None])
        w_state_int = round_ste(self.w_state * HIDDEN_SCALE / unit[:, None, None])
        m, shift = requant_multiplier(unit * GATE_STEP)
        return w_in_int, w_state_int, round_ste(self.bias / unit), m, shift

    def forward(self, u: torch.Tensor, s_in: float | None = None) -> torch.Tensor:
        """u (B, F, H, W) -> h (B, F, H, W), row by row. Float mode (s_in None): h in [-1, 1].
        Quantization-aware (u integers in units of s_in): h integers in units of 1/127."""
        b, f, hh, ww = u.shape
        pad = self.kernel // 2
        if s_in is None:
            w_in, w_state, bias = self.w_in * self.mask, self.w_state, self.bias
        else:
            w_in, w_state, bias, m, shift = self.integer_params(s_in)
            ratio = (m.double() / 2.0**shift).float()  # (4F,)
        z_in = F.conv2d(u, w_in.unsqueeze(2), bias, padding=(0, pad))  # (B, 4F, H, W): causal along the row
        h = u.new_zeros(b, f, ww)
        c = u.new_zeros(b, f, ww)
        rows = []
        for i in range(hh):
            z = z_in[:, :, i] + F.conv1d(h, w_state, padding=pad)  # (B, 4F, W)
            if s_in is None:
                zi, zf, zo, zg = z.chunk(4, dim=1)
                c = (torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)).clamp(-16, 16)
                h = torch.sigmoid(zo) * torch.tanh(c)
            else:
                zq = round_ste(z * ratio[None, :, None]).clamp(-GATE_MAX, GATE_MAX)
                h, c = quantized_cell(zq, c)
            rows.append(h)
        return torch.stack(rows, dim=2)


def quantized_cell(zq: torch.Tensor, c_up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The integer LSTM cell in float arithmetic with straight-through rounding: zq (B, 4F, ...) gate
    inputs in units of 1/GATE_STEP, c_up (B, F, ...) the cell above in units of 2^-CELL_BITS ->
    (h in units of 1/127, c)."""
    one = 2.0**GATE_BITS
    zi, zf, zo, zg = zq.chunk(4, dim=1)
    i, f, o = (round_ste(one * torch.sigmoid(z / GATE_STEP)) for z in (zi, zf, zo))
    g = round_ste(one * torch.tanh(zg / GATE_STEP))
    c = (round_ste(f * c_up / one) + round_ste(i * g / 2.0 ** (2 * GATE_BITS - CELL_BITS))).clamp(-CELL_MAX, CELL_MAX)
    t = round_ste(one * torch.tanh(round_ste(c * GATE_STEP / 2.0**CELL_BITS).clamp(-GATE_MAX, GATE_MAX) / GATE_STEP))
    return round_ste(o * t * ACT_MAX / 2.0 ** (2 * GATE_BITS)), c


class RowLSTM(PixelCNN):
    """The PixelCNN with Row LSTM layers in place of its blocks' kxk convolutions (`inner`). The scales of
    the blocks' inner activations are fixed at 1/127 (h is in [-1, 1])."""

    def __init__(self, config: RowLSTMConfig):
        super().__init__(config)
        c, f, k = config.channels, config.hidden, config.kernel
        self.inner = nn.ModuleList(RowLSTMLayer(f, k, c) for _ in range(config.blocks))

    def block(self, b: int, u: torch.Tensor, s: list[float] | None = None, stats: dict | None = None) -> torch.Tensor:
        if s is None:
            return self.outer[b](self.inner[b](u))
        return self.outer[b](self.inner[b](u, s[0]), (HIDDEN_SCALE, s[0], -ACT_MAX, ACT_MAX))

    def _scales(self, tops: dict[str, float]) -> list[float]:
        return [tops["stream"] / ACT_MAX] + [HIDDEN_SCALE] * self.config.blocks + [tops["head"] / ACT_MAX]
