"""Encoding: pixels -> integer network -> frequencies -> (adaptive stage) -> coder.

The encoder knows every pixel, so it runs each layer once over all positions of a chunk of tiles (the
decoder runs the network one wavefront line at a time, pixzip.decoder); both call the same exact integer
layers, so they compute the same frequencies bit for bit. Since format version 3 it also fits each tile's
sharpness (pixzip.sharpness) and codes it before the tile's symbols; since version 4 the frequencies pass
through the adaptive stage (pixzip.adaptive) on their way to the coder.
"""
import numpy as np
import torch

from . import adaptive, coder, registry, sharpness, softmax, stream
from .intscale import IntegerMultiScale, is_known, known_values, mosaic, small_tile
from .schedule import Layout, wavefront
from .stream import Job, Progress

ENCODE_BATCH = 32768  # positions the encoder runs through a layer at once (bounds its memory)
FREQ_BATCH = 1536  # positions whose 256-way frequencies (of all channels) are computed at once: cache-sized


def coded_channels(model: registry.Model, mode: str) -> list[int]:
    """The channels of the model's output that an image of this mode codes: a grey image only R (an RGB model
    sees it as R = G = B)."""
    channels = model.config.channels
    if mode == "RGB" and channels != 3:
        raise ValueError(f"model {model.name} codes grayscale images only")
    return [0] if mode == "L" else [0, 1, 2]


def encode_pixels(pixels: np.ndarray, mode: str, model: registry.Model, tile: int, chunk: int,
                  device: str = "cpu", progress: Progress | None = None, trace: list | None = None,
                  costs: np.ndarray | None = None, sharpen: bool = True, adapt: bool = False,
                  side: np.ndarray | None = None, stage: int = adaptive.LATEST) -> tuple[bytes, float]:
    """(H, W, C) uint8 -> (payload, ideal bits). trace, if given, receives what the coder is given in stream
    order ((N, 256) frequencies; with adapt, (N, MAX_DECISIONS) decision probabilities), for tests that
    compare it with the decoder's; costs, an (H, W) float array, receives each pixel's ideal cost in bits
    (all its channels). A multi-scale model codes the tiles' small images first, then the rest, into the
    same stream (pixzip.intscale). sharpen: fit and code each tile's sharpness (format version 3); adapt:
    the adaptive stage of format version `stage` (4 to 7), with side (H, W, S) the planes coded before as its
    context."""
    enc = adaptive.Encoder(side, stage) if adapt else coder.Encoder()
    job = Job(coded_channels(model, mode), tile, chunk, torch.device(device), progress, trace, costs, sharpen)
    ideal = _encode_net(enc, pixels, model.network, job)
    return enc.finish(), ideal


def _encode_net(enc, pixels: np.ndarray, net, job: Job) -> float:
    """A network's code for an image -> ideal bits: one stage, or a multi-scale model's small image (the
    mosaic of the tiles' small images, recursively for more levels) and then the rest."""
    if not isinstance(net, IntegerMultiScale):
        return _encode_stage(enc, pixels, net, job)
    small = mosaic(pixels, job.tile)
    first, second = stage_progress(job.progress, small.shape[0] * small.shape[1], pixels.shape[0] * pixels.shape[1])
    small_costs = np.zeros(small.shape[:2]) if job.costs is not None else None
    small_job = Job(job.coded, small_tile(job.tile), job.chunk, job.device, first, job.trace, small_costs,
                    job.sharpened)
    ideal = _encode_net(enc, small, net.small, small_job)
    if job.costs is not None:
        job.costs += known_values(small_costs[:, :, None], job.tile, *pixels.shape[:2])[:, :, 0]
    full_job = Job(job.coded, job.tile, job.chunk, job.device, second, job.trace, job.costs, job.sharpened)
    return ideal + _encode_stage(enc, pixels, net.full, full_job, small)


