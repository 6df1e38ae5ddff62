"""Every supported image mode and its metadata survive compress + decompress through the command line:
the same pixels, the same mode, the same palette and transparency, the same ICC profile, EXIF and text.
Images pixzip cannot keep exactly are refused before anything is written."""
import io
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, PngImagePlugin

from pixzip import codec
from pixzip.cli import main

ICC = b"not a real ICC profile, but bytes that must come back unchanged"


def images():
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:9, 0:13]
    smooth = np.clip(np.stack([x * 15, y * 20, x * y * 2], axis=2) + rng.integers(-5, 6, (9, 13, 3)), 0, 255)
    rgb = Image.fromarray(smooth.astype(np.uint8))
    alpha = Image.fromarray((x * 19 % 256).astype(np.uint8))
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    la = rgb.convert("L")
    la.putalpha(alpha)
    p = rgb.quantize(12)
    p_transparent = p.copy()
    p_transparent.info["transparency"] = 2
    return {
        "1": Image.fromarray(smooth[:, :, 0] > 100),
        "L": rgb.convert("L"),
        "LA": la,
        "P": p,
        "P-transparent": p_transparent,
        "RGB": rgb,
        "RGBA": rgba,
        "I;16": Image.fromarray((smooth[:, :, 0] * 257 + smooth[:, :, 1]).astype(np.uint16)),
    }


def png_with_metadata(image: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a test image")
    info.add_itxt("Comment", "unicode \u00e9\u00e8")
    exif = Image.Exif()
    exif[0x010F] = "pixzip camera"  # Make
    options = {"pnginfo": info, "icc_profile": ICC, "exif": exif.tobytes()}
    if "transparency" in image.info:
        options["transparency"] = image.info["transparency"]
    buf = io.BytesIO()
    image.save(buf, format="PNG", **options)
    return buf.getvalue()


@pytest.fixture
def env(tiny_rgb, monkeypatch):
    monkeypatch.setenv("PIXZIP_MODEL_PATH", str(tiny_rgb.path.parent))
    return tiny_rgb


@pytest.mark.parametrize("name", list(images()))
def test_mode_and_metadata_roundtrip(env, tmp_path, name):
    source = tmp_path / "in.png"
    source.write_bytes(png_with_metadata(images()[name]))
    original = Image.open(source)
    original.load()
    r = CliRunner().invoke(main, ["compress", str(source), "--model", str(env.path)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["decompress", str(tmp_path / "in.png.pxz"), "-o", str(tmp_path / "out.png")])
    assert r.exit_code == 0, r.output
    back = Image.open(tmp_path / "out.png")
    back.load()
    assert back.mode == original.mode
    np.testing.assert_array_equal(np.asarray(back), np.asarray(original))
    assert back.info.get("icc_profile") == ICC
    assert back.getexif()[0x010F] == "pixzip camera"
    assert back.text == original.text == {"Title": "a test image", "Comment": "unicode \u00e9\u00e8"}
    if original.mode == "P":
        assert back.getpalette() == original.getpalette()
        assert back.info.get("transparency") == original.info.get("transparency")


def test_library_api_keeps_mode_and_metadata(env):
    image = images()["RGBA"]
    image.info["icc_profile"] = ICC
    back = codec.decompress(codec.compress(image, str(env.path)), models=env)
    assert back.mode == "RGBA" and back.info["icc_profile"] == ICC
    np.testing.assert_array_equal(np.asarray(back), np.asarray(image))


def test_other_formats_and_lossy_input(env, tmp_path):
    rgb = images()["RGB"]
    for fmt, options in (("BMP", {}), ("TIFF", {}), ("PPM", {}), ("WEBP", {"lossless": True})):
        path = tmp_path / f"in.{fmt.lower()}"
        rgb.save(path, format=fmt, **options)
        r = CliRunner().invoke(main, ["compress", str(path), "--model", str(env.path)])
        assert r.exit_code == 0 and "warning" not in r.output, r.output
        r = CliRunner().invoke(main, ["decompress", str(path) + ".pxz"])
        assert r.exit_code == 0, r.output
        np.testing.assert_array_equal(np.asarray(Image.open(str(path) + ".png")), np.asarray(rgb))
    rgb.save(tmp_path / "in.jpg", format="JPEG")
    r = CliRunner().invoke(main, ["compress", str(tmp_path / "in.jpg"), "--model", str(env.path)])
    assert r.exit_code == 0 and "warning" in r.stderr and "lossy" in r.stderr
    decoded = np.asarray(Image.open(tmp_path / "in.jpg"))
    r = CliRunner().invoke(main, ["decompress", str(tmp_path / "in.jpg.pxz")])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "in.jpg.png")), decoded)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def chunks(data: bytes) -> dict[bytes, list[bytes]]:
    """A PNG's chunks by type (a parser independent of pixzip's)."""
    found, k = {}, 8
    while k < len(data):
        (length,), kind = struct.unpack(">I", data[k : k + 4]), data[k + 4 : k + 8]
        found.setdefault(kind, []).append(data[k + 8 : k + 8 + length])
        k += 12 + length
    return found


