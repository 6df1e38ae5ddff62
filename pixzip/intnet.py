"""The integer PixelCNN: the only source of the probabilities that reach the coder.

Every quantity is an exactly computed integer: int8 x int8 -> int32 products (exact by construction, or as
float32 products of integers whose sums stay below 2^24, checked when a model is loaded), int64 rescaling
by multiply and shift, ReLU as a clamp, and a softmax through an exp table stored with the weights
(see `frequencies`). So encoder and decoder, CPU and GPU, one thread or many, compute the same integers
whatever the batch composition or the order of the sums (docs/design.md, "Exactness").

The network is evaluated one (layer, channel group, set of positions) at a time. The encoder runs each
layer over all positions of a chunk of tiles; the decoder runs all layers for one wavefront line at a time
(pixzip.schedule). Both call the same functions below, which read neighbours from per-block buffers and
the centre position's earlier channel groups from per-position tensors.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch

from .pixelcnn import ACT_MAX, PixelCNN, PixelCNNConfig, INPUT_SCALE
from .predictor import med, predict
from .schedule import Layout

FREQ_TOTAL = 2**24 - 256  # integer frequencies sum to this; the coder gives symbol i (f_i + 1) / 2^24
EXP_ONE = 2**20  # exp table value at logit difference 0
EXACT_FP32 = 2**24  # float32 sums of integers are exact below this


def layer_names(config: PixelCNNConfig) -> list[str]:
    """The integer layers in network order. Each has weight (out, in, k, k), bias (out,) and shift ();
    all but "out" also a multiplier (out,). "out" has none: its accumulator is the logit in 2^-shift nats."""
    return ["first"] + [f"{kind}{b}" for b in range(config.blocks) for kind in ("inner", "outer")] + ["head", "out"]


def export_arrays(model: PixelCNN) -> dict[str, np.ndarray]:
    """Integer arrays of a calibrated (quantization-aware) model: what a weights file stores."""
    if not model.quantized:
        raise ValueError("the model is not calibrated: train it through the quantization-aware phase first")
    cfg = model.config
    s = model.scales.tolist()
    s_h, s_o = s[0], s[-1]
    convs = {"first": (model.first, INPUT_SCALE, s_h), "head": (model.head, s_h, s_o)}
    for b in range(cfg.blocks):
        convs[f"inner{b}"] = (model.inner[b], s_h, s[1 + b])
        convs[f"outer{b}"] = (model.outer[b], s[1 + b], s_h)
    arrays = {}
    with torch.no_grad():
        for name in layer_names(cfg)[:-1]:
            conv, s_in, s_out = convs[name]
            w, b, m, shift = conv.integer_params(s_in, s_out)
            arrays[f"{name}.weight"] = w.long().numpy()
            arrays[f"{name}.bias"] = b.long().numpy()
            arrays[f"{name}.multiplier"] = m.numpy()
            arrays[f"{name}.shift"] = np.array(shift, dtype=np.int64)
        w, b, k = model.out.logit_params(s_o)
        arrays["out.weight"], arrays["out.bias"] = w.long().numpy(), b.long().numpy()
        arrays["out.shift"] = np.array(k, dtype=np.int64)
    arrays["exp_table"] = exp_table(k)
    return arrays


def exp_table(k: int) -> np.ndarray:
    """E[d] = round(EXP_ONE * exp(-d / 2^k)) for d = 0, 1, ... until it reaches 0. Computed once at export
    and stored in the weights file, so no machine ever evaluates exp() on the coding path."""
    d = np.arange(int(2**k * math.log(2 * EXP_ONE)) + 2)
    e = np.floor(EXP_ONE * np.exp(-d * 2.0**-k) + 0.5).astype(np.int64)
    return e[: int(np.argmax(e == 0)) + 1]


def _row_major(t: torch.Tensor) -> torch.Tensor:
    """t (R, C) with row stride >= C and unit column stride. torch calls a (1, C) tensor with strides (1, 1)
    contiguous, and torch._int_mm then reads it with a leading dimension of 1: wrong products."""
    if t.stride(1) == 1 and t.stride(0) >= t.shape[1]:
        return t
    return t.clone(memory_format=torch.contiguous_format)


@dataclass
class GroupWeights:
    """One layer's weights for one output channel group, laid out for gather + matmul."""

    taps: torch.Tensor  # (taps,) flat offsets of the off-centre taps, relative to the position
    w_taps: torch.Tensor  # (taps * in, out_g) int8; may have 0 rows
    centre: int  # input features read at the centre position (earlier groups; own group too for mask B)
    w_centre: torch.Tensor  # (centre, out_g) int8
    bias: torch.Tensor  # (out_g,) int32
    w_centre_f: torch.Tensor  # w_centre as float32 (the output layer's product is a float one)
    bias_f: torch.Tensor  # bias as float32
    multiplier: torch.Tensor | None  # (out_g,) int64; None for the output layer
    shift: int
    out: slice  # the output features of this group


