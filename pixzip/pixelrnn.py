"""PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks"): Row LSTM (section 3.1) and
Diagonal BiLSTM (section 3.2), the float models that are trained, with the quantization-aware mode whose
arithmetic the integer models (pixzip.intlstm) reproduce.

Data flow (B batch, C image channels, F hidden features in C channel groups, H x W pixels):
    x (B, C, H, W) uint8
    -> 7x7 mask-A conv                                    -> s  (B, F, H, W)   residual stream
    -> layers x [LSTM layer over relu(s) -> h (B, F, H, W), 1x1 mask-B conv of h added to s]
    -> relu, 1x1 mask-B conv, relu, 1x1 conv per group     -> logits (B, C, 256, H, W)
exactly the PixelCNN's stem, residual stream and output (pixzip.pixelcnn), with each block's kxk
convolution replaced by an LSTM layer. Every LSTM computes, from gate inputs z (4F: i, f, o, g):
    i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g);  c = f * c_prev + i * g;  h = o * tanh(c)
and differs in where z and c_prev come from. With u = relu(s):

Row LSTM: rows top to bottom; at (i, j)
    z = W_in * u(i, j-k//2 .. j)  +  W_state * h(i-1, j-k//2 .. j+k//2)  +  b,   c_prev = c(i-1, j)
  The input-to-state convolution runs along the row and is masked: the left taps see every feature, the
  centre tap channel groups up to the output's own (mask B), no tap the right. The state-to-state
  convolution reads the row above, fully known. Receptive field: the triangle above (the "blind spot").

Diagonal BiLSTM: two diagonal LSTMs. The left-to-right one, at (i, j),
    z = W_in u(i, j)  +  W_state * [h(i-1, j), h(i, j-1)]  +  b,   c_prev = c(i, j-1)
  with a mask-B 1x1 input-to-state convolution: skewing row i right by i turns (i-1, j) and (i, j-1)
  into the previous column, so it runs column by column over the skewed map, a 2x1 state-to-state
  convolution (the paper's formulation, done here by indexing). The right-to-left one is the same on the
  mirrored row (state from (i-1, j) and (i, j+1), no mask) and its output is shifted down one row: (i, j)
  receives r2l(i-1, j), which depends on rows above only, so nothing of row i to the right leaks in.
  h = clamp(l2r + shifted r2l, -1, 1) (the clamp keeps the integer model's h in int8). Receptive field:
  everything above and to the left, no blind spot.

Each of the 4F gate outputs belongs to the channel group of its feature (feature index mod F).

Quantization-aware mode, mirrored bit for bit by pixzip.intlstm (integers; q15 means units of 2^-15):
  - the gate accumulator reads u (int8, the stream's scale) and h (int8, units of 1/127) with weights
    quantized to one unit per output so both sums share an accumulator: one int8 matmul;
  - it is rescaled by multiply + shift to z in units of 1/GATE_STEP, clamped to +-GATE_MAX (+-8);
  - sigmoid and tanh come from tables (q15) indexed by z, built once at export (`gate_tables`);
  - c (units of 2^-CELL_BITS) = round(f c_prev / 2^15) + round(i g / 2^(30 - CELL_BITS)), clamped to +-16;
  - h = round(o tanh(c) 127 / 2^30), tanh(c) from the same table at c rounded to units of 1/GATE_STEP.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# The fixed point, masks, gate tables and configs are the integer format's (pixzip.intformat); imported here
# under their old names too (gate_tables is unused here: imported for backward compatibility, tests use it).
from .intformat import (ACT_MAX, CELL_BITS, CELL_MAX, GATE_BITS, GATE_MAX, GATE_STEP,  # noqa: F401
                        DiagonalBiLSTMConfig, RowLSTMConfig, gate_tables, input_mask)
from .pixelcnn import PixelCNN, round_ste, requant_multiplier

HIDDEN_SCALE = 1 / ACT_MAX  # h in [-1, 1] is int8 in units of 1/127


class LSTMGates(nn.Module):
    """An LSTM layer's parameters: the input-to-state weight (4F, F, k_in) with its causal mask, the
    state-to-state weight (4F, F, k_state) and the bias (4F,); and one step of the cell."""

    def __init__(self, features: int, in_kernel: int, state_kernel: int, mask: torch.Tensor):
        super().__init__()
        self.features = features
        self.w_in = nn.Parameter(torch.empty(4 * features, features, in_kernel))
        self.w_state = nn.Parameter(torch.empty(4 * features, features, state_kernel))
        self.bias = nn.Parameter(torch.zeros(4 * features))
        self.register_buffer("mask", mask)
        nn.init.normal_(self.w_in, std=1 / math.sqrt(max(float(mask[0].sum()), 1.0)))
        nn.init.normal_(self.w_state, std=1 / math.sqrt(features * state_kernel))
        with torch.no_grad():
            self.bias[features : 2 * features] = 1.0  # forget gates start open

    def integer_params(self, s_in):
        """s_in: the input's scale, a float or one per input feature (F,). Integer input weight (4F, F, k_in)
        and state weight (4F, F, k_state) in one accumulator unit per
        output, bias (4F,), and the (multiplier (4F,), shift) taking the accumulator to units of 1/GATE_STEP."""
        w_in = self.w_in * self.mask * (s_in[None, :, None] if isinstance(s_in, torch.Tensor) else s_in)
        top = torch.maximum(w_in.detach().abs().amax(dim=(1, 2)),
                            self.w_state.detach().abs().amax(dim=(1, 2)) * HIDDEN_SCALE)
        unit = top.clamp_min(1e-12) / ACT_MAX  # (4F,)
        w_in_int = round_ste(w_in / unit[:, None, None])
        w_state_int = round_ste(self.w_state * HIDDEN_SCALE / unit[:, None, None])
        m, shift = requant_multiplier(unit * GATE_STEP)
        return w_in_int, w_state_int, round_ste(self.bias / unit), m, shift

    def weights(self, s_in: float | None):
        """(w_in, w_state, bias, ratio): float, or (s_in given) the integer ones and the rescaling ratio
        (4F,) from accumulator to gate units."""
        if s_in is None:
            return self.w_in * self.mask, self.w_state, self.bias, None
        w_in, w_state, bias, m, shift = self.integer_params(s_in)
        return w_in, w_state, bias, (m.double() / 2.0**shift).float()

    @staticmethod
    def cell(z: torch.Tensor, c: torch.Tensor, ratio: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, 4F, N) gate accumulators, c (B, F, N) the previous cell -> (h, c): float (ratio None), or
        quantization-aware (h in units of 1/127)."""
        if ratio is None:
            zi, zf, zo, zg = z.chunk(4, dim=1)
            c = (torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)).clamp(-16, 16)
            return torch.sigmoid(zo) * torch.tanh(c), c
        return quantized_cell(round_ste(z * ratio[None, :, None]).clamp(-GATE_MAX, GATE_MAX), c)


