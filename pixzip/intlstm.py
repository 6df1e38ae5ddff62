"""The integer Row LSTM and Diagonal BiLSTM: pixzip.pixelrnn's quantization-aware arithmetic on exact
integers.

Each is the integer PixelCNN (pixzip.intnet) with each block's kxk layer replaced by LSTM recurrences
(`Recurrence`: one for the Row LSTM, two directions for the Diagonal BiLSTM), each step of which is:
  gate inputs  one int8 matmul of [relu(stream) at the row taps (0, -k//2 .. 0) ; h at the state taps
               (-1, -k//2 .. k//2)] -> int32, rescaled by multiply + shift to units of 1/GATE_STEP
  gates        sigmoid and tanh from the tables stored with the weights (units of 2^-15)
  cell, h      int64 products, rounded by shifts: c in units of 2^-12, h int8 in units of 1/127
So the encoder and the decoder, on any device, compute the same integers (docs/design.md, "Exactness").

Schedules. Layer b at (i, j) reads layer b's own h and c at the row above within k//2 columns to the right,
and the stream at (i, <= j): the PixelCNN's wavefront (pixzip.schedule) still holds, with every layer at
(i, j) computed at step j + slope i. The decoder runs it unchanged (`_decode_inner`). The encoder, which knows
every pixel, runs each LSTM layer one tile row at a time over all tiles of a chunk (`_encode_inner`): tile-size
sequential steps per layer, each over (tiles in chunk) x (tile width) positions. The Diagonal BiLSTM's
schedules are at BoundDiagonalBiLSTM (and docs/design.md, with the step counts).
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import kernels, modelcheck
from .intformat import ACT_MAX, GATE_MAX, gate_tables, input_mask
from .intnet import BoundNetwork, IntegerPixelCNN, Layer, export_arrays as pixelcnn_arrays, layer_names
from .schedule import Layout

if TYPE_CHECKING:  # export reads a float model; decoding never imports one
    from .pixelrnn import RowLSTM


def export_arrays(model: "RowLSTM") -> dict[str, np.ndarray]:
    """Integer arrays of a calibrated Row LSTM or Diagonal BiLSTM: the PixelCNN's stem, 1x1 layers and
    output; per block b and recurrence DIRECTION (lstm for the Row LSTM, l2r and r2l for the Diagonal
    BiLSTM) `DIRECTION{b}.input_weight` (4F, F, k_in), `.state_weight` (4F, F, k_state), `.bias`,
    `.multiplier`, `.shift`; and the gate tables."""
    arrays = pixelcnn_arrays(model, inner=False)
    s_h = model.stream_scale()
    with torch.no_grad():
        for b, layer in enumerate(model.inner):
            # A DiagonalBiLSTMLayer has its two directions; a Row LSTM's layer is its one recurrence.
            parts = {"l2r": layer.l2r, "r2l": layer.r2l} if hasattr(layer, "r2l") else {"lstm": layer}
            for direction, gates in parts.items():
                w_in, w_state, bias, m, shift = gates.integer_params(s_h)
                name = f"{direction}{b}"
                arrays[f"{name}.input_weight"] = w_in.long().cpu().numpy()
                arrays[f"{name}.state_weight"] = w_state.long().cpu().numpy()
                arrays[f"{name}.bias"] = bias.long().cpu().numpy()
                arrays[f"{name}.multiplier"] = m.cpu().numpy()
                arrays[f"{name}.shift"] = np.array(shift, dtype=np.int64)
    arrays["sigmoid_table"], arrays["tanh_table"] = gate_tables()
    return arrays


class IntegerRowLSTM(IntegerPixelCNN):
    """Integer inference of a Row LSTM, built from the arrays of a model file."""

    directions = ("lstm",)  # the recurrences of each block, named DIRECTION{b} in the arrays

    def __init__(self, config, arrays: dict[str, np.ndarray]):
        super().__init__(config, arrays)
        names = [f"{d}{b}" for d in self.directions for b in range(config.blocks)]
        modelcheck.check_exact(self.arrays, names, ("input_weight", "state_weight"))
        self.sigmoid_table = torch.from_numpy(self.arrays["sigmoid_table"])  # (2 GATE_MAX + 1,) int64
        self.tanh_table = torch.from_numpy(self.arrays["tanh_table"])
        if self.sigmoid_table.shape != (2 * GATE_MAX + 1,) or self.tanh_table.shape != (2 * GATE_MAX + 1,):
            raise ValueError("gate tables of the wrong size")

    def conv_layers(self) -> list[str]:
        return [name for name in layer_names(self.config) if not name.startswith("inner")]

    def input_weight(self, name: str) -> torch.Tensor:
        """(4F, F, k) integer input-to-state weight of recurrence `name` with its causal mask applied once
        more (as IntegerPixelCNN.masked_weight)."""
        w = torch.from_numpy(self.arrays[f"{name}.input_weight"])
        return w * input_mask(self.config.hidden, self.config.kernel, self.groups).long()



@dataclass
class Recurrence:
    """One LSTM layer (or one direction of it) laid out for gather + matmul: the gate inputs are
    layer.full/groups' weight times [relu of the stream at input_taps ; h at state_taps], the previous
    cell is at cell_tap; h and c are kept in hidden and cell (P, F) over the layout's positions."""

    layer: Layer
    input_taps: torch.Tensor
    state_taps: torch.Tensor
    cell_tap: int
    hidden: torch.Tensor  # int8
    cell: torch.Tensor  # int32


