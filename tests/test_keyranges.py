"""KeyRanges: a set of keys held as sorted, disjoint, non-adjacent, non-empty ranges.

Most tests compare against a model: the set of keys, out of a small universe (every key of up
to 3 bytes over 0x00, 0x01 and 0xff), that the ranges contain.  When every range bound comes from
the universe, that set determines the ranges exactly: the keys where two such range sets differ
form ranges whose first key is a bound, so some universe key tells them apart.
"""

from __future__ import annotations

import itertools
import pickle
import random
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kvstore import MAX_KEY_SIZE, KeyRange, KeyRanges, Reads

ALPHABET = [0x00, 0x01, 0xFF]
UNIVERSE = sorted(bytes(t) for n in range(4) for t in itertools.product(ALPHABET, repeat=n))
ALL = frozenset(UNIVERSE)

keys = st.sampled_from(UNIVERSE)
# Keys whose single-key range [k, k + b"\x00") still has both bounds in the universe.
short_keys = st.sampled_from([k for k in UNIVERSE if len(k) < 3])


@st.composite
def key_ranges(draw: st.DrawFn) -> KeyRange:
    """A range whose bounds come from the universe (sometimes empty, sometimes unbounded)."""
    a = draw(keys)
    b = draw(st.one_of(st.none(), keys))
    if b is not None and b < a:
        a, b = b, a
    return KeyRange(a, b)


range_lists = st.lists(key_ranges(), max_size=8)


def model_of(ranges: Iterable[KeyRange]) -> frozenset[bytes]:
    """The universe keys inside any of ``ranges``."""
    ranges = list(ranges)
    return frozenset(k for k in UNIVERSE if any(r.contains(k) for r in ranges))


def check(rs: KeyRanges, model: Iterable[bytes]) -> None:
    """``rs`` is canonical, internally consistent and holds exactly ``model``."""
    model = frozenset(model)
    ranges = list(rs)
    for r in ranges:
        assert not r.is_empty()
    for a, b in itertools.pairwise(ranges):
        assert a.max_key is not None and a.max_key < b.min_key, (a, b)
    assert model_of(ranges) == model
    assert [k for k in UNIVERSE if rs.contains(k)] == sorted(model)
    assert len(rs) == len(ranges) == runs(model)
    # The internal structures agree with each other.
    assert list(rs._starts) == [r.min_key for r in ranges]
    assert rs._ends == {r.min_key: r.max_key for r in ranges}


def runs(model: frozenset[bytes]) -> int:
    """The number of maximal runs of consecutive universe keys in ``model``."""
    inside = [k in model for k in UNIVERSE]
    return sum(1 for i, x in enumerate(inside) if x and (i == 0 or not inside[i - 1]))


# -- construction ------------------------------------------------------------------------------
@given(range_lists)
def test_constructor_merges_and_drops_empty_ranges(ranges: list[KeyRange]) -> None:
    check(KeyRanges(ranges), model_of(ranges))


def test_touching_ranges_merge() -> None:
    rs = KeyRanges([KeyRange(b"c", b"e"), KeyRange(b"a", b"c"), KeyRange(b"x", b"x")])
    assert list(rs) == [KeyRange(b"a", b"e")]


def test_constructor_copies_another_key_ranges() -> None:
    a = KeyRanges([KeyRange(b"a", b"b")])
    b = KeyRanges(a)
    b.add(KeyRange(b"c", b"d"))
    assert len(a) == 1 and len(b) == 2


def test_constructor_rejects_a_single_range() -> None:
    with pytest.raises(TypeError, match="iterable of KeyRange"):
        KeyRanges(KeyRange(b"a", b"b"))  # type: ignore[arg-type]


def test_constructor_rejects_other_items() -> None:
    with pytest.raises(TypeError, match="KeyRange"):
        KeyRanges([(b"a", b"b")])  # type: ignore[list-item]


