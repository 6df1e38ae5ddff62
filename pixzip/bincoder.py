"""A binary arithmetic coder (32-bit range, carry-less), in compiled integer arithmetic: the adaptive stage's
coder (format versions 4 on). A decision is coded with p, its 16-bit probability of a 1 (pixzip.mixing)."""
import numba
import numpy as np

from .mixing import PROB_ONE


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
