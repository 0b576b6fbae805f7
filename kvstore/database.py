"""Optimistic, serializable transactions: :class:`Database`, :class:`Transaction`, :func:`open`.

A transaction is a :class:`~kvstore.MutableView` over a snapshot of the store.  It records
what it reads and writes; at commit its reads are checked against every commit made since its
snapshot (by any thread, or any process sharing an LMDB path, through the commit log), and
its writes are applied atomically.  Counter adjustments made without reading the counter are
recorded blind, so they commute and never conflict.

Concurrent committers in one process share a write.  With durability sync the first to
arrive becomes the leader, takes every commit queued behind it, validates them one by one in
order against the log and each other, and applies all that pass in one store write — one
fsync for the lot.  Without an fsync to share, nobody waits to gather a group: a commit is
written alone, except that commits queued while another was being written go together in
the next write (:meth:`Database._commit_alone`).
"""

from __future__ import annotations

import collections
import functools
import os
import random
import threading
import time
from collections.abc import Callable
from enum import Enum
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

import attrs

from kvstore.backends.lmdb import LMDBStore
from kvstore.backends.lmdblog import StoreLog
from kvstore.backends.memory import MemoryStore
from kvstore.commitlog import DEFAULT_HISTORY_BYTES, CommitLog, LocalLog, LogBatch, Shape
from kvstore.errors import (
    KVError,
    RetryTransaction,
    StaleTransaction,
    StoreClosed,
    TransactionConflict,
)
from kvstore.mutations import Writes
from kvstore.reads import Reads
from kvstore.store import AtomicKVStore, Closeable, KVPair, KVStore, RangeIterator, ReadOnlyStore
from kvstore.validate import check_bool, check_int, check_map_size, check_number
from kvstore.view import MutableView

__all__ = ["Database", "DatabaseStats", "Transaction", "open"]

R = TypeVar("R")
P = ParamSpec("P")

DURABILITIES = ("sync", "async", "none")

#: The most commits a history window may be asked to keep (versions are signed 64-bit).
MAX_HISTORY_COMMITS = 2**63 - 1
#: The largest byte budget of the commit log (its tally is stored as unsigned 64-bit).
MAX_HISTORY_BYTES = 2**63 - 1
_ASYNC_FLUSH_SECONDS = 0.5
#: How long a group-commit leader waits for followers (a fraction of one fsync).
_GATHER_SECONDS = 0.0002


@attrs.frozen
class DatabaseStats:
    """Counters of one :class:`Database` object, plus the store's version and size."""

    commits: int
    conflicts: int
    retries: int
    version: int
    size_bytes: int
    too_old: int = 0


class _State(Enum):
    ACTIVE = "active"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"
    FAILED = "failed"


class _FirstRead(ReadOnlyStore):
    """Stands in for a transaction's snapshot until the transaction first reads the store.

    Its first read opens the real snapshot, makes it the transaction's base, and is served
    by it; later reads go straight to the snapshot.  So a transaction that only writes
    (blind puts, counter adjustments) never opens one, as FoundationDB fetches its read
    version only at the first read (PERFORMANCE P1 counters).
    """

    __slots__ = ("_tx",)

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, key: bytes) -> bytes | None:
        return self._tx._open_snapshot().get(key)

    def get_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None, reverse: bool = False
    ) -> RangeIterator:
        return self._tx._open_snapshot().get_range(min_key, max_key, reverse)

    def get_at_least(
        self, min_key: bytes | None, max_key: bytes | None = None
    ) -> KVPair | None:
        return self._tx._open_snapshot().get_at_least(min_key, max_key)

    def get_at_most(self, max_key: bytes | None, min_key: bytes | None = None) -> KVPair | None:
        return self._tx._open_snapshot().get_at_most(max_key, min_key)


