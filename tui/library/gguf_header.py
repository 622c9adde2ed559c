"""Reading a GGUF file's header (its key/value metadata) without loading the model.

Stops at the end of the key/value section: the tensor infos and the weights are never read.
Big arrays (the vocabulary's tokens, scores, merges) are skipped, keeping only their length,
so a 262k-token vocabulary costs one pass over its string lengths, never a list of strings.
The ``gguf`` package's reader memory-maps the whole file and builds every array and tensor
view: fine for one file, slow for a library of a hundred.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_KEY_BYTES = 65_536
MAX_STRING_BYTES = 64 * 1024 * 1024
"""A single string value (a chat template is a few KB) larger than this marks a damaged file."""
MAX_KV_COUNT = 100_000
MAX_ARRAY_ITEMS = 1 << 28
KEPT_ARRAY_ITEMS = 64
"""Arrays up to this length are kept (e.g. per-layer head counts); longer ones keep only their length."""
READ_CHUNK = 1 << 20

# GGUF value types
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY = range(10)
_UINT64, _INT64, _FLOAT64 = 10, 11, 12
_SCALAR_FORMATS: dict[int, str] = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<?",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}
_U64 = struct.Struct("<Q")
_SCALAR_SIZES = {kind: struct.calcsize(fmt) for kind, fmt in _SCALAR_FORMATS.items()}

Value = int | float | bool | str | tuple["Value", ...]


class GGUFHeaderError(Exception):
    """The file is not a readable GGUF header; ``str(err)`` says why, for the user."""


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """A metadata array too long to keep: its element type and length."""

    item_type: int
    length: int


@dataclass(frozen=True)
class GGUFHeader:
    """A GGUF file's metadata: small values kept, long arrays as their length only."""

    version: int
    tensor_count: int
    values: dict[str, Value] = field(default_factory=dict)
    arrays: dict[str, ArrayInfo] = field(default_factory=dict)
    """Arrays longer than KEPT_ARRAY_ITEMS (e.g. ``tokenizer.ggml.tokens``)."""
    header_bytes: int = 0
    """How far into the file the key/value section ends."""

    def get_str(self, key: str) -> str | None:
        """A string value, or None."""
        value = self.values.get(key)
        return value if isinstance(value, str) else None

    def get_int(self, key: str) -> int | None:
        """An integer value (the first of a per-layer array), or None."""
        value = self.values.get(key)
        if isinstance(value, tuple) and value:
            value = max((v for v in value if isinstance(v, int) and not isinstance(v, bool)), default=None)
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value

    def array_length(self, key: str) -> int | None:
        """The length of an array value, kept or not."""
        if key in self.arrays:
            return self.arrays[key].length
        value = self.values.get(key)
        return len(value) if isinstance(value, tuple) else None


