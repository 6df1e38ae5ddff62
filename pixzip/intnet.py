"""The integer PixelCNN: the only source of the probabilities that reach the coder.

Every quantity is an integer. Matrix products run in float32 on integer-valued operands, which is exact on
any IEEE machine as long as every output's sum of |weight| * |activation| stays below 2^24 (design.md
section 1; checked when the model is built). Rescaling is an int64 multiply and shift, ReLU a clamp, and
the softmax an integer exp table stored with the weights. So encoder and decoder, CPU and GPU, one thread
or many, compute the same integers whatever the batch composition or the order of the sums.

The network is evaluated one (layer, channel group, set of positions) at a time. The encoder runs each
layer over all positions of a chunk of tiles; the decoder runs all layers for one wavefront line at a time
(pixzip.schedule). Both call the same functions below, which read neighbours from per-block buffers and
the centre position's earlier channel groups from per-position tensors.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch

from .pixelcnn import ACT_MAX, LOGIT_MAX, PixelCNN, PixelCNNConfig, INPUT_SCALE
from .predictor import med, predict
from .schedule import Layout

FREQ_TOTAL = 2**24 - 256  # integer frequencies sum to this; the coder gives symbol i (f_i + 1) / 2^24
EXP_ONE = 2**20  # exp table value at logit difference 0
EXACT_FP32 = 2**24  # float32 sums of integers are exact below this

# Names of the integer layers, in network order. Each has weight (out, in, k, k), bias (out,),
# multiplier (out,) and shift ().
def layer_names(config: PixelCNNConfig) -> list[str]:
    return ["first"] + [f"{kind}{b}" for b in range(config.blocks) for kind in ("inner", "outer")] + ["head", "out"]


def export_arrays(model: PixelCNN) -> dict[str, np.ndarray]:
    """Integer arrays of a calibrated (quantization-aware) model: what a weights file stores."""
    if not model.quantized:
        raise ValueError("the model is not calibrated: train it through the quantization-aware phase first")
    cfg = model.config
    s = model.scales.tolist()
    s_h, s_o, unit = s[0], s[-1], 2.0 ** -cfg.logit_bits
    convs = {"first": (model.first, INPUT_SCALE, s_h), "head": (model.head, s_h, s_o), "out": (model.out, s_o, unit)}
    for b in range(cfg.blocks):
        convs[f"inner{b}"] = (model.inner[b], s_h, s[1 + b])
        convs[f"outer{b}"] = (model.outer[b], s[1 + b], s_h)
    arrays = {}
    with torch.no_grad():
        for name in layer_names(cfg):
            conv, s_in, s_out = convs[name]
            w, b, m, shift = conv.integer_params(s_in, s_out)
            arrays[f"{name}.weight"] = w.long().numpy()
            arrays[f"{name}.bias"] = b.long().numpy()
            arrays[f"{name}.multiplier"] = m.numpy()
            arrays[f"{name}.shift"] = np.array(shift, dtype=np.int64)
    arrays["exp_table"] = exp_table(cfg.logit_bits)
    return arrays


def exp_table(logit_bits: int) -> np.ndarray:
    """E[d] = round(EXP_ONE * exp(-d / 2^logit_bits)) for d = 0.. until it reaches 0. Computed once at
    export and stored in the weights file, so no machine ever evaluates exp() on the coding path."""
    values = []
    d = 0
    while True:
        v = math.floor(EXP_ONE * math.exp(-d * 2.0**-logit_bits) + 0.5)
        values.append(v)
        if v == 0:
            return np.array(values, dtype=np.int64)
        d += 1


@dataclass
class GroupWeights:
    """One layer's weights for one output channel group, laid out for gather + matmul."""

    taps: torch.Tensor  # (taps, ) flat offsets of the off-centre taps, relative to the position
    w_taps: torch.Tensor  # (taps * in, out_g) float32, integer-valued; may be empty
    centre: int  # input features readable at the centre position (earlier groups, and own for mask B)
    w_centre: torch.Tensor  # (centre, out_g) float32
    bias: torch.Tensor  # (out_g,) int64
    multiplier: torch.Tensor  # (out_g,) int64
    shift: int
    out: slice  # the output features of this group


