"""The adaptive stage: the network's distributions refined by context models learned from this image.

Between the network's frequencies and the bits. Every subpixel's residual is coded as binary decisions down
a fixed tree over u = zigzag(residual) (pixzip.binarize: one decision for u = 0, most of a photo's in 3 to 7).
For each decision:

  inputs   the network's probability of the bit (from its 256 frequencies, summed over each half of the
           node's range of u); version 7: the same from the network's distribution moved to the LMS
           prediction and to a cross-channel one (its spread, at a centre learned from this image); the
           predictions of adaptive context models (pixzip.contexts): counters in hashed tables keyed by
           neighbouring values, residuals, gradients, linear and cross-channel predictions, earlier planes,
           each with the position in the tree; and counters of candidate values
  mixers   two gated logistic mixers: p = squash(sum_i w_i stretch(p_i)), their weights chosen by the channel,
           the tree position and the network's confidence, or the local activity, learning online (they start
           as the network alone)
  APMs     two adaptive probability maps (interpolated over the stretch domain): on the mixers' output by
           activity, and on the network's own probability (version 7: the first moved distribution's)
  final    version 4: the mixers averaged, a quarter APMs; version 5: a third mixer over the two mixers, the
           two APMs and the network (its weights by channel, position and activity)
  coder    a binary arithmetic coder (32-bit, carry-less, pixzip.bincoder) codes the bit with the final 16-bit
           probability

Every quantity on the coding path is an integer, and the one table built in floating point (squash) is
proven the same on every machine (tests/test_adaptive.py), so encoder and decoder compute the same
probabilities anywhere; both update the same state in the same (stream) order, after each decision. The
tables have fixed sizes (at most 90 MiB, whatever the image). The whole loop is one compiled, sequential call
per batch of symbols (a decoder pass: one channel at one wavefront step), see _code.

A format version fixes the stage's settings (SETTINGS): version 4 (the first), version 5 (its contexts
pruned and extended with the predictions 12-16, the mixers' learning rate falling from fast to slow as each
weight set learns, and the final mixer: photos about 2.5 % and graphics about 9 % smaller on 384 x 384 crops)
and version 6 (an LMS predictor learning this image, as a context, a candidate and the final mixer's
selector; table blocks found through a finalized hash: photos about 2.2 % and graphics about 1.1 % smaller
again) and version 7 (the moved distributions, young counters of predictions' contexts ramped in, slower
mixers that start from a spread of their inputs: photos about 1.2 % and graphics 1.1 % smaller again;
docs/models.md).
"""
from dataclasses import dataclass

import numba
import numpy as np

from .bincoder import _decode_bit, _encode_bit, _raw
from .binarize import MAX_DECISIONS, R_OF_U, TREE, TREE_POSITIONS, U_OF_R
from .contexts import (CONTEXTS, LMS, LMS_INPUTS, LMS_SHIFT, MATCH_BITS, MATCHES, MAX_CHANNELS, _contexts,
                       _cross_prediction, _lms_bucket, _lms_learn, _mix)
from .mixing import (APM_POINTS, COST, MIXER_SHIFT, PROB_BITS, PROB_ONE, RATES, SQUASH, STRETCH,  # noqa: F401
                     STRETCH_MAX, STRETCH_ONE, _apm, _apm_update, _count, _dot, _train)

