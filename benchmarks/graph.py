"""L2 and L3: the concept graph (``kvstore.ConcurrentMemory``).

L2 times ``learn_concept`` calls (the enqueue, the figure) and then ``flush()`` (the
reconciled rate, in the notes), on a durability="none" LMDB database.  L3 times
``find_path`` between random pairs on 10,000 concepts with out-degree 4 (depth <= 4), and
beside it networkx's ``shortest_path`` on the same graph, in memory: the speed limit of a
Python graph read.  Its ratio is kvstore over networkx.  L4 runs the same queries in a
reader process (``read_only=True``) with no writer, then during a write burst from this
process (see :func:`l4_readers`): readers must not wait for writes, so the ratio should stay
near 1.

L3p puts the graph beside kuzu (an embedded, durable graph database) on L3's graph, in one
measurement shared by two rows.  **L3p-insert**: every concept (``learn_concept``) and
every edge (``learn_association``) into a fresh ``ConcurrentMemory(path)`` (durability
"sync") until ``flush()`` returns, against kuzu loading the same rows the way a user bulk
loads it: ``UNWIND $rows`` in transactions of 10,000 rows (the reconciler's
``max_batch_size``), durable when ``COMMIT`` returns (kuzu fsyncs its WAL there); writes/s
are concepts + edges per second.  **L3p-path**: ``find_path(a, b, max_depth=4)`` against
kuzu's ``SHORTEST 1..4`` path query on the same pairs (fewer than L3's 5,000: kuzu answers
a few hundred a second), with networkx's ``shortest_path`` in memory beside them (the row
also requires at least 0.5x networkx).  Both answers must agree on every path's length.
``--quick`` uses 2,000 concepts (kuzu's load of 10,000 takes ~20 s a repetition).
"""

from __future__ import annotations

import gc
import multiprocessing
import random
import statistics
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from kvstore import ConcurrentMemory

from .data import fresh_dir
from .harness import Config, Context, Measurement, check, format_rate

__all__ = ["l2_burst", "l3_find_path", "l3p_kuzu", "l3p_path", "l4_readers"]


def _cid(i: int) -> bytes:
    return i.to_bytes(16, "big")


