"""Subspace: tuple-addressed key prefixes, as FoundationDB's Subspace."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kvstore
from kvstore import CorruptData, KeyRange, Subspace
from kvstore.tuple import pack

elements = st.one_of(
    st.none(),
    st.binary(max_size=8),
    st.text(max_size=6),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.booleans(),
)
small_tuples = st.lists(elements, max_size=4).map(tuple)


def test_prefix_from_a_tuple_is_its_packing() -> None:
    assert Subspace(("app", 1)).key() == pack(("app", 1))


def test_prefix_from_bytes_is_used_as_is() -> None:
    assert Subspace(b"\xfe\x00raw").key() == b"\xfe\x00raw"
    assert Subspace(bytearray(b"ab")).key() == b"ab"


def test_raw_prefix_comes_first() -> None:
    assert Subspace(("a",), raw_prefix=b"\x99").key() == b"\x99" + pack(("a",))
    assert Subspace(b"x", raw_prefix=b"\x99").key() == b"\x99x"


def test_default_subspace_is_the_whole_key_space() -> None:
    sub = Subspace()
    assert sub.key() == b""
    assert sub.pack((1,)) == pack((1,))
    assert sub.range() == KeyRange(b"\x00", b"\xff")


def test_pack_appends_the_packed_tuple_to_the_prefix() -> None:
    sub = Subspace(("users",))
    assert sub.pack((42, "name")) == pack(("users", 42, "name"))
    assert sub.pack() == sub.key()


@given(small_tuples, small_tuples)
def test_unpack_reverses_pack(prefix: tuple[Any, ...], t: tuple[Any, ...]) -> None:
    sub = Subspace(prefix)
    assert sub.unpack(sub.pack(t)) == t


def test_unpack_outside_the_subspace_raises_value_error() -> None:
    sub = Subspace(("a",))
    with pytest.raises(ValueError, match="not in"):
        sub.unpack(pack(("b", 1)))


def test_unpack_of_malformed_rest_raises_corrupt_data() -> None:
    sub = Subspace(b"p")
    with pytest.raises(CorruptData):
        sub.unpack(b"p\x01unterminated")


def test_contains_is_a_prefix_test() -> None:
    sub = Subspace(("a",))
    assert sub.contains(pack(("a",)))
    assert sub.contains(pack(("a", 1)))
    assert not sub.contains(pack(("b",)))
    assert not sub.contains(b"")
    assert sub.contains(memoryview(pack(("a", 2))))
    with pytest.raises(TypeError, match="str"):
        sub.contains("a")  # type: ignore[arg-type]


def test_range_is_foundationdb_range() -> None:
    sub = Subspace(("a",))
    p = pack(("a",))
    assert sub.range() == KeyRange(p + b"\x00", p + b"\xff")
    assert sub.range((1,)) == KeyRange(pack(("a", 1)) + b"\x00", pack(("a", 1)) + b"\xff")


@given(small_tuples, small_tuples, small_tuples)
def test_range_holds_every_key_of_every_extension(
    prefix: tuple[Any, ...], t: tuple[Any, ...], rest: tuple[Any, ...]
) -> None:
    sub = Subspace(prefix)
    r = sub.range(t)
    assert r.contains(sub.pack(t + rest)) == bool(rest)
    assert not r.contains(sub.pack(t))


def test_range_excludes_neighbouring_strings() -> None:
    r = Subspace(("a",)).range()
    assert not r.contains(pack(("a\x00",)))
    assert not r.contains(pack(("a\x00", 1)))
    assert not r.contains(pack(("b",)))
    assert r.contains(pack(("a", "")))


def test_subspace_extends_the_prefix() -> None:
    sub = Subspace(("a",))
    assert sub.subspace((1, "x")).key() == pack(("a", 1, "x"))
    assert sub.subspace(()) == sub
    with pytest.raises(TypeError, match="list"):
        sub.subspace([1])  # type: ignore[arg-type]


def test_getitem_is_subspace_of_one_item() -> None:
    sub = Subspace(("a",))
    assert sub["b"] == sub.subspace(("b",))
    assert sub["b"][2].key() == pack(("a", "b", 2))


def test_equality_and_hash_follow_the_prefix() -> None:
    assert Subspace(("a",)) == Subspace(pack(("a",)))
    assert hash(Subspace(("a",))) == hash(Subspace(pack(("a",))))
    assert Subspace(("a",)) != Subspace(("b",))
    assert Subspace(("a",)) != pack(("a",))


def test_repr_round_trips() -> None:
    sub = Subspace(("a", 1))
    assert repr(sub) == f"Subspace({pack(('a', 1))!r})"
    assert eval(repr(sub), {"Subspace": Subspace}) == sub


def test_is_immutable_and_picklable() -> None:
    sub = Subspace(("a",))
    with pytest.raises(AttributeError):
        sub._prefix = b""  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(sub)) == sub


def test_bad_arguments_raise_type_error() -> None:
    with pytest.raises(TypeError, match="prefix_tuple_or_bytes"):
        Subspace("a")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="raw_prefix"):
        Subspace((), raw_prefix="a")  # type: ignore[arg-type]


def test_exported_from_kvstore() -> None:
    assert kvstore.Subspace is Subspace
