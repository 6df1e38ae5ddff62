"""The interface between the codec and an integer network: all that compress and decompress may use.

pixzip.codec drives any model file's network through these names only, whatever its architecture
(pixzip.registry's records): a single-scale `Network` (the integer PixelCNN, Row LSTM, Diagonal BiLSTM,
and their conditional versions) or a `MultiScaleNetwork` of two stages. For each chunk of tiles the codec
binds the network to a layout (`Network.bind`), giving a `Bound` network with buffers over the layout's
positions. The encoder, which knows every pixel, sets all of them (`set_pixels`), writes them channel by
channel with their predictions, runs `stream` and `head` once; the decoder, one wavefront step at a time,
calls `prepare_step`, makes a `StepState` (`state`), and per pass `decode_pass`, reading the frequencies'
features from `StepState.head_output` and writing each decoded channel back (`write_pixels`).

Shapes: N positions (flat indices into the layout, int64), C image channels, F hidden features.
"""
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .intformat import PixelCNNConfig
from .schedule import Layout, Tile


@dataclass
class StepState:
    """The activations of one decoding step of N positions, zero where no channel group has written yet."""

    h: torch.Tensor  # (N, F) the residual stream: int8, or int16 for a 16-bit stream
    v: torch.Tensor  # (B, N, F) int8 each block's inner activation
    o: torch.Tensor  # (N, F) int8 the head's output, which pixzip.softmax takes to frequencies

    @property
    def head_output(self) -> torch.Tensor:
        """(N, F) int8 the head's output: channel c's frequencies read its c-th F / C features."""
        return self.o

    def __getitem__(self, key: str) -> torch.Tensor:
        """The older spelling st["h"], st["v"], st["o"] (a dict before): kept while callers move on."""
        return getattr(self, key)


@runtime_checkable
class Bound(Protocol):
    """An integer network with buffers for one layout (a chunk of tiles) on one device."""

    split_steps: bool  # whether the decoder may split a step's positions into parts (pixzip.decoder.parts)

    def set_pixels(self, pos: torch.Tensor, values: torch.Tensor) -> None:
        """The encoder's known pixel values (N, C) at positions, all set before any prediction reads them."""

    def medians(self, pos: torch.Tensor) -> torch.Tensor:
        """(N, C) MED predictions at positions from their causal neighbours."""

    def prediction(self, g: int, pos: torch.Tensor, medians: torch.Tensor) -> torch.Tensor:
        """(N,) int32 prediction of channel g; channels before g must be known at pos already."""

    def write_pixels(self, g: int, pos: torch.Tensor, values: torch.Tensor, pred: torch.Tensor) -> None:
        """Record known values (N,) of channel g at positions, with their predictions (N,)."""

    def stream(self, pos: torch.Tensor, batch: int) -> torch.Tensor:
        """The encoder's pass over all positions (N,) of the layout -> (N, F) the stream after the last block."""

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """(n, F) stream -> (n, F) int8 head output (the encoder's, for all channel groups)."""

    def prepare_step(self, pos: torch.Tensor) -> None:
        """Called by the decoder before each step's passes."""

    def state(self, n: int) -> StepState:
        """Fresh activations for one decoding step of n positions."""

    def decode_pass(self, g: int, pos: torch.Tensor, st: StepState, with_head: bool) -> None:
        """The decoder's pass g (computing the features of channels Network.passes[g]) at a step's positions;
        with_head, their head output into st.head_output."""


@runtime_checkable
class ConditionalBound(Bound, Protocol):
    """A multi-scale model's full stage bound to a layout: conditioned on the tiles' small images."""

    def condition(self, chunk: list[Tile], small: np.ndarray) -> None:
        """Condition on the small images of a chunk's tiles, from the mosaic `small` (H_s, W_s, C) uint8."""


@runtime_checkable
class Network(Protocol):
    """A single-scale integer network, built from a model file's arrays."""

    config: PixelCNNConfig
    reach: int  # how far (pixels) a position's receptive field reaches to the left, right and above: Layout's pad
    passes: list[list[int]]  # the image channels each decoder pass decodes: [[0], [1], [2]] or [[0, 1, 2]]
    out_weight: np.ndarray  # (C, F / C, 256) float32 holding integers: the output layer, fused with the softmax
    out_bias: np.ndarray  # (C, 256) float32 holding integers
    logit_shift: int  # logits are integers in units of 2^-logit_shift nats
    table: np.ndarray  # the exp table, int32 (pixzip.softmax)

    def schedule_slope(self, tile: int) -> int:
        """The decoder's wavefront slope (pixzip.schedule) for tiles of this size."""

    def bind(self, layout: Layout, device: torch.device, decoder: bool) -> Bound:
        """Buffers for one layout; decoder: keep every block's (the decoder's positions sit at every depth)."""


@runtime_checkable
class MultiScaleNetwork(Protocol):
    """A multi-scale model: the tiles' small images coded first by `small`, then the rest by `full`."""

    config: PixelCNNConfig
    small: "Network | MultiScaleNetwork"
    full: Network  # its bind gives a ConditionalBound
