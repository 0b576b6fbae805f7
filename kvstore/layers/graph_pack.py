"""The concept graph's hottest records, packed as :func:`kvstore.tuple.pack` packs them.

A reconciler writes a concept's key and record, and an association's record, for every entry
it applies; through ``pack`` each element costs a type dispatch and a call, which made packing
half of a batch's time (PERFORMANCE L2, L3p).  These build the same bytes directly for the
shapes the graph stores.  A record whose floats are not all non-negative (or ``-0.0``) goes
through ``pack`` itself, so every output is ``pack``'s by construction or by delegation;
tests/layers/test_graph_pack.py checks them against ``pack`` on arbitrary input.
"""

from __future__ import annotations

import struct
from typing import Final

from kvstore import tuple as tuple_layer

__all__ = ["pack_association", "pack_concept", "pack_concept_key"]

_THREE_DOUBLES: Final = struct.Struct(">ddd")
_LANE: Final = (1 << 64) - 1
# pack encodes a double as 0x21 and its IEEE bits, big-endian, with the sign bit set when
# the double is non-negative (negative ones have every bit flipped: left to pack).
_SIGNS: Final = 1 << 63 | 1 << 127 | 1 << 191
_CODES: Final = 0x21 << 208 | 0x21 << 136 | 0x21 << 64


def _three_doubles(a: float, b: float, c: float) -> bytes | None:
    """``pack((a, b, c))`` for three floats with their sign bits clear; else None."""
    raw = _THREE_DOUBLES.pack(a, b, c)
    if raw[0] & 0x80 or raw[8] & 0x80 or raw[16] & 0x80:
        return None
    x = int.from_bytes(raw, "big") ^ _SIGNS
    return (_CODES | (x >> 128) << 144 | (x >> 64 & _LANE) << 72 | x & _LANE).to_bytes(27, "big")


def _element(value: bytes) -> bytes:
    """``pack((value,))`` for ``bytes``."""
    return b"\x01" + value.replace(b"\x00", b"\x00\xff") + b"\x00"


def pack_concept_key(prefix: bytes, concept_id: bytes) -> bytes:
    """``pack((concept_id,), prefix)``."""
    return prefix + _element(concept_id)


def pack_concept(
    content: bytes, vector: bytes | None, strength: float, confidence: float, created: float
) -> bytes:
    """``pack((content, vector, strength, confidence, created))``; ``vector`` bytes or None."""
    floats = _three_doubles(strength, confidence, created)
    if floats is None:
        return tuple_layer.pack((content, vector, strength, confidence, created))
    return b"".join((_element(content), b"\x00" if vector is None else _element(vector), floats))


def pack_association(confidence: float, weight: float, created: float) -> bytes:
    """``pack((confidence, weight, created))``."""
    floats = _three_doubles(confidence, weight, created)
    if floats is None:
        return tuple_layer.pack((confidence, weight, created))
    return floats
