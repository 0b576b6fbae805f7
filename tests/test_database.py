"""Transactions: commit, rollback, conflicts, counters, retries, durability, multi-process."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

import kvstore
from kvstore import (
    Database,
    MemoryStore,
    ReadRemoveConflict,
    ReadWriteConflict,
    RetryTransaction,
    StaleTransaction,
    Transaction,
    TransactionConflict,
    TransactionTooOld,
    Writes,
)
from kvstore.commitlog import _TRIM_EVERY
from kvstore.counters import decode_counter, encode_counter
from tests import pgserver
from tests.serializability import ACCOUNTS, START, check_history, run_workers

#: Where a database shared by processes lives: a path or URL, and the options to open it.
Target = tuple[str, dict[str, str]]


@pytest.fixture(params=["lmdb", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """A database several processes can open: an LMDB path, or a PostgreSQL URL and table."""
    if request.param == "postgres":
        return pgserver.dsn(), {"table": pgserver.fresh_table()}
    return str(tmp_path / "db"), {}


def _open(target: Target, durability: str = "none") -> Database:
    return kvstore.open(target[0], durability=durability, **target[1])  # type: ignore[arg-type]


# -- basics --------------------------------------------------------------------------------------
def test_commit_makes_writes_visible(db: Database) -> None:
    with db.transaction() as tx:
        tx.put(b"a", b"1")
        assert tx.get(b"a") == b"1"
    with db.transaction() as tx:
        assert tx.get(b"a") == b"1"


def test_rollback_discards(db: Database) -> None:
    tx = db.transaction()
    tx.put(b"a", b"1")
    tx.rollback()
    with db.transaction() as tx2:
        assert tx2.get(b"a") is None


def test_exception_in_with_rolls_back(db: Database) -> None:
    with pytest.raises(ZeroDivisionError), db.transaction() as tx:
        tx.put(b"a", b"1")
        _ = 1 / 0
    with db.transaction() as tx2:
        assert tx2.get(b"a") is None


def test_snapshot_isolation(db: Database) -> None:
    with db.transaction() as tx:
        tx.put(b"a", b"1")
    reader = db.transaction()
    assert reader.get(b"b") is None  # the first read takes the snapshot
    with db.transaction() as tx:
        tx.put(b"a", b"2")
    assert reader.get(b"a") == b"1"
    reader.rollback()


def test_snapshot_is_taken_at_the_first_read(db: Database) -> None:
    """As FoundationDB's read version: a transaction sees what was committed before it read."""
    tx = db.transaction()
    db.run(lambda t: t.put(b"a", b"1"))
    assert tx.get(b"a") == b"1"
    version = tx.version
    db.run(lambda t: t.put(b"a", b"2"))
    assert tx.get(b"a") == b"1" and tx.version == version
    tx.rollback()


def test_a_transaction_that_never_reads_is_never_too_old(tmp_path: Path) -> None:
    """A write-only transaction opens no snapshot, so no history can have passed it by."""
    with kvstore.open(tmp_path / "db", durability="none", history_commits=1,
                      history_seconds=0) as db:
        db.run(lambda t: t.put(b"n", encode_counter(41)))
        tx = db.transaction()
        tx.adjust_counter(b"n", 1)
        tx.put(b"k", b"v")
        for i in range(_TRIM_EVERY + 10):  # the log is trimmed every _TRIM_EVERY commits
            with db.transaction() as other:
                other.put(b"other", b"%d" % i)
        tx.commit()
        assert tx.committed_version is not None
        with db.transaction() as check:
            assert check.get(b"k") == b"v"
            assert decode_counter(check.get(b"n") or b"") == 42


def test_a_transaction_that_read_is_still_too_old(tmp_path: Path) -> None:
    with kvstore.open(tmp_path / "db", durability="none", history_commits=1,
                      history_seconds=0) as db:
        tx = db.transaction()
        tx.get(b"x")
        for i in range(_TRIM_EVERY + 10):  # the log is trimmed every _TRIM_EVERY commits
            with db.transaction() as other:
                other.put(b"other", b"%d" % i)
        tx.put(b"k", b"v")
        with pytest.raises(TransactionTooOld):
            tx.commit()


