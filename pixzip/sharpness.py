"""Per-tile sharpness: the encoder fits, for each tile and channel, one factor on the model's logits.

A model trained on a few photos is too sure of itself in some regions (noise, fine texture) and not sure
enough in others (sky, flat colour). Multiplying the logits of a tile's channel by a factor a / 32
(pixzip.softmax) corrects much of that for 8 bits a tile and channel: the encoder sees every pixel, so it
fits a by Newton's method on its code length, and writes it into the stream before the tile's symbols (format
version 3, docs/format.md); the decoder reads it. Measured with the default model pixelcnn-1b22c9ec, whole
files: 2.078 -> 2.044 bpsp on the validation photos (-1.6 %), 3.329 -> 3.284 on scikit-image's (-1.4 %).

The fit needs no exactness - any a decodes, since the decoder reads it - so it runs in float on a sample of
the positions; only the frequencies computed with the chosen a must be exact, and they are (pixzip.softmax).
"""
import numba
import numpy as np

from .softmax import FREQ_TOTAL, SHARPNESS_ONE, output_logits

SAMPLE_STRIDE = 8  # fit on every 8th position of a chunk (thousands per tile and channel)
MIN_SAMPLES = 32  # tiles and channels with fewer sampled subpixels keep SHARPNESS_ONE
NEWTON_STEPS = 4
RANGE = (8, 128)  # the sharpness the encoder chooses from, a / 32 in 0.25 .. 4 (any of 0..255 decodes)
# The sharpness symbols are coded with a uniform table: 8 bits each.
UNIFORM = np.full(256, FREQ_TOTAL // 256, dtype=np.float32)


# exp(-x) for the fit, vectorizable (numba has no vector exp here): 2^-t = 2^-floor(t) (exponent bits) x
# 2^-frac(t) (a degree-4 polynomial, relative error < 4e-6), t = x / ln 2.
_nodes = 0.5 - 0.5 * np.cos(np.pi * (np.arange(64) + 0.5) / 64)  # Chebyshev nodes on [0, 1]
EXP2_NEG = tuple(float(c) for c in np.polyfit(_nodes, 2.0**-_nodes, 4))  # highest power first
LOG2_E = 1 / np.log(2)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _moments(u, s, w, bits):  # pragma: no cover - compiled
    """For one row u (256,) float32 of logit differences in nats and a factor s: with p_j ~ exp(-s u_j),
    -> (E[u], Var[u]). w (256,) float32 and bits (256,) int32 are scratch."""
    c4, c3, c2, c1, c0 = EXP2_NEG
    for j in range(256):
        t = min(np.float32(s * LOG2_E) * u[j], np.float32(100.0))
        n = np.int32(t)  # floor, t >= 0
        f = t - np.float32(n)
        w[j] = c0 + f * (c1 + f * (c2 + f * (c3 + f * c4)))
        bits[j] = (127 - n) << 23  # the float32 2^-n
    scale = bits.view(np.float32)
    z = m1 = m2 = np.float32(0.0)
    for j in range(256):
        wj = w[j] * scale[j]
        z += wj
        m1 += wj * u[j]
        m2 += wj * u[j] * u[j]
    mean = m1 / z
    return mean, max(m2 / z - mean * mean, np.float32(0.0))


@numba.njit(cache=True, nogil=True, parallel=True)
def _fit(features, groups, symbols, starts, weight, bias, unit, steps, lo, hi, out):  # pragma: no cover
    for key in numba.prange(len(starts) - 1):
        a, b = starts[key], starts[key + 1]
        if b - a < MIN_SAMPLES:
            out[key] = 1.0
            continue
        u = np.empty((b - a, 256), np.float32)  # logit differences from the row's top, in nats
        target = np.empty(b - a, np.float64)  # the coded symbol's
        logits = np.empty(256, np.float32)
        for i in range(a, b):
            output_logits(features, i, groups[i], weight, bias, logits)
            top = logits.max()
            for j in range(256):
                u[i - a, j] = (top - logits[j]) * unit
            target[i - a] = u[i - a, symbols[i]]
        # Code length in nats: C(s) = sum_i [log sum_j exp(-s u_ij) + s t_i], convex in s:
        # C' = sum_i (t_i - E[u_i]), C'' = sum_i Var[u_i] under p_ij ~ exp(-s u_ij).
        w, bits = np.empty(256, np.float32), np.empty(256, np.int32)
        s = 1.0
        for _ in range(steps):
            d1 = d2 = 0.0
            for r in range(b - a):
                mean, var = _moments(u[r], s, w, bits)
                d1 += target[r] - mean
                d2 += var
            if d2 <= 0.0:
                break
            s = min(max(s - d1 / d2, lo), hi)
        out[key] = s


def fit(features: np.ndarray, tile_of: np.ndarray, coded: list[int], symbols: np.ndarray, weight: np.ndarray,
        bias: np.ndarray, logit_shift: int, tiles: int, skip: np.ndarray | None = None) -> np.ndarray:
    """The sharpness of each tile and coded channel -> (tiles, G) int64 in RANGE.

    features (N, F) int8 the head's output at a chunk's positions, tile_of (N,) each position's tile in the
    chunk, symbols (G, N) the coded channels' residuals, weight / bias the output layer (as for
    pixzip.softmax.frequencies), logits in units of 2^-logit_shift nats; skip (N,) positions not coded."""
    sample = np.arange(0, len(tile_of), SAMPLE_STRIDE)
    if skip is not None:
        sample = sample[~skip[sample]]
    rows = np.concatenate([sample] * len(coded))  # (G * n,) position of each sampled subpixel
    group = np.repeat(np.arange(len(coded)), len(sample))  # index into coded
    key = tile_of[rows] * len(coded) + group
    order = np.argsort(key, kind="stable")
    rows, group, key = rows[order], group[order], key[order]
    starts = np.searchsorted(key, np.arange(tiles * len(coded) + 1))
    factor = np.empty(tiles * len(coded), dtype=np.float64)
    lo, hi = (r / SHARPNESS_ONE for r in RANGE)
    _fit(features[rows], np.asarray(coded, dtype=np.int64)[group], symbols[group, rows], starts, weight, bias,
         2.0**-logit_shift, NEWTON_STEPS, lo, hi, factor)
    sharpness = np.clip(np.rint(factor * SHARPNESS_ONE), *RANGE).astype(np.int64)
    return sharpness.reshape(tiles, len(coded))

