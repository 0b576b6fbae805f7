"""The commit log kept in an LMDB store's metadata database, shared by every process.

Its logic is :class:`~kvstore.commitlog.CommitLog`'s.  What this module adds is the commit
of one transaction alone (no fsync to share, so no group): the entry is encoded before the
write lock is taken, and the write itself calls py-lmdb directly -- one version read, the
data, two metadata records -- instead of going through an :class:`~kvstore.LMDBBatch` call
by call.  A small transaction's commit is mostly Python overhead, so this is where
PERFORMANCE R6 and P1g are won.  The rare steps (validating against commits made since the
snapshot, trimming the log) take the general path on a batch over the same transaction.
"""

from __future__ import annotations

from time import time
from typing import TYPE_CHECKING, Any

from kvstore.backends.lmdb import _EMPTY_SLOT, LMDBBatch, LMDBStore, _adjust, _apply, _checked
from kvstore.commitlog import (
    _ENTRY_PREFIX,
    _TALLY,
    _TIME,
    _U64,
    VERSION_KEY,
    CommitLog,
    _read_tally,
    version_of,
)
from kvstore.mutations import Writes
from kvstore.reads import Reads
from kvstore.sortedmap import FEW_KEYS
from kvstore.store import KVStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from kvstore.commitlog import LogBatch

    T = TypeVar("T")

__all__ = ["StoreLog"]


class StoreLog(CommitLog[LMDBStore]):
    """The log kept in an LMDB store's metadata database, shared by every process."""

    def begin(self) -> tuple[KVStore, int]:
        snap, version = self._store._snapshot_and_meta(VERSION_KEY)
        return snap, version_of(version)

    def atomic(self, fn: Callable[[LogBatch], T], sync: bool | None) -> T:
        return self._store._atomic(fn, sync)

    def commit(self, writes: Writes, reads: Reads, since: int | None, sync: bool | None) -> int:
        store = self._store
        shape, encoded = self.entry(writes)
        data, empty, meta = store._data, store._empty, store._meta
        puts, adjusts, removes = writes.puts, writes.adjusts, writes.removes
        # A few puts and adjustments, no removes: put straight from the Writes' dicts, no
        # checked copy of them (PERFORMANCE P1g, R6).
        few = (
            type(writes) is Writes
            and not removes._ends
            and not removes._pending
            and dict.__len__(puts) <= FEW_KEYS
            and dict.__len__(adjusts) <= FEW_KEYS
        )
        if not few:
            checked = _checked(writes)

        def write(txn: Any) -> int:
            # May run more than once (the map may grow and the write start over): nothing
            # outside the transaction is changed until it has been written.
            raw = txn.get(VERSION_KEY, db=meta)
            if raw is not None and len(raw) == _TALLY.size:
                now, appended, dropped = _TALLY.unpack(raw)
            else:
                now, appended, dropped = _read_tally(raw)
            if since is not None and since != now:
                refusal = self.refusal(LMDBBatch(store, txn), reads, since, now, {})
                if refusal is not None:
                    raise refusal  # aborts the write: nothing was written
            if few:
                put = txn.put
                for key, value in dict.items(puts):
                    if key:
                        put(key, value, db=data)
                    else:
                        put(_EMPTY_SLOT, value, db=empty)
                for key, amount in dict.items(adjusts):
                    _adjust(txn, data if key else empty, key or _EMPTY_SLOT, amount)
            else:
                _apply(txn, data, empty, *checked)
            # The log entry and the version record (CommitLog.records, inlined: R6, P1g).
            now += 1
            key = _ENTRY_PREFIX + _U64.pack(now)
            value = _TIME.pack(time()) + encoded
            size = shape.size = len(key) + len(value)
            appended += size
            txn.put(key, value, db=meta)
            txn.put(VERSION_KEY, _TALLY.pack(now, appended, dropped), db=meta)
            self._appended, self._dropped = appended, dropped
            if self.trim_due():
                self._trim(LMDBBatch(store, txn), now)
            return now

        version: int = store._write(write, sync)
        self._remember(version, shape)
        return version
