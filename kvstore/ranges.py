"""Key ranges: :class:`KeyRange` (one half-open interval) and :class:`KeyRanges` (a set of them).

Keys order as unsigned bytes.  A range is ``[min_key, max_key)``; ``max_key=None`` means no
upper bound.  These are the vocabulary of removes, reads and conflicts.
"""

from __future__ import annotations

import heapq
import itertools
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

from sortedcontainers import SortedList

from kvstore.codec import KIND_KEY_RANGES, Reader, frame, write_ranges
from kvstore.keys import check_key, check_range_bound, key_after, prefix_end

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["KeyRange", "KeyRanges"]


class KeyRange:
    """An immutable half-open range of keys ``[min_key, max_key)``.

    ``max_key=None`` is unbounded.  Ranges are hashable and order by ``min_key``, then by
    ``max_key`` (unbounded last).  ``min_key > max_key`` raises ``ValueError``.

    >>> r = KeyRange(b"a", b"c")
    >>> r.contains(b"b"), r.contains(b"c")
    (True, False)
    >>> KeyRange.prefix(b"ab")
    KeyRange(b'ab', b'ac')
    """

    __slots__ = ("_hash", "max_key", "min_key")

    _hash: int | None
    min_key: bytes
    max_key: bytes | None
    FULL: KeyRange

    def __init__(self, min_key: Any, max_key: Any) -> None:
        lo = b"" if min_key is None else check_range_bound(min_key, "min_key")
        hi = None if max_key is None else check_range_bound(max_key, "max_key")
        if hi is not None and lo > hi:
            raise ValueError(f"min_key {lo!r} is greater than max_key {hi!r}")
        object.__setattr__(self, "min_key", lo)
        object.__setattr__(self, "max_key", hi)
        object.__setattr__(self, "_hash", None)

    @classmethod
    def _make(cls, lo: bytes, hi: bytes | None) -> KeyRange:
        """Build without checks, for callers that already hold valid bounds."""
        r = object.__new__(cls)
        object.__setattr__(r, "min_key", lo)
        object.__setattr__(r, "max_key", hi)
        object.__setattr__(r, "_hash", None)
        return r

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeyRange is immutable")

    @classmethod
    def single(cls, key: Any) -> KeyRange:
        """The range holding exactly ``key``: ``[key, key + b"\\x00")``."""
        k = check_range_bound(key, "key")
        return cls._make(k, key_after(k))

    @classmethod
    def prefix(cls, prefix: Any) -> KeyRange:
        """The range of every key that starts with ``prefix``."""
        p = check_range_bound(prefix, "prefix")
        return cls._make(p, prefix_end(p))

    # -- queries -------------------------------------------------------------------------
    def contains(self, key_or_range: Any) -> bool:
        """Whether a key, or all of another range, lies inside this range.

        An empty range holds no key, so every range contains it.
        """
        if isinstance(key_or_range, KeyRange):
            other = key_or_range
            if other.is_empty():
                return True
            if other.min_key < self.min_key:
                return False
            if self.max_key is None:
                return True
            return other.max_key is not None and other.max_key <= self.max_key
        key = check_range_bound(key_or_range, "key")
        return self.min_key <= key and (self.max_key is None or key < self.max_key)

    def __contains__(self, key_or_range: Any) -> bool:
        return self.contains(key_or_range)

    def overlaps(self, other: KeyRange) -> bool:
        """Whether the two ranges share at least one key."""
        if not isinstance(other, KeyRange):
            raise TypeError(f"range must be a KeyRange, not {type(other).__name__}")
        lo = max(self.min_key, other.min_key)
        return (self.max_key is None or lo < self.max_key) and (
            other.max_key is None or lo < other.max_key
        )

    def is_empty(self) -> bool:
        """Whether the range holds no key (``min_key == max_key``)."""
        return self.max_key == self.min_key

    def is_single_key(self) -> bool:
        """Whether the range holds exactly one key."""
        return self.max_key is not None and self.max_key == key_after(self.min_key)

    def is_full(self) -> bool:
        """Whether the range holds every key."""
        return self.min_key == b"" and self.max_key is None

    def is_prefix_range(self) -> bool:
        """Whether the range is exactly the keys starting with some prefix."""
        if self.is_full():
            return True
        if self.max_key is None:
            return self.min_key.strip(b"\xff") == b""
        return prefix_end(self.min_key) == self.max_key

    # -- value protocol ------------------------------------------------------------------
    def _sort_key(self) -> tuple[bytes, int, bytes]:
        hi = self.max_key
        return (self.min_key, 1, b"") if hi is None else (self.min_key, 0, hi)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self.min_key == other.min_key and self.max_key == other.max_key

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash((self.min_key, self.max_key))
            object.__setattr__(self, "_hash", h)
        return h

    def __lt__(self, other: KeyRange) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self._sort_key() < other._sort_key()

    def __le__(self, other: KeyRange) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self._sort_key() <= other._sort_key()

    def __gt__(self, other: KeyRange) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self._sort_key() > other._sort_key()

    def __ge__(self, other: KeyRange) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self._sort_key() >= other._sort_key()

    def __repr__(self) -> str:
        return f"KeyRange({self.min_key!r}, {self.max_key!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (KeyRange, (self.min_key, self.max_key))


