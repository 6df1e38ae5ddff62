"""Images in and out: files <-> (H, W, C) uint8 arrays, and the pixel checksum stored in .pxz files."""
import hashlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

MODES = {"L": 1, "RGB": 3}  # supported modes and their channel counts


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


def from_pixels(pixels: np.ndarray, mode: str) -> Image.Image:
    """(H, W, C) uint8 array -> PIL image of that mode."""
    return Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode=mode)


def load_pixels(source: Path | BinaryIO) -> tuple[np.ndarray, str]:
    """An image file (a path or an open binary file) -> its pixels and mode. Errors do not repeat the
    file's name: the caller says which file it was."""
    try:
        with Image.open(source) as image:
            image.load()
            return to_pixels(image)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ImageError(f"not a readable image ({reason})") from None


def checksum(pixels: np.ndarray) -> bytes:
    """SHA-256 of the raw pixel bytes in raster order (rows, then columns, then channels)."""
    return hashlib.sha256(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).digest()
