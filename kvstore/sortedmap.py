"""``SortedMap``: a dict whose keys also iterate in sorted order, sorted lazily.

``Writes`` keeps its puts and adjusts in one.  A ``dict`` subclass that does not override
``__setitem__`` keeps stores and lookups at C speed (PERFORMANCE R1, R3).  New keys are found
without bookkeeping: a dict keeps insertion order, so the keys added since the sorted index was
last brought up to date are exactly the last ones in that order.  An ordered operation first
folds those in with ``SortedList.update`` (never worse than sorting once), so interleaving
writes with ordered reads costs O(log n) amortized per key.

It offers the parts of ``sortedcontainers.SortedDict``'s interface that kvstore uses:
ordered iteration and views, ``irange``, ``bisect_left``/``bisect_right``, ``peekitem``,
``index`` and ``popitem``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from itertools import islice
from typing import Any, TypeVar, overload

from sortedcontainers import SortedList

__all__ = ["SortedMap"]

#: Up to this many keys, the sorted keys stay a plain list when changed (see SortedMap._fold).
_SMALL = 256
#: Up to this many keys, a caller that wants them in order once sorts a copy
#: (``sorted(dict.keys(m))``) instead of folding the map's index, and a store puts them one
#: by one: a small transaction's commit never runs the fold (PERFORMANCE R6, L1).
FEW_KEYS = 8

K = TypeVar("K")
V = TypeVar("V")
_MISSING: Any = object()


class SortedMap(dict[K, V]):
    """A ``dict`` with sorted iteration; see the module docstring."""

    __slots__ = ("_folded", "_sorted")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # (dict.__new__ made it empty: no dict.__init__ call, PERFORMANCE R6.)
        # The sorted keys: None until first needed, a plain list while small (cheapest for the
        # few keys of a typical transaction, PERFORMANCE R6), a SortedList once large.
        self._sorted: list[K] | SortedList | None = None
        self._folded = 0  # how many keys, in insertion order, are in _sorted
        if args or kwargs:
            self.update(*args, **kwargs)

    # -- keeping the order ---------------------------------------------------------------------
    def _fold(self) -> list[K] | SortedList:
        """Sort in the keys added since the last fold; return the sorted keys."""
        ordered = self._sorted
        waiting = dict.__len__(self) - self._folded
        if waiting:
            new = list(islice(dict.__reversed__(self), waiting))
            if ordered is None:
                # A plain list even when large: a commit only walks it in order (R4).  A later
                # fold or delete makes it a SortedList once it is big.
                new.sort()
                ordered = new
            elif isinstance(ordered, SortedList):
                ordered.update(new)
            else:
                ordered.extend(new)
                ordered.sort()  # two sorted runs: a linear merge
                if len(ordered) > _SMALL:
                    ordered = SortedList(ordered)
            self._sorted = ordered
            self._folded += waiting
        elif ordered is None:
            ordered = self._sorted = []
        return ordered

    # -- mutation (stores need no override: new keys land last in insertion order) -------------
    def __delitem__(self, key: K) -> None:
        dict.__delitem__(self, key)
        ordered = self._sorted
        if ordered is None:
            return
        if len(ordered) > _SMALL and not isinstance(ordered, SortedList):
            ordered = self._sorted = SortedList(ordered)  # deleting from a list is O(n)
        position = _bisect_left(ordered, key)
        if position < len(ordered) and ordered[position] == key:
            del ordered[position]
            self._folded -= 1

    @overload
    def pop(self, key: K) -> V: ...

    @overload
    def pop(self, key: K, default: V | Any) -> V | Any: ...

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        if key in self:
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self, index: int = -1) -> tuple[K, V]:
        """Remove and return the item at sorted position ``index`` (default: the last)."""
        if not self:
            raise KeyError("popitem(): mapping is empty")
        key = self._fold()[index]
        value = dict.__getitem__(self, key)
        del self[key]
        return key, value

    def clear(self) -> None:
        dict.clear(self)
        self._sorted = None
        self._folded = 0

    # -- ordered access ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[K]:
        return iter(self._fold())

    def __reversed__(self) -> Iterator[K]:
        return reversed(self._fold())

    def keys(self) -> _Keys[K]:  # type: ignore[override]
        return _Keys(self)

    def values(self) -> _Values[V]:  # type: ignore[override]
        return _Values(self)

    def items(self) -> _Items[K, V]:  # type: ignore[override]
        return _Items(self)

    def irange(
        self,
        minimum: K | None = None,
        maximum: K | None = None,
        inclusive: tuple[bool, bool] = (True, True),
        reverse: bool = False,
    ) -> Iterator[K]:
        """Keys from ``minimum`` to ``maximum`` in order (``None``: unbounded)."""
        ordered = self._fold()
        if isinstance(ordered, SortedList):
            it: Iterator[K] = ordered.irange(minimum, maximum, inclusive, reverse)
            return it
        lo = 0
        if minimum is not None:
            lo = (bisect_left if inclusive[0] else bisect_right)(ordered, minimum)
        hi = len(ordered)
        if maximum is not None:
            hi = (bisect_right if inclusive[1] else bisect_left)(ordered, maximum)
        part = ordered[lo:hi]
        return reversed(part) if reverse else iter(part)

    def bisect_left(self, key: K) -> int:
        return _bisect_left(self._fold(), key)

    def bisect_right(self, key: K) -> int:
        ordered = self._fold()
        if isinstance(ordered, SortedList):
            position: int = ordered.bisect_right(key)
            return position
        return bisect_right(ordered, key)

    def index(self, key: K) -> int:
        """The sorted position of ``key``; ``ValueError`` when absent."""
        ordered = self._fold()
        position = _bisect_left(ordered, key)
        if position < len(ordered) and ordered[position] == key:
            return position
        raise ValueError(f"{key!r} is not in the map")

    def iter_items(self, start: int = 0) -> Iterator[tuple[K, V]]:
        """The items from sorted position ``start`` on, lazily and at C speed.

        A consumer that drops each item before taking the next (``list.extend`` does not,
        ``Cursor.putmulti`` does) lets ``zip`` reuse one tuple for all of them (PERFORMANCE R4).
        """
        keys = self._fold()
        if start:
            keys = keys[start:]
        return zip(keys, map(dict.__getitem__.__get__(self), keys), strict=True)

    def peekitem(self, index: int = -1) -> tuple[K, V]:
        """The item at sorted position ``index`` (default: the last)."""
        key = self._fold()[index]
        return key, dict.__getitem__(self, key)

    # -- copies and display --------------------------------------------------------------------
    def copy(self) -> SortedMap[K, V]:
        twin: SortedMap[K, V] = SortedMap()
        dict.update(twin, self)
        ordered = self._fold()
        twin._sorted = list(ordered) if type(ordered) is list else SortedList(ordered)
        twin._folded = len(ordered)
        return twin

    __copy__ = copy

    @classmethod
    def fromkeys(cls, keys: Iterable[K], value: Any = None) -> SortedMap[K, Any]:  # type: ignore[override]
        made: SortedMap[K, Any] = cls()
        made.update((k, value) for k in keys)
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self.items()),))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {dict.__getitem__(self, k)!r}" for k in self)
        return f"{type(self).__name__}({{{inner}}})"

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = self.copy()
        merged.update(other)
        return merged


def _bisect_left(ordered: list[Any] | SortedList, key: Any) -> int:
    if isinstance(ordered, SortedList):
        position: int = ordered.bisect_left(key)
        return position
    return bisect_left(ordered, key)


class _Keys(KeysView[K]):
    """The keys of a :class:`SortedMap`, in order."""

    _mapping: SortedMap[K, Any]

    def __iter__(self) -> Iterator[K]:
        return iter(self._mapping._fold())

    def __reversed__(self) -> Iterator[K]:
        return reversed(self._mapping._fold())

    def __getitem__(self, index: int) -> K:
        key: K = self._mapping._fold()[index]
        return key


class _Values(ValuesView[V]):
    """The values of a :class:`SortedMap`, in key order."""

    _mapping: SortedMap[Any, V]

    def __iter__(self) -> Iterator[V]:
        mapping = self._mapping
        return map(dict.__getitem__.__get__(mapping), mapping._fold())


class _Items(ItemsView[K, V]):
    """The items of a :class:`SortedMap`, in key order (built at C speed: PERFORMANCE R9)."""

    _mapping: SortedMap[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        mapping = self._mapping
        keys = mapping._fold()
        return zip(keys, map(dict.__getitem__.__get__(mapping), keys), strict=True)

    def __reversed__(self) -> Iterator[tuple[K, V]]:
        mapping = self._mapping
        keys = list(reversed(mapping._fold()))
        return zip(keys, map(dict.__getitem__.__get__(mapping), keys), strict=True)