KeyRange.FULL = KeyRange._make(b"", None)


# -- KeyRanges --------------------------------------------------------------------------------
Bounds = tuple[list[bytes], list["bytes | None"]]
"""A canonical range list as two parallel lists: min keys and max keys (``None``: unbounded)."""


def _normalize(pairs: Iterable[tuple[bytes, bytes | None]]) -> Bounds:
    """Merge ``(min, max)`` pairs *sorted by min* into canonical form.

    Canonical: sorted, non-empty, disjoint and non-adjacent (touching ranges are merged).
    """
    los: list[bytes] = []
    his: list[bytes | None] = []
    for lo, hi in pairs:
        if hi is not None and hi <= lo:
            continue
        if his:
            last = his[-1]
            if last is None:
                break
            if lo <= last:
                if hi is None or hi > last:
                    his[-1] = hi
                continue
        los.append(lo)
        his.append(hi)
    return los, his


def _union(a: Bounds, b: Bounds) -> Bounds:
    """The union of two canonical range lists, in O(n + m)."""
    return _normalize(heapq.merge(zip(*a, strict=True), zip(*b, strict=True), key=itemgetter(0)))


def _complement(a: Bounds) -> Bounds:
    """Every key not in the canonical range list ``a``."""
    los: list[bytes] = []
    his: list[bytes | None] = []
    prev = b""
    for lo, hi in zip(*a, strict=True):
        if lo != prev:
            los.append(prev)
            his.append(lo)
        if hi is None:
            return los, his
        prev = hi
    los.append(prev)
    his.append(None)
    return los, his


def _intersection(a: Bounds, b: Bounds) -> Bounds:
    """The intersection of two canonical range lists, by a merge walk in O(n + m)."""
    alos, ahis = a
    blos, bhis = b
    los: list[bytes] = []
    his: list[bytes | None] = []
    i = j = 0
    n, m = len(alos), len(blos)
    while i < n and j < m:
        ahi, bhi = ahis[i], bhis[j]
        lo = max(alos[i], blos[j])
        if ahi is None:
            hi, i_done, j_done = bhi, False, True
        elif bhi is None or ahi < bhi:
            hi, i_done, j_done = ahi, True, False
        else:
            hi, i_done, j_done = bhi, ahi == bhi, True
        if hi is None or lo < hi:
            los.append(lo)
            his.append(hi)
        i += i_done
        j += j_done
    return los, his


def _check_ranges_arg(value: object, name: str = "range_or_ranges") -> None:
    if not isinstance(value, (KeyRange, KeyRanges)):
        raise TypeError(f"{name} must be a KeyRange or KeyRanges, not {type(value).__name__}")