class BoundRowLSTM(BoundNetwork):
    """The integer Row LSTM with buffers for one layout on one device. Besides the PixelCNN's buffers
    (relu_h[b] is the relu of the stream entering LSTM layer b), each layer's h (P, F) int8 and c (P, F)
    int32 over the layout's positions (`Recurrence`). The decoder keeps them per layer; the encoder, which
    finishes a layer before the next, shares one pair.
    """

    compiled_subpass = False  # pixzip.subpass computes kxk layers, not these recurrences

    def __init__(self, net: IntegerRowLSTM, layout: Layout, device: torch.device, decoder: bool):
        super().__init__(net, layout, device, decoder)
        self.decoder = decoder
        f = net.config.hidden
        # Gate outputs are gate-major (i, f, o, g), F features each; group g's are its features of each gate.
        self.gate_cols = [torch.cat([q * f + torch.arange(c.start, c.stop) for q in range(4)]) for c in self.cols]
        self.sigmoid_table = net.sigmoid_table.to(device)
        self.tanh_table = net.tanh_table.to(device)
        self._shared: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._recurrences()

    def _recurrences(self) -> None:
        """self.lstm[b]: block b's recurrence."""
        r = self.net.config.kernel // 2
        self.lstm = [self._recurrence(f"lstm{b}", [(0, dx) for dx in range(-r, 1)],
                                      [(-1, dx) for dx in range(-r, r + 1)], (-1, 0))
                     for b in range(self.net.config.blocks)]

    def _recurrence(self, name: str, input_taps: list, state_taps: list, cell_tap: tuple) -> Recurrence:
        """Layer `name` reading relu(stream) at input_taps and its h at state_taps, (dy, dx) each, with the
        weight rows in that order, and its previous cell at cell_tap."""
        w_in = self.net.input_weight(name)  # (4F, F, taps)
        w_state = torch.from_numpy(self.net.arrays[f"{name}.state_weight"])  # (4F, F, taps)
        # Kernel taps 0 .. len(input_taps) - 1 are the input taps (the Row LSTM's right half is masked out).
        blocks = ([w_in[:, :, t].T for t in range(len(input_taps))]
                  + [w_state[:, :, t].T for t in range(len(state_taps))])
        layer = self._requant_layer(name, [], torch.cat(blocks, 0), self.gate_cols)
        direction = name.rstrip("0123456789")
        if self.decoder or direction not in self._shared:
            positions, f = self.layout.positions, self.net.config.hidden
            self._shared[direction] = (torch.zeros(positions, f, dtype=torch.int8, device=self.device),
                                       torch.zeros(positions, f, dtype=torch.int32, device=self.device))
        taps = lambda offsets: torch.tensor([self.layout.offset(*o) for o in offsets], device=self.device)
        return Recurrence(layer, taps(input_taps), taps(state_taps), self.layout.offset(*cell_tap),
                          *self._shared[direction])

    def _run(self, rec: Recurrence, b: int, pos: torch.Tensor, g: int | None) -> torch.Tensor:
        """A recurrence of block b at positions (N,), all features (g None) or group g's: reads the stream's
        relu and the recurrence's earlier h and c, writes h and c -> h (N, F or F / C) int8."""
        rq = rec.layer.full if g is None else rec.layer.groups[g]
        cols = slice(None) if g is None else self.cols[g]
        a = torch.cat([kernels.gather(self.relu_h[b], pos, rec.input_taps),
                       kernels.gather(rec.hidden, pos, rec.state_taps)], dim=1)  # (N, K) float32, int8 values
        c_prev = rec.cell[pos + rec.cell_tap, cols]
        h, c = kernels.lstm_cell(self._matmul(a, rq), rq.multiplier, rq.offset, rec.layer.shift, c_prev,
                                 self.sigmoid_table, self.tanh_table)
        rec.hidden[pos, cols] = h
        rec.cell[pos, cols] = c
        return h

    def _tile_coordinates(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row, column) within the tile of flat positions."""
        i = (pos // self.layout.cols) % self.layout.rows - self.layout.pad
        return i, pos % self.layout.cols - self.layout.pad

    def _in_order(self, pos: torch.Tensor, key: torch.Tensor, batch: int) -> list[torch.Tensor]:
        """Positions grouped by increasing key (each group in batches of at most `batch`): the sequential
        steps of a recurrence whose every dependency has a smaller key."""
        order = torch.argsort(key, stable=True)
        starts = torch.searchsorted(key[order], torch.arange(int(key.max()) + 2, device=pos.device)).tolist()
        return [pos[order[a:z][k : k + batch]] for a, z in zip(starts[:-1], starts[1:]) for k in range(0, z - a, batch)]

    def _encode_inner(self, b: int, pos: torch.Tensor, batch: int, v: torch.Tensor) -> None:
        """The encoder's LSTM layer b over all positions, one tile row at a time -> v (N, F) its h."""
        for p in self._in_order(pos, self._tile_coordinates(pos)[0], batch):
            self._run(self.lstm[b], b, p, None)
        v.copy_(self.lstm[b].hidden.index_select(0, pos))

    def _decode_inner(self, b: int, pos: torch.Tensor, g: int, v: torch.Tensor) -> None:
        v[:, self.cols[g]] = self._run(self.lstm[b], b, pos, g)


