"""The concept graph: burst-tolerant writes, lock-free snapshot reads, durable (SPEC §6b).

Writes (``learn_concept``, ``learn_association``) are checked, numbered and appended to a
bounded in-memory queue, and return at once.  A reconciler thread drains the queue every
``reconcile_interval_ms`` in batches of up to ``max_batch_size``, writes each batch to the
store as **one transaction** (so the graph on disk is always whole), then publishes the new
in-memory state.  Readers use the state they find, without locks, and it never changes
under them (:mod:`kvstore.layers.leftright`: two copies, the reconciler changes the one no
reader is in); it is at most about one interval stale.

Several processes may open one path.  Every batch also stores a change record holding what
it wrote (:mod:`kvstore.layers.graph_changes`), under an increasing batch number; every
instance follows those records, so keeping a snapshot current costs in proportion to what
changed: no re-read of the graph, and no copy of it either.

Key schema, under ``(b"kvstore.graph",)``::

    ("c", id)                       -> pack((content, f32 vector | None, strength,
                                              confidence, created))
    ("a", source, order, target, type) -> pack((confidence, weight, created))
    ("e", source, target, type)     -> pack((order,))      one association per triple
    ("head",)                       -> pack((batch,))      the last batch number
    ("chg", batch)                  -> change record       what the batch wrote (binary)
    ("chgtally",)                   -> pack((first, bytes)) the oldest record kept, bytes kept
"""

from __future__ import annotations

import array
import bisect
import collections
import enum
import itertools
import math
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

import kvstore
from kvstore import Database, KVStore, ReadOnlyError, Subspace, Transaction
from kvstore import tuple as tuple_layer
from kvstore.gcuntrack import untrack as _untrack
from kvstore.layers.graph_changes import ASSOCIATION_TYPES, Changes, ConceptRecord, EdgeRecord
from kvstore.layers.graph_pack import pack_association, pack_concept, pack_concept_key
from kvstore.layers.leftright import LeftRight

__all__ = [
    "ASSOCIATION_TYPES",
    "Association",
    "Concept",
    "ConcurrentMemory",
    "GraphStats",
]

_ROOT: Final = Subspace((b"kvstore.graph",))
_HEAD: Final = _ROOT.pack(("head",))
_CHANGES: Final = _ROOT.subspace(("chg",))
_TALLY: Final = _ROOT.pack(("chgtally",))
# Key prefixes: a key is its prefix + pack(the rest), as Subspace.pack would build it
_CONCEPT_KEYS: Final = _ROOT.pack(("c",))
_ASSOC_KEYS: Final = _ROOT.pack(("a",))
_EDGE_KEYS: Final = _ROOT.pack(("e",))
_OLD_LOG: Final = _ROOT.range(("log",))  # id-only change records of earlier versions
#: Change records kept: at most this many batches and (beyond the newest) this many bytes.
#: An instance further behind reloads the whole graph.
_KEEP_BATCHES: Final = 10_000
_KEEP_BYTES: Final = 64 * 1024 * 1024


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


# --- values the garbage collector need not traverse (PERFORMANCE L4) ----------------------
# The plane's records are tuples of ints, bytes, str and floats: they can never be part of a
# reference cycle, and CPython stops tracking such a tuple at its first collection.  But a
# dict re-tracks itself when a tracked value enters it, so every batch put the plane's big
# dicts back in the collector's view: the young collections that followed visited every
# entry, and so did each full collection (with the adjacency in dicts too, ~25 ms at 50k ids,
# several times a second in a reader process following a write burst).  Untracking each
# record before it enters the plane keeps the dicts out of the collector's view once a full
# collection has untracked them, as CPython would.
def _untrack_values(*maps: dict[int, tuple[Any, ...]]) -> None:
    """Untrack the values of ``maps``: tuples of atomic items only (see above)."""
    if _untrack is not None:
        for values in maps:
            collections.deque(map(_untrack, map(id, values.values())), 0)


