"""The adaptive stage: the network's distributions refined by context models learned from this image.

Between the network's frequencies and the bits. Every subpixel's residual r (0..255, the symbol the
network's softmax is over) is mapped to u = zigzag(r) (0 = the prediction, 1 = +1, 2 = -1, ...) and coded
as binary decisions down a fixed tree (TREE): "u = 0?", "u < 3?", "u < 7?", ... (groups [1, 3), [3, 7), [7, 15),
..., [127, 256)), then u's place in its group, halving. Small residuals, the common ones, take few decisions:
one for u = 0, most of a photo's in 3 to 7. For each decision:

  inputs   the network's probability of the bit (from its 256 frequencies, summed over each half of the
           node's range of u) and the predictions of CONTEXTS adaptive context models: counters in hashed
           tables keyed by the exact neighbouring values (all channels), residuals, gradients, the
           channels of this pixel already coded and the co-located values of the planes coded before,
           each with the position in the binary tree
  mixer    a gated logistic mixer: p = squash(sum_i w_i stretch(p_i)), its weights chosen by the channel,
           the tree position and the network's confidence or the activity, learning online (they start as the
           network alone); two such mixers, averaged
  APM      adaptive probability maps refine the mixers' output (interpolated over its stretch)
  coder    a binary arithmetic coder (32-bit, carry-less) codes the bit with the final 16-bit probability

Every quantity on the coding path is an integer, and the one table built in floating point (squash) is
proven the same on every machine (tests/test_adaptive.py), so encoder and decoder compute the same
probabilities anywhere; both update the same state in the same (stream) order, after each decision. The
tables have fixed sizes (about 60 MiB, whatever the image). The whole loop is one compiled, sequential call
per batch of symbols (a decoder pass: one channel at one wavefront step), see _code.

The context models (hashes in _code), each with the channel, and the u of this pixel's channels coded before
(exact, or coarse: in 7 buckets):
  0  every channel's values at W, N, NW, NE, exact                      (screenshots: repeated patterns)
  1  N, NE (every channel) and this channel's NN                          2  W (every channel), WW, NW
  3  the u of W, N, NW, NE (clipped), coarse                              4  gradients |W-NW|, |N-NW|, |NE-N| / 4
  5  the earlier planes' values here, with W and N                        (alpha = grey, low byte | high byte)
  6  W and N relative to the prediction, quantized, coarse                7  NE, NW, WW likewise
  8  nothing but the channel: this image's own statistics of u             9  this pixel's earlier u alone
 10  this channel's 2-row window: W, WW, NW, N, NE, NN, NNE, NNW, NWW, NEE   (glyphs, lines)
 11  every channel's values at W, N, NW, with this channel's NN
and seven candidate values (W, N, NE, NW, two earlier planes' co-located values, and the match model's: the
value that followed this channel's 2-row window where it was last seen, anywhere in the plane): while one is
still possible in the tree, an adaptive counter says how often the next decision goes its way.
"""
from dataclasses import dataclass

import numba
import numpy as np

from .bincoder import _decode_bit, _encode_bit, _raw
from .mixing import (APM_POINTS, COST, MIXER_SHIFT, PROB_BITS, PROB_ONE, RATES, SQUASH, STRETCH,  # noqa: F401
                     STRETCH_MAX, STRETCH_ONE, _apm, _apm_update, _count, _dot, _train)