def wide_png(channels: int, interlace: bool = False, transparent=None, height=9, width=13) -> tuple[bytes, np.ndarray]:
    """A 16-bit PNG (2: grey + alpha, 3: RGB, 4: RGBA) with every kind of metadata -> (bytes, pixels)."""
    import png

    rng = np.random.default_rng(channels)
    y, x = np.mgrid[0:height, 0:width]
    pixels = (x * 3000 + y * 1500)[:, :, None] + rng.integers(0, 4000, (height, width, channels))
    pixels = np.clip(pixels, 0, 65535).astype(np.uint16)
    buf = io.BytesIO()
    png.Writer(width, height, greyscale=channels < 3, alpha=channels in (2, 4), bitdepth=16, interlace=interlace,
               transparent=transparent).write_array(buf, pixels.reshape(-1).tolist())
    data = buf.getvalue()
    exif = Image.Exif()
    exif[0x010F] = "pixzip camera"
    meta = (chunk(b"iCCP", b"icc\0\0" + zlib.compress(ICC)) + chunk(b"eXIf", exif.tobytes())
            + chunk(b"tEXt", b"Title\0a test image") + chunk(b"zTXt", b"Note\0\0" + zlib.compress(b"zipped"))
            + chunk(b"iTXt", b"Comment\0\0\0\0\0" + "unicode \u00e9\u00e8".encode()))
    return data[:33] + meta + data[33:], pixels


@pytest.mark.parametrize("channels, interlace, transparent", [(3, False, None), (4, False, None), (2, False, None),
                                                               (3, True, (1000, 2000, 3000))])
def test_16_bit_colour_and_alpha_png_roundtrip(env, tmp_path, channels, interlace, transparent):
    """48- and 64-bit RGB(A) and 32-bit grey + alpha PNGs, which Pillow would cut to 8 bits per channel,
    come back with all 16 bits, their mode and their metadata."""
    import png

    data, pixels = wide_png(channels, interlace, transparent)
    (tmp_path / "in.png").write_bytes(data)
    r = CliRunner().invoke(main, ["compress", str(tmp_path / "in.png"), "--model", str(env.path), "--json"])
    assert r.exit_code == 0, r.output
    assert f'"{ {2: "LA", 3: "RGB", 4: "RGBA"}[channels]};16"' in r.output
    r = CliRunner().invoke(main, ["decompress", str(tmp_path / "in.png.pxz"), "-o", str(tmp_path / "out.png")])
    assert r.exit_code == 0, r.output
    out = (tmp_path / "out.png").read_bytes()
    width, height, rows, info = png.Reader(bytes=out).read()
    assert info["bitdepth"] == 16 and info["planes"] == channels and info.get("transparent") == transparent
    np.testing.assert_array_equal(np.vstack([np.asarray(row) for row in rows]).reshape(pixels.shape), pixels)
    found = chunks(out)
    assert zlib.decompress(found[b"iCCP"][0].partition(b"\0")[2][1:]) == ICC
    assert found[b"eXIf"][0] == chunks(data)[b"eXIf"][0]
    texts = {body.partition(b"\0")[0]: body.rpartition(b"\0")[2] for body in found[b"iTXt"]}
    assert texts == {b"Title": b"a test image", b"Note": b"zipped", b"Comment": "unicode \u00e9\u00e8".encode()}


def test_refused_before_anything_is_written(env, tmp_path, monkeypatch):
    wide = wide_png(3, height=60, width=50)[0]
    cases = {"deep-cut.png": wide[: len(wide) // 2], "deep-big.png": wide, "cmyk.tif": None, "big.png": None,
             "empty.png": b""}
    Image.new("CMYK", (5, 4)).save(tmp_path / "cmyk.tif")
    Image.new("L", (60, 50)).save(tmp_path / "big.png")
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 60 x 50 is then a decompression bomb
    expect = {"deep-cut.png": "not a readable image", "deep-big.png": "decompression bomb",
              "cmyk.tif": "mode CMYK is not supported",
              "big.png": "decompression bomb", "empty.png": "not a readable image"}
    for name, message in expect.items():
        r = CliRunner().invoke(main, ["compress", str(tmp_path / name), "--model", str(env.path)])
        assert r.exit_code == 1 and message in r.stderr and r.stderr.count("\n") == 1, (name, r.output)
        assert not (tmp_path / f"{name}.pxz").exists()
