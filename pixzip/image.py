"""Images in and out: files <-> (H, W, C) uint8 arrays, and the pixel checksum stored in .pxz files."""
import hashlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from . import widepng

MODES = {"L": 1, "RGB": 3}  # the codec's plane modes and their channel counts
IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".webp", ".gif", ".jpg", ".jpeg"}


class ImageError(ValueError):
    """An input image pixzip cannot code."""


def to_pixels(image: Image.Image) -> tuple[np.ndarray, str]:
    """A PIL image -> (H, W, C) uint8 array and its mode ("L" or "RGB")."""
    if image.mode not in MODES:
        raise ImageError(f"image mode {image.mode} is not supported yet (supported: {', '.join(MODES)})")
    if image.width == 0 or image.height == 0:
        raise ImageError("the image is empty (zero width or height)")
    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return np.ascontiguousarray(pixels), image.mode


def load_image(source: Path | BinaryIO) -> tuple["Image.Image | widepng.WideImage", str]:
    """An image file (a path or an open binary file) -> (the loaded PIL image, or a WideImage for a
    16-bit colour or grey + alpha PNG, and its file format). Errors do not repeat the file's name: the
    caller says which file it was."""
    try:
        if widepng.is_wide_png(_peek(source, 26)):  # Pillow would read 8 of its 16 bits per channel
            data = source.read() if hasattr(source, "read") else Path(source).read_bytes()
            return widepng.read(data, 2 * Image.MAX_IMAGE_PIXELS), "PNG"
        with Image.open(source) as image:
            image.load()
            return image, image.format or ""
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"refused as a decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ImageError(f"not a readable image ({reason})") from None


def _peek(source: Path | BinaryIO, n: int) -> bytes:
    """The first n bytes of a file, leaving an open file where it was."""
    if hasattr(source, "read"):
        pos = source.tell()
        head = source.read(n)
        source.seek(pos)
        return head
    with open(source, "rb") as f:
        return f.read(n)


def load_pixels(source: Path | BinaryIO) -> tuple[np.ndarray, str]:
    """An L or RGB image file -> its (H, W, C) pixels and mode (training, benchmarks)."""
    image, _ = load_image(source)
    return to_pixels(image)


def checksum(*planes: np.ndarray) -> bytes:
    """SHA-256 of the raw bytes of the planes in order, each in raster order (rows, columns, channels)."""
    h = hashlib.sha256()
    for pixels in planes:
        h.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return h.digest()