def test_ended_transaction_is_stale(db: Database) -> None:
    tx = db.transaction()
    tx.commit()
    for call in (
        lambda: tx.get(b"a"),
        lambda: tx.put(b"a", b"1"),
        tx.commit,
        lambda: tx.get_range(),
    ):
        with pytest.raises(StaleTransaction):
            call()
    tx.rollback()
    tx.close()


def test_failed_commit_ends_the_transaction(db: Database) -> None:
    t1, t2 = db.transaction(), db.transaction()
    t1.get(b"k")
    t1.put(b"k", b"1")
    t2.put(b"k", b"2")
    t2.commit()
    with pytest.raises(TransactionConflict):
        t1.commit()
    with pytest.raises(StaleTransaction):
        t1.get(b"k")
    t1.rollback()


def test_read_only_transaction(db: Database) -> None:
    with db.transaction(read_only=True) as tx:
        with pytest.raises(kvstore.ReadOnlyError):
            tx.put(b"a", b"1")
        assert tx.get(b"a") is None


def test_transaction_is_a_delta_store(db: Database) -> None:
    tx = db.transaction()
    assert isinstance(tx, kvstore.DeltaKVStore)
    tx.put(b"x", b"1")
    assert tx.writes.puts == {b"x": b"1"}
    tx.rollback()


# -- conflicts -----------------------------------------------------------------------------------
def test_read_write_conflict_is_reported_precisely(db: Database) -> None:
    t1 = db.transaction()
    assert t1.get(b"k") is None
    t1.put(b"other", b"x")
    with db.transaction() as t2:
        t2.put(b"k", b"v")
    with pytest.raises(TransactionConflict) as info:
        t1.commit()
    assert info.value.conflicts == [ReadWriteConflict(b"k")]
    assert isinstance(info.value, RetryTransaction)


def test_range_read_conflicts_with_remove(db: Database) -> None:
    with db.transaction() as tx:
        tx.put(b"b", b"1")
    t1 = db.transaction()
    list(t1.get_range(b"a", b"c"))
    t1.put(b"z", b"1")
    with db.transaction() as t2:
        t2.remove_range(b"b", b"d")
    with pytest.raises(TransactionConflict) as info:
        t1.commit()
    assert info.value.conflicts == [ReadRemoveConflict(kvstore.KeyRange(b"b", b"c"))]


def test_disjoint_reads_and_writes_never_conflict(db: Database) -> None:
    t1, t2 = db.transaction(), db.transaction()
    t1.get(b"a")
    t1.put(b"b", b"1")
    t2.get(b"c")
    t2.put(b"d", b"1")
    t2.commit()
    t1.commit()


def test_write_only_transactions_do_not_conflict(db: Database) -> None:
    t1, t2 = db.transaction(), db.transaction()
    t1.put(b"k", b"1")
    t2.put(b"k", b"2")
    t2.commit()
    t1.commit()
    with db.transaction() as tx:
        assert tx.get(b"k") == b"1"


def test_transaction_that_wrote_nothing_always_commits(db: Database) -> None:
    t1 = db.transaction()
    t1.get(b"k")
    with db.transaction() as t2:
        t2.put(b"k", b"1")
    t1.commit()


def test_blind_counter_adjustments_commute(db: Database) -> None:
    with db.transaction() as tx:
        tx.put(b"n", encode_counter(0))
    txs = [db.transaction() for _ in range(5)]
    for tx in txs:
        tx.adjust_counter(b"n", 2)
    for tx in txs:
        tx.commit()
    with db.transaction() as tx:
        assert decode_counter(tx.get(b"n") or b"") == 10


