"""Decoding: coder -> (adaptive stage) -> frequencies -> integer network -> pixels, one wavefront line at a
time (pixzip.schedule), in the stream order of pixzip.stream: what the encoder (pixzip.encoder) coded."""
import numpy as np
import torch

from . import adaptive, coder, registry, softmax, stream
from .container import Header
from .encoder import bind_chunk, coded_channels, stage_progress
from .image import MODES
from .intscale import IntegerMultiScale, is_known, known_values, small_side, small_tile
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
    """One network's pass: decode an (H, W, C) image from the coder (see pixzip.encoder._encode_stage)."""
    height, width, channels = shape
    out = np.zeros(shape, dtype=np.uint8)
    known = known_values(small, job.tile, height, width) if small is not None else None
    done, coded, dev = 0, job.coded, job.device
    dec.begin(out)
    for ch in stream.chunks(height, width, job.tile, job.chunk):
        layout, bn, schedule = bind_chunk(net, ch, job, small, decoder=True)
        sharp = dec.pop_raw(len(ch) * len(coded), 8).reshape(len(ch), len(coded)) if job.sharpened else None
        box = stream.boxes(ch)
        for k in range(schedule.steps):
            flat, rc = schedule.flat[schedule.step(k)], schedule.pixels[schedule.step(k)]
            pos = torch.from_numpy(flat).to(dev)
            skip = is_known(rc[:, 0], rc[:, 1], job.tile) if small is not None else None
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
                tile_of = layout.tile_of(flat if every else flat[at])
                f = _pass_frequencies(net, st.head_output, at, here, coded, sharp, tile_of) if len(at) else None
                for i, c in enumerate(here):  # in order: a channel's prediction needs the channels before it
                    pred = bn.prediction(c, pos, medians)
                    value = pred.clone() if known is None else torch.from_numpy(
                        known[rc[:, 0], rc[:, 1], c].astype(np.int32)).to(dev)
                    if len(at):
                        sel = slice(None) if every else torch.from_numpy(at).to(dev)
                        rows = rc if every else rc[at]
                        where = adaptive.Where(rows[:, 0], rows[:, 1], np.full(len(at), c), box[tile_of],
                                               pred[sel].cpu().numpy())
                        symbols = dec.pop(f[i * len(at) : (i + 1) * len(at)], where, job.trace)
                        value[sel] = ((torch.from_numpy(symbols).to(dev) + pred[sel]) % 256).to(value.dtype)
                    for w in (range(net.config.channels) if channels == 1 else [c]):  # grey: G = B = R
                        bn.write_pixels(w, pos, value, pred if w == c else bn.prediction(w, pos, medians))
                    out[rc[:, 0], rc[:, 1], c] = value.cpu().numpy()
            done += len(flat)
            if job.progress:
                job.progress(done, height * width)
    return out


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