class RowLSTMLayer(LSTMGates):
    def __init__(self, features: int, kernel: int, groups: int):
        super().__init__(features, kernel, kernel, input_mask(features, kernel, groups))
        self.kernel = kernel

    def forward(self, u: torch.Tensor, s_in: float | None = None) -> torch.Tensor:
        """u (B, F, H, W) -> h (B, F, H, W), row by row. Float mode (s_in None): h in [-1, 1].
        Quantization-aware (u integers in units of s_in): h integers in units of 1/127."""
        b, f, hh, ww = u.shape
        pad = self.kernel // 2
        w_in, w_state, bias, ratio = self.weights(s_in)
        z_in = F.conv2d(u, w_in.unsqueeze(2), bias, padding=(0, pad))  # (B, 4F, H, W): causal along the row
        h = u.new_zeros(b, f, ww)
        c = u.new_zeros(b, f, ww)
        rows = []
        for z_row in z_in.unbind(2):  # not z_in[:, :, i]: see DiagonalLSTM.forward
            h, c = self.cell(z_row + F.conv1d(h, w_state, padding=pad), c, ratio)  # z (B, 4F, W)
            rows.append(h)
        return torch.stack(rows, dim=2)


class DiagonalLSTM(LSTMGates):
    """One direction of the Diagonal BiLSTM, left to right: state from (i-1, j) and (i, j-1), state-to-state
    taps [above, left]. The right-to-left direction is this on mirrored rows (see DiagonalBiLSTMLayer)."""

    def __init__(self, features: int, groups: int, masked: bool):
        mask = input_mask(features, 1, groups) if masked else torch.ones(4 * features, features, 1)
        super().__init__(features, 1, 2, mask)

    def forward(self, u: torch.Tensor, s_in: float | None = None) -> torch.Tensor:
        """u (B, F, H, W) -> h (B, F, H, W), one skewed column (the diagonal i + j = t) at a time. Outside
        the image h and c are 0, as the integer model's zero padding."""
        b, f, hh, ww = u.shape
        w_in, w_state, bias, ratio = self.weights(s_in)
        z_in = skew(F.conv2d(u, w_in.unsqueeze(3), bias))  # (B, 4F, H, W + H - 1)
        valid = skew(u.new_ones(1, 1, hh, ww))[0, 0]  # (H, W + H - 1)
        w_state = torch.cat([w_state[:, :, 0], w_state[:, :, 1]], dim=1)  # (4F, 2F): [above, left]
        h = u.new_zeros(b, f, hh)
        c = u.new_zeros(b, f, hh)
        columns = []
        # unbind, not z_in[..., t]: the backward of each index would add into a zero tensor of z_in's size
        for z_col, valid_col in zip(z_in.unbind(3), valid.unbind(1)):
            up = F.pad(h, (1, 0))[:, :, :-1]  # row i reads h(i-1) of the previous column: (i-1, j) unskewed
            z = z_col + w_state @ torch.cat([up, h], dim=1)  # (B, 4F, H)
            h, c = self.cell(z, c, ratio)  # c of the previous column, same row: (i, j-1) unskewed
            h, c = h * valid_col, c * valid_col
            columns.append(h)
        return unskew(torch.stack(columns, dim=3), ww)