def test_too_old_snapshot(tmp_path: Path) -> None:
    with kvstore.open(None, history_seconds=0, history_commits=1) as db:
        old = db.transaction()
        old.get(b"k")
        old.put(b"j", b"1")
        for i in range(_TRIM_EVERY + 10):  # the log is trimmed every _TRIM_EVERY commits
            with db.transaction() as tx:
                tx.put(b"x%d" % i, b"1")
        with pytest.raises(TransactionTooOld):
            old.commit()


# -- retries -------------------------------------------------------------------------------------
def test_run_retries_until_success(db: Database) -> None:
    calls = []

    def work(tx: Transaction, n: int) -> int:
        tx.get(b"k")
        calls.append(1)
        if len(calls) < 3:
            with db.transaction() as other:  # make this attempt conflict
                other.put(b"k", b"%d" % len(calls))
        tx.put(b"mine", b"1")
        return n * 2

    assert db.run(work, 21) == 42
    assert len(calls) == 3
    assert db.stats().retries == 2


def test_run_gives_up_with_attempt_count(db: Database) -> None:
    def always_conflict(tx: Transaction) -> None:
        tx.get(b"k")
        with db.transaction() as other:
            other.put(b"k", b"x")
        tx.put(b"y", b"1")

    with pytest.raises(TransactionConflict) as info:
        db.run(always_conflict, retries=2)
    assert info.value.attempts == 3


def test_transactional_decorator(db: Database) -> None:
    @db.transactional
    def put(tx: Transaction, key: bytes) -> None:
        tx.put(key, b"1")

    @db.transactional(retries=1)
    def get(tx: Transaction, key: bytes) -> bytes | None:
        return tx.get(key)

    put(b"a")
    assert get(b"a") == b"1"
    tx = db.transaction()
    put(tx, b"b")  # runs inside tx, no commit
    assert get(b"b") is None
    tx.commit()
    assert get(b"b") == b"1"


def test_stats(db: Database) -> None:
    with db.transaction() as tx:
        tx.put(b"a", b"1")
    stats = db.stats()
    assert stats.commits == 1 and stats.version == 1 and stats.size_bytes > 0
    assert stats.conflicts == 0


def test_open_accepts_pathlike_and_validates(tmp_path: Path) -> None:
    with kvstore.open(str(tmp_path / "s")) as db:
        assert db.durability == "sync"
    with pytest.raises(ValueError, match="durability"):
        kvstore.open(tmp_path / "x", durability="maybe")
    with pytest.raises(TypeError, match="path"):
        kvstore.open(42)  # type: ignore[arg-type]


def test_durability_modes_commit(tmp_path: Path) -> None:
    for mode in ("sync", "async", "none"):
        with kvstore.open(tmp_path / mode, durability=mode) as db, db.transaction() as tx:
            tx.put(b"k", mode.encode())
        with kvstore.open(tmp_path / mode) as db, db.transaction() as tx:
            assert tx.get(b"k") == mode.encode()


def test_database_over_any_atomic_store() -> None:
    db = Database(MemoryStore())
    with db.transaction() as tx:
        tx.put(b"k", b"v")
    assert db.store.get(b"k") == b"v"


def test_delta_recorded_in_a_transaction_ships_to_another_database(tmp_path: Path) -> None:
    with kvstore.open(None) as source, kvstore.open(tmp_path / "target") as target:
        tx = source.transaction()
        tx.put(b"a", b"1")
        tx.remove_range(b"b", b"c")
        blob = tx.writes.serialize()
        tx.commit()
        with target.transaction() as ttx:
            ttx.put(b"bb", b"gone")
        with target.transaction() as ttx:
            ttx.apply(Writes.deserialize(blob))
        with target.transaction() as ttx:
            assert list(ttx.get_range()) == [(b"a", b"1")]


