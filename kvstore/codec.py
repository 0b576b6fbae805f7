"""Binary serialization primitives shared by :class:`~kvstore.KeyRanges`, ``Reads`` and ``Writes``.

Every serialized value is one *frame*::

    MAGIC (4 bytes "KVST") | version (1 byte) | kind (1 byte) | body | CRC32 (4 bytes, big-endian)

The CRC covers everything before it.  Inside the body, integers are unsigned LEB128 varints
and sorted key lists are prefix-compressed: each key is written as the length of the prefix it
shares with the key before it, the length of the rest, and the rest.  docs/serialization.md
describes every byte.

Decoding trusts nothing: :class:`Reader` checks every length against the bytes that remain
*before* it slices or allocates, so a hostile length cannot make it use memory, and every
problem it finds raises :class:`~kvstore.CorruptData` saying what was wrong and where.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from kvstore.errors import CorruptData
from kvstore.keys import MAX_KEY_SIZE

__all__ = [
    "KIND_KEY_RANGES",
    "KIND_NAMES",
    "KIND_READS",
    "KIND_WRITES",
    "MAGIC",
    "VERSION",
    "Reader",
    "encode_varint",
    "frame",
    "write_key_bytes_pairs",
    "write_key_int_pairs",
    "write_keys",
    "write_ranges",
]

#: The first four bytes of every serialized kvstore value.
MAGIC = b"KVST"
#: The format version this code writes and the only one it reads.
VERSION = 1

#: Kind byte of a serialized :class:`~kvstore.KeyRanges`.
KIND_KEY_RANGES = 1
#: Kind byte of a serialized :class:`~kvstore.Reads`.
KIND_READS = 2
#: Kind byte of a serialized :class:`~kvstore.Writes`.
KIND_WRITES = 3

#: Human names of the kinds, for error messages.
KIND_NAMES = {KIND_KEY_RANGES: "KeyRanges", KIND_READS: "Reads", KIND_WRITES: "Writes"}

_HEADER_SIZE = len(MAGIC) + 2
_CRC_SIZE = 4
_U64_LIMIT = 1 << 64
#: The longest varint: ten 7-bit groups hold 64 bits.
_MAX_VARINT_BYTES = 10

# One-byte varints, prebuilt: almost every length in a body is below 128 (PERFORMANCE R9).
_SMALL = [bytes((i,)) for i in range(128)]


# -- writing ----------------------------------------------------------------------------------
def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer below 2**64 as an unsigned LEB128 varint."""
    if value < 128:
        if value < 0:
            raise ValueError(f"a varint cannot hold a negative number ({value})")
        return _SMALL[value]
    if value >= _U64_LIMIT:
        raise ValueError(f"a varint holds at most 64 bits; {value} is too large")
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(value: int) -> int:
    """Map a signed 64-bit integer to an unsigned one, small magnitudes to small numbers."""
    return (value << 1) ^ (value >> 63)


def unzigzag(value: int) -> int:
    """Invert :func:`zigzag`."""
    return (value >> 1) ^ -(value & 1)


def frame(kind: int, body: list[bytes]) -> bytes:
    """Wrap the body chunks in MAGIC, version, kind and a trailing CRC32."""
    data = b"".join([MAGIC, bytes((VERSION, kind)), *body])
    return data + zlib.crc32(data).to_bytes(4, "big")


def _shared_prefix(a: bytes, b: bytes) -> int:
    """The length of the longest common prefix of ``a`` and ``b``."""
    limit = min(len(a), len(b))
    n = 0
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def write_keys(out: list[bytes], keys: Iterable[bytes]) -> None:
    """Append strictly increasing ``keys``, prefix-compressed, to ``out`` (no count)."""
    small = _SMALL
    prev = b""
    for key in keys:
        # Shared prefix, inlined: a call per key costs more than the loop (PERFORMANCE R9).
        limit = min(len(prev), len(key))
        n = 0
        while n < limit and prev[n] == key[n]:
            n += 1
        rest = len(key) - n
        out.append(small[n] if n < 128 else encode_varint(n))
        out.append(small[rest] if rest < 128 else encode_varint(rest))
        out.append(key[n:])
        prev = key


def write_key_bytes_pairs(out: list[bytes], pairs: Iterable[tuple[bytes, bytes]]) -> None:
    """Append ``(key, value)`` pairs in strictly increasing key order (no count).

    Each pair is a prefix-compressed key followed by the value's length and the value.
    """
    small = _SMALL
    prev = b""
    for key, value in pairs:
        # The shared prefix, inlined as in write_keys (PERFORMANCE R9).
        limit = min(len(prev), len(key))
        n = 0
        while n < limit and prev[n] == key[n]:
            n += 1
        rest = len(key) - n
        size = len(value)
        out.append(small[n] if n < 128 else encode_varint(n))
        out.append(small[rest] if rest < 128 else encode_varint(rest))
        out.append(key[n:])
        out.append(small[size] if size < 128 else encode_varint(size))
        out.append(value)
        prev = key


