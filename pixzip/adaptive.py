"""The adaptive stage: the network's distributions refined by context models learned from this image.

Between the network's frequencies and the bits. Every subpixel's residual r (0..255, the symbol the
network's softmax is over) is mapped to u = zigzag(r) (0 = the prediction, 1 = +1, 2 = -1, ...) and coded
as 8 binary decisions, most significant bit first. For each decision:

  inputs   the network's probability of the bit (from its 256 frequencies, summed over each half of the
           node's range of u) and the predictions of CONTEXTS adaptive context models: counters in hashed
           tables keyed by the exact neighbouring values (all channels), residuals, gradients, the
           channels of this pixel already coded and the co-located values of the planes coded before,
           each with the position in the binary tree
  mixer    a gated logistic mixer: p = squash(sum_i w_i stretch(p_i)), its weights chosen by the channel,
           the tree depth and the network's confidence, learning online (starts as the network alone)
  APM      an adaptive probability map refines the mixer's output (interpolated over its stretch)
  coder    a binary arithmetic coder (32-bit, carry-less) codes the bit with the final 16-bit probability

Every quantity is an integer and every table is built by exact (decimal) arithmetic, so encoder and decoder
compute the same probabilities on any machine; both update the same state in the same (stream) order,
after each decision. The tables have fixed sizes (memory is bounded whatever the image).
The whole loop is one compiled call per batch of symbols (a decoder pass), see _code.
"""
from dataclasses import dataclass

import numba
import numpy as np

