"""The integer Row LSTM: pixzip.rowlstm's quantization-aware arithmetic on exact integers.

It is the integer PixelCNN (pixzip.intnet) with each block's kxk layer replaced by a Row LSTM layer:
  gate inputs  one int8 matmul of [relu(stream) at the row taps (0, -k//2 .. 0) ; h at the state taps
               (-1, -k//2 .. k//2)] -> int32, rescaled by multiply + shift to units of 1/GATE_STEP
  gates        sigmoid and tanh from the tables stored with the weights (units of 2^-15)
  cell, h      int64 products, rounded by shifts: c in units of 2^-12, h int8 in units of 1/127
So the encoder and the decoder, on any device, compute the same integers (docs/design.md, "Exactness").

Schedules. Layer b at (i, j) reads layer b's own h and c at the row above within k//2 columns to the right,
and the stream at (i, <= j): the PixelCNN's wavefront (pixzip.schedule) still holds, with every layer at
(i, j) computed at step j + slope i. The decoder runs it unchanged (`group_pass`). The encoder, which knows
every pixel, runs each LSTM layer one tile row at a time over all tiles of a chunk (`stream`): tile-size
sequential steps per layer, each over (tiles in chunk) x (tile width) positions.
"""
import numpy as np
import torch

from . import kernels
from .intnet import BoundNetwork, IntegerPixelCNN, Layer, export_arrays as conv_arrays, layer_names
from .rowlstm import CELL_BITS, CELL_MAX, GATE_BITS, GATE_MAX, GATE_STEP, RowLSTM, gate_tables, input_mask
from .pixelcnn import ACT_MAX
from .schedule import Layout

GATE_STEP_BITS = GATE_STEP.bit_length() - 1


def export_arrays(model: RowLSTM) -> dict[str, np.ndarray]:
    """Integer arrays of a calibrated Row LSTM: the PixelCNN's stem, 1x1 layers and output, and per LSTM
    layer b `lstm{b}.input_weight` (4F, F, k), `.state_weight` (4F, F, k), `.bias`, `.multiplier`, `.shift`;
    and the gate tables."""
    arrays = conv_arrays(model, inner=False)
    s_h = float(model.scales[0])
    with torch.no_grad():
        for b, layer in enumerate(model.inner):
            w_in, w_state, bias, m, shift = layer.integer_params(s_h)
            arrays[f"lstm{b}.input_weight"] = w_in.long().cpu().numpy()
            arrays[f"lstm{b}.state_weight"] = w_state.long().cpu().numpy()
            arrays[f"lstm{b}.bias"] = bias.long().cpu().numpy()
            arrays[f"lstm{b}.multiplier"] = m.cpu().numpy()
            arrays[f"lstm{b}.shift"] = np.array(shift, dtype=np.int64)
    arrays["sigmoid_table"], arrays["tanh_table"] = gate_tables()
    return arrays


class IntegerRowLSTM(IntegerPixelCNN):
    """Integer inference of a Row LSTM, built from the arrays of a model file."""

    def __init__(self, config, arrays: dict[str, np.ndarray]):
        super().__init__(config, arrays)
        self.lstm_layers = [f"lstm{b}" for b in range(config.blocks)]
        self._check_exact(self.lstm_layers, ("input_weight", "state_weight"))
        self.sigmoid_table = torch.from_numpy(self.arrays["sigmoid_table"])  # (2 GATE_MAX + 1,) int64
        self.tanh_table = torch.from_numpy(self.arrays["tanh_table"])
        if self.sigmoid_table.shape != (2 * GATE_MAX + 1,) or self.tanh_table.shape != (2 * GATE_MAX + 1,):
            raise ValueError("gate tables of the wrong size")

    def conv_layers(self) -> list[str]:
        return [name for name in layer_names(self.config) if not name.startswith("inner")]

    def input_weight(self, b: int) -> torch.Tensor:
        """(4F, F, k) integer input-to-state weight of layer b with its causal mask applied once more."""
        w = torch.from_numpy(self.arrays[f"lstm{b}.input_weight"])
        return w * input_mask(self.config.hidden, self.config.kernel, self.groups).long()

    def bind(self, layout: Layout, device: torch.device, decoder: bool) -> "BoundRowLSTM":
        return BoundRowLSTM(self, layout, device, decoder)


