"""Image modes and metadata: any supported PIL image <-> planes the codec codes, plus what it must restore.

The codec codes 8-bit planes: "RGB" planes (three channels, R -> G -> B) and "L" planes (one channel).
Every supported image mode maps onto them exactly:

    mode    planes                                   restored as
    1       L (0 or 255)                             1-bit
    L       L                                        L
    LA      L, then alpha as an L plane              LA
    P       palette indices as an L plane;           P with the same palette and transparency
            palette and transparency in metadata
    RGB     RGB                                      RGB
    RGBA    RGB, then alpha as an L plane            RGBA
    I;16    high bytes, then low bytes, as L planes  I;16 (16-bit grayscale)
    LA;16   grey high, low, alpha high, low: L       16-bit grey + alpha PNG  (pixzip.widepng)
    RGB;16  high bytes as RGB, then low bytes        48-bit PNG
    RGBA;16 RGB high, RGB low, alpha high, low       64-bit PNG

Metadata kept byte for byte and restored on decompression: the ICC profile, EXIF, PNG text chunks, the
transparency colour of L/RGB images and the palette of P images.
"""
import json
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, PngImagePlugin

from . import widepng
from .image import ImageError
from .widepng import CHANNELS, WideImage

PLANES_OF = {"1": ["L"], "L": ["L"], "LA": ["L", "L"], "P": ["L"], "RGB": ["RGB"], "RGBA": ["RGB", "L"],
             "I;16": ["L", "L"], "LA;16": ["L"] * 4, "RGB;16": ["RGB"] * 2, "RGBA;16": ["RGB", "RGB", "L", "L"]}
LOSSY_FORMATS = {"JPEG", "MPO"}  # decoded pixels are kept, not the file's bytes


@dataclass
class Planes:
    mode: str  # the image's mode, a key of PLANES_OF
    planes: list[np.ndarray]  # (H, W, 3) for "RGB" planes, (H, W, 1) for "L" planes, uint8
    metadata: dict[str, bytes] = field(default_factory=dict)

    @property
    def plane_modes(self) -> list[str]:
        return PLANES_OF[self.mode]


def _gray(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.uint8)[:, :, None]


def split(image: Image.Image) -> Planes:
    """A loaded PIL image -> its planes and metadata; ImageError for what cannot be coded exactly."""
    if image.width == 0 or image.height == 0:
        raise ImageError("the image is empty (zero width or height)")
    if isinstance(image, WideImage):
        return Planes(image.mode, _wide_planes(image), metadata(image, image.mode))
    mode = image.mode
    if mode in ("I;16L", "I;16B", "I;16N"):
        mode = "I;16"
    if mode == "I":  # 32-bit integers: PNG's 16-bit grayscale in older Pillow
        a = np.asarray(image)
        if a.min() < 0 or a.max() > 65535:
            raise ImageError("32-bit integer image with values outside 0..65535 is not supported")
        image, mode = Image.fromarray(a.astype(np.uint16)), "I;16"
    if mode not in PLANES_OF:
        raise ImageError(f"image mode {image.mode} is not supported (supported: {', '.join(PLANES_OF)})")
    a = np.asarray(image)
    if mode == "1":
        planes = [_gray(a.astype(np.uint8) * 255)]
    elif mode in ("L", "P"):
        planes = [_gray(a)]
    elif mode == "LA":
        planes = [_gray(a[:, :, 0]), _gray(a[:, :, 1])]
    elif mode == "RGB":
        planes = [np.ascontiguousarray(a, dtype=np.uint8)]
    elif mode == "RGBA":
        planes = [np.ascontiguousarray(a[:, :, :3]), _gray(a[:, :, 3])]
    else:  # I;16
        a = a.astype(np.uint16)
        planes = [_gray(a >> 8), _gray(a & 0xFF)]
    return Planes(mode, planes, metadata(image, mode))


