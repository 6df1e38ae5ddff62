"""The library's API: compress / decompress an image, plane by plane (pixzip.modes), into a .pxz container.

    image -> planes -> pixzip.encoder (network -> frequencies -> adaptive stage -> coder) -> container
    container -> pixzip.decoder (coder -> adaptive stage <- frequencies <- network) -> planes -> image

Grayscale images coded with an RGB model are fed to it as R = G = B; only R is coded, G and B follow.
"""
import time
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from . import adaptive, container, modes, registry
from .container import FormatError, Header
from .decoder import decode_pixels
from .encoder import encode_pixels as _encode_pixels
from .image import checksum
from .stream import Progress

DEFAULT_TILE = 128  # pixels per tile side: larger costs fewer bits at tile borders, smaller decodes faster
DEFAULT_CHUNK = 64  # tiles decoded together (a megapixel of 128 x 128 tiles): bounds memory
MAX_PIXELS = 2**28  # refuse to decode larger images (a bomb of a header would need absurd memory)


class DecodeError(ValueError):
    """The payload did not decode to the pixels it was made from."""


@dataclass(frozen=True)
class Report:
    width: int
    height: int
    channels: int
    mode: str
    model: str
    bytes: int  # whole file
    ideal_bits: float  # sum of -log2 p the coder is given (the network's p or, formats 4 on, the adaptive stage's)
    seconds: float

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def bpp(self) -> float:
        return 8 * self.bytes / self.pixels

    @property
    def bpsp(self) -> float:
        return self.bpp / self.channels

    @property
    def ideal_bpsp(self) -> float:
        return self.ideal_bits / (self.pixels * self.channels)


def encode_pixels(pixels: np.ndarray, mode: str, model: registry.Model, tile: int = DEFAULT_TILE,
                  chunk: int = DEFAULT_CHUNK, **options) -> tuple[bytes, float]:
    """One plane -> (payload, ideal bits): pixzip.encoder.encode_pixels with the default tile and chunk."""
    return _encode_pixels(pixels, mode, model, tile, chunk, **options)


def compress_pixels(pixels: np.ndarray, mode: str, model: str | registry.Model | None = None,
                    tile: int = DEFAULT_TILE, chunk: int = DEFAULT_CHUNK, device: str = "cpu",
                    progress: Progress | None = None, costs: np.ndarray | None = None,
                    sharpen: bool = True, adapt: bool = True, stage: int = adaptive.LATEST) -> tuple[bytes, Report]:
    """(H, W, C) uint8 pixels of mode L or RGB -> (.pxz bytes, report). See compress_planes."""
    return compress_planes(modes.Planes(mode, [pixels]), model, tile, chunk, device, progress, costs, sharpen,
                           adapt, stage)


def _plane_progress(progress: Progress | None, plane: int, pixels: int, total: int) -> Progress | None:
    """Progress of one plane's coding as progress over all planes (plane k starts at k x pixels)."""
    return (lambda done, _: progress(plane * pixels + done, total)) if progress else None


def compress_planes(image: modes.Planes, model: str | registry.Model | None = None, tile: int = DEFAULT_TILE,
                    chunk: int = DEFAULT_CHUNK, device: str = "cpu", progress: Progress | None = None,
                    costs: np.ndarray | None = None, sharpen: bool = True, adapt: bool = True,
                    stage: int = adaptive.LATEST) -> tuple[bytes, Report]:
    """An image as planes (pixzip.modes) -> (.pxz bytes, report). Each plane is coded in turn with the
    same model; costs (see encode_pixels) receives the first plane's. adapt: refine the network's
    distributions with the adaptive stage (pixzip.adaptive; the planes coded before are its context), that
    of format version `stage` (6; 4 and 5 only to reproduce older files); without it, version 3. sharpen=False:
    version 2, the network's own distributions (no sharpness, no adaptation), which older readers of
    version 2 decode too."""
    start = time.perf_counter()
    m = model if isinstance(model, registry.Model) else registry.resolve(model)
    if not (0 < tile < 2**16 and 0 < chunk < 2**16):
        raise ValueError("tile and chunk must be between 1 and 65535")
    height, width = image.planes[0].shape[:2]
    total = height * width * len(image.planes)
    payloads, ideal = [], 0.0
    for k, (plane, plane_mode) in enumerate(zip(image.planes, image.plane_modes)):
        step = _plane_progress(progress, k, height * width, total)
        payload, bits = encode_pixels(plane, plane_mode, m, tile, chunk, device=device, progress=step,
                                      costs=costs if k == 0 else None, sharpen=sharpen, adapt=adapt and sharpen,
                                      stage=stage, side=_earlier(image.planes[:k]))
        payloads.append(payload)
        ideal += bits
    version = 2 if not sharpen else stage if adapt else 3
    header = Header(image.mode, width, height, tile, chunk, m.name, m.sha256, checksum(*image.planes),
                    tuple(image.plane_modes), metadata=image.metadata, version=version)
    data = container.pack(header, payloads)
    channels = sum(p.shape[2] for p in image.planes)
    report = Report(width, height, channels, image.mode, m.name, len(data), ideal, time.perf_counter() - start)
    return data, report


