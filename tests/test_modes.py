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


def png_16bit_rgb(width=4, height=3) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\0" + bytes(range(width * 6)) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_refused_before_anything_is_written(env, tmp_path, monkeypatch):
    cases = {"deep.png": png_16bit_rgb(), "cmyk.tif": None, "big.png": None, "empty.png": b""}
    Image.new("CMYK", (5, 4)).save(tmp_path / "cmyk.tif")
    Image.new("L", (60, 50)).save(tmp_path / "big.png")
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 60 x 50 is then a decompression bomb
    expect = {"deep.png": "16-bit PNG with colour", "cmyk.tif": "mode CMYK is not supported",
              "big.png": "decompression bomb", "empty.png": "not a readable image"}
    for name, message in expect.items():
        r = CliRunner().invoke(main, ["compress", str(tmp_path / name), "--model", str(env.path)])
        assert r.exit_code == 1 and message in r.stderr and r.stderr.count("\n") == 1, (name, r.output)
        assert not (tmp_path / f"{name}.pxz").exists()