MATCH_CONTEXTS = MATCHES * MAX_CHANNELS * 64 * 2 * 4  # (candidate, channel, tree position, expected bit, edge)
CONFIDENCE_BUCKETS = 6  # weight sets of the first mixer by |stretch| of the network's probability
MOVED = 2  # the network's distribution moved to other predictions (version 7): at most this many inputs
INPUTS = CONTEXTS + MATCHES + MOVED + 2  # and the network and a bias
TABLE_BITS = 16  # each context model's table: 2^16 blocks of 16 counters (4 MiB)
SIDE_MAX = 4  # co-located values of earlier planes used as context (at most this many)
WEIGHT_SETS = 2 * MAX_CHANNELS * TREE_POSITIONS * CONFIDENCE_BUCKETS  # the two mixers'
APM_SETS = 2 * MAX_CHANNELS * TREE_POSITIONS * 4
FINAL_SETS = MAX_CHANNELS * TREE_POSITIONS * 4  # the final mixer's: by channel, position, and activity or LMS
FINAL_INPUTS = 6  # the two mixers, the two APMs, the network, a bias
# A counter's input is its stretch times YOUNG[row, n] / 2^12, n its count: row 0 (versions 4-6) gives nothing
# while n = 0 and the whole stretch after; row 1 ramps in as n / (n + 2), for the contexts of quantized predictions
# (RAMPED, version 7 on): a young counter there has seen a context of many unlike neighbourhoods.
YOUNG = np.array([[4096 if n else 0 for n in range(1024)], [(n << 12) // (n + 2) for n in range(1024)]], dtype=np.int64)
RAMPED = (6, 7, 12, 13, 14, 15, 16, LMS)


def _mask(contexts: list[int], candidates: int) -> int:
    """Bit k: context model k in use; bits CONTEXTS .. CONTEXTS + MATCHES - 1: the candidates (the first so
    many)."""
    return sum(1 << k for k in contexts) | (((1 << candidates) - 1) << CONTEXTS)


# The stage's settings, fixed by the format version (arrays, so that measurements can vary them):
# 0 the mixers' learning rate (dw = x * err * rate >> 18), at the end of its fall
# 1 the APMs' share of the final probability (of 4; version 4)
# 2 the counters' count limit: a counter's rate falls as 1 / (n + 1.5) down to 1 / (limit + 1.5)
# 3 the APMs' rate (a shift)
# 4 the inputs in use (_mask)
# 5 1: the final mixer and version 5's selection of the second mixer's weights and the second APM
# 6, 7 the mixers' rate starts higher by [6] and falls as [7] / (updates + [7]) of that as a weight set learns
# 8 the final mixer's learning rate
# 9 1: the tables' block of a hash chosen by a finalized hash (version 4 and 5's, the raw hash's bits 20-35,
#   made contexts whose last ingredient is a small number collide: a context's own groups evicted each other)
# 10 the LMS predictor's step (a shift, pixzip.contexts._lms_learn)
# 11 1: the final mixer's weights chosen by the LMS prediction's distance (pixzip.contexts._lms_bucket), not
#   by the local activity
# 12 how many moved distributions are inputs (0-2): the network's 256 frequencies moved to the LMS prediction
#   (in eighths, interpolated), and to pixzip.contexts._cross_prediction (in halves): the network's spread
#   at a better centre
# 13 1: the second APM refines the first moved distribution's probability, not the network's
# 14 1: the counters of the quantized predictions' contexts (RAMPED) come in as they learn (YOUNG)
# 15 1: the mixers start as the network and the moved distributions (3/8, 3/8, 2/8) with 1/32 of each
#   context model, not as the network alone
V5_CONTEXTS = [0, 3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16]
V6_CONTEXTS = [k for k in V5_CONTEXTS if k != 3] + [LMS]
SETTINGS = {
    4: np.array([12, 1, 255, 7, _mask(list(range(12)), 7), 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.int64),
    5: np.array([8, 1, 255, 7, _mask(V5_CONTEXTS, 7), 1, 32, 1024, 2, 0, 0, 0, 0, 0, 0, 0], dtype=np.int64),
    6: np.array([8, 1, 255, 7, _mask(V6_CONTEXTS, 8), 1, 32, 1024, 2, 1, 3, 1, 0, 0, 0, 0], dtype=np.int64),
    7: np.array([2, 1, 1023, 7, _mask(V6_CONTEXTS, 8), 1, 64, 256, 2, 1, 3, 1, 2, 1, 1, 1], dtype=np.int64),
}
LATEST = 7


@dataclass
class State:
    """What the stage has learned so far in one plane; encoder and decoder each hold one."""

    tables: np.ndarray  # (CONTEXTS, 2^TABLE_BITS, 16) uint32: [0] a block's tag, [1..15] counters p22 << 10 | n
    weights: np.ndarray  # (WEIGHT_SETS + FINAL_SETS, INPUTS + 1) int64, fixed point; [:, INPUTS] updates so far
    apm: np.ndarray  # (APM_SETS, APM_POINTS) int64 probabilities (16 bits): both APMs'
    matches: np.ndarray  # (MATCH_CONTEXTS,) uint32 counters: how often a candidate value's next bit is right
    last: np.ndarray  # (2^MATCH_BITS,) int64: the position (row * width + column) a window was last seen, or -1
    run: np.ndarray  # (MAX_CHANNELS,) int64: how many times in a row the match model's value was right
    lms: np.ndarray  # (MAX_CHANNELS, LMS_INPUTS) int64: the LMS predictor's weights, fixed point

    @classmethod
    def new(cls, settings: np.ndarray) -> "State":
        """The state before the first subpixel, for a format version's settings."""
        weights = np.zeros((WEIGHT_SETS + FINAL_SETS, INPUTS + 1), dtype=np.int64)
        weights[:WEIGHT_SETS, 0] = 1 << MIXER_SHIFT  # at first the mixers pass the network's probability through
        if settings[15]:  # or the network and its moved distributions, and a little of every context model
            moved, used = settings[12], bin(settings[4] & ((1 << CONTEXTS) - 1)).count("1")
            weights[:WEIGHT_SETS, : moved + 1] = np.array([3, 3, 2])[: moved + 1] << (MIXER_SHIFT - 3)
            weights[:WEIGHT_SETS, moved + 1 : moved + 1 + used] = 1 << (MIXER_SHIFT - 5)
        weights[WEIGHT_SETS:, 0:2] = 3 << (MIXER_SHIFT - 3)  # and the final mixer is version 4's average
        weights[WEIGHT_SETS:, 2:4] = 1 << (MIXER_SHIFT - 3)
        points = (np.arange(APM_POINTS) - APM_POINTS // 2) * (2 * STRETCH_MAX // (APM_POINTS - 1))
        apm = np.tile(SQUASH[points + STRETCH_MAX].astype(np.int64), (APM_SETS, 1))
        # Tables of contexts a version does not use are never touched (nor, being zeros, given memory).
        return cls(np.zeros((CONTEXTS, 1 << TABLE_BITS, 16), dtype=np.uint32), weights, apm,
                   np.full(MATCH_CONTEXTS, 1 << 31, dtype=np.uint32), np.full(1 << MATCH_BITS, -1, dtype=np.int64),
                   np.zeros(MAX_CHANNELS, dtype=np.int64), np.zeros((MAX_CHANNELS, LMS_INPUTS), dtype=np.int64))


@numba.njit(inline="always")
def _block(tables, k, h, finalize):  # pragma: no cover - compiled
    """The block of context model k for hash h: found by its tag, or claimed (reset) for it. finalize: h's
    bits are first mixed through (a 64-bit finalizer: every input bit reaches every output bit)."""
    if finalize:
        h = (h ^ (h >> np.int64(31))) * np.int64(-4658895280553007687)
        h = (h ^ (h >> np.int64(29))) * np.int64(-7723592293110705685)
        h = h ^ (h >> np.int64(32))
    b = (h >> np.int64(20)) & ((1 << TABLE_BITS) - 1)
    tag = np.uint32((h >> np.int64(40)) & 0xFFFFFF) | np.uint32(1)
    if tables[k, b, 0] != tag:
        tables[k, b, 0] = tag
        for n in range(1, 16):
            tables[k, b, n] = np.uint32(1 << 31)  # p = 1/2, n = 0
    return b


@numba.njit(inline="always")
def _half_probability(cum, lo, mid, hi):  # pragma: no cover - compiled
    """The probability (16 bits) that u is in [mid, hi) given [lo, hi), from running sums cum."""
    return min(max(((cum[hi] - cum[mid]) << PROB_BITS) // (cum[hi] - cum[lo]), 1), PROB_ONE - 1)


@numba.njit(inline="always")
def _moved_frequency(freqs, s, r, at):  # pragma: no cover - compiled
    """Residual r's frequency, times 8, +8, in the network's distribution of subpixel s moved by `at` eighths
    of a level (interpolated between the two whole moves around it): the 256 of them sum to 8 x 2^24."""
    whole, frac = at >> 3, at & 7
    return ((8 - frac) * np.int64(freqs[s, (r - whole) & 255]) + frac * np.int64(freqs[s, (r - whole - 1) & 255])
            + 8)


@numba.njit(inline="always")
def _inputs(x, cum, moved, n_moved, tree, node, tables, blocks, group_blocks, matches, expect, mctx, stretch, used,
            young, mask):  # pragma: no cover - compiled
    """The mixers' inputs for the decision at tree node `node`, into x: the network's probability of a 1 (from
    cum, its frequencies' running sums in u order), the same from the first n_moved moved distributions
    (moved: their running sums), the counter of each context model in use (used: their numbers; young: each
    one's YOUNG row), each candidate's counter while the candidate is still possible, and a bias. Returns how
    many: the mixers see x[:count] (the models a version does not use take no place, and no time)."""
    lo, mid, hi, slot, first = tree[0, node], tree[1, node], tree[2, node], tree[5, node], tree[6, node]
    tp = tree[8, node]
    x[0] = stretch[_half_probability(cum, lo, mid, hi)]
    n = 1
    for m in range(n_moved):
        x[n] = stretch[_half_probability(moved[m], lo, mid, hi)]
        n += 1
    for q in range(len(used)):
        x[n] = 0
        if slot > 0:
            v = np.int64(tables[used[q], blocks[used[q]] if first else group_blocks[used[q]], slot])
            x[n] = (np.int64(stretch[v >> 16]) * YOUNG[young[q], v & 1023]) >> 12  # a new counter says nothing
        n += 1
    for m in range(MATCHES):
        if not (mask >> (CONTEXTS + m)) & 1:
            continue
        e = expect[m]
        x[n] = 0
        if lo <= e < hi:  # the candidate is still possible
            mi = mctx[m] + (tp * 2 + (1 if e >= mid else 0)) * 4
            x[n] = stretch[np.int64(matches[mi]) >> 16]
        n += 1
    x[n] = STRETCH_ONE
    return n + 1


@numba.njit(inline="always")
def _count_all(bit, tree, node, tables, blocks, group_blocks, matches, expect, mctx, rates, limit, used):
    # pragma: no cover - compiled
    """Every counter that predicted the decision at `node` learns its outcome `bit`."""
    lo, mid, hi, slot, first = tree[0, node], tree[1, node], tree[2, node], tree[5, node], tree[6, node]
    tp = tree[8, node]
    if slot > 0:
        for k in used:
            b = blocks[k] if first else group_blocks[k]
            tables[k, b, slot] = _count(tables[k, b, slot], bit, rates, limit)
    for m in range(MATCHES):
        e = expect[m]
        if lo <= e < hi:
            mi = mctx[m] + (tp * 2 + (1 if e >= mid else 0)) * 4
            matches[mi] = _count(matches[mi], bit, rates, limit)


@numba.njit(inline="always")
def _predict(x, x2, sel, weights, apm, c, tp, apm_ctx, act6, final_ctx, settings, squash, stretch):
    # pragma: no cover - compiled
    """The decision's probability (16 bits) from the inputs x: two mixers, two APMs and (version 5 on) a final
    mixer over them (its weights by channel, position and final_ctx), whose inputs go to x2; the weight sets
    and APMs used, and their outputs, into sel (ws1, ws2, ws3, a1, a2, t1, t2, t3, t) for _learn."""
    final = settings[5]
    # Two mixers, their weights chosen by (channel, tree position) and the network's confidence, or the
    # local activity.
    conf = min(abs(x[0]) // 384, CONFIDENCE_BUCKETS - 1)
    ws1 = (c * TREE_POSITIONS + tp) * CONFIDENCE_BUCKETS + conf
    ws2 = WEIGHT_SETS // 2 + (c * TREE_POSITIONS + tp) * CONFIDENCE_BUCKETS + (act6 if final else apm_ctx)
    t1 = _dot(weights, ws1, x)
    t2 = _dot(weights, ws2, x)
    t = (t1 + t2) >> 1
    # Two APMs: one on the mixers' average by activity, one on the network's own stretch (version 7: its
    # first moved distribution's).
    a1 = (c * TREE_POSITIONS + tp) * 4 + apm_ctx
    a2 = APM_SETS // 2 + ((c * TREE_POSITIONS + tp) * 4 + apm_ctx if final else c * TREE_POSITIONS + tp)
    p1, p2 = _apm(apm, a1, t), _apm(apm, a2, x[settings[13]])
    ws3 = t3 = 0
    if final:
        x2[0], x2[1], x2[4], x2[5] = t1, t2, x[0], STRETCH_ONE
        x2[2] = stretch[min(max(p1, 1), PROB_ONE - 1)]
        x2[3] = stretch[min(max(p2, 1), PROB_ONE - 1)]
        ws3 = WEIGHT_SETS + (c * TREE_POSITIONS + tp) * 4 + final_ctx
        t3 = _dot(weights, ws3, x2)
        p = np.int64(squash[t3 + STRETCH_MAX])
    else:  # version 4: the mixers' average, a share of the APMs'
        apm_share = settings[1]
        p = (np.int64(squash[t + STRETCH_MAX]) * (4 - apm_share) + ((p1 + p2) >> 1) * apm_share) >> 2
    sel[0], sel[1], sel[2], sel[3], sel[4], sel[5], sel[6], sel[7], sel[8] = ws1, ws2, ws3, a1, a2, t1, t2, t3, t
    return min(max(p, 1), PROB_ONE - 1)


@numba.njit(inline="always")
def _learned_rate(weights, ws, settings):  # pragma: no cover - compiled
    """A weight set's learning rate, falling from settings[0] + settings[6] toward settings[0] as it learns."""
    n = weights[ws, INPUTS]
    weights[ws, INPUTS] = n + 1
    return settings[0] + settings[6] * settings[7] // (n + settings[7])


@numba.njit(inline="always")
def _learn(bit, x, x2, sel, weights, apm, settings, squash):  # pragma: no cover - compiled
    """The mixers and APMs of _predict learn the decision's outcome."""
    ws1, ws2, ws3, a1, a2, t1, t2, t3, t = sel[0], sel[1], sel[2], sel[3], sel[4], sel[5], sel[6], sel[7], sel[8]
    _train(weights, ws1, x, bit, squash[t1 + STRETCH_MAX], _learned_rate(weights, ws1, settings))
    _train(weights, ws2, x, bit, squash[t2 + STRETCH_MAX], _learned_rate(weights, ws2, settings))
    if settings[5]:
        _train(weights, ws3, x2, bit, squash[t3 + STRETCH_MAX], settings[8])
    _apm_update(apm, a1, t, bit, settings[3])
    _apm_update(apm, a2, x[settings[13]], bit, settings[3])


WORK_ROWS = 14  # _code's scratch: running sums, hashes, blocks, inputs, candidates (_code names its rows)


# Compiled without numba's reference counting (_nrt=False, as numba's own allocation-free helpers are): the
# loop passes arrays to inlined helpers and slices them, and every such use counted a reference with an atomic
# add - more time than the coding itself (a profile: 9.7 % of samples in NRT_incref / NRT_decref against
# 8.1 % in the loop; this stage 36 % faster without). So _code allocates nothing: its scratch comes in (work).
@numba.njit(cache=True, nogil=True, _nrt=False)
def _code(decode, symbols, freqs, rows, cols, chans, boxes, preds, img, res, vals, side, tables, weights, apm,
          matches, last, run, lms, squash, stretch, rates, r_of_u, u_of_r, cost, tree, settings, used, young, work,
          coder, buf, probs, costs):  # pragma: no cover - compiled
    """Code (or, if decode, decode into symbols) n subpixels in stream order. symbols (n,) residuals r,
    freqs (n, 256) the network's integer frequencies, rows/cols/chans (n,) where each is, boxes (n, 4) its
    tile (y0, x0, y1, x1), preds (n,) the predictions the residuals are taken from, img (H, W, C) the pixel
    values coded so far (read at earlier positions only), res (H, W, C) the u of each coded subpixel and
    vals (H, W, C) its value (both written here: the decoder's own image is written only after a batch),
    side (H, W, S) earlier planes' values, the rest the State's arrays and the module's tables, settings the
    format version's, coder/buf the arithmetic coder's state and bytes, probs (n, MAX_DECISIONS) each
    decision's probability (a trace for tests, 0 past a symbol's last decision; or (0, _)), costs (n,) each
    one's cost in bits; used (the context models in use) and young (their YOUNG rows) from settings, work
    (WORK_ROWS, 257) zeros."""
    n = len(symbols)
    trace = probs.shape[0] == n
    limit, mask, finalize = settings[2], settings[4], settings[9]
    n_moved = settings[12]
    width = img.shape[1]
    cum = work[0]
    moved = work[1 : 1 + MOVED]  # the moved distributions' running sums
    at = work[3, :MOVED]  # where each is moved to, in eighths of a level
    hashes = work[4, :CONTEXTS]
    blocks = work[5, :CONTEXTS]  # each context model's first block, and its current group's
    group_blocks = work[6, :CONTEXTS]
    x = work[7, :INPUTS]
    x2 = work[8, :FINAL_INPUTS]
    sel = work[9, :9]
    expect = work[10, :MATCHES]  # each candidate's u (-1: none)
    mctx = work[11, :MATCHES]
    near = work[12, :10]  # this channel's ten nearest values (the LMS predictor's, as they are)
    lms_in = work[13, :LMS_INPUTS]  # the LMS predictor's inputs, relative to the prediction
    for s in range(n):
        i, j, c = np.int64(rows[s]), np.int64(cols[s]), np.int64(chans[s])
        pr = np.int64(preds[s])
        # The network's frequencies in u order, +1 each (what a categorical coder gives them), summed as far as
        # the decisions need: small u need few. They sum to FREQ_TOTAL + 256 = 2^24 (pixzip.softmax).
        filled = 0
        cum[256] = 1 << 24
        slot_last, apm_ctx, act6, lms_p = _contexts(img, res, vals, side, i, j, c, boxes[s], pr, last, run, u_of_r,
                                                    mask, lms, near, lms_in, hashes, expect, mctx)
        final_ctx = _lms_bucket(lms_p) if settings[11] else apm_ctx
        if n_moved:
            at[0] = min(max(lms_p >> (LMS_SHIFT - 3), -512), 512)
            at[1] = 4 * min(max(_cross_prediction(img, vals, i, j, c, boxes[s], pr), -128), 128)
            for m in range(n_moved):
                moved[m, 256] = 8 << 24
        seen = last[slot_last]
        for k in used:
            blocks[k] = _block(tables, k, hashes[k], finalize)
        u = np.int64(0) if decode else u_of_r[symbols[s]]
        node = np.int64(0)
        bits = 0.0
        for d in range(MAX_DECISIONS):
            need = tree[2, node] if tree[2, node] < 256 else tree[1, node]
            while filled < need:
                cum[filled + 1] = cum[filled] + np.int64(freqs[s, r_of_u[filled]]) + 1
                for m in range(n_moved):
                    moved[m, filled + 1] = moved[m, filled] + _moved_frequency(freqs, s, r_of_u[filled], at[m])
                filled += 1
            count = _inputs(x, cum, moved, n_moved, tree, node, tables, blocks, group_blocks, matches, expect, mctx,
                            stretch, used, young, mask)
            xs = x[:count]
            p = _predict(xs, x2, sel, weights, apm, c, tree[8, node], apm_ctx, act6, final_ctx, settings, squash,
                         stretch)
            if decode:
                bit = _decode_bit(coder, buf, p)
            else:
                bit = 1 if u >= tree[1, node] else 0
                _encode_bit(coder, buf, bit, p)
            if trace:
                probs[s, d] = p
            bits += cost[p if bit else PROB_ONE - p]
            # Updates, in a fixed order: counters, candidates, mixers, APMs.
            _count_all(bit, tree, node, tables, blocks, group_blocks, matches, expect, mctx, rates, limit, used)
            _learn(bit, xs, x2, sel, weights, apm, settings, squash)
            child = tree[4, node] if bit else tree[3, node]
            if child < 0:
                u = -1 - child
                break
            if tree[6, child] == 0 and tree[7, child] != tree[7, node]:  # entering a group of its own block
                for k in used:
                    group_blocks[k] = _block(tables, k, _mix(hashes[k], tree[7, child] + 1000), finalize)
            node = child
        if decode:
            symbols[s] = r_of_u[u]
        res[i, j, c] = np.uint8(u)
        value = (pr + r_of_u[u]) & 255
        if seen >= 0:
            run[c] = run[c] + 1 if expect[6] == u else 0
        vals[i, j, c] = np.uint8(value)
        last[slot_last] = i * width + j
        if (mask >> LMS) & 1:
            _lms_learn(lms, c, lms_in, value - pr, lms_p, settings[10])
        costs[s] = bits


def _in_use(settings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The context models a version's settings use (their numbers), and each one's YOUNG row."""
    used = [k for k in range(CONTEXTS) if (settings[4] >> k) & 1]
    return (np.array(used, dtype=np.int64),
            np.array([1 if settings[14] and k in RAMPED else 0 for k in used], dtype=np.int64))


@dataclass
class Where:
    """Where a batch's subpixels are: image rows, columns, channels (n,), tiles (n, 4) (y0, x0, y1, x1) and
    the predictions (n,) their residuals are taken from (value = prediction + residual, mod 256)."""

    rows: np.ndarray
    cols: np.ndarray
    chans: np.ndarray
    boxes: np.ndarray
    preds: np.ndarray


class _Stage:
    """What a plane's coding knows of the image: the values so far (img), their residuals, earlier planes."""

    def __init__(self, earlier: np.ndarray | None = None, version: int = LATEST):
        """earlier (H, W, S): the planes of this image coded before this one (their values are context);
        version: the format version whose stage this is (4 to 7)."""
        if version not in SETTINGS:
            raise ValueError(f"no adaptive stage of format version {version}")
        self.settings = SETTINGS[version]
        self.state = State.new(self.settings)
        self.earlier = earlier
        self.img = self.res = self.side = None

    def begin(self, img: np.ndarray) -> None:
        """Start coding an (H, W, C) image (a multi-scale model's stages each are one); img is read at
        already coded positions only (the decoder fills it as it goes)."""
        self.img = img
        self.res = np.zeros(img.shape, dtype=np.uint8)
        self.vals = np.zeros(img.shape, dtype=np.uint8)  # the values coded by this stage, written as it goes
        side = self.earlier
        if side is None or side.shape[:2] != img.shape[:2]:  # none, or a multi-scale model's small image
            side = np.zeros(img.shape[:2] + (0,), dtype=np.uint8)
        self.side = np.ascontiguousarray(side[:, :, -SIDE_MAX:])

    def _args(self, where: Where):
        s = self.state
        return (where.rows.astype(np.int64), where.cols.astype(np.int64), where.chans.astype(np.int64),
                where.boxes.astype(np.int64), where.preds.astype(np.int64), self.img, self.res, self.vals, self.side,
                s.tables, s.weights, s.apm, s.matches, s.last, s.run, s.lms, SQUASH, STRETCH, RATES, R_OF_U, U_OF_R,
                COST, TREE, self.settings, *_in_use(self.settings), np.zeros((WORK_ROWS, 257), dtype=np.int64))


class Encoder(_Stage):
    def __init__(self, earlier: np.ndarray | None = None, version: int = LATEST):
        super().__init__(earlier, version)
        self.coder = np.array([0, 0xFFFFFFFF, 0, 0, 0], dtype=np.int64)
        self.buf = np.zeros(1 << 16, dtype=np.uint8)

    def _room(self, decisions: int) -> None:
        """Room in the buffer for this many more decisions: the compiled coder does not check bounds, and one
        decision writes at most 4 bytes (the range's normalization shifts out at most its four bytes)."""
        need = int(self.coder[2]) + 4 * decisions + 64
        if need > len(self.buf):
            self.buf = np.concatenate([self.buf, np.zeros(max(need, 2 * len(self.buf)) - len(self.buf), np.uint8)])

    def push(self, symbols: np.ndarray, freqs: np.ndarray, where: Where, trace: list | None = None) -> np.ndarray:
        """Code residuals symbols (n,) with the network's freqs (n, 256) at where; returns each one's cost
        in bits (n,). trace, if given, receives the (n, MAX_DECISIONS) probabilities of the decisions."""
        n = len(symbols)
        self._room(n * MAX_DECISIONS)
        probs = np.zeros((n if trace is not None else 0, MAX_DECISIONS), dtype=np.int64)
        costs = np.zeros(n, dtype=np.float64)
        _code(False, np.asarray(symbols, dtype=np.int64), np.asarray(freqs, dtype=np.float32), *self._args(where),
              self.coder, self.buf, probs, costs)
        if trace is not None:
            trace.append(probs)
        return costs

    def push_raw(self, values: np.ndarray, nbits: int) -> None:
        self._room(len(values) * nbits)
        _raw(False, np.asarray(values, dtype=np.int64).copy(), nbits, self.coder, self.buf)

    def finish(self) -> bytes:
        """The bytes: the coder's range is settled by x1's four bytes."""
        self._room(0)
        x1, k = int(self.coder[0]), int(self.coder[2])
        self.buf[k : k + 4] = np.frombuffer(x1.to_bytes(4, "big"), dtype=np.uint8)
        return self.buf[: k + 4].tobytes()


MAX_BYTES_AFTER_END = 64  # past this, the payload is exhausted and what comes out is noise


class Decoder(_Stage):
    def __init__(self, payload: bytes, earlier: np.ndarray | None = None, version: int = LATEST):
        super().__init__(earlier, version)
        self.buf = np.frombuffer(payload, dtype=np.uint8).copy()
        x = int.from_bytes(bytes(self.buf[:4]).ljust(4, b"\0"), "big")
        self.coder = np.array([0, 0xFFFFFFFF, 4, x, max(0, 4 - len(self.buf))], dtype=np.int64)

    def _check(self) -> None:
        if self.coder[4] > MAX_BYTES_AFTER_END:
            raise ValueError("the payload ended long before the image did")

    def pop(self, freqs: np.ndarray, where: Where, trace: list | None = None) -> np.ndarray:
        """Decode len(freqs) residuals (n,) int64 at where (see Encoder.push)."""
        n = len(freqs)
        symbols = np.zeros(n, dtype=np.int64)
        probs = np.zeros((n if trace is not None else 0, MAX_DECISIONS), dtype=np.int64)
        _code(True, symbols, np.asarray(freqs, dtype=np.float32), *self._args(where), self.coder, self.buf, probs,
              np.zeros(n, dtype=np.float64))
        if trace is not None:
            trace.append(probs)
        self._check()
        return symbols

    def pop_raw(self, count: int, nbits: int) -> np.ndarray:
        values = np.zeros(count, dtype=np.int64)
        _raw(True, values, nbits, self.coder, self.buf)
        self._check()
        return values
