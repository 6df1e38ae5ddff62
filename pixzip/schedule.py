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

    def offset(self, dy: int, dx: int) -> int:
        return dy * self.cols + dx


def wavefront(layout: Layout, chunk: list[Tile], slope: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decoding steps for a chunk of tiles: a list of (flat positions, image pixel indices), one per step.

    Image pixel indices are (N, 2) arrays of (row, column) in the whole image; both lists follow the
    same order, which is also the order of the symbols in the stream.
    """
    parts = []
    for k, t in enumerate(chunk):
        i, j = np.meshgrid(np.arange(t.h), np.arange(t.w), indexing="ij")
        i, j = i.ravel(), j.ravel()
        parts.append((j + slope * i, np.full(i.shape, k), i, j, t.y + i, t.x + j))
    step, tile, i, j, row, col = (np.concatenate(p) for p in zip(*parts))
    size = layout.size
    order = np.argsort(((step * len(chunk) + tile) * size + i) * size + j)  # by step, tile, raster order
    step, tile, i, j, row, col = step[order], tile[order], i[order], j[order], row[order], col[order]
    flat = layout.flat(tile, i, j)
    starts = np.flatnonzero(np.diff(step, prepend=-1))
    ends = np.append(starts[1:], len(step))
    return [(flat[a:b], np.stack([row[a:b], col[a:b]], axis=1)) for a, b in zip(starts, ends)]


def steps_per_tile(h: int, w: int, slope: int) -> int:
    return (w - 1) + slope * (h - 1) + 1