MAX_CHANNELS = 3
CONTEXTS = 12  # context models
MATCHES = 7  # candidate values (W, N, NE, NW, two of the earlier planes' co-located ones, the last match)
MATCH_BITS = 20  # the match model's table: where each 2-row window was last seen (2^20 positions, 8 MiB)
MATCH_CONTEXTS = MATCHES * MAX_CHANNELS * 64 * 2 * 4  # (candidate, channel, tree position, expected bit, edge)
CONFIDENCE_BUCKETS = 6  # weight sets of the first mixer by |stretch| of the network's probability
INPUTS = CONTEXTS + MATCHES + 2  # and the network and a bias
TABLE_BITS = 16  # each context model's table: 2^16 blocks of 16 counters (4 MiB)
COUNT_LIMIT = 255  # a counter's adaptation rate falls as 1 / (n + 1.5) down to 1 / (COUNT_LIMIT + 1.5)
APM_RATE = 7
MIXER_RATE = 12  # the mixers' learning rate: dw = x * err * MIXER_RATE >> 18
SIDE_MAX = 4  # co-located values of earlier planes used as context (at most this many)
HASH_MUL = np.int64(0x2545F4914F6CDD1D)
# The stage's settings, fixed by the format version (an array so that measurements can vary them):
# the mixers' learning rate, the APMs' share of the final probability (of 4), the counters' count limit,
# the APMs' rate (a shift), and a mask of the inputs in use (bit k: context model k, then the candidates;
# for ablations).
SETTINGS = np.array([MIXER_RATE, 1, COUNT_LIMIT, APM_RATE, (1 << (CONTEXTS + MATCHES)) - 1], dtype=np.int64)


