"""The concept graph: burst-tolerant writes, lock-free snapshot reads, durable (SPEC §6b).

Writes (``learn_concept``, ``learn_association``) are checked, numbered and appended to a
bounded in-memory queue, and return at once.  A reconciler thread drains the queue every
``reconcile_interval_ms`` in batches of up to ``max_batch_size``, writes each batch to the
store as **one transaction** (so the graph on disk is always whole), then publishes a new
immutable in-memory snapshot.  Readers use the snapshot they find, without locks; it is at
most about one interval stale.

Several processes may open one path.  Every batch also appends a small change record naming
the ids it touched, under an increasing batch number; every instance follows those records
and re-reads only the touched ids, so keeping a snapshot current costs in proportion to what
changed, never a re-read of the whole graph.

Key schema, under ``(b"kvstore.graph",)``::

    ("c", id)                       -> pack((content, f32 vector | None, strength,
                                              confidence, created))
    ("a", source, order, target, type) -> pack((confidence, weight, created))
    ("e", source, target, type)     -> pack((order,))      one association per triple
    ("head",)                       -> pack((batch,))      the last batch number
    ("log", batch)                  -> pack((ids...))      sources and concepts a batch touched
"""

from __future__ import annotations

import array
import collections
import itertools
import math
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

import kvstore
from kvstore import Database, ReadOnlyError, Subspace, Transaction
from kvstore import tuple as tuple_layer

__all__ = [
    "ASSOCIATION_TYPES",
    "Association",
    "Concept",
    "ConcurrentMemory",
    "GraphStats",
]

ASSOCIATION_TYPES: Final = ("semantic", "causal", "temporal", "hierarchical", "compositional")
_ROOT: Final = Subspace((b"kvstore.graph",))
_HEAD: Final = _ROOT.pack(("head",))
_LOG_KEEP: Final = 10_000  # change records kept; an instance further behind reloads all


@attrs.frozen
class Association:
    """A directed, typed edge; one per (source, target, assoc_type)."""

    source: bytes
    target: bytes
    assoc_type: str
    confidence: float
    weight: float
    created: float


@attrs.frozen
class Concept:
    """A learned concept, as the snapshot holds it."""

    id: bytes
    content: bytes
    vector: tuple[float, ...] | None
    strength: float
    confidence: float
    created: float
    neighbors: list[bytes]


@attrs.frozen
class WriteLogStats:
    written: int
    dropped: int
    pending: int


@attrs.frozen
class ReconcilerStats:
    reconciliations: int
    entries_processed: int
    disk_flushes: int


@attrs.frozen
class SnapshotStats:
    concept_count: int
    edge_count: int
    sequence: int
    timestamp: float


@attrs.frozen
class GraphStats:
    """``stats()``: the write log, the reconciler and the published snapshot."""

    write_log: WriteLogStats
    reconciler: ReconcilerStats
    snapshot: SnapshotStats


# --- argument checks ---------------------------------------------------------------------


