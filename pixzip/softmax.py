"""The integer softmax: logits -> the integer frequencies the coder sees. Exact on every machine.

For one subpixel with 256 logits l (exact integers, in units of 2^-k nats):
  e_j = T[min(max(l) - l_j, len(T) - 1)]      T the exp table stored with the weights (integers < 2^21)
  s   = sum_j e_j                               exact (an integer below 2^29)
  r   = float32((1 / s) * FREQ_TOTAL * (1 - 2^-20))    three correctly rounded float64 operations, one cast
  f_j = floor(float32(e_j * r))                 one correctly rounded float32 product each
  f_0 += FREQ_TOTAL - sum_j f_j                 the remainder (>= 0) goes to residual 0, the prediction
Every float step is a single IEEE-754 operation on exactly known operands, so every IEEE machine gives the
same bits (no reduction whose order could matter is ever rounded; no fused multiply-add is possible).

This is the hottest loop of both encoder and decoder (256 entries per subpixel), so it runs as one fused
numba kernel, parallel over rows. The float64 product e_j * r of two float32 values is exact, so rounding
it to float32 gives exactly the float32 product.
"""
import math

import numba
import numpy as np

FREQ_TOTAL = 2**24 - 256  # integer frequencies sum to this; the coder gives symbol i (f_i + 1) / 2^24
EXP_ONE = 2**20  # exp table value at logit difference 0


def exp_table(k: int) -> np.ndarray:
    """T[d] = round(EXP_ONE * exp(-d / 2^k)) for d = 0, 1, ... until it reaches 0. Computed once at export
    and stored in the weights file, so no machine ever evaluates exp() on the coding path."""
    d = np.arange(int(2**k * math.log(2 * EXP_ONE)) + 2)
    e = np.floor(EXP_ONE * np.exp(-d * 2.0**-k) + 0.5).astype(np.int64)
    return e[: int(np.argmax(e == 0)) + 1]


@numba.njit(cache=True, nogil=True, parallel=True)
def _frequencies(logits, rows, table, out):  # pragma: no cover - compiled
    last = len(table) - 1
    for i in numba.prange(len(rows)):
        row = logits[rows[i]]
        o = out[i]
        top = row[0]
        for j in range(1, len(row)):
            top = max(top, row[j])
        total = 0
        for j in range(len(row)):
            e = table[min(int(top - row[j]), last)]
            o[j] = e
            total += e
        r = np.float32((1.0 / np.float64(total)) * FREQ_TOTAL * (1 - 2.0**-20))
        given = 0
        for j in range(len(row)):
            f = np.floor(np.float32(o[j] * r))
            o[j] = f
            given += int(f)
        o[0] += FREQ_TOTAL - given


def frequencies(logits: np.ndarray, table: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(M, 256) float32 integer logits -> (N, 256) float32 integer frequencies summing to FREQ_TOTAL per row,
    for logits rows `rows` (N,) in that order (all rows when None): the coder's input, in stream order."""
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    rows = np.arange(len(logits)) if rows is None else np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), logits.shape[1]), dtype=np.float32)
    _frequencies(logits, rows, np.asarray(table, dtype=np.float32), out)
    return out
