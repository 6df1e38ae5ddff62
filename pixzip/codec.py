"""compress / decompress: image -> integer network -> frequencies -> coder -> container, and back.

The encoder knows every pixel, so it runs each layer once over all positions of a chunk of tiles; the
decoder runs the whole network one wavefront line at a time (pixzip.schedule). Both call the same integer
layer functions (pixzip.intnet), which are exact, so they produce the same frequencies bit for bit.
Since format version 3 the encoder also fits each tile's sharpness (pixzip.sharpness) and codes it first.

Grayscale images coded with an RGB model are fed to it as R = G = B; only R is coded, G and B follow.
"""
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
from PIL import Image

from . import adaptive, coder, container, modes, registry, sharpness, softmax
from .container import FormatError, Header
from .intscale import IntegerMultiScale, is_known, known_values, mosaic, small_side, small_tile
from .image import MODES, checksum
from .schedule import Layout, Tile, tiles, wavefront

DEFAULT_TILE = 128  # pixels per tile side: larger costs fewer bits at tile borders, smaller decodes faster
DEFAULT_CHUNK = 64  # tiles decoded together (a megapixel of 128 x 128 tiles): bounds memory
ENCODE_BATCH = 32768  # positions the encoder runs through a layer at once (bounds its memory)
MAX_PIXELS = 2**28  # refuse to decode larger images (a bomb of a header would need absurd memory)
FREQ_BATCH = 1536  # positions whose 256-way frequencies (of all channels) are computed at once: cache-sized

Progress = Callable[[int, int], None]  # (pixels done, pixels total)


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
    ideal_bits: float  # the model's code length, sum of -log2 p over coded subpixels
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


def _coded_channels(model: registry.Model, mode: str) -> list[int]:
    channels = model.config.channels
    if mode == "RGB" and channels != 3:
        raise ValueError(f"model {model.name} codes grayscale images only")
    return [0] if mode == "L" else [0, 1, 2]


def _network_values(pixels: np.ndarray, where: np.ndarray, channels: int) -> torch.Tensor:
    """The pixels at where (N, 2) of an (H, W, C_image) image -> (N, C_model) int32: grayscale repeated for
    an RGB model. One chunk at a time, so the encoder's memory does not grow with the image."""
    x = torch.from_numpy(pixels[where[:, 0], where[:, 1]].astype(np.int32))
    return x.expand(-1, channels) if x.shape[1] != channels else x


def _chunks(height: int, width: int, tile: int, chunk: int) -> list[list[Tile]]:
    all_tiles = tiles(height, width, tile)
    return [all_tiles[i : i + chunk] for i in range(0, len(all_tiles), chunk)]


def _stream_order(step_sizes: np.ndarray, groups: int) -> np.ndarray:
    """Index into symbols stacked group-major (groups * N,) that puts them in stream order: step by step,
    within a step group by group, within a group position by position."""
    n = int(step_sizes.sum())
    starts = np.concatenate([[0], np.cumsum(step_sizes)[:-1]])
    order = [g * n + np.arange(s, s + k) for s, k in zip(starts, step_sizes) for g in range(groups)]
    return np.concatenate(order) if order else np.zeros(0, dtype=np.int64)


def encode_pixels(pixels: np.ndarray, mode: str, model: registry.Model, tile: int = DEFAULT_TILE,
                  chunk: int = DEFAULT_CHUNK, device: str = "cpu", progress: Progress | None = None,
                  trace: list | None = None, costs: np.ndarray | None = None,
                  sharpen: bool = True, adapt: bool = False, side: np.ndarray | None = None) -> tuple[bytes, float]:
    """(H, W, C) uint8 -> (payload, ideal bits). trace, if given, receives the (N, 256) frequency arrays
    in stream order, for tests that compare them with the decoder's; costs, an (H, W) float array, receives
    each pixel's ideal cost in bits (all its channels). A multi-scale model codes the tiles' small images
    first, then the rest, into the same stream (pixzip.intscale). sharpen: fit and code each tile's
    sharpness (format version 3); False codes the model's own distributions (version 2)."""
    net, dev = model.network, torch.device(device)
    enc = adaptive.Encoder(side) if adapt else coder.Encoder()
    ideal = _encode_net(enc, pixels, net, _coded_channels(model, mode), tile, chunk, dev, progress, trace, costs,
                        sharpen)
    return enc.finish(), ideal


