"""Logistic mixing, in integers: the probabilities, tables, counters, mixers and adaptive probability maps
(APMs) that the adaptive stage (pixzip.adaptive) is built from. A probability is an integer p of 2^16
(1 .. 2^16 - 1, of a 1); stretch(p) = ln(p / (1 - p)) and its inverse squash work in units of 1/256 by
table. Encoder and decoder must compute every value here identically: everything on the coding path is
integer arithmetic, and the one table built in floating point is proven machine-independent by a test.
"""
import numba
import numpy as np

PROB_BITS = 16  # probabilities are integers 1 .. 2^16 - 1 (of 2^16)
PROB_ONE = 1 << PROB_BITS
STRETCH_ONE = 256  # stretch(p) = ln(p / (1 - p)) in units of 1/256
STRETCH_MAX = 2880  # ln(65535) * 256 = 2839 fits
MIXER_SHIFT = 16  # mixer weights are fixed point with 16 fractional bits
APM_POINTS = 33  # an APM's interpolation points over the stretch domain


def _squash_table() -> np.ndarray:
    """squash(x) = 2^16 / (1 + e^(-x / 256)) for x = -STRETCH_MAX .. STRETCH_MAX, rounded, clamped to
    1 .. 2^16 - 1. Built in float64, yet the same on every machine: no value lies within 10^-6 of a rounding
    boundary (tests/test_adaptive.py checks that, and the table against exact decimal arithmetic), far more
    than any libm's error in exp()."""
    x = np.arange(-STRETCH_MAX, STRETCH_MAX + 1, dtype=np.float64)
    return np.clip(np.floor(PROB_ONE / (1 + np.exp(-x / STRETCH_ONE)) + 0.5), 1, PROB_ONE - 1).astype(np.int32)


def _stretch_table(squash: np.ndarray) -> np.ndarray:
    """stretch(p) for p = 0 .. 2^16 - 1: the smallest x with squash(x) >= p (squash's inverse), by search."""
    return (np.searchsorted(squash, np.arange(PROB_ONE), side="left") - STRETCH_MAX).clip(
        -STRETCH_MAX, STRETCH_MAX).astype(np.int32)


SQUASH = _squash_table()
STRETCH = _stretch_table(SQUASH)
# Counter rate reciprocal: 2^16 / (n + 1.5)
RATES = np.array([int(PROB_ONE / (n + 1.5)) for n in range(1024)], dtype=np.int64)
# -log2(p / 2^16): the ideal cost of a decision coded with probability p (reports and heat maps only)
COST = -np.log2(np.maximum(np.arange(PROB_ONE), 1) / PROB_ONE).astype(np.float32)


@numba.njit(inline="always")
def _count(v, bit, rates, limit):  # pragma: no cover - compiled
    """A counter (p22 << 10 | n) after seeing bit: p moves toward it by 1 / (n + 1.5), n counts up to limit."""
    v = np.int64(v)
    n = v & 1023
    p22 = v >> 10
    p22 += (((np.int64(bit) << 22) - p22) * rates[n]) >> 16
    p22 = min(max(p22, 64), (1 << 22) - 64)
    return np.uint32((p22 << 10) | min(n + 1, limit))


@numba.njit(inline="always")
def _dot(weights, ws, x):  # pragma: no cover - compiled
    """A mixer's output: sum_k w_k x_k in the stretch domain, clamped."""
    dot = np.int64(0)
    for k in range(len(x)):
        dot += weights[ws, k] * x[k]
    return min(max(dot >> MIXER_SHIFT, -STRETCH_MAX), STRETCH_MAX)


@numba.njit(inline="always")
def _train(weights, ws, x, bit, p, rate):  # pragma: no cover - compiled
    """Online gradient step of a mixer's weight set on its coding cost."""
    err = (np.int64(bit) << PROB_BITS) - p
    for k in range(len(x)):
        weights[ws, k] += (x[k] * err * rate) >> 18


APM_STEP = 2 * STRETCH_MAX  # the APM's points are APM_STEP / (APM_POINTS - 1) apart in the stretch domain


@numba.njit(inline="always")
def _apm(apm, a, t):  # pragma: no cover - compiled
    """APM a's probability at stretch t: interpolated between the two points around it."""
    pos = (t + STRETCH_MAX) * (APM_POINTS - 1)
    lo = min(pos // APM_STEP, APM_POINTS - 2)
    frac = pos - lo * APM_STEP
    return (apm[a, lo] * (APM_STEP - frac) + apm[a, lo + 1] * frac) // APM_STEP


@numba.njit(inline="always")
def _apm_update(apm, a, t, bit, rate):  # pragma: no cover - compiled
    """Move the point of APM a nearer to t toward the bit."""
    pos = (t + STRETCH_MAX) * (APM_POINTS - 1)
    near = min((pos + APM_STEP // 2) // APM_STEP, APM_POINTS - 1)
    apm[a, near] += ((np.int64(bit) << PROB_BITS) - apm[a, near]) >> rate
