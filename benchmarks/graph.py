"""L2 and L3: the concept graph (``kvstore.ConcurrentMemory``).

L2 times ``learn_concept`` calls (the enqueue, the figure) and then ``flush()`` (the
reconciled rate, in the notes), on a durability="none" LMDB database.  L3 times
``find_path`` between random pairs on 10,000 concepts with out-degree 4 (depth <= 4), and
beside it networkx's ``shortest_path`` on the same graph, in memory: the speed limit of a
Python graph read.  Its ratio is kvstore over networkx.  L4 runs the same queries in a
reader process (``read_only=True``) with no writer, then during a write burst from this
process: readers must not wait for writes, so the ratio should stay near 1.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from typing import Any

from kvstore import ConcurrentMemory

from .data import fresh_dir
from .harness import Context, Measurement, check

__all__ = ["l2_burst", "l3_find_path", "l4_readers"]


def _cid(i: int) -> bytes:
    return i.to_bytes(16, "big")


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

    n, queries = 10_000, 5_000
    rng = random.Random(ctx.config.seed)
    edges = [(i, rng.randrange(n)) for i in range(n) for _ in range(4)]
    pairs = [(rng.randrange(n), rng.randrange(n)) for _ in range(queries)]
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


def _reader(path: str, seconds: float, seed: int, out: Any) -> None:
    """A reader process: find_path queries for ``seconds``; puts how many it ran."""
    rng = random.Random(seed)
    with ConcurrentMemory(path, read_only=True) as g:
        n = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(100):
                g.find_path(_cid(rng.randrange(10_000)), _cid(rng.randrange(10_000)), 4)
            n += 100
    out.put(n / seconds)


def _reader_rate(path: str, seconds: float, seed: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=_reader, args=(path, seconds, seed, out))
    p.start()
    rate = float(out.get(timeout=120))
    p.join(60)
    return rate


def l4_readers(ctx: Context) -> Measurement:
    """A reader process's find_path rate during a write burst vs with no writer."""
    seconds = 2.0 if ctx.config.name == "quick" else 4.0
    rng = random.Random(ctx.config.seed)
    with fresh_dir(ctx.config.tmp, "l4-") as d:
        path = str(d / "g")
        with ConcurrentMemory(path) as g:
            for i in range(10_000):
                for _ in range(4):
                    g.learn_association(_cid(i), _cid(rng.randrange(10_000)))
        idle = _reader_rate(path, seconds, 1)
        stop = threading.Event()
        written = [0]

        def burst() -> None:
            with ConcurrentMemory(path) as w:
                i = 10_000
                while not stop.is_set():
                    w.learn_concept(_cid(i), b"new")
                    w.learn_association(_cid(i), _cid(i % 10_000))
                    i += 1
                written[0] = i - 10_000

        writer = threading.Thread(target=burst)
        writer.start()
        busy = _reader_rate(path, seconds, 1)
        stop.set()
        writer.join()
    m = Measurement(busy, idle, unit="queries/s", raw_label="no writer")
    m.notes.append(f"{written[0]:,} concepts written during the burst")
    return m