#: The range starts of every empty set: shared, so never modified (sets replace it first).
_NO_STARTS: Any = SortedList()


class KeyRanges:
    """A mutable set of keys, held as sorted, disjoint, non-adjacent, non-empty key ranges.

    Adding a range merges it with every range it overlaps or touches; removing one may split a
    range in two.  Iteration yields the ranges in key order.

    >>> rs = KeyRanges([KeyRange(b"a", b"c"), KeyRange(b"c", b"e"), KeyRange(b"x", None)])
    >>> rs
    KeyRanges([KeyRange(b'a', b'e'), KeyRange(b'x', None)])
    >>> rs.remove(KeyRange.single(b"b"))
    >>> list(rs)
    [KeyRange(b'a', b'b'), KeyRange(b'b\\x00', b'e'), KeyRange(b'x', None)]
    >>> rs.contains(b"b"), rs.contains(b"zzz")
    (False, True)

    Complexity (n ranges, k ranges touched): ``add``/``remove`` of one range O(log n + k);
    ``contains(key)``, ``find_key``, ``intersects(range)`` O(log n); the set operators and
    ``add``/``remove``/``intersect`` of a large ``KeyRanges`` O(n + m).

    Fast internal entry points for hot paths take bytes that the caller has already checked:
    :meth:`add_key` (O(1): keys are queued and merged in lazily, in bulk, before the next
    query), :meth:`add_range`, :meth:`covers_key`, :meth:`next_range_at_or_after` and
    :meth:`prev_range_before`.

    Not thread safe: even a query may fold queued keys in, so threads sharing one must lock
    around every call (``MutableView`` does).
    """

    # Ranges live in a SortedList of min keys plus a dict min key -> max key (None: unbounded).
    __slots__ = ("_ends", "_flat", "_frozen", "_pending", "_starts")

    #: The kind byte of this class's serialized form.
    _KIND: ClassVar[int] = KIND_KEY_RANGES

    _starts: Any  # SortedList[bytes]
    _ends: dict[bytes, bytes | None]
    _pending: list[bytes]
    _flat: Bounds | None
    _frozen: bool

    def __init__(self, iterable_of_ranges: Iterable[KeyRange] = ()) -> None:
        """A set of the keys in the given :class:`KeyRange` s (or in another ``KeyRanges``)."""
        self._starts = _NO_STARTS  # a SortedList is made at the first add (PERFORMANCE R6)
        self._ends = {}
        self._pending = []
        self._flat = None
        self._frozen = False
        if iterable_of_ranges == ():  # every view and transaction starts empty (PERFORMANCE R6)
            return
        self._fill(iterable_of_ranges, "iterable_of_ranges")

    @classmethod
    def _checked(cls, ranges: Any, name: str) -> Self:
        """``cls(ranges)``, with errors naming the caller's argument ``name`` (``Writes``)."""
        result = cls()
        result._fill(ranges, name)
        return result

    def _fill(self, ranges: Any, name: str) -> None:
        """Set the content of an empty instance to the ranges of ``ranges``, checked."""
        if isinstance(ranges, KeyRanges):
            self._set(ranges._bounds())
            return
        if isinstance(ranges, KeyRange) or not isinstance(ranges, Iterable):
            raise TypeError(
                f"{name} must be an iterable of KeyRange, not "
                f"{type(ranges).__name__} (wrap a single range in a list)"
            )
        pairs = []
        for r in ranges:
            if not isinstance(r, KeyRange):
                raise TypeError(f"{name} must hold only KeyRange objects, not {type(r).__name__}")
            pairs.append((r.min_key, r.max_key))
        pairs.sort(key=itemgetter(0))
        self._set(_normalize(pairs))

    @classmethod
    def full(cls) -> Self:
        """Every key: ``[b"", unbounded)``."""
        return cls([KeyRange.FULL])

    @classmethod
    def empty(cls) -> Self:
        """No key at all."""
        return cls()

    @classmethod
    def prefix(cls, prefix: Any) -> Self:
        """Every key that starts with ``prefix``."""
        return cls([KeyRange.prefix(prefix)])

    # -- internal representation ---------------------------------------------------------
    def _set(self, bounds: Bounds) -> None:
        """Replace the content with a canonical range list."""
        los, his = bounds
        self._starts = SortedList(los) if los else _NO_STARTS
        self._ends = dict(zip(los, his, strict=True))
        self._flat = bounds  # never modified in place, so safe to share

    def _bounds(self) -> Bounds:
        """The ranges as two parallel lists (min keys, max keys); do not modify them.

        Cached until the next change, so checking one ``Reads`` against many ``Writes`` builds
        them once (PERFORMANCE R8).
        """
        if self._pending:
            self._fold()
        flat = self._flat
        if flat is None:
            los = list(self._starts)
            flat = self._flat = (los, list(map(self._ends.__getitem__, los)))
        return flat

    def _fold(self) -> None:
        """Merge the keys queued by :meth:`add_key` into the ranges, all at once."""
        keys = self._pending
        self._pending = []
        keys.sort()
        # Whole-list checks and conversions run at C speed, not per key (PERFORMANCE R1, R8).
        if any(map(operator.eq, keys, keys[1:])):
            keys = list(dict.fromkeys(keys))
        his: list[bytes | None] = list(map(operator.add, keys, repeat(b"\x00")))
        if any(map(operator.eq, his, keys[1:])):
            new = _normalize(zip(keys, his, strict=True))  # some keys are adjacent: merge them
        else:
            new = (keys, his)
        if not self._ends:
            self._set(new)
        elif len(keys) * 8 < len(self._ends):
            for lo, hi in zip(*new, strict=True):
                self._add(lo, hi)
        else:
            self._set(_union(self._bounds(), new))

    # The next four helpers read SortedList's two-level layout (sorted sublists ``_lists`` and
    # their last items ``_maxes``) to bisect at C speed without positional indexing (R1, R5).
    def _floor(self, key: bytes) -> bytes | None:
        """The largest range start <= ``key``."""
        maxes = self._starts._maxes
        if not maxes:
            return None
        pos = bisect_right(maxes, key)
        if pos == len(maxes):
            return maxes[-1]
        sub = self._starts._lists[pos]
        i = bisect_right(sub, key)
        if i:
            return sub[i - 1]
        return maxes[pos - 1] if pos else None

    def _floor_below(self, key: bytes) -> bytes | None:
        """The largest range start < ``key``."""
        maxes = self._starts._maxes
        if not maxes:
            return None
        pos = bisect_left(maxes, key)
        if pos == len(maxes):
            return maxes[-1]
        sub = self._starts._lists[pos]
        i = bisect_left(sub, key)
        if i:
            return sub[i - 1]
        return maxes[pos - 1] if pos else None

    def _ceil_above(self, key: bytes) -> bytes | None:
        """The smallest range start > ``key``."""
        maxes = self._starts._maxes
        pos = bisect_right(maxes, key)
        if pos == len(maxes):
            return None
        sub = self._starts._lists[pos]
        return sub[bisect_right(sub, key)]

    def _range(self, start: bytes | None) -> KeyRange | None:
        return None if start is None else KeyRange._make(start, self._ends[start])

    def _add(self, lo: bytes, hi: bytes | None) -> None:
        """Add the non-empty range ``[lo, hi)``; O(log n + k)."""
        starts, ends = self._starts, self._ends
        if starts is _NO_STARTS:
            starts = self._starts = SortedList()
        self._flat = None
        f = self._floor(lo)
        if f is not None:
            end = ends[f]
            if end is None or end >= lo:
                if end is None or (hi is not None and end >= hi):
                    return  # already covered
                lo = f
        merged = list(starts.irange(lo, hi))
        if merged:
            last = ends[merged[-1]]
            if hi is not None and (last is None or last > hi):
                hi = last
            for start in merged:
                del ends[start]
                if start != lo:
                    starts.remove(start)
            if merged[0] != lo:
                starts.add(lo)
        else:
            starts.add(lo)
        ends[lo] = hi

    def _remove(self, lo: bytes, hi: bytes | None) -> None:
        """Remove the non-empty range ``[lo, hi)``; O(log n + k)."""
        starts, ends = self._starts, self._ends
        if starts is _NO_STARTS:
            return  # nothing to remove from
        self._flat = None
        f = self._floor_below(lo)
        if f is not None:
            end = ends[f]
            if end is None or end > lo:
                ends[f] = lo
                if hi is not None and (end is None or end > hi):
                    starts.add(hi)  # the range is cut in two
                    ends[hi] = end
                    return
        doomed = list(starts.irange(lo, hi, (True, False)))
        if doomed:
            last = ends[doomed[-1]]
            for start in doomed:
                starts.remove(start)
                del ends[start]
            if hi is not None and (last is None or last > hi):
                starts.add(hi)
                ends[hi] = last

    def _check_mutable(self) -> None:
        if self._frozen:
            raise TypeError(
                f"this {type(self).__name__} is read-only; clone() it for a mutable copy"
            )

    # -- fast paths for views and transactions --------------------------------------------
    def add_key(self, key: bytes) -> None:
        """Add the single-key range ``[key, key + b"\\x00")``; no argument checks.

        O(1): the key is queued and merged in, in bulk, before the next query or change, so a
        view can record every ``get`` cheaply (PERFORMANCE R1).  ``key`` must be ``bytes``.
        """
        if self._frozen:
            self._check_mutable()
        self._pending.append(key)

    def add_range(self, min_key: bytes, max_key: bytes | None) -> None:
        """Add ``[min_key, max_key)`` without argument checks; empty ranges are ignored."""
        self._check_mutable()
        if max_key is None or min_key < max_key:
            self._add(min_key, max_key)

    def covers_key(self, key: bytes) -> bool:
        """``contains(key)`` without argument checks, for hot paths; O(log n)."""
        if self._pending:
            self._fold()
        ends = self._ends
        if not ends:
            return False
        start = self._floor(key)
        if start is None:
            return False
        end = ends[start]
        return end is None or key < end

    def next_range_at_or_after(self, key: bytes) -> KeyRange | None:
        """The range containing ``key``, else the first range above it, else ``None``.

        No argument checks.  A forward scan uses it to skip what the ranges cover.
        """
        if self._pending:
            self._fold()
        start = self._floor(key)
        if start is not None:
            end = self._ends[start]
            if end is None or key < end:
                return KeyRange._make(start, end)
        return self._range(self._ceil_above(key))

    def prev_range_before(self, key: bytes | None) -> KeyRange | None:
        """The last range holding some key below ``key`` (``None``: below no bound), if any.

        No argument checks.  A reverse scan whose exclusive upper bound is ``key`` uses it;
        the range returned may extend to ``key`` or beyond.
        """
        if self._pending:
            self._fold()
        if key is None:
            maxes = self._starts._maxes
            return self._range(maxes[-1] if maxes else None)
        return self._range(self._floor_below(key))

    # -- changes ----------------------------------------------------------------------------
    def add(self, range_or_ranges: KeyRange | KeyRanges) -> None:
        """Add a range, or every range of a ``KeyRanges``, merging what overlaps or touches."""
        self._check_mutable()
        if isinstance(range_or_ranges, KeyRange):
            if not range_or_ranges.is_empty():
                self._add(range_or_ranges.min_key, range_or_ranges.max_key)
            return
        _check_ranges_arg(range_or_ranges)
        other = range_or_ranges._bounds()
        if len(other[0]) * 8 <= len(self._ends) or len(other[0]) <= 4:
            for lo, hi in zip(*other, strict=True):
                self._add(lo, hi)
        else:
            self._set(_union(self._bounds(), other))

    def remove(self, range_or_ranges: KeyRange | KeyRanges) -> None:
        """Remove a range, or every range of a ``KeyRanges``, splitting ranges as needed."""
        self._check_mutable()
        if self._pending:
            self._fold()
        if isinstance(range_or_ranges, KeyRange):
            if not range_or_ranges.is_empty():
                self._remove(range_or_ranges.min_key, range_or_ranges.max_key)
            return
        _check_ranges_arg(range_or_ranges)
        other = range_or_ranges._bounds()
        if len(other[0]) * 8 <= len(self._ends) or len(other[0]) <= 4:
            for lo, hi in zip(*other, strict=True):
                self._remove(lo, hi)
        else:
            self._set(_intersection(self._bounds(), _complement(other)))

    def intersect(self, range_or_ranges: KeyRange | KeyRanges) -> None:
        """Keep only the keys that are also in the given range or ranges."""
        self._check_mutable()
        if self._pending:
            self._fold()
        if isinstance(range_or_ranges, KeyRange):
            lo, hi = range_or_ranges.min_key, range_or_ranges.max_key
            if lo:
                self._remove(b"", lo)
            if hi is not None:
                self._remove(hi, None)
            return
        _check_ranges_arg(range_or_ranges)
        self._set(_intersection(self._bounds(), range_or_ranges._bounds()))

    def clear(self) -> None:
        """Remove every range."""
        self._check_mutable()
        self._pending = []
        self._set(([], []))

    # -- new sets ---------------------------------------------------------------------------
    def inverse(self) -> Self:
        """A new set holding exactly the keys this one does not."""
        result = type(self)()
        result._set(_complement(self._bounds()))
        return result

    def __invert__(self) -> Self:
        return self.inverse()

    def __or__(self, other: KeyRange | KeyRanges) -> Self:
        if not isinstance(other, (KeyRange, KeyRanges)):
            return NotImplemented
        result = self.clone()
        result.add(other)
        return result

    __ror__ = __or__

    def __and__(self, other: KeyRange | KeyRanges) -> Self:
        if not isinstance(other, (KeyRange, KeyRanges)):
            return NotImplemented
        result = self.clone()
        result.intersect(other)
        return result

    __rand__ = __and__

    def __sub__(self, other: KeyRange | KeyRanges) -> Self:
        if not isinstance(other, (KeyRange, KeyRanges)):
            return NotImplemented
        result = self.clone()
        result.remove(other)
        return result

    def __rsub__(self, other: KeyRange) -> Self:
        if not isinstance(other, KeyRange):
            return NotImplemented
        result = type(self)([other])
        result.remove(self)
        return result

    def clone(self) -> Self:
        """A mutable copy of the same class."""
        result = type(self)()
        bounds = self._bounds()
        result._set(bounds)
        return result

    def read_only(self) -> Self:
        """An immutable copy: its mutators raise ``TypeError``."""
        if self._frozen:
            return self
        result = self.clone()
        result._frozen = True
        return result

    # -- queries ----------------------------------------------------------------------------
    def contains(self, key_or_ranges: Any) -> bool:
        """Whether a key, or *all* of a range or ``KeyRanges``, is in the set.

        An empty range is contained in every set.  O(log n) for a key or a range.
        """
        if isinstance(key_or_ranges, KeyRange):
            return self._contains_range(key_or_ranges.min_key, key_or_ranges.max_key)
        if isinstance(key_or_ranges, KeyRanges):
            if self._pending:
                self._fold()
            return all(map(self._contains_range, *key_or_ranges._bounds()))
        return self.covers_key(check_key(key_or_ranges, "key"))

    def __contains__(self, key_or_ranges: Any) -> bool:
        return self.contains(key_or_ranges)

    def _contains_range(self, lo: bytes, hi: bytes | None) -> bool:
        if hi is not None and hi <= lo:
            return True
        if self._pending:
            self._fold()
        start = self._floor(lo)
        if start is None:
            return False
        end = self._ends[start]
        return end is None or (hi is not None and hi <= end)

    def intersects(self, range_or_ranges: KeyRange | KeyRanges) -> bool:
        """Whether the set shares at least one key with a range or another ``KeyRanges``."""
        if isinstance(range_or_ranges, KeyRange):
            return self._intersects_range(range_or_ranges.min_key, range_or_ranges.max_key)
        _check_ranges_arg(range_or_ranges)
        mine, other = self, range_or_ranges
        if len(mine) < len(other):
            mine, other = other, mine
        return any(map(mine._intersects_range, *other._bounds()))

    def _intersects_range(self, lo: bytes, hi: bytes | None) -> bool:
        if hi is not None and hi <= lo:
            return False
        if self._pending:
            self._fold()
        start = self._floor(lo)
        if start is not None:
            end = self._ends[start]
            if end is None or lo < end:
                return True
        start = self._ceil_above(lo)
        return start is not None and (hi is None or start < hi)

    def find_key(self, key: Any) -> tuple[KeyRange | None, KeyRange | None]:
        """The ranges at or below and at or above ``key``; O(log n).

        When a range contains ``key`` it is returned twice.  Otherwise the closest range
        entirely below ``key`` and the closest one entirely above; ``None`` where there is none.
        """
        key = check_key(key, "key")
        if self._pending:
            self._fold()
        below = self._range(self._floor(key))
        if below is not None and (below.max_key is None or key < below.max_key):
            return below, below
        return below, self._range(self._ceil_above(key))

    def is_empty(self) -> bool:
        """Whether the set holds no key."""
        return not self._pending and not self._ends

    def is_full(self) -> bool:
        """Whether the set holds every key."""
        if self._pending:
            self._fold()
        return self._ends.get(b"", b"") is None

    @property
    def min_key(self) -> bytes | None:
        """The smallest key in the set; ``None`` when it is empty."""
        if self._pending:
            self._fold()
        maxes = self._starts._maxes
        return self._starts._lists[0][0] if maxes else None

    @property
    def max_key(self) -> bytes | None:
        """The end (exclusive) of the last range; ``None`` when empty or unbounded."""
        if self._pending:
            self._fold()
        maxes = self._starts._maxes
        return self._ends[maxes[-1]] if maxes else None

    def __len__(self) -> int:
        """The number of ranges."""
        if self._pending:
            self._fold()
        return len(self._ends)

    def __iter__(self) -> Iterator[KeyRange]:
        """The ranges in key order (of the set as it was when iteration began)."""
        make = KeyRange._make
        return map(make, *self._bounds())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyRanges):
            return NotImplemented
        if self._pending:
            self._fold()
        if other._pending:
            other._fold()
        return self._ends == other._ends

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = 8
        ranges = list(itertools.islice(self, shown + 1))
        inner = ", ".join(map(repr, ranges[:shown]))
        if len(ranges) > shown:
            inner += f", ... ({len(self)} ranges)"
        suffix = ".read_only()" if self._frozen else ""
        return f"{type(self).__name__}([{inner}]){suffix}"

    # -- serialization ----------------------------------------------------------------------
    def serialize(self) -> bytes:
        """The ranges in kvstore's versioned, CRC-checked binary form (docs/serialization.md)."""
        out: list[bytes] = []
        write_ranges(out, *self._bounds())
        return frame(self._KIND, out)

    @classmethod
    def deserialize(cls, data: Any) -> Self:
        """Rebuild from :meth:`serialize` output; damaged input raises ``CorruptData``.

        A serialized ``Reads`` is not a ``KeyRanges`` blob and vice versa: the kind must match.
        """
        reader = Reader(data, cls._KIND)
        bounds = reader.ranges()
        reader.finish()
        result = cls()
        result._set(bounds)
        return result
