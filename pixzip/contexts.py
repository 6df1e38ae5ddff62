"""What the adaptive stage knows of a subpixel before coding it: its context models' hashes, its candidate
values, and the small contexts that select mixer weights and APMs.

The context models (hashes[k]), each with the channel and the u of this pixel's channels coded before (exact,
or coarse: in 7 buckets). A format version uses some of them (its settings' mask, pixzip.adaptive):
  0  every channel's values at W, N, NW, NE, exact                      (screenshots: repeated patterns)
  1  N, NE (every channel) and this channel's NN                          2  W (every channel), WW, NW
  3  the u of W, N, NW, NE (clipped), coarse                              4  gradients |W-NW|, |N-NW|, |NE-N| / 4
  5  the earlier planes' values here, with W and N                        (alpha = grey, low byte | high byte)
  6  W and N relative to the prediction, quantized, coarse                7  NE, NW, WW likewise
  8  nothing but the channel: this image's own statistics of u             9  this pixel's earlier u alone
 10  this channel's 2-row window: W, WW, NW, N, NE, NN, NNE, NNW, NWW, NEE   (glyphs, lines)
 11  every channel's values at W, N, NW, with this channel's NN
 12  linear predictions W + N - NW and (N + NE) / 2 relative to the prediction, quantized    (version 5 on)
 13  2N - NN and 2W - WW likewise
 14  the channel before at this pixel carried over by its change from W, from N and their mean: W + (x' - W'),
     N + (x' - N'), where ' is the channel before (a photo's channels move together)
 15  the same from NE, and from the plane W + N - NW
 16  14 from the first channel (for the third channel: R, where 14 uses G)
 17  the LMS predictor's prediction relative to pr, in eighths, quantized                    (version 6 on)
Contexts 0-11 are version 4's; version 5 drops 1, 2, 4 and 8 (they bought under 0.05 % each) and adds 12-16,
the cross-channel ones buying most: the network predicts G and B from R only through its median predictor
and its features, and on photos the stage finds more in this image's own channel correlation.

The LMS predictor (version 6): a linear prediction of the subpixel from 18 inputs (this channel's ten nearest
neighbours, the channel before carried over from W, N, NW and NE, the channel before's residual here, the
first channel carried over from W and N for the third, a bias), all relative to pr, whose weights (one set
per channel) learn this image by normalized least mean squares after every subpixel, in integers: the image's
own texture and channel correlation, which a fixed network can only approximate.

And eight candidate values (W, N, NE, NW, two earlier planes' co-located values, the match model's: the value
that followed this channel's 2-row window where it was last seen, anywhere in the plane; version 6: the LMS
prediction, rounded): while one is still possible in the tree, an adaptive counter says how often the next
decision goes its way.
"""
import numba
import numpy as np

MAX_CHANNELS = 3
CONTEXTS = 18  # context models (all versions')
MATCHES = 8  # candidate values (W, N, NE, NW, two of the earlier planes' co-located ones, the last match, LMS)
LMS = 17  # the context model of the LMS predictor; its candidate is MATCHES - 1
LMS_INPUTS = 18  # the LMS predictor's inputs
LMS_SHIFT = 16  # its weights and predictions are fixed point with this many fractional bits
MATCH_BITS = 20  # the match model's table: where each 2-row window was last seen (2^20 positions, 8 MiB)
HASH_MUL = np.int64(0x2545F4914F6CDD1D)


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
def _q_fine(d):  # pragma: no cover - compiled
    """A difference quantized to 17 buckets, finer near 0: 0, 1, 2, 3-4, 5-7, 8-11, 12-17, 18-27, 28 and more."""
    a = abs(d)
    b = 0 if a == 0 else (1 if a < 2 else (2 if a < 3 else (3 if a < 5 else (4 if a < 8 else (5 if a < 12 else (
        6 if a < 18 else (7 if a < 28 else 8)))))))
    return np.int64(b if d >= 0 else -b)


@numba.njit(inline="always")
def _carried(img, vals, i, j, c, cc, di, dj):  # pragma: no cover - compiled
    """Channel c's value at (i + di, j + dj) carried to (i, j) by channel cc's change there: v + (x' - v'),
    x' this pixel's channel cc (coded already), v' the neighbour's. The neighbour must be inside the tile."""
    return np.int64(img[i + di, j + dj, c]) - np.int64(img[i + di, j + dj, cc]) + np.int64(vals[i, j, cc])


