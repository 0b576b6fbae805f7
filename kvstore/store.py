"""The store interfaces: :class:`KVStore`, :class:`AtomicKVStore`, and range iteration.

``KVStore`` is a sorted map from ``bytes`` to ``bytes``.  It implements everything that can be
derived from a few primitives (``get``, ``get_range``, ``put``, ``remove``) once, here: the
mapping sugar, counters, ``apply`` and the default range helpers, which concrete stores may
override for speed.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice, repeat
from operator import itemgetter
from sys import getrefcount
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, TypeVar, overload

from kvstore.counters import check_amount, decode_counter, encode_counter, wrap64
from kvstore.errors import ReadOnlyError
from kvstore.gcuntrack import untrack as _untrack
from kvstore.keys import (
    MAX_KEY_SIZE,
    check_bounds,
    check_key,
    check_seek_bounds,
    check_value,
    key_after,
)
from kvstore.ranges import KeyRange
from kvstore.validate import check_bool, check_mutations, check_optional_bool

if TYPE_CHECKING:
    from kvstore.mutations import Mutations

__all__ = [
    "AtomicKVStore",
    "BatchRangeIterator",
    "FetchingStore",
    "checked_mutations",
    "collect_pairs",
    "collect_tracked",
    "kept_pairs",
    "KVPair",
    "KVStore",
    "RangeIterator",
    "ReadOnlyStore",
    "make_pair",
    "untrack_pairs",
]


class KVPair(NamedTuple):
    """One key/value pair, as returned by range reads."""

    key: bytes
    value: bytes


#: Build a KVPair from a (key, value) tuple at C speed (PERFORMANCE R5: scans).
make_pair: Callable[[tuple[bytes, bytes]], KVPair] = functools.partial(tuple.__new__, KVPair)


# -- pairs the garbage collector does not traverse (PERFORMANCE L0d, R5, scan growth) ---------
# CPython stops tracking an exact tuple of atomic items (bytes) at its first collection, so a
# million scanned pairs held in a list cost the collector nothing more.  It never does that for
# a tuple subclass, and KVPair is one: every held pair stays tracked, each gen-1 collection
# moves pairs into the old generation, and the full collections that this triggers traverse
# all of them (at 1M held pairs, ~115 ms each; a view scan cost 1.8 us per pair at 1M keys
# against 0.36 at 10k).  A KVPair of two bytes objects can never be part of a reference
# cycle, so kvstore untracks the pairs it builds, as CPython untracks exact tuples.
#: The lag's item where it has no pair to untrack: a pair already untracked (a no-op).
_SPARE = make_pair((b"", b""))
if _untrack is not None:
    _untrack(id(_SPARE))
_first = itemgetter(0)


def collect_pairs(pairs: Iterable[KVPair], limit: int) -> list[KVPair]:
    """``list(islice(pairs, limit))`` of freshly built pairs of bytes, untracked by the GC.

    Each pair is untracked as the next one is made, all at C speed: ``lag`` reads the list
    being extended one item behind (``list.extend`` appends one by one, and ``zip`` pulls
    the next pair before the lag), so no collection during the scan finds more than one
    pair to move into an older generation -- untracking a whole batch afterwards let the
    collections that ran while it was built promote up to a batch each, and those promotions
    alone triggered full collections.
    """
    untrack = _untrack
    if untrack is None:
        return list(islice(pairs, limit))
    out: list[KVPair] = []
    # The lag never runs dry, so zip ends with the pairs alone: were ``extend`` ever to fill
    # the list otherwise than one by one, pairs would stay tracked, never go missing.
    lag = map(untrack, map(id, chain((_SPARE,), iter(out), repeat(_SPARE))))
    out.extend(map(_first, zip(islice(pairs, limit), lag, strict=False)))
    if out:
        untrack(id(out[-1]))
    return out


def collect_tracked(pairs: Iterable[KVPair], limit: int) -> list[KVPair]:
    """``list(islice(pairs, limit))``: :func:`collect_pairs`' counterpart for pairs that a
    consumer drops as it goes, which the GC frees young for less than untracking costs."""
    return list(islice(pairs, limit))


def untrack_pairs(pairs: Iterable[KVPair]) -> None:
    """Untrack freshly built pairs of bytes (see :func:`collect_pairs`); a no-op elsewhere."""
    untrack = _untrack
    if untrack is not None:
        for pair in pairs:
            untrack(id(pair))


def _kept(batch: list[KVPair]) -> bool:
    """Whether the consumer kept the first and last pairs of ``batch`` (beyond the list's
    own reference and the argument's): then it keeps what it reads, and the next batch is
    worth building untracked.

    A consumer that drops each pair (``for k, v in it``) lets the collector free it young,
    which costs less than untracking it (~0.2 us a pair); one that keeps them (``list(it)``,
    ``store[a:b]``) pays a traversal by every full collection for each (PERFORMANCE L0d, R5).
    """
    return bool(batch) and getrefcount(batch[0]) > 2 and getrefcount(batch[-1]) > 2


def _never(batch: list[KVPair]) -> bool:
    return False


#: ``kept(batch)``: build the next batch untracked (never where pairs cannot be untracked).
kept_pairs: Callable[[list[KVPair]], bool] = _kept if _untrack is not None else _never


_C = TypeVar("_C", bound="Closeable")


class Closeable:
    """A context manager whose exit calls ``close()``: stores, iterators, databases."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RangeIterator(Closeable, Iterator[KVPair]):
    """An iterator over a key range, in order, that can remove what it returned.

    It is weakly consistent: it never raises because the store changed while iterating.
    ``close()`` (or leaving a ``with`` block) releases what it holds; afterwards it yields
    nothing more.
    """

    def __iter__(self) -> Iterator[KVPair]:
        return self

    @abstractmethod
    def __next__(self) -> KVPair: ...

    @abstractmethod
    def remove(self) -> None:
        """Remove from the store the pair last returned.

        Raises ``RuntimeError`` when no pair has been returned yet or it was already removed.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the iterator; it yields nothing more.  Idempotent."""



#: ``fetch(min_key, max_key, reverse, limit)`` returns up to ``limit`` pairs of
#: ``[min_key, max_key)`` in iteration order.  A store may offer a second one for consumers
#: that keep the pairs, which builds them untracked by the GC (see :func:`collect_pairs`).
Fetch = Callable[[bytes, "bytes | None", bool, int], list[KVPair]]


class BatchRangeIterator(RangeIterator):
    """A weakly consistent iterator that reads a store in batches, re-seeking between them.

    Each batch is one short read of the store; between batches nothing is held open, so the
    store may change freely.  Batches grow from small (cheap ``get_at_least``-style use) to
    large (cheap scans).
    """

    __slots__ = (
        "_batch",
        "_batch_it",
        "_fetch",
        "_fetch_kept",
        "_gen",
        "_hi",
        "_lo",
        "_removed",
        "_remover",
        "_reverse",
    )

    def __init__(
        self,
        fetch: Fetch,
        remover: Callable[[bytes], None],
        min_key: bytes,
        max_key: bytes | None,
        reverse: bool,
        first_batch: int = 16,
        max_batch: int = 2048,
        fetch_kept: Fetch | None = None,
    ) -> None:
        self._fetch = fetch
        self._fetch_kept = fetch_kept or fetch
        self._remover = remover
        self._lo = min_key
        self._hi = max_key
        self._reverse = reverse
        self._batch: list[KVPair] = []
        self._batch_it: Any = iter(self._batch)  # a list iterator: has __length_hint__
        self._removed: bytes | None = None
        self._exhausted = False
        self._gen: Iterator[KVPair] = self._generate(first_batch, max_batch)

    def next_batch(self, limit: int, kept: bool = False) -> list[KVPair]:
        """Up to ``limit`` more pairs at once, for consumers that merge whole batches (R5).

        ``kept``: the consumer keeps the pairs (see :func:`kept_pairs`).  Use either this or
        plain iteration on one iterator, not both.
        """
        if self._exhausted:
            return []
        fetch = self._fetch_kept if kept else self._fetch
        batch = fetch(self._lo, self._hi, self._reverse, limit)
        if len(batch) < limit:
            self._exhausted = True
        elif self._reverse:
            self._hi = batch[-1][0]
        else:
            self._lo = key_after(batch[-1][0])
        return batch

    def _generate(self, size: int, max_batch: int) -> Iterator[KVPair]:
        kept = kept_pairs
        while True:
            batch = self.next_batch(size, kept(self._batch))
            if not batch:
                return
            it = iter(batch)
            self._batch, self._batch_it = batch, it
            # A generator delegating to a list iterator runs at C speed (PERFORMANCE R5).
            yield from it
            if size < max_batch:
                size *= 2

    def __iter__(self) -> Iterator[KVPair]:
        return self._gen

    def __next__(self) -> KVPair:
        return next(self._gen)

    def _last_key(self) -> bytes | None:
        batch = self._batch
        consumed = len(batch) - self._batch_it.__length_hint__()
        return batch[consumed - 1][0] if consumed else None

    def remove(self) -> None:
        key = self._last_key()
        if key is None or key == self._removed:
            raise RuntimeError("remove() needs a pair returned by next() and not yet removed")
        self._remover(key)
        self._removed = key

    def close(self) -> None:
        gen = self._gen
        if isinstance(gen, Iterator) and hasattr(gen, "close"):
            gen.close()
        self._batch = []
        self._batch_it = iter(self._batch)


class KVStore(Closeable, ABC):
    """A sorted map from ``bytes`` keys to ``bytes`` values, in unsigned byte order.

    Subclasses implement :meth:`get`, :meth:`get_range`, :meth:`put` and :meth:`remove`;
    everything else has a default built from those.  Keys may be any bytes-like object up to
    :data:`kvstore.MAX_KEY_SIZE` bytes; results are always ``bytes``.
    """

    # -- reads -------------------------------------------------------------------------------
    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None`` when absent."""

    @abstractmethod
    def get_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None, reverse: bool = False
    ) -> RangeIterator:
        """Iterate the pairs of ``[min_key, max_key)`` in key order (descending if ``reverse``).

        ``None`` bounds are unbounded.  ``min_key > max_key`` raises ``ValueError``.
        """

    def get_at_least(
        self, min_key: bytes | None, max_key: bytes | None = None
    ) -> KVPair | None:
        """The pair with the smallest key ``>= min_key`` and ``< max_key``, or ``None``.

        ``None`` bounds are unbounded (``get_at_least(None)`` is the first pair); ``None``
        also when ``max_key <= min_key``.
        """
        lo, hi = check_seek_bounds(min_key, max_key)
        if hi is not None and hi <= lo:
            return None
        return self._first(lo, hi, False)

    def get_at_most(self, max_key: bytes | None, min_key: bytes | None = None) -> KVPair | None:
        """The pair with the largest key ``< max_key`` and ``>= min_key``, or ``None``.

        ``None`` bounds are unbounded (``get_at_most(None)`` is the last pair); ``None`` also
        when ``min_key >= max_key``.
        """
        lo, hi = check_seek_bounds(min_key, max_key)
        if hi is not None and lo >= hi:
            return None
        return self._first(lo, hi, True)

    def _first(self, lo: bytes, hi: bytes | None, reverse: bool) -> KVPair | None:
        """The first pair of ``[lo, hi)`` in scan order (bounds already checked).

        The default reads it through :meth:`get_range`; stores override it when they can seek.
        """
        with self.get_range(lo, hi, reverse) as it:
            return next(it, None)

    # -- writes ------------------------------------------------------------------------------
    @abstractmethod
    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""

    @abstractmethod
    def remove(self, key: bytes) -> None:
        """Remove ``key``; nothing happens when it is absent."""

    def remove_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        """Remove every key in ``[min_key, max_key)``; ``None`` bounds are unbounded."""
        lo, hi = check_bounds(min_key, max_key)
        with self.get_range(lo, hi) as it:
            for _ in it:
                it.remove()

    # -- counters ----------------------------------------------------------------------------
    @staticmethod
    def encode_counter(value: int) -> bytes:
        """Encode a signed 64-bit integer as a counter value (8 bytes, big-endian)."""
        return encode_counter(value)

    @staticmethod
    def decode_counter(value: bytes) -> int:
        """Decode a counter value; ``ValueError`` unless it is 8 bytes."""
        return decode_counter(value)

    def adjust_counter(self, key: bytes, amount: int) -> None:
        """Add ``amount`` to the counter at ``key``, wrapping into the signed 64-bit range.

        A missing key, or a value that is not 8 bytes, is left as it is.
        """
        key = check_key(key)
        amount = check_amount(amount)
        value = self.get(key)
        if value is None or len(value) != 8:
            return
        self.put(key, encode_counter(wrap64(decode_counter(value) + amount)))

    # -- bulk --------------------------------------------------------------------------------
    def apply(self, mutations: Mutations) -> None:
        """Apply ``mutations``: its removes first, then its puts, then its adjusts."""
        check_mutations(mutations)
        for r in mutations.remove_ranges():
            self.remove_range(r.min_key, r.max_key)
        for key, value in mutations.put_pairs():
            self.put(key, value)
        for key, amount in mutations.adjust_pairs():
            self.adjust_counter(key, amount)

    # -- mapping sugar -----------------------------------------------------------------------
    def __iter__(self) -> NoReturn:
        # Without this, ``iter(store)`` would fall back to ``store[0]``, ``store[1]``, ...
        raise TypeError(
            f"{type(self).__name__} is not iterable: use get_range() (or store[a:b]) for pairs"
        )

    @overload
    def __getitem__(self, key: slice) -> list[KVPair]: ...

    @overload
    def __getitem__(self, key: bytes | bytearray | memoryview) -> bytes: ...

    def __getitem__(self, key: Any) -> Any:
        """``store[key]`` is the value (``KeyError`` if absent); ``store[a:b]`` the pairs."""
        if isinstance(key, slice):
            if key.step is not None:
                raise ValueError("slice step is not supported; use get_range(reverse=True)")
            with self.get_range(key.start, key.stop) as it:
                return list(it)
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.put(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        self.remove(key)

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    # -- life cycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Release the store's resources; idempotent.  The default holds nothing."""



class AtomicKVStore(KVStore):
    """A store that can take consistent snapshots and apply mutations all-or-nothing."""

    @abstractmethod
    def snapshot(self) -> KVStore:
        """A read-only store frozen at this moment, unaffected by later writes.

        Use it as a context manager, or ``close()`` it, to release it.
        """

    @abstractmethod
    def apply(self, mutations: Mutations, sync: bool | None = None) -> None:
        """Apply ``mutations`` atomically: no reader ever sees part of them.

        ``sync`` overrides the store's durability for this call (``None``: the store's default).
        """


class FetchingStore(KVStore):
    """A store whose range reads all go through one primitive, :meth:`_fetch`.

    ``_fetch(min_key, max_key, reverse, limit)`` returns up to ``limit`` pairs of
    ``[min_key, max_key)`` in scan order, in one short read.  This class builds
    ``get_range`` (a :class:`BatchRangeIterator`), ``get_at_least`` and ``get_at_most`` on it.
    """

    #: The largest batch a range iterator reads at once.
    _max_batch = 2048

    @abstractmethod
    def _fetch(self, lo: bytes, hi: bytes | None, reverse: bool, limit: int) -> list[KVPair]: ...

    #: ``_fetch`` for a consumer that keeps the pairs (None: ``_fetch`` itself).
    _fetch_kept: Fetch | None = None

    def _check_open(self) -> None:
        """Raise if the store can no longer be read."""

    def _first(self, lo: bytes, hi: bytes | None, reverse: bool) -> KVPair | None:
        found = self._fetch(lo, hi, reverse, 1)
        return found[0] if found else None

    def get_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None, reverse: bool = False
    ) -> RangeIterator:
        lo, hi = check_bounds(min_key, max_key)
        check_bool(reverse, "reverse")
        self._check_open()
        return BatchRangeIterator(
            self._fetch,
            self.remove,
            lo,
            hi,
            reverse,
            max_batch=self._max_batch,
            fetch_kept=self._fetch_kept,
        )


