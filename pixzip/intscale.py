"""The integer Multi-Scale networks: pixzip.multiscale's quantization-aware arithmetic on exact integers.

`IntegerMultiScale` holds two integer networks of the base architecture: `small` (an IntegerPixelCNN,
IntegerRowLSTM or IntegerDiagonalBiLSTM; with more levels, an IntegerMultiScale itself) for the tiles'
small images, and `full`, its conditional version (`IntegerConditional` on top of it) for the rest. The
codec (pixzip.codec) codes the small images of all tiles first, as one image (`mosaic`), then the full
image with the conditional network, skipping the pixels the small images hold; both into the same coder
stream.

The conditional network is the base's integer network plus, per chunk of tiles, one parallel pass of the
upsampling network over the tiles' small images (`BoundConditional.condition`): two 3x3 unmasked
convolutions as im2col + int8 matmul on dense per-tile arrays, zero outside each tile as in training.
Its output (P, Fc) int8 feeds, at every stream addition, a 1x1 projection added to the stream with the same
rescaling and clamping as a block's output (`add_condition`).
"""
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import intlstm, kernels, modelcheck
from .intformat import ACT_MAX, INPUT_SCALE, MultiScaleConfig
from .intnet import IntegerPixelCNN, conv_arrays
from .schedule import Layout, Tile, tiles

if TYPE_CHECKING:  # export reads a float model; decoding never imports one
    from .multiscale import MultiScale
    from .registry import Architecture

SMALL, FULL = "small.", "full."  # prefixes of the two networks' arrays in a model file


def _base(config: MultiScaleConfig) -> "Architecture":
    """The record (pixzip.registry) of a multi-scale model's base architecture."""
    from .registry import ARCHITECTURES  # it imports this module

    return ARCHITECTURES[config.base]


def export_arrays(model: "MultiScale") -> dict[str, np.ndarray]:
    """The small network's arrays as small.* (with more levels, its own small.* and full.*), the conditional
    one's as full.* (its upsampling network as full.cond_small.*, full.cond_full.*, full.proj{k}.*)."""
    full = model.full
    s1, s2 = full.cond_scales.tolist()
    unit = full.stream_format()[0]  # the projections add into the stream
    convs = {"cond_small": (full.cond_small, INPUT_SCALE, s1), "cond_full": (full.cond_full, s1, s2)}
    convs.update({f"proj{k}": (conv, s2, unit) for k, conv in enumerate(full.proj)})
    base_arrays = _base(model.config).export
    small_arrays = export_arrays if model.config.levels > 1 else base_arrays  # levels > 1: small is multi-scale
    arrays = {SMALL + k: v for k, v in small_arrays(model.small).items()}
    arrays.update({FULL + k: v for k, v in {**base_arrays(full), **conv_arrays(convs)}.items()})
    return arrays


def small_tile(tile: int) -> int:
    """The side of a tile's small image."""
    return (tile + 1) // 2


def mosaic(pixels: np.ndarray, tile: int) -> np.ndarray:
    """(H, W, C) -> the small images of its tiles side by side, each where its tile is in the tile grid:
    (sum of ceil(h / 2) over tile rows, same over columns, C). With an even tile size this is exactly
    pixels[::2, ::2]; coded with tiles of small_tile(tile), each small image is one tile."""
    s = small_tile(tile)
    height, width = pixels.shape[:2]
    out = np.zeros((small_side(height, tile), small_side(width, tile), pixels.shape[2]), dtype=pixels.dtype)
    for t in tiles(height, width, tile):
        y, x = t.y // tile * s, t.x // tile * s
        part = pixels[t.y : t.y + t.h : 2, t.x : t.x + t.w : 2]
        out[y : y + part.shape[0], x : x + part.shape[1]] = part
    return out