@numba.njit(inline="always")
def _predictions(img, vals, i, j, c, vw, vn, vnw, vne, vww, vnn, pr, coarse, hashes):  # pragma: no cover
    """Contexts 12-16: linear and cross-channel predictions of subpixel (i, j, c) relative to the prediction
    pr, quantized (a neighbour outside the tile, 256, leaves a context at its constant)."""
    hashes[12] = _mix(coarse, 15 + 16 * c + 999)
    if vw < 256 and vn < 256 and vnw < 256:
        half = (vn + (vne if vne < 256 else vn)) // 2
        hashes[12] = _mix(_mix(_mix(coarse, 15 + 16 * c), _q(vw + vn - vnw - pr)), _q(half - pr))
    hashes[13] = _mix(coarse, 16 + 16 * c + 999)
    if vnn < 256 and vww < 256 and vn < 256 and vw < 256:
        hashes[13] = _mix(_mix(_mix(coarse, 16 + 16 * c), _q(2 * vn - vnn - pr)), _q(2 * vw - vww - pr))
    hashes[14] = _mix(coarse, 17 + 16 * c)
    hashes[15] = _mix(coarse, 18 + 16 * c)
    hashes[16] = _mix(coarse, 19 + 16 * c)
    if c == 0 or vw == 256 or vn == 256:
        return
    pw = _carried(img, vals, i, j, c, c - 1, 0, -1)
    pn = _carried(img, vals, i, j, c, c - 1, -1, 0)
    hashes[14] = _mix(_mix(_mix(_mix(coarse, 17 + 16 * c), _q_fine(pw - pr)), _q_fine(pn - pr)),
                      _q_fine((pw + pn) // 2 - pr))
    if vnw < 256 and vne < 256:
        pnw = _carried(img, vals, i, j, c, c - 1, -1, -1)
        pne = _carried(img, vals, i, j, c, c - 1, -1, 1)
        hashes[15] = _mix(_mix(_mix(coarse, 18 + 16 * c), _q_fine(pne - pr)), _q_fine(pw + pn - pnw - pr))
    if c > 1:
        pw = _carried(img, vals, i, j, c, 0, 0, -1)
        pn = _carried(img, vals, i, j, c, 0, -1, 0)
        hashes[16] = _mix(_mix(_mix(_mix(coarse, 19 + 16 * c), _q_fine(pw - pr)), _q_fine(pn - pr)),
                          _q_fine((pw + pn) // 2 - pr))


@numba.njit(inline="always")
def _lms_inputs(img, vals, res, i, j, c, near, pr, d):  # pragma: no cover - compiled
    """The LMS predictor's inputs (LMS_INPUTS,) into d, relative to pr: near (10,) this channel's neighbours
    (256: outside the tile, input 0), the channel before carried over from W, N, NW, NE (0 for the first
    channel, or outside), its signed residual here, the first channel carried over from W and N (the third
    channel's), and a constant (a bias)."""
    for k in range(10):
        d[k] = near[k] - pr if near[k] < 256 else 0
    for k in range(10, LMS_INPUTS - 1):
        d[k] = 0
    d[LMS_INPUTS - 1] = 16
    if c == 0:
        return
    u = np.int64(res[i, j, c - 1])
    d[14] = -((u + 1) // 2) if u & 1 else u // 2
    if near[0] < 256:
        d[10] = _carried(img, vals, i, j, c, c - 1, 0, -1) - pr
    if near[1] < 256:
        d[11] = _carried(img, vals, i, j, c, c - 1, -1, 0) - pr
    if near[2] < 256:
        d[12] = _carried(img, vals, i, j, c, c - 1, -1, -1) - pr
    if near[3] < 256:
        d[13] = _carried(img, vals, i, j, c, c - 1, -1, 1) - pr
    if c > 1:
        if near[0] < 256:
            d[15] = _carried(img, vals, i, j, c, 0, 0, -1) - pr
        if near[1] < 256:
            d[16] = _carried(img, vals, i, j, c, 0, -1, 0) - pr


@numba.njit(inline="always")
def _lms_predict(lms, c, d):  # pragma: no cover - compiled
    """The LMS prediction of channel c relative to pr, fixed point (LMS_SHIFT fractional bits)."""
    p = np.int64(0)
    for k in range(LMS_INPUTS):
        p += lms[c, k] * d[k]
    return p


@numba.njit(inline="always")
def _lms_learn(lms, c, d, target, p, step):  # pragma: no cover - compiled
    """Normalized LMS: channel c's weights move toward the coded value (target, relative to pr) by
    2^-step of the error over the inputs' energy (one integer division; floor rounding, the same anywhere)."""
    energy = np.int64(256)
    for k in range(LMS_INPUTS):
        energy += d[k] * d[k]
    g = (((target << LMS_SHIFT) - p) << 8) // (energy << step)
    for k in range(LMS_INPUTS):
        lms[c, k] += (g * d[k]) >> 8


@numba.njit(inline="always")
def _cross_prediction(img, vals, i, j, c, box, pr):  # pragma: no cover - compiled
    """A second prediction of subpixel (i, j, c), relative to pr, in halves (version 7's second moved
    distribution, pixzip.adaptive): the channel before carried over from W and from N, their mean (a photo's
    channels move together); for the first channel the plane through W, N and NW (W + N - NW). 0 where W, N
    or NW is outside the tile."""
    if i <= box[0] or j <= box[1]:
        return np.int64(0)
    if c > 0:
        return _carried(img, vals, i, j, c, c - 1, 0, -1) + _carried(img, vals, i, j, c, c - 1, -1, 0) - 2 * pr
    return 2 * (np.int64(img[i, j - 1, 0]) + np.int64(img[i - 1, j, 0]) - np.int64(img[i - 1, j - 1, 0]) - pr)


@numba.njit(inline="always")
def _lms_bucket(p):  # pragma: no cover - compiled
    """How far the LMS prediction p (fixed point) is from the network's prediction, 0..3: under half a
    level, under 1.5, under 4, more (version 6's final mixer's context: how much to trust which input)."""
    a = abs(p >> (LMS_SHIFT - 3))
    return np.int64(0 if a < 4 else (1 if a < 12 else (2 if a < 32 else 3)))


@numba.njit(inline="always")
def _candidates(img, vals, side, i, j, c, vw, vn, vne, vnw, seen, edge, pr, run, u_of_r, expect, mctx, lms_value):
    # pragma: no cover - compiled
    """Each candidate value's u (MATCHES,; -1: none) and its counters' context, into expect and mctx;
    lms_value: the LMS prediction (relative to pr; 256: none)."""
    width = img.shape[1]
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
        elif m == 7 and lms_value < 256:
            v = min(max(pr + lms_value, 0), 255)
        expect[m] = u_of_r[(v - pr) & 255] if v < 256 else -1
        mctx[m] = ((m * MAX_CHANNELS + c) * 64 * 2 * 4) + (min(run[c], 3) if m == 6 else edge)


@numba.njit(inline="always")
def _contexts(img, res, vals, side, i, j, c, box, pr, last, run, u_of_r, mask, lms, near, d, hashes, expect, mctx):
    # pragma: no cover - compiled
    """What the stage knows of subpixel (i, j, c) before coding it: the hashes (CONTEXTS,) of the context models
    in use (mask: pixzip.adaptive's), each candidate's u (MATCHES,; -1: none) and its counters' context, and
    the LMS predictor's inputs (d), into the arrays given (near: room for 10 values); returns the match model's
    table slot for this window, the local activity over W and N (0..3, the APMs' and version 4's second mixer's
    context), over W, N, NW and NE (0..5, version 5's second mixer's), and the LMS prediction (fixed point,
    relative to pr; 0 where unused)."""
    channels = img.shape[2]
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
    if mask & 0b100010110:  # (contexts 1, 2, 4 and 8: version 4's only)
        hashes[1] = _mix(_mix(_mix(_mix(here, 3 + 16 * c), hn), hne), vnn)
        hashes[2] = _mix(_mix(_mix(_mix(here, 4 + 16 * c), hw), vww), vnw)
        g1 = min(abs(vw - vnw), 64) if vw < 256 and vnw < 256 else 99
        g2 = min(abs(vn - vnw), 64) if vn < 256 and vnw < 256 else 99
        g3 = min(abs(vne - vn), 64) if vne < 256 and vn < 256 else 99
        hashes[4] = _mix(_mix(_mix(_mix(coarse, 6 + 16 * c), g1 // 4), g2 // 4), g3 // 4)
        hashes[8] = _mix(10 + 16 * c, 0)  # this image's own statistics of u, whatever the neighbourhood
    if (mask >> 3) & 1:  # (versions 4 and 5)
        hashes[3] = _mix(_mix(_mix(_mix(_mix(coarse, 5 + 16 * c), min(uw, 24)), min(un, 24)), min(unw, 12)),
                         min(une, 12))
    hashes[5] = _mix(_mix(_mix(_mix(here, 7 + 16 * c), hs), vw), vn)
    hashes[6] = _mix(_mix(_mix(coarse, 8 + 16 * c), _q(vw - pr)), _q(vn - pr))
    hashes[7] = _mix(_mix(_mix(_mix(coarse, 9 + 16 * c), _q(vne - pr)), _q(vnw - pr)), _q(vww - pr))
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
    lms_p = np.int64(0)
    lms_value = np.int64(256)
    if (mask >> LMS) & 1:
        near[0], near[1], near[2], near[3], near[4] = vw, vn, vnw, vne, vww
        near[5], near[6], near[7], near[8], near[9] = vnn, vnne, vnnw, vnww, vnee
        _lms_inputs(img, vals, res, i, j, c, near, pr, d)
        lms_p = _lms_predict(lms, c, d)
        lms_value = (lms_p + (1 << (LMS_SHIFT - 1))) >> LMS_SHIFT
        hashes[LMS] = _mix(_mix(coarse, 20 + 16 * c), _q_fine(lms_p >> (LMS_SHIFT - 3)))
    _candidates(img, vals, side, i, j, c, vw, vn, vne, vnw, seen, edge, pr, run, u_of_r, expect, mctx, lms_value)
    if (mask >> 12) & 31:  # (contexts 12-16: version 5 on)
        _predictions(img, vals, i, j, c, vw, vn, vnw, vne, vww, vnn, pr, coarse, hashes)
    act = min(uw, 255) + min(un, 255)  # local activity: the APM's context
    apm_ctx = 0 if act == 0 else (1 if act < 4 else (2 if act < 16 else 3))
    act = act + min(unw, 255) + min(une, 255)
    act6 = 0 if act == 0 else (1 if act < 3 else (2 if act < 8 else (3 if act < 20 else (4 if act < 48 else 5))))
    return slot_last, apm_ctx, act6, lms_p