def write_key_int_pairs(out: list[bytes], pairs: Iterable[tuple[bytes, int]]) -> None:
    """Append ``(key, signed 64-bit int)`` pairs in strictly increasing key order (no count).

    Each pair is a prefix-compressed key followed by the zigzag varint of the number.
    """
    prev = b""
    for key, amount in pairs:
        n = _shared_prefix(prev, key)
        out.append(encode_varint(n))
        out.append(encode_varint(len(key) - n))
        out.append(key[n:])
        out.append(encode_varint(zigzag(amount)))
        prev = key


def write_ranges(out: list[bytes], los: list[bytes], his: list[bytes | None]) -> None:
    """Append a canonical range list: sorted, disjoint, non-adjacent and non-empty.

    Written as the range count, a flag byte (1 when the last range is unbounded) and then
    every bound, which in canonical form strictly increase, as one prefix-compressed key list.
    """
    out.append(encode_varint(len(los)))
    unbounded = bool(his) and his[-1] is None
    out.append(b"\x01" if unbounded else b"\x00")
    bounds: list[bytes] = []
    for lo, hi in zip(los, his, strict=True):
        bounds.append(lo)
        if hi is not None:
            bounds.append(hi)
    write_keys(out, bounds)


# -- reading ----------------------------------------------------------------------------------
class Reader:
    """A bounds-checked cursor over the body of one frame.

    The constructor checks the frame (type, size, magic, version, kind, CRC); the methods read
    the body front to back and raise only :class:`~kvstore.CorruptData`.  Call
    :meth:`finish` at the end: bytes left over are an error too.
    """

    __slots__ = ("data", "end", "kind_name", "pos")

    data: bytes
    end: int
    kind_name: str
    pos: int

    def __init__(self, data: Any, kind: int) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        data = bytes(data)
        name = KIND_NAMES[kind]
        self.kind_name = name
        if len(data) < _HEADER_SIZE + _CRC_SIZE:
            raise CorruptData(
                f"serialized {name} is {len(data)} bytes; even an empty one is "
                f"{_HEADER_SIZE + _CRC_SIZE}"
            )
        if data[: len(MAGIC)] != MAGIC:
            raise CorruptData(
                f"data does not start with the kvstore magic {MAGIC!r} "
                f"(found {data[: len(MAGIC)]!r}): not a serialized {name}"
            )
        version = data[len(MAGIC)]
        if version != VERSION:
            raise CorruptData(
                f"serialized {name} has format version {version}; this kvstore reads "
                f"version {VERSION}"
            )
        found = data[len(MAGIC) + 1]
        if found != kind:
            what = KIND_NAMES.get(found, f"unknown kind {found}")
            raise CorruptData(f"data holds a serialized {what}, not a {name}")
        end = len(data) - _CRC_SIZE
        crc = int.from_bytes(data[end:], "big")
        if zlib.crc32(memoryview(data)[:end]) != crc:
            raise CorruptData(f"serialized {name} fails its CRC32 check (damaged or truncated)")
        self.data = data
        self.pos = _HEADER_SIZE
        self.end = end

    def _corrupt(self, what: str) -> CorruptData:
        return CorruptData(f"serialized {self.kind_name} is corrupt at byte {self.pos}: {what}")

    def remaining(self) -> int:
        """How many body bytes are left."""
        return self.end - self.pos

    def byte(self) -> int:
        """Read one byte."""
        pos = self.pos
        if pos >= self.end:
            raise self._corrupt("ends in the middle of a field")
        self.pos = pos + 1
        return self.data[pos]

    def varint(self) -> int:
        """Read an unsigned LEB128 varint (at most 64 bits, minimally encoded)."""
        data, pos, end = self.data, self.pos, self.end
        if pos < end and data[pos] < 0x80:
            self.pos = pos + 1
            return data[pos]
        value = 0
        shift = 0
        for i in range(_MAX_VARINT_BYTES):
            if pos >= end:
                raise self._corrupt("ends in the middle of a varint")
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                if b == 0 and i:
                    raise self._corrupt("varint has a redundant trailing zero byte")
                if value >= _U64_LIMIT:
                    raise self._corrupt("varint is larger than 64 bits")
                self.pos = pos
                return value
            shift += 7
        raise self._corrupt(f"varint is longer than {_MAX_VARINT_BYTES} bytes")

    def count(self, min_entry_size: int, what: str) -> int:
        """Read an entry count and check it fits: each entry takes ``min_entry_size`` bytes."""
        n = self.varint()
        if n * min_entry_size > self.end - self.pos:
            raise self._corrupt(
                f"claims {n} {what} but only {self.end - self.pos} bytes remain"
            )
        return n

    def take(self, size: int, what: str) -> bytes:
        """Read ``size`` bytes."""
        pos = self.pos
        if size > self.end - pos:
            raise self._corrupt(f"{what} is {size} bytes but only {self.end - pos} remain")
        self.pos = pos + size
        return self.data[pos : pos + size]

    def _key(self, prev: bytes, max_size: int, what: str) -> bytes:
        """Read one prefix-compressed key; ``prev`` is the key before it (``b""`` for the first)."""
        shared = self.varint()
        rest = self.varint()
        if shared > len(prev):
            raise self._corrupt(
                f"{what} shares {shared} bytes with a previous key of {len(prev)} bytes"
            )
        if shared + rest > max_size:
            raise self._corrupt(f"{what} is {shared + rest} bytes; the limit is {max_size}")
        return prev[:shared] + self.take(rest, what)

    def keys(self, count: int, max_size: int, what: str) -> list[bytes]:
        """Read ``count`` prefix-compressed, strictly increasing keys of at most ``max_size``."""
        if count * 2 > self.end - self.pos:
            raise self._corrupt(f"claims {count} {what}s but only {self.remaining()} bytes remain")
        out: list[bytes] = []
        prev = b""
        for i in range(count):
            key = self._key(prev, max_size, what)
            if i and key <= prev:
                raise self._corrupt(f"{what}s are not in strictly increasing order")
            out.append(key)
            prev = key
        return out

    def ranges(self) -> tuple[list[bytes], list[bytes | None]]:
        """Read a range list written by :func:`write_ranges`: ``(min keys, max keys)``."""
        n = self.count(2, "ranges")
        flag = self.byte()
        if flag > 1 or (flag and not n):
            raise self._corrupt(f"range flag byte is {flag}")
        bounds = self.keys(2 * n - flag, MAX_KEY_SIZE + 1, "range bound")
        los = bounds[0::2]
        his: list[bytes | None] = list(bounds[1::2])
        if flag:
            his.append(None)
        return los, his

    def key_bytes_pairs(self, count: int) -> tuple[list[bytes], list[bytes]]:
        """Read ``count`` (key, value) pairs as written by :func:`write_key_bytes_pairs`."""
        data, end = self.data, self.end
        pos = self.pos
        if count * 3 > end - pos:
            raise self._corrupt(f"claims {count} puts but only {end - pos} bytes remain")
        keys: list[bytes] = []
        values: list[bytes] = []
        prev = b""
        append_key, append_value = keys.append, values.append
        # The common case (all three lengths below 128) is read inline: PERFORMANCE R9.
        for i in range(count):
            if pos + 1 < end and data[pos] < 0x80 and data[pos + 1] < 0x80:
                shared = data[pos]
                rest = data[pos + 1]
                pos += 2
            else:
                self.pos = pos
                shared = self.varint()
                rest = self.varint()
                pos = self.pos
            if shared > len(prev) or shared + rest > MAX_KEY_SIZE or pos + rest > end:
                self.pos = pos
                self._key_error(shared, rest, prev, "put key")
            key = prev[:shared] + data[pos : pos + rest]
            pos += rest
            if i and key <= prev:
                self.pos = pos
                raise self._corrupt("put keys are not in strictly increasing order")
            if pos < end and data[pos] < 0x80:
                size = data[pos]
                pos += 1
            else:
                self.pos = pos
                size = self.varint()
                pos = self.pos
            if pos + size > end:
                self.pos = pos
                raise self._corrupt(f"value is {size} bytes but only {end - pos} remain")
            append_key(key)
            append_value(data[pos : pos + size])
            pos += size
            prev = key
        self.pos = pos
        return keys, values

    def _key_error(self, shared: int, rest: int, prev: bytes, what: str) -> None:
        if shared > len(prev):
            raise self._corrupt(
                f"{what} shares {shared} bytes with a previous key of {len(prev)} bytes"
            )
        if shared + rest > MAX_KEY_SIZE:
            raise self._corrupt(f"{what} is {shared + rest} bytes; the limit is {MAX_KEY_SIZE}")
        raise self._corrupt(f"{what} is {rest} bytes but only {self.remaining()} remain")

    def key_int_pairs(self, count: int) -> tuple[list[bytes], list[int]]:
        """Read ``count`` (key, int) pairs as written by :func:`write_key_int_pairs`."""
        if count * 3 > self.end - self.pos:
            raise self._corrupt(f"claims {count} adjusts but only {self.remaining()} bytes remain")
        keys: list[bytes] = []
        amounts: list[int] = []
        prev = b""
        for i in range(count):
            key = self._key(prev, MAX_KEY_SIZE, "adjust key")
            if i and key <= prev:
                raise self._corrupt("adjust keys are not in strictly increasing order")
            keys.append(key)
            amounts.append(unzigzag(self.varint()))
            prev = key
        return keys, amounts

    def finish(self) -> None:
        """Check that the whole body was read."""
        if self.pos != self.end:
            raise self._corrupt(f"{self.end - self.pos} unexpected bytes after the end of the data")