PROB_BITS = 16  # probabilities are integers 1 .. 2^16 - 1 (of 2^16)
PROB_ONE = 1 << PROB_BITS
STRETCH_ONE = 256  # stretch(p) = ln(p / (1 - p)) in units of 1/256
STRETCH_MAX = 2880  # ln(65535) * 256 = 2839 fits
CONTEXTS = 7  # context models
INPUTS = CONTEXTS + 2  # and the network and a bias
TABLE_BITS = 16  # each context model's table: 2^16 blocks of 16 counters (4 MiB)
COUNT_LIMIT = 255  # a counter's adaptation rate falls as 1 / (n + 1.5) down to 1 / (COUNT_LIMIT + 1.5)
CONFIDENCE_BUCKETS = 6  # mixer weight sets per channel and depth: by |stretch| of the network's probability
APM_POINTS = 33
APM_RATE = 7
MIXER_SHIFT = 16  # weights are fixed point with 16 fractional bits
MIXER_RATE = 96  # the mixer's learning rate: dw = x * err * MIXER_RATE >> 18
MAX_CHANNELS = 3
SIDE_MAX = 4  # co-located values of earlier planes used as context (at most this many)
HASH_MUL = np.int64(0x2545F4914F6CDD1D)


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
RATES = np.array([int(PROB_ONE / (n + 1.5)) for n in range(COUNT_LIMIT + 1)], dtype=np.int64)
# u -> r: u = 2e for e >= 0, -2e - 1 for e < 0, where e is r read as a signed residual (-128 .. 127)
R_OF_U = np.array([(u // 2) if u % 2 == 0 else (256 - (u + 1) // 2) % 256 for u in range(256)], dtype=np.int64)
U_OF_R = np.argsort(R_OF_U).astype(np.int64)


@dataclass
class State:
    """What the stage has learned so far in one plane; encoder and decoder each hold one."""

    tables: np.ndarray  # (CONTEXTS, 2^TABLE_BITS, 16) uint32: [0] a block's tag, [1..15] counters p22 << 10 | n
    weights: np.ndarray  # (MAX_CHANNELS * 8 * CONFIDENCE_BUCKETS, INPUTS) int64, fixed point
    apm: np.ndarray  # (MAX_CHANNELS * 8 * 4, APM_POINTS) int64 probabilities (16 bits)

    @classmethod
    def new(cls) -> "State":
        weights = np.zeros((MAX_CHANNELS * 8 * CONFIDENCE_BUCKETS, INPUTS), dtype=np.int64)
        weights[:, 0] = 1 << MIXER_SHIFT  # at first the mixer passes the network's probability through
        points = (np.arange(APM_POINTS) - APM_POINTS // 2) * (2 * STRETCH_MAX // (APM_POINTS - 1))
        apm = np.tile(SQUASH[points + STRETCH_MAX].astype(np.int64), (MAX_CHANNELS * 8 * 4, 1))
        return cls(np.zeros((CONTEXTS, 1 << TABLE_BITS, 16), dtype=np.uint32), weights, apm)


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
def _encode_bit(coder, out, bit, p1):  # pragma: no cover - compiled
    """Binary arithmetic coding (carry-less, 32-bit range [x1, x2]): bit with probability p1 / 2^16 of 1.
    coder = [x1, x2, bytes written, ...]."""
    x1, x2 = coder[0], coder[1]
    r = x2 - x1
    mid = x1 + (r >> 16) * p1 + (((r & 0xFFFF) * p1) >> 16)
    if bit:
        x2 = mid
    else:
        x1 = mid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        out[coder[2]] = np.uint8(x2 >> 24)
        coder[2] += 1
        x1 = (x1 << 8) & 0xFFFFFFFF
        x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
    coder[0], coder[1] = x1, x2


@numba.njit(inline="always")
def _decode_bit(coder, data, p1):  # pragma: no cover - compiled
    """The decoder's side of _encode_bit; coder = [x1, x2, bytes read, x, bytes read past the end]."""
    x1, x2, x = coder[0], coder[1], coder[3]
    r = x2 - x1
    mid = x1 + (r >> 16) * p1 + (((r & 0xFFFF) * p1) >> 16)
    bit = 1 if x <= mid else 0
    if bit:
        x2 = mid
    else:
        x1 = mid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        x1 = (x1 << 8) & 0xFFFFFFFF
        x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
        byte = 0
        if coder[2] < len(data):
            byte = data[coder[2]]
        else:
            coder[4] += 1
        coder[2] += 1
        x = ((x << 8) & 0xFFFFFFFF) | byte
    coder[0], coder[1], coder[3] = x1, x2, x
    return bit


@numba.njit(cache=True, nogil=True)
def _code(decode, symbols, freqs, rows, cols, chans, boxes, img, res, side, tables, weights, apm, squash,
          stretch, rates, r_of_u, u_of_r, coder, buf, probs, costs):  # pragma: no cover - compiled
    """Code (or, if decode, decode into symbols) n subpixels in stream order. symbols (n,) residuals r,
    freqs (n, 256) the network's integer frequencies, rows/cols/chans (n,) where each is, boxes (n, 4) its
    tile (y0, x0, y1, x1), img (H, W, C) the pixel values coded so far (read at earlier positions only),
    res (H, W, C) the u of each coded subpixel (written here), side (H, W, S) earlier planes' values,
    coder/buf the arithmetic coder's state and bytes, probs (n, 8) each decision's final probability
    (a trace for tests; or (0, 8)), costs (n,) each subpixel's cost in bits."""
    n = len(symbols)
    trace = probs.shape[0] == n
    channels = img.shape[2]
    cum = np.zeros(257, np.int64)
    hashes = np.zeros(CONTEXTS, np.int64)
    blocks = np.zeros(CONTEXTS, np.int64)
    x = np.zeros(INPUTS, np.int64)
    for s in range(n):
        i, j, c = np.int64(rows[s]), np.int64(cols[s]), np.int64(chans[s])
        y0, x0, y1, x1 = boxes[s, 0], boxes[s, 1], boxes[s, 2], boxes[s, 3]
        for u in range(256):  # the network's frequencies in u order, +1 each (what the coder gives them)
            cum[u + 1] = cum[u] + np.int64(freqs[s, r_of_u[u]]) + 1
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
        here = np.int64(0)  # this pixel's channels coded before c
        for cc in range(c):
            here = _mix(here, np.int64(res[i, j, cc]) + 1)
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
        hashes[1] = _mix(_mix(_mix(here, 2), hw), hn)
        hashes[2] = _mix(_mix(_mix(_mix(here, 3 + 16 * c), hn), hne), vnn)
        hashes[3] = _mix(_mix(_mix(_mix(here, 4 + 16 * c), hw), vww), vnw)
        hashes[4] = _mix(_mix(_mix(_mix(_mix(here, 5 + 16 * c), min(uw, 24)), min(un, 24)), min(unw, 12)),
                         min(une, 12))
        g1 = min(abs(vw - vnw), 64) if vw < 256 and vnw < 256 else 99
        g2 = min(abs(vn - vnw), 64) if vn < 256 and vnw < 256 else 99
        g3 = min(abs(vne - vn), 64) if vne < 256 and vn < 256 else 99
        hashes[5] = _mix(_mix(_mix(_mix(here, 6 + 16 * c), g1 // 4), g2 // 4), g3 // 4)
        hashes[6] = _mix(_mix(_mix(_mix(here, 7 + 16 * c), hs), vw), vn)
        act = min(uw, 255) + min(un, 255)  # local activity: the APM's context
        apm_ctx = 0 if act == 0 else (1 if act < 4 else (2 if act < 16 else 3))
        for k in range(CONTEXTS):
            blocks[k] = _block(tables, k, hashes[k])
        u = np.int64(0) if decode else u_of_r[symbols[s]]
        prefix = np.int64(0)
        node = np.int64(1)
        bits = 0.0
        for d in range(8):
            if d == 4:  # the second nibble's blocks: keyed by the first
                for k in range(CONTEXTS):
                    hashes[k] = _mix(hashes[k], prefix + 1000)
                    blocks[k] = _block(tables, k, hashes[k])
                node = 1
            width = np.int64(1) << (7 - d)
            lo = prefix << (8 - d)
            total = cum[lo + 2 * width] - cum[lo]
            ones = cum[lo + 2 * width] - cum[lo + width]
            pn = min(max((ones << PROB_BITS) // total, 1), PROB_ONE - 1)
            x[0] = stretch[pn]
            for k in range(CONTEXTS):
                v = np.int64(tables[k, blocks[k], node])
                x[k + 1] = stretch[v >> 16] if (v & 1023) > 0 else 0
            x[CONTEXTS + 1] = STRETCH_ONE
            conf = min(abs(x[0]) // 384, CONFIDENCE_BUCKETS - 1)
            ws = (c * 8 + d) * CONFIDENCE_BUCKETS + conf
            dot = np.int64(0)
            for k in range(INPUTS):
                dot += weights[ws, k] * x[k]
            t = min(max(dot >> MIXER_SHIFT, -STRETCH_MAX), STRETCH_MAX)
            pm = np.int64(squash[t + STRETCH_MAX])
            # APM: interpolate between the two points around t
            a = (c * 8 + d) * 4 + apm_ctx
            pos = (t + STRETCH_MAX) * (APM_POINTS - 1)
            step = 2 * STRETCH_MAX
            lo_pt = pos // step
            frac = pos - lo_pt * step
            if lo_pt >= APM_POINTS - 1:
                lo_pt, frac = APM_POINTS - 2, step
            pa = (apm[a, lo_pt] * (step - frac) + apm[a, lo_pt + 1] * frac) // step
            p = min(max((pm + 3 * pa) >> 2, 1), PROB_ONE - 1)
            if decode:
                bit = _decode_bit(coder, buf, p)
            else:
                bit = (u >> (7 - d)) & 1
                _encode_bit(coder, buf, bit, p)
            if trace:
                probs[s, d] = p
            bits += -np.log2((p if bit else PROB_ONE - p) / PROB_ONE)
            # Updates: counters, mixer, APM (the one of its two points nearer t).
            for k in range(CONTEXTS):
                v = np.int64(tables[k, blocks[k], node])
                cnt = v & 1023
                p22 = v >> 10
                p22 += (((np.int64(bit) << 22) - p22) * rates[cnt]) >> 16
                p22 = min(max(p22, 64), (1 << 22) - 64)
                tables[k, blocks[k], node] = np.uint32((p22 << 10) | min(cnt + 1, COUNT_LIMIT))
            err = (np.int64(bit) << PROB_BITS) - pm
            for k in range(INPUTS):
                weights[ws, k] += (x[k] * err * MIXER_RATE) >> 18
            near = lo_pt + (1 if frac * 2 >= step else 0)
            apm[a, near] += ((np.int64(bit) << PROB_BITS) - apm[a, near]) >> APM_RATE
            prefix = prefix * 2 + bit
            node = node * 2 + bit
        if decode:
            symbols[s] = r_of_u[prefix]
        res[i, j, c] = np.uint8(min(prefix, 255))
        costs[s] = bits


@numba.njit(cache=True, nogil=True)
def _raw(decode, values, nbits, coder, buf):  # pragma: no cover - compiled
    """Code (or decode into values) unsigned integers of nbits bits each, at probability 1/2 per bit."""
    half = np.int64(PROB_ONE // 2)
    for s in range(len(values)):
        v = np.int64(0)
        for d in range(nbits):
            if decode:
                bit = _decode_bit(coder, buf, half)
            else:
                bit = (np.int64(values[s]) >> (nbits - 1 - d)) & 1
                _encode_bit(coder, buf, bit, half)
            v = v * 2 + bit
        values[s] = v


@dataclass
class Where:
    """Where a batch's subpixels are: image rows, columns, channels (n,) and tiles (n, 4) (y0, x0, y1, x1)."""

    rows: np.ndarray
    cols: np.ndarray
    chans: np.ndarray
    boxes: np.ndarray


class _Stage:
    """What a plane's coding knows of the image: the values so far (img), their residuals, earlier planes."""

    def __init__(self, earlier: np.ndarray | None = None):
        """earlier (H, W, S): the planes of this image coded before this one (their values are context)."""
        self.state = State.new()
        self.earlier = earlier
        self.img = self.res = self.side = None

    def begin(self, img: np.ndarray) -> None:
        """Start coding an (H, W, C) image (a multi-scale model's stages each are one); img is read at
        already coded positions only (the decoder fills it as it goes)."""
        self.img = img
        self.res = np.zeros(img.shape, dtype=np.uint8)
        side = self.earlier
        if side is None or side.shape[:2] != img.shape[:2]:  # none, or a multi-scale model's small image
            side = np.zeros(img.shape[:2] + (0,), dtype=np.uint8)
        self.side = np.ascontiguousarray(side[:, :, -SIDE_MAX:])

    def _args(self, where: Where):
        s = self.state
        return (where.rows.astype(np.int64), where.cols.astype(np.int64), where.chans.astype(np.int64),
                where.boxes.astype(np.int64), self.img, self.res, self.side, s.tables, s.weights, s.apm, SQUASH,
                STRETCH, RATES, R_OF_U, U_OF_R)


class Encoder(_Stage):
    def __init__(self, earlier: np.ndarray | None = None):
        super().__init__(earlier)
        self.coder = np.array([0, 0xFFFFFFFF, 0, 0, 0], dtype=np.int64)
        self.buf = np.zeros(1 << 16, dtype=np.uint8)

    def _room(self, bits: int) -> None:
        need = int(self.coder[2]) + bits // 8 + 64
        if need > len(self.buf):
            self.buf = np.concatenate([self.buf, np.zeros(max(need, 2 * len(self.buf)) - len(self.buf), np.uint8)])

    def push(self, symbols: np.ndarray, freqs: np.ndarray, where: Where, trace: list | None = None) -> np.ndarray:
        """Code residuals symbols (n,) with the network's freqs (n, 256) at where; returns each one's cost
        in bits (n,). trace, if given, receives the (n, 8) probabilities of the decisions."""
        n = len(symbols)
        self._room(n * 8 * (PROB_BITS + 1))
        probs = np.zeros((n if trace is not None else 0, 8), dtype=np.int64)
        costs = np.zeros(n, dtype=np.float64)
        _code(False, np.asarray(symbols, dtype=np.int64), np.asarray(freqs, dtype=np.float32), *self._args(where),
              self.coder, self.buf, probs, costs)
        if trace is not None:
            trace.append(probs)
        return costs

    def push_raw(self, values: np.ndarray, nbits: int) -> None:
        self._room(len(values) * nbits * 2)
        _raw(False, np.asarray(values, dtype=np.int64).copy(), nbits, self.coder, self.buf)

    def finish(self) -> bytes:
        """The bytes: the coder's range is settled by x1's four bytes."""
        self._room(64)
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
        probs = np.zeros((n if trace is not None else 0, 8), dtype=np.int64)
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