def test_full_empty_and_prefix() -> None:
    assert list(KeyRanges.full()) == [KeyRange.FULL]
    assert KeyRanges.full().is_full()
    assert KeyRanges.empty().is_empty() and len(KeyRanges.empty()) == 0
    assert list(KeyRanges.prefix(b"ab")) == [KeyRange(b"ab", b"ac")]
    assert KeyRanges.prefix(b"").is_full()
    assert list(KeyRanges.prefix(b"\xff")) == [KeyRange(b"\xff", None)]


def test_class_constructors_keep_the_subclass() -> None:
    assert type(Reads.full()) is Reads
    assert type(Reads.empty()) is Reads
    assert type(Reads.prefix(b"a")) is Reads


# -- changes -----------------------------------------------------------------------------------
@given(range_lists, key_ranges())
def test_add_range_is_union(ranges: list[KeyRange], r: KeyRange) -> None:
    rs = KeyRanges(ranges)
    rs.add(r)
    check(rs, model_of(ranges) | model_of([r]))


@given(range_lists, range_lists)
def test_add_ranges_is_union(a: list[KeyRange], b: list[KeyRange]) -> None:
    rs = KeyRanges(a)
    rs.add(KeyRanges(b))
    check(rs, model_of(a) | model_of(b))


@given(range_lists, key_ranges())
def test_remove_range_is_difference(ranges: list[KeyRange], r: KeyRange) -> None:
    rs = KeyRanges(ranges)
    rs.remove(r)
    check(rs, model_of(ranges) - model_of([r]))


@given(range_lists, range_lists)
def test_remove_ranges_is_difference(a: list[KeyRange], b: list[KeyRange]) -> None:
    rs = KeyRanges(a)
    rs.remove(KeyRanges(b))
    check(rs, model_of(a) - model_of(b))


@given(range_lists, key_ranges())
def test_intersect_range(ranges: list[KeyRange], r: KeyRange) -> None:
    rs = KeyRanges(ranges)
    rs.intersect(r)
    check(rs, model_of(ranges) & model_of([r]))


@given(range_lists, range_lists)
def test_intersect_ranges(a: list[KeyRange], b: list[KeyRange]) -> None:
    rs = KeyRanges(a)
    rs.intersect(KeyRanges(b))
    check(rs, model_of(a) & model_of(b))


def test_remove_splits_a_range() -> None:
    rs = KeyRanges([KeyRange(b"a", None)])
    rs.remove(KeyRange(b"c", b"d"))
    assert list(rs) == [KeyRange(b"a", b"c"), KeyRange(b"d", None)]


def test_changes_return_none() -> None:
    rs = KeyRanges()
    assert rs.add(KeyRange(b"a", b"b")) is None
    assert rs.remove(KeyRange(b"a", b"a\x00")) is None
    assert rs.intersect(KeyRange.FULL) is None
    assert rs.clear() is None
    assert rs.is_empty()


@pytest.mark.parametrize("method", ["add", "remove", "intersect", "intersects"])
def test_bad_argument_type_names_the_argument(method: str) -> None:
    with pytest.raises(TypeError, match="range_or_ranges must be a KeyRange or KeyRanges"):
        getattr(KeyRanges(), method)(b"a")


# -- new sets ----------------------------------------------------------------------------------
@given(range_lists)
def test_inverse_holds_every_other_key(ranges: list[KeyRange]) -> None:
    rs = KeyRanges(ranges)
    inv = rs.inverse()
    check(inv, ALL - model_of(ranges))
    assert ~rs == inv
    assert inv.inverse() == rs


@given(range_lists, range_lists)
def test_operators_make_new_sets(a: list[KeyRange], b: list[KeyRange]) -> None:
    x, y = KeyRanges(a), KeyRanges(b)
    ma, mb = model_of(a), model_of(b)
    check(x | y, ma | mb)
    check(x & y, ma & mb)
    check(x - y, ma - mb)
    check(x, ma)  # operands are untouched
    check(y, mb)


