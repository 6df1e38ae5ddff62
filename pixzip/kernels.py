"""The integer network's elementwise work, fused: gather, rescale, scatter. Exact integers only.

Each function has two implementations with the same integer semantics: fused numba kernels for CPU
tensors (one pass over memory instead of five or six torch operations, and no per-operation dispatch on
the decoder's small tensors), and plain torch for other devices (CUDA). Both are pure integer arithmetic,
so they agree bit for bit; tests run the torch versions on the CPU against the numba ones.
"""
import os

import numba
import numpy as np
import torch

# The LSTM cell's fixed point (pixzip.pixelrnn): gates in units of 2^-GATE_BITS, the cell in 2^-CELL_BITS.
# CELL_BITS is unused here, imported under its old name for backward compatibility.
from .intformat import ACT_MAX, CELL_BITS, CELL_MAX, GATE_BITS, INDEX_SHIFT, PRODUCT_SHIFT  # noqa: F401
from .predictor import med

USE_NUMBA = True  # tests switch this off to check the torch versions against the numba ones


def compiled_here(*dispatchers) -> bool:
    """Whether numba has these kernels (cache=True) compiled for this machine on disk, judged by its cache's
    index files: if not, their first call compiles them (seconds; docs/benchmarks.md). True when it cannot
    tell (another numba's internals)."""
    try:
        return all(os.path.exists(d._cache._cache_file._index_path) for d in dispatchers)
    except AttributeError:
        return True


def compiled_for_this_machine(decoding: bool) -> bool:
    """Whether the compiled kernels that compressing (or, with decoding, decompressing) runs on a CPU are
    on disk for this machine already (`compiled_here`): if not, the first file takes seconds more."""
    from . import sharpness, softmax, subpass  # they import this module

    needed = (subpass._subpass, softmax._frequencies) if decoding else (_gather, _requant, softmax._frequencies,
                                                                         sharpness._fit)
    return compiled_here(*needed)


def _numba(*tensors: torch.Tensor) -> bool:
    return USE_NUMBA and all(t.device.type == "cpu" for t in tensors)


@numba.njit(cache=True, nogil=True, parallel=True)
def _gather(buffer, pos, taps, out):  # pragma: no cover - compiled
    k = buffer.shape[1]
    for i in numba.prange(len(pos)):
        for t in range(len(taps)):
            src = buffer[pos[i] + taps[t]]
            for c in range(k):
                out[i, t * k + c] = src[c]


