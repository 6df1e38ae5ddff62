"""Decoding: coder -> (adaptive stage) -> frequencies -> integer network -> pixels, one wavefront line at a
time (pixzip.schedule), in the stream order of pixzip.stream: what the encoder (pixzip.encoder) coded."""
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import torch

from . import adaptive, coder, registry, softmax, stream
from .container import Header
from .encoder import bind_chunk, coded_channels, stage_progress
from .image import MODES
from .intscale import IntegerMultiScale, is_known, known_values, small_side, small_tile
from .schedule import Layout, Schedule
from .stream import Job, Progress


def decode_pixels(header: Header, payload: bytes, model: registry.Model, device: str = "cpu",
                  progress: Progress | None = None, trace: list | None = None,
                  side: np.ndarray | None = None) -> np.ndarray:
    """Payload -> (H, W, C) uint8. trace: as for pixzip.encoder.encode_pixels; side: the planes decoded
    before this one (an adaptive file's context, format version 4 on)."""
    dec = adaptive.Decoder(payload, side, header.version) if header.version >= 4 else coder.Decoder(payload)
    shape = (header.height, header.width, MODES[header.mode])
    job = Job(coded_channels(model, header.mode), header.tile, header.chunk, torch.device(device), progress, trace,
              sharpened=header.version >= 3)
    return _decode_net(dec, shape, model.network, job)


def _decode_net(dec, shape: tuple, net, job: Job) -> np.ndarray:
    """Decode an (H, W, C) image coded by pixzip.encoder._encode_net."""
    if not isinstance(net, IntegerMultiScale):
        return _decode_stage(dec, shape, net, job)
    small_shape = (small_side(shape[0], job.tile), small_side(shape[1], job.tile), shape[2])
    first, second = stage_progress(job.progress, small_shape[0] * small_shape[1], shape[0] * shape[1])
    small_job = Job(job.coded, small_tile(job.tile), job.chunk, job.device, first, job.trace,
                    sharpened=job.sharpened)
    small = _decode_net(dec, small_shape, net.small, small_job)
    full_job = Job(job.coded, job.tile, job.chunk, job.device, second, job.trace, sharpened=job.sharpened)
    return _decode_stage(dec, shape, net.full, full_job, small)


def _decode_stage(dec, shape: tuple, net, job: Job, small: np.ndarray | None = None) -> np.ndarray:
    """One network's pass: decode an (H, W, C) image from the coder (see pixzip.encoder._encode_stage).
    A chunk's tiles are decoded in parts side by side (`parts`): while the adaptive stage decodes one part's
    symbols, the network computes another's (`_interleave`)."""
    height, width, _ = shape
    out = np.zeros(shape, dtype=np.uint8)
    known = known_values(small, job.tile, height, width) if small is not None else None
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if job.progress:
            job.progress(done[0], height * width)

    dec.begin(out)
    for ch in stream.chunks(height, width, job.tile, job.chunk):
        layout, bn, schedule = bind_chunk(net, ch, job, small, decoder=True)
        sharp = dec.pop_raw(len(ch) * len(job.coded), 8).reshape(len(ch), len(job.coded)) if job.sharpened else None
        chunk = _Chunk(net, bn, job, layout, schedule, stream.boxes(ch), sharp, known, out, progress)
        _interleave(dec, [_decode_part(chunk, tiles) for tiles in parts(len(ch), bn, dec)], job.trace)
    return out


PARTS = 3  # a chunk's tiles decoded side by side (2, 3 and 4 measured alike within noise: docs/benchmarks.md)