class IntegerDiagonalBiLSTM(IntegerRowLSTM):
    """Integer inference of a Diagonal BiLSTM: per block b the recurrences l2r{b} and r2l{b}."""

    directions = ("l2r", "r2l")

    def input_weight(self, name: str) -> torch.Tensor:
        w = torch.from_numpy(self.arrays[f"{name}.input_weight"])
        if name.startswith("r2l"):  # reads the row above only: no mask
            return w
        return w * input_mask(self.config.hidden, 1, self.groups).long()

    def schedule_slope(self, tile: int) -> int:
        """Raster order within a tile: pixel (i, 0) needs the right-to-left LSTM over all of row i - 1."""
        return max(tile, 1)



class BoundDiagonalBiLSTM(BoundRowLSTM):
    """The integer Diagonal BiLSTM on one layout. Block b's h at (i, j) is clamp(l2r(i, j) + r2l(i-1, j)).
    The encoder runs l2r one diagonal i + j at a time and r2l one anti-diagonal i + (size - 1 - j) at a
    time. The decoder runs l2r with the pixels (raster order within the tiles, all tiles of the chunk at
    once) and, when a row starts, r2l over the finished row above, right to left (`prepare_step`)."""

    split_steps = False  # prepare_step keeps the row's steps (all the chunk's tiles')

    def _recurrences(self) -> None:
        """self.lstm[b] and self.r2l[b]: block b's left-to-right and right-to-left recurrences."""
        blocks = range(self.net.config.blocks)
        self.lstm = [self._recurrence(f"l2r{b}", [(0, 0)], [(-1, 0), (0, -1)], (0, -1)) for b in blocks]
        self.r2l = [self._recurrence(f"r2l{b}", [(0, 0)], [(-1, 0), (0, 1)], (0, 1)) for b in blocks]
        self.up = self.layout.offset(-1, 0)
        self.row: list[torch.Tensor] = []  # the decoder's steps in the current row

    def _combine(self, b: int, pos: torch.Tensor, l2r: torch.Tensor, cols=slice(None)) -> torch.Tensor:
        """h = clamp(l2r + r2l one row up, -127, 127) (N, n) int8."""
        r2l = self.r2l[b].hidden[pos + self.up, cols]
        return (l2r.to(torch.int16) + r2l).clamp_(-ACT_MAX, ACT_MAX).to(torch.int8)

    def _encode_inner(self, b: int, pos: torch.Tensor, batch: int, v: torch.Tensor) -> None:
        i, j = self._tile_coordinates(pos)
        for p in self._in_order(pos, i + j, batch):
            self._run(self.lstm[b], b, p, None)
        for p in self._in_order(pos, i + (self.layout.size - 1 - j), batch):
            self._run(self.r2l[b], b, p, None)
        v.copy_(self._combine(b, pos, self.lstm[b].hidden.index_select(0, pos)))

    def _decode_inner(self, b: int, pos: torch.Tensor, g: int, v: torch.Tensor) -> None:
        v[:, self.cols[g]] = self._combine(b, pos, self._run(self.lstm[b], b, pos, g), self.cols[g])

    def prepare_step(self, pos: torch.Tensor) -> None:
        """Before a decoding step: when it starts a row, run the right-to-left LSTMs over the row above,
        which is finished (all its channels of all its pixels), right to left, every block."""
        if self._tile_coordinates(pos[:1])[1].item() == 0 and self.row:
            for b in range(self.net.config.blocks):
                for p in reversed(self.row):
                    self._run(self.r2l[b], b, p, None)
            self.row = []
        self.row.append(pos)


IntegerRowLSTM.bound = BoundRowLSTM
IntegerDiagonalBiLSTM.bound = BoundDiagonalBiLSTM