class _Ended(ReadOnlyStore):
    """The base of every ended transaction: any read that gets past the checks fails."""

    __slots__ = ()

    def get(self, key: bytes) -> bytes | None:
        raise StaleTransaction("the transaction has ended")

    def get_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None, reverse: bool = False
    ) -> RangeIterator:
        raise StaleTransaction("the transaction has ended")

    def get_at_least(
        self, min_key: bytes | None, max_key: bytes | None = None
    ) -> KVPair | None:
        raise StaleTransaction("the transaction has ended")

    def get_at_most(self, max_key: bytes | None, min_key: bytes | None = None) -> KVPair | None:
        raise StaleTransaction("the transaction has ended")


_ENDED = _Ended()


class Transaction(MutableView):
    """One optimistic transaction: a view over a snapshot that commits through its database.

    Use it as a context manager (commit on normal exit, roll back on an exception), or call
    :meth:`commit` / :meth:`rollback`.  Once ended, any use raises
    :class:`~kvstore.StaleTransaction`, except ``rollback()`` and ``close()``.
    """

    def __init__(self, db: Database, read_only: bool) -> None:
        self._init(_FirstRead(self), Writes(), Reads())
        self._db = db
        self._snapshot: KVStore | None = None  # opened by the first read of the store
        self._version: int | None = None
        self._state = _State.ACTIVE
        self._committed_version: int | None = None
        if read_only:
            self.set_read_only()

    def _open_snapshot(self) -> KVStore:
        """The transaction's snapshot, taken now if it has not read the store yet."""
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None:
                if self._state is not _State.ACTIVE:
                    raise self._stale()
                db = self._db
                if db._closed:  # Database._begin, inlined (R6)
                    raise StoreClosed("the database is closed")
                snapshot, self._version = db._log.begin()
                self._snapshot = snapshot
                self._base = snapshot
                self._base_get = snapshot.get
            return snapshot

    @property
    def base(self) -> KVStore:
        """The snapshot the transaction reads (taken now if it has not read yet)."""
        return self._open_snapshot()

    @property
    def version(self) -> int:
        """The commit version this transaction's snapshot shows.

        The snapshot is taken at the transaction's first read of the store (asking for the
        version counts as one), so a transaction that only writes never opens one.
        """
        self._open_snapshot()
        assert self._version is not None
        return self._version

    @property
    def committed_version(self) -> int | None:
        """The version this transaction's commit became; ``None`` before a commit that wrote.

        A committed transaction that wrote nothing keeps ``None``: it changed nothing.
        """
        return self._committed_version

    @property
    def active(self) -> bool:
        """Whether the transaction can still be used."""
        return self._state is _State.ACTIVE

    def _stale(self) -> StaleTransaction:
        return StaleTransaction(f"the transaction has ended ({self._state.value})")

    def _closed_error(self) -> KVError:
        return self._stale()

    def rebase(self, new_base: KVStore) -> None:
        raise TypeError("a transaction cannot be rebased")

    def clone(self) -> MutableView:
        """A plain :class:`MutableView` with copies of this transaction's reads and writes."""
        if self._state is not _State.ACTIVE:
            raise self._stale()
        snapshot = self._open_snapshot()
        view = super().clone()
        view.rebase(snapshot)
        return view

    # -- ending ----------------------------------------------------------------------------------
    def _end(self, state: _State) -> None:
        self._state = state
        if self._open_iterators:
            MutableView.close(self)  # closes open iterators; later use raises StaleTransaction
        else:
            self._closed = True  # MutableView.close with nothing open (PERFORMANCE P1g)
        if self._snapshot is not None:
            self._close_snapshot()
        # A transaction that never read still reads through its _FirstRead, which refers
        # back to it: break that cycle, so the transaction is freed at once, not by the
        # garbage collector (PERFORMANCE P1g, R10).  Every later read raises StaleTransaction
        # before it reaches the base.
        self._base = _ENDED
        self._base_get = _ENDED.get

    def _close_snapshot(self) -> None:
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            snapshot.close()

    def commit(self) -> None:
        """Validate and apply the transaction, or raise.

        Raises :class:`~kvstore.TransactionConflict` when something it read was changed by a
        commit since its snapshot, :class:`~kvstore.TransactionTooOld` when its snapshot is
        older than the history kept.  Either way the transaction has ended.
        """
        with self._lock:
            if self._state is not _State.ACTIVE:
                raise self._stale()
            writes = self._writes
            # Open iterators first record what they read so far (the reads property).
            reads = self.reads if self._open_iterators else self._reads
            snapshot = self._snapshot
            try:
                if snapshot is None:
                    version = None  # a transaction that never read has nothing to validate
                else:
                    version = self._version
                    self._snapshot = None
                    snapshot.close()  # before writing: lets the store grow its map
                # (Writes.__bool__ and Database._commit's first steps, inlined: P1g, R6.)
                removes = writes.removes
                if writes.puts or writes.adjusts or removes._ends or removes._pending:
                    db = self._db
                    if db._sync is None and reads is not None and not db._closed:
                        self._committed_version = db._commit_alone(writes, reads, version)
                    else:
                        self._committed_version = db._commit(writes, reads, version)
            except BaseException:
                self._end(_State.FAILED)
                raise
            self._end(_State.COMMITTED)

    def rollback(self) -> None:
        """Discard the transaction.  A no-op once it has ended."""
        with self._lock:
            if self._state is _State.ACTIVE:
                self._end(_State.ROLLED_BACK)

    def close(self) -> None:
        """Roll back if still active; idempotent."""
        self.rollback()

    def __enter__(self) -> Transaction:
        if self._state is not _State.ACTIVE:
            raise self._stale()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._state is _State.ACTIVE:
            self.commit()
        else:
            self.rollback()

    def __repr__(self) -> str:
        at = "before its first read" if self._version is None else f"at version {self._version}"
        return f"<Transaction {self._state.value} {at}>"


