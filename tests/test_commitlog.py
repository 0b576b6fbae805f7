"""The commit log's entries: the keys a commit wrote, encoded compactly and checked on read."""

from __future__ import annotations

import functools
import multiprocessing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kvstore
from kvstore import (
    CorruptData,
    Database,
    KeyRange,
    KeyRanges,
    Reads,
    TransactionConflict,
    TransactionTooOld,
    Writes,
)
from kvstore.commitlog import ENTRY_PREFIX, CommitLog, LocalLog, LogBatch, Shape, entry_key

_keys = st.binary(max_size=6)


def _writes_of(
    puts: dict[bytes, bytes], adjusts: dict[bytes, int], removes: list[tuple[bytes, bytes]]
) -> Writes:
    writes = Writes()
    for lo, hi in removes:
        writes.record_remove_range(min(lo, hi), max(lo, hi))
    for k, v in puts.items():
        writes.record_put(k, v)
    for k, a in adjusts.items():
        writes.record_adjust(k, a)
    return writes


@given(
    puts=st.dictionaries(_keys, st.binary(max_size=4), max_size=20),
    adjusts=st.dictionaries(_keys, st.integers(-5, 5), max_size=5),
    removes=st.lists(st.tuples(_keys, _keys), max_size=4),
)
def test_shape_round_trips_and_conflicts_like_the_writes(
    puts: dict[bytes, bytes], adjusts: dict[bytes, int], removes: list[tuple[bytes, bytes]]
) -> None:
    writes = _writes_of(puts, adjusts, removes)
    shape = Shape.decode(Shape.of(writes).encode())
    assert list(shape.remove_ranges()) == list(writes.removes)
    assert [k for k, _ in shape.put_pairs()] == list(writes.puts)
    assert [k for k, _ in shape.adjust_pairs()] == list(writes.adjusts)
    reads = Reads([KeyRange(b"", b"\x80")])
    assert reads.all_conflicts(shape) == reads.all_conflicts(writes)


@pytest.mark.parametrize("cut", [1, 3, 5, 9])
def test_damaged_entry_raises_corrupt_data(cut: int) -> None:
    writes = Writes()
    writes.record_put(b"key", b"v")
    writes.record_remove_range(b"a", b"b")
    blob = Shape.of(writes).encode()
    with pytest.raises(CorruptData):
        Shape.decode(blob[:-cut])
    with pytest.raises(CorruptData):
        Shape.decode(blob + b"\x00")


def test_an_abandoned_write_leaves_nothing_cached() -> None:
    from kvstore import MemoryStore
    from kvstore.commitlog import LocalLog

    log = LocalLog(MemoryStore(), keep_seconds=10, keep_commits=100)
    mine, theirs = Writes(), Writes()
    mine.record_put(b"mine", b"1")
    theirs.record_put(b"theirs", b"1")

    def abandoned(batch):  # type: ignore[no-untyped-def]
        pending: dict[int, Shape] = {}
        log.append(batch, log.read_version(batch), mine, pending)
        raise RuntimeError("the store gave up; the write never happened")

    with pytest.raises(RuntimeError):
        log.atomic(abandoned, None)
    pending: dict[int, Shape] = {}
    log.atomic(lambda batch: log.append(batch, log.read_version(batch), theirs, pending), None)
    log.remember(pending)
    reads = Reads([KeyRange.single(b"theirs"), KeyRange.single(b"mine")])
    found = log.atomic(lambda batch: log.conflicts(batch, reads, 0, 1, {}), None)
    assert [str(c) for c in found] == ["read/write conflict on key b'theirs'"]


# -- bounded by bytes; big commits coarsened (issue 9, defect 3) ------------------------------


