"""Entropy coding with constriction: (symbols, integer frequencies) in, bytes out. No torch here.

Frequencies are integers f_i >= 0 summing to 2^24 - 256 per symbol; passed as float32 (exact below 2^24) to
constriction's Categorical with perfect=False, which then gives symbol i exactly (f_i + 1) / 2^24
(design.md section 2). The float dtype and `perfect` change the stream: both are part of the format.
A range coder (FIFO) codes symbols in the order the decoder needs them.

Encoder and Decoder are the coders of format versions 1 to 3: the network's distributions coded as they
are. pixzip.adaptive's Encoder and Decoder (versions 4 on) have the same methods and refine them first.
"""
import constriction
import numpy as np

_MODEL = constriction.stream.model.Categorical(perfect=False)
PRECISION = 24
# Bits a valid stream can still hold once the decoder has read its last word: the range decoder's state is
# 64 bits (measured on valid streams: at most 11). Past 16 times that, the payload is exhausted and what
# comes out is noise: a header that claims more pixels than its payload holds is refused right there,
# instead of after decoding a huge image for its checksum to fail.
MAX_BITS_AFTER_END = 1024


def symbol_bits(symbols: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """-log2 p(symbol) for each symbol: what an ideal coder spends with these frequencies."""
    f = freqs[np.arange(len(symbols)), symbols].astype(np.float64)
    return PRECISION - np.log2(f + 1.0)


# 8-bit values coded with a uniform table (each tile's sharpness)
_UNIFORM = np.full(256, (2**PRECISION - 256) // 256, dtype=np.float32)


class Encoder:
    def __init__(self):
        self._coder = constriction.stream.queue.RangeEncoder()

    def begin(self, img: np.ndarray) -> None:
        """A stage of the image starts (nothing to learn here; see pixzip.adaptive)."""

    def push(self, symbols: np.ndarray, freqs: np.ndarray, where=None, trace: list | None = None) -> np.ndarray:
        """symbols (N,) in 0..255, freqs (N, 256) integer frequencies -> each one's cost in bits (N,).
        where (pixzip.adaptive.Where) is not needed here; trace receives freqs."""
        if len(symbols):
            self._coder.encode(np.asarray(symbols, dtype=np.int32), _MODEL, np.asarray(freqs, dtype=np.float32))
        if trace is not None:
            trace.append(freqs)
        return symbol_bits(symbols, freqs)

    def push_raw(self, values: np.ndarray, nbits: int = 8) -> None:
        """8-bit values at 8 bits each."""
        assert nbits == 8
        self.push(np.asarray(values).reshape(-1), np.tile(_UNIFORM, (np.size(values), 1)))

    def finish(self) -> bytes:
        return self._coder.get_compressed().astype("<u4").tobytes()


class Decoder:
    def __init__(self, payload: bytes):
        if len(payload) % 4:
            raise ValueError("payload length is not a whole number of 32-bit words")
        self._coder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        self._bits_after_end = 0.0

    def begin(self, out: np.ndarray) -> None:
        """A stage of the image starts."""

    def pop_raw(self, count: int, nbits: int = 8) -> np.ndarray:
        """count 8-bit values coded by Encoder.push_raw."""
        assert nbits == 8
        return self.pop(np.tile(_UNIFORM, (count, 1)))

    def pop(self, freqs: np.ndarray, where=None, trace: list | None = None) -> np.ndarray:
        """Decode len(freqs) symbols, each with its (256,) frequencies; returns (N,) int64. ValueError when
        the payload is invalid, or ran out MAX_BITS_AFTER_END bits ago. trace receives freqs."""
        if trace is not None:
            trace.append(freqs)
        if len(freqs) == 0:
            return np.zeros(0, dtype=np.int64)
        exhausted = self._coder.maybe_exhausted()
        try:
            symbols = np.asarray(self._coder.decode(_MODEL, np.asarray(freqs, dtype=np.float32)), dtype=np.int64)
        except (AssertionError, ValueError, RuntimeError) as e:  # constriction's word for invalid data
            raise ValueError(f"invalid compressed data: {e}") from None
        if exhausted:
            self._bits_after_end += float(symbol_bits(symbols, freqs).sum())
            if self._bits_after_end > MAX_BITS_AFTER_END:
                raise ValueError("the payload ended long before the image did")
        return symbols