class IntegerPixelCNN:
    """Integer inference of a PixelCNN for one buffer layout (a chunk of tiles)."""

    def __init__(self, config: PixelCNNConfig, arrays: dict[str, np.ndarray]):
        self.config = config
        self.groups = config.channels
        self.table = torch.from_numpy(np.asarray(arrays["exp_table"], dtype=np.int64))
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.reach = max(config.first_kernel, config.kernel) // 2
        self.slope = self.reach + 1  # wavefront slope (pixzip.schedule)
        self._check_exact()

    def _check_exact(self) -> None:
        """Refuse weights whose float32 accumulation could round (design.md section 1)."""
        for name in layer_names(self.config):
            w = np.abs(self.arrays[f"{name}.weight"]).reshape(len(self.arrays[f"{name}.bias"]), -1)
            bound = w.sum(axis=1) * (ACT_MAX + 1) + np.abs(self.arrays[f"{name}.bias"])
            if bound.max() >= EXACT_FP32:
                raise ValueError(f"layer {name} can exceed exact float32 accumulation ({bound.max()} >= 2^24)")

    def bind(self, layout: Layout, device: torch.device) -> "BoundNetwork":
        return BoundNetwork(self, layout, device)


class BoundNetwork:
    """The integer network with buffers for one layout on one device.

    Buffers (flat over the layout's positions, zero where nothing was written = zero padding):
      a0     (P, C)  input x - 128 of decoded pixels
      x      (P, C)  decoded pixel values (the predictor's context)
      relu_h[b] (P, F) relu of the residual stream entering block b (read by block b's 3x3 conv)
    Per-position state for a set of N positions (see `state`): h, v[b], o, all (N, F).
    """

    def __init__(self, net: IntegerPixelCNN, layout: Layout, device: torch.device):
        self.net, self.layout, self.device = net, layout, device
        cfg = net.config
        c, f = cfg.channels, cfg.hidden
        self.fg = f // c  # features per group
        zeros = lambda n: torch.zeros(layout.positions, n, dtype=torch.float32, device=device)
        self.a0 = zeros(c)
        self.x = torch.zeros(layout.positions, c, dtype=torch.int64, device=device)
        self.relu_h = [zeros(f) for _ in range(cfg.blocks)]
        self.table = net.table.to(device)
        self.weights = {name: [self._group_weights(name, g) for g in range(c)] for name in layer_names(cfg)}
        self.predictor_taps = torch.tensor([layout.offset(0, -1), layout.offset(-1, 0), layout.offset(-1, -1)],
                                           dtype=torch.int64, device=device)

    def _group_weights(self, name: str, g: int) -> GroupWeights:
        a = self.net.arrays
        w = torch.from_numpy(a[f"{name}.weight"])  # (out, in, k, k)
        out_f, in_f, k, _ = w.shape
        og, ig = out_f // self.net.groups, in_f // self.net.groups
        rows = slice(g * og, (g + 1) * og)
        c = k // 2
        offsets, blocks = [], []
        for dy in range(-c, 1):
            for dx in range(-c, c + 1):
                if dy == 0 and dx >= 0:
                    break
                offsets.append(self.layout.offset(dy, dx))
                blocks.append(w[rows, :, dy + c, dx + c].T)  # (in, out_g)
        if name == "out":  # own group only, centre only
            centre_w = torch.zeros(0, og, dtype=w.dtype)
            centre = 0
            own = w[rows, g * ig : (g + 1) * ig, c, c].T
        else:
            centre = g * ig if name == "first" else (g + 1) * ig
            centre_w = w[rows, :centre, c, c].T
            own = None
        to = lambda t: t.to(self.device, torch.float32).contiguous()
        w_taps = torch.cat(blocks, 0) if blocks else torch.zeros(0, og, dtype=w.dtype)
        gw = GroupWeights(
            taps=torch.tensor(offsets, dtype=torch.int64, device=self.device),
            w_taps=to(w_taps),
            centre=centre,
            w_centre=to(own if own is not None else centre_w),
            bias=torch.from_numpy(a[f"{name}.bias"][rows]).to(self.device),
            multiplier=torch.from_numpy(a[f"{name}.multiplier"][rows]).to(self.device),
            shift=int(a[f"{name}.shift"]),
            out=rows,
        )
        return gw

    # ---- per-position state -------------------------------------------------------------------------
    def state(self, n: int) -> dict:
        f = self.net.config.hidden
        z = lambda: torch.zeros(n, f, dtype=torch.float32, device=self.device)
        return {"h": z(), "v": [z() for _ in range(self.net.config.blocks)], "o": z()}

    # ---- the layers -----------------------------------------------------------------------------------
    def _accumulate(self, gw: GroupWeights, buffer: torch.Tensor | None, pos: torch.Tensor,
                    centre: torch.Tensor) -> torch.Tensor:
        """Exact integer accumulator (N, out_g) int64: off-centre taps from `buffer`, centre from `centre`."""
        acc = centre @ gw.w_centre  # (N, centre) @ (centre, out_g)
        if len(gw.taps):
            nb = buffer.index_select(0, (pos[:, None] + gw.taps[None, :]).reshape(-1))  # (N * taps, in)
            acc = acc + nb.view(len(pos), -1) @ gw.w_taps  # (N, taps * in) @ (taps * in, out_g)
        return acc.long() + gw.bias

    @staticmethod
    def _requant(acc: torch.Tensor, gw: GroupWeights, lo: int, hi: int) -> torch.Tensor:
        half = (1 << gw.shift) >> 1
        return ((acc * gw.multiplier + half) >> gw.shift).clamp(lo, hi)

    def first(self, g: int, pos: torch.Tensor, st: dict) -> None:
        gw = self.weights["first"][g]
        acc = self._accumulate(gw, self.a0, pos, self.a0[pos, : gw.centre])
        st["h"][:, gw.out] = self._requant(acc, gw, -ACT_MAX, ACT_MAX).float()

    def store(self, b: int, g: int, pos: torch.Tensor, st: dict) -> None:
        """Publish relu of group g of the stream entering block b, for later positions' 3x3 taps."""
        out = self.weights["first"][g].out
        self.relu_h[b][pos, out] = st["h"][:, out].clamp(min=0)

    def inner(self, b: int, g: int, pos: torch.Tensor, st: dict) -> None:
        gw = self.weights[f"inner{b}"][g]
        buf = self.relu_h[b]
        acc = self._accumulate(gw, buf, pos, buf[pos, : gw.centre])
        st["v"][b][:, gw.out] = self._requant(acc, gw, 0, ACT_MAX).float()

    def outer(self, b: int, g: int, pos: torch.Tensor, st: dict) -> None:
        gw = self.weights[f"outer{b}"][g]
        acc = self._accumulate(gw, None, pos, st["v"][b][:, : gw.centre])
        y = self._requant(acc, gw, -ACT_MAX, ACT_MAX).float()
        st["h"][:, gw.out] = (st["h"][:, gw.out] + y).clamp(-ACT_MAX, ACT_MAX)

    def head(self, g: int, pos: torch.Tensor, st: dict) -> None:
        gw = self.weights["head"][g]
        acc = self._accumulate(gw, None, pos, st["h"][:, : gw.centre].clamp(min=0))
        st["o"][:, gw.out] = self._requant(acc, gw, 0, ACT_MAX).float()

    def logits(self, g: int, st: dict) -> torch.Tensor:
        """(N, 256) int64 logits of channel g, in units of 2^-logit_bits nats."""
        gw = self.weights["out"][g]
        own = st["o"][:, g * self.fg : (g + 1) * self.fg]
        acc = (own @ gw.w_centre).long() + gw.bias
        return self._requant(acc, gw, -LOGIT_MAX, LOGIT_MAX)

    def frequencies(self, logits: torch.Tensor) -> torch.Tensor:
        """Integer softmax: (N, 256) logits -> (N, 256) int64 frequencies summing to FREQ_TOTAL."""
        d = (logits.amax(dim=1, keepdim=True) - logits).clamp(max=len(self.table) - 1)
        e = self.table[d]  # (N, 256), e >= 1 at the maximum
        f = e * FREQ_TOTAL // e.sum(dim=1, keepdim=True)
        f[:, 0] += FREQ_TOTAL - f.sum(dim=1)  # rounding remainder to the predicted value (residual 0)
        return f

    # ---- the predictor --------------------------------------------------------------------------------
    def write_pixels(self, g: int, pos: torch.Tensor, values: torch.Tensor) -> None:
        """Record decoded (or known) values (N,) of channel g at positions."""
        self.x[pos, g] = values
        self.a0[pos, g] = (values - 128).float()

    def medians(self, pos: torch.Tensor) -> torch.Tensor:
        """(N, C) MED predictions at positions from their causal neighbours."""
        nb = self.x.index_select(0, (pos[:, None] + self.predictor_taps[None, :]).reshape(-1))
        nb = nb.view(len(pos), 3, -1)  # (N, left/up/upleft, C)
        return med(nb[:, 0], nb[:, 1], nb[:, 2])

    def prediction(self, g: int, pos: torch.Tensor, medians: torch.Tensor) -> torch.Tensor:
        """(N,) prediction of channel g; channels before g must be written at pos already."""
        if self.net.config.predictor == "none":
            return torch.zeros(len(pos), dtype=torch.int64, device=self.device)
        if g == 0:
            return predict(medians[:, 0], None, None)
        return predict(medians[:, g], self.x[pos, g - 1], medians[:, g - 1])
