"""Reads: the key ranges a view read from its base, and conflict checks against mutations.

Optimistic transactions commit only if nothing they read was changed by a commit made since
their snapshot: :meth:`Reads.is_conflict` answers that for one set of mutations,
:meth:`Reads.all_conflicts` says exactly where.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, repeat
from operator import itemgetter, le, ne
from typing import Any, ClassVar, cast

from kvstore.codec import KIND_READS
from kvstore.conflicts import Conflict, ReadAdjustConflict, ReadRemoveConflict, ReadWriteConflict
from kvstore.keys import MAX_KEY_SIZE
from kvstore.mutations import Mutations, Writes
from kvstore.ranges import KeyRange, KeyRanges, _intersection
from kvstore.sortedmap import SortedMap

__all__ = ["Reads"]


# Greater than every key and every range bound (at most MAX_KEY_SIZE + 1 bytes): stands in for
# an unbounded end so that ends compare as plain bytes.
_TOP = b"\xff" * (MAX_KEY_SIZE + 2)


def _ends(his: list[bytes | None]) -> list[bytes]:
    """The max keys with an unbounded last one replaced by :data:`_TOP`; still increasing."""
    if his[-1] is None:
        return [*cast("list[bytes]", his[:-1]), _TOP]
    return cast("list[bytes]", his)


_MUTATIONS_METHODS = ("remove_ranges", "put_pairs", "adjust_pairs")


class Reads(KeyRanges):
    """The key ranges a view read, with conflict checks against :class:`~kvstore.Mutations`.

    A ``Reads`` is a :class:`~kvstore.KeyRanges` (constructed, combined and serialized the same
    way, with its own kind byte) and equals a ``KeyRanges`` holding the same ranges.

    Conflicts are found in the order removes, puts, adjusts: first every overlap of a removed
    range with a read range (:class:`~kvstore.ReadRemoveConflict`, in key order), then every
    put of a read key (:class:`~kvstore.ReadWriteConflict`), then every adjustment of a read
    key (:class:`~kvstore.ReadAdjustConflict`).  Checking ``k`` keys against ``n`` read ranges
    costs O(n + k) by a merge walk, or O(k log n) or O(n log k) by bisection when one side is
    much smaller than the other; point reads still queued by ``add_key`` are checked against a
    ``Writes`` without removes by set lookups, O(n + k), without sorting them in.
    """

    __slots__ = ()

    _KIND: ClassVar[int] = KIND_READS

    def is_conflict(self, mutations: Mutations) -> bool:
        """Whether ``mutations`` change anything that was read."""
        return next(self._conflicts(mutations), None) is not None

    def find_conflict(self, mutations: Mutations) -> Conflict | None:
        """The first conflict with ``mutations`` (removes, then puts, then adjusts), or None."""
        return next(self._conflicts(mutations), None)

    def all_conflicts(self, mutations: Mutations) -> list[Conflict]:
        """Every conflict with ``mutations``: removes, puts, then adjusts, each in key order."""
        return list(self._conflicts(mutations))

    # -- the checks ---------------------------------------------------------------------------
    def _conflicts(self, mutations: Mutations) -> Iterator[Conflict]:
        """Generate the conflicts lazily, so ``find_conflict`` stops at the first."""
        if isinstance(mutations, Writes):
            yield from self._writes_conflicts(mutations)
            return
        # The three methods, checked directly: isinstance against a runtime-checkable
        # Protocol costs microseconds per call (PERFORMANCE R10).
        if not all(callable(getattr(mutations, name, None)) for name in _MUTATIONS_METHODS):
            raise TypeError(f"mutations must be a Mutations, not {type(mutations).__name__}")
        removes = list(mutations.remove_ranges())
        kinds = (
            (mutations.put_pairs(), ReadWriteConflict),
            (mutations.adjust_pairs(), ReadAdjustConflict),
        )
        if self._pending and not self._ends and not removes:
            # A commit log's entry, checked by a group's leader against every transaction
            # since its snapshot (PERFORMANCE R7).
            yield from self._queued_point_conflicts(
                (map(itemgetter(0), pairs), make) for pairs, make in kinds
            )
            return
        los, his = self._bounds()
        if not los:
            return
        ends = _ends(his)
        yield from _remove_conflicts(((r.min_key, r.max_key) for r in removes), los, his, ends)
        for pairs, make in kinds:
            keys = [key for key, _ in pairs]
            in_order = all(map(le, keys, keys[1:]))
            yield from _key_conflicts(keys, len(keys), make, los, ends, None, in_order)

    def _queued_point_conflicts(
        self, kinds: Iterable[tuple[Iterable[bytes], Callable[[bytes], Conflict]]]
    ) -> Iterator[Conflict]:
        """Conflicts of written keys with reads that are all point reads still queued: set
        lookups, without sorting the reads in first (PERFORMANCE R7, R8)."""
        read = set(self._pending)
        for keys, make in kinds:
            yield from map(make, filter(read.__contains__, keys))

    def _writes_conflicts(self, writes: Writes) -> Iterator[Conflict]:
        """:meth:`_conflicts` for a ``Writes``, using its sorted structures directly."""
        maps: tuple[tuple[SortedMap[bytes, Any], Callable[[bytes], Conflict]], ...] = (
            (writes.puts, ReadWriteConflict),
            (writes.adjusts, ReadAdjustConflict),
        )
        if self._pending and not self._ends and not writes.removes:
            # A transaction that only did gets (PERFORMANCE R8).
            yield from self._queued_point_conflicts(maps)
            return
        los, his = self._bounds()
        if not los:
            return
        ends = _ends(his)
        removes = writes.removes._bounds()
        if len(removes[0]) * 16 < len(los):
            yield from _remove_conflicts(zip(*removes, strict=True), los, his, ends)
        else:
            # Both canonical: the overlaps are exactly the pieces of the intersection.
            pieces = _intersection((los, his), removes)
            yield from map(ReadRemoveConflict, map(KeyRange._make, *pieces))
        for mapping, make in maps:
            yield from _key_conflicts(mapping, len(mapping), make, los, ends, mapping)


def _key_conflicts(
    keys: Iterable[bytes],
    count: int,
    make: Callable[[bytes], Conflict],
    los: list[bytes],
    ends: list[bytes],
    sorted_map: Any = None,
    in_order: bool = True,
) -> Iterator[Conflict]:
    """Conflicts for the ``count`` keys (re-iterable) that fall inside a read range.

    ``los``/``ends`` are the read ranges' bounds (see :func:`_ends`).  ``sorted_map`` is the
    ``SortedMap`` the keys come from, when they do; ``in_order`` says whether they are sorted.
    Picks the cheapest of three equivalent strategies.
    """
    if not count:
        return
    if sorted_map is not None and len(los) * 32 < count:
        # Few reads, many keys: look each read range up among the keys, O(n log k).
        irange = sorted_map.irange
        for lo, end in zip(los, ends, strict=True):
            yield from map(make, irange(lo, end, (True, False)))
    elif count * 16 < len(los) or not in_order:
        # Few keys, many reads: a key is inside a read range exactly when fewer ranges end
        # at or before it than start at or before it; two bisects per key, O(k log n).
        started = map(bisect_right, repeat(los), keys)
        ended = map(bisect_right, repeat(ends), keys)
        yield from map(make, compress(keys, map(ne, started, ended)))
    else:
        # Comparable sizes: one merge walk, O(n + k), the fastest in pure Python (R8).
        n = len(los)
        i = 0
        lo, end = los[0], ends[0]
        for key in keys:
            if key >= end:
                i += 1
                while i < n and ends[i] <= key:
                    i += 1
                if i == n:
                    return
                lo, end = los[i], ends[i]
            if key >= lo:
                yield make(key)


def _remove_conflicts(
    removes: Iterable[tuple[bytes, bytes | None]],
    los: list[bytes],
    his: list[bytes | None],
    ends: list[bytes],
) -> Iterator[Conflict]:
    """The overlaps of each removed range with the read ranges, by a bisect per removed range."""
    n = len(los)
    for rlo, rhi in removes:
        if rhi is not None and rhi <= rlo:
            continue
        # Every read range that ends after rlo and starts before rhi overlaps [rlo, rhi).
        i = bisect_right(ends, rlo)
        while i < n and (rhi is None or los[i] < rhi):
            hi = his[i]
            if rhi is not None and (hi is None or hi > rhi):
                hi = rhi
            yield ReadRemoveConflict(KeyRange._make(max(los[i], rlo), hi))
            i += 1
