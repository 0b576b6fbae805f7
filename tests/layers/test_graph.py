"""The concept graph (SPEC §6b): bursts, snapshots, replacement rules, processes, crashes."""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import kvstore
from kvstore import Association, Concept, ConcurrentMemory, ReadOnlyError


def cid(i: int) -> bytes:
    return i.to_bytes(16, "big")


@pytest.fixture(params=["lmdb", "postgres"])
def mem(request: pytest.FixtureRequest, tmp_path: Path) -> ConcurrentMemory:
    """A graph on an LMDB file of its own, or on a Database over the session's PostgreSQL."""
    if request.param == "lmdb":
        with ConcurrentMemory(tmp_path / "g", reconcile_interval_ms=2) as m:
            yield m  # type: ignore[misc]
        return
    from tests import pgserver

    with (
        kvstore.open(pgserver.dsn(), table=pgserver.fresh_table(), durability="none") as db,
        ConcurrentMemory(db, reconcile_interval_ms=2) as m,
    ):
        yield m  # type: ignore[misc]


def test_burst_of_writes_then_reads(mem: ConcurrentMemory) -> None:
    seqs = [mem.learn_concept(cid(i), b"c%d" % i, vector=[i, 0.5]) for i in range(2000)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2000
    for i in range(1999):
        mem.learn_association(cid(i), cid(i + 1), "causal")
    last = mem.flush()
    assert last == seqs[-1] + 1999
    c = mem.query_concept(cid(7))
    assert isinstance(c, Concept)
    assert (c.content, c.vector, c.strength, c.confidence) == (b"c7", (7.0, 0.5), 1.0, 1.0)
    assert c.neighbors == [cid(8)]
    assert mem.query_neighbors(cid(1998)) == [cid(1999)]
    assert mem.query_neighbors(cid(1999)) == []
    assert mem.find_path(cid(0), cid(4)) == [cid(i) for i in range(5)]
    assert mem.find_path(cid(0), cid(10), max_depth=6) is None
    assert mem.find_path(cid(5), cid(5)) == [cid(5)]
    s = mem.stats()
    assert s.write_log.written == 3999 and s.write_log.dropped == 0
    assert s.write_log.pending == 0
    assert s.reconciler.entries_processed == 3999
    assert s.snapshot.concept_count == 2000 and s.snapshot.edge_count == 1999
    assert s.snapshot.sequence >= last


def test_replacement_rules(mem: ConcurrentMemory) -> None:
    a, b = cid(1), cid(2)
    mem.learn_concept(a, b"first", vector=[1.0], strength=0.5)
    mem.learn_association(a, b, "semantic", confidence=0.1, weight=2.0)
    mem.flush()
    first = mem.query_concept(a)
    assert first is not None
    time.sleep(0.01)
    mem.learn_concept(a, b"second", vector=None, strength=0.9, confidence=0.3)
    mem.learn_association(a, b, "semantic", confidence=0.7, weight=3.0)
    mem.learn_association(a, b, "causal")
    mem.learn_association(a, cid(3), "temporal")  # a concept never learned
    mem.flush()
    c = mem.query_concept(a)
    assert c is not None
    assert (c.content, c.vector, c.strength, c.confidence) == (b"second", None, 0.9, 0.3)
    assert c.created == first.created
    assocs = mem.query_associations(a)
    assert [(x.target, x.assoc_type, x.confidence, x.weight) for x in assocs] == [
        (b, "semantic", 0.7, 3.0),
        (b, "causal", 1.0, 1.0),
        (cid(3), "temporal", 1.0, 1.0),
    ]
    assert all(isinstance(x, Association) and x.source == a for x in assocs)
    assert mem.query_neighbors(a) == [b, cid(3)]
    assert mem.stats().snapshot.edge_count == 3
    assert mem.query_concept(cid(3)) is None
    assert mem.find_path(a, cid(3)) == [a, cid(3)]


@pytest.mark.parametrize("others", [0, 20], ids=["few-edges", "many-edges"])
@pytest.mark.parametrize("interleaved", [False, True], ids=["alone", "another-writer"])
def test_an_association_learned_again_keeps_its_place_and_created(
    tmp_path: Path, others: int, interleaved: bool
) -> None:
    """Replacing an association in a later batch, and in the same batch, keeps its position
    and ``created``, whether the writer knows the store's state (alone) or must read it (another
    writer committed in between), and for sources with few or many associations."""
    src = cid(0)
    with kvstore.open(tmp_path / "g", durability="none") as db:
        # A long interval: each writer's reconciler runs only when its flush() wakes it
        a = ConcurrentMemory(db, reconcile_interval_ms=60_000)
        b = ConcurrentMemory(db, reconcile_interval_ms=60_000)
        for i in range(others):
            a.learn_association(src, cid(100 + i))
        a.learn_association(src, cid(1), "causal", 0.1, 0.1)
        a.learn_association(src, cid(2))
        a.flush()
        before = {x.target: x for x in a.query_associations(src)}
        time.sleep(0.01)  # a later batch gets a later clock
        if interleaved:
            b.learn_concept(cid(50), b"between")
            b.flush()
        a.learn_association(src, cid(1), "causal", 0.9, 0.8)  # replaced, a later batch
        a.learn_association(src, cid(3))
        a.learn_association(src, cid(3), "semantic", 0.5, 0.4)  # replaced in its own batch
        a.flush()
        after = a.query_associations(src)
        assert [x.target for x in after] == [cid(100 + i) for i in range(others)] + [
            cid(1),
            cid(2),
            cid(3),
        ]
        one, two, three = after[-3:]
        assert (one.confidence, one.weight, one.created) == (0.9, 0.8, before[cid(1)].created)
        assert two == before[cid(2)]
        assert (three.confidence, three.weight) == (0.5, 0.4)
        assert three.created > one.created
        assert a.stats().snapshot.edge_count == others + 3
        with ConcurrentMemory(db, read_only=True) as fresh:
            assert fresh.query_associations(src) == after
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda m: m.learn_concept(b"short", b""), ValueError, "concept_id"),
        (lambda m: m.learn_concept("x" * 16, b""), TypeError, "concept_id"),
        (lambda m: m.learn_concept(cid(1), "text"), TypeError, "content"),
        (lambda m: m.learn_concept(cid(1), b"", vector=[float("nan")]), ValueError, "vector"),
        (lambda m: m.learn_concept(cid(1), b"", vector="abc"), TypeError, "vector"),
        (lambda m: m.learn_concept(cid(1), b"", strength="1"), TypeError, "strength"),
        (lambda m: m.learn_association(cid(1), cid(2), "friend"), ValueError, "assoc_type"),
        (lambda m: m.learn_association(cid(1), b"", "causal"), ValueError, "target"),
        (lambda m: m.find_path(cid(1), cid(2), max_depth=-1), ValueError, "max_depth"),
        (lambda m: m.wait_for("1"), TypeError, "sequence"),
    ],
)
def test_bad_arguments_raise_before_queueing(
    mem: ConcurrentMemory, call: object, exc: type[Exception], name: str
) -> None:
    with pytest.raises(exc, match=name):
        call(mem)  # type: ignore[operator]
    assert mem.stats().write_log.written == 0