class _Request:
    """One transaction waiting for the group-commit leader to write it.

    ``_waiting`` is held from creation until the outcome is known, so the committing thread
    waits on its own lock and is woken alone (no thundering herd, PERFORMANCE R7/R10).
    """

    __slots__ = ("_waiting", "committed", "error", "lead", "reads", "version", "writes")

    def __init__(self, writes: Writes, reads: Reads, version: int | None) -> None:
        self.writes = writes
        self.reads = reads
        self.version = version
        self.error: BaseException | None = None
        self.committed = 0  # the version this commit became
        self.lead = False  # woken to lead the next group rather than with an outcome
        self._waiting = threading.Lock()
        self._waiting.acquire()

    def finish(self, error: BaseException | None) -> None:
        self.error = error
        self._waiting.release()

    def promote(self) -> None:
        """Wake this request's thread to lead the next group."""
        self.lead = True
        self._waiting.release()

    def wait(self) -> None:
        self._waiting.acquire()


class _Queued:
    """A commit queued for whoever holds the solo lock next (:meth:`Database._commit_alone`).

    ``outcome`` is set, under the lock, to its version or to the error that refused it.
    """

    __slots__ = ("outcome", "reads", "version", "writes")

    def __init__(self, writes: Writes, reads: Reads, version: int | None) -> None:
        self.writes = writes
        self.reads = reads
        self.version = version
        self.outcome: int | BaseException | None = None