# -- group commit --------------------------------------------------------------------------------
def test_concurrent_committers_each_get_their_outcome(shared: Target) -> None:
    with _open(shared, durability="sync") as db:
        results: dict[int, str] = {}

        def worker(n: int) -> None:
            for i in range(20):
                tx = db.transaction()
                tx.get(b"shared")  # everyone reads it; one in each group writes it
                tx.put(b"w%d-%d" % (n, i), b"1")
                if i % 5 == 0:
                    tx.put(b"shared", b"%d" % n)
                try:
                    tx.commit()
                    results[n * 100 + i] = "ok"
                except TransactionConflict:
                    results[n * 100 + i] = "conflict"

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 80
        with db.transaction() as tx:
            written = {p.key for p in tx.get_range(b"w", b"x")}
        ok = {b"w%d-%d" % divmod(k, 100) for k, v in results.items() if v == "ok"}
        assert written == ok
        stats = db.stats()
        assert stats.commits == len(ok)


def _store_writes(db: Database) -> int:
    """How many write transactions the LMDB environment has committed (0 for other stores)."""
    store = db.store
    if isinstance(store, kvstore.LMDBStore):
        return int(store._shared.env.info()["last_txnid"])
    return 0


@pytest.mark.parametrize("store", ["lmdb", "memory"])
def test_commits_queued_behind_a_busy_committer_are_written_together(
    tmp_path: Path, store: str
) -> None:
    """Durability none: committers that find the solo lock taken queue their commits, and the
    next holder writes them all at once (PERFORMANCE R10), each validated after the ones
    before it: of two that read and write one key, the second conflicts."""
    path = str(tmp_path / "db") if store == "lmdb" else None
    with kvstore.open(path, durability="none") as db:
        with db.transaction() as tx:
            tx.put(b"k", b"0")
            tx.put(b"n", encode_counter(0))
        outcomes: dict[str, object] = {}
        txs: dict[str, Transaction] = {}
        for name in ("first", "second"):  # both read k at the same version
            txs[name] = db.transaction()
            txs[name].get(b"k")
            txs[name].put(b"k", name.encode())
        txs["blind"] = db.transaction()
        txs["blind"].adjust_counter(b"n", 5)

        def commit(name: str) -> None:
            try:
                txs[name].commit()
                outcomes[name] = txs[name].committed_version
            except TransactionConflict as e:
                outcomes[name] = e

        before = db.stats()
        writes_before = _store_writes(db)
        threads: list[threading.Thread] = []
        with db._solo_lock:  # a committer is busy: everyone after it queues
            for name in ("first", "second", "blind"):
                threads.append(threading.Thread(target=commit, args=(name,)))
                threads[-1].start()
                while len(db._waiting) < len(threads):  # queued in this order
                    time.sleep(0.001)
        for t in threads:
            t.join()
        after = db.stats()
        if store == "lmdb":  # one LMDB write transaction for the three
            assert _store_writes(db) == writes_before + 1
        assert outcomes["first"] == before.version + 1
        assert isinstance(outcomes["second"], TransactionConflict)
        assert outcomes["blind"] == before.version + 2
        assert (after.commits - before.commits, after.conflicts - before.conflicts) == (2, 1)
        assert after.version == before.version + 2
        with db.transaction() as tx:
            assert tx.get(b"k") == b"first"
            assert decode_counter(tx.get(b"n") or b"") == 5
        assert not db._waiting


@pytest.mark.parametrize("store", ["lmdb", "memory"])
def test_a_group_commit_validates_each_commit_after_the_ones_before(
    tmp_path: Path, store: str
) -> None:
    """Durability sync: a leader writes its group in one write (for LMDB, StoreLog.commit_all,
    PERFORMANCE R7); of two commits that read and write one key, the second conflicts."""
    from kvstore.database import _Request

    path = str(tmp_path / "db") if store == "lmdb" else None
    with kvstore.open(path, durability="sync") as db:
        with db.transaction() as tx:
            tx.put(b"k", b"0")
        start = db.stats().version
        group = []
        for name in (b"first", b"second", b"blind"):
            writes, reads = Writes(), kvstore.Reads()
            if name == b"blind":
                writes.record_adjust(b"n", 1)
                group.append(_Request(writes, reads, None))
            else:
                reads.add_key(b"k")
                writes.record_put(b"k", name)
                group.append(_Request(writes, reads, start))
        writes_before = _store_writes(db)
        db._write_group(group)
        for request in group:
            request.wait()
        assert [r.committed for r in group if r.error is None] == [start + 1, start + 2]
        assert group[0].error is None and group[2].error is None
        assert isinstance(group[1].error, TransactionConflict)
        if store == "lmdb":
            assert _store_writes(db) == writes_before + 1
        stats = db.stats()
        assert (stats.commits, stats.conflicts, stats.version) == (3, 1, start + 2)
        with db.transaction() as tx:
            assert tx.get(b"k") == b"first"