@given(range_lists, key_ranges())
def test_operators_accept_a_single_range_on_either_side(a: list[KeyRange], r: KeyRange) -> None:
    x = KeyRanges(a)
    ma, mr = model_of(a), model_of([r])
    check(x | r, ma | mr)
    check(r | x, ma | mr)
    check(x & r, ma & mr)
    check(r & x, ma & mr)
    check(x - r, ma - mr)
    check(r - x, mr - ma)


def test_operators_with_other_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        _ = KeyRanges() | {b"a"}  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = KeyRanges() - 1  # type: ignore[operator]


def test_operator_results_keep_the_left_class() -> None:
    assert type(Reads() | KeyRanges()) is Reads
    assert type(KeyRanges() | Reads()) is KeyRanges
    assert type(~Reads()) is Reads


# -- queries -----------------------------------------------------------------------------------
@given(range_lists, key_ranges())
def test_contains_range_means_all_of_it(ranges: list[KeyRange], r: KeyRange) -> None:
    rs = KeyRanges(ranges)
    assert rs.contains(r) == (model_of([r]) <= model_of(ranges))
    assert (r in rs) == rs.contains(r)


@given(range_lists, range_lists)
def test_contains_ranges_means_all_of_them(a: list[KeyRange], b: list[KeyRange]) -> None:
    assert KeyRanges(a).contains(KeyRanges(b)) == (model_of(b) <= model_of(a))


@given(range_lists, key_ranges())
def test_intersects_range_means_a_shared_key(ranges: list[KeyRange], r: KeyRange) -> None:
    assert KeyRanges(ranges).intersects(r) == bool(model_of([r]) & model_of(ranges))


@given(range_lists, range_lists)
def test_intersects_ranges_means_a_shared_key(a: list[KeyRange], b: list[KeyRange]) -> None:
    assert KeyRanges(a).intersects(KeyRanges(b)) == bool(model_of(a) & model_of(b))


def test_every_set_contains_an_empty_range() -> None:
    assert KeyRanges().contains(KeyRange(b"a", b"a"))
    assert not KeyRanges.full().intersects(KeyRange(b"a", b"a"))


def test_contains_key_checks_the_key() -> None:
    rs = KeyRanges.full()
    with pytest.raises(TypeError, match="key"):
        rs.contains(5)
    with pytest.raises(ValueError, match=str(MAX_KEY_SIZE)):
        rs.contains(b"x" * (MAX_KEY_SIZE + 1))
    assert rs.contains(bytearray(b"a")) and b"a" in rs


def expected_find(ranges: list[KeyRange], key: bytes) -> tuple[KeyRange | None, ...]:
    below = [r for r in ranges if r.min_key <= key]
    above = [r for r in ranges if r.min_key > key]
    if below and below[-1].contains(key):
        return below[-1], below[-1]
    return (below[-1] if below else None), (above[0] if above else None)


@given(range_lists, keys)
def test_find_key(ranges: list[KeyRange], key: bytes) -> None:
    rs = KeyRanges(ranges)
    assert rs.find_key(key) == expected_find(list(rs), key)


def test_find_key_examples() -> None:
    rs = KeyRanges([KeyRange(b"b", b"c"), KeyRange(b"e", None)])
    assert rs.find_key(b"a") == (None, KeyRange(b"b", b"c"))
    assert rs.find_key(b"b") == (KeyRange(b"b", b"c"), KeyRange(b"b", b"c"))
    assert rs.find_key(b"c") == (KeyRange(b"b", b"c"), KeyRange(b"e", None))
    assert rs.find_key(b"z") == (KeyRange(b"e", None), KeyRange(b"e", None))
    assert KeyRanges().find_key(b"a") == (None, None)


@given(range_lists)
def test_min_key_max_key_empty_full(ranges: list[KeyRange]) -> None:
    rs = KeyRanges(ranges)
    model = model_of(ranges)
    assert rs.is_empty() == (not model)
    assert rs.is_full() == (model == ALL)
    assert rs.min_key == (min(model) if model else None)
    top = UNIVERSE[-1]
    if not model or top in model:  # top is in the set only when the last range is unbounded
        assert rs.max_key is None
    else:
        assert rs.max_key == UNIVERSE[UNIVERSE.index(max(model)) + 1]


