"""The .pxz file: header + payloads (docs/format.md specifies it byte by byte). Bytes only, no model.

Version 7 (written) is version 3's layout with payloads coded by the adaptive stage (pixzip.adaptive: binary
decisions and an arithmetic coder of its own, not constriction); versions 6, 5 and 4 (written on request) the
same with the stage's earlier settings (version 6: no moved distributions, version 5: no LMS predictor either,
version 4: fewer contexts, no final mixer; see pixzip.adaptive.SETTINGS). Version 3 (written on request) holds any
number of coded planes and the image's metadata, and its payloads code each
tile's sharpness (pixzip.sharpness); version 2 (written on request) is the same without sharpness; version 1
(read only) held one L or RGB plane and no metadata.
"""
import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"\x89PXZ"
VERSION = 7
WRITABLE = (2, 3, 4, 5, 6, 7)
READABLE = (1, 2, 3, 4, 5, 6, 7)
MODE_CODES = {"L": 1, "RGB": 3, "1": 4, "LA": 5, "P": 6, "RGBA": 7, "I;16": 8, "LA;16": 9, "RGB;16": 10, "RGBA;16": 11}
MODE_NAMES = {v: k for k, v in MODE_CODES.items()}
PLANE_CODES = {"L": 1, "RGB": 3}
PLANE_NAMES = {v: k for k, v in PLANE_CODES.items()}
MAX_METADATA = 2**26  # 64 MiB: ICC profiles, EXIF and text are far smaller
_FIXED = struct.Struct("<4sBBIIHHB")  # magic, version, mode, width, height, tile, tiles per chunk, name length
_HASHES = struct.Struct("<32s32s")  # weights sha256, pixels sha256
_V1_LENGTH = struct.Struct("<Q")  # version 1: payload length
_PLANE = struct.Struct("<BQ")  # plane mode, payload length
_U8, _U32 = struct.Struct("<B"), struct.Struct("<I")


class FormatError(ValueError):
    """A file that is not a .pxz this version of pixzip can decode exactly."""


@dataclass(frozen=True)
class Header:
    mode: str  # the image's mode, a key of MODE_CODES
    width: int
    height: int
    tile: int  # tile side in pixels
    chunk: int  # tiles coded together (fixes the symbol order)
    model: str  # model name
    weights_sha256: bytes  # 32 bytes
    pixels_sha256: bytes  # 32 bytes, of all decoded planes' bytes in order (pixzip.image.checksum)
    planes: tuple[str, ...] = ()  # each coded plane's mode, "L" or "RGB", in coding order
    payload_lengths: tuple[int, ...] = ()  # bytes of each plane's payload
    metadata: dict[str, bytes] = field(default_factory=dict)  # ICC profile, EXIF, text, palette, ...
    version: int = VERSION

    def pack(self) -> bytes:
        name = self.model.encode("utf-8")
        if not 0 < len(name) < 256:
            raise ValueError("model name must be 1 to 255 bytes")
        if len(self.planes) != len(self.payload_lengths) or not 0 < len(self.planes) < 256:
            raise ValueError("one payload length per plane, 1 to 255 planes")
        if self.version not in WRITABLE:
            raise ValueError(f"pixzip writes format versions {WRITABLE}, not {self.version}")
        head = [_FIXED.pack(MAGIC, self.version, MODE_CODES[self.mode], self.width, self.height, self.tile, self.chunk,
                            len(name)), name, _HASHES.pack(self.weights_sha256, self.pixels_sha256),
                _U8.pack(len(self.planes))]
        head += [_PLANE.pack(PLANE_CODES[p], n) for p, n in zip(self.planes, self.payload_lengths)]
        meta = b"".join(_U8.pack(len(k.encode())) + k.encode() + _U32.pack(len(v)) + v
                        for k, v in sorted(self.metadata.items()))
        head += [_U32.pack(len(meta)), meta]
        data = b"".join(head)
        return data + _U32.pack(zlib.crc32(data))


def pack(header: Header, payloads: list[bytes]) -> bytes:
    h = Header(**{**header.__dict__, "payload_lengths": tuple(len(p) for p in payloads)})
    return h.pack() + b"".join(payloads)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise FormatError("truncated file (incomplete header)")
        self.at += n
        return self.data[self.at - n : self.at]

    def unpack(self, s: struct.Struct) -> tuple:
        return s.unpack(self.take(s.size))


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """Parse and validate a whole .pxz file (version 1 to 7) -> (header, one payload per plane);
    FormatError with a one-line reason on anything wrong."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError("not a pixzip file (bad magic bytes)")
    r = _Reader(data)
    magic, version, mode, width, height, tile, chunk, name_len = r.unpack(_FIXED)
    if version not in READABLE:
        raise FormatError(f"unsupported format version {version}: this pixzip reads versions "
                          f"{', '.join(map(str, READABLE))}; "
                          f"{'use a newer pixzip' if version > VERSION else 'the file is corrupted'}")
    name = r.take(name_len)
    weights, pixels = r.unpack(_HASHES)
    if version == 1:
        (length,) = r.unpack(_V1_LENGTH)
        plane_codes, lengths, meta = [mode], [length], b""
    else:
        (count,) = r.unpack(_U8)
        planes = [r.unpack(_PLANE) for _ in range(count)]
        plane_codes, lengths = [p for p, _ in planes], [n for _, n in planes]
        (meta_len,) = r.unpack(_U32)
        if meta_len > MAX_METADATA:
            raise FormatError("corrupted header (metadata length)")
        meta = r.take(meta_len)
    end = r.at
    (crc,) = r.unpack(_U32)
    if zlib.crc32(data[:end]) != crc:
        raise FormatError("corrupted header (checksum mismatch)")
    if (mode not in MODE_NAMES or (version == 1 and MODE_NAMES[mode] not in ("L", "RGB")) or width == 0
            or height == 0 or tile == 0 or chunk == 0 or not plane_codes
            or any(p not in PLANE_NAMES for p in plane_codes)):
        raise FormatError("corrupted header (invalid geometry, mode or planes)")
    try:
        model = name.decode("utf-8")
        metadata = _metadata(meta)
    except (UnicodeDecodeError, struct.error, FormatError):
        raise FormatError("corrupted header (model name or metadata)") from None
    body = data[r.at :]
    if len(body) < sum(lengths):
        raise FormatError(f"truncated file ({len(body)} of {sum(lengths)} payload bytes)")
    if len(body) > sum(lengths):
        raise FormatError(f"{len(body) - sum(lengths)} unexpected bytes after the payload")
    starts = [sum(lengths[:k]) for k in range(len(lengths))]
    payloads = [body[s : s + n] for s, n in zip(starts, lengths)]
    header = Header(MODE_NAMES[mode], width, height, tile, chunk, model, weights, pixels,
                    tuple(PLANE_NAMES[p] for p in plane_codes), tuple(lengths), metadata, version)
    return header, payloads


def _metadata(meta: bytes) -> dict[str, bytes]:
    r, out = _Reader(meta), {}
    while r.at < len(meta):
        (n,) = r.unpack(_U8)
        key = r.take(n).decode("utf-8")
        (m,) = r.unpack(_U32)
        out[key] = r.take(m)
    return out