# u -> r: u = 2e for e >= 0, -2e - 1 for e < 0, where e is r read as a signed residual (-128 .. 127)
R_OF_U = np.array([(u // 2) if u % 2 == 0 else (256 - (u + 1) // 2) % 256 for u in range(256)], dtype=np.int64)
U_OF_R = np.argsort(R_OF_U).astype(np.int64)


def _tree():
    """The binarization: a binary tree over u = 0 .. 255. A chain of decisions "u < 1?", "u < 3?", "u < 7?", ...
    "u < 127?" splits u into groups [0, 1), [1, 3), [3, 7), ..., [127, 256); each group is then halved
    until one value is left. Returns per node (255 of them, node 0 the root): its range [lo, hi) and split
    mid (bit 1: u >= mid), children (>= 0 a node, < 0 the leaf u = -1 - child), the counter slot of its
    context models' blocks (1 .. 15; 0 none), whether that is the first block (the chain and groups
    [1, 3) and [3, 7)) or its group's, its group, and its tree position (what mixers and APMs see)."""
    bounds = [0, 1, 3, 7, 15, 31, 63, 127, 256]
    lo, mid, hi, left, right, group, level = [], [], [], [], [], [], []

    def add(a, m, b, g, lv):
        for seq, v in zip((lo, mid, hi, left, right, group, level), (a, m, b, -1, -1, g, lv)):
            seq.append(v)
        return len(lo) - 1

    def subtree(a, b, g, lv):  # the group [a, b) halved; its root node, or a leaf
        if b - a == 1:
            return -1 - a
        k = add(a, (a + b) // 2, b, g, lv)
        left[k], right[k] = subtree(a, (a + b) // 2, g, lv + 1), subtree((a + b) // 2, b, g, lv + 1)
        return k

    chain = [add(bounds[k], bounds[k + 1], 256, -1, k) for k in range(7)]
    for k, node in enumerate(chain):
        left[node] = subtree(bounds[k], bounds[k + 1], k, 0)
        right[node] = chain[k + 1] if k + 1 < 7 else subtree(127, 256, 7, 0)
    n = len(lo)
    slot, first, position = [0] * n, [0] * n, [0] * n
    firsts = chain + [k for k in range(n) if group[k] in (1, 2)]  # 7 + 1 + 3 nodes: the first block
    for s_, k in enumerate(firsts):
        slot[k], first[k], position[k] = s_ + 1, 1, s_
    for g in range(3, 8):  # a group's block: its top 4 levels (15 nodes); deeper nodes have no counters
        nodes = sorted((k for k in range(n) if group[k] == g), key=lambda k: (level[k], lo[k]))
        for s_, k in enumerate(nodes):
            slot[k] = s_ + 1 if s_ < 15 else 0
            position[k] = len(firsts) + (g - 3) * 8 + level[k]
    return np.array([lo, mid, hi, left, right, slot, first, group, position], dtype=np.int64)


TREE = _tree()
TREE_POSITIONS = int(TREE[8].max()) + 1
MAX_DECISIONS = 16  # the deepest leaf: 7 in the chain, 8 in the last group
WEIGHT_SETS = 2 * MAX_CHANNELS * TREE_POSITIONS * CONFIDENCE_BUCKETS  # the two mixers' (activity: 4 of 6 used)
APM_SETS = 2 * MAX_CHANNELS * TREE_POSITIONS * 4
@dataclass
class State:
    """What the stage has learned so far in one plane; encoder and decoder each hold one."""

    tables: np.ndarray  # (CONTEXTS, 2^TABLE_BITS, 16) uint32: [0] a block's tag, [1..15] counters p22 << 10 | n
    weights: np.ndarray  # (WEIGHT_SETS, INPUTS) int64, fixed point: both mixers' weight sets
    apm: np.ndarray  # (APM_SETS, APM_POINTS) int64 probabilities (16 bits): both APMs'
    matches: np.ndarray  # (MATCH_CONTEXTS,) uint32 counters: how often a candidate value's next bit is right
    last: np.ndarray  # (2^MATCH_BITS,) int64: the position (row * width + column) a window was last seen, or -1
    run: np.ndarray  # (MAX_CHANNELS,) int64: how many times in a row the match model's value was right

    @classmethod
    def new(cls) -> "State":
        weights = np.zeros((WEIGHT_SETS, INPUTS), dtype=np.int64)
        weights[:, 0] = 1 << MIXER_SHIFT  # at first the mixers pass the network's probability through
        points = (np.arange(APM_POINTS) - APM_POINTS // 2) * (2 * STRETCH_MAX // (APM_POINTS - 1))
        apm = np.tile(SQUASH[points + STRETCH_MAX].astype(np.int64), (APM_SETS, 1))
        return cls(np.zeros((CONTEXTS, 1 << TABLE_BITS, 16), dtype=np.uint32), weights, apm,
                   np.full(MATCH_CONTEXTS, 1 << 31, dtype=np.uint32), np.full(1 << MATCH_BITS, -1, dtype=np.int64),
                   np.zeros(MAX_CHANNELS, dtype=np.int64))


@numba.njit(inline="always")
def _mix(h, v):  # pragma: no cover - compiled
    h = (h ^ v) * HASH_MUL
    return h ^ (h >> np.int64(29))


@numba.njit(inline="always")
def _at(img, i, j, c, y0, x0, y1, x1):  # pragma: no cover - compiled
    """img[i, j, c] inside the tile [y0, y1) x [x0, x1), else 256 (outside: a value of its own)."""
    if i < y0 or j < x0 or j >= x1:
        return np.int64(256)
    return np.int64(img[i, j, c])


@numba.njit(inline="always")
def _bucket(u):  # pragma: no cover - compiled
    """u (0 .. 255) in 7 buckets: 0, 1, 2, 3-4, 5-8, 9-16, 17 and more."""
    return np.int64(0 if u < 1 else (1 if u < 2 else (2 if u < 3 else (3 if u < 5 else (4 if u < 9 else (
        5 if u < 17 else 6))))))


@numba.njit(inline="always")
def _q(d):  # pragma: no cover - compiled
    """A difference (-511 .. 511; larger: a value outside the tile) quantized to 15 buckets."""
    if d > 255 or d < -255:
        return np.int64(99)
    a = abs(d)
    b = 0 if a == 0 else (1 if a < 2 else (2 if a < 4 else (3 if a < 8 else (4 if a < 16 else (5 if a < 32 else 6)))))
    return np.int64(b if d >= 0 else -b)


@numba.njit(inline="always")
def _block(tables, k, h):  # pragma: no cover - compiled
    """The block of context model k for hash h: found by its tag, or claimed (reset) for it."""
    b = (h >> np.int64(20)) & ((1 << TABLE_BITS) - 1)
    tag = np.uint32((h >> np.int64(40)) & 0xFFFFFF) | np.uint32(1)
    if tables[k, b, 0] != tag:
        tables[k, b, 0] = tag
        for n in range(1, 16):
            tables[k, b, n] = np.uint32(1 << 31)  # p = 1/2, n = 0
    return b


@numba.njit(inline="always")
def _contexts(img, res, vals, side, i, j, c, box, pr, last, run, u_of_r, hashes, expect, mctx):  # pragma: no cover
    """What the stage knows of subpixel (i, j, c) before coding it: the context models' hashes (CONTEXTS,),
    each candidate's u (MATCHES,; -1: none) and its counters' context, into the arrays given; returns the
    match model's table slot for this window and the local activity bucket (0..3)."""
    channels, width = img.shape[2], img.shape[1]
    y0, x0, y1, x1 = box[0], box[1], box[2], box[3]
    # Neighbourhood: every channel's values at W, N, NW, NE; this channel's at WW, NN; residuals.
    hw = np.int64(c + 1)
    hn = np.int64(c + 1)
    hnw = np.int64(0)
    hne = np.int64(0)
    for cc in range(channels):
        hw = _mix(hw, _at(img, i, j - 1, cc, y0, x0, y1, x1))
        hn = _mix(hn, _at(img, i - 1, j, cc, y0, x0, y1, x1))
        hnw = _mix(hnw, _at(img, i - 1, j - 1, cc, y0, x0, y1, x1))
        hne = _mix(hne, _at(img, i - 1, j + 1, cc, y0, x0, y1, x1))
    here = np.int64(0)  # this pixel's channels coded before c: their u, exact and coarse
    coarse = np.int64(0)
    for cc in range(c):
        here = _mix(here, np.int64(res[i, j, cc]) + 1)
        coarse = _mix(coarse, _bucket(np.int64(res[i, j, cc])) + 1)
    vw = _at(img, i, j - 1, c, y0, x0, y1, x1)
    vn = _at(img, i - 1, j, c, y0, x0, y1, x1)
    vnw = _at(img, i - 1, j - 1, c, y0, x0, y1, x1)
    vne = _at(img, i - 1, j + 1, c, y0, x0, y1, x1)
    vww = _at(img, i, j - 2, c, y0, x0, y1, x1)
    vnn = _at(img, i - 2, j, c, y0, x0, y1, x1)
    uw = _at(res, i, j - 1, c, y0, x0, y1, x1)
    un = _at(res, i - 1, j, c, y0, x0, y1, x1)
    unw = _at(res, i - 1, j - 1, c, y0, x0, y1, x1)
    une = _at(res, i - 1, j + 1, c, y0, x0, y1, x1)
    hs = np.int64(c + 11)
    for cc in range(side.shape[2]):
        hs = _mix(hs, np.int64(side[i, j, cc]))
    hashes[0] = _mix(_mix(_mix(_mix(_mix(here, 1), hw), hn), hnw), hne)
    hashes[1] = _mix(_mix(_mix(_mix(here, 3 + 16 * c), hn), hne), vnn)
    hashes[2] = _mix(_mix(_mix(_mix(here, 4 + 16 * c), hw), vww), vnw)
    hashes[3] = _mix(_mix(_mix(_mix(_mix(coarse, 5 + 16 * c), min(uw, 24)), min(un, 24)), min(unw, 12)),
                     min(une, 12))
    g1 = min(abs(vw - vnw), 64) if vw < 256 and vnw < 256 else 99
    g2 = min(abs(vn - vnw), 64) if vn < 256 and vnw < 256 else 99
    g3 = min(abs(vne - vn), 64) if vne < 256 and vn < 256 else 99
    hashes[4] = _mix(_mix(_mix(_mix(coarse, 6 + 16 * c), g1 // 4), g2 // 4), g3 // 4)
    hashes[5] = _mix(_mix(_mix(_mix(here, 7 + 16 * c), hs), vw), vn)
    hashes[6] = _mix(_mix(_mix(coarse, 8 + 16 * c), _q(vw - pr)), _q(vn - pr))
    hashes[7] = _mix(_mix(_mix(_mix(coarse, 9 + 16 * c), _q(vne - pr)), _q(vnw - pr)), _q(vww - pr))
    hashes[8] = _mix(10 + 16 * c, 0)  # this image's own statistics of u, whatever the neighbourhood
    hashes[9] = _mix(here, 12 + 16 * c)  # this pixel's earlier residuals alone
    # Wider windows of this channel, exact: glyphs and lines repeat in screenshots and charts.
    vnne = _at(img, i - 2, j + 1, c, y0, x0, y1, x1)
    vnnw = _at(img, i - 2, j - 1, c, y0, x0, y1, x1)
    vnww = _at(img, i - 1, j - 2, c, y0, x0, y1, x1)
    vnee = _at(img, i - 1, j + 2, c, y0, x0, y1, x1)
    h = _mix(_mix(_mix(_mix(_mix(_mix(here, 13 + 16 * c), vw), vww), vnw), vn), vne)
    hashes[10] = _mix(_mix(_mix(_mix(_mix(h, vnn), vnne), vnnw), vnww), vnee)
    slot_last = (_mix(hashes[10], hw) >> np.int64(24)) & ((1 << MATCH_BITS) - 1)
    seen = last[slot_last]
    hashes[11] = _mix(_mix(_mix(_mix(_mix(here, 14 + 16 * c), hw), hn), hnw), vnn)
    edge = min(abs(vw - vn), 9) if vw < 256 and vn < 256 else 9
    edge = 0 if edge == 0 else (1 if edge < 3 else (2 if edge < 9 else 3))
    sides = side.shape[2]
    for m in range(MATCHES):
        v = np.int64(256)
        if m == 0:
            v = vw
        elif m == 1:
            v = vn
        elif m == 2:
            v = vne
        elif m == 3:
            v = vnw
        elif m == 4 and sides > 0:
            v = np.int64(side[i, j, min(c, sides - 1)])
        elif m == 5 and sides > 0:
            v = np.int64(side[i, j, sides - 1])
        elif m == 6 and seen >= 0:  # what followed this window where it was seen last
            v = np.int64(vals[seen // width, seen % width, c])
        expect[m] = u_of_r[(v - pr) & 255] if v < 256 else -1
        mctx[m] = ((m * MAX_CHANNELS + c) * 64 * 2 * 4) + (edge if m < 6 else min(run[c], 3))
    act = min(uw, 255) + min(un, 255)  # local activity: the APM's context
    apm_ctx = 0 if act == 0 else (1 if act < 4 else (2 if act < 16 else 3))
    return slot_last, apm_ctx


@numba.njit(inline="always")
def _inputs(x, cum, tree, node, tables, blocks, group_blocks, matches, expect, mctx, stretch, mask):
    # pragma: no cover - compiled
    """The mixers' inputs (INPUTS,) for the decision at tree node `node`, into x: the network's probability
    of a 1 (from cum, its frequencies' running sums in u order), each context model's counter, each
    candidate's counter while the candidate is still possible, and a bias."""
    lo, mid, hi, slot, first = tree[0, node], tree[1, node], tree[2, node], tree[5, node], tree[6, node]
    tp = tree[8, node]
    pn = min(max(((cum[hi] - cum[mid]) << PROB_BITS) // (cum[hi] - cum[lo]), 1), PROB_ONE - 1)
    x[0] = stretch[pn]
    for k in range(CONTEXTS):
        x[k + 1] = 0
        if slot > 0 and (mask >> k) & 1:
            v = np.int64(tables[k, blocks[k] if first else group_blocks[k], slot])
            x[k + 1] = stretch[v >> 16] if v & 1023 else 0  # a new counter says nothing yet
    for m in range(MATCHES):
        e = expect[m]
        x[CONTEXTS + 1 + m] = 0
        if lo <= e < hi and (mask >> (CONTEXTS + m)) & 1:  # the candidate is still possible
            mi = mctx[m] + (tp * 2 + (1 if e >= mid else 0)) * 4
            x[CONTEXTS + 1 + m] = stretch[np.int64(matches[mi]) >> 16]
    x[INPUTS - 1] = STRETCH_ONE


@numba.njit(inline="always")
def _count_all(bit, tree, node, tables, blocks, group_blocks, matches, expect, mctx, rates, limit):
    # pragma: no cover - compiled
    """Every counter that predicted the decision at `node` learns its outcome `bit`."""
    lo, mid, hi, slot, first = tree[0, node], tree[1, node], tree[2, node], tree[5, node], tree[6, node]
    tp = tree[8, node]
    if slot > 0:
        for k in range(CONTEXTS):
            b = blocks[k] if first else group_blocks[k]
            tables[k, b, slot] = _count(tables[k, b, slot], bit, rates, limit)
    for m in range(MATCHES):
        e = expect[m]
        if lo <= e < hi:
            mi = mctx[m] + (tp * 2 + (1 if e >= mid else 0)) * 4
            matches[mi] = _count(matches[mi], bit, rates, limit)


@numba.njit(cache=True, nogil=True)
def _code(decode, symbols, freqs, rows, cols, chans, boxes, preds, img, res, vals, side, tables, weights, apm,
          matches, last, run, squash, stretch, rates, r_of_u, u_of_r, cost, tree, settings, coder, buf, probs,
          costs):  # pragma: no cover - compiled
    """Code (or, if decode, decode into symbols) n subpixels in stream order. symbols (n,) residuals r,
    freqs (n, 256) the network's integer frequencies, rows/cols/chans (n,) where each is, boxes (n, 4) its
    tile (y0, x0, y1, x1), preds (n,) the predictions the residuals are taken from, img (H, W, C) the pixel
    values coded so far (read at earlier positions only), res (H, W, C) the u of each coded subpixel and
    vals (H, W, C) its value (both written here: the decoder's own image is written only after a batch),
    side (H, W, S) earlier planes' values, the rest the State's arrays and the module's tables, coder/buf
    the arithmetic coder's state and bytes, probs (n, MAX_DECISIONS) each decision's probability (a trace
    for tests, 0 past a symbol's last decision; or (0, _)), costs (n,) each one's cost in bits."""
    n = len(symbols)
    trace = probs.shape[0] == n
    mixer_rate, apm_share, limit, apm_rate, mask = settings[0], settings[1], settings[2], settings[3], settings[4]
    width = img.shape[1]
    cum = np.zeros(257, np.int64)
    hashes = np.zeros(CONTEXTS, np.int64)
    blocks = np.zeros(CONTEXTS, np.int64)  # each context model's first block, and its current group's
    group_blocks = np.zeros(CONTEXTS, np.int64)
    x = np.zeros(INPUTS, np.int64)
    expect = np.zeros(MATCHES, np.int64)  # each candidate's u (-1: none)
    mctx = np.zeros(MATCHES, np.int64)
    for s in range(n):
        i, j, c = np.int64(rows[s]), np.int64(cols[s]), np.int64(chans[s])
        pr = np.int64(preds[s])
        # The network's frequencies in u order, +1 each (what a categorical coder gives them), summed as far as
        # the decisions need: small u need few. They sum to FREQ_TOTAL + 256 = 2^24 (pixzip.softmax).
        filled = 0
        cum[256] = 1 << 24
        slot_last, apm_ctx = _contexts(img, res, vals, side, i, j, c, boxes[s], pr, last, run, u_of_r, hashes,
                                       expect, mctx)
        seen = last[slot_last]
        for k in range(CONTEXTS):
            blocks[k] = _block(tables, k, hashes[k])
        u = np.int64(0) if decode else u_of_r[symbols[s]]
        node = np.int64(0)
        bits = 0.0
        for d in range(MAX_DECISIONS):
            need = tree[2, node] if tree[2, node] < 256 else tree[1, node]
            while filled < need:
                cum[filled + 1] = cum[filled] + np.int64(freqs[s, r_of_u[filled]]) + 1
                filled += 1
            _inputs(x, cum, tree, node, tables, blocks, group_blocks, matches, expect, mctx, stretch, mask)
            tp = tree[8, node]
            # Two mixers, their weights chosen by (channel, tree position) and the network's confidence, or
            # the local activity; their outputs averaged in the stretch domain.
            conf = min(abs(x[0]) // 384, CONFIDENCE_BUCKETS - 1)
            ws1 = (c * TREE_POSITIONS + tp) * CONFIDENCE_BUCKETS + conf
            ws2 = WEIGHT_SETS // 2 + (c * TREE_POSITIONS + tp) * CONFIDENCE_BUCKETS + apm_ctx
            t1 = _dot(weights, ws1, x)
            t2 = _dot(weights, ws2, x)
            t = (t1 + t2) >> 1
            pm = np.int64(squash[t + STRETCH_MAX])
            # Two APMs refine it: one on the mixers' output by activity, one on the network's own stretch.
            a1 = (c * TREE_POSITIONS + tp) * 4 + apm_ctx
            a2 = APM_SETS // 2 + c * TREE_POSITIONS + tp
            pa = (_apm(apm, a1, t) + _apm(apm, a2, x[0])) >> 1
            p = min(max((pm * (4 - apm_share) + pa * apm_share) >> 2, 1), PROB_ONE - 1)
            if decode:
                bit = _decode_bit(coder, buf, p)
            else:
                bit = 1 if u >= tree[1, node] else 0
                _encode_bit(coder, buf, bit, p)
            if trace:
                probs[s, d] = p
            bits += cost[p if bit else PROB_ONE - p]
            # Updates, in a fixed order: counters, candidates, mixers, APMs.
            _count_all(bit, tree, node, tables, blocks, group_blocks, matches, expect, mctx, rates, limit)
            _train(weights, ws1, x, bit, squash[t1 + STRETCH_MAX], mixer_rate)
            _train(weights, ws2, x, bit, squash[t2 + STRETCH_MAX], mixer_rate)
            _apm_update(apm, a1, t, bit, apm_rate)
            _apm_update(apm, a2, x[0], bit, apm_rate)
            child = tree[4, node] if bit else tree[3, node]
            if child < 0:
                u = -1 - child
                break
            if tree[6, child] == 0 and tree[7, child] != tree[7, node]:  # entering a group of its own block
                for k in range(CONTEXTS):
                    group_blocks[k] = _block(tables, k, _mix(hashes[k], tree[7, child] + 1000))
            node = child
        if decode:
            symbols[s] = r_of_u[u]
        res[i, j, c] = np.uint8(u)
        value = (pr + r_of_u[u]) & 255
        if seen >= 0:
            run[c] = run[c] + 1 if expect[6] == u else 0
        vals[i, j, c] = np.uint8(value)
        last[slot_last] = i * width + j
        costs[s] = bits


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

    def __init__(self, earlier: np.ndarray | None = None):
        """earlier (H, W, S): the planes of this image coded before this one (their values are context)."""
        self.state = State.new()
        self.settings = SETTINGS
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
                s.tables, s.weights, s.apm, s.matches, s.last, s.run, SQUASH, STRETCH, RATES, R_OF_U, U_OF_R, COST,
                TREE, self.settings)


class Encoder(_Stage):
    def __init__(self, earlier: np.ndarray | None = None):
        super().__init__(earlier)
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
    def __init__(self, payload: bytes, earlier: np.ndarray | None = None):
        super().__init__(earlier)
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