def _encode_net(enc: coder.Encoder, pixels: np.ndarray, net, coded: list[int], tile: int, chunk: int,
                dev: torch.device, progress: Progress | None, trace: list | None, costs: np.ndarray | None,
                sharpen: bool) -> float:
    """A network's code for an image -> ideal bits: one stage, or a multi-scale model's small image (the
    mosaic of the tiles' small images, recursively for more levels) and then the rest."""
    if not isinstance(net, IntegerMultiScale):
        return _encode_stage(enc, pixels, net, coded, tile, chunk, dev, progress, trace, costs, sharpen)
    small = mosaic(pixels, tile)
    first, second = _stage_progress(progress, small.shape[0] * small.shape[1], pixels.shape[0] * pixels.shape[1])
    small_costs = np.zeros(small.shape[:2]) if costs is not None else None
    ideal = _encode_net(enc, small, net.small, coded, small_tile(tile), chunk, dev, first, trace, small_costs,
                        sharpen)
    if costs is not None:
        costs += known_values(small_costs[:, :, None], tile, *pixels.shape[:2])[:, :, 0]
    return ideal + _encode_stage(enc, pixels, net.full, coded, tile, chunk, dev, second, trace, costs, sharpen,
                                 small)


def _stage_progress(progress: Progress | None, n_small: int, n: int) -> tuple:
    """Progress of a multi-scale model's two stages (n_small pixels, then n) as progress over the image's n
    pixels, the work of both stages spread over them."""
    if progress is None:
        return None, None
    scaled = lambda done: progress(done * n // (n_small + n), n)
    return (lambda done, _: scaled(done)), (lambda done, _: scaled(n_small + done))


def _encode_stage(enc: coder.Encoder, pixels: np.ndarray, net, coded: list[int], tile: int, chunk: int,
                  dev: torch.device, progress: Progress | None, trace: list | None, costs: np.ndarray | None,
                  sharpen: bool, small: np.ndarray | None = None) -> float:
    """One network's pass over an image into the coder -> ideal bits. With `small` (the mosaic of the
    tiles' small images), net is a conditional network and the pixels the small images hold are skipped.
    Each chunk: the sharpness of its tiles (if sharpen), then its symbols."""
    height, width = pixels.shape[:2]
    ideal, done = 0.0, 0
    if isinstance(enc, adaptive.Encoder):
        enc.begin(pixels)
    for ch in _chunks(height, width, tile, chunk):
        layout = Layout(tile, net.reach, len(ch))
        bn = net.bind(layout, dev, decoder=False)
        if small is not None:
            bn.condition(ch, small)
        schedule = wavefront(layout, ch, net.schedule_slope(layout.size))
        pos, rc = torch.from_numpy(schedule.flat).to(dev), schedule.pixels
        values = _network_values(pixels, rc, net.config.channels).to(dev)  # (N, C)
        bn.x[pos] = values
        medians = bn.medians(pos)
        preds = [bn.prediction(g, pos, medians) for g in range(net.config.channels)]
        for g in range(net.config.channels):
            bn.write_pixels(g, pos, values[:, g], preds[g])
        h = bn.stream(pos, ENCODE_BATCH)  # (N, F) the stream after the last block
        o = torch.cat([bn.head(h[a : a + ENCODE_BATCH]) for a in range(0, len(pos), ENCODE_BATCH)]).cpu().numpy()
        symbols = torch.stack([(values[:, g] - preds[g]) % 256 for g in coded]).cpu().numpy()  # (G, N)
        predicted = torch.stack([preds[g] for g in coded]).cpu().numpy()  # (G, N)
        skip = is_known(rc[:, 0], rc[:, 1], tile) if small is not None else None
        tile_of = layout.tile_of(schedule.flat)  # (N,)
        sharp = None
        if sharpen:
            sharp = sharpness.fit(o, tile_of, coded, symbols, net.out_weight, net.out_bias, net.logit_shift,
                                  len(ch), skip)  # (tiles, G)
            ideal += _push_sharpness(enc, sharp)
        boxes = _boxes(ch)
        for batch in _stream_batches(net, o, symbols, predicted, rc, schedule.bounds, coded, tile_of, sharp, skip):
            ideal += _push(enc, *batch, boxes, trace, costs)
        done += len(pos)
        if progress:
            progress(done, height * width)
    return ideal


def _stream_batches(net, o: np.ndarray, symbols: np.ndarray, predicted: np.ndarray, pixels: np.ndarray,
                    bounds: np.ndarray,
                    coded: list[int], tile_of: np.ndarray, sharp: np.ndarray | None, skip: np.ndarray | None):
    """The encoder's symbols in stream order, in batches of whole steps of about FREQ_BATCH positions:
    yields (symbols (n,), their (n, 256) frequencies, their pixels (n, 2)). o (N, F) is the head's output
    at the chunk's positions in step order, symbols (G, N) the residuals of the coded channels, bounds the
    schedule's step boundaries, tile_of (N,) each position's tile, sharp (tiles, G) their sharpness (None:
    the model's own), skip (N,) the positions not coded (known already). Also yields each symbol's channel,
    tile and prediction (n,) (predicted (G, N): the values the residuals are taken from)."""
    step_sizes = np.diff(bounds)
    first = 0
    while first < len(step_sizes):
        last = max(int(np.searchsorted(bounds, bounds[first] + FREQ_BATCH, side="right")) - 1, first + 1)
        a, b = int(bounds[first]), int(bounds[last])
        order = _stream_order(step_sizes[first:last], len(coded))  # (G * n,) into (G, n)
        if skip is not None:
            order = order[~skip[a + order % (b - a)]]
        position, group = order % (b - a), order // (b - a)
        rows_sharp = sharp[tile_of[a + position], group] if sharp is not None else None
        freqs = softmax.frequencies(o[a + position], np.asarray(coded)[group], net.out_weight, net.out_bias,
                                    net.table, rows_sharp)
        yield symbols[:, a:b].reshape(-1)[order], freqs, pixels[a + position], np.asarray(coded)[group], \
            tile_of[a + position], predicted[:, a:b].reshape(-1)[order]
        first = last


def _boxes(chunk: list[Tile]) -> np.ndarray:
    """(tiles, 4) each tile's rows and columns [y0, y1) x [x0, x1) as (y0, x0, y1, x1)."""
    return np.array([(t.y, t.x, t.y + t.h, t.x + t.w) for t in chunk], dtype=np.int64).reshape(-1, 4)


def _push_sharpness(enc, sharp: np.ndarray) -> float:
    """Code a chunk's sharpness (tiles, G), tile by tile, 8 bits each; returns the bits."""
    if isinstance(enc, adaptive.Encoder):
        enc.push_raw(sharp.reshape(-1), 8)
    else:
        enc.push(sharp.reshape(-1), np.tile(sharpness.UNIFORM, (sharp.size, 1)))
    return 8.0 * sharp.size


def _pop_sharpness(dec, tiles: int, groups: int) -> np.ndarray:
    """Decode a chunk's sharpness -> (tiles, G) int64 (see _push_sharpness)."""
    if isinstance(dec, adaptive.Decoder):
        return dec.pop_raw(tiles * groups, 8).reshape(tiles, groups)
    return dec.pop(np.tile(sharpness.UNIFORM, (tiles * groups, 1))).reshape(tiles, groups)


def _push(enc, symbols: np.ndarray, f: np.ndarray, pixels: np.ndarray, chans: np.ndarray, tile_of: np.ndarray,
          predicted: np.ndarray, boxes: np.ndarray, trace: list | None, costs: np.ndarray | None) -> float:
    """Code one batch; returns its ideal cost in bits. The seam between the network's frequencies and the
    coder, where the adaptive stage refines them (format version 4)."""
    if isinstance(enc, adaptive.Encoder):
        where = adaptive.Where(pixels[:, 0], pixels[:, 1], chans, boxes[tile_of], predicted)
        bits = enc.push(symbols, f, where, trace)
    else:
        enc.push(symbols, f)
        if trace is not None:
            trace.append(f)
        bits = coder.symbol_bits(symbols, f)  # (n,) in stream order
    if costs is not None:
        np.add.at(costs, (pixels[:, 0], pixels[:, 1]), bits)
    return float(bits.sum())


def decode_pixels(header: Header, payload: bytes, model: registry.Model, device: str = "cpu",
                  progress: Progress | None = None, trace: list | None = None,
                  side: np.ndarray | None = None) -> np.ndarray:
    """Payload -> (H, W, C) uint8, one wavefront line at a time. trace: as for encode_pixels; side: the
    planes decoded before this one (an adaptive file's context)."""
    dec = adaptive.Decoder(payload, side) if header.version >= 4 else coder.Decoder(payload)
    shape = (header.height, header.width, MODES[header.mode])
    coded = _coded_channels(model, header.mode)
    dev = torch.device(device)
    sharpened = header.version >= 3
    return _decode_net(dec, shape, model.network, coded, header.tile, header.chunk, dev, progress, trace, sharpened)


def _decode_net(dec: coder.Decoder, shape: tuple, net, coded: list[int], tile: int, chunk: int, dev: torch.device,
                progress: Progress | None, trace: list | None, sharpened: bool) -> np.ndarray:
    """Decode an (H, W, C) image coded by _encode_net."""
    if not isinstance(net, IntegerMultiScale):
        return _decode_stage(dec, shape, net, coded, tile, chunk, dev, progress, trace, sharpened)
    small_shape = (small_side(shape[0], tile), small_side(shape[1], tile), shape[2])
    first, second = _stage_progress(progress, small_shape[0] * small_shape[1], shape[0] * shape[1])
    small = _decode_net(dec, small_shape, net.small, coded, small_tile(tile), chunk, dev, first, trace, sharpened)
    return _decode_stage(dec, shape, net.full, coded, tile, chunk, dev, second, trace, sharpened, small)


def _decode_stage(dec: coder.Decoder, shape: tuple, net, coded: list[int], tile: int, chunk: int, dev: torch.device,
                  progress: Progress | None, trace: list | None, sharpened: bool,
                  small: np.ndarray | None = None) -> np.ndarray:
    """One network's pass: decode an (H, W, C) image from the coder (see _encode_stage); sharpened: the
    stream holds each chunk's sharpness first (format version 3)."""
    height, width, channels = shape
    out = np.zeros(shape, dtype=np.uint8)
    known = known_values(small, tile, height, width) if small is not None else None
    done = 0
    if isinstance(dec, adaptive.Decoder):
        dec.begin(out)
    for ch in _chunks(height, width, tile, chunk):
        layout = Layout(tile, net.reach, len(ch))
        bn = net.bind(layout, dev, decoder=True)
        if small is not None:
            bn.condition(ch, small)
        schedule = wavefront(layout, ch, net.schedule_slope(layout.size))
        sharp = _pop_sharpness(dec, len(ch), len(coded)) if sharpened else None  # (tiles, G)
        boxes = _boxes(ch)
        for k in range(schedule.steps):
            flat, rc = schedule.flat[schedule.step(k)], schedule.pixels[schedule.step(k)]
            pos = torch.from_numpy(flat).to(dev)
            # The positions coded here (None: all of them; a conditional stage skips those it knows).
            coded_at = ~is_known(rc[:, 0], rc[:, 1], tile) if small is not None else None
            tile_of = layout.tile_of(flat if coded_at is None else flat[coded_at])  # (n,) of the coded ones
            bn.prepare_step(pos)
            st = bn.state(len(pos))
            medians = bn.medians(pos)
            for g, decoded in enumerate(net.passes):  # a pass computes the features of `decoded` channels
                here = [c for c in decoded if c in coded]
                bn.decode_pass(g, pos, st, with_head=bool(here))
                if not here:
                    continue
                f = _pass_frequencies(net, st["o"], coded_at, here, coded, sharp, tile_of)  # (len(here) n, 256)
                for c in here:  # in order: a channel's prediction needs the channels before it
                    pred = bn.prediction(c, pos, medians)
                    value = pred.clone() if coded_at is None else torch.from_numpy(
                        known[rc[:, 0], rc[:, 1], c].astype(np.int32)).to(dev)
                    if f is not None:
                        at = slice(None) if coded_at is None else torch.from_numpy(coded_at).to(dev)
                        n = len(f) // len(here)
                        freqs = f[here.index(c) * n : (here.index(c) + 1) * n]
                        where = adaptive.Where(*(rc if coded_at is None else rc[coded_at]).T, np.full(n, c),
                                               boxes[tile_of], pred[at].cpu().numpy())
                        symbols = _pop(dec, freqs, where, trace)
                        value[at] = ((torch.from_numpy(symbols).to(dev) + pred[at]) % 256).to(value.dtype)
                    for w in (range(net.config.channels) if channels == 1 else [c]):  # grey: G = B = R
                        bn.write_pixels(w, pos, value, pred if w == c else bn.prediction(w, pos, medians))
                    out[rc[:, 0], rc[:, 1], c] = value.cpu().numpy()
            done += len(flat)
            if progress:
                progress(done, height * width)
    return out


def _pass_frequencies(net, o: torch.Tensor, coded_at: np.ndarray | None, here: list[int], coded: list[int],
                      sharp: np.ndarray | None, tile_of: np.ndarray) -> np.ndarray | None:
    """The network's frequencies of one pass: channels `here` at a step's coded positions, channel-major as
    they are coded -> (len(here) n, 256), or None when no position is coded. o (N, F) the head's output,
    coded_at (N,) the coded positions (None: all), tile_of (n,) their tiles, sharp (tiles, G)."""
    if coded_at is not None:
        if not coded_at.any():
            return None
        o = o[torch.from_numpy(coded_at).to(o.device)]
    o = o.cpu().numpy()
    n = len(o)
    rows_sharp = (sharp[np.tile(tile_of, len(here)), np.repeat([coded.index(c) for c in here], n)]
                  if sharp is not None else None)
    rows = np.tile(o, (len(here), 1)) if len(here) > 1 else o  # (len(here) n, F), channel-major
    return softmax.frequencies(rows, np.repeat(here, n), net.out_weight, net.out_bias, net.table, rows_sharp)


def _pop(dec, freqs: np.ndarray, where: adaptive.Where, trace: list | None) -> np.ndarray:
    """Decode the residuals (n,) of one channel at a step's coded positions: the seam between the network's
    frequencies (n, 256) and the coder, where the adaptive stage refines them (format version 4)."""
    if isinstance(dec, adaptive.Decoder):
        return dec.pop(freqs, where, trace)
    if trace is not None:
        trace.append(freqs)
    return dec.pop(freqs)


def compress_pixels(pixels: np.ndarray, mode: str, model: str | registry.Model | None = None,
                    tile: int = DEFAULT_TILE, chunk: int = DEFAULT_CHUNK, device: str = "cpu",
                    progress: Progress | None = None, costs: np.ndarray | None = None,
                    sharpen: bool = True, adapt: bool = True) -> tuple[bytes, Report]:
    """(H, W, C) uint8 pixels of mode L or RGB -> (.pxz bytes, report). See compress_planes."""
    return compress_planes(modes.Planes(mode, [pixels]), model, tile, chunk, device, progress, costs, sharpen,
                           adapt)


def _plane_progress(progress: Progress | None, plane: int, pixels: int, total: int) -> Progress | None:
    """Progress of one plane's coding as progress over all planes (plane k starts at k x pixels)."""
    return (lambda done, _: progress(plane * pixels + done, total)) if progress else None


def compress_planes(image: modes.Planes, model: str | registry.Model | None = None, tile: int = DEFAULT_TILE,
                    chunk: int = DEFAULT_CHUNK, device: str = "cpu", progress: Progress | None = None,
                    costs: np.ndarray | None = None, sharpen: bool = True, adapt: bool = True) -> tuple[bytes, Report]:
    """An image as planes (pixzip.modes) -> (.pxz bytes, report). Each plane is coded in turn with the
    same model; costs (see encode_pixels) receives the first plane's. adapt: refine the network's
    distributions with the adaptive stage (pixzip.adaptive, format version 4; the planes coded before are
    its context); without it, version 3. sharpen=False: version 2, the network's own distributions (no
    sharpness, no adaptation), which older readers of version 2 decode too."""
    start = time.perf_counter()
    m = model if isinstance(model, registry.Model) else registry.resolve(model)
    if not (0 < tile < 2**16 and 0 < chunk < 2**16):
        raise ValueError("tile and chunk must be between 1 and 65535")
    height, width = image.planes[0].shape[:2]
    total = height * width * len(image.planes)
    payloads, ideal = [], 0.0
    for k, (plane, plane_mode) in enumerate(zip(image.planes, image.plane_modes)):
        step = _plane_progress(progress, k, height * width, total)
        payload, bits = encode_pixels(plane, plane_mode, m, tile, chunk, device, step,
                                      costs=costs if k == 0 else None, sharpen=sharpen, adapt=adapt and sharpen,
                                      side=_earlier(image.planes[:k]))
        payloads.append(payload)
        ideal += bits
    version = 2 if not sharpen else 4 if adapt else 3
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