@given(
    puts=st.dictionaries(_keys, st.binary(max_size=4), max_size=30),
    adjusts=st.dictionaries(_keys, st.integers(-5, 5), max_size=10),
    removes=st.lists(st.tuples(_keys, _keys), max_size=8),
    unbounded=st.none() | _keys,
    reads=st.lists(st.tuples(_keys, _keys), min_size=1, max_size=6),
    buckets=st.integers(1, 5),
)
def test_a_coarsened_shape_conflicts_with_every_read_the_exact_one_does(
    puts: dict[bytes, bytes],
    adjusts: dict[bytes, int],
    removes: list[tuple[bytes, bytes]],
    unbounded: bytes | None,
    reads: list[tuple[bytes, bytes]],
    buckets: int,
) -> None:
    writes = _writes_of(puts, adjusts, removes)
    if unbounded is not None:
        writes.record_remove_range(unbounded, None)
    exact = Shape.of(writes)
    # Both ways of coarsening: Shape.of over its key limit, and an exact shape coarsened.
    for coarse in (Shape.of(writes, coarse_keys=0), exact.coarsened(buckets)):
        coarse = Shape.decode(coarse.encode())
        assert not list(coarse.put_pairs()) and not list(coarse.adjust_pairs())
        covering = KeyRanges(coarse.remove_ranges())
        # The invariant: every written key and removed range lies inside a recorded range...
        for key in [*puts, *adjusts]:
            assert covering.covers_key(key)
        for r in writes.removes:
            assert any(c.contains(r) for c in covering)
        # ... so every read the exact writes conflict with conflicts with the coarse ones.
        for lo, hi in reads:
            read = Reads([KeyRange(min(lo, hi), max(lo, hi))])
            if read.is_conflict(writes):
                assert read.is_conflict(exact)
                assert read.is_conflict(coarse)
        for key in [*puts, *adjusts]:
            assert Reads([KeyRange.single(key)]).is_conflict(coarse)


def test_a_coarsened_shape_is_a_few_ranges() -> None:
    writes = _writes_of({b"k%05d" % i: b"v" for i in range(10_000)}, {}, [])
    for i in range(10_000):
        writes.record_remove(b"r%05d" % i)
    shape = Shape.of(writes)
    assert len(list(shape.remove_ranges())) <= 64
    assert len(shape.encode()) < 4096


def _churn(db: Database, keys: int, commits: int) -> int:
    """The defect-3 repro: each commit removes the previous ``keys`` keys and puts new ones.

    Returns the live data's size in bytes (keys plus values).
    """
    value = b"v" * 100
    for c in range(commits):
        with db.transaction() as tx:
            if c:
                for i in range(keys):
                    tx.remove(b"k%03d-%05d" % (c - 1, i))
            for i in range(keys):
                tx.put(b"k%03d-%05d" % (c, i), value)
    return keys * (len(b"k000-00000") + len(value))


def test_churning_big_commits_keeps_the_lmdb_file_small(tmp_path: Path) -> None:
    with kvstore.open(tmp_path / "db", durability="none") as db:
        live = _churn(db, 5_000, 60)
    size = (tmp_path / "db" / "data.mdb").stat().st_size
    assert size < 8 * live, (size, live)


def test_churning_big_commits_keeps_the_memory_log_small() -> None:
    with kvstore.open(None) as db:
        live = _churn(db, 5_000, 60)
        log = db._log
        assert isinstance(log, LocalLog)
        entries = sum(len(k) + len(v) for k, v in log._meta.items())
        assert entries < live
        assert log._cache_bytes < live


