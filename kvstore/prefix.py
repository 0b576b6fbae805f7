"""PrefixStore: a view of the keys of another store that start with one prefix.

``PrefixStore(store, prefix)`` is a :class:`~kvstore.KVStore` in its own right: keys go in
and come out *without* the prefix, and every operation is translated into one operation on the
underlying store over ``[prefix, prefix_end)``.  Nothing outside the prefix can be read,
written, scanned or removed through it -- not by unbounded ranges, not by ``get_at_most(None)``,
not by reverse scans, not by counters or ``apply``.  It is Permazen's ``PrefixKVStore``.

>>> from kvstore.backends.memory import MemoryStore
>>> base = MemoryStore()
>>> users = PrefixStore(base, b"users/")
>>> users.put(b"ada", b"1")
>>> base.get(b"users/ada"), list(users.get_range())
(b'1', [KVPair(key=b'ada', value=b'1')])
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from kvstore.counters import check_amount
from kvstore.errors import StoreClosed
from kvstore.keys import MAX_KEY_SIZE, check_value, prefix_end
from kvstore.ranges import KeyRange
from kvstore.store import KVPair, KVStore, RangeIterator, make_pair
from kvstore.validate import check_bool, check_mutations

if TYPE_CHECKING:
    from kvstore.mutations import Mutations

__all__ = ["PrefixStore"]

_BYTES_LIKE = (bytes, bytearray, memoryview)


def _strip(inner: RangeIterator, plen: int) -> Generator[KVPair, None, None]:
    # A generator is the cheapest per-pair wrapper in pure Python (PERFORMANCE: prefix scans).
    for key, value in inner:
        yield make_pair((key[plen:], value))


class _PrefixRangeIterator(RangeIterator):
    """Wraps the underlying store's iterator, removing the prefix from each key.

    It pulls exactly one pair from the inner iterator per pair it returns, so ``remove()``
    can be passed straight through.
    """

    __slots__ = ("_gen", "_inner")

    def __init__(self, inner: RangeIterator, plen: int) -> None:
        self._inner = inner
        self._gen = _strip(inner, plen)

    def __iter__(self) -> Iterator[KVPair]:
        return self._gen

    def __next__(self) -> KVPair:
        return next(self._gen)

    def remove(self) -> None:
        self._inner.remove()

    def close(self) -> None:
        self._gen.close()
        self._inner.close()


class _Mutations:
    """Already-translated, already-checked mutations for the underlying store's ``apply``.

    Lists, so the underlying store may iterate them more than once (to retry, say).
    """

    __slots__ = ("_adjusts", "_puts", "_removes")

    def __init__(
        self,
        removes: list[KeyRange],
        puts: list[tuple[bytes, bytes]],
        adjusts: list[tuple[bytes, int]],
    ) -> None:
        self._removes = removes
        self._puts = puts
        self._adjusts = adjusts

    def remove_ranges(self) -> Iterator[KeyRange]:
        return iter(self._removes)

    def put_pairs(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._puts)

    def adjust_pairs(self) -> Iterator[tuple[bytes, int]]:
        return iter(self._adjusts)


class PrefixStore(KVStore):
    """The keys of ``store`` that start with ``prefix``, seen with the prefix removed.

    Keys may be up to ``MAX_KEY_SIZE - len(prefix)`` bytes; a longer one raises ``ValueError``
    naming that limit.  Each method is one call to the same method of ``store`` (``get_range``
    wraps its iterator), so a ``PrefixStore`` is as fast, as weakly consistent and as atomic as
    ``store`` is: over an :class:`~kvstore.AtomicKVStore` its ``apply`` is all-or-nothing.  It
    is itself a plain ``KVStore`` (no ``snapshot()``; take the snapshot of ``store`` and wrap
    that instead).

    ``close()`` closes only this view -- afterwards its methods raise
    :class:`kvstore.StoreClosed` -- and never the underlying store, which its owner closes.
    An empty prefix gives a view of the whole store.
    """

    __slots__ = ("_closed", "_end", "_key_limit", "_prefix", "_store")

    def __init__(self, store: KVStore, prefix: bytes) -> None:
        if not isinstance(store, KVStore):
            raise TypeError(f"store must be a KVStore, not {type(store).__name__}")
        if not isinstance(prefix, _BYTES_LIKE):
            raise TypeError(f"prefix must be bytes-like, not {type(prefix).__name__}")
        prefix = bytes(prefix)
        if len(prefix) > MAX_KEY_SIZE:
            raise ValueError(
                f"prefix is {len(prefix)} bytes; the limit is {MAX_KEY_SIZE} (MAX_KEY_SIZE)"
            )
        self._store = store
        self._prefix = prefix
        #: The exclusive end of the prefix's keys in ``store``; ``None``: no end.
        self._end = prefix_end(prefix)
        self._key_limit = MAX_KEY_SIZE - len(prefix)
        self._closed = False

    @property
    def store(self) -> KVStore:
        """The underlying store."""
        return self._store

    @property
    def prefix(self) -> bytes:
        """The prefix that every key of this store carries in the underlying store."""
        return self._prefix

    @property
    def max_key_size(self) -> int:
        """The longest key this store accepts: ``MAX_KEY_SIZE - len(prefix)``."""
        return self._key_limit

    # -- key translation ---------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("PrefixStore is closed")

    def _key(self, key: Any, name: str = "key", extra: int = 0) -> bytes:
        """``prefix + key``, after checking ``key`` (``extra=1`` for a range bound)."""
        if self._closed:
            raise StoreClosed("PrefixStore is closed")
        k: bytes
        if type(key) is bytes:
            k = key
        elif isinstance(key, _BYTES_LIKE):
            k = bytes(key)
        else:
            raise TypeError(f"{name} must be bytes-like, not {type(key).__name__}")
        limit = self._key_limit + extra
        if len(k) > limit:
            raise ValueError(
                f"{name} is {len(k)} bytes; the limit is {limit} through this PrefixStore "
                f"(MAX_KEY_SIZE {MAX_KEY_SIZE}{' + 1 for a range bound' if extra else ''} "
                f"minus the {len(self._prefix)}-byte prefix)"
            )
        return self._prefix + k

    def _bounds(self, min_key: Any, max_key: Any) -> tuple[bytes, bytes | None]:
        """Translate a half-open range; ``None`` bounds become the prefix's own bounds."""
        lo = self._prefix if min_key is None else self._key(min_key, "min_key", 1)
        if max_key is None:
            self._check_open()
            return lo, self._end
        hi = self._key(max_key, "max_key", 1)
        if lo > hi:
            plen = len(self._prefix)
            raise ValueError(f"min_key {lo[plen:]!r} is greater than max_key {hi[plen:]!r}")
        return lo, hi

    def _seek_bounds(self, min_key: Any, max_key: Any) -> tuple[bytes, bytes | None]:
        """Like :meth:`_bounds` for a seek: an empty or inverted range is no error."""
        self._check_open()
        lo = self._prefix if min_key is None else self._key(min_key, "min_key", 1)
        hi = self._end if max_key is None else self._key(max_key, "max_key", 1)
        return lo, hi

    def _range(self, r: Any) -> KeyRange:
        if not isinstance(r, KeyRange):
            raise TypeError(f"remove_ranges() must yield KeyRange, not {type(r).__name__}")
        lo, hi = self._bounds(r.min_key, r.max_key)
        return KeyRange._make(lo, hi)

    def _pair(self, pair: KVPair | None) -> KVPair | None:
        if pair is None:
            return None
        return make_pair((pair[0][len(self._prefix) :], pair[1]))

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None`` when absent."""
        return self._store.get(self._key(key))

    def get_at_least(
        self, min_key: bytes | None, max_key: bytes | None = None
    ) -> KVPair | None:
        """The pair with the smallest key ``>= min_key`` and ``< max_key``; ``None`` bounds are
        the prefix's own.  ``None`` when there is none, or when ``max_key <= min_key``.
        """
        lo, hi = self._seek_bounds(min_key, max_key)
        return self._pair(self._store.get_at_least(lo, hi))

    def get_at_most(self, max_key: bytes | None, min_key: bytes | None = None) -> KVPair | None:
        """The pair with the largest key ``< max_key`` and ``>= min_key``; ``None`` bounds are
        the prefix's own.  ``None`` when there is none, or when ``min_key >= max_key``.
        """
        lo, hi = self._seek_bounds(min_key, max_key)
        return self._pair(self._store.get_at_most(hi, lo))

    def get_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None, reverse: bool = False
    ) -> RangeIterator:
        """Iterate ``[min_key, max_key)`` of this store, keys without the prefix.

        ``None`` bounds stop at the ends of the prefix.  The iterator's ``remove()`` and
        ``close()`` act on the underlying store's iterator.
        """
        lo, hi = self._bounds(min_key, max_key)
        check_bool(reverse, "reverse")
        return _PrefixRangeIterator(self._store.get_range(lo, hi, reverse), len(self._prefix))

    # -- writes ------------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value`` (stored at ``prefix + key``)."""
        self._store.put(self._key(key), value)

    def remove(self, key: bytes) -> None:
        """Remove ``key``; nothing happens when it is absent."""
        self._store.remove(self._key(key))

    def remove_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        """Remove ``[min_key, max_key)``; ``None`` bounds stop at the ends of the prefix."""
        lo, hi = self._bounds(min_key, max_key)
        self._store.remove_range(lo, hi)

    def adjust_counter(self, key: bytes, amount: int) -> None:
        """Add ``amount`` to the counter at ``key``, as the underlying store does."""
        self._store.adjust_counter(self._key(key), amount)

    def apply(self, mutations: Mutations) -> None:
        """Apply ``mutations`` (keys without the prefix) with one ``apply`` of the store.

        Every range and key is translated and checked before anything is applied, so a bad
        key leaves both stores unchanged; the apply itself is as atomic as the store's.
        """
        check_mutations(mutations)
        self._check_open()
        key = self._key
        removes = [self._range(r) for r in mutations.remove_ranges()]
        puts = [(key(k), check_value(v)) for k, v in mutations.put_pairs()]
        adjusts = [(key(k), check_amount(a)) for k, a in mutations.adjust_pairs()]
        self._store.apply(_Mutations(removes, puts, adjusts))

    # -- life cycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close this view (idempotent).  The underlying store stays open."""
        self._closed = True

    def __repr__(self) -> str:
        return f"PrefixStore({self._store!r}, {self._prefix!r})"
