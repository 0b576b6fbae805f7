"""``MemoryStore``: a sorted in-memory store with cheap snapshots.

Data lives in one ``SortedDict``.  Snapshots never copy it: each snapshot belongs to an
*epoch* whose undo log records the old value of every key written after the epoch began
(copy-on-write per key, not per store).  A snapshot reads a key from the first undo log at or
after its epoch that mentions the key, else from the live data.  Snapshots taken with no
write in between share an epoch; a released epoch hands its undo records to the next older
epoch, so memory is bounded by what live snapshots still need.
"""

from __future__ import annotations

import heapq
import threading
import weakref
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING

from sortedcontainers import SortedDict

from kvstore.counters import check_amount, decode_counter, encode_counter, wrap64
from kvstore.errors import StoreClosed
from kvstore.keys import check_bounds, check_key, check_value
from kvstore.store import (
    AtomicKVStore,
    FetchingStore,
    KVPair,
    ReadOnlyStore,
    checked_mutations,
)
from kvstore.validate import check_optional_bool

if TYPE_CHECKING:
    from kvstore.mutations import Mutations

__all__ = ["MemoryStore"]

_MISSING = object()


class _Epoch:
    """The undo log shared by the snapshots taken between two writes."""

    __slots__ = ("newer", "older", "refs", "undo")

    def __init__(self, older: _Epoch | None) -> None:
        self.undo: SortedDict = SortedDict()  # key -> value before the first later write, or None
        self.refs = 0
        self.older = older
        self.newer: _Epoch | None = None


def _irange(d: SortedDict, lo: bytes, hi: bytes | None, reverse: bool) -> Iterator[bytes]:
    it: Iterator[bytes] = d.irange(lo, hi, inclusive=(True, False), reverse=reverse)
    return it