# -- serializability checker (tests/serializability.py) ----------------------------------------
def _process_worker(target: Target, seed: int, n: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with _open(target) as db:
        queue.put(run_workers(None, db, seed, n))


def _run_in_threads(
    db: Database, seeds: Iterable[int], n: int
) -> list[tuple[int, dict[str, object], bytes]]:
    """Run ``n`` random transactions in one thread per seed (tests/serializability.py); the
    commits of all of them."""
    history: list[tuple[int, dict[str, object], bytes]] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        h = run_workers(None, db, seed, n)
        with lock:
            history.extend(h)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return history


@pytest.mark.slow
def test_serializable_across_threads_and_processes(shared: Target) -> None:
    with _open(shared) as db, db.transaction() as tx:
        for a in ACCOUNTS:
            tx.put(a, encode_counter(START))
        tx.put(b"ops", encode_counter(0))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(shared, 100 + i, 60, queue)) for i in range(2)
    ]
    for p in procs:
        p.start()
    with _open(shared) as db:
        history = _run_in_threads(db, range(3), 60)
        for _ in procs:
            history.extend(queue.get(timeout=120))
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        with db.transaction() as tx:
            final = dict(tx.get_range())
    assert len(history) == 5 * 60  # every transaction eventually committed, once
    check_history(history, final)
    ops = sum(1 for _, obs, _ in history if not obs)
    assert decode_counter(final[b"ops"]) == ops


@pytest.mark.parametrize("seed", [1, 2])
def test_serializable_when_contended_commits_are_written_together(
    tmp_path: Path, seed: int
) -> None:
    """Durability none, 4 threads on a few accounts: commits that find another being written
    queue and go together in the next write (PERFORMANCE R10); the history stays
    serializable in commit order."""
    with kvstore.open(tmp_path / "db", durability="none") as db:
        with db.transaction() as tx:
            for a in ACCOUNTS:
                tx.put(a, encode_counter(START))
            tx.put(b"ops", encode_counter(0))
        history = _run_in_threads(db, [seed * 10 + n for n in range(4)], 150)
        with db.transaction() as tx:
            final = dict(tx.get_range())
    assert len(history) == 4 * 150
    check_history(history, final)
    assert decode_counter(final[b"ops"]) == sum(1 for _, obs, _ in history if not obs)


def _counter_worker(target: Target, n: int) -> None:
    with _open(target) as db:
        for _ in range(n):
            tx = db.transaction()
            tx.adjust_counter(b"count", 1)
            tx.commit()  # never retried: blind adjustments cannot conflict


@pytest.mark.slow
def test_counters_from_processes_never_conflict(shared: Target) -> None:
    with _open(shared) as db, db.transaction() as tx:
        tx.put(b"count", encode_counter(0))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_counter_worker, args=(shared, 200)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    with _open(shared, durability="sync") as db, db.transaction() as tx:
        assert decode_counter(tx.get(b"count") or b"") == 600


def test_transaction_sees_commits_from_another_process_for_conflicts(shared: Target) -> None:
    with _open(shared) as db:
        tx = db.transaction()
        tx.get(b"k")
        tx.put(b"mine", b"1")
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=_counter_worker_put, args=(shared,))
        p.start()
        p.join(timeout=60)
        assert p.exitcode == 0
        with pytest.raises(TransactionConflict):
            tx.commit()