def test_constructor_arguments(tmp_path: Path) -> None:
    for kwargs, exc in [
        ({"overflow": "ignore"}, ValueError),
        ({"queue_capacity": 0}, ValueError),
        ({"max_batch_size": 1.5}, TypeError),
        ({"reconcile_interval_ms": 0}, ValueError),
        ({"read_only": "yes"}, TypeError),
    ]:
        with pytest.raises(exc):
            ConcurrentMemory(tmp_path / "g", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path_or_db"):
        ConcurrentMemory(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["lmdb", "postgres"])
def test_shares_a_database_and_read_only(tmp_path: Path, where: str) -> None:
    from tests import pgserver

    if where == "postgres":
        db = kvstore.open(pgserver.dsn(), table=pgserver.fresh_table(), durability="none")
    else:
        db = kvstore.open(tmp_path / "db")
    with db:
        with ConcurrentMemory(db) as w:
            w.learn_concept(cid(1), b"x")
        with ConcurrentMemory(db, read_only=True) as r:
            assert r.query_concept(cid(1)) is not None
            with pytest.raises(ReadOnlyError):
                r.learn_concept(cid(2), b"y")
        with db.transaction() as tx:  # the database is still open
            assert tx.get(b"anything") is None


def test_drop_oldest_counts_and_block_loses_nothing(tmp_path: Path) -> None:
    with ConcurrentMemory(
        tmp_path / "d", queue_capacity=10, overflow="drop_oldest", reconcile_interval_ms=10_000
    ) as m:
        for i in range(1000):
            m.learn_concept(cid(i), b"")
        m.flush()
        s = m.stats()
        assert s.write_log.written == 1000
        assert s.write_log.dropped > 0
        assert s.write_log.dropped + s.reconciler.entries_processed == 1000
        assert m.query_concept(cid(999)) is not None
    with ConcurrentMemory(tmp_path / "b", queue_capacity=10, max_batch_size=5) as m:
        for i in range(1000):
            m.learn_concept(cid(i), b"")
        m.flush()
        s = m.stats()
        assert s.write_log.dropped == 0 and s.snapshot.concept_count == 1000


def test_concurrent_writer_and_reader_threads(mem: ConcurrentMemory) -> None:
    stop = threading.Event()
    seen: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def reader(k: int) -> None:
        try:
            while not stop.is_set():
                seen[k].append(mem.stats().snapshot.concept_count)
                # A snapshot is whole: chain edges appear only with their batch.
                mem.find_path(cid(0), cid(50), max_depth=60)
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for i in range(3000):
        mem.learn_concept(cid(i), b"")
        if i:
            mem.learn_association(cid(i - 1), cid(i))
    mem.flush()
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    for counts in seen:
        assert counts == sorted(counts)  # snapshots only move forward
    assert mem.find_path(cid(0), cid(5)) == [cid(i) for i in range(6)]


def _write_in_child(path: str, start: int, n: int) -> None:
    with ConcurrentMemory(path, reconcile_interval_ms=1) as m:
        for i in range(start, start + n):
            m.learn_concept(cid(i), b"p")
            m.learn_association(cid(i), cid(0), "hierarchical")


def test_reader_process_and_two_writer_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "g")
    with ConcurrentMemory(path, reconcile_interval_ms=2, read_only=True) as reader:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_write_in_child, args=(path, k * 1000, 500)) for k in (1, 2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
        deadline = time.monotonic() + 10
        while reader.stats().snapshot.concept_count < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        s = reader.stats().snapshot
        assert (s.concept_count, s.edge_count) == (1000, 1000)
        assert reader.find_path(cid(1001), cid(0)) == [cid(1001), cid(0)]


def _crashing_writer(path: str, ready: multiprocessing.synchronize.Event) -> None:
    with ConcurrentMemory(path, reconcile_interval_ms=1, max_batch_size=100) as m:
        for i in range(100):
            m.learn_concept(cid(i), b"flushed")
        m.flush()
        ready.set()
        i = 100
        while True:  # batches of 100 concepts and their 100 chain edges, until killed
            m.learn_concept(cid(i), b"later")
            m.learn_association(cid(i), cid(i - 1))
            i += 1


def test_sigkill_keeps_every_flushed_batch_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "g")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_crashing_writer, args=(path, ready))
    p.start()
    assert ready.wait(60)
    time.sleep(0.3)
    os.kill(p.pid or 0, signal.SIGKILL)
    p.join()
    assert p.exitcode == -signal.SIGKILL
    with ConcurrentMemory(path, read_only=True) as m:
        for i in range(100):
            c = m.query_concept(cid(i))
            assert c is not None and c.content == b"flushed"
        # Every later concept on disk came with its edge: batches are whole.
        later = [i for i in range(100, 10**6) if m.query_concept(cid(i)) is not None]
        assert later == list(range(100, 100 + len(later)))
        for i in later:
            assert m.query_neighbors(cid(i)) == [cid(i - 1)]