class IntegerPixelCNN:
    """Integer inference of a PixelCNN, built from the arrays of a model file."""

    def __init__(self, config: PixelCNNConfig, arrays: dict[str, np.ndarray]):
        self.config = config
        self.groups = config.channels
        self.arrays = {k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()}
        self.table = torch.from_numpy(self.arrays["exp_table"]).float()  # values < 2^21: exact
        self.inputs_per_channel = 2 if config.residual_inputs else 1
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
    """The integer network with buffers for one layout (a chunk of tiles) on one device.

    Buffers, flat over the layout's positions, zero where nothing was written (= zero padding):
      a0        (P, C * k) int8  the first layer's input at known pixels: x - 128 per channel and, for
                models with residual inputs (k = 2), the prediction error clamped to +-127
      x         (P, C) int64  known pixel values (the predictor's context)
      relu_h[b] (P, F) int8   relu of the residual stream entering block b (block b's 3x3 conv input)
    Per-position state for N positions being computed (`state`), all int8: h (N, F) stream, v[b] (N, F)
    block b's inner activation, o (N, F) head output.
    """

    def __init__(self, net: IntegerPixelCNN, layout: Layout, device: torch.device):
        self.net, self.layout, self.device = net, layout, device
        if device.type == "cuda":  # TF32 would round the float32 products: keep full precision
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.set_float32_matmul_precision("highest")
        cfg = net.config
        c, f = cfg.channels, cfg.hidden
        self.fg = f // c  # features per channel group
        self.a0 = torch.zeros(layout.positions, c * net.inputs_per_channel, dtype=torch.int8, device=device)
        self.x = torch.zeros(layout.positions, c, dtype=torch.int64, device=device)
        self.relu_h = [torch.zeros(layout.positions, f, dtype=torch.int8, device=device) for _ in range(cfg.blocks)]
        self.table = net.table.to(device)
        self.weights = {name: [self._group_weights(name, g) for g in range(c)] for name in layer_names(cfg)}
        taps = [layout.offset(0, -1), layout.offset(-1, 0), layout.offset(-1, -1)]  # left, up, upleft
        self.predictor_taps = torch.tensor(taps, dtype=torch.int64, device=device)

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
        if name == "out":  # centre only, own group only
            centre, w_centre = self.fg, w[rows, g * ig : (g + 1) * ig, c, c].T
        else:
            centre = g * ig if name == "first" else (g + 1) * ig
            w_centre = w[rows, :centre, c, c].T  # (centre, out_g)
        i8 = lambda t: _row_major(t.to(self.device, torch.int8))
        multiplier = a.get(f"{name}.multiplier")
        return GroupWeights(
            taps=torch.tensor(offsets, dtype=torch.int64, device=self.device),
            w_taps=i8(torch.cat(blocks, 0) if blocks else torch.zeros(0, og)),
            centre=centre,
            w_centre=i8(w_centre),
            bias=torch.from_numpy(a[f"{name}.bias"][rows]).to(self.device, torch.int32),
            w_centre_f=w_centre.to(self.device, torch.float32).contiguous(),
            bias_f=torch.from_numpy(a[f"{name}.bias"][rows]).to(self.device, torch.float32),
            multiplier=None if multiplier is None else torch.from_numpy(multiplier[rows]).to(self.device),
            shift=int(a[f"{name}.shift"]),
            out=rows,
        )

    def state(self, n: int) -> dict:
        f, blocks = self.net.config.hidden, self.net.config.blocks
        z = lambda: torch.zeros(n, f, dtype=torch.int8, device=self.device)
        return {"h": z(), "v": [z() for _ in range(blocks)], "o": z()}

    # ---- the layers: each computes one channel group at N positions ------------------------------------
    def _matmul(self, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Exact int8 x int8 -> int32 product (N, K) @ (K, out). On the CPU, torch._int_mm (VNNI); elsewhere
        a float32 product of the same integers, exact because every sum stays below 2^24 (checked at load)."""
        if a.device.type == "cpu":
            return torch._int_mm(_row_major(a), w)
        return (a.float() @ w.float()).int()

    def _accumulate(self, gw: GroupWeights, buffer: torch.Tensor | None, pos: torch.Tensor,
                    centre: torch.Tensor) -> torch.Tensor:
        """Accumulator (N, out_g) int32: off-centre taps gathered from `buffer`, plus the centre's inputs."""
        acc = gw.bias.expand(len(pos), -1)
        if gw.centre:
            acc = acc + self._matmul(centre.contiguous(), gw.w_centre)  # (N, centre) @ (centre, out_g)
        if len(gw.taps):
            nb = buffer.index_select(0, (pos[:, None] + gw.taps[None, :]).reshape(-1))  # (N * taps, in)
            acc = acc + self._matmul(nb.view(len(pos), -1), gw.w_taps)  # (N, taps * in) @ (taps * in, out_g)
        return acc

    @staticmethod
    def _requant(acc: torch.Tensor, gw: GroupWeights, lo: int, hi: int) -> torch.Tensor:
        """round(acc * multiplier / 2^shift), clamped to [lo, hi]: int64 arithmetic, int8 result."""
        half = (1 << gw.shift) >> 1
        return ((acc.long() * gw.multiplier + half) >> gw.shift).clamp_(lo, hi).to(torch.int8)

    def first(self, g: int, pos: torch.Tensor, st: dict) -> None:
        gw = self.weights["first"][g]
        acc = self._accumulate(gw, self.a0, pos, self.a0[pos, : gw.centre])
        st["h"][:, gw.out] = self._requant(acc, gw, -ACT_MAX, ACT_MAX)

    def store(self, b: int, g: int, pos: torch.Tensor, st: dict) -> None:
        """Publish relu of group g of the stream entering block b, for later positions' 3x3 taps."""
        out = self.weights["first"][g].out
        self.relu_h[b][pos, out] = st["h"][:, out].clamp(min=0)

    def inner(self, b: int, g: int, pos: torch.Tensor, st: dict) -> None:
        gw = self.weights[f"inner{b}"][g]
        buf = self.relu_h[b]
        acc = self._accumulate(gw, buf, pos, buf[pos, : gw.centre])
        st["v"][b][:, gw.out] = self._requant(acc, gw, 0, ACT_MAX)

    def outer(self, b: int, g: int, pos: torch.Tensor, st: dict) -> None:
        gw = self.weights[f"outer{b}"][g]
        acc = self._accumulate(gw, None, pos, st["v"][b][:, : gw.centre])
        y = self._requant(acc, gw, -ACT_MAX, ACT_MAX).short()
        st["h"][:, gw.out] = (st["h"][:, gw.out].short() + y).clamp_(-ACT_MAX, ACT_MAX).to(torch.int8)

    def head(self, g: int, pos: torch.Tensor, st: dict) -> None:
        gw = self.weights["head"][g]
        acc = self._accumulate(gw, None, pos, st["h"][:, : gw.centre].clamp(min=0))
        st["o"][:, gw.out] = self._requant(acc, gw, 0, ACT_MAX)

    def logits(self, g: int, st: dict) -> torch.Tensor:
        """(N, 256) logits of channel g in units of 2^-shift nats: float32 holding exact integers (a float
        product is faster than int8 for this shape; exact below 2^24 like every sum here)."""
        gw = self.weights["out"][g]
        own = st["o"][:, g * self.fg : (g + 1) * self.fg].float()
        return torch.addmm(gw.bias_f, own, gw.w_centre_f)

    def frequencies(self, logits: torch.Tensor) -> torch.Tensor:
        """Integer softmax: (N, 256) logits -> (N, 256) integer frequencies summing to FREQ_TOTAL, as
        float32 (exact below 2^24: the form the coder takes).

        e = table[max - logit] is exact (integers below 2^20); sum(e) is exact in float64 (below 2^53);
        then f = floor(e * r) with r slightly below FREQ_TOTAL / sum(e), so sum(f) <= FREQ_TOTAL; the
        remainder goes to residual 0 (the prediction). Every float step is one correctly rounded IEEE-754
        operation (divide, multiply, convert) on exactly known operands, so it gives the same bits on every
        IEEE machine; no reduction whose order could matter is rounded."""
        d = (logits.amax(dim=1, keepdim=True) - logits).clamp_(max=len(self.table) - 1).long()
        e = torch.take(self.table, d)  # (N, 256) float32 integers
        total = e.sum(dim=1, keepdim=True, dtype=torch.float64)  # (N, 1) exact
        r = (FREQ_TOTAL / total * (1 - 2.0**-20)).float()  # (N, 1), < FREQ_TOTAL / total (1 - 2^-21)
        f = (e * r).floor_()
        f[:, 0] += FREQ_TOTAL - f.sum(dim=1)  # exact: partial sums of f stay below 2^24
        return f

    # ---- the predictor ------------------------------------------------------------------------------
    def write_pixels(self, g: int, pos: torch.Tensor, values: torch.Tensor, pred: torch.Tensor) -> None:
        """Record known values (N,) of channel g at positions, with their predictions (N,)."""
        self.x[pos, g] = values
        k = self.net.inputs_per_channel
        self.a0[pos, g * k] = (values - 128).to(torch.int8)
        if k == 2:
            self.a0[pos, g * k + 1] = (values - pred).clamp_(-ACT_MAX, ACT_MAX).to(torch.int8)

    def medians(self, pos: torch.Tensor) -> torch.Tensor:
        """(N, C) MED predictions at positions from their causal neighbours."""
        nb = self.x.index_select(0, (pos[:, None] + self.predictor_taps[None, :]).reshape(-1))
        nb = nb.view(len(pos), 3, -1)  # (N, left/up/upleft, C)
        return med(nb[:, 0], nb[:, 1], nb[:, 2])

    def prediction(self, g: int, pos: torch.Tensor, medians: torch.Tensor) -> torch.Tensor:
        """(N,) prediction of channel g; channels before g must be known at pos already."""
        if self.net.config.predictor == "none":
            return torch.zeros(len(pos), dtype=torch.int64, device=self.device)
        if g == 0:
            return predict(medians[:, 0], None, None)
        return predict(medians[:, g], self.x[pos, g - 1], medians[:, g - 1])
