"""The graph's change record: exact round trips; damage is CorruptData, never another error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import CorruptData
from kvstore.layers.graph_changes import ASSOCIATION_TYPES, Changes

ids = st.binary(min_size=16, max_size=16)
finite = st.floats(allow_nan=False, allow_infinity=False)
concepts = st.tuples(
    st.binary(max_size=40),
    st.one_of(st.none(), st.binary(max_size=12).map(lambda b: b[: len(b) // 4 * 4])),
    finite,
    finite,
    finite,
)
edges = st.tuples(
    st.integers(0, 2**64 - 1), ids, st.sampled_from(ASSOCIATION_TYPES), finite, finite, finite
)


@st.composite
def changes(draw: st.DrawFn) -> Changes:
    out = Changes()
    out.concepts.update(draw(st.dictionaries(ids, concepts, max_size=8)))
    for source, record in draw(st.lists(st.tuples(ids, edges), max_size=12)):
        out.add_edge(source, record)
    return out


@given(changes())
@settings(max_examples=200)
def test_round_trip(ch: Changes) -> None:
    back = Changes.decode(ch.encode())
    assert back.concepts == ch.concepts
    assert back.edges == ch.edges
    assert bool(back) == bool(ch)


@given(changes(), changes())
def test_merge_lets_the_later_write_win(a: Changes, b: Changes) -> None:
    merged = Changes()
    merged.merge(a)
    merged.merge(b)
    assert merged.concepts == {**a.concepts, **b.concepts}
    for source in set(a.edges) | set(b.edges):
        assert merged.edges[source] == {**a.edges.get(source, {}), **b.edges.get(source, {})}


@given(changes(), st.data())
@settings(max_examples=200)
def test_damage_is_corrupt_data(ch: Changes, data: st.DataObject) -> None:
    raw = bytearray(ch.encode())
    kind = data.draw(st.sampled_from(["truncate", "flip", "extend"]))
    if kind == "truncate":
        del raw[data.draw(st.integers(0, len(raw) - 1)) :]
    elif kind == "flip":
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] ^= data.draw(st.integers(1, 255))
    else:
        raw += data.draw(st.binary(min_size=1, max_size=8))
    try:
        Changes.decode(bytes(raw))
    except CorruptData:
        pass  # a flip inside a value may also decode to different, well-formed data


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x02\x00\x00\x00\x00\x00\x00\x00\x00", b"\x01\x00\x00\x00\x05\x00\x00\x00\x00"],
)
def test_bad_headers(raw: bytes) -> None:
    with pytest.raises(CorruptData):
        Changes.decode(raw)


def test_an_unknown_association_type_is_corrupt_data() -> None:
    ch = Changes()
    ch.add_edge(b"s" * 16, (1, b"t" * 16, "semantic", 1.0, 1.0, 0.0))
    raw = bytearray(ch.encode())
    raw[9 + 32] = 200  # the type index of the one association
    with pytest.raises(CorruptData, match="association type"):
        Changes.decode(bytes(raw))