def parts(tiles: int, bn, dec) -> list[range]:
    """A chunk's tiles in the parts decoded side by side (PARTS). Tiles never read each other, so each part's
    network needs only its own part's symbols. All in one part where there is one tile, where the bound
    network's steps cannot be split (its prepare_step keeps state from step to step: `split_steps`), where
    this thread may use one CPU thread only (numba's setting: the stage would take a second core), or where
    dec is no adaptive stage (format 3's coder decodes in a fraction of the network's time: the network
    is better off with every thread)."""
    n = min(PARTS, tiles)
    if n < 2 or not bn.split_steps or numba.get_num_threads() < 2 or not isinstance(dec, adaptive.Decoder):
        return [range(tiles)]
    return [range(k * tiles // n, (k + 1) * tiles // n) for k in range(n)]


@dataclass
class _Chunk:
    """What decoding a chunk's parts shares: the network bound to the chunk, its schedule, and the output."""

    net: object
    bn: object
    job: Job
    layout: Layout
    schedule: Schedule
    box: np.ndarray  # (tiles, 4) each tile's (y0, x0, y1, x1)
    sharp: np.ndarray | None  # (tiles, G) each tile's coded sharpness
    known: np.ndarray | None  # (H, W, C) a multi-scale model's small images' pixels
    out: np.ndarray  # (H, W, C) uint8 the decoded image
    progress: Callable[[int], None]  # told the pixels of each step decoded


def _decode_part(ch: _Chunk, tiles: range) -> Generator:
    """Decode a chunk's tiles `tiles`, step by step of its schedule: the network here, and each channel's
    symbols asked of the adaptive stage by yielding (frequencies (n, 256), adaptive.Where), their
    residuals (n,) sent back. It yields once for every step and coded channel (None where it has no symbol
    of them), so that parts advance in lockstep and their requests, taken in turn, are in stream order."""
    net, bn, job, schedule, known = ch.net, ch.bn, ch.job, ch.schedule, ch.known
    coded, dev = job.coded, job.device
    for k in range(schedule.steps):
        step = schedule.step(k)
        first, last = np.searchsorted(ch.layout.tile_of(schedule.flat[step]), [tiles.start, tiles.stop])
        flat, rc = schedule.flat[step][first:last], schedule.pixels[step][first:last]  # tile order in a step
        if not len(flat):
            for _ in coded:
                yield None
            continue
        pos = torch.from_numpy(flat).to(dev)
        skip = is_known(rc[:, 0], rc[:, 1], job.tile) if known is not None else None
        position, group = stream.order(np.array([len(flat)]), len(coded), skip)
        bn.prepare_step(pos)
        st = bn.state(len(pos))
        medians = bn.medians(pos)
        for g, decoded in enumerate(net.passes):  # a pass computes the features of `decoded` channels
            here = [c for c in decoded if c in coded]
            bn.decode_pass(g, pos, st, with_head=bool(here))
            if not here:
                continue
            at = position[group == coded.index(here[0])]  # this step's coded positions (every channel's)
            every = len(at) == len(flat)  # then no index arrays: slices (the decoder's hot loop)
            tile_of = ch.layout.tile_of(flat if every else flat[at])
            f = _pass_frequencies(net, st.head_output, at, here, coded, ch.sharp, tile_of) if len(at) else None
            for i, c in enumerate(here):  # in order: a channel's prediction needs the channels before it
                pred = bn.prediction(c, pos, medians)
                value = pred.clone() if known is None else torch.from_numpy(
                    known[rc[:, 0], rc[:, 1], c].astype(np.int32)).to(dev)
                if len(at):
                    sel = slice(None) if every else torch.from_numpy(at).to(dev)
                    rows = rc if every else rc[at]
                    where = adaptive.Where(rows[:, 0], rows[:, 1], np.full(len(at), c), ch.box[tile_of],
                                           pred[sel].cpu().numpy())
                    symbols = yield f[i * len(at) : (i + 1) * len(at)], where
                    value[sel] = ((torch.from_numpy(symbols).to(dev) + pred[sel]) % 256).to(value.dtype)
                else:
                    yield None
                for w in (range(net.config.channels) if ch.out.shape[2] == 1 else [c]):  # grey: G = B = R
                    bn.write_pixels(w, pos, value, pred if w == c else bn.prediction(w, pos, medians))
                ch.out[rc[:, 0], rc[:, 1], c] = value.cpu().numpy()
        ch.progress(len(flat))


def _interleave(dec, parts: list[Generator], trace: list | None) -> None:
    """Run the parts' decoding (`_decode_part`) in turn, their requests decoded by dec (the stage) in the order
    they are made: each step and channel, part 0's symbols, then part 1's, ... - the stream order. With more
    than one part the stage runs on a worker thread, and while it decodes one part's symbols this thread runs
    the next part's network up to its next request, with one CPU thread fewer (numba's setting is this
    thread's own). The stage's state changes in that one order, whatever the timing of the threads, so the
    pixels are those of a one-part decoder: the stage reads the image only inside a symbol's tile
    (pixzip.contexts), and each part's pixels are written before its next request."""
    if len(parts) == 1:
        symbols = None
        while True:
            try:
                request = parts[0].send(symbols)
            except StopIteration:
                return
            symbols = dec.pop(*request, trace) if request is not None else None
    threads = numba.get_num_threads()
    numba.set_num_threads(threads - 1)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="pixzip-stage") as stage:
            pending: list[Future | None] = [None] * len(parts)
            live = list(range(len(parts)))
            while live:
                for i in list(live):
                    symbols = pending[i].result() if pending[i] is not None else None
                    try:
                        request = parts[i].send(symbols)
                    except StopIteration:
                        live.remove(i)
                        continue
                    pending[i] = stage.submit(dec.pop, *request, trace) if request is not None else None
    finally:
        numba.set_num_threads(threads)


def _pass_frequencies(net, o: torch.Tensor, at: np.ndarray, here: list[int], coded: list[int],
                      sharp: np.ndarray | None, tile_of: np.ndarray) -> np.ndarray:
    """The network's frequencies of one pass: channels `here` at a step's coded positions `at` (n,), channel-
    major as they are coded -> (len(here) n, 256). o (N, F) the head's output, tile_of (n,) their tiles,
    sharp (tiles, G) each tile's sharpness (None: the model's own distributions)."""
    if len(at) < len(o):
        o = o[torch.from_numpy(at).to(o.device)]
    o = o.cpu().numpy()
    n = len(o)
    rows_sharp = (sharp[np.tile(tile_of, len(here)), np.repeat([coded.index(c) for c in here], n)]
                  if sharp is not None else None)
    rows = np.tile(o, (len(here), 1)) if len(here) > 1 else o  # (len(here) n, F), channel-major
    return softmax.frequencies(rows, np.repeat(here, n), net.out_weight, net.out_bias, net.table, rows_sharp)
