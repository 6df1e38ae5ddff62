"""The integer softmax: logits -> the integer frequencies the coder sees. Exact on every machine.

For one subpixel with 256 logits l (the output layer's exact integer sums, in units of 2^-k nats) and its
tile's sharpness a (an integer 0..255, a / 2^5 the factor on the logits; pixzip.sharpness):
  d_j = ((max(l) - l_j) * a + 2^4) >> 5       the logit differences sharpened (a = 32: d_j = max(l) - l_j)
  e_j = T[min(d_j, len(T) - 1)]               T the exp table stored with the weights (integers < 2^21)
  s   = sum_j e_j                               exact (an integer below 2^29)
  r   = float32((1 / s) * FREQ_TOTAL * (1 - 2^-20))    three correctly rounded float64 operations, one cast
  f_j = floor(float32(e_j * r))                 one correctly rounded float32 product each
  f_0 += FREQ_TOTAL - sum_j f_j                 the remainder (>= 0) goes to residual 0, the prediction
Every float step is a single IEEE-754 operation on exactly known operands, so every IEEE machine gives the
same bits (no reduction whose order could matter is ever rounded; no fused multiply-add is possible).

This is the hottest loop of both encoder and decoder (256 entries per subpixel), so it runs as one fused
numba kernel with the output layer (a 1x1 layer from the head's features to the logits), parallel over rows.
The float64 product e_j * r of two float32 values is exact, so rounding
it to float32 gives exactly the float32 product.
"""
import math

import numba
import numpy as np

FREQ_TOTAL = 2**24 - 256  # integer frequencies sum to this; the coder gives symbol i (f_i + 1) / 2^24
EXP_ONE = 2**20  # exp table value at logit difference 0
SHARPNESS_BITS = 5  # a tile's sharpness a multiplies logit differences by a / 2^5
SHARPNESS_ONE = 1 << SHARPNESS_BITS  # the identity: the model's own distributions


def exp_table(k: int) -> np.ndarray:
    """T[d] = round(EXP_ONE * exp(-d / 2^k)) for d = 0, 1, ... until it reaches 0. Computed once at export
    and stored in the weights file, so no machine ever evaluates exp() on the coding path."""
    d = np.arange(int(2**k * math.log(2 * EXP_ONE)) + 2)
    e = np.floor(EXP_ONE * np.exp(-d * 2.0**-k) + 0.5).astype(np.int64)
    return e[: int(np.argmax(e == 0)) + 1]


@numba.njit(nogil=True, inline="always")
def output_logits(features, i, g, weight, bias, logits):  # pragma: no cover - compiled
    """The output layer for row i: channel group g's own features of features[i] (F,) int8 -> logits (256,)
    float32 = bias[g] + features[i, g * k : (g + 1) * k] @ weight[g], exact integers (every |sum| < 2^24,
    checked at load). Inlined where it is called: as a call of its own it took half again as long."""
    k = weight.shape[1]
    for j in range(256):
        logits[j] = bias[g, j]
    for c in range(k):
        xc = np.float32(features[i, g * k + c])
        for j in range(256):
            logits[j] += xc * weight[g, c, j]


@numba.njit(cache=True, nogil=True, parallel=True)
def _frequencies(features, groups, sharpness, weight, bias, table, out, threads):  # pragma: no cover - compiled
    last = len(table) - 1
    half = np.int64(1) << (SHARPNESS_BITS - 1)
    n = len(groups)
    for part in numba.prange(threads):  # a contiguous share of the rows each, scratch made once: no
        logits = np.empty(256, np.float32)  # allocation or array view per row (their reference counts would
        e = np.empty(256, np.int32)  # bounce between cores)
        for i in range(part * n // threads, (part + 1) * n // threads):
            output_logits(features, i, groups[i], weight, bias, logits)
            for j in range(256):  # integers from here on: the reductions vectorize
                e[j] = np.int32(logits[j])
            top = e[0]
            for j in range(1, 256):
                top = max(top, e[j])
            a = np.int64(sharpness[i])
            total = 0
            for j in range(256):
                d = (np.int64(top - e[j]) * a + half) >> SHARPNESS_BITS
                e[j] = table[np.uint64(min(d, last))]  # unsigned: no negative-index wraparound
                total += e[j]
            r = np.float32((1.0 / np.float64(total)) * FREQ_TOTAL * (1 - 2.0**-20))
            given = 0
            for j in range(256):
                f = np.floor(np.float32(np.float32(e[j]) * r))
                out[i, j] = f
                given += np.int32(f)
            out[i, 0] += FREQ_TOTAL - given


def frequencies(features: np.ndarray, groups: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                table: np.ndarray, sharpness: np.ndarray | None = None) -> np.ndarray:
    """The output layer and the integer softmax, fused: row i's head output features[i] (F,) int8, of which
    channel group g = groups[i] reads its own F / G features, -> logits = bias[g] + features @ weight[g]
    -> (N, 256) float32 integer frequencies summing to FREQ_TOTAL per row (the coder's input).
    weight (G, F / G, 256) and bias (G, 256) are float32 holding integers, table the int32 exp table;
    sharpness (N,) each row's in 0..255 (None: SHARPNESS_ONE, the model's own distribution)."""
    out = np.empty((len(groups), weight.shape[2]), dtype=np.float32)
    if sharpness is None:
        sharpness = np.full(len(groups), SHARPNESS_ONE, dtype=np.int64)
    _frequencies(features, np.asarray(groups, dtype=np.int64), np.asarray(sharpness, dtype=np.int64), weight,
                 bias, table, out, numba.get_num_threads())
    return out
