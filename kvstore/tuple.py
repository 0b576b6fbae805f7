"""The tuple layer: order-preserving encoding of Python tuples as byte keys.

``pack`` turns a tuple of ``None``, ``bytes``, ``str``, ``int`` (any size up to 255 bytes of
magnitude), ``float``, ``bool``, ``uuid.UUID``, :class:`SingleFloat` and nested tuples into
bytes whose unsigned byte order is the order of the tuples; ``unpack`` reverses it.  The type
codes and byte layout are exactly those of the FoundationDB tuple layer (``design/tuple.md``
in the FoundationDB repository), so keys are interchangeable with FoundationDB's bindings:

==========  ===================================================================
code        element
==========  ===================================================================
``0x00``    ``None`` (``0x00 0xff`` inside a nested tuple)
``0x01``    ``bytes``: ``0x00`` escaped as ``0x00 0xff``, terminated by ``0x00``
``0x02``    ``str``: its UTF-8, escaped and terminated like ``bytes``
``0x05``    nested tuple: its elements, then ``0x00``
``0x0b``    negative int of 9..255 bytes: length byte ``^ 0xff``, one's complement
``0x0c``    negative int of 8..1 bytes (``0x13``), big-endian one's complement
``0x14``    zero
``0x15``    positive int of 1..8 bytes (``0x1c``), big-endian
``0x1d``    positive int of 9..255 bytes: length byte, big-endian
``0x20``    :class:`SingleFloat` (IEEE 754 binary32, sign-adjusted)
``0x21``    ``float`` (IEEE 754 binary64, sign-adjusted: negative numbers have every
            bit flipped, others only the sign bit)
``0x26``    ``False``
``0x27``    ``True``
``0x30``    ``uuid.UUID``: its 16 bytes
==========  ===================================================================

Order.  Elements compare first by type code (``None`` < bytes < str < tuple < int <
SingleFloat < float < bool < UUID), then by value; a tuple sorts before its extensions.  So for
tuples whose elements have the same types position by position, ``pack(a) < pack(b)`` exactly
when ``a < b`` -- except that floats use the IEEE total order, in which ``-0.0 < 0.0`` and NaNs
sort at the ends by sign and payload.

>>> pack(("users", 42))
b'\\x02users\\x00\\x15*'
>>> unpack(b'\\x02users\\x00\\x15*')
('users', 42)
>>> r = range(("users",))
>>> r.contains(pack(("users", 42))), r.contains(pack(("users",)))
(True, False)
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

from kvstore.errors import CorruptData
from kvstore.ranges import KeyRange
from kvstore.validate import check_int

__all__ = ["MAX_DEPTH", "SingleFloat", "compare", "pack", "range", "unpack"]

#: The deepest nesting of tuples :func:`pack` writes and :func:`unpack` reads: the outermost
#: tuple is depth 0, so ``((),)`` nests to depth 1.  Deeper input is refused by both -- by
#: ``unpack`` as soon as the limit is passed, so hostile input costs bounded time and memory.
MAX_DEPTH = 256

#: ``int`` magnitudes below this fit the fixed-size integer codes ``0x0c``..``0x1c``.
_FIXED_INT_LIMIT = 1 << 64
_DOUBLE = struct.Struct(">d")
_SINGLE = struct.Struct(">f")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_SIGN64 = 1 << 63
_SIGN32 = 1 << 31
_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1
_BYTES_LIKE = (bytes, bytearray, memoryview)


class SingleFloat:
    """A 32-bit IEEE float, packed with type code ``0x20`` (a Python ``float`` packs as ``0x21``).

    Use it for keys written as single-precision floats by another FoundationDB binding, or to
    save four bytes per key.  The value is rounded to the nearest binary32 (out-of-range values
    become infinities).  Instances are immutable and hashable; equality and ordering follow the
    IEEE total order that the packed bytes have (``SingleFloat(-0.0) < SingleFloat(0.0)``, and a
    NaN equals a NaN with the same bits), so they round-trip through ``pack``/``unpack`` bit for
    bit.

    >>> SingleFloat(0.1)
    SingleFloat(0.10000000149011612)
    >>> unpack(pack((SingleFloat(1.5),)))
    (SingleFloat(1.5),)
    """

    __slots__ = ("_bits", "value")

    value: float
    _bits: int  # the binary32 bit pattern, as an unsigned int

    def __init__(self, value: float | int) -> None:
        if isinstance(value, SingleFloat):
            self._set_bits(value._bits)
            return
        if isinstance(value, bool) or not isinstance(value, (float, int)):
            raise TypeError(f"SingleFloat needs a float or int, not {type(value).__name__}")
        try:
            x = float(value)
        except OverflowError:  # an int beyond even binary64's range
            x = float("inf") if value > 0 else float("-inf")
        try:
            raw = _SINGLE.pack(x)
        except OverflowError:  # finite but beyond binary32's range: IEEE rounds to infinity
            raw = _SINGLE.pack(float("inf") if x > 0 else float("-inf"))
        self._set_bits(_U32.unpack(raw)[0])

    @classmethod
    def from_bits(cls, bits: int) -> SingleFloat:
        """The float with this binary32 bit pattern (an unsigned 32-bit int); keeps NaN payloads."""
        if not 0 <= bits <= _MASK32:
            raise ValueError(f"bits {bits} is not an unsigned 32-bit integer")
        f = object.__new__(cls)
        f._set_bits(bits)
        return f

    def _set_bits(self, bits: int) -> None:
        object.__setattr__(self, "_bits", bits)
        object.__setattr__(self, "value", _SINGLE.unpack(_U32.pack(bits))[0])

    @property
    def bits(self) -> int:
        """The binary32 bit pattern as an unsigned 32-bit int."""
        return self._bits

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SingleFloat is immutable")

    def _order(self) -> int:
        # The packed bytes' order: negative numbers flip every bit, others the sign bit.
        b = self._bits
        return b ^ _MASK32 if b & _SIGN32 else b ^ _SIGN32

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SingleFloat):
            return NotImplemented
        return self._bits == other._bits

    def __hash__(self) -> int:
        return hash((SingleFloat, self._bits))

    def __lt__(self, other: SingleFloat) -> bool:
        if not isinstance(other, SingleFloat):
            return NotImplemented
        return self._order() < other._order()

    def __le__(self, other: SingleFloat) -> bool:
        if not isinstance(other, SingleFloat):
            return NotImplemented
        return self._order() <= other._order()

    def __gt__(self, other: SingleFloat) -> bool:
        if not isinstance(other, SingleFloat):
            return NotImplemented
        return self._order() > other._order()

    def __ge__(self, other: SingleFloat) -> bool:
        if not isinstance(other, SingleFloat):
            return NotImplemented
        return self._order() >= other._order()

    def __float__(self) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"SingleFloat({self.value!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (SingleFloat.from_bits, (self._bits,))


# -- encoding ------------------------------------------------------------------------------


def _encode_int(v: int) -> bytes:
    if v >= 0:
        if v < _FIXED_INT_LIMIT:
            n = (v.bit_length() + 7) >> 3
            # Type code and magnitude in one to_bytes call (PERFORMANCE: tuple pack of ints).
            return ((0x14 + n) << (n << 3) | v).to_bytes(n + 1, "big")
        n = (v.bit_length() + 7) >> 3
        if n > 255:
            raise ValueError(f"int needs {n} bytes; the tuple layer's limit is 255")
        return bytes((0x1D, n)) + v.to_bytes(n, "big")
    n = (v.bit_length() + 7) >> 3  # bit_length() is that of abs(v)
    if v > -_FIXED_INT_LIMIT:
        return ((0x14 - n) << (n << 3) | (v + (1 << (n << 3)) - 1)).to_bytes(n + 1, "big")
    if n > 255:
        raise ValueError(f"int needs {n} bytes; the tuple layer's limit is 255")
    return bytes((0x0B, n ^ 0xFF)) + (v + (1 << (n << 3)) - 1).to_bytes(n, "big")


def _encode_double(f: float) -> bytes:
    bits: int = _U64.unpack(_DOUBLE.pack(f))[0]
    bits = bits ^ _MASK64 if bits & _SIGN64 else bits ^ _SIGN64
    return (0x21 << 64 | bits).to_bytes(9, "big")


def _encode_str(s: str) -> bytes:
    try:
        raw = s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"str element cannot be encoded as UTF-8: {e.reason}") from None
    return b"\x02" + raw.replace(b"\x00", b"\x00\xff") + b"\x00"


def _encode(v: Any, out: list[bytes], nested: int) -> None:
    """Append the encoding of one element ``v`` to ``out``; ``nested`` is its depth (0: top)."""
    t = type(v)
    # Exact-type tests first: the common key elements, in order of how often keys hold them.
    if t is str:
        out.append(_encode_str(v))
    elif t is int:
        out.append(_encode_int(v))
    elif t is bytes:
        out.append(b"\x01" + v.replace(b"\x00", b"\x00\xff") + b"\x00")
    elif v is None:
        out.append(b"\x00\xff" if nested else b"\x00")
    elif t is tuple or t is list:
        if nested >= MAX_DEPTH:
            raise ValueError(f"tuple is nested too deeply to pack (the limit is {MAX_DEPTH})")
        out.append(b"\x05")
        for item in v:
            _encode(item, out, nested + 1)
        out.append(b"\x00")
    elif t is bool:
        out.append(b"\x27" if v else b"\x26")
    elif t is float:
        out.append(_encode_double(v))
    elif t is uuid.UUID:
        out.append(b"\x30" + v.bytes)
    elif t is SingleFloat:
        out.append((0x20 << 32 | v._order()).to_bytes(5, "big"))
    # Subclasses (IntEnum, str enums, bytearray, ...) pack as their base type.
    elif isinstance(v, bool):
        out.append(b"\x27" if v else b"\x26")
    elif isinstance(v, int):
        out.append(_encode_int(int(v)))
    elif isinstance(v, str):
        out.append(_encode_str(str(v)))
    elif isinstance(v, _BYTES_LIKE):
        out.append(b"\x01" + bytes(v).replace(b"\x00", b"\x00\xff") + b"\x00")
    elif isinstance(v, float):
        out.append(_encode_double(float(v)))
    elif isinstance(v, uuid.UUID):
        out.append(b"\x30" + v.bytes)
    elif isinstance(v, (tuple, list)):
        _encode(tuple(v), out, nested)
    else:
        raise TypeError(f"the tuple layer cannot pack an element of type {t.__name__}")


def pack(t: tuple[Any, ...], prefix: bytes = b"") -> bytes:
    """Encode the tuple ``t`` as bytes, after ``prefix``.

    Elements may be ``None``, ``bytes`` (or any bytes-like), ``str``, ``int``, ``float``,
    :class:`SingleFloat`, ``bool``, ``uuid.UUID`` and nested tuples (or lists, which pack as
    tuples).  Another element type raises ``TypeError`` naming it; an ``int`` of more than
    255 bytes, a ``str`` holding a lone surrogate or tuples nested more than
    :data:`MAX_DEPTH` deep raise ``ValueError``.

    >>> pack((b"foo\\x00bar",))
    b'\\x01foo\\x00\\xffbar\\x00'
    """
    if not isinstance(t, tuple):
        raise TypeError(f"pack() needs a tuple, not {type(t).__name__}")
    out: list[bytes] = [prefix] if prefix else []
    try:
        for v in t:
            _encode(v, out, 0)
    except RecursionError:
        raise ValueError("tuple is nested too deeply to pack") from None
    return b"".join(out)


# -- decoding ------------------------------------------------------------------------------


def _corrupt(what: str, pos: int) -> CorruptData:
    return CorruptData(f"malformed tuple: {what} at offset {pos}")


def _string_end(v: bytes, pos: int) -> int:
    """The offset of the ``0x00`` ending the escaped string that starts at ``pos``."""
    end = v.find(b"\x00", pos)
    while end >= 0 and v[end + 1 : end + 2] == b"\xff":
        end = v.find(b"\x00", end + 2)
    if end < 0:
        raise _corrupt("unterminated byte string", pos - 1)
    return end


def unpack(data: bytes, prefix_len: int = 0) -> tuple[Any, ...]:
    """Decode bytes made by :func:`pack` (after skipping ``prefix_len`` bytes) into a tuple.

    Byte strings come back as ``bytes``, lists as tuples, ``0x20`` floats as
    :class:`SingleFloat`.  Any input that is not a valid encoding -- truncated, unterminated,
    an unknown type code, invalid UTF-8, tuples nested deeper than :data:`MAX_DEPTH` (which
    ``pack`` never writes) -- raises :class:`kvstore.CorruptData`.  Integers in a
    longer form than ``pack`` writes (such as ``2**64 - 1`` as ``0x1d 0x08 ...``, which
    FoundationDB's Python binding writes) are accepted.

    >>> unpack(b"\\x05\\x01a\\x00\\x00\\xff\\x00\\x14")
    ((b'a', None), 0)
    """
    if type(data) is not bytes:
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(f"unpack() needs bytes, not {type(data).__name__}")
        data = bytes(data)
    v = data
    size = len(v)
    pos = check_int(prefix_len, "prefix_len")
    if pos > size or pos < 0:
        raise ValueError(f"prefix_len {prefix_len} is outside the {size}-byte data")
    items: list[Any] = []
    # Open nested tuples, outermost first: iterative, so hostile nesting cannot overflow
    # the interpreter's stack.
    stack: list[list[Any]] = []
    while pos < size:
        code = v[pos]
        pos += 1
        if code == 0x02:
            end = _string_end(v, pos)
            raw = v[pos:end]
            if b"\x00\xff" in raw:
                raw = raw.replace(b"\x00\xff", b"\x00")
            try:
                items.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise _corrupt("invalid UTF-8 in string", pos - 1) from None
            pos = end + 1
        elif 0x0C <= code <= 0x1C:
            if code >= 0x14:
                n = code - 0x14
                end = pos + n
                if end > size:
                    raise _corrupt("truncated integer", pos - 1)
                items.append(int.from_bytes(v[pos:end], "big"))
            else:
                n = 0x14 - code
                end = pos + n
                if end > size:
                    raise _corrupt("truncated integer", pos - 1)
                items.append(int.from_bytes(v[pos:end], "big") - (1 << (n << 3)) + 1)
            pos = end
        elif code == 0x01:
            end = _string_end(v, pos)
            raw = v[pos:end]
            items.append(raw.replace(b"\x00\xff", b"\x00") if b"\x00\xff" in raw else raw)
            pos = end + 1
        elif code == 0x00:
            if not stack:
                items.append(None)
            elif v[pos : pos + 1] == b"\xff":
                items.append(None)
                pos += 1
            else:
                done = tuple(items)
                items = stack.pop()
                items.append(done)
        elif code == 0x05:
            if len(stack) >= MAX_DEPTH:
                raise _corrupt(f"tuples nested deeper than {MAX_DEPTH} (MAX_DEPTH)", pos - 1)
            stack.append(items)
            items = []
        elif code == 0x21:
            end = pos + 8
            if end > size:
                raise _corrupt("truncated double", pos - 1)
            bits = int.from_bytes(v[pos:end], "big")
            bits = bits ^ _SIGN64 if bits & _SIGN64 else bits ^ _MASK64
            items.append(_DOUBLE.unpack(_U64.pack(bits))[0])
            pos = end
        elif code == 0x26 or code == 0x27:
            items.append(code == 0x27)
        elif code == 0x30:
            end = pos + 16
            if end > size:
                raise _corrupt("truncated UUID", pos - 1)
            items.append(uuid.UUID(bytes=v[pos:end]))
            pos = end
        elif code == 0x20:
            end = pos + 4
            if end > size:
                raise _corrupt("truncated float", pos - 1)
            bits = int.from_bytes(v[pos:end], "big")
            bits = bits ^ _SIGN32 if bits & _SIGN32 else bits ^ _MASK32
            items.append(SingleFloat.from_bits(bits))
            pos = end
        elif code == 0x1D or code == 0x0B:
            if pos >= size:
                raise _corrupt("truncated integer length", pos - 1)
            n = v[pos] if code == 0x1D else v[pos] ^ 0xFF
            end = pos + 1 + n
            if end > size:
                raise _corrupt("truncated integer", pos - 1)
            magnitude = int.from_bytes(v[pos + 1 : end], "big")
            items.append(magnitude if code == 0x1D else magnitude - (1 << (n << 3)) + 1)
            pos = end
        else:
            raise _corrupt(f"unknown type code 0x{code:02x}", pos - 1)
    if stack:
        raise CorruptData("malformed tuple: unterminated nested tuple")
    return tuple(items)


# -- ranges and comparison -----------------------------------------------------------------


def range(prefix: tuple[Any, ...] = ()) -> KeyRange:
    """The keys of every tuple that strictly extends ``prefix``: ``[p + 0x00, p + 0xff)``.

    ``p`` is ``pack(prefix)``.  Every element's encoding starts with a type code below ``0xff``,
    so a tuple's extensions all pack to ``p`` plus a byte in ``0x00..0xfe`` plus more, which
    this range holds; ``p`` itself (the tuple ``prefix``) is *not* in it, as in FoundationDB.
    For the prefix tuple and its extensions together use ``KeyRange.prefix(pack(prefix))``.
    A ``p`` longer than :data:`kvstore.MAX_KEY_SIZE` raises ``ValueError`` (no key could
    extend it).

    >>> range(("a",))
    KeyRange(b'\\x02a\\x00\\x00', b'\\x02a\\x00\\xff')
    """
    p = pack(prefix)
    return KeyRange(p + b"\x00", p + b"\xff")


def compare(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
    """``-1``, ``0`` or ``1`` as ``a`` sorts before, with or after ``b`` in the tuple order.

    This is the order of the packed bytes, so it is defined for any two packable tuples, even
    where Python's ``<`` is not (``("a",)`` vs ``(1,)``).
    """
    pa = pack(a)
    pb = pack(b)
    return (pa > pb) - (pa < pb)
