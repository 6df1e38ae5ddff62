"""The integer PixelCNN: the only source of the probabilities that reach the coder.

Every quantity is an exactly computed integer: int8 x int8 -> int32 products (exact by construction, or as
float32 products of integers whose sums stay below 2^24, checked when a model is loaded), int64 rescaling
by multiply and shift, ReLU as a clamp; logits become frequencies through the exp table stored with the
weights (pixzip.softmax). So encoder and decoder, CPU and GPU, one thread or many, compute the same integers
whatever the batch composition or the order of the sums (docs/design.md, "Exactness").

The encoder knows every pixel: it runs each layer once over all positions of a chunk of tiles, every
channel group at once (`stream`). The decoder runs all layers for one wavefront line at a time
(pixzip.schedule), one channel group after the other (`group_pass`; a joint_channels model has one group,
so one pass a step); on a CPU such a sub-pass is one compiled call (`decode_pass`, pixzip.subpass). All
use the same masked weights, gathers and rescaling, so they compute the same integers.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import kernels, modelcheck, precision, subpass
from .intformat import (ACT_MAX, INPUT_SCALE, STREAM16_MAX, STREAM_FINE_SHIFT, WEIGHT_MAX, PixelCNNConfig, causal_mask,
                        split_wide)
from .network import StepState
from .predictor import predict
from .schedule import Layout
from .softmax import exp_table

if TYPE_CHECKING:  # export reads a float model; decoding never imports one
    from .pixelcnn import PixelCNN


def layer_names(config: PixelCNNConfig) -> list[str]:
    """The integer layers in network order. Each has weight (out, in, k, k), bias (out,) and shift ();
    all but "out" also a multiplier (out,). "out" has none: its accumulator is the logit in 2^-shift nats."""
    return ["first"] + [f"{kind}{b}" for b in range(config.blocks) for kind in ("inner", "outer")] + ["head", "out"]


def export_arrays(model: "PixelCNN", inner: bool = True) -> dict[str, np.ndarray]:
    """Integer arrays of a calibrated (quantization-aware) model: what a weights file stores. inner=False
    leaves out the blocks' kxk layers, for models whose blocks have other layers there (pixzip.intlstm)."""
    if not model.quantized:
        raise ValueError("the model is not calibrated: train it through the quantization-aware phase first")
    cfg = model.config
    s = model.scales.tolist()
    s_h, s_o = model.stream_scale(), s[-1]  # s_h: the stream's relu, what layers read
    unit = model.stream_format()[0]  # the stream itself, what layers add into
    convs = {"first": (model.first, INPUT_SCALE, unit), "head": (model.head, s_h, s_o)}
    for b in range(cfg.blocks):
        if inner:
            convs[f"inner{b}"] = (model.inner[b], s_h, s[1 + b])
        convs[f"outer{b}"] = (model.outer[b], s[1 + b], unit)
    arrays = conv_arrays(convs)
    with torch.no_grad():
        w, b, k = model.out.logit_params(s_o)
        arrays["out.weight"], arrays["out.bias"] = w.long().cpu().numpy(), b.long().cpu().numpy()
        arrays["out.shift"] = np.array(k, dtype=np.int64)
    arrays["exp_table"] = exp_table(k)
    return arrays


def conv_arrays(convs: dict) -> dict[str, np.ndarray]:
    """name -> (MaskedConv, input scale, output scale) to the layers' integer arrays: weight (out, in, k, k),
    bias (out,), multiplier (out,), shift ()."""
    arrays = {}
    with torch.no_grad():
        for name, (conv, s_in, s_out) in convs.items():
            w, b, m, shift = conv.integer_params(s_in, s_out)
            arrays[f"{name}.weight"] = w.long().cpu().numpy()
            arrays[f"{name}.bias"] = b.long().cpu().numpy()
            arrays[f"{name}.multiplier"] = m.cpu().numpy()
            arrays[f"{name}.shift"] = np.array(shift, dtype=np.int64)
    return arrays


