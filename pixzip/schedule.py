"""Where each pixel lives and when it is decoded: tiles, padded buffers and the wavefront.

The image is cut into independent square tiles (the last row and column of tiles may be smaller); the
network sees zeros outside its tile, exactly as it saw zeros outside its training crops.

Inside a tile, pixel (i, j) at every layer reads the previous layer only at rows above within `reach`
columns to the right, and to its left in its own row. So all pixels on the line t = j + slope * i, with
slope = reach + 1, depend only on lines t' < t and are decoded together, all layers at once: a tile of
h x w pixels takes (w - 1) + slope * (h - 1) + 1 steps instead of h * w (design.md section 3). All tiles of
a chunk advance together, so one step handles (tiles in chunk) x (pixels on a line) positions.

Each tile's activations live in a zero-padded buffer of (size + pad) rows x (size + 2 pad) columns;
a position is a flat index into the stack of those buffers.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    y: int  # top-left corner in the image
    x: int
    h: int
    w: int


def tiles(height: int, width: int, size: int) -> list[Tile]:
    """Tiles in raster order covering an image."""
    return [
        Tile(y, x, min(size, height - y), min(size, width - x))
        for y in range(0, height, size)
        for x in range(0, width, size)
    ]


@dataclass(frozen=True)
class Layout:
    """Padded buffer geometry for a chunk of tiles of at most size x size pixels."""

    size: int
    pad: int  # zero rows above and zero columns on each side (the widest kernel's half-width)
    count: int  # tiles in the chunk

    @property
    def rows(self) -> int:
        return self.size + self.pad

    @property
    def cols(self) -> int:
        return self.size + 2 * self.pad

    @property
    def positions(self) -> int:
        return self.count * self.rows * self.cols

    def flat(self, tile: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return (tile * self.rows + i + self.pad) * self.cols + j + self.pad

    def tile_of(self, flat: np.ndarray) -> np.ndarray:
        """The tile in the chunk (0 .. count - 1) of flat positions."""
        return flat // (self.rows * self.cols)

    def offset(self, dy: int, dx: int) -> int:
        return dy * self.cols + dx


@dataclass(frozen=True)
class Schedule:
    """The decoding order of a chunk: step k decodes positions flat[bounds[k] : bounds[k + 1]], which are
    the image pixels pixels[bounds[k] : bounds[k + 1]]. This is also the order of the symbols in the stream
    (within a step, channel group by channel group)."""

    flat: np.ndarray  # (N,) flat buffer positions
    pixels: np.ndarray  # (N, 2) (row, column) in the whole image
    bounds: np.ndarray  # (steps + 1,)

    @property
    def steps(self) -> int:
        return len(self.bounds) - 1

    def step(self, k: int) -> slice:
        return slice(int(self.bounds[k]), int(self.bounds[k + 1]))


def wavefront(layout: Layout, chunk: list[Tile], slope: int) -> Schedule:
    """The wavefront schedule of a chunk of tiles: by step, then tile, then raster order in the tile."""
    parts = []
    for k, t in enumerate(chunk):
        i, j = np.divmod(np.arange(t.h * t.w), t.w)  # raster order
        parts.append((j + slope * i, np.full(i.shape, k), i, j, t.y + i, t.x + j))
    step, tile, i, j, row, col = (np.concatenate(p) for p in zip(*parts))
    # A stable sort by step keeps the (tile, raster) order within a step; on 16-bit keys it is a radix sort.
    order = np.argsort(step.astype(np.uint16) if step.max() < 2**16 else step, kind="stable")
    step, tile, i, j = step[order], tile[order], i[order], j[order]
    bounds = np.append(np.flatnonzero(np.diff(step, prepend=-1)), len(step))  # lines with pixels only
    return Schedule(layout.flat(tile, i, j), np.stack([row[order], col[order]], axis=1), bounds)


def steps_per_tile(h: int, w: int, slope: int) -> int:
    return (w - 1) + slope * (h - 1) + 1
