"""The commit log kept in an LMDB store's metadata database, shared by every process.

Its logic is :class:`~kvstore.commitlog.CommitLog`'s.  What this module adds is the write
itself: a commit's entry is encoded before the write lock is taken, and the write calls
py-lmdb directly -- one version read, the data, the log entries, the version record --
instead of going through an :class:`~kvstore.LMDBBatch` call by call.  A small transaction's
commit is mostly Python overhead, so this is where PERFORMANCE R6 and P1g are won.
:meth:`StoreLog.commit` writes one commit alone (durability none/async);
:meth:`StoreLog.commit_all` writes several in one write, each validated after the ones before
it: a group commit's (durability sync, R7) or the commits queued behind a busy committer
(R10).  The rare steps (validating against commits made since a snapshot, trimming the log)
take the general path on a batch over the same transaction.
"""

from __future__ import annotations

from time import time
from typing import TYPE_CHECKING, Any

from kvstore.backends.lmdb import (
    _EMPTY_SLOT,
    LMDBBatch,
    LMDBStore,
    _adjust,
    _apply,
    _checked,
    _Puts,
)
from kvstore.commitlog import (
    _ENTRY_PREFIX,
    _TALLY,
    _TIME,
    _TRIM_EVERY,
    _U64,
    VERSION_KEY,
    CommitLog,
    Shape,
    _read_tally,
)
from kvstore.errors import RetryTransaction
from kvstore.mutations import Writes
from kvstore.ranges import KeyRange
from kvstore.reads import Reads
from kvstore.sortedmap import FEW_KEYS
from kvstore.store import KVStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from kvstore.commitlog import LogBatch

    T = TypeVar("T")

__all__ = ["StoreLog"]

#: Checked mutations to apply (see :func:`~kvstore.backends.lmdb._checked`).
_Checked = tuple[list[KeyRange], _Puts, list[tuple[bytes, int]]]


class StoreLog(CommitLog[LMDBStore]):
    """The log kept in an LMDB store's metadata database, shared by every process."""

    def begin(self) -> tuple[KVStore, int]:
        snap, raw = self._store._snapshot_and_meta(VERSION_KEY)
        return snap, 0 if raw is None else _U64.unpack_from(raw)[0]  # version_of (R6)

    def atomic(self, fn: Callable[[LogBatch], T], sync: bool | None) -> T:
        return self._store._atomic(fn, sync)

    def commit(self, writes: Writes, reads: Reads, since: int | None, sync: bool | None) -> int:
        # commit_all's steps for one commit, inlined where it saves calls (R6, P1g).
        store = self._store
        shape, encoded = self.entry(writes)
        parts = _parts(writes)
        meta = store._meta

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
            _apply_parts(store, txn, parts)
            now += 1
            key = _ENTRY_PREFIX + _U64.pack(now)
            value = _TIME.pack(time()) + encoded
            size = shape.size = len(key) + len(value)
            appended += size
            txn.put(key, value, db=meta)
            txn.put(VERSION_KEY, _TALLY.pack(now, appended, dropped), db=meta)
            self._appended, self._dropped = appended, dropped
            self._commits_since_trim += 1  # CommitLog.trim_due, inlined (R6)
            if self._commits_since_trim >= _TRIM_EVERY or appended - dropped > self.keep_bytes:
                self._trim(LMDBBatch(store, txn), now)
            return now

        version: int = store._write(write, sync)
        self._remember(version, shape)
        return version

    def commit_all(
        self, commits: list[tuple[Writes, Reads, int | None]], sync: bool | None
    ) -> list[int | RetryTransaction]:
        """Validate ``(writes, reads, snapshot version)`` commits in order, in one write.

        Each is checked against the log and the commits before it here, as :meth:`commit`
        checks one; returns each one's version, or the :class:`~kvstore.RetryTransaction`
        that refused it (it wrote nothing).  Any other error leaves nothing written for any.
        """
        store = self._store
        meta = store._meta
        entries = [(*self.entry(writes), _parts(writes)) for writes, _, _ in commits]
        pending: dict[int, Shape] = {}

        def write(txn: Any) -> list[int | RetryTransaction]:
            # May run more than once: start afresh (see commit).
            pending.clear()
            outcomes: list[int | RetryTransaction] = []
            now, appended, dropped = _tally(txn.get(VERSION_KEY, db=meta))
            for (_, reads, since), (shape, encoded, parts) in zip(commits, entries, strict=True):
                if since is not None and since != now:
                    refusal = self.refusal(LMDBBatch(store, txn), reads, since, now, pending)
                    if refusal is not None:
                        outcomes.append(refusal)  # nothing of it is written
                        continue
                _apply_parts(store, txn, parts)
                now += 1
                appended += _put_entry(txn, meta, now, shape, encoded)
                pending[now] = shape
                outcomes.append(now)
            if pending:
                self._close_write(txn, now, appended, dropped)
            return outcomes

        outcomes: list[int | RetryTransaction] = store._write(write, sync)
        for version, shape in pending.items():
            self._remember(version, shape)
        return outcomes

    def _close_write(self, txn: Any, now: int, appended: int, dropped: int) -> None:
        """End a write that appended up to version ``now``: the version record, and a trim
        when one is due."""
        txn.put(VERSION_KEY, _TALLY.pack(now, appended, dropped), db=self._store._meta)
        self._appended, self._dropped = appended, dropped
        if self.trim_due():
            self._trim(LMDBBatch(self._store, txn), now)


def _tally(raw: bytes | None) -> tuple[int, int, int]:
    """The version record: version, bytes appended, bytes dropped (the usual one unpacked
    without a further call, PERFORMANCE R6)."""
    if raw is not None and len(raw) == _TALLY.size:
        version, appended, dropped = _TALLY.unpack(raw)
        return version, appended, dropped
    return _read_tally(raw)


def _put_entry(txn: Any, meta: Any, version: int, shape: Shape, encoded: bytes) -> int:
    """Put commit ``version``'s log entry (CommitLog.records, inlined: R6, P1g); its size."""
    key = _ENTRY_PREFIX + _U64.pack(version)
    value = _TIME.pack(time()) + encoded
    txn.put(key, value, db=meta)
    size = shape.size = len(key) + len(value)
    return size


def _apply_parts(store: LMDBStore, txn: Any, parts: Writes | _Checked) -> None:
    """Apply what :func:`_parts` made of a commit's writes."""
    data, empty = store._data, store._empty
    if not isinstance(parts, Writes):
        _apply(txn, data, empty, *parts)
        return
    # A few puts and adjustments, straight from the Writes' dicts (PERFORMANCE P1g, R6).
    put = txn.put
    for key, value in dict.items(parts.puts):
        if key:
            put(key, value, db=data)
        else:
            put(_EMPTY_SLOT, value, db=empty)
    for key, amount in dict.items(parts.adjusts):
        _adjust(txn, data if key else empty, key or _EMPTY_SLOT, amount)


def _parts(writes: Writes) -> Writes | _Checked:
    """What a commit applies: a ``Writes`` of a few puts and adjustments and no removes is
    put straight from its dicts, with no checked copy of them (PERFORMANCE P1g, R6); any
    other is checked (:func:`~kvstore.backends.lmdb._checked`)."""
    removes = writes.removes
    if (
        type(writes) is Writes
        and not removes._ends
        and not removes._pending
        and dict.__len__(writes.puts) <= FEW_KEYS
        and dict.__len__(writes.adjusts) <= FEW_KEYS
    ):
        return writes
    return _checked(writes)