def _bfs(edges: dict[int, list[int]], s: int, e: int, depth: int) -> int | None:
    """Length of a shortest path, by brute force."""
    if s == e:
        return 0
    dist = {s: 0}
    q = collections.deque([s])
    while q:
        n = q.popleft()
        for t in edges.get(n, []):
            if t not in dist:
                dist[t] = dist[n] + 1
                q.append(t)
    d = dist.get(e)
    return d if d is not None and d <= depth else None


@settings(max_examples=25, deadline=None)
@given(
    edges=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=40),
    s=st.integers(0, 15),
    e=st.integers(0, 15),
    depth=st.integers(0, 6),
)
def test_find_path_is_a_shortest_path(
    edges: list[tuple[int, int]], s: int, e: int, depth: int
) -> None:
    with kvstore.open(None) as db, ConcurrentMemory(db, reconcile_interval_ms=1) as m:
        graph: dict[int, list[int]] = collections.defaultdict(list)
        for a, b in edges:
            m.learn_association(cid(a), cid(b))
            graph[a].append(b)
        m.flush()
        path = m.find_path(cid(s), cid(e), max_depth=depth)
        expected = _bfs(graph, s, e, depth)
        if expected is None:
            assert path is None
        else:
            assert path is not None and len(path) == expected + 1
            assert path[0] == cid(s) and path[-1] == cid(e)
            for x, y in itertools.pairwise(path):
                assert int.from_bytes(y, "big") in graph[int.from_bytes(x, "big")]