class _Reader:
    """Buffered little-endian reads with a clear error at the end of the file."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = size
        self.buf = b""
        self.pos = 0  # position of buf[0] in the file
        self.at = 0  # read position inside buf

    @property
    def offset(self) -> int:
        return self.pos + self.at

    def _fill(self, need: int) -> None:
        if self.at + need <= len(self.buf):
            return
        if self.offset + need > self.size:
            raise GGUFHeaderError(
                f"truncated: the header runs past the end of the file "
                f"(at byte {self.offset:,} of {self.size:,})"
            )
        rest = self.buf[self.at :]
        self.pos += self.at
        self.at = 0
        self.buf = rest + self.handle.read(max(READ_CHUNK, need - len(rest)))
        if len(self.buf) < need:
            raise GGUFHeaderError(f"truncated: could not read {need} bytes at byte {self.offset:,}")

    def take(self, n: int) -> bytes:
        self._fill(n)
        data = self.buf[self.at : self.at + n]
        self.at += n
        return data

    def scalar(self, kind: int) -> int | float | bool:
        fmt = _SCALAR_FORMATS[kind]
        size = _SCALAR_SIZES[kind]
        self._fill(size)
        (value,) = struct.unpack_from(fmt, self.buf, self.at)
        self.at += size
        result: int | float | bool = value
        return result

    def u32(self) -> int:
        return int(self.scalar(_UINT32))

    def u64(self) -> int:
        return int(self.scalar(_UINT64))

    def skip(self, n: int) -> None:
        if self.offset + n > self.size:
            raise GGUFHeaderError(
                f"truncated: an array runs past the end of the file "
                f"(at byte {self.offset:,} of {self.size:,})"
            )
        if self.at + n <= len(self.buf):
            self.at += n
            return
        target = self.offset + n
        self.handle.seek(target)
        self.pos, self.at, self.buf = target, 0, b""

    def string(self, limit: int = MAX_STRING_BYTES) -> str:
        length = self.u64()
        if length > limit:
            raise GGUFHeaderError(f"damaged: a string of {length:,} bytes at byte {self.offset:,}")
        return self.take(length).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` strings, reading only their lengths (the hot path for vocabularies)."""
        unpack = _U64.unpack_from
        while count:
            self._fill(8)
            buf, at = self.buf, self.at
            size = len(buf)
            last = size - 8
            while count and at <= last:
                (length,) = unpack(buf, at)
                following = at + 8 + length
                if following > size:
                    break
                at = following
                count -= 1
            self.at = at
            if count and at <= last:  # this string runs past the buffer
                (length,) = unpack(buf, at)
                if length > MAX_STRING_BYTES:
                    raise GGUFHeaderError(f"damaged: a string of {length:,} bytes at byte {self.offset:,}")
                self.at = at + 8
                self.skip(length)
                count -= 1


def _value(reader: _Reader, kind: int, key: str, arrays: dict[str, ArrayInfo]) -> Value | None:
    if kind in _SCALAR_FORMATS:
        return reader.scalar(kind)
    if kind == _STRING:
        return reader.string()
    if kind != _ARRAY:
        raise GGUFHeaderError(f"damaged: key {key!r} has unknown value type {kind}")
    item_type = reader.u32()
    length = reader.u64()
    if length > MAX_ARRAY_ITEMS:
        raise GGUFHeaderError(f"damaged: key {key!r} claims an array of {length:,} items")
    if length > KEPT_ARRAY_ITEMS:
        arrays[key] = ArrayInfo(item_type, length)
        if item_type == _STRING:
            reader.skip_strings(length)
        elif item_type in _SCALAR_SIZES:
            reader.skip(_SCALAR_SIZES[item_type] * length)
        else:
            raise GGUFHeaderError(f"damaged: key {key!r} is an array of unsupported type {item_type}")
        return None
    items: list[Value] = []
    for _ in range(length):
        item = _value(reader, item_type, key, arrays)
        if item is not None:
            items.append(item)
    return tuple(items)


def read_header(path: Path) -> GGUFHeader:
    """The metadata of the GGUF file at ``path``; raises GGUFHeaderError (or OSError) when it can't."""
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(0)
        if size == 0:
            raise GGUFHeaderError("empty file (0 bytes)")
        magic = handle.read(4)
        handle.seek(0)
        if magic != GGUF_MAGIC:
            raise GGUFHeaderError(f"not a GGUF file (it starts with {magic[:4]!r}, not b'GGUF')")
        reader = _Reader(handle, size)
        reader.skip(4)
        version = reader.u32()
        if version not in SUPPORTED_VERSIONS:
            raise GGUFHeaderError(f"GGUF version {version}, which this llama.cpp cannot read")
        tensor_count = reader.u64()
        kv_count = reader.u64()
        if kv_count > MAX_KV_COUNT:
            raise GGUFHeaderError(f"damaged: the header claims {kv_count:,} metadata keys")
        values: dict[str, Value] = {}
        arrays: dict[str, ArrayInfo] = {}
        for _ in range(kv_count):
            key = reader.string(MAX_KEY_BYTES)
            kind = reader.u32()
            value = _value(reader, kind, key, arrays)
            if value is not None:
                values[key] = value
        return GGUFHeader(version, tensor_count, values, arrays, reader.offset)