LAYER_MASKS = {"first": "A", "inner": "B", "outer": "B", "head": "B", "out": "own", "proj": "none",
               "cond_small": "none", "cond_full": "none"}


@dataclass
class Requant:
    """A layer's int8 weight matrix for some outputs, with their rescaling."""

    weight: torch.Tensor  # (taps * in, out) int8 values as float32, zero wherever the causal mask forbids;
    # a wide layer's (taps * in, 2 out): the high halves' columns, then the low halves' (split_wide)
    multiplier: torch.Tensor  # (out,) int64
    offset: torch.Tensor  # (out,) int64: bias * multiplier + 2^(shift - 1), the bias and rounding in one add
    wide: bool = False


@dataclass
class Layer:
    """One integer layer laid out for gather + matmul: y = requant(gather(input, taps) @ weight)."""

    taps: torch.Tensor  # (taps,) flat offsets of the positions read, relative to the position; centre last
    shift: int
    full: Requant  # all outputs: the encoder's pass over known pixels
    groups: list[Requant]  # one channel group's outputs each: the decoder's sub-passes


class IntegerPixelCNN:
    """Integer inference of a PixelCNN, built from the arrays of a model file (a pixzip.network.Network)."""

    bound: type  # the BoundNetwork class `bind` makes (set below, once it is defined)

    def __init__(self, config: PixelCNNConfig, arrays: dict[str, np.ndarray]):
        self.config = config
        self.groups = config.mask_groups  # the decoder's passes a step: one per channel group
        # The image channels each pass decodes: [[0], [1], [2]], or [[0, 1, 2]] with joint_channels.
        self.passes = [[g] for g in range(config.channels)] if self.groups > 1 else [list(range(config.channels))]
        self.arrays = {k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()}
        self.table = self.arrays["exp_table"].astype(np.int32)  # values < 2^21
        self.inputs_per_channel = 2 if config.residual_inputs else 1
        self.reach = max(config.first_kernel, config.kernel) // 2
        self.slope = self.reach + 1  # wavefront slope (pixzip.schedule)
        modelcheck.check_exact(self.arrays, self.conv_layers())
        # The output layer, which pixzip.softmax fuses with the softmax: per channel c its own F / C features'
        # weights (F / C, 256) and bias (256,), float32 holding integers. (With joint_channels too: its head's
        # features are computed from earlier pixels only, then split among the channels.)
        c = config.channels
        w = self.masked_weight("out")[:, :, 0, 0].reshape(c, 256, c, -1)  # (C, 256, C, F / C)
        self.out_weight = np.ascontiguousarray(np.stack([w[g, :, g].T.numpy() for g in range(c)]), np.float32)
        self.out_bias = self.arrays["out.bias"].reshape(c, 256).astype(np.float32)
        self.logit_shift = int(self.arrays["out.shift"])  # logits are integers in units of 2^-logit_shift nats

    def conv_layers(self) -> list[str]:
        """The convolution layers (pixzip.intnet.layer_names), laid out by BoundNetwork."""
        return layer_names(self.config)

    def masked_weight(self, name: str) -> torch.Tensor:
        """(out, in, k, k) integer weight with the causal mask applied once more: the decoder reads zeros
        for subpixels not decoded yet where the encoder reads their values, so a nonzero weight there
        would make the two disagree. Export already masks; this makes it a property of the loader."""
        w = torch.from_numpy(self.arrays[f"{name}.weight"])
        out_f, in_f, k, _ = w.shape
        kind = LAYER_MASKS[name.rstrip("0123456789")]
        groups = self.config.channels if kind == "own" else self.groups  # the output layer: one group a channel
        return w * causal_mask(out_f, in_f, k, groups, kind).long()

    def schedule_slope(self, tile: int) -> int:
        """The decoder's wavefront slope (pixzip.schedule) for tiles of this size."""
        return self.slope

    def bind(self, layout: Layout, device: torch.device, decoder: bool) -> "BoundNetwork":
        return self.bound(self, layout, device, decoder)