def test_the_log_is_bounded_by_its_byte_budget(tmp_path: Path) -> None:
    budget = 20_000
    with kvstore.open(tmp_path / "db", durability="none", history_bytes=budget) as db:
        for c in range(200):
            with db.transaction() as tx:
                for i in range(100):  # exact entries of ~1.3 kB: below the coarsening limits
                    tx.put(b"key-%03d-%05d" % (c, i), b"")
        store = db.store
        assert isinstance(store, kvstore.LMDBStore)
        pairs = store._atomic(lambda b: list(b.meta_range(b"commit/log/", b"commit/log0")), None)
        entries = [len(k) + len(v) for k, v in pairs]
    assert sum(entries) <= budget
    assert len(entries) >= budget // (2 * max(entries))


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_read_of_a_key_written_by_a_coarsened_commit_conflicts(
    tmp_path: Path, on_disk: bool
) -> None:
    with kvstore.open(tmp_path / "db" if on_disk else None, durability="none") as db:
        reader = db.transaction()
        assert reader.get(b"k-01234") is None
        reader.put(b"seen", b"1")
        with db.transaction() as tx:
            for i in range(5_000):
                tx.put(b"k-%05d" % i, b"x")
        with pytest.raises(TransactionConflict):
            reader.commit()
        # A read outside everything the big commit covered still commits.
        other = db.transaction()
        assert other.get(b"z") is None
        other.put(b"seen", b"2")
        with db.transaction() as tx:
            for i in range(5_000):
                tx.put(b"k-%05d" % i, b"y")
        other.commit()


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_snapshot_older_than_the_byte_budget_is_too_old(tmp_path: Path, on_disk: bool) -> None:
    path = tmp_path / "db" if on_disk else None
    with kvstore.open(path, durability="none", history_bytes=5_000) as db:
        old = db.transaction()
        old.get(b"a")
        old.put(b"b", b"1")
        for c in range(20):
            with db.transaction() as tx:
                for i in range(50):
                    tx.put(b"key-%03d-%05d" % (c, i), b"")
        recent = db.transaction()
        recent.get(b"a")
        recent.put(b"c", b"1")
        with db.transaction() as tx:
            tx.put(b"d", b"1")
        with pytest.raises(TransactionTooOld, match="5000 bytes"):
            old.commit()
        recent.commit()