def test_iteration_yields_ranges_in_order() -> None:
    rs = KeyRanges([KeyRange(b"x", None), KeyRange(b"a", b"b")])
    assert list(rs) == [KeyRange(b"a", b"b"), KeyRange(b"x", None)]
    assert len(rs) == 2 and bool(rs) and not KeyRanges()


def test_iteration_survives_changes() -> None:
    rs = KeyRanges([KeyRange(b"a", b"b"), KeyRange(b"c", b"d")])
    seen = []
    for r in rs:
        seen.append(r)
        rs.clear()
    assert len(seen) == 2


# -- value behaviour ---------------------------------------------------------------------------
@given(range_lists, range_lists)
def test_equal_when_they_hold_the_same_keys(a: list[KeyRange], b: list[KeyRange]) -> None:
    assert (KeyRanges(a) == KeyRanges(b)) == (model_of(a) == model_of(b))


def test_reads_equal_key_ranges_with_the_same_ranges() -> None:
    ranges = [KeyRange(b"a", b"b")]
    assert Reads(ranges) == KeyRanges(ranges)
    assert KeyRanges(ranges) == Reads(ranges)
    assert KeyRanges(ranges) != [KeyRange(b"a", b"b")]


def test_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(KeyRanges())


def test_clone_is_independent() -> None:
    a = KeyRanges([KeyRange(b"a", b"b")])
    b = a.clone()
    b.add(KeyRange(b"x", b"y"))
    assert a == KeyRanges([KeyRange(b"a", b"b")])
    assert type(Reads().clone()) is Reads


def test_read_only_copy_refuses_changes() -> None:
    a = KeyRanges([KeyRange(b"a", b"b")])
    ro = a.read_only()
    assert ro == a and ro.read_only() is ro
    for call in (
        lambda: ro.add(KeyRange(b"c", b"d")),
        lambda: ro.remove(KeyRange.FULL),
        lambda: ro.intersect(KeyRange.FULL),
        ro.clear,
        lambda: ro.add_key(b"z"),
        lambda: ro.add_range(b"z", None),
    ):
        with pytest.raises(TypeError, match="read-only"):
            call()
    assert list(ro) == [KeyRange(b"a", b"b")]
    a.add(KeyRange(b"c", b"d"))  # the original stays mutable, and the copy is unaffected
    assert len(ro) == 1
    mutable = ro.clone()
    mutable.add(KeyRange(b"c", b"d"))
    assert len(mutable) == 2
    assert (ro | KeyRange(b"x", b"y")).contains(b"x")  # operators make mutable new sets


def test_pickles_with_class_and_read_only_flag() -> None:
    reads = Reads([KeyRange(b"a", b"b")])
    reads.add_key(b"z")
    back = pickle.loads(pickle.dumps(reads))
    assert type(back) is Reads and back == reads
    frozen = pickle.loads(pickle.dumps(reads.read_only()))
    with pytest.raises(TypeError, match="read-only"):
        frozen.add_key(b"q")


def test_repr_is_an_expression() -> None:
    rs = KeyRanges([KeyRange(b"a", b"b"), KeyRange(b"\xff", None)])
    assert repr(rs) == "KeyRanges([KeyRange(b'a', b'b'), KeyRange(b'\\xff', None)])"
    assert eval(repr(rs)) == rs
    assert repr(rs.read_only()).endswith(".read_only()")
    assert repr(Reads()) == "Reads([])"


def test_repr_of_a_large_set_is_short() -> None:
    rs = KeyRanges(KeyRange.single(bytes([i])) for i in range(0, 200, 2))
    text = repr(rs)
    assert "(100 ranges)" in text and len(text) < 400