class BoundNetwork:
    """The integer network with buffers for one layout (a chunk of tiles) on one device.

    Buffers, flat over the layout's positions, zero where nothing was written (= zero padding, and
    subpixels not decoded yet):
      a0        (P, C * k) int8  the first layer's input at known pixels: x - 128 per channel and, for
                models with residual inputs (k = 2), the prediction error clamped to +-127
      x         (P, C) int32  known pixel values (the predictor's context)
      relu_h[b] (P, F) int8   relu of the residual stream entering block b (block b's kxk conv input);
                              the decoder's are views of one (B, P, F) array, relu_stack
    Per-position activations of N positions being computed: h (N, F) the residual stream (int8, or int16
    with stream_bits = 16: then in units of 2^-8 of its relu's, which a shift rounds to int8), and int8
    v (N, F) a block's inner activation, o (N, F) the head's output.

    A layer reads its input at a set of taps: the kxk layers at the causal half of their kernel
    (rows above, left in the row, the centre last), the 1x1 layers at the centre only. One gather of
    those taps and one int8 matmul with the masked weight give every output; the mask zeroes the
    centre's later channel groups, which the encoder has and the decoder has not.

    The codec uses what pixzip.network.Bound names; the rest is for subclasses, pixzip.subpass and tests.
    """

    # Whether pixzip.subpass's compiled kernel computes this network's decoder sub-pass (on a CPU): the
    # PixelCNN's layers, and its conditional version's projections. Subclasses whose blocks have other
    # layers (pixzip.intlstm's recurrences) set it False and decode layer by layer.
    compiled_subpass = True
    # Whether a decoding step's positions may be decoded in parts, the parts' steps interleaved
    # (pixzip.decoder.parts): prepare_step keeps nothing from step to step. pixzip.intlstm's Diagonal
    # BiLSTM keeps its row's steps, and sets it False.
    split_steps = True

    def __init__(self, net: IntegerPixelCNN, layout: Layout, device: torch.device, decoder: bool):
        self.net, self.layout, self.device = net, layout, device
        cfg = net.config
        c, f = cfg.channels, cfg.hidden
        self.fg = f // net.groups  # features per channel group
        fine = cfg.stream_bits == 16  # a 16-bit stream (pixzip.pixelcnn.STREAM_FINE_SHIFT)
        self.stream_max = STREAM16_MAX if fine else ACT_MAX  # the stream's clamp
        self.stream_dtype = torch.int16 if fine else torch.int8
        self.relu_shift = STREAM_FINE_SHIFT if fine else 0  # the stream -> its int8 relu
        self.cols = [slice(g * self.fg, (g + 1) * self.fg) for g in range(net.groups)]
        self.a0 = torch.zeros(layout.positions, c * net.inputs_per_channel, dtype=torch.int8, device=device)
        self.x = torch.zeros(layout.positions, c, dtype=torch.int32, device=device)
        # The decoder's positions sit at every depth at once, so it keeps every block's buffer; the encoder
        # runs block after block over all positions (`stream`) and reuses one.
        # (B, P, F) in one array, for pixzip.subpass.
        self.relu_stack = torch.zeros(cfg.blocks if decoder else 1, layout.positions, f, dtype=torch.int8,
                                      device=device)
        self.relu_h = list(self.relu_stack) if decoder else [self.relu_stack[0]] * cfg.blocks
        self._compiled = None  # pixzip.subpass's weights per group, made at the first decoder pass
        self.layers = {name: self._layer(name) for name in net.conv_layers()[:-1]}
        taps = [layout.offset(0, -1), layout.offset(-1, 0), layout.offset(-1, -1)]  # left, up, upleft
        self.predictor_taps = torch.tensor(taps, dtype=torch.int64, device=device)

    def _layer(self, name: str) -> Layer:
        w = self.net.masked_weight(name)  # (out, in, k, k)
        k = w.shape[2]
        c = k // 2
        offsets, blocks = [], []
        for dy in range(-c, 1):
            for dx in range(-c, c + 1):
                if dy == 0 and dx > 0:
                    break
                offsets.append(self.layout.offset(dy, dx))
                blocks.append(w[:, :, dy + c, dx + c].T)  # (in, out)
        weight = torch.cat(blocks, 0)  # (taps * in, out), taps in `offsets` order: the centre last
        return self._requant_layer(name, offsets, weight, self.cols)

    def _requant_layer(self, name: str, offsets: list[int], weight: torch.Tensor, group_cols: list) -> Layer:
        """Layer `name` (its multiplier, bias and shift from the model's arrays) reading `offsets` with
        weight (taps * in, out); group_cols[g] selects channel group g's outputs (a slice or an index)."""
        a = self.net.arrays
        multiplier = torch.from_numpy(a[f"{name}.multiplier"])
        shift = int(a[f"{name}.shift"])
        offset = torch.from_numpy(a[f"{name}.bias"]) * multiplier + ((1 << shift) >> 1)
        wide = bool(weight.abs().max() > WEIGHT_MAX)  # e.g. a first layer with first_weight_bits > 8

        def requant(cols) -> Requant:
            w = torch.cat(split_wide(weight[:, cols]), 1) if wide else weight[:, cols]
            return Requant(w.to(self.device, torch.float32).contiguous(), multiplier[cols].to(self.device),
                           offset[cols].to(self.device), wide)

        return Layer(torch.tensor(offsets, dtype=torch.int64, device=self.device), shift,
                     requant(slice(None)), [requant(cols) for cols in group_cols])

    # ---- the arithmetic ---------------------------------------------------------------------------------
    # TF32 (CUDA) or bfloat16 (oneDNN on some CPUs) would round the float32 products: full precision around
    # each matmul, torch's global settings put back after it (pixzip.precision). Wrapped here, on the class:
    # wrapping the bound method on each instance (as it once was) made every bound network a reference
    # cycle, freed only by the cyclic garbage collector, so a big image's chunks piled up (10 megapixels
    # decoded in 2.4 GB instead of 1.3).
    @precision.exact
    def _matmul(self, a: torch.Tensor, rq: Requant) -> torch.Tensor:
        """Exact int8 x int8 product (N, K) @ (K, out) with rq's weight, as a float32 product of the same
        integers on every device: exact on every IEEE machine, in any order of summation, because every sum
        stays below 2^24 (checked at load). (torch._int_mm is exact by construction, but 16 times slower than
        float32 on a CPU without VNNI, measured on this project's AVX2 machine; docs/design.md.) -> (N, out)
        float32 holding the integers (the rescaling reads them as they are), or for a wide layer int32: its
        two halves' 256 x high + low (also checked)."""
        acc = a.float() @ rq.weight  # a: float32 from the gathers already (no copy), int8 where built here
        if rq.wide:
            acc = acc.int()
            out = acc.shape[1] // 2
            acc = acc[:, :out] * 256 + acc[:, out:]
        return acc

    def _apply(self, name: str, a: torch.Tensor, g: int | None, lo: int, hi: int,
               residual: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """Layer `name` on its input a (N, taps * in) (integers: float32 from a gather, or int8), for all
        outputs (g None) or channel group g's: requantized and clamped to [lo, hi], added to `residual` if
        given (pixzip.kernels.requant) -> (N, out) int8, written to `out` if given."""
        layer = self.layers[name]
        rq = layer.full if g is None else layer.groups[g]
        acc = self._matmul(a, rq)
        return kernels.requant(acc, rq.multiplier, rq.offset, layer.shift, lo, hi, residual, out)

    def _gather(self, buffer: torch.Tensor, pos: torch.Tensor, name: str) -> torch.Tensor:
        """(N, taps * in) float32 holding int8 values: layer `name`'s input at positions, read from a buffer."""
        return kernels.gather(buffer, pos, self.layers[name].taps)

    # ---- the network: the encoder's pass (all groups) and the decoder's sub-pass (one group) -----------
    def stream(self, pos: torch.Tensor, batch: int) -> torch.Tensor:
        """The encoder's pass over known pixels: all positions (N,) of the layout -> (N, F) int8 residual
        stream after the last block, every group at once, in batches of `batch` positions (the integers do
        not depend on the split). Layer by layer: block b's kxk layer reads other positions' relu_h[b], so
        all of them are stored before any is read."""
        parts = [slice(a, a + batch) for a in range(0, len(pos), batch)]
        h = torch.empty(len(pos), self.net.config.hidden, dtype=self.stream_dtype, device=self.device)
        v = torch.empty(len(pos), self.net.config.hidden, dtype=torch.int8, device=self.device)
        top = self.stream_max
        for sl in parts:
            self._apply("first", self._gather(self.a0, pos[sl], "first"), None, -top, top, out=h[sl])
        for b in range(self.net.config.blocks):
            for sl in parts:
                self.add_condition(b, pos[sl], h[sl], None)
                kernels.scatter_relu(h[sl], pos[sl], self.relu_h[b], shift=self.relu_shift)
            self._encode_inner(b, pos, batch, v)
            for sl in parts:
                self._apply(f"outer{b}", v[sl], None, -top, top, residual=h[sl], out=h[sl])
        for sl in parts:
            self.add_condition(self.net.config.blocks, pos[sl], h[sl], None)
        return h

    def _encode_inner(self, b: int, pos: torch.Tensor, batch: int, v: torch.Tensor) -> None:
        """Block b's inner activation at all positions (N,) -> v (N, F), from relu_h[b] (all written):
        here its kxk layer, in batches; pixzip.intlstm's models run their recurrences instead."""
        for a in range(0, len(pos), batch):
            sl = slice(a, a + batch)
            self._apply(f"inner{b}", self._gather(self.relu_h[b], pos[sl], "inner0"), None, 0, ACT_MAX, out=v[sl])

    def _decode_inner(self, b: int, pos: torch.Tensor, g: int, v: torch.Tensor) -> None:
        """Channel group g's part of block b's inner activation at the step's positions, into v[:, group]."""
        cols = self.cols[g]
        self._apply(f"inner{b}", self._gather(self.relu_h[b], pos, "inner0"), g, 0, ACT_MAX, out=v[:, cols])

    def group_pass(self, g: int, pos: torch.Tensor, st: StepState) -> None:
        """The decoder's sub-pass for channel group g at positions whose earlier groups are done: every
        layer's group-g outputs up to the stream h, each layer reading what earlier steps and groups wrote.
        st holds the step's activations (`state`)."""
        cols = self.cols[g]
        h, top = st.h, self.stream_max
        self._apply("first", self._gather(self.a0, pos, "first"), g, -top, top, out=h[:, cols])
        for b in range(self.net.config.blocks):
            self.add_condition(b, pos, h[:, cols], g)
            kernels.scatter_relu(h[:, cols], pos, self.relu_h[b], cols.start, self.relu_shift)
            v = st.v[b]
            self._decode_inner(b, pos, g, v)
            self._apply(f"outer{b}", v, g, -top, top, residual=h[:, cols], out=h[:, cols])
        self.add_condition(self.net.config.blocks, pos, h[:, cols], g)

    def decode_pass(self, g: int, pos: torch.Tensor, st: StepState, with_head: bool) -> None:
        """The decoder's sub-pass for channel group g (`group_pass`) and, with_head, its head output into
        st.o[:, cols]: one compiled kernel (pixzip.subpass) where it applies, else layer by layer."""
        if self._compiled is None:
            self._compiled = self._compile() or False
        if self._compiled:
            n = lambda t: t.numpy()
            subpass.run(self._compiled[g], n(pos), self.cols[g].start, n(self.a0), n(self.relu_stack),
                        self._condition_features(), self.stream_max, self.relu_shift, with_head, n(st.h),
                        n(st.v), n(st.o))
            return
        self.group_pass(g, pos, st)
        if with_head:
            self.head(st.h, g, out=st.o[:, self.cols[g]])

    def _compile(self) -> list[subpass.GroupWeights] | None:
        """Each channel group's layers laid out for pixzip.subpass, or None where that kernel does not
        compute this network: another device (CUDA), networks whose blocks have other layers (the PixelRNN's
        recurrences: `compiled_subpass` False), the portable path switched on (kernels.USE_NUMBA off), or a
        wide layer after the first (subpass.group_weights). Conditional networks bring their projections
        (`_projections`)."""
        if not self.compiled_subpass or self.device.type != "cpu" or not kernels.USE_NUMBA:
            return None
        return subpass.group_weights(self.layers, self.net.config, self.net.groups, self._projections(),
                                     self._condition_features().shape[1])

    def _projections(self) -> list[str]:
        """The layers that add conditioning features into the stream, after the first layer and after each
        block (`add_condition`): none for an unconditional network."""
        return []

    def _condition_features(self) -> np.ndarray:
        """(P, Fc) int8 the features `_projections` read; (0, 0) for an unconditional network."""
        return np.zeros((0, 0), np.int8)

    def add_condition(self, k: int, pos: torch.Tensor, h: torch.Tensor, g: int | None) -> None:
        """Add conditioning features into the stream h (N, F or F / C) at positions after the first layer
        (k = 0) or block k - 1: nothing for an unconditional network (pixzip.intscale)."""

    def state(self, n: int) -> StepState:
        """Fresh activations for one decoding step of n positions, zero where no group has written yet:
        h (N, F) the stream, v[b] (N, F) block b's inner activation, o (N, F) the head's output."""
        f = self.net.config.hidden
        z = lambda dtype=torch.int8: torch.zeros(n, f, dtype=dtype, device=self.device)
        v = torch.zeros(self.net.config.blocks, n, f, dtype=torch.int8, device=self.device)  # v[b]: (N, F)
        return StepState(h=z(self.stream_dtype), v=v, o=z())

    def prepare_step(self, pos: torch.Tensor) -> None:
        """Called by the decoder before each step's group passes; nothing to do for a PixelCNN."""

    def head(self, h: torch.Tensor, g: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """(N, F) stream -> (N, F) head output of all groups, or (N, F / C) of group g (into out if given).
        pixzip.softmax takes it to frequencies."""
        return self._apply("head", kernels.stream_relu(h, self.relu_shift), g, 0, ACT_MAX, out=out)

    # ---- the predictor ------------------------------------------------------------------------------
    def set_pixels(self, pos: torch.Tensor, values: torch.Tensor) -> None:
        """The encoder's known pixel values (N, C) int32 at positions: the predictor's context, all set
        before `medians` reads any (the network's inputs follow channel by channel, `write_pixels`)."""
        self.x[pos] = values.to(self.x.dtype)

    def write_pixels(self, g: int, pos: torch.Tensor, values: torch.Tensor, pred: torch.Tensor) -> None:
        """Record known values (N,) of channel g at positions, with their predictions (N,)."""
        kernels.write_pixels(self.x, self.a0, pos, g, values, pred, self.net.inputs_per_channel)

    def medians(self, pos: torch.Tensor) -> torch.Tensor:
        """(N, C) MED predictions at positions from their causal neighbours."""
        return kernels.medians(self.x, pos, self.predictor_taps)

    def prediction(self, g: int, pos: torch.Tensor, medians: torch.Tensor) -> torch.Tensor:
        """(N,) prediction of channel g; channels before g must be known at pos already."""
        if self.net.config.predictor == "none":
            return torch.zeros(len(pos), dtype=torch.int32, device=self.device)
        if g == 0:
            return predict(medians[:, 0], None, None)
        return predict(medians[:, g], self.x[pos, g - 1], medians[:, g - 1])


IntegerPixelCNN.bound = BoundNetwork