# --- the snapshot ------------------------------------------------------------------------


def _decode_vector(raw: bytes | None) -> tuple[float, ...] | None:
    if raw is None:
        return None
    return tuple(array.array("f", raw))


class _Ids:
    """Every id the graph has met, numbered in the order it met them: ``names[number]`` is the
    id, ``numbers[id]`` its number.  Only ever grows, so both copies of the graph share it.

    The copies key everything by number.  Numbers given out one after another fill a dict's
    table (or a list) in order, so a batch of new ids changes a few adjacent cache lines of
    each, not one random line per id and table: publishing a batch in a reader process that
    follows a write burst went from ~280 to ~90 us (PERFORMANCE L4).  Searches index lists
    by int, not dicts by 16-byte strings (L3).

    A number reaches readers only through a published copy, which holds nothing about a
    number given out after it: a reader that finds a newer id here finds no concept and no
    association for it, as if it were not here.
    """

    __slots__ = ("names", "numbers")

    def __init__(self) -> None:
        self.numbers: dict[bytes, int] = {}
        # A dict, not a list: one of atomic items the collector never traverses (see above)
        self.names: dict[int, bytes] = {}

    def number(self, name: bytes) -> int:
        """``name``'s number, given out now if it has none (the writer's thread only)."""
        n = self.numbers.get(name)
        if n is None:
            n = len(self.names)
            self.names[n] = name  # before the number: whoever finds it finds the name
            self.numbers[name] = n
        return n


@attrs.define(eq=False)
class _Graph:
    """One copy of the published graph, as :class:`~kvstore.layers.leftright.LeftRight`
    keeps two: changed in place, and only while no reader is inside it.  Keyed by the
    numbers of :class:`_Ids`, which both copies share.

    The adjacency ``find_path`` searches is two lists indexed by number, with an entry (``()``
    if none) for every number given out before the copy's last change: a search touches 8
    bytes of each list per id instead of a dict's 24-byte entry and its index, so both
    copies' lists stay in the cache of a reader that switches copy at every batch it follows
    (PERFORMANCE L4: alternating copies every ~10 ms cost a search 6-9% with dicts).
    """

    ids: _Ids
    concepts: dict[int, ConceptRecord]
    edges: dict[int, tuple[EdgeRecord, ...]]  # outgoing, sorted by position
    targets: list[tuple[int, ...]]  # distinct targets, first-learned order
    sources: list[tuple[int, ...]]  # reverse adjacency, sorted by id, for two-sided searches
    edge_count: int
    batch: int


@attrs.frozen
class _Update:
    """What one publication changes: the new value of every key it touches, and the counts."""

    concepts: dict[int, ConceptRecord]
    edges: dict[int, tuple[EdgeRecord, ...]]
    targets: dict[int, tuple[int, ...]]
    sources: dict[int, tuple[int, ...]]
    edge_count: int
    batch: int
    size: int  # numbers given out: the adjacency lists' length


def _copy_graph(g: _Graph) -> _Graph:
    return _Graph(
        g.ids,
        g.concepts.copy(),
        g.edges.copy(),
        g.targets.copy(),
        g.sources.copy(),
        g.edge_count,
        g.batch,
    )


def _apply_update(g: _Graph, u: _Update) -> None:
    g.concepts.update(u.concepts)
    g.edges.update(u.edges)
    for adjacency, changed in ((g.targets, u.targets), (g.sources, u.sources)):
        if (grow := u.size - len(adjacency)) > 0:
            adjacency += itertools.repeat((), grow)
        # adjacency[n] = value for each, at C speed
        collections.deque(map(adjacency.__setitem__, changed.keys(), changed.values()), 0)
    g.edge_count = u.edge_count
    g.batch = u.batch


def _distinct_targets(records: Iterable[EdgeRecord], ids: _Ids) -> tuple[int, ...]:
    number = ids.number
    return tuple(dict.fromkeys(number(r[1]) for r in records))


