"""Fuzzing: valid .pxz files mutated thousands of times decode to the exact original image or fail with one
of pixzip's clear errors - never a traceback of another kind, never other pixels.

Two kinds of mutation: blind ones (bit flips, overwritten, inserted or deleted bytes, truncation anywhere:
the header's CRC-32 rejects almost all that touch the header, so they mostly exercise the payload, the
decoder and the pixel checksum), and header mutations with the CRC recomputed, which reach the parser
and the decoder with a consistent-looking header (other geometry, tile, chunk, mode, model, checksum).
"""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixzip import codec, container
from pixzip.registry import ModelError

CLEAR_ERRORS = (container.FormatError, codec.DecodeError, ModelError)


@pytest.fixture(scope="module")
def original(tiny_rgb):
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:6, 0:7]
    pixels = np.clip(np.stack([x * 20, y * 30, x * y], axis=2) + rng.integers(-9, 10, (6, 7, 3)), 0, 255)
    pixels = pixels.astype(np.uint8)
    return pixels, codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=4, chunk=2)[0]


def check(data: bytes, pixels: np.ndarray, model) -> None:
    try:
        out, mode = codec.decompress_pixels(data, models=model)
    except CLEAR_ERRORS as e:
        assert str(e) and "\n" not in str(e)
        return
    assert mode == "RGB" and np.array_equal(out, pixels), "a mutated file decoded to other pixels"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_blind_mutations(original, tiny_rgb, data):
    pixels, blob = original
    b = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, max(len(b) - 1, 0)), label="at")
        if kind == "flip" and b:
            b[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "overwrite" and b:
            b[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            b[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del b[at : at + data.draw(st.integers(1, 8))]
        elif kind == "truncate":
            del b[at:]
    check(bytes(b), pixels, tiny_rgb)


FIELDS = {  # offset, struct format, strategy of plausible values (small geometry: no slow giant images)
    "version": (4, "<B", st.integers(0, 255)),
    "mode": (5, "<B", st.integers(0, 255)),
    "width": (6, "<I", st.integers(0, 40)),
    "height": (10, "<I", st.integers(0, 40)),
    "tile": (14, "<H", st.integers(0, 70)),
    "chunk": (16, "<H", st.integers(0, 9)),
}


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_header_mutations_with_valid_crc(original, tiny_rgb, data):
    pixels, blob = original
    header, payloads = container.unpack(blob)
    payload = b"".join(payloads)
    head_len = len(blob) - len(payload) - 4  # the CRC covers header bytes [0, head_len)
    b = bytearray(blob[:head_len])
    for name in data.draw(st.lists(st.sampled_from(sorted(FIELDS) + ["byte"]), min_size=1, max_size=3)):
        if name == "byte":  # anywhere in the header: model name, hashes, planes, metadata
            at = data.draw(st.integers(18, head_len - 1))
            b[at] = data.draw(st.integers(0, 255))
        else:
            offset, fmt, values = FIELDS[name]
            struct.pack_into(fmt, b, offset, data.draw(values, label=name))
    check(bytes(b) + struct.pack("<I", zlib.crc32(b)) + payload, pixels, tiny_rgb)


def test_header_claiming_a_huge_image_fails_fast(original, tiny_rgb):
    """A (CRC-valid) header claiming 4000 x 4000 pixels for a payload of a 33 x 40 image: refused as soon
    as the payload runs out (pixzip.coder.MAX_BITS_AFTER_END), not after decoding 16 megapixels."""
    import time

    pixels, blob = original
    header, payloads = container.unpack(blob)
    payload = b"".join(payloads)
    b = bytearray(blob[: len(blob) - len(payload) - 4])
    struct.pack_into("<II", b, 6, 4000, 4000)
    start = time.perf_counter()
    with pytest.raises(codec.DecodeError, match="payload ended"):
        codec.decompress_pixels(bytes(b) + struct.pack("<I", zlib.crc32(b)) + payload, models=tiny_rgb)
    assert time.perf_counter() - start < 30