def _graph(n: int, queries: int, seed: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """L3's graph: 4 seeded random targets for each of ``n`` concepts, then random pairs.

    One generator draws the edges and then the pairs, so L3 and L3p see the same graph and
    the same (start, end) pairs for the same ``n`` and seed.
    """
    rng = random.Random(seed)
    edges = [(i, rng.randrange(n)) for i in range(n) for _ in range(4)]
    pairs = [(rng.randrange(n), rng.randrange(n)) for _ in range(queries)]
    return edges, pairs


def l2_burst(ctx: Context) -> Measurement:
    """learn_concept calls/s (enqueue) and reconciled concepts/s."""
    n = 20_000 if ctx.config.name == "quick" else 100_000
    ids = [_cid(i) for i in range(n)]
    enqueue, reconciled = [], []
    for _ in range(max(1, ctx.reps // 2)):
        with (
            fresh_dir(ctx.config.tmp, "l2-") as d,
            ConcurrentMemory(d / "g", queue_capacity=2 * n) as g,
        ):
            t0 = time.perf_counter()
            for i in ids:
                g.learn_concept(i, b"content")
            t1 = time.perf_counter()
            g.flush()
            t2 = time.perf_counter()
            check(g.stats().snapshot.concept_count == n, "a concept was lost")
        enqueue.append(n / (t1 - t0))
        reconciled.append(n / (t2 - t0))
    m = Measurement(max(enqueue), unit="enqueues/s")
    m.notes.append(f"reconciled {max(reconciled):,.0f} concepts/s (target 100,000/s)")
    m.figures.update(enqueue=max(enqueue), reconciled=max(reconciled))
    return m


def l3_find_path(ctx: Context) -> Measurement:
    """find_path on 10,000 concepts, out-degree 4, depth <= 4, against networkx."""
    import networkx as nx

    queries = 5_000
    edges, pairs = _graph(10_000, queries, ctx.config.seed)
    graph = nx.DiGraph()
    graph.add_edges_from(edges)
    with fresh_dir(ctx.config.tmp, "l3-") as d, ConcurrentMemory(d / "g") as g:
        for a, b in edges:
            g.learn_association(_cid(a), _cid(b))
        g.flush()
        ids = [(_cid(a), _cid(b)) for a, b in pairs]
        kv_times, nx_times = [], []
        for _ in range(ctx.reps):
            t0 = time.perf_counter()
            found = sum(g.find_path(a, b, max_depth=4) is not None for a, b in ids)
            kv_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for a, b in pairs:
                try:
                    nx.shortest_path(graph, a, b)
                except nx.NetworkXNoPath:
                    pass
            nx_times.append(time.perf_counter() - t0)
        check(found > 0, "no path found at all")
    kv_times.sort()
    nx_times.sort()
    return Measurement(
        queries / kv_times[len(kv_times) // 2],
        queries / nx_times[len(nx_times) // 2],
        unit="queries/s",
        raw_label="networkx",
    )


# --- L3p: against kuzu and networkx on L3's graph -----------------------------------------

#: Rows per kuzu transaction: the reconciler's default ``max_batch_size``.
_KUZU_BATCH = 10_000
_KUZU_SCHEMA = (
    "CREATE NODE TABLE Concept(id STRING PRIMARY KEY, content STRING, strength DOUBLE,"
    " confidence DOUBLE, created DOUBLE)",
    "CREATE REL TABLE Assoc(FROM Concept TO Concept, type STRING, confidence DOUBLE,"
    " weight DOUBLE)",
)
_KUZU_NODES = (
    "UNWIND $rows AS r CREATE (:Concept {id: r.id, content: r.content, strength: r.strength,"
    " confidence: r.confidence, created: r.created})"
)
# Two MATCH clauses: kuzu plans ``MATCH (a {id: r.s}), (b {id: r.t})`` as a cross product
# of both node scans; this form is the fastest UNWIND load we found (~2x that one).
_KUZU_EDGES = (
    "UNWIND $rows AS r MATCH (a:Concept {id: r.s}) MATCH (b:Concept {id: r.t})"
    " CREATE (a)-[:Assoc {type: r.type, confidence: r.confidence, weight: r.weight}]->(b)"
)
# kuzu's shortest paths have a lower bound of at least 1 hop; (x, x) is answered in Python.
_KUZU_PATH = (
    "MATCH p = (a:Concept {id: $a})-[:Assoc* SHORTEST 1..4]->(b:Concept {id: $b})"
    " RETURN properties(nodes(p), 'id')"
)


@dataclass
class _L3pFigures:
    """One L3p measurement: median rates of every side, and what the notes say."""

    insert: dict[str, float] = field(default_factory=dict)
    path: dict[str, float] = field(default_factory=dict)
    insert_notes: list[str] = field(default_factory=list)
    path_notes: list[str] = field(default_factory=list)


def _hex(i: int) -> str:
    return _cid(i).hex()


def _kv_insert(path: Path, n: int, edges: list[tuple[int, int]]) -> tuple[float, Any]:
    """Seconds until every concept and edge is durable in a fresh graph; the open graph.

    The ids and contents are made before the clock starts, as kuzu's rows are.
    """
    concepts = [(_cid(i), b"concept %d" % i) for i in range(n)]
    links = [(_cid(a), _cid(b)) for a, b in edges]
    g = ConcurrentMemory(path)
    gc.collect()
    t0 = time.perf_counter()
    for cid, content in concepts:
        g.learn_concept(cid, content)
    for a, b in links:
        g.learn_association(a, b)
    g.flush()
    seconds = time.perf_counter() - t0
    return seconds, g


def _kuzu_open(kuzu: Any, path: Path) -> tuple[Any, Any]:
    """A new kuzu database at ``path`` with the graph's two tables, and a connection."""
    db = kuzu.Database(str(path))
    conn = kuzu.Connection(db)
    for statement in _KUZU_SCHEMA:
        conn.execute(statement)
    return db, conn


def _kuzu_rows(n: int, edges: list[tuple[int, int]]) -> tuple[list[Any], list[Any]]:
    """The node and edge rows of the UNWIND load (``created`` now, as kvstore stamps it)."""
    now = time.time()
    nodes = [
        {
            "id": _hex(i),
            "content": f"concept {i}",
            "strength": 1.0,
            "confidence": 1.0,
            "created": now,
        }
        for i in range(n)
    ]
    rels = [
        {"s": _hex(a), "t": _hex(b), "type": "semantic", "confidence": 1.0, "weight": 1.0}
        for a, b in edges
    ]
    return nodes, rels


def _kuzu_insert(
    kuzu: Any, path: Path, n: int, edges: list[tuple[int, int]]
) -> tuple[float, Any, Any]:
    """Seconds kuzu takes to load the graph in committed 10,000-row UNWIND transactions.

    Returns the database and connection too, still open.  Rows are built before the clock.
    """
    db, conn = _kuzu_open(kuzu, path)
    nodes, rels = _kuzu_rows(n, edges)
    gc.collect()
    t0 = time.perf_counter()
    for query, rows in ((_KUZU_NODES, nodes), (_KUZU_EDGES, rels)):
        for start in range(0, len(rows), _KUZU_BATCH):
            conn.execute("BEGIN TRANSACTION")
            conn.execute(query, {"rows": rows[start : start + _KUZU_BATCH]})
            conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    return seconds, db, conn


def _kuzu_copy(kuzu: Any, path: Path, n: int, edges: list[tuple[int, int]]) -> float | None:
    """Seconds of kuzu's ``COPY FROM`` two in-memory pandas frames; ``None`` without pandas.

    Strings go in as object columns: kuzu 0.11 fails an assertion on pandas 3's string dtype.
    """
    try:
        import pandas as pd
    except ImportError:
        return None
    db, conn = _kuzu_open(kuzu, path)
    now = time.time()
    nodes = pd.DataFrame(
        {
            "id": pd.Series([_hex(i) for i in range(n)], dtype=object),
            "content": pd.Series([f"concept {i}" for i in range(n)], dtype=object),
            "strength": 1.0,
            "confidence": 1.0,
            "created": now,
        }
    )
    rels = pd.DataFrame(
        {
            "from": pd.Series([_hex(a) for a, _ in edges], dtype=object),
            "to": pd.Series([_hex(b) for _, b in edges], dtype=object),
            "type": pd.Series(["semantic"] * len(edges), dtype=object),
            "confidence": 1.0,
            "weight": 1.0,
        }
    )
    gc.collect()
    t0 = time.perf_counter()
    conn.execute("COPY Concept FROM $frame", {"frame": nodes})
    conn.execute("COPY Assoc FROM $frame", {"frame": rels})
    seconds = time.perf_counter() - t0
    count = conn.execute("MATCH ()-[e:Assoc]->() RETURN count(e)").get_all()[0][0]
    check(count == len(edges), f"kuzu COPY FROM loaded {count} edges, not {len(edges)}")
    conn.close()
    db.close()
    return seconds


def _kv_lengths(g: Any, pairs: list[tuple[bytes, bytes]]) -> list[int | None]:
    """Edges of kvstore's path for each pair, ``None`` where there is none of <= 4 edges."""
    paths = (g.find_path(a, b, max_depth=4) for a, b in pairs)
    return [None if p is None else len(p) - 1 for p in paths]


def _kuzu_paths(conn: Any, query: Any, pairs: list[tuple[str, str]]) -> list[list[str] | None]:
    """kuzu's shortest path (ids) of at most 4 edges for each pair, ``None`` where none.

    ``SHORTEST`` needs at least 1 hop, so (x, x) is ``[x]`` without a query, as find_path's.
    """
    out: list[list[str] | None] = []
    for a, b in pairs:
        if a == b:
            out.append([a])
            continue
        rows = conn.execute(query, {"a": a, "b": b}).get_all()
        out.append(rows[0][0] if rows else None)
    return out


def _nx_paths(nx: Any, graph: Any, pairs: list[tuple[int, int]]) -> int:
    """networkx ``shortest_path`` for each pair, as L3 runs it; how many have a path."""
    found = 0
    for a, b in pairs:
        try:
            nx.shortest_path(graph, a, b)
            found += 1
        except nx.NetworkXNoPath:
            pass
    return found


def _timed(run: Any) -> float:
    """Seconds ``run()`` takes, after a full collection (as harness.interleave does)."""
    gc.collect()
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def _l3p_sizes(config: Config) -> tuple[int, int]:
    """Concepts and kuzu path pairs: L3's 10,000 concepts; quick 2,000 (kuzu's load is slow)."""
    return (2_000, 500) if config.name == "quick" else (10_000, 1_000)


@lru_cache(maxsize=1)
def _l3p_measure(config: Config) -> _L3pFigures:
    """The L3p measurement, made once per run (a run's ``Config`` holds its temp directory).

    Inserts: kvstore and kuzu in turn, each on a fresh directory, 3 repetitions; the last
    repetition's databases then answer the path queries, the three sides again in turn.
    """
    try:
        import kuzu
    except ImportError:
        raise RuntimeError(
            "not run: kuzu is not installed (pip install kuzu, or pip install -e '.[bench]')"
        ) from None
    try:
        import networkx as nx
    except ImportError:
        nx = None
    n, queries = _l3p_sizes(config)
    edges, all_pairs = _graph(n, 5_000, config.seed)
    pairs = all_pairs[:queries]
    reps = min(config.reps, 3)
    times: dict[str, list[float]] = {"kvstore": [], "kuzu": []}
    with fresh_dir(config.tmp, "l3p-") as d:
        for rep in range(reps):
            seconds, g = _kv_insert(d / f"kv{rep}", n, edges)
            times["kvstore"].append(seconds)
            stats = g.stats().snapshot
            check(stats.concept_count == n, f"{stats.concept_count} concepts, not {n}")
            check(stats.edge_count == len(set(edges)), "kvstore lost an association")
            seconds, db, conn = _kuzu_insert(kuzu, d / f"kuzu{rep}", n, edges)
            times["kuzu"].append(seconds)
            if rep < reps - 1:
                g.close()
                conn.close()
                db.close()
        copy = _kuzu_copy(kuzu, d / "kuzu-copy", n, edges)
        try:
            figures = _l3p_paths(nx, g, conn, edges, pairs, reps)
        finally:
            g.close()
            conn.close()
            db.close()
    writes = n + len(edges)
    figures.insert = {name: writes / statistics.median(t) for name, t in times.items()}
    copied = "not run (pandas is not installed)"
    if copy is not None:
        figures.insert["kuzu_copy"] = writes / copy
        copied = f"{format_rate(writes / copy)} writes/s"
    figures.insert_notes += [
        f"{n:,} concepts + {len(edges):,} edges, {reps} reps; kvstore durability sync, until"
        f" flush() returns; kuzu {_KUZU_BATCH:,}-row UNWIND transactions, durable when COMMIT"
        " returns (kuzu fdatasyncs its WAL there)",
        f"kuzu COPY FROM pandas frames, one statement per table (not judged): {copied}",
    ]
    dupes = len(edges) - len(set(edges))
    if dupes:
        figures.insert_notes.append(
            f"{dupes} edges drawn twice: kvstore keeps one association, kuzu's CREATE two"
        )
    return figures


def _l3p_paths(
    nx: Any,
    g: Any,
    conn: Any,
    edges: list[tuple[int, int]],
    pairs: list[tuple[int, int]],
    reps: int,
) -> _L3pFigures:
    """Path-query rates of kvstore, kuzu and networkx on ``pairs``, after the length check."""
    kv_pairs = [(_cid(a), _cid(b)) for a, b in pairs]
    kz_pairs = [(_hex(a), _hex(b)) for a, b in pairs]
    with warnings.catch_warnings():  # prepare() is deprecated in 0.11 but ~1.5x faster
        warnings.simplefilter("ignore", DeprecationWarning)
        query = conn.prepare(_KUZU_PATH)
    kv_lengths = _kv_lengths(g, kv_pairs)
    kz_lengths = [None if p is None else len(p) - 1 for p in _kuzu_paths(conn, query, kz_pairs)]
    wrong = sum(x != y for x, y in zip(kv_lengths, kz_lengths, strict=True))
    check(wrong == 0, f"kvstore and kuzu disagree on {wrong} of {len(pairs)} path lengths")
    found = sum(x is not None for x in kv_lengths)
    check(found > 0, "no path found at all")
    sides: dict[str, Any] = {
        "kvstore": lambda: _kv_lengths(g, kv_pairs),
        "kuzu": lambda: _kuzu_paths(conn, query, kz_pairs),
    }
    notes: list[str] = []
    if nx is not None:
        graph = nx.DiGraph()
        graph.add_edges_from(edges)
        sides["networkx"] = lambda: _nx_paths(nx, graph, pairs)
    else:
        notes.append("networkx not installed: not run (pip install networkx)")
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(reps):
        for name, run in sides.items():
            times[name].append(_timed(run))
    rates = {name: len(pairs) / statistics.median(t) for name, t in times.items()}
    notes.append(
        f"{len(pairs):,} of L3's pairs, {reps} reps, {found} with a path of <= 4 edges;"
        " kvstore and kuzu agree on every length; "
        + ", ".join(f"{name} {format_rate(rate)}" for name, rate in rates.items())
        + " queries/s"
        + (
            f"; {rates['kvstore'] / rates['networkx']:.2f}x networkx (>= 0.5x)"
            if "networkx" in rates
            else ""
        )
    )
    return _L3pFigures(path=rates, path_notes=notes)


def l3p_kuzu(ctx: Context) -> Measurement:
    """L3p-insert: durable concepts + edges per second, kvstore against kuzu's UNWIND load.

    Its ``figures`` are every side's rate by name (kuzu's ``COPY FROM`` too), for the plot;
    the measurement is shared with :func:`l3p_path`.
    """
    f = _l3p_measure(ctx.config)
    m = Measurement(f.insert["kvstore"], f.insert["kuzu"], unit="writes/s", raw_label="(kuzu)")
    m.notes.extend(f.insert_notes)
    m.figures.update(f.insert)
    return m


def l3p_path(ctx: Context) -> Measurement:
    """L3p-path: find_path against kuzu's shortest path; also >= 0.5x networkx's BFS."""
    f = _l3p_measure(ctx.config)
    m = Measurement(f.path["kvstore"], f.path["kuzu"], unit="queries/s", raw_label="(kuzu)")
    if "networkx" in f.path:
        m.passed = f.path["kvstore"] >= 0.5 * f.path["networkx"]
    m.notes.extend(f.path_notes)
    m.figures.update(f.path)
    return m


def _window_reader(path: str, windows: int, ready: Any, go: Any, start: Any, out: Any) -> None:
    """A reader process: find_path queries through ``windows`` windows of ``_WINDOW`` seconds
    from ``start.value`` (``time.monotonic()``, one clock for every process); puts each
    window's rate.

    Queries run in blocks of 20; a block counts for its window only when it starts after the
    window's first ``_SETTLE`` seconds and ends within the window.
    """
    rng = random.Random(1)
    pairs = [(_cid(rng.randrange(10_000)), _cid(rng.randrange(10_000))) for _ in range(20_000)]
    with ConcurrentMemory(path, read_only=True) as g:
        ready.set()
        go.wait()
        t0 = start.value
        end = t0 + windows * _WINDOW
        counts, spent = [0] * windows, [0.0] * windows
        find_path = g.find_path
        i = 0
        while (begun := time.monotonic()) < end:
            for a, b in pairs[i : i + 20]:
                find_path(a, b, 4)
            i = (i + 20) % len(pairs)
            ended = time.monotonic()
            k = int((begun - t0) // _WINDOW)
            if k >= 0 and k == int((ended - t0) // _WINDOW) and begun - t0 - k * _WINDOW >= _SETTLE:
                counts[k] += 20
                spent[k] += ended - begun
    out.put([c / t if t else 0.0 for c, t in zip(counts, spent, strict=True)])


#: The paced burst's rate: "thousands of concepts per second", as issue 10 describes a
#: learning burst; each concept comes with one association, so twice as many writes.
_L4_RATE = 5_000
#: The pacing slice: the burst sleeps once it is this many seconds ahead of its rate.
_PACE = 0.002
#: L4 alternates windows of this many seconds with and without a burst.
_WINDOW = 1.0
#: What a window leaves out at its start (the reader catching up the last burst).
_SETTLE = 0.1
#: A flat-out burst runs at most this many concepts ahead of what is durable.
_AHEAD = 2_000


def _burst(w: ConcurrentMemory, first: int, rate: float | None, seconds: float) -> int:
    """Learn new concepts from id ``first`` on, each linked to the one before, for ``seconds``.

    At ``rate`` concepts a second, or with ``None`` as fast as the writer makes them durable
    (this thread waits for what it learned ``_AHEAD`` concepts ago, so the backlog stays
    within the burst); returns how many, once they are durable.  The new concepts form a
    chain of their own: no path between L3's concepts passes through them, so the readers
    search the same graph with and without the burst.
    """
    i = 0
    seq = behind = 0
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        cid = _cid(first + i)
        seq = w.learn_concept(cid, b"new")
        if i:
            seq = w.learn_association(cid, _cid(first + i - 1))
        i += 1
        if rate is None and i % _AHEAD == 0:
            w.wait_for(behind)
            behind = seq
        # Sleep only once a slice ahead: a sleep per concept cost this process more CPU
        # (~10 us a concept) than learning it, on a machine it shares with the reader
        if rate is not None and (ahead := i / rate - elapsed) > _PACE:
            time.sleep(ahead)
    w.flush()
    return i


def _windows(path: str, schedule: list[float | None]) -> tuple[list[float], list[int]]:
    """A reader process's rate in each window of ``schedule`` and the concepts learned in each:
    a window's burst rate (concepts/s; ``None``: flat out) or 0 for no writer.

    The writer's graph is open, and the reader's loaded, before the first window starts.
    """
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    ready, go = ctx.Event(), ctx.Event()
    start = ctx.Value("d", 0.0)
    reader = ctx.Process(target=_window_reader, args=(path, len(schedule), ready, go, start, out))
    reader.start()
    learned: list[int] = []
    with ConcurrentMemory(path) as w:
        check(ready.wait(120), "the reader process did not start")
        t0 = start.value = time.monotonic() + 0.2
        go.set()
        first = 1 << 64  # ids far from L3's
        for k, rate in enumerate(schedule):
            while (wait := t0 + k * _WINDOW - time.monotonic()) > 0:
                time.sleep(wait)
            n = 0
            if rate != 0:
                # Stop early enough to be durable (and followed) before the window ends
                n = _burst(w, first, rate, _WINDOW - 2 * _SETTLE)
                first += n
                check(time.monotonic() < t0 + (k + 1) * _WINDOW, "a burst overran its window")
            learned.append(n)
    rates = list(out.get(timeout=120))
    reader.join(60)
    return rates, learned


def l4_readers(ctx: Context) -> Measurement:
    """A reader process's find_path rate during a write burst vs with no writer.

    L3's graph (10,000 concepts, out-degree 4).  One reader process runs queries throughout
    while this process alternates windows of ``_WINDOW`` seconds with no writer and with a
    burst that learns ``_L4_RATE`` concepts a second (and as many associations), every one
    durable and followed by the reader from the store's change records.  Each burst window
    is judged against the mean of the windows either side of it, which ran on the same
    machine moments before and after, and on the graph without and with the burst's
    concepts: this machine's speed wanders by ±20% over seconds (other tenants), far more
    than what is measured.  The ratio is the median of those paired ratios; the figure is
    the burst windows' median rate, and the "no writer" column that over the ratio.

    The burst's concepts form a chain of their own, out of reach of the queried pairs: a
    burst whose associations point into the queried graph makes every search bigger (four
    seconds flat out gave its concepts ~18 new sources each, and the reader's rate fell to a
    third *with or without* the writer still running), which is a different graph, not a
    reader waiting.  The notes also give windows of a burst as fast as one Python thread can
    write (the writer process then needs most of a core, and the reader follows ~10 times as
    many writes).
    """
    reps = 4 if ctx.config.name == "quick" else 10
    flat_reps = 2 if ctx.config.name == "quick" else 3
    rng = random.Random(ctx.config.seed)
    schedule: list[float | None] = [0.0]
    for _ in range(reps):
        schedule += [float(_L4_RATE), 0.0]
    for _ in range(flat_reps):
        schedule += [None, 0.0]
    with fresh_dir(ctx.config.tmp, "l4-") as d:
        path = str(d / "g")
        with ConcurrentMemory(path) as g:
            for i in range(10_000):
                for _ in range(4):
                    g.learn_association(_cid(i), _cid(rng.randrange(10_000)))
        rates, learned = _windows(path, schedule)
    busy = [k for k, rate in enumerate(schedule) if rate != 0]
    paced, flat = busy[:reps], busy[reps:]

    def baseline(k: int) -> float:
        return (rates[k - 1] + rates[k + 1]) / 2

    ratios = [rates[k] / baseline(k) for k in busy]
    # The ratio is the median of the paired ratios (a burst window against its neighbours);
    # the "no writer" column is the burst windows' median rate over it
    kv = statistics.median(rates[k] for k in paced)
    m = Measurement(
        kv, kv / statistics.median(ratios[:reps]), unit="queries/s", raw_label="no writer"
    )
    m.notes.append(
        f"{reps} windows of {_WINDOW:.0f} s with a burst of {_L4_RATE:,} concepts/s + as many"
        f" associations, durability sync ({statistics.median(learned[k] for k in paced):,.0f}"
        " concepts each), between windows with no writer; each burst window against the"
        " windows beside it: " + " ".join(f"{r:.2f}" for r in ratios[:reps])
    )
    flat_rate = statistics.median(learned[k] for k in flat) / (_WINDOW - 2 * _SETTLE)
    m.notes.append(
        f"flat-out bursts (not judged): {flat_rate:,.0f} concepts/s, reader at "
        + " ".join(f"{r:.2f}x" for r in ratios[reps:])
        + " the windows beside them"
    )
    m.figures.update(flat_out=statistics.median(ratios[reps:]), flat_out_concepts=flat_rate)
    return m