def _big_commits(path: str, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """In another process: ``count`` commits of 5,000 puts each over the same keys."""
    with kvstore.open(path, durability="none", history_bytes=5_000) as db:
        for c in range(count):
            with db.transaction() as tx:
                for i in range(5_000):
                    tx.put(b"k-%05d" % i, b"%d" % c)
                for i in range(40):
                    tx.put(b"pad-%03d-%05d" % (c, i), b"")
    queue.put("done")


def test_coarsening_and_the_byte_budget_hold_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    with kvstore.open(path, durability="none", history_bytes=5_000) as db:
        with db.transaction() as tx:
            tx.put(b"start", b"")
        conflicting = db.transaction()
        conflicting.get(b"k-02500")
        conflicting.put(b"mine", b"1")
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        p = ctx.Process(target=_big_commits, args=(path, 1, queue))
        p.start()
        assert queue.get(timeout=120) == "done"
        p.join(timeout=60)
        assert p.exitcode == 0
        with pytest.raises(TransactionConflict):
            conflicting.commit()
        old = db.transaction()
        old.get(b"unrelated")
        old.put(b"mine", b"2")
        p = ctx.Process(target=_big_commits, args=(path, 30, queue))
        p.start()
        assert queue.get(timeout=120) == "done"
        p.join(timeout=60)
        assert p.exitcode == 0
        with pytest.raises(TransactionTooOld):
            old.commit()


def test_a_version_record_from_before_the_byte_bound_still_opens(tmp_path: Path) -> None:
    """A store whose ``commit/version`` is the bare 8-byte version keeps working."""
    path = tmp_path / "db"
    with kvstore.LMDBStore(path) as store:
        store._atomic(lambda b: b.meta_put(b"commit/version", (5).to_bytes(8, "big")), None)
    with kvstore.open(path, durability="none") as db:
        with db.transaction() as tx:
            assert tx.version == 5
            tx.put(b"a", b"1")
        assert tx.committed_version == 6
        with db.transaction() as tx:
            assert tx.version == 6 and tx.get(b"a") == b"1"


# -- several commits in one LMDB write (StoreLog.commit_all, PERFORMANCE R10) ------------------
_few_keys = st.sampled_from([b"", b"a", b"b", b"c", b"d"])
#: read?, keys read, puts, adjustments, removed ranges, extra puts
_Spec = tuple[
    bool, list[bytes], dict[bytes, bytes], dict[bytes, int], list[tuple[bytes, bytes]], int
]
_commit_specs = st.lists(
    st.tuples(
        st.booleans(),  # whether it read (at the starting snapshot) or is blind
        st.lists(_few_keys, max_size=2),  # the keys it read
        st.dictionaries(_few_keys, st.binary(max_size=3), max_size=3),  # puts
        st.dictionaries(_few_keys, st.integers(-3, 3), max_size=2),  # adjustments
        st.lists(st.tuples(_few_keys, _few_keys), max_size=1),  # removed ranges
        st.integers(0, 9),  # extra puts: over FEW_KEYS takes the checked path
    ),
    min_size=1,
    max_size=6,
)


def _spec_commits(
    specs: list[_Spec],
    start: int,
) -> list[tuple[Writes, Reads, int | None]]:
    commits: list[tuple[Writes, Reads, int | None]] = []
    for read, keys, puts, adjusts, removes, extra in specs:
        writes = _writes_of(puts, {k: a for k, a in adjusts.items() if k not in puts}, removes)
        for i in range(extra):
            writes.record_put(b"x%d" % i, b"v")
        reads = Reads()
        for key in keys:
            reads.add_key(key)
        commits.append((writes, reads, start if read else None))
    return commits


def _logged(batch: LogBatch, after: int) -> list[tuple[bytes, list[object]]]:
    """The log entries after version ``after``: key, and the shape's removes, puts, adjusts."""
    return [
        (key, [list(shape.remove_ranges()), list(shape.put_pairs()), list(shape.adjust_pairs())])
        for key, raw in batch.meta_range(entry_key(after + 1), None)
        if key.startswith(ENTRY_PREFIX)
        for shape in [Shape.decode(raw[8:])]
    ]


@given(specs=_commit_specs)
def test_commits_written_together_end_as_if_written_one_by_one(
    specs: list[_Spec],
) -> None:
    """StoreLog.commit_all validates each commit against the log and the ones before it in
    the same write: the outcomes, the data and the log match committing them one by one."""
    import tempfile

    from kvstore.backends.lmdblog import StoreLog

    with tempfile.TemporaryDirectory() as root:
        results = []
        for together in (True, False):
            with kvstore.open(f"{root}/{together}", durability="none") as db:
                with db.transaction() as tx:
                    for key in (b"", b"a", b"b", b"c", b"d"):
                        tx.put(key, kvstore.KVStore.encode_counter(5))
                start = db.stats().version
                log = db._log
                assert isinstance(log, StoreLog)
                commits = _spec_commits(specs, start)
                outcomes: list[object] = []
                if together:
                    outcomes = list(log.commit_all(commits, None))
                else:
                    for writes, reads, since in commits:
                        try:
                            outcomes.append(log.commit(writes, reads, since, None))
                        except TransactionConflict as e:
                            outcomes.append(e)
                described = [
                    o if isinstance(o, int) else (type(o), [str(c) for c in o.conflicts])  # type: ignore[attr-defined]
                    for o in outcomes
                ]
                with db.transaction(read_only=True) as tx:
                    data = list(tx.get_range())
                entries = log.atomic(functools.partial(_logged, after=start), None)
                results.append((described, data, entries))
        assert results[0] == results[1]


#: Writes of at most a few keys: one-key entries, which CommitLog.entry builds directly.
_few_writes = st.builds(
    _writes_of,
    st.dictionaries(_keys, st.binary(max_size=4), max_size=2),
    st.dictionaries(_keys, st.integers(-5, 5), max_size=2),
    st.lists(st.tuples(_keys, _keys), max_size=1),
)


@given(writes=_few_writes)
def test_an_entry_made_directly_is_the_shapes_encoding(writes: Writes) -> None:
    """CommitLog.entry builds one-key entries without Shape.of (PERFORMANCE R6): the same
    bytes, and a shape with the same keys."""
    shape, encoded = CommitLog.entry(writes)
    exact = Shape.of(writes)
    assert encoded == exact.encode()
    for got in (shape, Shape.decode(encoded)):
        assert list(got.remove_ranges()) == list(exact.remove_ranges())
        assert list(got.put_pairs()) == list(exact.put_pairs())
        assert list(got.adjust_pairs()) == list(exact.adjust_pairs())