def small_side(n: int, tile: int) -> int:
    """The small images' mosaic's side for an image side of n pixels."""
    return (n // tile) * small_tile(tile) + small_tile(n % tile) if n % tile else (n // tile) * small_tile(tile)


def known_values(small: np.ndarray, tile: int, height: int, width: int) -> np.ndarray:
    """The inverse of mosaic: an (H, W, C) image holding the small images' pixels where they came from
    (zeros elsewhere)."""
    s = small_tile(tile)
    out = np.zeros((height, width, small.shape[2]), dtype=small.dtype)
    for t in tiles(height, width, tile):
        y, x = t.y // tile * s, t.x // tile * s
        out[t.y : t.y + t.h : 2, t.x : t.x + t.w : 2] = small[y : y + (t.h + 1) // 2, x : x + (t.w + 1) // 2]
    return out


def is_known(rows: np.ndarray, cols: np.ndarray, tile: int) -> np.ndarray:
    """Whether image pixels (rows, cols) are in their tile's small image: even row and column in the tile."""
    return ((rows % tile) % 2 == 0) & ((cols % tile) % 2 == 0)


class IntegerConditional:
    """Makes an integer network (the next class in the MRO) conditional: checks the upsampling network's
    and the projections' weights; `bound` is the matching conditional BoundNetwork (`conditional_network`)."""

    bound: type

    def __init__(self, config: MultiScaleConfig, arrays: dict[str, np.ndarray]):
        super().__init__(config, arrays)
        names = ["cond_small", "cond_full"] + [f"proj{k}" for k in range(config.blocks + 1)]
        modelcheck.check_exact(self.arrays, names)


class IntegerMultiScale:
    """Integer inference of a multi-scale model: `small` and `full` networks (a pixzip.network.MultiScaleNetwork)."""

    def __init__(self, config: MultiScaleConfig, arrays: dict[str, np.ndarray]):
        self.config = config
        part = lambda prefix: {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        base = _base(config)
        small = IntegerMultiScale if config.levels > 1 else base.network
        self.small = small(config.small_config(), part(SMALL))
        self.full = base.conditional_network(config, part(FULL))


class BoundConditional:
    """Makes a bound network (the next class in the MRO) conditional: the upsampling network's output
    c (P, Fc) int8 over the layout, and `add_condition`, the hook its stream and group passes call."""

    def __init__(self, net: IntegerConditional, layout: Layout, device: torch.device, decoder: bool):
        super().__init__(net, layout, device, decoder)
        self.cond = torch.zeros(layout.positions, net.config.cond_hidden, dtype=torch.int8, device=device)
        self.projections = {f"proj{k}": self._layer(f"proj{k}") for k in range(net.config.blocks + 1)}
        self.layers.update(self.projections)
        self.dense = {name: self._layer(name) for name in ("cond_small", "cond_full")}

    def condition(self, chunk: list[Tile], small: np.ndarray) -> None:
        """Run the upsampling network over the small images of a chunk's tiles, taken from the mosaic
        `small` (pixzip.intscale.mosaic of the image), and keep its output for the stream additions."""
        size, s = self.layout.size, small_tile(self.layout.size)
        dev, n = self.device, len(chunk)
        inside_small = torch.zeros(n, s, s, 1, dtype=torch.bool, device=dev)
        inside = torch.zeros(n, size, size, 1, dtype=torch.bool, device=dev)
        channels = self.net.config.channels
        a0 = torch.zeros(n, s, s, channels, dtype=torch.int8, device=dev)  # a grey image: R = G = B
        for k, t in enumerate(chunk):
            hs, ws = (t.h + 1) // 2, (t.w + 1) // 2
            y, x = t.y // size * s, t.x // size * s
            block = torch.from_numpy(small[y : y + hs, x : x + ws].astype(np.int16) - 128)
            a0[k, :hs, :ws] = block.to(dev, torch.int8).expand(hs, ws, channels)
            inside_small[k, :hs, :ws] = True
            inside[k, : t.h, : t.w] = True
        c1 = self._conv3x3("cond_small", a0) * inside_small  # (n, s, s, Fc), zero outside the small images
        up = c1.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)[:, :size, :size] * inside
        c2 = self._conv3x3("cond_full", up) * inside  # (n, size, size, Fc)
        k, i, j = torch.nonzero(inside[..., 0], as_tuple=True)
        self.cond[torch.from_numpy(self.layout.flat(k.cpu().numpy(), i.cpu().numpy(),
                                                    j.cpu().numpy())).to(dev)] = c2[k, i, j]

    def _conv3x3(self, name: str, a: torch.Tensor) -> torch.Tensor:
        """An unmasked 3x3 layer over dense maps a (n, h, w, in) int8, zero padded -> (n, h, w, out) int8,
        relu: im2col in the layer's tap order, one int8 matmul, the usual rescaling."""
        n, h, w, c = a.shape
        padded = torch.nn.functional.pad(a, (0, 0, 1, 1, 1, 1))  # (n, h + 2, w + 2, in)
        cols = torch.cat([padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], dim=3)
        layer = self.dense[name]
        acc = self._matmul(cols.reshape(n * h * w, 9 * c), layer.full)
        out = kernels.requant(acc, layer.full.multiplier, layer.full.offset, layer.shift, 0, ACT_MAX)
        return out.view(n, h, w, -1)

    def _layer(self, name: str):
        if name in ("cond_small", "cond_full"):  # every tap of the 3x3 kernel, row by row
            w = self.net.masked_weight(name)  # (out, in, 3, 3)
            weight = torch.cat([w[:, :, dy, dx].T for dy in range(3) for dx in range(3)], 0)
            return self._requant_layer(name, [], weight, self.cols)
        return super()._layer(name)

    def add_condition(self, k: int, pos: torch.Tensor, h: torch.Tensor, g: int | None) -> None:
        a = self._gather(self.cond, pos, f"proj{k}")  # (N, Fc): known in advance, every group sees it all
        self._apply(f"proj{k}", a, g, -self.stream_max, self.stream_max, residual=h, out=h)

    def _projections(self) -> list[str]:  # the same additions in the decoder's compiled sub-pass
        return list(self.projections)

    def _condition_features(self) -> np.ndarray:
        return self.cond.numpy()


@lru_cache(maxsize=None)
def conditional_network(base: type) -> type:
    """The conditional version of a single-scale integer network class (IntegerConditional on top of it,
    binding to BoundConditional on top of base.bound): a multi-scale model's full stage (pixzip.registry's
    Architecture.conditional_network). One class per base."""
    short = base.__name__.removeprefix("Integer")
    named = lambda name, bases, **attrs: type(name, bases, {"__module__": __name__, "__qualname__": name, **attrs})
    bound = named("BoundConditional" + short, (BoundConditional, base.bound))
    return named("IntegerConditional" + short, (IntegerConditional, base), bound=bound)


IntegerConditionalPixelCNN = conditional_network(IntegerPixelCNN)
IntegerConditionalRowLSTM = conditional_network(intlstm.IntegerRowLSTM)
IntegerConditionalDiagonalBiLSTM = conditional_network(intlstm.IntegerDiagonalBiLSTM)
BoundConditionalPixelCNN = IntegerConditionalPixelCNN.bound
BoundConditionalRowLSTM = IntegerConditionalRowLSTM.bound
BoundConditionalDiagonalBiLSTM = IntegerConditionalDiagonalBiLSTM.bound