# -- fast paths --------------------------------------------------------------------------------
@given(range_lists, st.lists(short_keys, max_size=12), key_ranges())
def test_add_key_is_add_single(ranges: list[KeyRange], ks: list[bytes], r: KeyRange) -> None:
    rs = KeyRanges(ranges)
    for k in ks:
        rs.add_key(k)
    model = model_of(ranges) | set(ks)
    check(rs, model)
    # Pending keys are folded in before every other kind of operation.
    for op in ("remove", "intersect", "inverse"):
        x = KeyRanges(ranges)
        for k in ks:
            x.add_key(k)
        if op == "remove":
            x.remove(r)
            check(x, model - model_of([r]))
        elif op == "intersect":
            x.intersect(r)
            check(x, model & model_of([r]))
        else:
            check(x.inverse(), ALL - model)


def test_add_key_merges_adjacent_and_duplicate_keys() -> None:
    rs = KeyRanges()
    for k in (b"a\x00", b"a", b"a", b"b"):
        rs.add_key(k)
    assert list(rs) == [KeyRange(b"a", b"a\x00\x00"), KeyRange(b"b", b"b\x00")]


def test_pending_keys_count_everywhere() -> None:
    rs = KeyRanges()
    rs.add_key(b"k")
    assert not rs.is_empty() and len(rs) == 1
    rs2 = KeyRanges()
    rs2.add_key(b"k")
    assert rs2 == KeyRanges([KeyRange.single(b"k")])
    rs3 = KeyRanges()
    rs3.add_key(b"k")
    assert rs3.min_key == b"k" and rs3.max_key == b"k\x00"
    rs4 = KeyRanges()
    rs4.add_key(b"k")
    assert KeyRanges.deserialize(rs4.serialize()) == KeyRanges([KeyRange.single(b"k")])


@given(range_lists, keys, st.one_of(st.none(), keys))
def test_add_range_is_add(ranges: list[KeyRange], lo: bytes, hi: bytes | None) -> None:
    rs = KeyRanges(ranges)
    rs.add_range(lo, hi)
    expected = model_of(ranges)
    if hi is None or lo < hi:
        expected |= model_of([KeyRange(lo, hi)])
    check(rs, expected)


@given(range_lists, keys)
def test_covers_key_and_neighbour_lookups(ranges: list[KeyRange], key: bytes) -> None:
    rs = KeyRanges(ranges)
    listed = list(rs)
    assert rs.covers_key(key) == any(r.contains(key) for r in listed)
    at_or_after = [r for r in listed if r.max_key is None or r.max_key > key]
    assert rs.next_range_at_or_after(key) == (at_or_after[0] if at_or_after else None)
    before = [r for r in listed if r.min_key < key]
    assert rs.prev_range_before(key) == (before[-1] if before else None)
    assert rs.prev_range_before(None) == (listed[-1] if listed else None)


# -- scale: many ranges, spread over several internal blocks ----------------------------------
def two_byte(i: int) -> bytes:
    return i.to_bytes(2, "big")


def test_many_ranges_against_a_set_model() -> None:
    """Thousands of ranges over 2-byte keys, checked against a Python set of ints."""
    rng = random.Random(7)
    rs = KeyRanges()
    model: set[int] = set()
    size = 1 << 16
    for step in range(6000):
        lo = rng.randrange(size - 8)
        hi = lo + rng.randrange(1, 8)
        if step % 3 == 2:
            rs.remove(KeyRange(two_byte(lo), two_byte(hi)))
            model -= set(range(lo, hi))
        elif step % 3 == 1:
            rs.add_key(two_byte(lo))
            model.add(lo)
        else:
            rs.add(KeyRange(two_byte(lo), two_byte(hi)))
            model |= set(range(lo, hi))
    assert len(rs) > 2500
    for i in rng.sample(range(size), 4000):
        assert rs.contains(two_byte(i)) == (i in model)
    ranges = list(rs)
    for a, b in itertools.pairwise(ranges):
        assert a.max_key is not None and a.max_key < b.min_key
    for i in rng.sample(range(size), 300):
        assert rs.find_key(two_byte(i)) == expected_find(ranges, two_byte(i))
    assert rs.inverse().inverse() == rs
    assert KeyRanges.deserialize(rs.serialize()) == rs
    check_bulk_paths(rs, rng)