def _read_head(store: KVStore) -> int:
    raw = store.get(_HEAD)
    return 0 if raw is None else int(tuple_layer.unpack(raw)[0])


def _load_all(store: KVStore, ids: _Ids) -> _Graph:
    """The whole graph read from the store (on open, or when the change records fall short),
    numbering the ids it meets in ``ids``."""
    batch = _read_head(store)
    number = ids.number
    concepts: dict[int, ConceptRecord] = {}
    cs = _ROOT.subspace(("c",))
    with store.get_range(cs.range().min_key, cs.range().max_key) as pairs:
        for pair in pairs:
            (cid,) = cs.unpack(pair.key)
            content, vector, strength, confidence, created = tuple_layer.unpack(pair.value)
            concepts[number(cid)] = (content, vector, strength, confidence, created)
    grouped: dict[int, list[EdgeRecord]] = collections.defaultdict(list)
    a = _ROOT.subspace(("a",))
    with store.get_range(a.range().min_key, a.range().max_key) as pairs:
        for pair in pairs:
            source, position, target, assoc_type = a.unpack(pair.key)
            confidence, weight, created = tuple_layer.unpack(pair.value)
            grouped[number(source)].append(
                (position, target, assoc_type, confidence, weight, created)
            )
    edges = {s: tuple(v) for s, v in grouped.items()}  # key order is position order
    targets: list[tuple[int, ...]] = [()] * len(ids.names)
    # Sources in key order, so each target's sources are sorted by id (as _update_for keeps them)
    reverse: dict[int, list[int]] = collections.defaultdict(list)
    for source, records in edges.items():
        targets[source] = ts = _distinct_targets(records, ids)
        for t in ts:
            reverse[t].append(source)
    targets += itertools.repeat((), len(ids.names) - len(targets))  # targets numbered just now
    sources: list[tuple[int, ...]] = [()] * len(ids.names)
    for t, v in reverse.items():
        sources[t] = tuple(v)
    return _Graph(ids, concepts, edges, targets, sources, sum(map(len, edges.values())), batch)


def _update_for(g: _Graph, changes: Changes, batch: int) -> _Update:
    """The update that brings ``g`` to batch ``batch``, given everything batches since wrote.

    Associations are never removed, so a source's targets only grow: the reverse adjacency
    gains the new ones.  A reader process runs this for every batch a writer makes, so the
    common cases (a new source; edges learned after all of a source's others) skip the
    merge and sort (PERFORMANCE L4).

    A target's sources stay sorted by id, the order :func:`_load_all` builds them in (the
    store's key order), never in the order they were learned: ``find_path`` picks among
    equally short paths by that order, so an instance that follows batches must hold the
    same order as one that loads the graph afresh.
    """
    ids = g.ids
    number, names = ids.number, ids.names
    new_edges: dict[int, tuple[EdgeRecord, ...]] = {}
    new_targets: dict[int, tuple[int, ...]] = {}
    new_sources: dict[int, tuple[int, ...]] = {}
    count = g.edge_count
    get_edges, targets, sources = g.edges.get, g.targets, g.sources
    known_ids = len(sources)  # numbers from here on are new since g's last change
    name_of = names.__getitem__
    for source_id, written in changes.edges.items():
        records: tuple[EdgeRecord, ...]
        if len(written) == 1:
            (record,) = written.values()
            records = (record,)
        else:
            records = tuple(sorted(written.values()))
        source = number(source_id)
        # A number g has not met has no associations in g: no lookup to learn that (L4)
        old: tuple[EdgeRecord, ...] = () if source >= known_ids else get_edges(source, ())
        if not old:
            # A new source, the common case of a burst (L4): its targets are all new
            old_targets: tuple[int, ...] = ()
            distinct = (
                (number(records[0][1]),) if len(records) == 1 else _distinct_targets(records, ids)
            )
            fresh: Iterable[int] = distinct
        else:
            old_targets = targets[source]
            if records[0][0] > old[-1][0]:
                # All after the old ones, so none replaces one (a replacement keeps its place)
                records = old + records
            else:
                merged = {(r[1], r[2]): r for r in old}
                merged.update(written)
                records = tuple(sorted(merged.values()))
            distinct = _distinct_targets(records, ids)
            known = set(old_targets)
            fresh = [t for t in distinct if t not in known]
        count += len(records) - len(old)
        new_edges[source] = records
        if distinct != old_targets:
            new_targets[source] = distinct
            for t in fresh:
                prev = new_sources.get(t)
                if prev is None:
                    prev = sources[t] if t < known_ids else ()
                if not prev:
                    new_sources[t] = (source,)
                else:
                    at = bisect.bisect_left(prev, source_id, key=name_of)
                    new_sources[t] = (*prev[:at], source, *prev[at:])
    concepts = {number(cid): concept for cid, concept in changes.concepts.items()}
    # Only the dicts' values: lists are always tracked, whatever they hold
    _untrack_values(concepts, new_edges)
    return _Update(concepts, new_edges, new_targets, new_sources, count, batch, len(names))