class Database(Closeable):
    """Transactions over an :class:`~kvstore.AtomicKVStore`.

    ``durability`` is ``"sync"`` (a commit survives power loss once ``commit()`` returns),
    ``"async"`` (flushed in the background) or ``"none"`` (left to the OS); the last two
    survive a process crash but may lose the latest commits on an OS crash.  The commit history
    covers at least ``history_seconds`` and ``history_commits`` as long as its entries fit in
    ``history_bytes`` (default 4 MiB; big commits are recorded coarsely, see
    :mod:`kvstore.commitlog`); older snapshots get :class:`~kvstore.TransactionTooOld`.
    """

    def __init__(
        self,
        store: AtomicKVStore,
        *,
        durability: str = "sync",
        history_seconds: float = 10.0,
        history_commits: int = 10_000,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        owns_store: bool = False,
    ) -> None:
        if not isinstance(store, AtomicKVStore):
            raise TypeError(f"store must be an AtomicKVStore, not {type(store).__name__}")
        _check_durability(durability)
        history_seconds = check_number(history_seconds, "history_seconds", minimum=0)
        history_commits = check_int(
            history_commits, "history_commits", minimum=1, maximum=MAX_HISTORY_COMMITS
        )
        history_bytes = check_int(
            history_bytes, "history_bytes", minimum=1, maximum=MAX_HISTORY_BYTES
        )
        check_bool(owns_store, "owns_store")
        self._store = store
        self._owns_store = owns_store
        self._durability = durability
        self._log: CommitLog[Any]
        make_log = getattr(store, "_make_commit_log", None)
        if isinstance(store, LMDBStore):
            self._log = StoreLog(store, history_seconds, history_commits, history_bytes)
        elif make_log is not None:
            # A store shared beyond this process (PostgreSQL) keeps the log itself.
            self._log = make_log(history_seconds, history_commits, history_bytes)
        else:
            self._log = LocalLog(store, history_seconds, history_commits, history_bytes)
        self._sync: bool | None = True if durability == "sync" else None
        self._queue: list[_Request] = []
        self._queue_cond = threading.Condition(threading.Lock())
        self._expect = 1  # how many commits the last groups held: a leader waits for that many
        self._solo_lock = threading.Lock()
        self._waiting: collections.deque[_Queued] = collections.deque()  # see _commit_alone
        self._leading = False
        # Commits that do not share an fsync go one at a time under _solo_lock: they count
        # themselves under it too (PERFORMANCE P1g, R10).
        self._stats_lock = self._solo_lock if self._sync is None else threading.Lock()
        self._closed = False
        self._commits = 0
        self._conflicts = 0
        self._retries = 0
        self._too_old = 0
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        if durability == "async" and isinstance(store, LMDBStore):
            self._flusher = threading.Thread(
                target=self._flush_loop, daemon=True, name="kvstore-flush"
            )
            self._flusher.start()

    @property
    def store(self) -> AtomicKVStore:
        """The store the database commits to."""
        return self._store

    @property
    def durability(self) -> str:
        return self._durability

    # -- transactions ----------------------------------------------------------------------------
    def transaction(self, read_only: bool = False) -> Transaction:
        """Begin a transaction; its snapshot is taken at its first read of the store."""
        if read_only is not False and read_only is not True:
            check_bool(read_only, "read_only")
        if self._closed:
            raise StoreClosed("the database is closed")
        return Transaction(self, read_only)

    def _commit(self, writes: Writes, reads: Reads | None, version: int | None) -> int:
        """Queue a commit and wait for its outcome.

        The first committer to find no leader becomes the leader: it writes every commit
        queued so far as one group — one store write, one fsync — and then hands the lead to
        the first commit queued while it wrote.  The others just wait for their outcome.
        """
        if self._closed:
            raise StoreClosed("the database is closed")
        if reads is None:
            reads = Reads()
        if self._sync is None:
            return self._commit_alone(writes, reads, version)
        request = _Request(writes, reads, version)
        cond = self._queue_cond
        with cond:
            self._queue.append(request)
            lead = not self._leading
            self._leading = True
            if len(self._queue) >= self._expect:
                cond.notify()
        if not lead:
            request.wait()
            lead = request.lead
        if lead:
            # Write everything queued (our own request among it), then hand the lead to the
            # first request queued meanwhile: it has gathered the others while we wrote.
            with cond:
                # Committers just released by the last group are still finishing their next
                # transaction: wait a little (far less than an fsync) for as many as last time.
                deadline = time.monotonic() + _GATHER_SECONDS
                while len(self._queue) < self._expect:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    cond.wait(remaining)
                group, self._queue = self._queue, []
                self._expect = max(len(group), self._expect - 1)
            self._write_group(group)
            with cond:
                if self._queue:
                    self._queue[0].promote()
                else:
                    self._leading = False
            request.wait()
        if request.error is not None:
            raise request.error
        return request.committed

    def _commit_alone(self, writes: Writes, reads: Reads, version: int | None) -> int:
        """Commit without an fsync to share (durability none/async): in turn, under _solo_lock.

        Handing groups between threads costs more than a write this short (PERFORMANCE R10),
        so nobody waits to gather a group.  But a committer that finds the lock taken queues
        its commit before it waits: whoever holds the lock next writes everything queued by
        then in its one write (:meth:`StoreLog.commit_all`), and the others find their
        outcome when they get the lock in turn (flat combining).  The solo lock is also the
        stats lock here (see __init__).
        """
        lock = self._solo_lock
        waiting = self._waiting
        if lock.acquire(False):  # (positional: no keyword parsing, R6)
            try:
                if not waiting:  # nobody queued: the usual, uncontended commit (R6, P1g)
                    try:
                        committed = self._log.commit(writes, reads, version, None)
                    except RetryTransaction as e:
                        self._count(e)
                        raise
                    self._commits += 1
                    return committed
                mine = _Queued(writes, reads, version)
                waiting.append(mine)
                self._write_waiting()
            finally:
                lock.release()
        else:
            mine = _Queued(writes, reads, version)
            waiting.append(mine)  # before waiting: the holder, or the next, takes it along
            with lock:
                if mine.outcome is None:  # nobody took it: it is still queued
                    self._write_waiting()
        outcome = mine.outcome
        if isinstance(outcome, int):
            return outcome
        assert outcome is not None
        raise outcome

    def _write_waiting(self) -> None:
        """Write every queued commit in one store write and set their outcomes (the caller
        holds _solo_lock)."""
        waiting = self._waiting
        group = [waiting.popleft() for _ in range(len(waiting))]
        log = self._log
        try:
            if len(group) == 1 or not isinstance(log, StoreLog):
                for item in group:
                    try:
                        item.outcome = log.commit(item.writes, item.reads, item.version, None)
                    except RetryTransaction as e:
                        item.outcome = e
            else:
                outcomes = log.commit_all(
                    [(item.writes, item.reads, item.version) for item in group], None
                )
                for item, outcome in zip(group, outcomes, strict=True):
                    item.outcome = outcome
        except BaseException as e:
            for item in group:
                if item.outcome is None:
                    item.outcome = e
        for item in group:
            self._count(None if isinstance(item.outcome, int) else item.outcome)

    def _count(self, error: BaseException | None) -> None:
        """Count one commit's outcome in :meth:`stats` (the caller holds ``_stats_lock``)."""
        if error is None:
            self._commits += 1
        elif isinstance(error, TransactionConflict):
            self._conflicts += 1
        elif isinstance(error, RetryTransaction):
            self._too_old += 1

    def _write_group(self, group: list[_Request]) -> None:
        """Validate the group's commits in order and write all that pass in one write."""
        log = self._log
        if isinstance(log, StoreLog):  # straight through py-lmdb (PERFORMANCE R7)
            try:
                outcomes = log.commit_all(
                    [(req.writes, req.reads, req.version) for req in group], self._sync
                )
            except BaseException as e:
                for req in group:
                    req.finish(e)
                return
            with self._stats_lock:
                for outcome in outcomes:
                    self._count(None if isinstance(outcome, int) else outcome)
            for req, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, int):
                    req.committed = outcome
                    req.finish(None)
                else:
                    req.finish(outcome)
            return
        pending: dict[int, Shape] = {}

        def write(batch: LogBatch) -> dict[int, BaseException]:
            # May run more than once (the store may start the write over): start afresh.
            errors: dict[int, BaseException] = {}
            pending.clear()
            version = log.read_version(batch)
            for i, req in enumerate(group):
                refusal = log.refusal(batch, req.reads, req.version, version, pending)
                if refusal is not None:
                    errors[i] = refusal
                    continue
                version = log.append(batch, version, req.writes, pending)
                req.committed = version
            log.trim(batch, version)
            return errors

        try:
            errors = log.atomic(write, self._sync)
        except BaseException as e:
            for req in group:
                req.finish(e)
            return
        log.remember(pending)
        with self._stats_lock:
            for i in range(len(group)):
                self._count(errors.get(i))
        for i, req in enumerate(group):
            req.finish(errors.get(i))

    # -- retry loops -----------------------------------------------------------------------------
    def run(self, fn: Callable[..., R], *args: Any, retries: int = 10, **kwargs: Any) -> R:
        """Call ``fn(tx, *args, **kwargs)`` in a new transaction, commit, return its result.

        On :class:`~kvstore.RetryTransaction` it tries again, up to ``retries`` more times,
        with jittered exponential backoff; then re-raises the last error, whose ``attempts``
        says how many attempts were made.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        if type(retries) is not int or retries < 0:  # the checker's call only when needed (R6)
            _check_retries(retries)
        attempt = 0
        while True:
            attempt += 1
            if self._closed:
                raise StoreClosed("the database is closed")
            tx = Transaction(self, False)  # self.transaction(), its checks made (R6)
            try:
                result = fn(tx, *args, **kwargs)
                tx.commit()
                return result
            except RetryTransaction as e:
                tx.rollback()
                e.attempts = attempt
                if attempt > retries:
                    raise
                with self._stats_lock:
                    self._retries += 1
                time.sleep(_backoff(attempt))
            except BaseException:
                tx.rollback()
                raise

    @overload
    def transactional(self, fn: Callable[Concatenate[Transaction, P], R], /) -> Callable[P, R]: ...

    @overload
    def transactional(
        self, fn: None = None, /, *, retries: int = 10
    ) -> Callable[[Callable[Concatenate[Transaction, P], R]], Callable[P, R]]: ...

    def transactional(
        self, fn: Callable[Concatenate[Transaction, P], R] | None = None, /, *, retries: int = 10
    ) -> Callable[P, R] | Callable[[Callable[Concatenate[Transaction, P], R]], Callable[P, R]]:
        """Decorate ``f(tx, *args)`` so callers write ``f(*args)``; bare or ``(retries=N)``.

        Called with a :class:`Transaction` as its first argument, the function runs inside that
        transaction instead, without committing or retrying.
        """

        _check_retries(retries)

        def decorate(f: Callable[Concatenate[Transaction, P], R]) -> Callable[P, R]:
            if not callable(f):
                raise TypeError(f"transactional needs a function, not {type(f).__name__}")

            # Typed as the callers' form, f(*args); f(tx, *args) inside a transaction is the
            # same call at run time, which a ParamSpec cannot also express.
            @functools.wraps(f)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                if args and isinstance(args[0], Transaction):
                    return f(*args, **kwargs)  # type: ignore[arg-type]
                return self.run(f, *args, retries=retries, **kwargs)

            return wrapper

        return decorate(fn) if fn is not None else decorate

    # -- information -----------------------------------------------------------------------------
    def stats(self) -> DatabaseStats:
        """Commit and conflict counts of this object, and the store's version and size."""
        snapshot, version = self._log.begin()
        snapshot.close()
        with self._stats_lock:
            return DatabaseStats(
                commits=self._commits,
                conflicts=self._conflicts,
                retries=self._retries,
                version=version,
                size_bytes=_size_of(self._store),
                too_old=self._too_old,
            )

    # -- life cycle ------------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        store = self._store
        while not self._stop.wait(_ASYNC_FLUSH_SECONDS):
            try:
                store.sync()  # type: ignore[attr-defined]
            except KVError:
                return

    def close(self) -> None:
        """Close the database (and the store, when :func:`open` made it).  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        if self._owns_store:
            if self._durability == "async" and isinstance(self._store, LMDBStore):
                self._store.sync()
            self._store.close()


    def __repr__(self) -> str:
        return f"<Database on {type(self._store).__name__}, durability={self._durability}>"


def _check_durability(durability: Any) -> None:
    """``TypeError`` unless a ``str``; ``ValueError`` unless one of :data:`DURABILITIES`."""
    if not isinstance(durability, str):
        raise TypeError(f"durability must be a str, not {type(durability).__name__}")
    if durability not in DURABILITIES:
        raise ValueError(f"durability must be one of {DURABILITIES}, not {durability!r}")


def _check_retries(retries: Any) -> None:
    check_int(retries, "retries", minimum=0)


def _backoff(attempt: int) -> float:
    """Jittered exponential backoff: about 1 ms doubling per attempt, capped near 0.2 s."""
    base = min(0.001 * (2 ** (attempt - 1)), 0.2)
    return base * random.uniform(0.5, 1.5)


def _size_of(store: AtomicKVStore) -> int:
    if isinstance(store, LMDBStore):
        return store.size_bytes()
    size_bytes = getattr(store, "size_bytes", None)
    if callable(size_bytes):
        return int(size_bytes())
    if isinstance(store, MemoryStore):
        with store.get_range() as it:
            return sum(len(k) + len(v) for k, v in it)
    return 0


def _is_postgres_url(path: object) -> bool:
    return isinstance(path, str) and path.startswith(("postgresql://", "postgres://"))


def open(
    path: str | os.PathLike[str] | None = None,
    *,
    durability: str = "sync",
    history_seconds: float = 10.0,
    history_commits: int = 10_000,
    history_bytes: int = DEFAULT_HISTORY_BYTES,
    map_size: int | None = None,
    readonly: bool = False,
    create: bool = True,
    table: str | None = None,
) -> Database:
    """Open a database: LMDB at ``path`` (a directory), in memory when ``path`` is None.

    A ``postgresql://`` (or ``postgres://``) URL opens a
    :class:`~kvstore.backends.postgres.PostgresStore` (``table`` names its table), whose
    commit log lives in the database: conflicts are detected between clients on every
    machine.  ``durability="sync"`` commits with the server's ``synchronous_commit``;
    ``"async"`` and ``"none"`` with ``synchronous_commit = off``.
    """
    _check_durability(durability)
    check_number(history_seconds, "history_seconds", minimum=0)
    check_int(history_commits, "history_commits", minimum=1, maximum=MAX_HISTORY_COMMITS)
    check_int(history_bytes, "history_bytes", minimum=1, maximum=MAX_HISTORY_BYTES)
    check_bool(readonly, "readonly")
    check_bool(create, "create")
    if map_size is not None:
        check_map_size(map_size)
    store: AtomicKVStore
    if table is not None and not _is_postgres_url(path):
        raise ValueError("table is only for a postgresql:// URL")
    if path is None:
        store = MemoryStore()
    elif _is_postgres_url(path):
        assert isinstance(path, str)
        if readonly or map_size is not None:
            raise ValueError("readonly and map_size are LMDB options, not for PostgreSQL")
        from kvstore.backends.postgres import PostgresStore  # optional extra: only when asked

        store = PostgresStore(path, table=table or "kvstore", sync=durability == "sync")
    else:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        store = LMDBStore(
            path, map_size=map_size, sync=durability == "sync", readonly=readonly, create=create
        )
    try:
        return Database(
            store,
            durability=durability,
            history_seconds=history_seconds,
            history_commits=history_commits,
            history_bytes=history_bytes,
            owns_store=True,
        )
    except BaseException:
        store.close()
        raise
