"""Writes: removes, then puts, then adjusts; the record_* methods fold operations into it.

The reference is a dict "store": applying a Writes to any base must give what applying the
recorded operations one by one gives.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sortedcontainers import SortedDict

from kvstore import MAX_KEY_SIZE, KeyRange, KeyRanges, Mutations, Writes
from kvstore.counters import decode_counter, encode_counter, wrap64
from kvstore.sortedmap import SortedMap
from tests.storekit import SimpleMutations

ALPHABET = [0x00, 0x01, 0xFF]
UNIVERSE = sorted(bytes(t) for n in range(3) for t in itertools.product(ALPHABET, repeat=n))
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1

keys = st.sampled_from(UNIVERSE)
values = st.sampled_from(
    [b"", b"v", b"not a counter", encode_counter(5), encode_counter(-1), encode_counter(I64_MAX)]
)
amounts = st.one_of(st.integers(-3, 3), st.sampled_from([I64_MIN, I64_MAX, 1 << 62]))

#: Bases to apply to: empty, all counters, all non-counters, and a mix.
BASES: list[dict[bytes, bytes]] = [
    {},
    {k: encode_counter(i) for i, k in enumerate(UNIVERSE)},
    dict.fromkeys(UNIVERSE, b"xyz"),
    {k: encode_counter(I64_MAX - i) if i % 2 else b"odd" for i, k in enumerate(UNIVERSE[::2])},
]


# -- a dict "store" as the model ---------------------------------------------------------------
def adjust(d: dict[bytes, bytes], key: bytes, amount: int) -> None:
    value = d.get(key)
    if value is not None and len(value) == 8:
        d[key] = encode_counter(wrap64(decode_counter(value) + amount))


def remove_range(d: dict[bytes, bytes], lo: bytes, hi: bytes | None) -> None:
    for k in [k for k in d if k >= lo and (hi is None or k < hi)]:
        del d[k]


def apply(base: dict[bytes, bytes], m: Mutations) -> dict[bytes, bytes]:
    """SPEC §2 ``apply``: removes, then puts, then adjusts."""
    d = dict(base)
    for r in m.remove_ranges():
        remove_range(d, r.min_key, r.max_key)
    for k, v in m.put_pairs():
        d[k] = v
    for k, a in m.adjust_pairs():
        adjust(d, k, a)
    return d


Op = tuple  # ("put", k, v) | ("remove", k) | ("remove_range", lo, hi) | ("adjust", k, amount)


def run_ops(base: dict[bytes, bytes], ops: list[Op]) -> dict[bytes, bytes]:
    d = dict(base)
    for op in ops:
        if op[0] == "put":
            d[op[1]] = op[2]
        elif op[0] == "remove":
            d.pop(op[1], None)
        elif op[0] == "remove_range":
            remove_range(d, op[1], op[2])
        else:
            adjust(d, op[1], op[2])
    return d


def record(w: Writes, ops: list[Op]) -> Writes:
    for op in ops:
        getattr(w, "record_" + op[0])(*op[1:])
    return w


def ordered(lo: bytes, hi: bytes | None) -> tuple[bytes, bytes | None]:
    return (hi, lo) if hi is not None and hi < lo else (lo, hi)


remove_range_ops = st.builds(
    lambda lo, hi: ("remove_range", *ordered(lo, hi)), keys, st.one_of(st.none(), keys)
)
op = st.one_of(
    st.tuples(st.just("put"), keys, values),
    st.tuples(st.just("remove"), keys),
    remove_range_ops,
    st.tuples(st.just("adjust"), keys, amounts),
)
op_lists = st.lists(op, max_size=10)


def check_invariants(w: Writes) -> None:
    assert isinstance(w.removes, KeyRanges)
    assert isinstance(w.puts, SortedMap) and isinstance(w.adjusts, SortedMap)
    assert not set(w.puts) & set(w.adjusts), "a key is in both puts and adjusts"
    assert all(I64_MIN <= a <= I64_MAX for a in w.adjusts.values())


# -- record_* against the model ----------------------------------------------------------------
@given(op_lists)
def test_recorded_writes_apply_like_the_operations(ops: list[Op]) -> None:
    w = record(Writes(), ops)
    check_invariants(w)
    for base in BASES:
        assert apply(base, w) == run_ops(base, ops)


@given(op_lists, op_lists)
def test_merge_is_applying_one_after_the_other(a: list[Op], b: list[Op]) -> None:
    wa, wb = record(Writes(), a), record(Writes(), b)
    merged = wa.clone()
    merged.merge(wb)
    check_invariants(merged)
    assert merged == record(Writes(), a + b)
    for base in BASES:
        assert apply(base, merged) == apply(apply(base, wa), wb)


@given(op_lists, op_lists)
def test_merge_takes_any_mutations(a: list[Op], b: list[Op]) -> None:
    wa, wb = record(Writes(), a), record(Writes(), b)
    generic = SimpleMutations(list(wb.removes), list(wb.puts.items()), list(wb.adjusts.items()))
    x, y = wa.clone(), wa.clone()
    x.merge(wb)
    y.merge(generic)
    assert x == y


def test_merge_with_itself() -> None:
    w = record(Writes(), [("put", b"a", encode_counter(1)), ("adjust", b"b", 2)])
    w.merge(w)
    assert w.puts == {b"a": encode_counter(1)} and w.adjusts == {b"b": 4}


# -- record_* one by one -----------------------------------------------------------------------
def test_record_put_replaces_an_adjust() -> None:
    w = Writes()
    w.record_adjust(b"k", 1)
    w.record_put(b"k", b"v")
    assert w.puts == {b"k": b"v"} and not w.adjusts


def test_record_remove_adds_a_single_key_range_and_drops_the_key() -> None:
    w = Writes()
    w.record_put(b"a", b"v")
    w.record_adjust(b"b", 1)
    w.record_remove(b"a")
    w.record_remove(b"b")
    assert list(w.removes) == [KeyRange.single(b"a"), KeyRange.single(b"b")]
    assert not w.puts and not w.adjusts


def test_put_after_remove_lies_inside_the_removed_range() -> None:
    w = Writes()
    w.record_remove_range(b"a", b"z")
    w.record_put(b"m", b"v")
    assert w.removes.contains(b"m") and w.puts == {b"m": b"v"}
    assert apply({b"m": b"old", b"n": b"x"}, w) == {b"m": b"v"}


def test_record_remove_range_drops_puts_and_adjusts_inside() -> None:
    w = Writes()
    for k in (b"a", b"b", b"c"):
        w.record_put(k, b"v")
    w.record_adjust(b"bb", 1)
    w.record_remove_range(b"b", b"c")
    assert list(w.puts) == [b"a", b"c"] and not w.adjusts
    w.record_remove_range(b"", None)
    assert not w.puts and w.removes.is_full()


def test_record_remove_range_ignores_an_empty_range() -> None:
    w = Writes()
    w.record_put(b"a", b"v")
    w.record_remove_range(b"a", b"a")
    assert w.puts == {b"a": b"v"} and w.removes.is_empty()


def test_record_adjust_updates_a_counter_put() -> None:
    w = Writes()
    w.record_put(b"k", encode_counter(I64_MAX))
    w.record_adjust(b"k", 1)
    assert w.puts == {b"k": encode_counter(I64_MIN)} and not w.adjusts


def test_record_adjust_leaves_a_non_counter_put() -> None:
    w = Writes()
    w.record_put(b"k", b"text")
    w.record_adjust(b"k", 1)
    assert w.puts == {b"k": b"text"} and not w.adjusts


def test_record_adjust_of_a_removed_key_does_nothing() -> None:
    w = Writes()
    w.record_remove(b"k")
    w.record_adjust(b"k", 1)
    assert not w.adjusts and not w.puts


def test_adjustments_sum_and_wrap_like_a_java_long() -> None:
    w = Writes()
    w.record_adjust(b"k", I64_MAX)
    w.record_adjust(b"k", 2)
    assert w.adjusts == {b"k": I64_MIN + 1}


# -- construction ------------------------------------------------------------------------------
def test_constructor_copies_and_checks() -> None:
    removes = KeyRanges([KeyRange(b"a", b"b")])
    puts = {b"k": b"v"}
    w = Writes(removes, puts, [(b"c", 1)])
    removes.clear()
    puts.clear()
    assert list(w.removes) == [KeyRange(b"a", b"b")]
    assert w.puts == {b"k": b"v"} and w.adjusts == {b"c": 1}
    assert type(w.puts) is SortedMap and type(w.adjusts) is SortedMap
    assert Writes(removes=[KeyRange(b"x", None)]).removes.contains(b"y")
    assert Writes(puts=[(bytearray(b"k"), memoryview(b"v"))]).puts == {b"k": b"v"}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"puts": {"k": b"v"}}, TypeError, "key of puts"),
        ({"puts": {b"k": "v"}}, TypeError, "value of puts"),
        ({"puts": {b"k" * (MAX_KEY_SIZE + 1): b"v"}}, ValueError, "limit"),
        ({"adjusts": {b"k": 1.5}}, TypeError, "adjusts"),
        ({"adjusts": {b"k": 1 << 63}}, ValueError, "64-bit"),
        ({"puts": 5}, TypeError, "puts must be a mapping"),
        ({"removes": [b"a"]}, TypeError, "KeyRange"),
        ({"puts": {b"k": b"v"}, "adjusts": {b"k": 1}}, ValueError, "both puts and adjusts"),
    ],
)
def test_constructor_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Writes(**kwargs)  # type: ignore[arg-type]


def test_sorted_dict_arguments_are_copied_too() -> None:
    puts = SortedDict({b"b": b"2", b"a": b"1"})
    w = Writes(puts=puts, adjusts=SortedDict({b"c": -1}))
    puts[b"z"] = b"9"
    assert list(w.puts) == [b"a", b"b"] and w.adjusts == {b"c": -1}


# -- whole-object behaviour --------------------------------------------------------------------
def test_is_a_mutations_in_key_order() -> None:
    w = Writes(
        [KeyRange(b"x", None), KeyRange(b"a", b"b")], {b"z": b"1", b"c": b"2"}, {b"q": 1, b"d": 2}
    )
    assert isinstance(w, Mutations)
    assert list(w.remove_ranges()) == [KeyRange(b"a", b"b"), KeyRange(b"x", None)]
    assert list(w.put_pairs()) == [(b"c", b"2"), (b"z", b"1")]
    assert list(w.adjust_pairs()) == [(b"d", 2), (b"q", 1)]


def test_empty_and_bool() -> None:
    assert Writes().is_empty() and not Writes()
    for w in (Writes(puts={b"k": b""}), Writes(adjusts={b"k": 0}), Writes([KeyRange.FULL])):
        assert not w.is_empty() and w
    w = Writes()
    w.record_remove(b"k")  # a pending single-key remove counts
    assert w and not w.is_empty()


def test_clear() -> None:
    w = record(Writes(), [("put", b"a", b"v"), ("remove", b"b"), ("adjust", b"c", 1)])
    w.clear()
    assert w.is_empty() and w == Writes()


def test_clone_is_independent() -> None:
    w = record(Writes(), [("put", b"a", b"v"), ("remove", b"b"), ("adjust", b"c", 1)])
    c = w.clone()
    assert c == w
    c.record_put(b"z", b"z")
    c.record_remove(b"y")
    c.record_adjust(b"c", 1)
    assert b"z" not in w.puts and not w.removes.contains(b"y") and w.adjusts == {b"c": 1}


def test_read_only_copy_refuses_every_change() -> None:
    w = record(Writes(), [("put", b"a", b"v"), ("remove", b"b"), ("adjust", b"c", 1)])
    ro = w.read_only()
    assert ro == w and ro.read_only() is ro
    calls: list[Callable[[], object]] = [
        lambda: ro.record_put(b"x", b"v"),
        lambda: ro.record_remove(b"x"),
        lambda: ro.record_remove_range(b"x", None),
        lambda: ro.record_adjust(b"x", 1),
        lambda: ro.merge(Writes()),
        ro.clear,
        lambda: ro.puts.__setitem__(b"x", b"v"),
        lambda: ro.puts.pop(b"a"),
        lambda: ro.adjusts.update({b"x": 1}),
        lambda: ro.adjusts.__delitem__(b"c"),
        lambda: ro.removes.add(KeyRange.FULL),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="read-only"):
            call()
    assert ro == w
    w.record_put(b"new", b"v")  # the original stays mutable; the copy does not follow it
    assert b"new" not in ro.puts
    mutable = ro.clone()
    mutable.record_put(b"x", b"v")
    assert type(mutable.puts) is SortedMap and b"x" in mutable.puts


def test_remove_range_over_most_puts() -> None:
    w = Writes()
    for i in range(1000):
        w.record_put(i.to_bytes(2, "big"), b"v")
        w.record_adjust(i.to_bytes(2, "big") + b"\x00", 1)
    w.record_remove_range((10).to_bytes(2, "big"), (990).to_bytes(2, "big"))
    kept = [i.to_bytes(2, "big") for i in [*range(10), *range(990, 1000)]]
    assert list(w.puts) == kept
    assert list(w.adjusts) == [k + b"\x00" for k in kept]
    w.record_put(b"\x00\x05\x01", b"new")  # the maps still sort new keys in
    assert list(w.puts)[6] == b"\x00\x05\x01"


def test_pickles() -> None:
    w = record(Writes(), [("put", b"a", b"v"), ("remove", b"b"), ("adjust", b"c", 1)])
    assert pickle.loads(pickle.dumps(w)) == w
    ro = pickle.loads(pickle.dumps(w.read_only()))
    assert ro == w
    with pytest.raises(TypeError, match="read-only"):
        ro.record_put(b"x", b"y")


def test_structures_cannot_be_rebound() -> None:
    w = Writes()
    with pytest.raises(AttributeError, match="cannot be rebound"):
        w.puts = SortedMap()  # type: ignore[misc]


def test_equality() -> None:
    a = Writes(puts={b"k": b"v"})
    assert a == Writes(puts={b"k": b"v"})
    assert a != Writes(puts={b"k": b"w"})
    assert a != Writes(puts={b"k": b"v"}, removes=[KeyRange.single(b"q")])
    assert Writes(adjusts={b"k": 1}) != Writes(adjusts={b"k": 2})
    assert a != {b"k": b"v"}
    with pytest.raises(TypeError):
        hash(a)


def test_repr_is_an_expression() -> None:
    w = Writes([KeyRange(b"a", b"b")], {b"k": b"v"}, {b"c": -1})
    assert eval(repr(w)) == w
    assert repr(w.read_only()).endswith(".read_only()")
    big = Writes(puts={bytes([i]): b"v" for i in range(100)})
    assert "(100 entries)" in repr(big) and len(repr(big)) < 400


def test_apply_to_is_store_apply() -> None:
    from kvstore import MemoryStore

    w = record(
        Writes(),
        [
            ("remove_range", b"a", b"c"),
            ("put", b"b", b"new"),
            ("adjust", b"n", 5),
            ("put", b"z", b""),
        ],
    )
    with MemoryStore() as store:
        base = {b"a": b"1", b"bb": b"2", b"n": encode_counter(1), b"q": b"q"}
        for k, v in base.items():
            store.put(k, v)
        w.apply_to(store)
        assert dict(store[b"":]) == apply(base, w)


# -- stateful ----------------------------------------------------------------------------------
class WritesMachine(RuleBasedStateMachine):
    """Any mix of recording, merging, cloning and round trips applies like the operations.

    The model is each base of BASES with every operation applied to it as it happens.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes = Writes()
        self.states = [dict(base) for base in BASES]

    def log(self, ops: list[Op]) -> None:
        self.states = [run_ops(state, ops) for state in self.states]

    @rule(o=op)
    def record(self, o: Op) -> None:
        record(self.writes, [o])
        self.log([o])

    @rule(more=op_lists)
    def merge(self, more: list[Op]) -> None:
        self.writes.merge(record(Writes(), more))
        self.log(more)

    @rule()
    def clone(self) -> None:
        self.writes = self.writes.clone()

    @rule()
    def round_trip(self) -> None:
        self.writes = Writes.deserialize(self.writes.serialize())

    @rule()
    def clear_and_remove_everything(self) -> None:
        self.writes.clear()
        self.writes.record_remove_range(b"", None)
        self.states = [{} for _ in BASES]

    @invariant()
    def applies_like_the_operations(self) -> None:
        check_invariants(self.writes)
        for base, state in zip(BASES, self.states, strict=True):
            assert apply(base, self.writes) == state


TestWritesMachine = WritesMachine.TestCase
TestWritesMachine.settings = settings(TestWritesMachine.settings, stateful_step_count=30)
