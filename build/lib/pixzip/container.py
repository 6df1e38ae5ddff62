"""The .pxz file: header + payload (docs/format.md specifies it byte by byte). Bytes only, no model."""
import struct
import zlib
from dataclasses import dataclass

MAGIC = b"\x89PXZ"
VERSION = 1
MODE_CODES = {"L": 1, "RGB": 3}
MODE_NAMES = {v: k for k, v in MODE_CODES.items()}
_FIXED = struct.Struct("<4sBBIIHHB")  # magic, version, mode, width, height, tile, tiles per chunk, name length
_TAIL = struct.Struct("<32s32sQ")  # weights sha256, pixel sha256, payload length
_CRC = struct.Struct("<I")


class FormatError(ValueError):
    """A file that is not a .pxz this version of pixzip can decode exactly."""


@dataclass(frozen=True)
class Header:
    mode: str  # "L" or "RGB"
    width: int
    height: int
    tile: int  # tile side in pixels
    chunk: int  # tiles coded together (fixes the symbol order)
    model: str  # model name
    weights_sha256: bytes  # 32 bytes
    pixels_sha256: bytes  # 32 bytes, of the decoded pixels (pixzip.image.checksum)
    payload_length: int = 0

    def pack(self) -> bytes:
        name = self.model.encode("utf-8")
        if not 0 < len(name) < 256:
            raise ValueError("model name must be 1 to 255 bytes")
        head = _FIXED.pack(MAGIC, VERSION, MODE_CODES[self.mode], self.width, self.height, self.tile, self.chunk,
                           len(name)) + name + _TAIL.pack(self.weights_sha256, self.pixels_sha256, self.payload_length)
        return head + _CRC.pack(zlib.crc32(head))


def pack(header: Header, payload: bytes) -> bytes:
    h = Header(**{**header.__dict__, "payload_length": len(payload)})
    return h.pack() + payload


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Parse and validate a whole .pxz file; FormatError with a one-line reason on anything wrong."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError("not a pixzip file (bad magic bytes)")
    if len(data) < _FIXED.size:
        raise FormatError("truncated file (incomplete header)")
    magic, version, mode, width, height, tile, chunk, name_len = _FIXED.unpack_from(data)
    if version != VERSION:
        raise FormatError(f"unsupported format version {version}: this pixzip reads version {VERSION}; "
                          f"{'use a newer pixzip' if version > VERSION else 'the file is corrupted'}")
    end = _FIXED.size + name_len + _TAIL.size
    if len(data) < end + _CRC.size:
        raise FormatError("truncated file (incomplete header)")
    (crc,) = _CRC.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise FormatError("corrupted header (checksum mismatch)")
    if mode not in MODE_NAMES or width == 0 or height == 0 or tile == 0 or chunk == 0:
        raise FormatError("corrupted header (invalid geometry or mode)")
    try:
        name = data[_FIXED.size : _FIXED.size + name_len].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("corrupted header (model name)") from None
    weights, pixels, length = _TAIL.unpack_from(data, _FIXED.size + name_len)
    payload = data[end + _CRC.size :]
    if len(payload) < length:
        raise FormatError(f"truncated file ({len(payload)} of {length} payload bytes)")
    if len(payload) > length:
        raise FormatError(f"{len(payload) - length} unexpected bytes after the payload")
    return Header(MODE_NAMES[mode], width, height, tile, chunk, name, weights, pixels, length), payload