def _refresh(g: _Graph, store: KVStore) -> _Update | _Graph | None:
    """What brings ``g`` up to the store's last batch: an update built from the change records
    it has not seen, the whole graph reloaded when they fall short, or ``None`` if current."""
    head = _read_head(store)
    if head == g.batch:
        return None
    if not g.batch < head <= g.batch + _KEEP_BATCHES:
        return _load_all(store, g.ids)
    changes: Changes | None = None
    seen = g.batch
    with store.get_range(_CHANGES.pack((g.batch + 1,)), _CHANGES.pack((head + 1,))) as pairs:
        for pair in pairs:
            (number,) = _CHANGES.unpack(pair.key)
            if number != seen + 1:  # a record left the store: start over
                return _load_all(store, g.ids)
            seen = number
            record = Changes.decode(pair.value)
            if changes is None:
                changes = record
            else:
                changes.merge(record)
    if seen != head or changes is None:
        return _load_all(store, g.ids)
    return _update_for(g, changes, head)


# --- the store ---------------------------------------------------------------------------

# ("c", seq, id, content, vector, strength, confidence)
# ("a", seq, source, target, type, confidence, weight)
_Entry = tuple[Any, ...]


class _Ask(enum.Enum):
    """:func:`_earlier_edge`'s answer when only the store knows."""

    STORE = "store"


#: A source with more associations than this is looked up in the store, not scanned.
_SCAN_EDGES: Final = 16


def _earlier_edge(
    changes: Changes, graph: _Graph | None, source: bytes, target: bytes, kind: str
) -> tuple[int, float] | _Ask | None:
    """``(position, created)`` of the association as this batch or ``graph`` holds it.

    ``None`` when it does not exist yet; :attr:`_Ask.STORE` when neither can tell (``graph``
    is ``None`` when it is not exactly the store's state, or the source has many
    associations).  Answering from memory spares each association two reads through the
    transaction (PERFORMANCE L2, L3p-insert, L4's writer).
    """
    mine = changes.edges.get(source)
    if mine is not None and (record := mine.get((target, kind))) is not None:
        return record[0], record[5]
    if graph is None:
        return _Ask.STORE
    records = graph.edges.get(graph.ids.numbers.get(source, -1), ())
    if len(records) > _SCAN_EDGES:
        return _Ask.STORE
    for record in records:
        if record[1] == target and record[2] == kind:
            return record[0], record[5]
    return None


def _stored_edge(
    tx: Transaction, source: bytes, target: bytes, kind: str, now: float
) -> tuple[int, float] | None:
    """``(position, created)`` of the association as the transaction reads it, or ``None``
    (``created`` is ``now`` if its record is missing)."""
    old = tx.get(tuple_layer.pack((source, target, kind), _EDGE_KEYS))
    if old is None:
        return None
    position = tuple_layer.unpack(old)[0]
    record = tx.get(tuple_layer.pack((source, position, target, kind), _ASSOC_KEYS))
    return position, now if record is None else tuple_layer.unpack(record)[2]