def stage_progress(progress: Progress | None, n_small: int, n: int) -> tuple:
    """Progress of a multi-scale model's two stages (n_small pixels, then n) as progress over the image's n
    pixels, the work of both stages spread over them."""
    if progress is None:
        return None, None
    scaled = lambda done: progress(done * n // (n_small + n), n)
    return (lambda done, _: scaled(done)), (lambda done, _: scaled(n_small + done))


def _encode_stage(enc, pixels: np.ndarray, net, job: Job, small: np.ndarray | None = None) -> float:
    """One network's pass over an image into the coder -> ideal bits. With `small` (the mosaic of the
    tiles' small images), net is a conditional network and the pixels the small images hold are skipped.
    Each chunk: the sharpness of its tiles (if sharpened), then its symbols in stream order."""
    height, width = pixels.shape[:2]
    ideal, done = 0.0, 0
    enc.begin(pixels)
    coded, dev = job.coded, job.device
    for ch in stream.chunks(height, width, job.tile, job.chunk):
        layout, bn, schedule = bind_chunk(net, ch, job, small, decoder=False)
        pos, rc = torch.from_numpy(schedule.flat).to(dev), schedule.pixels
        values = _network_values(pixels, rc, net.config.channels).to(dev)  # (N, C)
        bn.set_pixels(pos, values)
        medians = bn.medians(pos)
        preds = [bn.prediction(g, pos, medians) for g in range(net.config.channels)]
        for g in range(net.config.channels):
            bn.write_pixels(g, pos, values[:, g], preds[g])
        h = bn.stream(pos, ENCODE_BATCH)  # (N, F) the residual stream after the last block
        o = torch.cat([bn.head(h[a : a + ENCODE_BATCH]) for a in range(0, len(pos), ENCODE_BATCH)]).cpu().numpy()
        symbols = torch.stack([(values[:, g] - preds[g]) % 256 for g in coded]).cpu().numpy()  # (G, N)
        predicted = torch.stack([preds[g] for g in coded]).cpu().numpy()  # (G, N)
        skip = is_known(rc[:, 0], rc[:, 1], job.tile) if small is not None else None
        tile_of = layout.tile_of(schedule.flat)  # (N,)
        sharp = None
        if job.sharpened:
            sharp = sharpness.fit(o, tile_of, coded, symbols, net.out_weight, net.out_bias, net.logit_shift,
                                  len(ch), skip)  # (tiles, G)
            enc.push_raw(sharp.reshape(-1), 8)
            ideal += 8.0 * sharp.size
        box = stream.boxes(ch)
        for position, group in stream.batches(schedule.bounds, len(coded), skip, FREQ_BATCH):
            channel = np.asarray(coded)[group]
            rows_sharp = sharp[tile_of[position], group] if sharp is not None else None
            freqs = softmax.frequencies(o[position], channel, net.out_weight, net.out_bias, net.table, rows_sharp)
            where = adaptive.Where(rc[position, 0], rc[position, 1], channel, box[tile_of[position]],
                                   predicted[group, position])
            bits = enc.push(symbols[group, position], freqs, where, job.trace)  # (n,)
            if job.costs is not None:
                np.add.at(job.costs, (rc[position, 0], rc[position, 1]), bits)
            ideal += float(bits.sum())
        done += len(pos)
        if job.progress:
            job.progress(done, height * width)
    return ideal


def bind_chunk(net, chunk: list, job: Job, small: np.ndarray | None, decoder: bool) -> tuple:
    """A chunk of tiles' buffers, its bound network (conditioned on the small image, if any) and its
    wavefront schedule: (layout, bound network, schedule)."""
    layout = Layout(job.tile, net.reach, len(chunk))
    bn = net.bind(layout, job.device, decoder=decoder)
    if small is not None:
        bn.condition(chunk, small)
    return layout, bn, wavefront(layout, chunk, net.schedule_slope(layout.size))


def _network_values(pixels: np.ndarray, where: np.ndarray, channels: int) -> torch.Tensor:
    """The pixels at where (N, 2) of an (H, W, C_image) image -> (N, C_model) int32: grayscale repeated for
    an RGB model. One chunk at a time, so the encoder's memory does not grow with the image."""
    x = torch.from_numpy(pixels[where[:, 0], where[:, 1]].astype(np.int32))
    return x.expand(-1, channels) if x.shape[1] != channels else x
