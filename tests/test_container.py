"""Damaged, foreign or mismatched files are refused with a clear error and no output."""
import numpy as np
import pytest
from click.testing import CliRunner

from pixzip import codec, container
from pixzip.cli import main
from pixzip.registry import ModelError
from tests.conftest import make_model


@pytest.fixture(scope="module")
def packed(tiny_rgb):
    rng = np.random.default_rng(3)
    pixels = np.clip(rng.normal(120, 30, (24, 19, 3)), 0, 255).astype(np.uint8)
    return pixels, codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16)[0]


def expect_refusal(data, model, match):
    with pytest.raises((container.FormatError, codec.DecodeError, ModelError), match=match):
        codec.decompress_pixels(data, models=model)


def test_header_roundtrip(packed):
    header, payloads = container.unpack(packed[1])
    assert (header.width, header.height, header.mode, header.tile) == (19, 24, "RGB", 16)
    assert header.planes == ("RGB",) and header.version == container.VERSION
    assert container.pack(header, payloads) == packed[1]


def version1(data: bytes) -> bytes:
    """A version 2 file of one L or RGB plane as a version 1 file (no metadata; the same payload, which has
    no sharpness): what pixzip 0.1 wrote."""
    import struct
    import zlib

    header, [payload] = container.unpack(data)
    assert header.version == 2
    name = header.model.encode()
    head = (struct.pack("<4sBBIIHHB", container.MAGIC, 1, container.MODE_CODES[header.mode], header.width,
                        header.height, header.tile, header.chunk, len(name)) + name
            + struct.pack("<32s32sQ", header.weights_sha256, header.pixels_sha256, len(payload)))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def test_older_versions_still_decode(packed, tiny_rgb):
    """Files with the adaptive stage's earlier settings (versions 4 to 6, written on request with stage=), without
    the adaptive stage (version 3, adapt=False), without sharpness (pixzip.sharpness; version 2,
    sharpen=False) and version 1."""
    pixels, data = packed
    v2 = codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16, sharpen=False)[0]
    v3 = codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16, adapt=False)[0]
    for old, version in [(v3, 3), (v2, 2), (version1(v2), 1)]:
        header, _ = container.unpack(old)
        assert header.version == version and header.planes == ("RGB",)
        np.testing.assert_array_equal(codec.decompress_pixels(old, models=tiny_rgb)[0], pixels)
    stages = [codec.compress_pixels(pixels, "RGB", tiny_rgb, tile=16, stage=v)[0] for v in (4, 5, 6)]
    for old, version in zip(stages, (4, 5, 6)):
        assert container.unpack(old)[0].version == version
        np.testing.assert_array_equal(codec.decompress_pixels(old, models=tiny_rgb)[0], pixels)
    assert container.unpack(data)[0].version == 7 and len({data, v2, v3, *stages}) == 6


def test_truncation(packed, tiny_rgb):
    data = packed[1]
    for n in (0, 3, 10, 40, len(data) // 2, len(data) - 1):
        expect_refusal(data[:n], tiny_rgb, "truncated|magic")


def test_trailing_bytes(packed, tiny_rgb):
    expect_refusal(packed[1] + b"\0", tiny_rgb, "unexpected bytes")


def test_wrong_magic_and_version(packed, tiny_rgb):
    data = bytearray(packed[1])
    expect_refusal(b"GIF89a" + bytes(data[6:]), tiny_rgb, "not a pixzip file")
    data[4] = container.VERSION + 1
    expect_refusal(bytes(data), tiny_rgb, f"unsupported format version {container.VERSION + 1}.*newer pixzip")


def test_bit_flips_are_caught(packed, tiny_rgb):
    """Flips spread over the whole file, header and payload; the fuzz test of the real-world issue goes
    further."""
    pixels, data = packed
    for i in np.linspace(0, len(data) * 8 - 1, 48).astype(int):
        bad = bytearray(data)
        bad[i // 8] ^= 1 << (i % 8)
        try:
            out, _ = codec.decompress_pixels(bytes(bad), models=tiny_rgb)
        except (container.FormatError, codec.DecodeError, ModelError):
            continue
        np.testing.assert_array_equal(out, pixels)  # a flip that changes nothing decoded is harmless


def test_wrong_or_missing_model(packed, tiny_rgb, tmp_path, monkeypatch):
    other = make_model(tmp_path, "tiny-rgb", seed=1)  # same name, different weights
    expect_refusal(packed[1], other, "made with model tiny-rgb")
    monkeypatch.setenv("PIXZIP_MODEL_PATH", str(tmp_path))
    with pytest.raises(ModelError, match=f"needs model 'tiny-rgb' with weights sha256 {tiny_rgb.sha256.hex()}"):
        codec.decompress_pixels(packed[1])


def test_cli_leaves_no_output_on_corruption(packed, tiny_rgb, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXZIP_MODEL_PATH", str(tiny_rgb.path.parent))
    data = bytearray(packed[1])
    data[-5] ^= 0xFF
    bad = tmp_path / "bad.png.pxz"
    bad.write_bytes(bytes(data))
    r = CliRunner().invoke(main, ["decompress", str(bad)])
    assert r.exit_code == 1 and "corrupted" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png.pxz"]
