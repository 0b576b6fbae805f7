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

from typing import TYPE_CHECKING, Any

from kvstore.backends.lmdb import LMDBBatch, LMDBStore, _apply, _checked
from kvstore.commitlog import VERSION_KEY, CommitLog, Shape, version_of
from kvstore.mutations import Writes
from kvstore.reads import Reads
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
        removes, puts, adjusts = _checked(writes)
        data, empty, meta = store._data, store._empty, store._meta
        pending: dict[int, Shape] = {}

        def write(txn: Any) -> int:
            # May run more than once (the map may grow and the write start over): afresh.
            pending.clear()
            now = self.load_tally(txn.get(VERSION_KEY, db=meta))
            if since is not None and since != now:
                refusal = self.refusal(LMDBBatch(store, txn), reads, since, now, pending)
                if refusal is not None:
                    raise refusal  # aborts the write: nothing was written
            _apply(txn, data, empty, removes, puts, adjusts)
            now += 1
            (key, value), (version_key, version) = self.records(now, shape, encoded)
            txn.put(key, value, db=meta)
            txn.put(version_key, version, db=meta)
            pending[now] = shape
            if self.trim_due():
                self._trim(LMDBBatch(store, txn), now)
            return now

        version: int = store._write(write, sync)
        self.remember(pending)
        return version
