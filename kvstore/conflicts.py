"""Conflicts: why a transaction's reads are invalidated by another transaction's writes.

A :class:`~kvstore.Reads` checked against :class:`~kvstore.Mutations` reports each place where a
write touched something that was read: a put of a read key (:class:`ReadWriteConflict`), a
counter adjustment of a read key (:class:`ReadAdjustConflict`), or a removed range overlapping
a read range (:class:`ReadRemoveConflict`, one per overlap, holding the overlap itself).
They are frozen values, equal by value and hashable, so they can be compared in tests, kept in
sets and shown to users.

>>> str(ReadWriteConflict(b"\\x00a"))
"read/write conflict on key b'\\\\x00a'"
"""

from __future__ import annotations

import attrs

from kvstore.ranges import KeyRange

__all__ = ["Conflict", "ReadAdjustConflict", "ReadRemoveConflict", "ReadWriteConflict"]


@attrs.frozen
class Conflict:
    """Base class of every conflict: something a transaction read was changed by a write."""


@attrs.frozen
class ReadWriteConflict(Conflict):
    """A key that was read was later put."""

    key: bytes = attrs.field(validator=attrs.validators.instance_of(bytes))

    def __str__(self) -> str:
        return f"read/write conflict on key {self.key!r}"


@attrs.frozen
class ReadAdjustConflict(Conflict):
    """A key that was read was later adjusted as a counter."""

    key: bytes = attrs.field(validator=attrs.validators.instance_of(bytes))

    def __str__(self) -> str:
        return f"read/adjust conflict on key {self.key!r}"


@attrs.frozen
class ReadRemoveConflict(Conflict):
    """A removed range overlapped a read range; ``range`` is their intersection."""

    range: KeyRange = attrs.field(validator=attrs.validators.instance_of(KeyRange))

    def __str__(self) -> str:
        r = self.range
        if r.is_single_key():
            return f"read/remove conflict on key {r.min_key!r}"
        return f"read/remove conflict on range [{r.min_key!r}, {r.max_key!r})"