def skew(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W + H - 1), row i shifted right by i (zeros elsewhere)."""
    b, c, hh, ww = x.shape
    flat = F.pad(x, (0, hh)).flatten(2)  # (B, C, H (W + H)): row i starts at i (W + H)
    return flat[:, :, : hh * (ww + hh - 1)].view(b, c, hh, ww + hh - 1)  # ... and now at i (W + H - 1)


def unskew(y: torch.Tensor, width: int) -> torch.Tensor:
    """The inverse of skew: (B, C, H, W + H - 1) -> (B, C, H, W)."""
    b, c, hh, _ = y.shape
    return F.pad(y.flatten(2), (0, hh)).view(b, c, hh, width + hh)[:, :, :, :width]


class DiagonalBiLSTMLayer(nn.Module):
    def __init__(self, features: int, groups: int):
        super().__init__()
        self.l2r = DiagonalLSTM(features, groups, masked=True)
        self.r2l = DiagonalLSTM(features, groups, masked=False)

    def forward(self, u: torch.Tensor, s_in: float | None = None) -> torch.Tensor:
        """u (B, F, H, W) -> h = clamp(l2r + r2l shifted down one row, -1, 1) (B, F, H, W); quantization-
        aware: integers in units of 1/127."""
        r2l = self.r2l(u.flip(3), s_in).flip(3)
        r2l = F.pad(r2l, (0, 0, 1, 0))[:, :, :-1]  # (i, j) gets r2l(i-1, j); row 0 gets 0
        top = 1.0 if s_in is None else ACT_MAX
        return (self.l2r(u, s_in) + r2l).clamp(-top, top)


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
        self.inner = nn.ModuleList(self.layer(config) for _ in range(config.blocks))

    @staticmethod
    def layer(config: RowLSTMConfig) -> nn.Module:
        return RowLSTMLayer(config.hidden, config.kernel, config.channels)

    def block(self, b: int, u: torch.Tensor, s: list | None = None, stats: dict | None = None,
              stream: tuple | None = None) -> torch.Tensor:
        if s is None:
            return self.outer[b](self.inner[b](u))
        unit, top = stream
        return self.outer[b](self.inner[b](u, s[0]), (HIDDEN_SCALE, unit, -top, top))

    def _scales(self, tops: dict[str, float]) -> list[float]:
        return [tops["stream"] / ACT_MAX] + [HIDDEN_SCALE] * self.config.blocks + [tops["head"] / ACT_MAX]


class DiagonalBiLSTM(RowLSTM):
    """The same network with Diagonal BiLSTM layers."""

    @staticmethod
    def layer(config: "DiagonalBiLSTMConfig") -> nn.Module:
        return DiagonalBiLSTMLayer(config.hidden, config.channels)
