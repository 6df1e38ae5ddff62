"""The integer network's elementwise work, fused: gather, rescale, scatter. Exact integers only.

Each function has two implementations with the same integer semantics: fused numba kernels for CPU
tensors (one pass over memory instead of five or six torch operations, and no per-operation dispatch on
the decoder's small tensors), and plain torch for other devices (CUDA). Both are pure integer arithmetic,
so they agree bit for bit; tests run the torch versions on the CPU against the numba ones.
"""
import numba
import numpy as np
import torch

ACT_MAX = 127
USE_NUMBA = True  # tests switch this off to check the torch versions against the numba ones


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
    """buffer (P, K) rows at pos[i] + taps[t] -> (N, T * K), taps-major: a layer's im2col."""
    n, k = len(pos), buffer.shape[1]
    if _numba(buffer):
        out = torch.empty(n, len(taps) * k, dtype=buffer.dtype)
        _gather(buffer.numpy(), pos.numpy(), taps.numpy(), out.numpy())
        return out
    return buffer.index_select(0, (pos[:, None] + taps[None, :]).view(-1)).view(n, -1)


@numba.njit(cache=True, nogil=True, parallel=True)
def _requant(acc, multiplier, offset, shift, lo, hi, residual, out):  # pragma: no cover - compiled
    for i in numba.prange(acc.shape[0]):
        for j in range(acc.shape[1]):
            v = min(max((np.int64(acc[i, j]) * multiplier[j] + offset[j]) >> shift, lo), hi)
            if residual.shape[0]:
                v = min(max(v + residual[i, j], -ACT_MAX), ACT_MAX)
            out[i, j] = v


def requant(acc: torch.Tensor, multiplier: torch.Tensor, offset: torch.Tensor, shift: int, lo: int, hi: int,
            residual: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """acc (N, M) int32 -> y = clamp((acc * multiplier + offset) >> shift, lo, hi), int64 arithmetic
    (offset = bias * multiplier + 2^(shift-1): bias and rounding in one add); with a residual (N, M) int8,
    clamp(residual + y, -127, 127) instead. Written to out (N, M) int8 (may be a column slice) or a new
    tensor, which is returned."""
    out = torch.empty(acc.shape, dtype=torch.int8, device=acc.device) if out is None else out
    if _numba(acc):
        res = residual if residual is not None else torch.zeros(0, acc.shape[1], dtype=torch.int8)
        _requant(acc.numpy(), multiplier.numpy(), offset.numpy(), shift, lo, hi, res.numpy(), out.numpy())
        return out
    y = ((acc.long() * multiplier + offset) >> shift).clamp_(lo, hi)
    if residual is not None:
        y = (y + residual).clamp_(-ACT_MAX, ACT_MAX)
    out.copy_(y)
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _scatter_relu(values, pos, col, buffer):  # pragma: no cover - compiled
    for i in numba.prange(len(pos)):
        for c in range(values.shape[1]):
            buffer[pos[i], col + c] = max(values[i, c], 0)


def scatter_relu(values: torch.Tensor, pos: torch.Tensor, buffer: torch.Tensor, col: int = 0) -> None:
    """buffer[pos[i], col : col + M] = relu(values[i]) for values (N, M) int8."""
    if _numba(buffer):
        _scatter_relu(values.numpy(), pos.numpy(), col, buffer.numpy())
    else:
        buffer[pos, col : col + values.shape[1]] = values.clamp(min=0)