def _counter_worker_put(target: Target) -> None:
    with _open(target) as db, db.transaction() as tx:
        tx.put(b"k", b"from another process")


def test_bad_arguments_name_themselves(db: Database) -> None:
    with pytest.raises(TypeError, match="fn"):
        db.run(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retries"):
        db.run(lambda tx: None, retries=-1)
    with pytest.raises(TypeError, match="retries"):
        db.transactional(retries="3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retries"):
        db.run(lambda tx: None, retries=True)
    with pytest.raises(ValueError, match="history_commits"):
        Database(MemoryStore(), history_commits=0)
    with pytest.raises(TypeError, match="store"):
        Database({})  # type: ignore[arg-type]


def _fill_until_full(path: str, limit: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    committed = []
    try:
        with kvstore.open(path, durability="sync") as db:
            for i in range(100_000):
                tx = db.transaction()
                tx.put(b"k%06d" % i, b"x" * 2000)
                try:
                    tx.commit()
                except kvstore.StoreFull:
                    queue.put(("full", committed))
                    # the database stays usable for reads after a failed commit
                    with db.transaction() as check:
                        assert check.get(b"k%06d" % (i - 1)) is not None if i else True
                    return
                committed.append(i)
        queue.put(("never full", committed))
    except BaseException as e:  # pragma: no cover - reported to the parent
        queue.put(("error", repr(e)))


@pytest.mark.slow
def test_full_disk_fails_the_commit_and_keeps_every_earlier_one(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_fill_until_full, args=(path, 4 * 1024 * 1024, queue))
    p.start()
    outcome, committed = queue.get(timeout=120)
    p.join(timeout=60)
    assert outcome == "full", committed
    with kvstore.open(path) as db, db.transaction() as tx:
        present = {int(k[1:]) for k, _ in tx.get_range(b"k", b"l")}
    assert present == set(committed)


# -- argument checks (issue 9, defect 7) ------------------------------------------------------
@pytest.mark.parametrize(
    ("arg", "bad", "error"),
    [
        ("history_seconds", float("nan"), ValueError),
        ("history_seconds", float("inf"), ValueError),
        ("history_seconds", -1.0, ValueError),
        ("history_seconds", True, TypeError),
        ("history_seconds", "10", TypeError),
        ("history_commits", True, TypeError),
        ("history_commits", 10**30, ValueError),
        ("history_commits", 10.0, TypeError),
        ("history_commits", 0, ValueError),
        ("history_bytes", True, TypeError),
        ("history_bytes", 0, ValueError),
        ("history_bytes", 2**64, ValueError),
        ("history_bytes", 1e6, TypeError),
        ("readonly", "no", TypeError),
        ("create", 1, TypeError),
        ("map_size", 2**80, ValueError),
        ("map_size", True, TypeError),
    ],
)
@pytest.mark.parametrize("on_disk", [False, True])
def test_open_rejects_bad_numbers_and_flags(
    tmp_path: Path, on_disk: bool, arg: str, bad: object, error: type[Exception]
) -> None:
    path = tmp_path / "db" if on_disk else None
    with pytest.raises(error, match=arg):
        kvstore.open(path, **{arg: bad})  # type: ignore[arg-type]
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_database_rejects_non_finite_history_seconds(bad: float) -> None:
    with pytest.raises(ValueError, match="history_seconds"):
        Database(MemoryStore(), history_seconds=bad)


@pytest.mark.parametrize("bad", ["no", "", 0, 1, None])
def test_transaction_read_only_must_be_a_bool(db: Database, bad: object) -> None:
    # read_only="no" used to give a read-only transaction.
    with pytest.raises(TypeError, match="read_only"):
        db.transaction(read_only=bad)  # type: ignore[arg-type]
    with db.transaction(read_only=False) as tx:
        tx.put(b"k", b"v")