def gather(buffer: torch.Tensor, pos: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """buffer (P, K) int8 rows at pos[i] + taps[t] -> (N, T * K) float32 holding the same integers,
    taps-major: a layer's im2col, in the type its exact float32 product reads (pixzip.intnet `_matmul`)."""
    n, k = len(pos), buffer.shape[1]
    if _numba(buffer):
        out = torch.empty(n, len(taps) * k, dtype=torch.float32)
        _gather(buffer.numpy(), pos.numpy(), taps.numpy(), out.numpy())
        return out
    return buffer.index_select(0, (pos[:, None] + taps[None, :]).view(-1)).view(n, -1).float()


@numba.njit(cache=True, nogil=True, parallel=True)
def _requant(acc, multiplier, offset, shift, lo, hi, residual, out):  # pragma: no cover - compiled
    for i in numba.prange(acc.shape[0]):
        for j in range(acc.shape[1]):
            v = min(max((np.int64(acc[i, j]) * multiplier[j] + offset[j]) >> shift, lo), hi)
            if residual.shape[0]:
                v = min(max(v + residual[i, j], lo), hi)
            out[i, j] = v


def requant(acc: torch.Tensor, multiplier: torch.Tensor, offset: torch.Tensor, shift: int, lo: int, hi: int,
            residual: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """acc (N, M) int32, or float32 holding integers -> y = clamp((acc * multiplier + offset) >> shift, lo, hi),
    int64 arithmetic
    (offset = bias * multiplier + 2^(shift-1): bias and rounding in one add); with a residual (N, M) (the
    residual stream, int8 or int16), clamp(residual + y, lo, hi) instead. Written to out (N, M) (int8 or
    int16, may be a column slice) or a new int8 tensor, which is returned."""
    out = torch.empty(acc.shape, dtype=torch.int8, device=acc.device) if out is None else out
    if _numba(acc):
        res = residual if residual is not None else torch.zeros(0, acc.shape[1], dtype=out.dtype)
        _requant(acc.numpy(), multiplier.numpy(), offset.numpy(), shift, lo, hi, res.numpy(), out.numpy())
        return out
    y = ((acc.long() * multiplier + offset) >> shift).clamp_(lo, hi)
    if residual is not None:
        y = (y + residual).clamp_(lo, hi)
    out.copy_(y)
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _scatter_relu(values, pos, col, shift, buffer):  # pragma: no cover - compiled
    half = (1 << shift) >> 1
    for i in numba.prange(len(pos)):
        for c in range(values.shape[1]):
            buffer[pos[i], col + c] = min(max((np.int32(values[i, c]) + half) >> shift, 0), ACT_MAX)


def stream_relu(values: torch.Tensor, shift: int) -> torch.Tensor:
    """The int8 relu of the residual stream (N, M) (int8, or int16 in units of 2^-shift of the relu's):
    clamp((v + 2^(shift-1)) >> shift, 0, 127), rounding half up."""
    if shift == 0:  # an int8 stream is its relu's range already
        return values.clamp(min=0)
    return ((values.int() + ((1 << shift) >> 1)) >> shift).clamp_(0, ACT_MAX).to(torch.int8)


def scatter_relu(values: torch.Tensor, pos: torch.Tensor, buffer: torch.Tensor, col: int = 0, shift: int = 0) -> None:
    """buffer[pos[i], col : col + M] = stream_relu(values[i], shift) for values (N, M) int8 or int16."""
    if _numba(buffer):
        _scatter_relu(values.numpy(), pos.numpy(), col, shift, buffer.numpy())
    else:
        buffer[pos, col : col + values.shape[1]] = stream_relu(values, shift)


@numba.njit(cache=True, nogil=True)
def _write_pixels(x, a0, pos, g, values, pred, inputs):  # pragma: no cover - compiled
    for i in range(len(pos)):
        v, p = np.int64(values[i]), pos[i]
        x[p, g] = v
        a0[p, g * inputs] = v - 128
        if inputs == 2:
            a0[p, g * inputs + 1] = min(max(v - np.int64(pred[i]), -ACT_MAX), ACT_MAX)


def write_pixels(x: torch.Tensor, a0: torch.Tensor, pos: torch.Tensor, g: int, values: torch.Tensor,
                 pred: torch.Tensor, inputs: int) -> None:
    """Record known values (N,) of channel g at positions: x[pos, g] = values (the predictor's context, int32)
    and the first layer's inputs a0[pos, g * inputs] = values - 128 and, with inputs = 2, the prediction
    error clamp(values - pred, -127, 127) (int8). One call instead of three indexed writes: the decoder
    makes it for every channel of every step."""
    if _numba(x):
        _write_pixels(x.numpy(), a0.numpy(), pos.numpy(), g, values.numpy(), pred.numpy(), inputs)
        return
    x[pos, g] = values.to(x.dtype)
    a0[pos, g * inputs] = (values - 128).to(torch.int8)
    if inputs == 2:
        a0[pos, g * inputs + 1] = (values - pred).clamp(-ACT_MAX, ACT_MAX).to(torch.int8)


@numba.njit(cache=True, nogil=True)
def _medians(x, pos, taps, out):  # pragma: no cover - compiled
    for i in range(len(pos)):
        for c in range(x.shape[1]):
            left, up, upleft = x[pos[i] + taps[0], c], x[pos[i] + taps[1], c], x[pos[i] + taps[2], c]
            lo, hi = min(left, up), max(left, up)
            out[i, c] = lo if upleft >= hi else (hi if upleft <= lo else left + up - upleft)


def medians(x: torch.Tensor, pos: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """(N, C) MED predictions (pixzip.predictor.med) of every channel at positions, from x (P, C) at the
    taps (left, up, upleft)."""
    if _numba(x):
        out = torch.empty(len(pos), x.shape[1], dtype=x.dtype)
        _medians(x.numpy(), pos.numpy(), taps.numpy(), out.numpy())
        return out
    nb = x.index_select(0, (pos[:, None] + taps[None, :]).reshape(-1)).view(len(pos), 3, -1)  # (N, 3, C)
    return med(nb[:, 0], nb[:, 1], nb[:, 2])


@numba.njit(cache=True, nogil=True, parallel=True)
def _lstm_cell(acc, multiplier, offset, shift, c_prev, sigmoid, tanh, h_out, c_out):  # pragma: no cover
    n = c_prev.shape[1]
    top = (len(sigmoid) - 1) // 2  # GATE_MAX: tables run over -top .. top
    half_f = np.int64(1) << (GATE_BITS - 1)
    half_p = np.int64(1) << (PRODUCT_SHIFT - 1)
    half_i = np.int64(1) << (INDEX_SHIFT - 1)
    half_h = np.int64(1) << (2 * GATE_BITS - 1)
    for r in numba.prange(acc.shape[0]):
        for k in range(n):
            zi = min(max((np.int64(acc[r, k]) * multiplier[k] + offset[k]) >> shift, -top), top) + top
            zf = min(max((np.int64(acc[r, n + k]) * multiplier[n + k] + offset[n + k]) >> shift, -top), top) + top
            zo = min(max((np.int64(acc[r, 2 * n + k]) * multiplier[2 * n + k] + offset[2 * n + k]) >> shift, -top),
                     top) + top
            zg = min(max((np.int64(acc[r, 3 * n + k]) * multiplier[3 * n + k] + offset[3 * n + k]) >> shift, -top),
                     top) + top
            c = (((sigmoid[zf] * np.int64(c_prev[r, k]) + half_f) >> GATE_BITS)
                 + ((sigmoid[zi] * tanh[zg] + half_p) >> PRODUCT_SHIFT))
            c = min(max(c, -CELL_MAX), CELL_MAX)
            t = tanh[min(max((c + half_i) >> INDEX_SHIFT, -top), top) + top]
            h_out[r, k] = (sigmoid[zo] * t * ACT_MAX + half_h) >> (2 * GATE_BITS)
            c_out[r, k] = c


def lstm_cell(acc: torch.Tensor, multiplier: torch.Tensor, offset: torch.Tensor, shift: int, c_prev: torch.Tensor,
              sigmoid_table: torch.Tensor, tanh_table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The integer LSTM cell (pixzip.pixelrnn's quantization-aware arithmetic): acc (N, 4n) gate accumulators
    (int32, or float32 holding integers), gate-major (i, f, o, g), rescaled like `requant` to table indices
    (units of 1/GATE_STEP, clamped); c_prev (N, n) int32 the previous cell -> (h (N, n) int8, c (N, n) int32).
    Rounding is by shifts (floor of x + 1/2); sigmoid and tanh come from the int64 tables (units of
    2^-GATE_BITS)."""
    n = c_prev.shape[1]
    if _numba(acc):
        h, c = torch.empty(len(acc), n, dtype=torch.int8), torch.empty(len(acc), n, dtype=torch.int32)
        _lstm_cell(acc.numpy(), multiplier.numpy(), offset.numpy(), shift, c_prev.contiguous().numpy(),
                   sigmoid_table.numpy(), tanh_table.numpy(), h.numpy(), c.numpy())
        return h, c
    top = (len(sigmoid_table) - 1) // 2
    z = ((acc.long() * multiplier + offset) >> shift).clamp_(-top, top) + top
    z = z.view(len(acc), 4, n)
    i, f, o = (sigmoid_table[z[:, q]] for q in range(3))
    g = tanh_table[z[:, 3]]
    c = (((f * c_prev.long() + (1 << (GATE_BITS - 1))) >> GATE_BITS)
         + ((i * g + (1 << (PRODUCT_SHIFT - 1))) >> PRODUCT_SHIFT)).clamp_(-CELL_MAX, CELL_MAX)
    t = tanh_table[((c + (1 << (INDEX_SHIFT - 1))) >> INDEX_SHIFT).clamp_(-top, top) + top]
    h = (o * t * ACT_MAX + (1 << (2 * GATE_BITS - 1))) >> (2 * GATE_BITS)
    return h.to(torch.int8), c.to(torch.int32)