def check_bulk_paths(rs: KeyRanges, rng: random.Random) -> None:
    """Large add/remove/intersect take the O(n + m) paths; they agree with the one-by-one ones."""
    other = KeyRanges(
        KeyRange(two_byte(lo), two_byte(lo + 3))
        for lo in (rng.randrange((1 << 16) - 4) for _ in range(3000))
    )
    for method in ("add", "remove", "intersect"):
        bulk = rs.clone()
        getattr(bulk, method)(other)
        if method == "intersect":
            one_by_one = rs - ~other
        else:
            one_by_one = rs.clone()
            for r in other:
                getattr(one_by_one, method)(r)
        assert bulk == one_by_one
        assert list(bulk._starts) == [r.min_key for r in bulk]


def test_fold_into_a_large_set_one_by_one() -> None:
    """A few pending keys are merged into a big set one at a time, many in bulk."""
    base = KeyRanges(KeyRange.single(two_byte(i)) for i in range(0, 20000, 4))
    for pending in ([1, 2, 3, 9999], list(range(1, 20000, 4))):
        rs = base.clone()
        for i in pending:
            rs.add_key(two_byte(i))
        expected = base.clone()
        for i in pending:
            expected.add(KeyRange.single(two_byte(i)))
        assert rs == expected
        assert len(rs) == len(list(rs))


# -- stateful ----------------------------------------------------------------------------------
class KeyRangesMachine(RuleBasedStateMachine):
    """Any sequence of operations keeps KeyRanges equal to a set-of-keys model."""

    def __init__(self) -> None:
        super().__init__()
        self.rs = KeyRanges()
        self.model: frozenset[bytes] = frozenset()

    @rule(r=key_ranges())
    def add(self, r: KeyRange) -> None:
        self.rs.add(r)
        self.model |= model_of([r])

    @rule(rs=range_lists)
    def add_many(self, rs: list[KeyRange]) -> None:
        self.rs.add(KeyRanges(rs))
        self.model |= model_of(rs)

    @rule(r=key_ranges())
    def remove(self, r: KeyRange) -> None:
        self.rs.remove(r)
        self.model -= model_of([r])

    @rule(rs=range_lists)
    def remove_many(self, rs: list[KeyRange]) -> None:
        self.rs.remove(KeyRanges(rs))
        self.model -= model_of(rs)

    @rule(r=key_ranges())
    def intersect(self, r: KeyRange) -> None:
        self.rs.intersect(r)
        self.model &= model_of([r])

    @rule(k=short_keys)
    def add_key(self, k: bytes) -> None:
        self.rs.add_key(k)
        self.model |= {k}

    @rule(lo=keys, hi=st.one_of(st.none(), keys))
    def add_range(self, lo: bytes, hi: bytes | None) -> None:
        self.rs.add_range(lo, hi)
        if hi is None or lo < hi:
            self.model |= model_of([KeyRange(lo, hi)])

    @rule()
    def invert(self) -> None:
        self.rs = ~self.rs
        self.model = ALL - self.model

    @rule()
    def clear(self) -> None:
        self.rs.clear()
        self.model = frozenset()

    @rule()
    def round_trip(self) -> None:
        self.rs = KeyRanges.deserialize(self.rs.serialize())

    @rule(k=keys)
    def query(self, k: bytes) -> None:
        assert self.rs.contains(k) == (k in self.model)

    @invariant()
    def matches_model(self) -> None:
        check(self.rs, self.model)


TestKeyRangesMachine = KeyRangesMachine.TestCase
TestKeyRangesMachine.settings = settings(TestKeyRangesMachine.settings, stateful_step_count=30)
