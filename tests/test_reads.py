"""Reads: what a view read, and the conflicts a set of mutations has with it.

The reference is a brute-force check of every removed range against every read range and every
written key against every read range, in the order removes, puts, adjusts.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import (
    MAX_KEY_SIZE,
    Conflict,
    KeyRange,
    KeyRanges,
    Mutations,
    ReadAdjustConflict,
    ReadRemoveConflict,
    Reads,
    ReadWriteConflict,
    Writes,
)
from tests.storekit import SimpleMutations
from tests.test_keyranges import key_ranges, keys, range_lists


def intersection(a: KeyRange, b: KeyRange) -> KeyRange | None:
    lo = max(a.min_key, b.min_key)
    ends = [h for h in (a.max_key, b.max_key) if h is not None]
    hi = min(ends) if ends else None
    return KeyRange(lo, hi) if hi is None or lo < hi else None


def brute_force(reads: Iterable[KeyRange], m: Mutations) -> list[Conflict]:
    reads = list(reads)
    out: list[Conflict] = []
    for removed in m.remove_ranges():
        for read in reads:
            overlap = intersection(removed, read)
            if overlap is not None:
                out.append(ReadRemoveConflict(overlap))
    for key, _ in m.put_pairs():
        if any(r.contains(key) for r in reads):
            out.append(ReadWriteConflict(key))
    for key, _ in m.adjust_pairs():
        if any(r.contains(key) for r in reads):
            out.append(ReadAdjustConflict(key))
    return out


def check_conflicts(reads: Reads, m: Mutations) -> list[Conflict]:
    expected = brute_force(reads, m)
    assert reads.all_conflicts(m) == expected
    assert reads.is_conflict(m) == bool(expected)
    assert reads.find_conflict(m) == (expected[0] if expected else None)
    return expected


@st.composite
def writes(draw: st.DrawFn) -> Writes:
    removes = draw(range_lists)
    puts = draw(st.dictionaries(keys, st.just(b"v"), max_size=8))
    adjusts = draw(st.dictionaries(keys, st.integers(-5, 5), max_size=8))
    return Writes(removes, puts, {k: a for k, a in adjusts.items() if k not in puts})


# -- against brute force -----------------------------------------------------------------------
@given(range_lists, writes())
def test_conflicts_with_writes_match_brute_force(read: list[KeyRange], w: Writes) -> None:
    check_conflicts(Reads(read), w)


@given(st.lists(keys, max_size=10), writes())
def test_queued_point_reads_match_brute_force(read_keys: list[bytes], w: Writes) -> None:
    reads = Reads()
    for k in read_keys:
        reads.add_key(k)
    expected = brute_force(KeyRanges(KeyRange.single(k) for k in read_keys), w)
    assert reads.is_conflict(w) == bool(expected)  # checked before anything sorts them in
    fresh = Reads()
    for k in read_keys:
        fresh.add_key(k)
    assert fresh.all_conflicts(w) == expected


@given(range_lists, st.lists(key_ranges(), max_size=4), st.lists(keys, max_size=6))
def test_conflicts_with_any_mutations_match_brute_force(
    read: list[KeyRange], removes: list[KeyRange], ks: list[bytes]
) -> None:
    # Overlapping removes, repeated keys: a Mutations need not be canonical.
    m = SimpleMutations(removes, [(k, b"v") for k in ks], [(k, 1) for k in ks])
    check_conflicts(Reads(read), m)


@given(
    st.lists(keys, max_size=10),
    st.lists(key_ranges(), max_size=2),
    st.lists(keys, max_size=6),
    st.lists(keys, max_size=6),
)
def test_queued_point_reads_against_any_mutations_match_brute_force(
    read_keys: list[bytes], removes: list[KeyRange], puts: list[bytes], adjusts: list[bytes]
) -> None:
    """Point reads still queued, checked against a commit log's entry (not a Writes), with
    and without removes: the set-lookup path must find exactly what brute force finds."""
    m = SimpleMutations(removes, [(k, b"v") for k in puts], [(k, 1) for k in adjusts])
    expected = brute_force(KeyRanges(KeyRange.single(k) for k in read_keys), m)
    for check in ("all", "is", "find"):
        reads = Reads()
        for k in read_keys:
            reads.add_key(k)
        if check == "all":
            assert reads.all_conflicts(m) == expected
        elif check == "is":
            assert reads.is_conflict(m) == bool(expected)
        else:
            assert reads.find_conflict(m) == (expected[0] if expected else None)


@given(range_lists, writes())
def test_any_mutations_and_writes_agree(read: list[KeyRange], w: Writes) -> None:
    generic = SimpleMutations(list(w.removes), list(w.puts.items()), list(w.adjusts.items()))
    assert Reads(read).all_conflicts(generic) == Reads(read).all_conflicts(w)


def random_key(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([1, 2, 3, 16]))


@pytest.mark.parametrize(
    ("n_reads", "n_puts", "n_removes"),
    [
        (3, 2000, 0),  # few reads, many keys: look the reads up among the keys
        (2000, 3, 2),  # many reads, few keys: bisect each key
        (1500, 1500, 200),  # comparable: merge walk, and intersect the removes
        (500, 500, 10),
    ],
)
def test_every_strategy_matches_brute_force(n_reads: int, n_puts: int, n_removes: int) -> None:
    rng = random.Random(n_reads * 7 + n_puts)
    reads = Reads()
    for _ in range(n_reads):
        k = random_key(rng)
        if rng.random() < 0.8:
            reads.add_key(k)
        else:
            reads.add_range(k, k + random_key(rng))
    reads.add_range(b"\xff\xff\xff\xff", None)  # an unbounded last range
    puts = {random_key(rng): b"" for _ in range(n_puts)}
    starts = [r.min_key for r in reads]
    puts.update(dict.fromkeys(rng.sample(starts, min(5, len(starts))), b""))  # some conflicts
    removes = [KeyRange.single(random_key(rng)) for _ in range(n_removes)]
    adjusts = {random_key(rng): 1 for _ in range(n_puts)}
    w = Writes(removes, puts, {k: a for k, a in adjusts.items() if k not in puts})
    expected = brute_force_fast(reads, w)
    assert reads.all_conflicts(w) == expected
    assert reads.is_conflict(w) == bool(expected)
    shuffled = SimpleMutations(w.removes, [], [])
    shuffled.puts = list(w.puts.items())
    rng.shuffle(shuffled.puts)  # out of order: must still be right (and reported in that order)
    got = reads.all_conflicts(shuffled)
    in_order = [c for c in expected if isinstance(c, ReadRemoveConflict)] + [
        ReadWriteConflict(k) for k, _ in shuffled.puts if reads.covers_key(k)
    ]
    assert got == in_order


def brute_force_fast(reads: Reads, w: Writes) -> list[Conflict]:
    """brute_force, with key membership answered by the already-tested ``covers_key``."""
    out: list[Conflict] = []
    for removed in w.removes:
        for read in reads:
            overlap = intersection(removed, read)
            if overlap is not None:
                out.append(ReadRemoveConflict(overlap))
    out += [ReadWriteConflict(k) for k in w.puts if reads.covers_key(k)]
    out += [ReadAdjustConflict(k) for k in w.adjusts if reads.covers_key(k)]
    return out


# -- examples ----------------------------------------------------------------------------------
def test_order_is_removes_then_puts_then_adjusts() -> None:
    reads = Reads([KeyRange(b"a", b"z")])
    w = Writes([KeyRange(b"y", None)], {b"b": b"v"}, {b"a": 1})
    assert reads.all_conflicts(w) == [
        ReadRemoveConflict(KeyRange(b"y", b"z")),
        ReadWriteConflict(b"b"),
        ReadAdjustConflict(b"a"),
    ]
    assert reads.find_conflict(w) == ReadRemoveConflict(KeyRange(b"y", b"z"))


def test_one_remove_conflict_per_overlap() -> None:
    reads = Reads([KeyRange(b"a", b"c"), KeyRange(b"e", b"g"), KeyRange(b"x", None)])
    w = Writes([KeyRange(b"b", b"f"), KeyRange(b"y", b"z")])
    assert reads.all_conflicts(w) == [
        ReadRemoveConflict(KeyRange(b"b", b"c")),
        ReadRemoveConflict(KeyRange(b"e", b"f")),
        ReadRemoveConflict(KeyRange(b"y", b"z")),
    ]


def test_no_conflict_without_overlap() -> None:
    reads = Reads([KeyRange(b"b", b"c")])
    w = Writes([KeyRange(b"a", b"b"), KeyRange(b"c", b"d")], {b"c": b""}, {b"a\xff": 1})
    assert not reads.is_conflict(w)
    assert reads.find_conflict(w) is None and reads.all_conflicts(w) == []


def test_empty_sides_never_conflict() -> None:
    assert not Reads().is_conflict(Writes(puts={b"k": b"v"}))
    assert not Reads.full().is_conflict(Writes())


def test_pending_point_reads_are_checked() -> None:
    reads = Reads()
    reads.add_key(b"k")
    assert reads.all_conflicts(Writes(puts={b"k": b"v"})) == [ReadWriteConflict(b"k")]


def test_longest_keys_in_an_unbounded_read() -> None:
    top = b"\xff" * MAX_KEY_SIZE
    reads = Reads([KeyRange(b"\xff", None)])
    assert reads.all_conflicts(Writes(puts={top: b""})) == [ReadWriteConflict(top)]
    assert reads.all_conflicts(Writes([KeyRange(top, None)])) == [
        ReadRemoveConflict(KeyRange(top, None))
    ]


def test_checking_something_else_raises_type_error() -> None:
    with pytest.raises(TypeError, match="mutations must be a Mutations"):
        Reads.full().is_conflict({b"k": b"v"})  # type: ignore[arg-type]


def test_reads_is_a_key_ranges() -> None:
    reads = Reads([KeyRange(b"a", b"b")])
    assert isinstance(reads, KeyRanges)
    assert reads == KeyRanges([KeyRange(b"a", b"b")])
    assert type(reads.clone()) is Reads and type(reads.read_only()) is Reads
    assert reads.read_only().is_conflict(Writes(puts={b"a": b""}))


# -- conflict values ---------------------------------------------------------------------------
def test_conflicts_are_values() -> None:
    assert ReadWriteConflict(b"k") == ReadWriteConflict(b"k")
    assert ReadWriteConflict(b"k") != ReadAdjustConflict(b"k")
    assert ReadRemoveConflict(KeyRange(b"a", b"b")) == ReadRemoveConflict(KeyRange(b"a", b"b"))
    assert len({ReadWriteConflict(b"k"), ReadWriteConflict(b"k"), ReadAdjustConflict(b"k")}) == 2
    assert isinstance(ReadRemoveConflict(KeyRange.FULL), Conflict)
    assert ReadAdjustConflict(b"k").key == b"k"
    assert ReadRemoveConflict(KeyRange.FULL).range == KeyRange.FULL


def test_conflicts_are_frozen() -> None:
    c = ReadWriteConflict(b"k")
    with pytest.raises(AttributeError):
        c.key = b"j"  # type: ignore[misc]


def test_conflicts_check_their_field_types() -> None:
    with pytest.raises(TypeError):
        ReadWriteConflict("k")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ReadRemoveConflict((b"a", b"b"))  # type: ignore[arg-type]


def test_conflict_str_names_the_kind_and_shows_bytes_literals() -> None:
    assert str(ReadWriteConflict(b"\x00a")) == "read/write conflict on key b'\\x00a'"
    assert str(ReadAdjustConflict(b"n")) == "read/adjust conflict on key b'n'"
    assert str(ReadRemoveConflict(KeyRange(b"a", b"c"))) == (
        "read/remove conflict on range [b'a', b'c')"
    )
    assert str(ReadRemoveConflict(KeyRange(b"a", None))) == (
        "read/remove conflict on range [b'a', None)"
    )
    assert str(ReadRemoveConflict(KeyRange.single(b"a"))) == "read/remove conflict on key b'a'"