class ReadOnlyStore(KVStore):
    """Mixin for read-only stores: every mutator raises :class:`ReadOnlyError`."""

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise ReadOnlyError(f"{type(self).__name__} is read-only")

    def put(self, key: bytes, value: bytes) -> None:
        check_key(key)
        check_value(value)
        self._read_only()

    def remove(self, key: bytes) -> None:
        check_key(key)
        self._read_only()

    def remove_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        check_bounds(min_key, max_key)
        self._read_only()

    def adjust_counter(self, key: bytes, amount: int) -> None:
        check_key(key)
        check_amount(amount)
        self._read_only()

    def apply(self, mutations: Mutations, sync: bool | None = None) -> None:
        check_mutations(mutations)
        check_optional_bool(sync, "sync")
        self._read_only()


def checked_mutations(
    mutations: Mutations, name: str = "mutations"
) -> tuple[list[KeyRange], list[tuple[bytes, bytes]], list[tuple[bytes, int]]]:
    """Materialize and check ``mutations`` (the argument ``name``) so a bad item fails before
    anything is written.

    The common case (all items well formed) is checked with whole-list C-level passes, not a
    Python call per item (PERFORMANCE R4); only a failing list is re-checked item by item to
    name what was wrong.
    """
    check_mutations(mutations, name)
    removes = list(mutations.remove_ranges())
    if removes and not set(map(type, removes)) <= {KeyRange}:
        for r in removes:
            if not isinstance(r, KeyRange):
                raise TypeError(f"remove_ranges() must yield KeyRange, not {type(r).__name__}")
    puts = list(mutations.put_pairs())
    if puts:
        keys = list(map(itemgetter(0), puts))
        values = list(map(itemgetter(1), puts))
        if not (
            set(map(type, keys)) <= {bytes}
            and set(map(type, values)) <= {bytes}
            and max(map(len, keys)) <= MAX_KEY_SIZE
        ):
            puts = [(check_key(k, "put key"), check_value(v, "put value")) for k, v in puts]
    adjusts = [
        (check_key(k, "adjust key"), check_amount(a, "adjust amount"))
        for k, a in mutations.adjust_pairs()
    ]
    return removes, puts, adjusts