class MemoryStore(FetchingStore, AtomicKVStore):
    """An in-memory :class:`~kvstore.AtomicKVStore` on ``sortedcontainers``.

    Thread safe; ``apply`` is atomic; ``snapshot()`` costs O(1) and each later write costs
    O(log n) more while snapshots are open.
    """

    def __init__(self, items: Iterable[tuple[bytes, bytes]] | None = None) -> None:
        self._data: SortedDict = SortedDict()
        self._lock = threading.RLock()
        self._newest: _Epoch | None = None
        self._closed = False
        if items is not None:
            for key, value in items:
                self._data[check_key(key)] = check_value(value)

    # -- internals ---------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the MemoryStore is closed")

    def _save(self, key: bytes) -> None:
        """Before ``key`` changes, keep its old value for the newest epoch's snapshots."""
        epoch = self._newest
        if epoch is not None and key not in epoch.undo:
            epoch.undo[key] = self._data.get(key)

    def _put(self, key: bytes, value: bytes) -> None:
        self._save(key)
        self._data[key] = value

    def _remove(self, key: bytes) -> None:
        if key in self._data:
            self._save(key)
            del self._data[key]

    def _remove_range(self, lo: bytes, hi: bytes | None) -> None:
        for key in list(_irange(self._data, lo, hi, False)):
            self._save(key)
            del self._data[key]

    def _adjust(self, key: bytes, amount: int) -> None:
        value = self._data.get(key)
        if value is not None and len(value) == 8:
            self._put(key, encode_counter(wrap64(decode_counter(value) + amount)))

    def _fetch(self, lo: bytes, hi: bytes | None, reverse: bool, limit: int) -> list[KVPair]:
        with self._lock:
            self._check_open()
            data = self._data
            return [KVPair(k, data[k]) for k in islice(_irange(data, lo, hi, reverse), limit)]

    # -- KVStore -----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        key = check_key(key)
        with self._lock:
            self._check_open()
            value: bytes | None = self._data.get(key)
            return value

    def put(self, key: bytes, value: bytes) -> None:
        key = check_key(key)
        value = check_value(value)
        with self._lock:
            self._check_open()
            self._put(key, value)

    def remove(self, key: bytes) -> None:
        key = check_key(key)
        with self._lock:
            self._check_open()
            self._remove(key)

    def remove_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        lo, hi = check_bounds(min_key, max_key)
        with self._lock:
            self._check_open()
            self._remove_range(lo, hi)

    def adjust_counter(self, key: bytes, amount: int) -> None:
        key = check_key(key)
        amount = check_amount(amount)
        with self._lock:
            self._check_open()
            self._adjust(key, amount)

    def apply(self, mutations: Mutations, sync: bool | None = None) -> None:
        """Apply ``mutations`` atomically; ``sync`` has no meaning in memory (but is checked)."""
        check_optional_bool(sync, "sync")
        removes, puts, adjusts = checked_mutations(mutations)
        with self._lock:
            self._check_open()
            for r in removes:
                self._remove_range(r.min_key, r.max_key)
            for key, value in puts:
                self._put(key, value)
            for key, amount in adjusts:
                self._adjust(key, amount)

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> MemorySnapshot:
        """A read-only view of the store as it is now; O(1), copies nothing."""
        with self._lock:
            self._check_open()
            epoch = self._newest
            if epoch is None or epoch.undo:
                epoch = _Epoch(epoch)
                if epoch.older is not None:
                    epoch.older.newer = epoch
                self._newest = epoch
            epoch.refs += 1
            return MemorySnapshot(self, epoch)

    def _release(self, epoch: _Epoch) -> None:
        with self._lock:
            epoch.refs -= 1
            if epoch.refs:
                return
            older, newer = epoch.older, epoch.newer
            if older is not None:
                undo = older.undo
                for key, value in epoch.undo.items():
                    if key not in undo:
                        undo[key] = value
                older.newer = newer
            if newer is not None:
                newer.older = older
            else:
                self._newest = older
            epoch.undo = SortedDict()

    def _snapshot_get(self, epoch: _Epoch, key: bytes) -> bytes | None:
        e: _Epoch | None = epoch
        while e is not None:
            value = e.undo.get(key, _MISSING)
            if value is not _MISSING:
                return value
            e = e.newer
        found: bytes | None = self._data.get(key)
        return found

    def _snapshot_fetch(
        self, epoch: _Epoch, lo: bytes, hi: bytes | None, reverse: bool, limit: int
    ) -> list[KVPair]:
        with self._lock:
            self._check_open()
            sources = [_irange(self._data, lo, hi, reverse)]
            e: _Epoch | None = epoch
            while e is not None:
                if e.undo:
                    sources.append(_irange(e.undo, lo, hi, reverse))
                e = e.newer
            out: list[KVPair] = []
            last = None
            keys = sources[0] if len(sources) == 1 else heapq.merge(*sources, reverse=reverse)
            for key in keys:
                if key == last:
                    continue
                last = key
                value = self._snapshot_get(epoch, key)
                if value is not None:
                    out.append(KVPair(key, value))
                    if len(out) >= limit:
                        break
            return out

    # -- life cycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Drop the data; later use raises :class:`StoreClosed`.  Idempotent."""
        with self._lock:
            self._closed = True
            self._data = SortedDict()
            self._newest = None

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._data)} keys>"


class MemorySnapshot(ReadOnlyStore, FetchingStore):
    """A frozen, read-only view of a :class:`MemoryStore`; ``close()`` releases it."""

    def __init__(self, store: MemoryStore, epoch: _Epoch) -> None:
        self._store = store
        self._epoch = epoch
        self._finalizer = weakref.finalize(self, store._release, epoch)

    def _check_open(self) -> None:
        if not self._finalizer.alive:
            raise StoreClosed("the snapshot is closed")
        self._store._check_open()

    def get(self, key: bytes) -> bytes | None:
        key = check_key(key)
        store = self._store
        with store._lock:
            self._check_open()
            return store._snapshot_get(self._epoch, key)

    def _fetch(self, lo: bytes, hi: bytes | None, reverse: bool, limit: int) -> list[KVPair]:
        self._check_open()
        return self._store._snapshot_fetch(self._epoch, lo, hi, reverse, limit)

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        state = "open" if self._finalizer.alive else "closed"
        return f"<MemorySnapshot {state}>"