def _apply_batch(
    tx: Transaction, entries: Sequence[_Entry], graph: _Graph
) -> tuple[int, Changes, bool]:
    """Write one batch and its change record: the batch number, what it wrote, and whether
    ``graph`` was exactly the store's state before it.

    When no other process has written since ``graph`` (the head is still ``graph.batch``),
    ``graph`` is what the store holds, so a concept's ``created`` comes from it instead of a
    read, and ``graph`` plus the returned changes is the store's state after the batch.
    """
    head = _read_head(tx)
    exact = head == graph.batch
    batch = head + 1
    now = time.time()
    changes = Changes()
    written = changes.concepts
    order = time.time_ns()
    known, numbers = graph.concepts, graph.ids.numbers
    pack = tuple_layer.pack
    for entry in entries:
        if entry[0] == "c":
            _, _, cid, content, vector, strength, confidence = entry
            key = pack_concept_key(_CONCEPT_KEYS, cid)
            prev = written.get(cid)
            if prev is not None:
                created = prev[4]
            elif exact:
                rec = known.get(numbers.get(cid, -1))
                created = now if rec is None else rec[4]
            else:
                old = tx.get(key)
                created = now if old is None else tuple_layer.unpack(old)[4]
            tx.put(key, pack_concept(content, vector, strength, confidence, created))
            written[cid] = (content, vector, strength, confidence, created)
        else:
            _, _, source, target, assoc_type, confidence, weight = entry
            earlier = _earlier_edge(changes, graph if exact else None, source, target, assoc_type)
            if earlier is _Ask.STORE:
                earlier = _stored_edge(tx, source, target, assoc_type, now)
            if earlier is None:
                order += 1
                position, created = order, now
                tx.put(pack((source, target, assoc_type), _EDGE_KEYS), pack((position,)))
            else:
                position, created = earlier
            akey = pack((source, position, target, assoc_type), _ASSOC_KEYS)
            tx.put(akey, pack_association(confidence, weight, created))
            changes.add_edge(source, (position, target, assoc_type, confidence, weight, created))
    tx.put(_HEAD, tuple_layer.pack((batch,)))
    _record_changes(tx, batch, changes.encode())
    return batch, changes, exact


def _record_changes(tx: Transaction, batch: int, record: bytes) -> None:
    """Store batch ``batch``'s change record; drop the oldest past the count or byte bound.

    ``_TALLY`` holds the oldest record kept and the bytes kept, so trimming never scans.
    """
    tx.put(_CHANGES.pack((batch,)), record)
    raw = tx.get(_TALLY)
    if raw is None:
        # The first batch in this format: a store written before it keeps id-only records.
        tx.remove_range(_OLD_LOG.min_key, _OLD_LOG.max_key)
        first, kept = batch, 0
    else:
        first, kept = tuple_layer.unpack(raw)
    kept += len(record)
    while first < batch and (batch - first >= _KEEP_BATCHES or kept > _KEEP_BYTES):
        key = _CHANGES.pack((first,))
        old = tx.get(key)
        if old is not None:
            kept -= len(old)
            tx.remove(key)
        first += 1
    tx.put(_TALLY, tuple_layer.pack((first, kept)))


def _targets_of(g: _Graph, n: int) -> tuple[int, ...]:
    """Number ``n``'s distinct targets in ``g`` (``()`` for -1 or a number ``g`` has not met)."""
    return g.targets[n] if 0 <= n < len(g.targets) else ()