def _wide_planes(image: WideImage) -> list[np.ndarray]:
    """16-bit channels -> high and low bytes: colour (high, low), then alpha (high, low)."""
    a = image.pixels
    colour = 1 if image.mode == "LA;16" else 3
    hi, lo = (a >> 8).astype(np.uint8), (a & 0xFF).astype(np.uint8)
    planes = [np.ascontiguousarray(hi[:, :, :colour]), np.ascontiguousarray(lo[:, :, :colour])]
    if a.shape[2] > colour:
        planes += [np.ascontiguousarray(hi[:, :, colour:]), np.ascontiguousarray(lo[:, :, colour:])]
    return planes


def _join_wide(p: Planes) -> WideImage:
    hi = np.concatenate(p.planes[0::2], axis=2).astype(np.uint16)  # colour high, then alpha high
    lo = np.concatenate(p.planes[1::2], axis=2).astype(np.uint16)
    return WideImage(p.mode, (hi << 8) | lo)


def metadata(image: Image.Image, mode: str) -> dict[str, bytes]:
    meta = {}
    if image.info.get("icc_profile"):
        meta["icc"] = bytes(image.info["icc_profile"])
    exif = image.info.get("exif")
    if exif:
        meta["exif"] = bytes(exif)
    text = getattr(image, "text", None) or {}
    if text:
        meta["text"] = json.dumps(text, ensure_ascii=False).encode("utf-8")
    if "transparency" in image.info:
        t = image.info["transparency"]
        meta["transparency"] = json.dumps(list(t) if isinstance(t, bytes) else t).encode()
    if mode == "P":
        palette_mode, palette = image.palette.mode, image.palette.tobytes()
        meta["palette"] = palette_mode.encode() + b":" + palette
    return meta


def join(p: Planes) -> Image.Image:
    """Planes and metadata -> the PIL image they came from, with its metadata in .info."""
    a = [plane[:, :, 0] if plane.shape[2] == 1 else plane for plane in p.planes]
    if p.mode in CHANNELS:
        image = _join_wide(p)
    elif p.mode == "1":
        image = Image.fromarray(a[0] > 127)
    elif p.mode in ("L", "P"):
        h, w = a[0].shape
        image = Image.frombytes(p.mode, (w, h), np.ascontiguousarray(a[0]).tobytes())
        if p.mode == "P":
            palette_mode, _, palette = p.metadata["palette"].partition(b":")
            image.putpalette(palette, rawmode=palette_mode.decode())
    elif p.mode == "LA":
        image = Image.fromarray(np.stack(a, axis=2), mode="LA")
    elif p.mode == "RGB":
        image = Image.fromarray(a[0], mode="RGB")
    elif p.mode == "RGBA":
        image = Image.fromarray(np.concatenate([a[0], a[1][:, :, None]], axis=2), mode="RGBA")
    else:  # I;16
        image = Image.fromarray((a[0].astype(np.uint16) << 8) | a[1])
    m = p.metadata
    if "icc" in m:
        image.info["icc_profile"] = m["icc"]
    if "exif" in m:
        image.info["exif"] = m["exif"]
    if "transparency" in m:
        t = json.loads(m["transparency"])
        image.info["transparency"] = bytes(t) if isinstance(t, list) and p.mode == "P" else (
            tuple(t) if isinstance(t, list) else t)
    if "text" in m:
        image.info["pixzip_text"] = json.loads(m["text"])
        if isinstance(image, WideImage):
            image.text = image.info["pixzip_text"]
    return image


def png_bytes(image: Image.Image) -> bytes:
    """The image as PNG with its ICC profile, EXIF, text chunks and transparency (from join)."""
    import io

    if isinstance(image, WideImage):
        return widepng.write(image)
    options = {}
    if "icc_profile" in image.info:
        options["icc_profile"] = image.info["icc_profile"]
    if "exif" in image.info:
        options["exif"] = image.info["exif"]
    if "transparency" in image.info:
        options["transparency"] = image.info["transparency"]
    if image.info.get("pixzip_text"):
        info = PngImagePlugin.PngInfo()
        for key, value in image.info["pixzip_text"].items():
            info.add_itxt(key, value)
        options["pnginfo"] = info
    buf = io.BytesIO()
    image.save(buf, format="PNG", **options)
    return buf.getvalue()
