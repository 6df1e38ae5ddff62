"""16-bit-per-channel colour PNGs (grey + alpha, RGB, RGBA: 32, 48 and 64 bits per pixel), which Pillow
reads as 8 bits per channel. They are read and written with pypng, and carried as a `WideImage`, which
looks enough like a PIL image (mode, size, info) for pixzip.modes to split it into 8-bit planes.

Kept with the pixels, as for other PNGs: the ICC profile (iCCP), EXIF (eXIf), text (tEXt, zTXt, iTXt) and
the transparent colour (tRNS).
"""
import io
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import png

# PNG colour type -> (mode, channels)
WIDE_MODES = {4: ("LA;16", 2), 2: ("RGB;16", 3), 6: ("RGBA;16", 4)}
CHANNELS = {mode: channels for mode, channels in WIDE_MODES.values()}


@dataclass
class WideImage:
    mode: str  # a key of CHANNELS
    pixels: np.ndarray  # (H, W, C) uint16
    info: dict = field(default_factory=dict)  # icc_profile, exif, transparency: as Pillow names them
    text: dict = field(default_factory=dict)  # PNG text chunks, keyword -> text

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def colours_8bit(self):
        """The high bytes of the colour channels as a PIL image (L or RGB): what training sees."""
        from PIL import Image

        colour = self.pixels[:, :, :1] if self.mode == "LA;16" else self.pixels[:, :, :3]
        high = (colour >> 8).astype(np.uint8)
        return Image.fromarray(high[:, :, 0] if high.shape[2] == 1 else high)


def is_wide_png(head: bytes) -> bool:
    """Whether the first 26 bytes of a file are those of a 16-bit grey + alpha, RGB or RGBA PNG."""
    return head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 26 and head[24] == 16 and head[25] in WIDE_MODES


def read(data: bytes, max_pixels: int) -> WideImage:
    """PNG bytes -> WideImage; ValueError for a broken file or one of more than max_pixels pixels."""
    try:
        reader = png.Reader(bytes=data)
        width, height, rows, info = reader.read()  # no transformation: the stored samples
        if width * height > max_pixels:
            raise ValueError(f"{width}x{height} pixels is more than {max_pixels}: refused as a decompression bomb")
        mode, channels = WIDE_MODES[(2 if not info["greyscale"] else 0) | (4 if info["alpha"] else 0)]
        pixels = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, channels)
        image = WideImage(mode, pixels)
        for kind, body in png.Reader(bytes=data).chunks():
            _keep_chunk(image, kind, body)
    except (png.FormatError, png.ChunkError, zlib.error, KeyError, struct.error) as e:
        raise ValueError(str(e) or type(e).__name__) from None
    return image


def _keep_chunk(image: WideImage, kind: bytes, body: bytes) -> None:
    if kind == b"iCCP":
        name, _, rest = body.partition(b"\0")
        image.info["icc_profile"] = zlib.decompress(rest[1:])  # rest[0]: compression method 0
    elif kind == b"eXIf":
        image.info["exif"] = body
    elif kind == b"tRNS":
        image.info["transparency"] = struct.unpack(f">{len(body) // 2}H", body)
    elif kind == b"tEXt":
        key, _, value = body.partition(b"\0")
        image.text[key.decode("latin-1")] = value.decode("latin-1")
    elif kind == b"zTXt":
        key, _, rest = body.partition(b"\0")
        image.text[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
    elif kind == b"iTXt":
        key, _, rest = body.partition(b"\0")
        compressed, rest = rest[0], rest[2:]
        _language, _, rest = rest.partition(b"\0")
        _translated, _, value = rest.partition(b"\0")
        image.text[key.decode("latin-1")] = (zlib.decompress(value) if compressed else value).decode("utf-8")


def write(image: WideImage) -> bytes:
    """WideImage -> PNG bytes, with its ICC profile, EXIF, text and transparent colour."""
    h, w, c = image.pixels.shape
    transparent = image.info.get("transparency")
    writer = png.Writer(w, h, greyscale=c < 3, alpha=c in (2, 4), bitdepth=16,
                        transparent=tuple(transparent) if transparent is not None else None)
    buf = io.BytesIO()
    writer.write(buf, image.pixels.reshape(h, w * c))  # row by row: no list of every sample at once
    data = buf.getvalue()
    extra = b""
    if image.info.get("icc_profile"):
        extra += _chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(image.info["icc_profile"]))
    if image.info.get("exif"):
        extra += _chunk(b"eXIf", image.info["exif"])
    for key, value in image.text.items():
        extra += _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR's length and type, its 13 bytes, its CRC
    return data[:ihdr_end] + extra + data[ihdr_end:]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