def test_cli(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    path = tmp_path / "g"
    with ConcurrentMemory(path) as m:
        m.learn_concept(cid(1), b"one", vector=[0.5])
        m.learn_association(cid(1), cid(2), "causal")
        m.learn_association(cid(2), cid(3))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kvstore", "graph", *args, "--db", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )

    stats = json.loads(run("stats").stdout)
    assert stats["snapshot"]["concept_count"] == 1 and stats["snapshot"]["edge_count"] == 2
    concept = json.loads(run("concept", cid(1).hex()).stdout)
    assert concept["content"] == "one" and concept["neighbors"] == [cid(2).hex()]
    assert json.loads(run("neighbors", cid(2).hex()).stdout) == [cid(3).hex()]
    assert json.loads(run("path", cid(1).hex(), cid(3).hex()).stdout) == [
        cid(1).hex(),
        cid(2).hex(),
        cid(3).hex(),
    ]
    assert json.loads(run("path", cid(3).hex(), cid(1).hex()).stdout) is None
    r = run("concept", cid(9).hex())
    assert r.returncode == 1 and "no concept" in r.stderr and r.stderr.count("\n") == 1
    r = run("concept", "zz")
    assert r.returncode == 2 and "not hex" in r.stderr and "Traceback" not in r.stderr


def _graph_state(m: ConcurrentMemory, ids: list[bytes]) -> object:
    """Everything a reader can see of ``ids``, for comparing two instances."""
    s = m.stats().snapshot
    return (
        s.concept_count,
        s.edge_count,
        [(m.query_concept(i), m.query_associations(i), m.query_neighbors(i)) for i in ids],
        [m.find_path(a, b, 3) for a in ids[:6] for b in ids[:6]],
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["c", "a"]),
            st.integers(0, 1),  # which writer
            st.integers(0, 11),
            st.integers(0, 11),
            st.sampled_from(["semantic", "causal"]),
            st.floats(0, 1),
        ),
        max_size=60,
    )
)
@settings(max_examples=25, deadline=None)
# Two shortest paths 0 -> 9 -> 4 and 0 -> 7 -> 4, with 4's sources learned out of id order:
# following batches appended them ([9, 7]) where a fresh load sorts them ([7, 9]), so the
# backward search met a different middle and find_path chose the other path.
@example(
    ops=[
        ("a", 0, 0, 9, "semantic", 0.0),
        ("a", 0, 0, 7, "semantic", 0.0),
        ("a", 0, 9, 4, "semantic", 0.0),
        ("a", 1, 7, 4, "semantic", 0.0),
    ]
)
def test_change_records_keep_a_snapshot_equal_to_a_fresh_load(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int, int, int, str, float]]
) -> None:
    """Two writers (each behind the other's batches) and a reader that only follows records;
    the writers' own snapshots (their own batches applied without a re-read) too."""
    path = tmp_path_factory.mktemp("g") / "g"
    ids = [cid(i) for i in range(12)]
    with kvstore.open(path, durability="none") as db:
        reader = ConcurrentMemory(db, read_only=True, reconcile_interval_ms=1)
        writers = [ConcurrentMemory(db, reconcile_interval_ms=1) for _ in range(2)]
        for kind, w, x, y, assoc_type, value in ops:
            if kind == "c":
                writers[w].learn_concept(ids[x], b"c%d" % y, [value], value, value)
            else:
                writers[w].learn_association(ids[x], ids[y], assoc_type, value, value)
            if x % 5 == 0:
                writers[w].flush()
        for writer in writers:
            writer.flush()
        fresh = ConcurrentMemory(db, read_only=True)
        expected = _graph_state(fresh, ids)
        for m in [reader, *writers]:
            deadline = time.monotonic() + 10
            while _graph_state(m, ids) != expected and time.monotonic() < deadline:
                time.sleep(0.005)
            assert _graph_state(m, ids) == expected
        for writer in writers:
            writer.close()
        reader.close()
        fresh.close()


def test_change_records_are_bounded_and_a_reader_behind_them_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore.layers import graph

    monkeypatch.setattr(graph, "_KEEP_BYTES", 2_000)  # a few records of 10 concepts
    with kvstore.open(tmp_path / "g", durability="none") as db:
        db.run(lambda tx: tx.put(graph._ROOT.pack(("log", 1)), b"an id-only record"))
        late = ConcurrentMemory(db, read_only=True, reconcile_interval_ms=60_000)
        with ConcurrentMemory(db, max_batch_size=10) as w:
            for i in range(200):
                w.learn_concept(cid(i), b"x" * 20)
        with db.transaction(read_only=True) as tx:
            records, old = graph._CHANGES.range(), graph._OLD_LOG
            kept = list(tx.get_range(records.min_key, records.max_key))
            assert not list(tx.get_range(old.min_key, old.max_key))  # the id-only record's gone
        assert 1 <= len(kept) <= 10
        assert sum(len(p.value) for p in kept) <= 2_000 + len(kept[-1].value)
        # The reader was left far behind the records kept: its next look reloads the graph.
        deadline = time.monotonic() + 10
        while late.stats().snapshot.concept_count < 200 and time.monotonic() < deadline:
            late._wake.set()
            time.sleep(0.01)
        assert late.stats().snapshot.concept_count == 200
        late.close()