class BoundRowLSTM(BoundNetwork):
    """The integer Row LSTM with buffers for one layout on one device. Besides the PixelCNN's buffers
    (relu_h[b] is the relu of the stream entering LSTM layer b), flat over the layout's positions:
      hidden[b] (P, F) int8   layer b's h
      cell[b]   (P, F) int32  layer b's c
    The decoder keeps one of each per layer; the encoder, which finishes a layer before the next, shares one.
    """

    def __init__(self, net: IntegerRowLSTM, layout: Layout, device: torch.device, decoder: bool):
        super().__init__(net, layout, device, decoder)
        cfg = net.config
        f, r = cfg.hidden, cfg.kernel // 2
        count = cfg.blocks if decoder else 1
        self.hidden = [torch.zeros(layout.positions, f, dtype=torch.int8, device=device) for _ in range(count)]
        self.cell = [torch.zeros(layout.positions, f, dtype=torch.int32, device=device) for _ in range(count)]
        if not decoder:
            self.hidden, self.cell = self.hidden * cfg.blocks, self.cell * cfg.blocks
        self.input_taps = torch.tensor([layout.offset(0, dx) for dx in range(-r, 1)], device=device)
        self.state_taps = torch.tensor([layout.offset(-1, dx) for dx in range(-r, r + 1)], device=device)
        self.up = layout.offset(-1, 0)
        # Gate outputs are gate-major (i, f, o, g), F features each; group g's are its features of each gate.
        self.gate_cols = [torch.cat([q * f + torch.arange(c.start, c.stop) for q in range(4)]) for c in self.cols]
        self.lstm = [self._lstm_layer(b) for b in range(cfg.blocks)]
        self.sigmoid_table = net.sigmoid_table.to(device)
        self.tanh_table = net.tanh_table.to(device)

    def _lstm_layer(self, b: int) -> Layer:
        """Layer b's weight as one matrix ((r + 1) F + k F, 4F): the input taps' rows, then the state taps'."""
        w_in = self.net.input_weight(b)  # (4F, F, k)
        w_state = torch.from_numpy(self.net.arrays[f"lstm{b}.state_weight"])  # (4F, F, k)
        r = w_in.shape[2] // 2
        blocks = [w_in[:, :, t].T for t in range(r + 1)] + [w_state[:, :, t].T for t in range(w_state.shape[2])]
        return self._requant_layer(f"lstm{b}", [], torch.cat(blocks, 0), self.gate_cols)

    def _lstm(self, b: int, pos: torch.Tensor, g: int | None) -> torch.Tensor:
        """LSTM layer b at positions (N,) for all features (g None) or group g's: reads the stream's relu
        and the row above, writes h and c -> h (N, F or F / C) int8."""
        layer = self.lstm[b]
        rq = layer.full if g is None else layer.groups[g]
        cols = slice(None) if g is None else self.cols[g]
        a = torch.cat([kernels.gather(self.relu_h[b], pos, self.input_taps),
                       kernels.gather(self.hidden[b], pos, self.state_taps)], dim=1)  # (N, K) int8
        acc = self._matmul(a, rq.weight)  # (N, 4n) int32
        z = ((acc.long() * rq.multiplier + rq.offset) >> layer.shift).clamp_(-GATE_MAX, GATE_MAX) + GATE_MAX
        z = z.view(len(pos), 4, -1)  # table indices of the gate inputs (N, 4, n)
        i, f, o = (self.sigmoid_table[z[:, q]] for q in range(3))
        gg = self.tanh_table[z[:, 3]]
        c_up = self.cell[b][pos + self.up, cols].long()
        c = (((f * c_up + (1 << (GATE_BITS - 1))) >> GATE_BITS)
             + ((i * gg + (1 << (2 * GATE_BITS - CELL_BITS - 1))) >> (2 * GATE_BITS - CELL_BITS)))
        c = c.clamp_(-CELL_MAX, CELL_MAX)
        shift = CELL_BITS - GATE_STEP_BITS
        t = self.tanh_table[((c + (1 << (shift - 1))) >> shift).clamp_(-GATE_MAX, GATE_MAX) + GATE_MAX]
        h = ((o * t * ACT_MAX + (1 << (2 * GATE_BITS - 1))) >> (2 * GATE_BITS)).to(torch.int8)
        self.hidden[b][pos, cols] = h
        self.cell[b][pos, cols] = c.to(torch.int32)
        return h

    def stream(self, pos: torch.Tensor, batch: int) -> torch.Tensor:
        """The encoder's pass (see BoundNetwork.stream): each LSTM layer one tile row at a time over all
        tiles, the row above finished before the row below reads it."""
        cfg = self.net.config
        parts = [slice(a, a + batch) for a in range(0, len(pos), batch)]
        row = (pos // self.layout.cols) % self.layout.rows - self.layout.pad  # (N,) row within the tile
        order = torch.argsort(row, stable=True)
        starts = torch.searchsorted(row[order], torch.arange(int(row.max()) + 2, device=pos.device)).tolist()
        rows = [order[a:z] for a, z in zip(starts[:-1], starts[1:])]
        rows = [r[a : a + batch] for r in rows for a in range(0, len(r), batch)]
        h = torch.empty(len(pos), cfg.hidden, dtype=torch.int8, device=self.device)
        for sl in parts:
            self._apply("first", self._gather(self.a0, pos[sl], "first"), None, -ACT_MAX, ACT_MAX, out=h[sl])
        for b in range(cfg.blocks):
            for sl in parts:
                kernels.scatter_relu(h[sl], pos[sl], self.relu_h[b])
            for r in rows:
                self._lstm(b, pos[r], None)
            for sl in parts:
                v = self.hidden[b].index_select(0, pos[sl])
                self._apply(f"outer{b}", v, None, -ACT_MAX, ACT_MAX, residual=h[sl], out=h[sl])
        return h

    def group_pass(self, g: int, pos: torch.Tensor, st: dict) -> None:
        """The decoder's sub-pass for channel group g (see BoundNetwork.group_pass)."""
        cols = self.cols[g]
        h = st["h"]
        self._apply("first", self._gather(self.a0, pos, "first"), g, -ACT_MAX, ACT_MAX, out=h[:, cols])
        for b in range(self.net.config.blocks):
            kernels.scatter_relu(h[:, cols], pos, self.relu_h[b], cols.start)
            v = st["v"][b]
            v[:, cols] = self._lstm(b, pos, g)
            self._apply(f"outer{b}", v, g, -ACT_MAX, ACT_MAX, residual=h[:, cols], out=h[:, cols])
