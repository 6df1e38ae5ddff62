"""The PixelCNN decoder's sub-pass as one compiled kernel: every layer of one channel group at one
wavefront line's positions, the head included, in a single call.

The decoder's steps are small (a wavefront line: up to 32 positions a tile), so run as separate torch and
numba calls (pixzip.intnet's group_pass) a sub-pass pays the fixed cost of dozens of calls, and their
products, conversions included, ran at about two thirds of this kernel's speed (docs/benchmarks.md,
"Where decoding time goes"). Here four positions at a time go through all layers: each layer's input is
gathered into a float32 row per position, and each output is a dot product of those rows with the
output's weights. The products are float32 sums of integers like pixzip.intnet's `_matmul`: exact in any
order of summation, because every sum stays below 2^24 (checked when the model is loaded), so fastmath's
reordering and fused multiply-adds cannot change them, and the dot products vectorize. The positions of
one step never read each other's activations (the wavefront, pixzip.schedule), so the threads split them
freely.

Written for speed on a CPU's vector units (measured in docs/benchmarks.md): no array views or allocations
inside the parallel loop (their reference counts would bounce between cores), scalar accumulators (which
stay in registers), weights laid out output-major so each dot product reads contiguous memory.

The integers are pixzip.intnet's BoundNetwork.group_pass and head, operation for operation: the tests run
both and compare every frequency and byte (tests/test_exactness.py, tests/test_kernels.py).
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from .intformat import ACT_MAX, PixelCNNConfig

if TYPE_CHECKING:
    from .intnet import Layer

ROWS = 4  # positions computed together: each weight loaded once for four of them


@dataclass
class GroupWeights:
    """One channel group's layers (n outputs each), laid out for the kernel: weights output-major,
    (layers, n, taps x input features) float32 holding integers; rescaling in network order: first, inner0,
    outer0, inner1, ..., head."""

    first_taps: np.ndarray  # (T0,) int64 offsets in the layout, the centre last
    first: np.ndarray  # (1, n, K0), or (2, n, K0) for a wide layer: high halves, low halves (w = 256 hi + lo)
    inner_taps: np.ndarray  # (T1,)
    inner: np.ndarray  # (B, n, K1)
    outer: np.ndarray  # (B, n, F)
    head: np.ndarray  # (1, n, F)
    multiplier: np.ndarray  # (2 B + 2, n) int64
    offset: np.ndarray  # (2 B + 2, n) int64
    shift: np.ndarray  # (2 B + 2,) int64
    # A conditional network's projections (pixzip.intscale): the conditioning features (P, Fc) at a position
    # through a 1x1 layer, added into the stream after the first layer and after each block; (0, ...) for
    # none.
    projection: np.ndarray  # (B + 1, n, Fc)
    projection_multiplier: np.ndarray  # (B + 1, n)
    projection_offset: np.ndarray  # (B + 1, n)
    projection_shift: np.ndarray  # (B + 1,)


def _stacked(arrays: list[np.ndarray], shape: tuple, dtype=np.float32) -> np.ndarray:
    """np.stack(arrays), or an empty (0, *shape) array when there are none (a network without blocks)."""
    return np.stack(arrays) if arrays else np.zeros((0,) + shape, dtype)


def group_weights(layers: dict[str, "Layer"], cfg: PixelCNNConfig, groups: int, projections: list[str],
                  features: int) -> list[GroupWeights] | None:
    """A bound network's layers (pixzip.intnet.BoundNetwork.layers) laid out for the kernel, one
    GroupWeights a channel group; None if a layer after the first is wide (the kernel splits the first
    layer's halves only). projections: the conditioning layers (none for an unconditional network), which
    read `features` conditioning features."""
    names = ["first"] + [f"{kind}{b}" for b in range(cfg.blocks) for kind in ("inner", "outer")] + ["head"]
    if any(layers[name].full.wide for name in names[1:] + projections):
        return None
    fg = cfg.hidden // groups  # features per channel group: each output's rows
    inner_k = len(layers["inner0"].taps) * cfg.hidden if cfg.blocks else 0
    compiled = []
    for g in range(groups):
        rq = {name: layers[name].groups[g] for name in names + projections}
        output_major = lambda name: rq[name].weight.T.contiguous().numpy()  # (n, K), or (2 n, K) if wide
        stack = lambda kind, k: _stacked([output_major(f"{kind}{b}") for b in range(cfg.blocks)], (fg, k))
        first = output_major("first")
        compiled.append(GroupWeights(
            first_taps=layers["first"].taps.numpy(), first=first.reshape(-1, fg, first.shape[1]),
            inner_taps=layers["inner0"].taps.numpy() if cfg.blocks else np.zeros(0, np.int64),
            inner=stack("inner", inner_k), outer=stack("outer", cfg.hidden), head=output_major("head")[None],
            multiplier=np.stack([rq[name].multiplier.numpy() for name in names]),
            offset=np.stack([rq[name].offset.numpy() for name in names]),
            shift=np.array([layers[name].shift for name in names], np.int64),
            projection=_stacked([output_major(name) for name in projections], (fg, features)),
            projection_multiplier=_stacked([rq[name].multiplier.numpy() for name in projections], (fg,), np.int64),
            projection_offset=_stacked([rq[name].offset.numpy() for name in projections], (fg,), np.int64),
            projection_shift=np.array([layers[name].shift for name in projections], np.int64)))
    return compiled


@numba.njit(fastmath=True, nogil=True, inline="always")
def _dot4(x, w, layer, j, k, out):  # pragma: no cover - compiled
    """out[r] = x[r, :k] . w[layer, j, :k] for the four rows r."""
    s0 = s1 = s2 = s3 = np.float32(0)
    for i in range(k):
        wi = w[layer, j, i]
        s0 += x[0, i] * wi
        s1 += x[1, i] * wi
        s2 += x[2, i] * wi
        s3 += x[3, i] * wi
    out[0], out[1], out[2], out[3] = s0, s1, s2, s3


@numba.njit(nogil=True, inline="always")
def _rescale(a, multiplier, offset, shift, lo, hi):  # pragma: no cover - compiled
    """pixzip.kernels.requant's arithmetic for one accumulator (an exact integer)."""
    return min(max((np.int64(a) * multiplier + offset) >> shift, lo), hi)


@numba.njit(nogil=True, inline="always")
def _relu(v, half, shift):  # pragma: no cover - compiled
    """pixzip.kernels.stream_relu for one value of the stream."""
    return min(max((np.int32(v) + half) >> shift, 0), ACT_MAX)


@numba.njit(fastmath=True, nogil=True, inline="always")
def _gather(buf, layer, at, taps, x):  # pragma: no cover - compiled
    """x[r, t * C + c] = buf[layer, at[r] + taps[t], c]: a layer's input for the four rows."""
    cin = buf.shape[2]
    for r in range(ROWS):
        for t in range(len(taps)):
            src = at[r] + taps[t]
            for c in range(cin):
                x[r, t * cin + c] = buf[layer, src, c]


@numba.njit(fastmath=True, nogil=True, inline="always")
def _add_projection(x, rows, at, real, cond, centre, proj, multiplier, offset, shift, k, col, top, h,
                    s):  # pragma: no cover - compiled
    """A conditional network's projection k of cond at the centre tap: h[:, col + j] += its output, both
    clamped (like `outer`)."""
    _gather(cond, 0, at, centre, x)
    for j in range(proj.shape[1]):
        _dot4(x, proj, k, j, proj.shape[2], s)
        for r in range(real):
            y = _rescale(s[r], multiplier[k, j], offset[k, j], shift[k], -top, top)
            h[rows[r], col + j] = min(max(np.int64(h[rows[r], col + j]) + y, -top), top)


@numba.njit(fastmath=True, nogil=True, parallel=True, cache=True)
def _subpass(pos, col, a0, relu_h, h, v, o, first_taps, first, inner_taps, inner, outer, head, multiplier,
             offset, shift, cond, proj, proj_multiplier, proj_offset, proj_shift, top, relu_shift, with_head,
             threads):  # pragma: no cover - compiled
    """Channel group columns col .. col + n of every layer at positions pos (N,): the stream h (N, F), the
    blocks' inner activations v (B, N, F), the relu buffers relu_h (B, P, F) at pos, and with_head the head's
    output o (N, F). a0 (1, P, C_in) is the first layer's input, cond (1, P, Fc) a conditional network's
    features (projected with proj, none if proj is empty). A tail block computes its last position more
    than once and stores it once."""
    n, features = len(pos), h.shape[1]
    outputs, blocks, wide = first.shape[1], inner.shape[0], first.shape[0] == 2
    half = (1 << relu_shift) >> 1
    k_first, k_inner = first.shape[2], inner.shape[2]
    width = max(k_first, k_inner, features, cond.shape[2])
    conditioned = proj.shape[0] > 0
    n_blocks = (n + ROWS - 1) // ROWS
    for part in numba.prange(threads):  # one contiguous share of the blocks each: scratch made once
        x = np.empty((ROWS, width), np.float32)
        s = np.empty(ROWS, np.float32)
        low = np.empty(ROWS, np.float32)
        rows = np.empty(ROWS, np.int64)  # state rows
        at = np.empty(ROWS, np.int64)  # their positions in the layout
        centre = np.zeros(1, np.int64)  # the one tap of a projection
        for blk in range(part * n_blocks // threads, (part + 1) * n_blocks // threads):
            for r in range(ROWS):
                rows[r] = min(blk * ROWS + r, n - 1)
                at[r] = pos[rows[r]]
            real = min(ROWS, n - blk * ROWS)
            _gather(a0, 0, at, first_taps, x)  # the first layer -> the stream
            for j in range(outputs):
                _dot4(x, first, 0, j, k_first, s)
                if wide:
                    _dot4(x, first, 1, j, k_first, low)
                for r in range(real):
                    a = np.int64(s[r]) * 256 + np.int64(low[r]) if wide else np.int64(s[r])
                    h[rows[r], col + j] = _rescale(a, multiplier[0, j], offset[0, j], shift[0], -top, top)
            if conditioned:
                _add_projection(x, rows, at, real, cond, centre, proj, proj_multiplier, proj_offset, proj_shift,
                                0, col, top, h, s)
            for b in range(blocks):
                for r in range(real):  # the stream's relu, which block b's kxk layer reads, here and later
                    for j in range(outputs):
                        relu_h[b, at[r], col + j] = _relu(h[rows[r], col + j], half, relu_shift)
                _gather(relu_h, b, at, inner_taps, x)  # inner: the kxk layer -> v
                li = 1 + 2 * b
                for j in range(outputs):
                    _dot4(x, inner, b, j, k_inner, s)
                    for r in range(real):
                        v[b, rows[r], col + j] = _rescale(s[r], multiplier[li, j], offset[li, j], shift[li], 0, ACT_MAX)
                for r in range(ROWS):  # outer: the 1x1 layer over all of v, added into the stream
                    for c in range(features):
                        x[r, c] = v[b, rows[r], c]
                for j in range(outputs):
                    _dot4(x, outer, b, j, features, s)
                    for r in range(real):
                        y = _rescale(s[r], multiplier[li + 1, j], offset[li + 1, j], shift[li + 1], -top, top)
                        h[rows[r], col + j] = min(max(np.int64(h[rows[r], col + j]) + y, -top), top)
                if conditioned:
                    _add_projection(x, rows, at, real, cond, centre, proj, proj_multiplier, proj_offset,
                                    proj_shift, b + 1, col, top, h, s)
            if with_head:  # the relu of the whole stream (earlier groups' columns included) -> the head
                for r in range(ROWS):
                    for c in range(features):
                        x[r, c] = _relu(h[rows[r], c], half, relu_shift)
                for j in range(outputs):
                    _dot4(x, head, 0, j, features, s)
                    for r in range(real):
                        o[rows[r], col + j] = _rescale(s[r], multiplier[-1, j], offset[-1, j], shift[-1], 0, ACT_MAX)


def run(gw: GroupWeights, pos: np.ndarray, col: int, a0: np.ndarray, relu_h: np.ndarray, cond: np.ndarray,
        top: int, relu_shift: int, with_head: bool, h: np.ndarray, v: np.ndarray, o: np.ndarray) -> None:
    """One sub-pass (see _subpass) on numpy views of the decoder's buffers (a0 (P, C_in), relu_h (B, P, F),
    cond (P, Fc) or (0, 0) for an unconditional network) and the step's state."""
    if len(pos):
        _subpass(pos, col, a0[None], relu_h, h, v, o, gw.first_taps, gw.first, gw.inner_taps, gw.inner, gw.outer,
                 gw.head, gw.multiplier, gw.offset, gw.shift, cond[None], gw.projection, gw.projection_multiplier,
                 gw.projection_offset, gw.projection_shift, top, relu_shift, with_head, numba.get_num_threads())
