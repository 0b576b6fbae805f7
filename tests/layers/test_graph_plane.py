"""The concept graph's read plane (numbered ids, two copies) against a plain model keyed by id."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.layers.graph import (
    _apply_update,
    _copy_graph,
    _Graph,
    _Ids,
    _targets_of,
    _two_sided_bfs,
    _update_for,
)
from kvstore.layers.graph_changes import Changes, ConceptRecord, EdgeRecord
from kvstore.layers.leftright import LeftRight


def cid(i: int) -> bytes:
    # Ids whose order differs from the order they are first met in, so that the sources'
    # order (by id) and the numbers' order (first met) disagree
    return ((i * 7) % 16).to_bytes(16, "big")


_op = st.one_of(
    st.tuples(st.just("c"), st.integers(0, 15), st.integers(0, 3)),
    st.tuples(
        st.just("a"),
        st.integers(0, 15),
        st.integers(0, 15),
        st.sampled_from(["semantic", "causal"]),
    ),
)


class _Model:
    """What the plane must hold, kept the obvious way: by id, edges in first-learned order."""

    def __init__(self) -> None:
        self.concepts: dict[bytes, ConceptRecord] = {}
        self.edges: dict[bytes, dict[tuple[bytes, str], EdgeRecord]] = {}
        self.order = itertools.count(1)

    def batch(self, ops: list[tuple]) -> Changes:
        """Apply ``ops`` and return the change record a writer would store for them."""
        changes = Changes()
        for op in ops:
            if op[0] == "c":
                _, x, v = op
                record: ConceptRecord = (b"c%d" % v, None, float(v), 1.0, 0.0)
                self.concepts[cid(x)] = changes.concepts[cid(x)] = record
            else:
                _, x, y, kind = op
                mine = self.edges.setdefault(cid(x), {})
                old = mine.get((cid(y), kind))
                position = next(self.order) if old is None else old[0]
                edge = (position, cid(y), kind, 1.0, float(len(mine)), 0.0)
                mine[cid(y), kind] = edge
                changes.add_edge(cid(x), edge)
        return changes

    def targets(self, x: bytes) -> list[bytes]:
        records = sorted(self.edges.get(x, {}).values())
        return list(dict.fromkeys(r[1] for r in records))

    def sources(self, y: bytes) -> list[bytes]:
        return sorted(x for x in self.edges if y in self.targets(x))


def _check(g: _Graph, model: _Model) -> None:
    ids = g.ids
    assert list(ids.names) == list(range(len(ids.names)))
    assert all(ids.numbers[name] == n for n, name in ids.names.items())
    assert len(ids.numbers) == len(ids.names)
    names, numbers = ids.names, ids.numbers
    assert {names[n]: r for n, r in g.concepts.items()} == model.concepts
    for i in range(16):
        x = cid(i)
        n = numbers.get(x, -1)
        assert list(g.edges.get(n, ())) == sorted(model.edges.get(x, {}).values())
        assert [names[t] for t in _targets_of(g, n)] == model.targets(x)
        assert [names[s] for s in (g.sources[n] if n >= 0 else ())] == model.sources(x)
    # An entry for every number given out, none for the others
    assert len(g.targets) == len(g.sources) == len(names)
    assert g.edge_count == sum(map(len, model.edges.values()))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(_op, max_size=12), st.booleans()), max_size=12))
def test_followed_batches_keep_both_copies_equal_to_the_model(
    batches: list[tuple[list[tuple], bool]],
) -> None:
    """Batches applied one by one, or several merged as a follower reads them, to both copies."""
    model = _Model()
    plane: LeftRight[_Graph, object] = LeftRight(
        _Graph(_Ids(), {}, {}, [], [], 0, 0), copy=_copy_graph, apply=_apply_update
    )
    pending: Changes | None = None
    number = 0
    for ops, wait in batches:
        changes = model.batch(ops)
        if pending is None:
            pending = changes
        else:
            pending.merge(changes)
        if wait:  # a follower that finds several new batches takes them together
            continue
        number += 1
        plane.publish(_update_for(plane.live, pending, number))
        pending = None
        _check(plane.live, model)
    if pending is not None:
        number += 1
        plane.publish(_update_for(plane.live, pending, number))
    for _ in range(2):  # an empty update publishes the other copy, with everything applied
        number += 1
        plane.publish(_update_for(plane.live, Changes(), number))
        _check(plane.live, model)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=40), st.data())
def test_search_on_numbers_finds_a_shortest_path(
    edges: list[tuple[int, int]], data: st.DataObject
) -> None:
    model = _Model()
    g = _Graph(_Ids(), {}, {}, [], [], 0, 0)
    _apply_update(g, _update_for(g, model.batch([("a", x, y, "semantic") for x, y in edges]), 1))
    start, end = data.draw(st.integers(0, 15)), data.draw(st.integers(0, 15))
    # Breadth-first distances in the model
    dist = {cid(start): 0}
    frontier = [cid(start)]
    while frontier:
        level = []
        for x in frontier:
            for t in model.targets(x):
                if t not in dist:
                    dist[t] = dist[x] + 1
                    level.append(t)
        frontier = level
    numbers, names = g.ids.numbers, g.ids.names
    if cid(start) not in numbers or cid(end) not in numbers or start == end:
        return
    path = _two_sided_bfs(g.targets, g.sources, numbers[cid(start)], numbers[cid(end)], 6)
    if cid(end) not in dist or dist[cid(end)] > 6:
        assert path is None
        return
    assert path is not None
    steps = [names[n] for n in path]
    assert steps[0] == cid(start) and steps[-1] == cid(end)
    assert len(steps) - 1 == dist[cid(end)]
    assert all(b in model.targets(a) for a, b in itertools.pairwise(steps))
