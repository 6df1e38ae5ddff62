"""The order in which symbols enter the coder, and what a stage's coding carries along.

One definition, used by the encoder (which knows every symbol and codes them in batches) and the decoder
(which must decode them step by step): within a chunk of tiles, step by step of the wavefront schedule
(pixzip.schedule), within a step channel by channel (the coded channels in order: a channel's prediction
needs the channels before it), within a channel position by position in the schedule's order, skipping
the positions a conditional stage knows already (a multi-scale model's small image).
"""
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from .schedule import Tile, tiles

Progress = Callable[[int, int], None]  # (pixels done, pixels total)


@dataclass
class Job:
    """What coding one image's plane needs besides the pixels and the network (both directions)."""

    coded: list[int]  # the channels coded (an RGB model codes only R of a grey image: [0])
    tile: int  # tile side in pixels
    chunk: int  # tiles coded together
    device: torch.device
    progress: Progress | None = None
    trace: list | None = None  # receives the coder's inputs in stream order (tests compare directions)
    costs: np.ndarray | None = None  # (H, W) float: each pixel's ideal cost in bits, encoder only
    sharpened: bool = True  # each chunk's sharpness precedes its symbols (format version >= 3)


def chunks(height: int, width: int, tile: int, chunk: int) -> list[list[Tile]]:
    all_tiles = tiles(height, width, tile)
    return [all_tiles[i : i + chunk] for i in range(0, len(all_tiles), chunk)]


def boxes(chunk: list[Tile]) -> np.ndarray:
    """(tiles, 4) each tile's rows and columns [y0, y1) x [x0, x1) as (y0, x0, y1, x1)."""
    return np.array([(t.y, t.x, t.y + t.h, t.x + t.w) for t in chunk], dtype=np.int64).reshape(-1, 4)


def order(step_sizes: np.ndarray, channels: int, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The symbols of consecutive steps (positions step_sizes[0], then step_sizes[1], ...) in stream order:
    (position (n,) counted from the first step's first, channel index (n,) into the coded channels).
    skip (sum(step_sizes),): positions not coded."""
    starts = np.concatenate([[0], np.cumsum(step_sizes)[:-1]]).astype(np.int64)
    parts = [(np.arange(s, s + k), np.full(k, g)) for s, k in zip(starts, step_sizes) for g in range(channels)]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    position, channel = (np.concatenate(p).astype(np.int64) for p in zip(*parts))
    if skip is not None:
        keep = ~skip[position]
        position, channel = position[keep], channel[keep]
    return position, channel


def batches(bounds: np.ndarray, channels: int, skip: np.ndarray | None, size: int) -> Iterator[tuple]:
    """The encoder's batches of whole steps of about `size` positions: yields (position (n,), channel
    index (n,)) in stream order, positions counted from the chunk's first. bounds: the schedule's."""
    step_sizes = np.diff(bounds)
    first = 0
    while first < len(step_sizes):
        last = max(int(np.searchsorted(bounds, bounds[first] + size, side="right")) - 1, first + 1)
        a, b = int(bounds[first]), int(bounds[last])
        position, channel = order(step_sizes[first:last], channels, None if skip is None else skip[a:b])
        yield a + position, channel
        first = last