def _two_sided_bfs(
    forward: list[tuple[int, ...]],
    backward: list[tuple[int, ...]],
    start: int,
    end: int,
    max_depth: int,
) -> list[int] | None:
    """A shortest path of at most ``max_depth`` edges, searching from both ends at once.

    Each round grows the smaller frontier by one whole level; the first level that meets the
    other side holds a shortest path (the best meeting of that level).
    """
    forward_get, backward_get = forward.__getitem__, backward.__getitem__
    parent_f: dict[int, int | None] = {start: None}
    parent_b: dict[int, int | None] = {end: None}
    dist_f = {start: 0}
    dist_b = {end: 0}
    front_f, front_b = [start], [end]
    depth_f = depth_b = 0
    while front_f and front_b and depth_f + depth_b < max_depth:
        if len(front_f) <= len(front_b):
            neighbours = forward_get
            parents, dists, others, other_dists = parent_f, dist_f, parent_b, dist_b
            frontier, depth = front_f, depth_f
        else:
            neighbours = backward_get
            parents, dists, others, other_dists = parent_b, dist_b, parent_f, dist_f
            frontier, depth = front_b, depth_b
        level: list[int] = []
        best: tuple[int, int] | None = None
        for node in frontier:
            for nxt in neighbours(node):
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
        with self._db.store.snapshot() as snapshot:
            graph = _load_all(snapshot, _Ids())
        self._plane: LeftRight[_Graph, _Update] = LeftRight(
            graph, copy=_copy_graph, apply=_apply_update
        )
        self._stamp = (0, time.time())  # (sequence, timestamp) of the published graph
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
            plane = self._plane
            if entries:
                batch, changes, exact = self._db.run(_apply_batch, entries, plane.live, retries=100)
                self._flushes += 1
                self._processed += len(entries)
                if exact:  # our batch came right after our graph: no need to read it back
                    plane.publish(_update_for(plane.live, changes, batch))
            with self._db.store.snapshot() as snapshot:
                news = _refresh(plane.live, snapshot)
            if isinstance(news, _Graph):
                plane.reset(news)
            elif news is not None:
                plane.publish(news)
            self._stamp = (max(upto, self._stamp[0]), time.time())
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
        with self._plane.enter() as graph:
            n = graph.ids.numbers.get(cid, -1)
            rec = graph.concepts.get(n)
            names = graph.ids.names
            neighbors = [names[t] for t in _targets_of(graph, n)]
        if rec is None:
            return None
        content, vector, strength, confidence, created = rec
        return Concept(
            cid, content, _decode_vector(vector), strength, confidence, created, neighbors
        )

    def query_neighbors(self, concept_id: bytes) -> list[bytes]:
        cid = _check_id(concept_id, "concept_id")
        with self._plane.enter() as graph:
            names = graph.ids.names
            return [names[t] for t in _targets_of(graph, graph.ids.numbers.get(cid, -1))]

    def query_associations(self, concept_id: bytes) -> list[Association]:
        cid = _check_id(concept_id, "concept_id")
        with self._plane.enter() as graph:
            records = graph.edges.get(graph.ids.numbers.get(cid, -1), ())
        return [
            Association(cid, target, kind, confidence, weight, created)
            for _, target, kind, confidence, weight, created in records
        ]

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
        with self._plane.enter() as graph:
            numbers = graph.ids.numbers
            first, last = numbers.get(s, -1), numbers.get(e, -1)
            known = len(graph.targets)
            if not (0 <= first < known and 0 <= last < known):
                return None  # an id this copy has not met has no associations in it
            path = _two_sided_bfs(graph.targets, graph.sources, first, last, max_depth)
            if path is None:
                return None
            names = graph.ids.names
            return [names[n] for n in path]

    def stats(self) -> GraphStats:
        with self._plane.enter() as graph:
            concepts, edges = len(graph.concepts), graph.edge_count
        sequence, timestamp = self._stamp
        with self._lock:
            pending = len(self._queue)
            log = WriteLogStats(self._written, self._dropped, pending)
        return GraphStats(
            log,
            ReconcilerStats(self._reconciliations, self._processed, self._flushes),
            SnapshotStats(concepts, edges, sequence, timestamp),
        )