def _earlier(planes: list[np.ndarray]) -> np.ndarray | None:
    """The planes coded before this one, stacked (H, W, S): the adaptive stage's context."""
    return np.concatenate(planes, axis=2) if planes else None


def decompress_planes(data: bytes, device: str = "cpu", models: str | registry.Model | None = None,
                      progress: Progress | None = None) -> modes.Planes:
    """Decode a whole .pxz file to its planes and metadata; raises FormatError, ModelError or DecodeError
    rather than return pixels that differ from the original."""
    header, payloads = container.unpack(data)
    if tuple(modes.PLANES_OF[header.mode]) != header.planes:
        raise FormatError(f"corrupted header (planes {', '.join(header.planes)} do not fit mode {header.mode})")
    if header.width * header.height * len(header.planes) > MAX_PIXELS:
        raise FormatError(f"image of {header.width}x{header.height} pixels is larger than pixzip decodes "
                          f"({MAX_PIXELS // 10**6} megapixels)")
    if isinstance(models, registry.Model):
        if models.sha256 != header.weights_sha256:
            raise registry.ModelError(f"the file was made with model {header.model} "
                                      f"(sha256 {header.weights_sha256.hex()[:8]}), not {models.name}")
        model = models
    else:
        model = registry.find(header.model, header.weights_sha256)
    total = header.width * header.height * len(header.planes)
    planes = []
    try:
        for k, (plane_mode, payload) in enumerate(zip(header.planes, payloads)):
            step = _plane_progress(progress, k, header.width * header.height, total)
            planes.append(decode_pixels(replace(header, mode=plane_mode), payload, model, device, step,
                                        side=_earlier(planes)))
    except (ValueError, RuntimeError) as e:  # the coder rejects some corrupted payloads outright
        raise DecodeError(f"corrupted payload ({e})") from None
    if checksum(*planes) != header.pixels_sha256:
        raise DecodeError("corrupted payload: the decoded pixels do not match the file's checksum")
    return modes.Planes(header.mode, planes, header.metadata)


def decompress_pixels(data: bytes, device: str = "cpu", models: str | registry.Model | None = None,
                      progress: Progress | None = None) -> tuple[np.ndarray, str]:
    """Decode a .pxz file of an L or RGB image -> ((H, W, C) pixels, mode); see decompress_planes."""
    image = decompress_planes(data, device, models, progress)
    if image.mode not in ("L", "RGB"):
        raise ValueError(f"a {image.mode} image has several planes: use decompress_planes or decompress")
    return image.planes[0], image.mode


def compress(image: Image.Image | np.ndarray, model: str | None = None, **options) -> bytes:
    """A PIL image of any supported mode (pixzip.modes), a pixzip.widepng.WideImage (16-bit colour) or an
    (H, W[, C]) uint8 array -> .pxz bytes."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    return compress_planes(modes.split(image), model, **options)[0]


def decompress(data: bytes, **options) -> Image.Image:
    """.pxz bytes -> the original image, pixel for pixel, in its mode, with its metadata in .info
    (pixzip.modes.png_bytes writes it back out): a PIL image, or a pixzip.widepng.WideImage for 16-bit
    colour and grey + alpha (LA;16, RGB;16, RGBA;16), which Pillow cannot hold."""
    return modes.join(decompress_planes(data, **options))
