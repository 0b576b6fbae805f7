"""The store conformance suite: every store, view and transaction must pass all of it.

Each test is one behaviour of SPEC §2, run against every factory in ``storekit.FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import MAX_KEY_SIZE, AtomicKVStore, KVPair, KVStore, ReadOnlyError
from kvstore.ranges import KeyRange
from tests.storekit import ATOMIC, FACTORIES, SimpleMutations


@pytest.fixture(params=sorted(FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    with FACTORIES[request.param](tmp_path) as s:
        yield s


@pytest.fixture(params=ATOMIC)
def atomic(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    with FACTORIES[request.param](tmp_path) as s:
        yield s


KEYS = [b"", b"\x00", b"\x00\x00", b"\x00\xff", b"\x01", b"a", b"ab", b"b", b"\xff", b"\xff\xff"]


def fill(store: KVStore, keys: list[bytes] = KEYS) -> None:
    for i, k in enumerate(keys):
        store.put(k, b"v%d" % i)


def keys_of(pairs: Iterator[KVPair] | list[KVPair]) -> list[bytes]:
    return [p.key for p in pairs]


# -- point operations ---------------------------------------------------------------------------
def test_get_missing_is_none(store: KVStore) -> None:
    assert store.get(b"nope") is None


def test_put_then_get_returns_bytes(store: KVStore) -> None:
    store.put(bytearray(b"k"), memoryview(b"value"))
    value = store.get(b"k")
    assert value == b"value" and type(value) is bytes


def test_empty_key_is_a_valid_key(store: KVStore) -> None:
    store.put(b"", b"empty")
    assert store.get(b"") == b"empty"
    assert store.get_at_least(b"") == (b"", b"empty")


def test_put_overwrites(store: KVStore) -> None:
    store.put(b"k", b"1")
    store.put(b"k", b"2")
    assert store.get(b"k") == b"2"


def test_remove(store: KVStore) -> None:
    store.put(b"k", b"1")
    store.remove(b"k")
    store.remove(b"absent")
    assert store.get(b"k") is None


def test_longest_key_is_accepted(store: KVStore) -> None:
    limit = getattr(store, "max_key_size", MAX_KEY_SIZE)  # a PrefixStore's is shorter
    key = b"\xff" * limit
    store.put(key, b"x")
    assert store.get(key) == b"x"
    assert keys_of(store.get_range(b"\xff" * (limit - 1))) == [key]


# -- ordering and ranges -----------------------------------------------------------------------
def test_keys_sort_as_unsigned_bytes(store: KVStore) -> None:
    fill(store, list(reversed(KEYS)))
    assert keys_of(store.get_range()) == KEYS


def test_reverse_iteration(store: KVStore) -> None:
    fill(store)
    assert keys_of(store.get_range(reverse=True)) == KEYS[::-1]


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        (None, None),
        (b"", None),
        (b"\x00", b"\x01"),
        (b"\x00\x00", b"\x00\x00"),
        (b"a", b"b"),
        (b"ab", b"ab\x00"),
        (b"b", None),
        (None, b"\x00"),
        (b"\xff", b"\xff\xff\xff"),
        (b"c", b"d"),
    ],
)
def test_range_bounds_both_directions(store: KVStore, lo: bytes | None, hi: bytes | None) -> None:
    fill(store)
    expect = [k for k in KEYS if (lo is None or k >= lo) and (hi is None or k < hi)]
    assert keys_of(store.get_range(lo, hi)) == expect
    assert keys_of(store.get_range(lo, hi, reverse=True)) == expect[::-1]
    assert store[lo:hi] == [KVPair(k, store.get(k)) for k in expect]


def test_range_min_greater_than_max_raises(store: KVStore) -> None:
    with pytest.raises(ValueError, match="min_key"):
        store.get_range(b"b", b"a")
    with pytest.raises(ValueError, match="min_key"):
        store.remove_range(b"b", b"a")


def test_range_yields_kvpairs_of_bytes(store: KVStore) -> None:
    store.put(b"k", b"v")
    (pair,) = list(store.get_range())
    assert isinstance(pair, KVPair) and pair.key == b"k" and pair.value == b"v"
    assert type(pair.key) is bytes and type(pair.value) is bytes


def test_long_scan_crosses_batches(store: KVStore) -> None:
    keys = [b"%05d" % i for i in range(3000)]
    for k in keys:
        store.put(k, k)
    assert keys_of(store.get_range()) == keys
    assert keys_of(store.get_range(reverse=True)) == keys[::-1]


# -- get_at_least / get_at_most ----------------------------------------------------------------
def test_get_at_least(store: KVStore) -> None:
    fill(store)
    assert store.get_at_least(b"") == (b"", b"v0")
    assert store.get_at_least(b"\x00\x01") == (b"\x00\xff", b"v3")
    assert store.get_at_least(b"a", b"a") is None
    assert store.get_at_least(b"b", b"a") is None
    assert store.get_at_least(b"ac", b"b") is None
    assert store.get_at_least(b"ac", b"b\x00") == (b"b", b"v7")
    assert store.get_at_least(b"\xff\xff\x00") is None


def test_get_at_most(store: KVStore) -> None:
    fill(store)
    assert store.get_at_most(None) == (b"\xff\xff", b"v9")
    assert store.get_at_most(b"\x00") == (b"", b"v0")
    assert store.get_at_most(b"") is None
    assert store.get_at_most(b"b", b"b") is None
    assert store.get_at_most(b"b", b"c") is None
    assert store.get_at_most(b"b", b"ab") == (b"ab", b"v6")
    assert store.get_at_most(b"b", b"ab\x00") is None


# -- remove_range --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lo", "hi"), [(None, None), (None, b"a"), (b"a", None), (b"\x00", b"\x00\xff"), (b"x", b"x")]
)
def test_remove_range(store: KVStore, lo: bytes | None, hi: bytes | None) -> None:
    fill(store)
    store.remove_range(lo, hi)
    expect = [k for k in KEYS if not ((lo is None or k >= lo) and (hi is None or k < hi))]
    assert keys_of(store.get_range()) == expect
    assert keys_of(store.get_range(reverse=True)) == expect[::-1]


# -- counters ----------------------------------------------------------------------------------
def test_counter_encoding(store: KVStore) -> None:
    assert store.encode_counter(1) == b"\x00" * 7 + b"\x01"
    assert store.encode_counter(-1) == b"\xff" * 8
    assert store.decode_counter(store.encode_counter(-(2**63))) == -(2**63)
    with pytest.raises(ValueError, match="8 bytes"):
        store.decode_counter(b"\x00")
    with pytest.raises(ValueError):
        store.encode_counter(2**63)


def test_adjust_counter(store: KVStore) -> None:
    store.put(b"c", store.encode_counter(10))
    store.adjust_counter(b"c", 5)
    store.adjust_counter(b"c", -20)
    assert store.decode_counter(store.get(b"c") or b"") == -5


def test_adjust_counter_wraps_like_a_long(store: KVStore) -> None:
    store.put(b"c", store.encode_counter(2**63 - 1))
    store.adjust_counter(b"c", 1)
    assert store.decode_counter(store.get(b"c") or b"") == -(2**63)
    store.adjust_counter(b"c", -1)
    assert store.decode_counter(store.get(b"c") or b"") == 2**63 - 1


def test_adjust_missing_or_invalid_counter_does_nothing(store: KVStore) -> None:
    store.adjust_counter(b"missing", 1)
    assert store.get(b"missing") is None
    store.put(b"bad", b"123")
    store.adjust_counter(b"bad", 1)
    assert store.get(b"bad") == b"123"


@pytest.mark.parametrize("amount", [2**63, -(2**63) - 1])
def test_adjust_amount_out_of_range(store: KVStore, amount: int) -> None:
    with pytest.raises(ValueError, match="amount"):
        store.adjust_counter(b"c", amount)


def test_adjust_amount_must_be_int(store: KVStore) -> None:
    with pytest.raises(TypeError, match="amount"):
        store.adjust_counter(b"c", 1.5)  # type: ignore[arg-type]


# -- iterators ---------------------------------------------------------------------------------
def test_iterator_remove(store: KVStore) -> None:
    fill(store)
    with store.get_range() as it:
        for pair in it:
            if pair.key.startswith(b"\x00"):
                it.remove()
    assert keys_of(store.get_range()) == [k for k in KEYS if not k.startswith(b"\x00")]


def test_iterator_remove_reverse(store: KVStore) -> None:
    fill(store)
    it = store.get_range(reverse=True)
    assert next(it).key == b"\xff\xff"
    it.remove()
    assert next(it).key == b"\xff"
    it.close()
    assert keys_of(store.get_range()) == KEYS[:-1]


def test_iterator_remove_needs_a_returned_pair(store: KVStore) -> None:
    fill(store)
    it = store.get_range()
    with pytest.raises(RuntimeError):
        it.remove()
    next(it)
    it.remove()
    with pytest.raises(RuntimeError):
        it.remove()
    it.close()


def test_closed_iterator_yields_nothing(store: KVStore) -> None:
    fill(store)
    it = store.get_range()
    next(it)
    it.close()
    assert list(it) == []
    it.close()


def test_iteration_is_weakly_consistent(store: KVStore) -> None:
    keys = [b"%04d" % i for i in range(200)]
    for k in keys:
        store.put(k, b"x")
    seen = []
    for pair in store.get_range():
        seen.append(pair.key)
        if len(pair.key) == 4:
            n = int(pair.key)
            store.put(pair.key + b"+", b"new")  # just after the current key
            store.remove(b"%04d" % (n + 100))  # ahead of the iterator
    assert seen == sorted(seen)
    survivors = [k for k in keys if int(k) < 100]
    assert [k for k in seen if len(k) == 4][:100] == survivors


# -- argument checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["text", 5, None, 1.0])
def test_bad_key_type(store: KVStore, bad: object) -> None:
    with pytest.raises(TypeError, match="key"):
        store.get(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        store.put(bad, b"v")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        store.remove(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["text", 5, None])
def test_bad_value_type(store: KVStore, bad: object) -> None:
    with pytest.raises(TypeError, match="value"):
        store.put(b"k", bad)  # type: ignore[arg-type]
    assert store.get(b"k") is None


def test_bad_range_bound_type(store: KVStore) -> None:
    with pytest.raises(TypeError, match="min_key"):
        store.get_range("a", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_key"):
        store.get_range(None, 3)  # type: ignore[arg-type]


def test_over_long_key(store: KVStore) -> None:
    limit = getattr(store, "max_key_size", MAX_KEY_SIZE)
    key = b"k" * (limit + 1)
    for call in (lambda: store.put(key, b"v"), lambda: store.get(key), lambda: store.remove(key)):
        with pytest.raises(ValueError, match=str(limit)):
            call()
    with pytest.raises(ValueError, match="limit"):
        store.get_range(b"k" * 600)


# -- mapping sugar -----------------------------------------------------------------------------
def test_mapping_sugar(store: KVStore) -> None:
    store[b"a"] = b"1"
    assert store[b"a"] == b"1"
    assert b"a" in store and b"b" not in store
    with pytest.raises(KeyError):
        store[b"b"]
    with pytest.raises(KeyError):
        del store[b"b"]
    del store[b"a"]
    assert store.get(b"a") is None


def test_slicing(store: KVStore) -> None:
    fill(store)
    assert keys_of(store[b"a":b"b"]) == [b"a", b"ab"]
    assert keys_of(store[:b"\x00\x00"]) == [b"", b"\x00"]
    assert keys_of(store[b"\xff":]) == [b"\xff", b"\xff\xff"]


# -- apply ---------------------------------------------------------------------------------------
def test_apply_order_removes_puts_adjusts(store: KVStore) -> None:
    store.put(b"a", b"old")
    store.put(b"c", store.encode_counter(1))
    store.put(b"d", store.encode_counter(1))
    mutations = SimpleMutations(
        removes=[KeyRange(b"a", b"d")],
        puts=[(b"a", b"new"), (b"c", store.encode_counter(10))],
        adjusts=[(b"c", 5), (b"d", 2), (b"x", 1)],
    )
    store.apply(mutations)
    assert store.get(b"a") == b"new"
    assert store.decode_counter(store.get(b"c") or b"") == 15
    assert store.decode_counter(store.get(b"d") or b"") == 3
    assert store.get(b"x") is None


# -- snapshots (atomic stores) -------------------------------------------------------------------
def test_snapshot_is_independent_of_later_writes(atomic: KVStore) -> None:
    fill(atomic)
    with atomic.snapshot() as snap:  # type: ignore[attr-defined]
        atomic.put(b"new", b"x")
        atomic.remove(b"a")
        atomic.put(b"b", b"changed")
        atomic.remove_range(b"\xff", None)
        assert snap.get(b"new") is None
        assert snap.get(b"a") == b"v5"
        assert snap.get(b"b") == b"v7"
        assert keys_of(snap.get_range()) == KEYS
        assert keys_of(snap.get_range(reverse=True)) == KEYS[::-1]
        assert snap.get_at_most(None) == (b"\xff\xff", b"v9")


def test_snapshot_is_read_only(atomic: KVStore) -> None:
    with atomic.snapshot() as snap:  # type: ignore[attr-defined]
        with pytest.raises(ReadOnlyError):
            snap.put(b"k", b"v")
        with pytest.raises(ReadOnlyError):
            snap.remove(b"k")
        with pytest.raises(ReadOnlyError):
            snap.remove_range()
        with pytest.raises(ReadOnlyError):
            snap.adjust_counter(b"k", 1)


def test_apply_is_all_or_nothing_on_bad_input(atomic: KVStore) -> None:
    atomic.put(b"keep", b"1")
    bad = SimpleMutations(removes=[KeyRange(b"", None)], puts=[(b"a", b"1"), (b"b", "str")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        atomic.apply(bad)
    assert keys_of(atomic.get_range()) == [b"keep"]


# -- model-based property test -----------------------------------------------------------------
_key = st.binary(max_size=3).map(lambda b: bytes(x % 3 for x in b))
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _key, st.binary(max_size=9)),
        st.tuples(st.just("remove"), _key),
        st.tuples(st.just("remove_range"), _key, _key),
        st.tuples(st.just("adjust"), _key, st.integers(-(2**63), 2**63 - 1)),
        st.tuples(st.just("check"), _key, _key),
    ),
    max_size=40,
)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
@settings(max_examples=25, deadline=None)
@given(ops=_ops)
def test_matches_a_dict_model(
    kind: str, ops: list[tuple], tmp_path_factory: pytest.TempPathFactory
) -> None:  # type: ignore[type-arg]
    model: dict[bytes, bytes] = {}
    with FACTORIES[kind](tmp_path_factory.mktemp("model")) as store:
        for op in ops:
            if op[0] == "put":
                store.put(op[1], op[2])
                model[op[1]] = op[2]
            elif op[0] == "remove":
                store.remove(op[1])
                model.pop(op[1], None)
            elif op[0] == "remove_range":
                lo, hi = sorted(op[1:])
                store.remove_range(lo, hi)
                for k in [k for k in model if lo <= k < hi]:
                    del model[k]
            elif op[0] == "adjust":
                store.adjust_counter(op[1], op[2])
                old = model.get(op[1])
                if old is not None and len(old) == 8:
                    total = int.from_bytes(old, "big", signed=True) + op[2]
                    total = (total + 2**63) % 2**64 - 2**63
                    model[op[1]] = total.to_bytes(8, "big", signed=True)
            else:
                lo, hi = sorted(op[1:])
                expect = sorted((k, v) for k, v in model.items() if lo <= k < hi)
                assert list(store.get_range(lo, hi)) == expect
                assert list(store.get_range(lo, hi, reverse=True)) == expect[::-1]
                assert store.get_at_least(lo, hi) == (expect[0] if expect else None)
                assert store.get_at_most(hi, lo) == (expect[-1] if expect else None)
                assert store.get(lo) == model.get(lo)
        assert list(store.get_range()) == sorted(model.items())


# -- argument checks (issue 9) ----------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, 5, b"", [(b"k", b"v")]])
def test_apply_of_a_non_mutations_is_a_type_error(store: KVStore, bad: object) -> None:
    # It used to escape as AttributeError ('NoneType' has no attribute 'remove_ranges').
    store.put(b"k", b"v")
    with pytest.raises(TypeError, match="mutations"):
        store.apply(bad)  # type: ignore[arg-type]
    assert list(store.get_range()) == [(b"k", b"v")]


def test_snapshot_apply_of_a_non_mutations_is_a_type_error(atomic: KVStore) -> None:
    assert isinstance(atomic, AtomicKVStore)
    with atomic.snapshot() as snap, pytest.raises(TypeError, match="mutations"):
        snap.apply(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yes", "", 1, 0, None])
def test_reverse_must_be_a_bool(store: KVStore, bad: object) -> None:
    fill(store)
    with pytest.raises(TypeError, match="reverse"):
        store.get_range(reverse=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yes", "no", 1, 0])
def test_atomic_apply_sync_must_be_a_bool_or_none(atomic: KVStore, bad: object) -> None:
    assert isinstance(atomic, AtomicKVStore)
    with pytest.raises(TypeError, match="sync"):
        atomic.apply(SimpleMutations(puts=[(b"k", b"v")]), sync=bad)  # type: ignore[arg-type]
    assert atomic.get(b"k") is None
    for ok in (None, True, False):
        atomic.apply(SimpleMutations(puts=[(b"k", b"v")]), sync=ok)
    with atomic.snapshot() as snap, pytest.raises(TypeError, match="sync"):
        snap.apply(SimpleMutations(), sync="yes")  # type: ignore[call-arg]


def test_a_store_is_not_iterable_and_has_no_len(store: KVStore) -> None:
    # Iteration would otherwise fall back to store[0], store[1], ...: point to get_range().
    store.put(b"a", b"1")
    with pytest.raises(TypeError, match="get_range"):
        iter(store)
    with pytest.raises(TypeError, match="get_range"):
        list(store)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        len(store)  # type: ignore[arg-type]
    assert store[b"":] == [KVPair(b"a", b"1")]