def _check_id(value: object, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be 16 bytes, not {type(value).__name__}")
    raw = bytes(value)
    if len(raw) != 16:
        raise ValueError(f"{name} must be 16 bytes long, not {len(raw)}")
    return raw


def _check_unit(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, not {value}")
    return f


def _check_vector(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        raise TypeError(f"vector must be a sequence of floats or None, not {type(value).__name__}")
    items = list(value)
    for x in items:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"vector items must be numbers, not {type(x).__name__}")
        if not math.isfinite(x):
            raise ValueError(f"vector items must be finite, not {x}")
    try:
        return array.array("f", items).tobytes()
    except OverflowError:
        raise ValueError("vector items must fit in float32") from None


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, not {value}")
    return value


def _check_timeout(value: object) -> float | None:
    if value is None:
        return None
    t = _check_unit(value, "timeout")
    if t < 0:
        raise ValueError(f"timeout must be >= 0, not {value}")
    return t


# --- the snapshot ------------------------------------------------------------------------


def _decode_vector(raw: bytes | None) -> tuple[float, ...] | None:
    if raw is None:
        return None
    return tuple(array.array("f", raw))


@attrs.frozen
class _Snapshot:
    """One immutable published state: never changed after it is published."""

    concepts: dict[bytes, tuple[bytes, bytes | None, float, float, float]]
    edges: dict[bytes, tuple[Association, ...]]  # outgoing, first-learned order
    targets: dict[bytes, tuple[bytes, ...]]  # distinct targets, first-learned order
    sources: dict[bytes, tuple[bytes, ...]]  # reverse adjacency, for two-sided searches
    edge_count: int
    sequence: int
    batch: int
    timestamp: float


def _targets(edges: Sequence[Association]) -> tuple[bytes, ...]:
    return tuple(dict.fromkeys(e.target for e in edges))


def _load_concept(
    tx: Transaction, cid: bytes
) -> tuple[bytes, bytes | None, float, float, float] | None:
    raw = tx.get(_ROOT.pack(("c", cid)))
    if raw is None:
        return None
    content, vector, strength, confidence, created = tuple_layer.unpack(raw)
    return (content, vector, strength, confidence, created)


def _load_edges(tx: Transaction, source: bytes) -> tuple[Association, ...]:
    space = _ROOT.subspace(("a", source))
    out = []
    for pair in tx.get_range(space.range().min_key, space.range().max_key):
        _, target, assoc_type = space.unpack(pair.key)
        confidence, weight, created = tuple_layer.unpack(pair.value)
        out.append(Association(source, target, assoc_type, confidence, weight, created))
    return tuple(out)


def _read_head(tx: Transaction) -> int:
    raw = tx.get(_HEAD)
    return 0 if raw is None else int(tuple_layer.unpack(raw)[0])


def _load_all(tx: Transaction, sequence: int) -> _Snapshot:
    batch = _read_head(tx)
    concepts = {}
    cs = _ROOT.range(("c",))
    for pair in tx.get_range(cs.min_key, cs.max_key):
        (cid,) = _ROOT.subspace(("c",)).unpack(pair.key)
        content, vector, strength, confidence, created = tuple_layer.unpack(pair.value)
        concepts[cid] = (content, vector, strength, confidence, created)
    grouped: dict[bytes, list[Association]] = collections.defaultdict(list)
    a = _ROOT.subspace(("a",))
    for pair in tx.get_range(a.range().min_key, a.range().max_key):
        source, _, target, assoc_type = a.unpack(pair.key)
        confidence, weight, created = tuple_layer.unpack(pair.value)
        grouped[source].append(Association(source, target, assoc_type, confidence, weight, created))
    edges = {s: tuple(v) for s, v in grouped.items()}
    targets = {s: _targets(v) for s, v in edges.items()}
    reverse: dict[bytes, list[bytes]] = collections.defaultdict(list)
    for source, ts in targets.items():
        for t in ts:
            reverse[t].append(source)
    sources = {t: tuple(v) for t, v in reverse.items()}
    count = sum(len(v) for v in edges.values())
    return _Snapshot(concepts, edges, targets, sources, count, sequence, batch, time.time())


def _refresh(snap: _Snapshot, tx: Transaction, sequence: int) -> _Snapshot:
    """``snap`` brought up to the store's last batch, re-reading only what changed."""
    head = _read_head(tx)
    if head == snap.batch:
        return attrs.evolve(snap, sequence=max(sequence, snap.sequence), timestamp=time.time())
    if head - snap.batch > _LOG_KEEP:
        return _load_all(tx, max(sequence, snap.sequence))
    log = _ROOT.subspace(("log",))
    touched_c: set[bytes] = set()
    touched_s: set[bytes] = set()
    seen = snap.batch
    for pair in tx.get_range(log.pack((snap.batch + 1,)), log.pack((head + 1,))):
        (number,) = log.unpack(pair.key)
        if number != seen + 1:  # a record left the log: start over
            return _load_all(tx, max(sequence, snap.sequence))
        seen = number
        concepts, sources = tuple_layer.unpack(pair.value)
        touched_c.update(concepts)
        touched_s.update(sources)
    if seen != head:
        return _load_all(tx, max(sequence, snap.sequence))
    concepts = dict(snap.concepts)
    for cid in touched_c:
        rec = _load_concept(tx, cid)
        if rec is not None:
            concepts[cid] = rec
    return _with_edges(snap, tx, concepts, touched_s, head, sequence)


def _with_edges(
    snap: _Snapshot,
    tx: Transaction,
    concepts: dict[bytes, tuple[bytes, bytes | None, float, float, float]],
    touched: Iterable[bytes],
    batch: int,
    sequence: int,
) -> _Snapshot:
    """The snapshot after ``batch``: ``concepts``, and the ``touched`` sources' edges re-read.

    Associations are never removed, so a source's targets only grow: the reverse adjacency
    gains the new ones.
    """
    edges = dict(snap.edges)
    targets = dict(snap.targets)
    sources = dict(snap.sources)
    count = snap.edge_count
    for source in touched:
        new = _load_edges(tx, source)
        count += len(new) - len(edges.get(source, ()))
        edges[source] = new
        old_targets = set(targets.get(source, ()))
        targets[source] = _targets(new)
        for t in targets[source]:
            if t not in old_targets:
                sources[t] = (*sources.get(t, ()), source)
    return _Snapshot(
        concepts, edges, targets, sources, count, max(sequence, snap.sequence), batch, time.time()
    )


# --- the store ---------------------------------------------------------------------------

# ("c", seq, id, content, vector, strength, confidence)
# ("a", seq, source, target, type, confidence, weight)
_Entry = tuple[Any, ...]


def _apply_batch(
    tx: Transaction, entries: Sequence[_Entry], snap: _Snapshot
) -> tuple[int, dict[bytes, tuple[bytes, bytes | None, float, float, float]] | None]:
    """Write one batch and its change record: the batch number, and the concepts it wrote.

    When no other process has written since ``snap`` (the head is still ``snap.batch``),
    ``snap`` is exactly what the store holds, so a concept's ``created`` comes from it
    instead of a read; the written concepts are then returned for the new snapshot.
    """
    head = _read_head(tx)
    exact = head == snap.batch
    batch = head + 1
    now = time.time()
    written: dict[bytes, tuple[bytes, bytes | None, float, float, float]] = {}
    touched_s: dict[bytes, None] = {}
    order = time.time_ns()
    known = snap.concepts
    for entry in entries:
        if entry[0] == "c":
            _, _, cid, content, vector, strength, confidence = entry
            key = _ROOT.pack(("c", cid))
            prev = written.get(cid)
            if prev is not None:
                created = prev[4]
            elif exact:
                rec = known.get(cid)
                created = now if rec is None else rec[4]
            else:
                old = tx.get(key)
                created = now if old is None else tuple_layer.unpack(old)[4]
            tx.put(key, tuple_layer.pack((content, vector, strength, confidence, created)))
            written[cid] = (content, vector, strength, confidence, created)
        else:
            _, _, source, target, assoc_type, confidence, weight = entry
            ekey = _ROOT.pack(("e", source, target, assoc_type))
            old = tx.get(ekey)
            if old is None:
                order += 1
                position = order
                created = now
                tx.put(ekey, tuple_layer.pack((position,)))
            else:
                position = tuple_layer.unpack(old)[0]
                rec_a = tx.get(_ROOT.pack(("a", source, position, target, assoc_type)))
                created = now if rec_a is None else tuple_layer.unpack(rec_a)[2]
            tx.put(
                _ROOT.pack(("a", source, position, target, assoc_type)),
                tuple_layer.pack((confidence, weight, created)),
            )
            touched_s[source] = None
    tx.put(_HEAD, tuple_layer.pack((batch,)))
    log = _ROOT.subspace(("log",))
    tx.put(log.pack((batch,)), tuple_layer.pack((tuple(written), tuple(touched_s))))
    if batch > _LOG_KEEP:
        tx.remove_range(log.range().min_key, log.pack((batch - _LOG_KEEP,)))
    return batch, written if exact else None


def _advance(
    snap: _Snapshot,
    tx: Transaction,
    batch: int,
    written: dict[bytes, tuple[bytes, bytes | None, float, float, float]],
    sources: Iterable[bytes],
    sequence: int,
) -> _Snapshot:
    """``snap`` plus our own batch ``batch``, the one right after it: no concept re-read."""
    concepts = dict(snap.concepts)
    concepts.update(written)
    return _with_edges(snap, tx, concepts, sources, batch, sequence)


def _two_sided_bfs(
    forward: dict[bytes, tuple[bytes, ...]],
    backward: dict[bytes, tuple[bytes, ...]],
    start: bytes,
    end: bytes,
    max_depth: int,
) -> list[bytes] | None:
    """A shortest path of at most ``max_depth`` edges, searching from both ends at once.

    Each round grows the smaller frontier by one whole level; the first level that meets the
    other side holds a shortest path (the best meeting of that level).
    """
    parent_f: dict[bytes, bytes | None] = {start: None}
    parent_b: dict[bytes, bytes | None] = {end: None}
    dist_f = {start: 0}
    dist_b = {end: 0}
    front_f, front_b = [start], [end]
    depth_f = depth_b = 0
    while front_f and front_b and depth_f + depth_b < max_depth:
        if len(front_f) <= len(front_b):
            graph, parents, dists, others, other_dists = forward, parent_f, dist_f, parent_b, dist_b
            frontier, depth = front_f, depth_f
        else:
            graph, parents, dists, others, other_dists = (
                backward,
                parent_b,
                dist_b,
                parent_f,
                dist_f,
            )
            frontier, depth = front_b, depth_b
        level: list[bytes] = []
        best: tuple[int, bytes] | None = None
        for node in frontier:
            for nxt in graph.get(node, ()):
                if nxt in parents:
                    continue
                parents[nxt] = node
                dists[nxt] = depth + 1
                level.append(nxt)
                if nxt in others:
                    length = depth + 1 + other_dists[nxt]
                    if best is None or length < best[0]:
                        best = (length, nxt)
        if parents is parent_f:
            front_f, depth_f = level, depth_f + 1
        else:
            front_b, depth_b = level, depth_b + 1
        if best is not None:
            meet = best[1]
            left = [meet]
            while (p := parent_f[left[-1]]) is not None:
                left.append(p)
            left.reverse()
            node_b = parent_b[meet]
            while node_b is not None:
                left.append(node_b)
                node_b = parent_b[node_b]
            return left
    return None


# --- the public class --------------------------------------------------------------------


class ConcurrentMemory:
    """A durable concept graph with queued writes and lock-free snapshot reads."""

    def __init__(
        self,
        path_or_db: str | os.PathLike[str] | Database,
        *,
        reconcile_interval_ms: float = 10,
        max_batch_size: int = 10_000,
        queue_capacity: int = 100_000,
        overflow: str = "block",
        read_only: bool = False,
    ) -> None:
        interval = _check_unit(reconcile_interval_ms, "reconcile_interval_ms")
        if interval <= 0:
            raise ValueError(f"reconcile_interval_ms must be > 0, not {reconcile_interval_ms}")
        self._batch_size = _check_positive_int(max_batch_size, "max_batch_size")
        self._capacity = _check_positive_int(queue_capacity, "queue_capacity")
        if overflow not in ("block", "drop_oldest"):
            raise ValueError(f"overflow must be 'block' or 'drop_oldest', not {overflow!r}")
        if not isinstance(read_only, bool):
            raise TypeError(f"read_only must be a bool, not {type(read_only).__name__}")
        if isinstance(path_or_db, Database):
            self._db, self._own_db = path_or_db, False
        elif isinstance(path_or_db, (str, os.PathLike)):
            self._db, self._own_db = kvstore.open(path_or_db), True
        else:
            raise TypeError(
                f"path_or_db must be a path or a kvstore.Database, not {type(path_or_db).__name__}"
            )
        self._interval = interval / 1000.0
        self._overflow = overflow
        self._read_only = read_only
        self._queue: collections.deque[_Entry] = collections.deque()
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._done = threading.Condition(threading.Lock())
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._written = self._dropped = 0
        self._reconciliations = self._processed = self._flushes = 0
        self._applied_seq = 0  # every write up to this one is reconciled (or dropped)
        self._closed = False
        self._error: BaseException | None = None
        with self._db.transaction(read_only=True) as tx:
            self._snap = _load_all(tx, 0)
        self._thread = threading.Thread(
            target=self._run, name="kvstore-graph-reconciler", daemon=True
        )
        self._thread.start()

    # --- writes --------------------------------------------------------------------------

    def _enqueue(self, make: Any) -> int:
        if self._read_only:
            raise ReadOnlyError("this ConcurrentMemory is read-only")
        with self._lock:
            if self._closed:
                raise kvstore.StoreClosed("this ConcurrentMemory is closed")
            while len(self._queue) >= self._capacity:
                if self._overflow == "drop_oldest":
                    self._queue.popleft()
                    self._dropped += 1
                else:
                    self._wake.set()
                    self._not_full.wait(0.1)
                    if self._closed:
                        raise kvstore.StoreClosed("this ConcurrentMemory is closed")
            seq = next(self._seq)
            self._queue.append(make(seq))
            self._last_seq = seq
            self._written += 1
        if len(self._queue) >= self._batch_size:
            self._wake.set()
        return seq

    def learn_concept(
        self,
        concept_id: bytes,
        content: bytes,
        vector: Sequence[float] | None = None,
        strength: float = 1.0,
        confidence: float = 1.0,
    ) -> int:
        """Queue a concept (new, or replacing one); return its sequence number."""
        cid = _check_id(concept_id, "concept_id")
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f"content must be bytes, not {type(content).__name__}")
        body = bytes(content)
        vec = _check_vector(vector)
        s = _check_unit(strength, "strength")
        c = _check_unit(confidence, "confidence")
        return self._enqueue(lambda seq: ("c", seq, cid, body, vec, s, c))

    def learn_association(
        self,
        source: bytes,
        target: bytes,
        assoc_type: str = "semantic",
        confidence: float = 1.0,
        weight: float = 1.0,
    ) -> int:
        """Queue a directed association (new, or replacing one); return its sequence number."""
        s = _check_id(source, "source")
        t = _check_id(target, "target")
        if not isinstance(assoc_type, str):
            raise TypeError(f"assoc_type must be a str, not {type(assoc_type).__name__}")
        if assoc_type not in ASSOCIATION_TYPES:
            raise ValueError(f"assoc_type must be one of {ASSOCIATION_TYPES}, not {assoc_type!r}")
        c = _check_unit(confidence, "confidence")
        w = _check_unit(weight, "weight")
        return self._enqueue(lambda seq: ("a", seq, s, t, assoc_type, c, w))

    # --- the reconciler ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            with self._lock:
                closing = self._closed
            try:
                self._reconcile_all()
            except BaseException as e:  # pragma: no cover - kept for flush() to report
                self._error = e
                with self._done:
                    self._done.notify_all()
                if closing:
                    return
                time.sleep(self._interval)
                continue
            if closing:
                with self._lock:
                    if not self._queue:
                        return

    def _reconcile_all(self) -> None:
        while True:
            with self._lock:
                n = min(len(self._queue), self._batch_size)
                entries = [self._queue.popleft() for _ in range(n)]
                upto = self._last_seq if not self._queue else self._queue[0][1] - 1
                self._not_full.notify_all()
            own: tuple[int, Any] | None = None
            if entries:
                own = self._db.run(_apply_batch, entries, self._snap, retries=100)
                self._flushes += 1
                self._processed += len(entries)
            with self._db.transaction(read_only=True) as tx:
                if own is not None and own[1] is not None:
                    sources = {e[2] for e in entries if e[0] == "a"}
                    self._snap = _advance(self._snap, tx, own[0], own[1], sources, upto)
                self._snap = _refresh(self._snap, tx, upto)
            self._reconciliations += 1 if entries else 0
            with self._done:
                self._applied_seq = max(self._applied_seq, upto)
                self._done.notify_all()
            if not entries or len(entries) < self._batch_size:
                return

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every write queued before this call is durable and visible."""
        with self._lock:
            target = self._last_seq
        self.wait_for(target, timeout)
        return target

    def wait_for(self, sequence: int, timeout: float | None = None) -> None:
        """Wait until write ``sequence`` is durable and visible (read-your-writes)."""
        if isinstance(sequence, bool) or not isinstance(sequence, int):
            raise TypeError(f"sequence must be an int, not {type(sequence).__name__}")
        limit = _check_timeout(timeout)
        deadline = None if limit is None else time.monotonic() + limit
        self._wake.set()
        with self._done:
            while self._applied_seq < sequence:
                if self._error is not None:
                    raise self._error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"write {sequence} was not reconciled within {timeout} s")
                self._done.wait(0.05 if remaining is None else min(remaining, 0.05))
                self._wake.set()

    def close(self) -> None:
        """Flush every queued write, stop the reconciler, close a database we opened."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._not_full.notify_all()
        self._wake.set()
        self._thread.join()
        if self._own_db:
            self._db.close()

    def __enter__(self) -> ConcurrentMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads ---------------------------------------------------------------------------

    def query_concept(self, concept_id: bytes) -> Concept | None:
        cid = _check_id(concept_id, "concept_id")
        snap = self._snap
        rec = snap.concepts.get(cid)
        if rec is None:
            return None
        content, vector, strength, confidence, created = rec
        return Concept(
            cid,
            content,
            _decode_vector(vector),
            strength,
            confidence,
            created,
            list(snap.targets.get(cid, ())),
        )

    def query_neighbors(self, concept_id: bytes) -> list[bytes]:
        cid = _check_id(concept_id, "concept_id")
        return list(self._snap.targets.get(cid, ()))

    def query_associations(self, concept_id: bytes) -> list[Association]:
        cid = _check_id(concept_id, "concept_id")
        return list(self._snap.edges.get(cid, ()))

    def find_path(self, start: bytes, end: bytes, max_depth: int = 6) -> list[bytes] | None:
        """A shortest directed path from ``start`` to ``end`` of at most ``max_depth`` edges."""
        s = _check_id(start, "start")
        e = _check_id(end, "end")
        if isinstance(max_depth, bool) or not isinstance(max_depth, int):
            raise TypeError(f"max_depth must be an int, not {type(max_depth).__name__}")
        if max_depth < 0:
            raise ValueError(f"max_depth must be >= 0, not {max_depth}")
        if s == e:
            return [s]
        snap = self._snap
        return _two_sided_bfs(snap.targets, snap.sources, s, e, max_depth)

    def stats(self) -> GraphStats:
        snap = self._snap
        with self._lock:
            pending = len(self._queue)
            log = WriteLogStats(self._written, self._dropped, pending)
        return GraphStats(
            log,
            ReconcilerStats(self._reconciliations, self._processed, self._flushes),
            SnapshotStats(len(snap.concepts), snap.edge_count, snap.sequence, snap.timestamp),
        )
