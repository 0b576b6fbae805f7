"""PrefixStore: a KVStore confined to one prefix of another store.

Every test runs over two underlying stores: ``MemoryStore`` (an AtomicKVStore with its own
range helpers) and a tiny dict-based plain ``KVStore`` that relies on the base class defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import kvstore
from kvstore import MAX_KEY_SIZE, KeyRange, KVPair, KVStore, StoreClosed
from kvstore.backends.memory import MemoryStore
from kvstore.counters import decode_counter, encode_counter, wrap64
from kvstore.keys import check_bounds, check_key, check_value
from kvstore.prefix import PrefixStore
from kvstore.store import BatchRangeIterator, RangeIterator
from tests.storekit import SimpleMutations


class DictStore(KVStore):
    """The smallest plain (non-atomic) KVStore: a dict, sorted on every scan."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def _fetch(self, lo: bytes, hi: bytes | None, reverse: bool, limit: int) -> list[KVPair]:
        keys = sorted(k for k in self.data if lo <= k and (hi is None or k < hi))
        if reverse:
            keys.reverse()
        return [KVPair(k, self.data[k]) for k in keys[:limit]]

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(check_key(key))

    def get_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None, reverse: bool = False
    ) -> RangeIterator:
        lo, hi = check_bounds(min_key, max_key)
        return BatchRangeIterator(self._fetch, self.remove, lo, hi, reverse)

    def put(self, key: bytes, value: bytes) -> None:
        self.data[check_key(key)] = check_value(value)

    def remove(self, key: bytes) -> None:
        self.data.pop(check_key(key), None)


BASES: dict[str, Callable[[], KVStore]] = {"memory": MemoryStore, "dict": DictStore}


@pytest.fixture(params=sorted(BASES))
def base(request: pytest.FixtureRequest) -> KVStore:
    return BASES[request.param]()


def contents(store: KVStore) -> dict[bytes, bytes]:
    with store.get_range() as it:
        return dict(it)


# Probe keys around the prefixes below: each prefix's parent, its last byte minus one with
# 0xff tails, its end, and the prefix itself with short tails.
PROBES = [
    b"", b"\x00", b"\x01", b"\x02", b"\x02\xfe", b"\x02\xfe\xff", b"\x02\xfe\xff\xff",
    b"\x02\xff", b"\x02\xff\x00", b"\x02\xff\xff", b"\x03", b"\x03\x00", b"a", b"ab",
    b"a\xff", b"b", b"\xfe\xff", b"\xff", b"\xff\x00", b"\xff\xfe", b"\xff\xff",
    b"\xff\xff\x00", b"\xff\xff\xff",
]  # fmt: skip
PREFIXES = [b"\x02\xff", b"\x02", b"a", b"\x00", b"\xff", b"\xff\xff", b"\x02\xfe\xff", b""]


def filled(base: KVStore, prefix: bytes) -> tuple[PrefixStore, dict[bytes, bytes]]:
    """``base`` holding every probe key (value: the key), a PrefixStore on it, and the model
    of what the PrefixStore must show."""
    for k in PROBES:
        base.put(k, b"v" + k)
    inside = {k[len(prefix) :]: b"v" + k for k in PROBES if k.startswith(prefix)}
    return PrefixStore(base, prefix), inside


def outside(prefix: bytes) -> dict[bytes, bytes]:
    return {k: b"v" + k for k in PROBES if not k.startswith(prefix)}


# -- translation -----------------------------------------------------------------------------


def test_keys_are_stored_under_the_prefix(base: KVStore) -> None:
    ps = PrefixStore(base, b"p/")
    ps.put(b"k", b"1")
    assert base.get(b"p/k") == b"1"
    assert ps.get(b"k") == b"1"
    assert ps.get(b"p/k") is None


def test_empty_key_is_the_prefix_itself(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    ps.put(b"", b"root")
    assert base.get(b"p") == b"root"
    assert list(ps.get_range()) == [KVPair(b"", b"root")]


def test_results_are_kvpairs_of_bytes(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    ps.put(bytearray(b"a"), memoryview(b"1"))
    pair = ps.get_at_least(b"")
    assert type(pair) is KVPair
    assert pair == (b"a", b"1") and type(pair.key) is bytes


# -- isolation -------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_scans_see_only_the_prefix(base: KVStore, prefix: bytes) -> None:
    ps, inside = filled(base, prefix)
    assert list(ps.get_range()) == sorted(inside.items())
    assert list(ps.get_range(reverse=True)) == sorted(inside.items(), reverse=True)
    assert ps[None:None] == sorted(inside.items())


@pytest.mark.parametrize("prefix", PREFIXES)
def test_unbounded_point_reads_stay_inside(base: KVStore, prefix: bytes) -> None:
    ps, inside = filled(base, prefix)
    keys = sorted(inside)
    assert ps.get_at_least(b"") == (KVPair(keys[0], inside[keys[0]]) if keys else None)
    assert ps.get_at_most(None) == (KVPair(keys[-1], inside[keys[-1]]) if keys else None)
    assert ps.get_at_most(b"") is None


@pytest.mark.parametrize("prefix", PREFIXES)
def test_point_reads_past_the_last_key_stay_inside(base: KVStore, prefix: bytes) -> None:
    ps, inside = filled(base, prefix)
    beyond = b"\xff" * 8
    expected_last = max(inside, default=None)
    last = ps.get_at_most(beyond)
    assert (last.key if last else None) == expected_last
    assert ps.get_at_least(beyond) is None


@pytest.mark.parametrize("prefix", PREFIXES)
def test_unbounded_remove_range_removes_only_the_prefix(base: KVStore, prefix: bytes) -> None:
    ps, _ = filled(base, prefix)
    ps.remove_range(None, None)
    assert list(ps.get_range()) == []
    assert contents(base) == outside(prefix)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_apply_of_a_full_remove_removes_only_the_prefix(base: KVStore, prefix: bytes) -> None:
    ps, _ = filled(base, prefix)
    ps.apply(SimpleMutations(removes=[KeyRange.FULL]))
    assert contents(base) == outside(prefix)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_iterator_remove_removes_only_the_prefix(base: KVStore, prefix: bytes) -> None:
    ps, _ = filled(base, prefix)
    with ps.get_range(reverse=True) as it:
        for _ in it:
            it.remove()
    assert contents(base) == outside(prefix)


@pytest.mark.parametrize("prefix", [b"\x02\xff", b"\xff\xff"])
def test_counters_stay_inside(base: KVStore, prefix: bytes) -> None:
    ps = PrefixStore(base, prefix)
    base.put(b"c", base.encode_counter(1))
    base.put(prefix + b"c", base.encode_counter(10))
    ps.adjust_counter(b"c", 5)
    ps.apply(SimpleMutations(adjusts=[(b"c", 2)]))
    assert base.decode_counter(base.get(prefix + b"c") or b"") == 17
    assert base.get(b"c") == base.encode_counter(1)
    ps.adjust_counter(b"missing", 1)
    assert base.get(prefix + b"missing") is None


def test_empty_prefix_is_the_whole_store(base: KVStore) -> None:
    ps, inside = filled(base, b"")
    assert inside == contents(base)
    assert list(ps.get_range()) == sorted(inside.items())
    ps.remove_range()
    assert contents(base) == {}


def test_nested_prefix_stores_concatenate_prefixes(base: KVStore) -> None:
    for k in PROBES:
        base.put(k, b"v" + k)
    outer = PrefixStore(PrefixStore(base, b"\x02"), b"\xff")
    flat = PrefixStore(base, b"\x02\xff")
    assert list(outer.get_range()) == list(flat.get_range())
    assert list(outer.get_range(reverse=True)) == list(flat.get_range(reverse=True))
    outer.remove_range()
    assert contents(base) == outside(b"\x02\xff")


# -- bounds ----------------------------------------------------------------------------------


def test_bounded_reads_translate_both_bounds(base: KVStore) -> None:
    ps, _ = filled(base, b"\x02")
    assert [p.key for p in ps.get_range(b"\xfe", b"\xff")] == [
        b"\xfe",
        b"\xfe\xff",
        b"\xfe\xff\xff",
    ]
    assert [p.key for p in ps.get_range(b"\xfe", b"\xff", reverse=True)] == [
        b"\xfe\xff\xff", b"\xfe\xff", b"\xfe"
    ]  # fmt: skip
    assert ps.get_at_least(b"\xfe\x00", b"\xff") == (b"\xfe\xff", b"v\x02\xfe\xff")
    assert ps.get_at_most(b"\xff", b"\xfe\xff\x00") == (b"\xfe\xff\xff", b"v\x02\xfe\xff\xff")
    assert ps.get_at_least(b"\xff", b"\xfe") is None
    assert ps.get_at_most(b"\xfe", b"\xff") is None


def test_bounded_remove_range(base: KVStore) -> None:
    ps, inside = filled(base, b"\x02")
    ps.remove_range(b"\xfe", b"\xff")
    assert dict(ps.get_range()) == {k: v for k, v in inside.items() if not k.startswith(b"\xfe")}
    assert len(contents(base)) == len(PROBES) - 3


def test_min_greater_than_max_raises_value_error(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    with pytest.raises(ValueError, match="min_key b'b' is greater than max_key b'a'"):
        ps.get_range(b"b", b"a")
    with pytest.raises(ValueError, match="greater"):
        ps.remove_range(b"b", b"a")


# -- key size and types ----------------------------------------------------------------------


def test_key_limit_is_max_key_size_minus_the_prefix(base: KVStore) -> None:
    ps = PrefixStore(base, b"abc")
    assert ps.max_key_size == MAX_KEY_SIZE - 3
    longest = b"k" * (MAX_KEY_SIZE - 3)
    ps.put(longest, b"x")
    assert ps.get(longest) == b"x"
    assert base.get(b"abc" + longest) == b"x"
    too_long = longest + b"k"
    limit = str(MAX_KEY_SIZE - 3)
    for op in (
        lambda: ps.put(too_long, b"x"),
        lambda: ps.get(too_long),
        lambda: ps.remove(too_long),
        lambda: ps.adjust_counter(too_long, 1),
        lambda: ps.apply(SimpleMutations(puts=[(too_long, b"x")])),
    ):
        with pytest.raises(ValueError, match=limit):
            op()


def test_range_bounds_may_be_one_byte_longer(base: KVStore) -> None:
    ps = PrefixStore(base, b"abc")
    bound = b"\xff" * (MAX_KEY_SIZE - 3 + 1)
    assert list(ps.get_range(b"", bound)) == []
    ps.remove_range(b"", bound)
    # get_at_least/get_at_most bounds are range bounds too (seek past a longest key).
    assert ps.get_at_least(bound) is None and ps.get_at_most(bound, bound) is None
    with pytest.raises(ValueError, match=str(MAX_KEY_SIZE - 2)):
        ps.get_range(b"", bound + b"\xff")
    with pytest.raises(ValueError, match=str(MAX_KEY_SIZE - 2)):
        ps.get_at_least(bound + b"\xff")


def test_longest_prefix_leaves_only_the_empty_key(base: KVStore) -> None:
    ps = PrefixStore(base, b"p" * MAX_KEY_SIZE)
    ps.put(b"", b"x")
    assert list(ps.get_range()) == [(b"", b"x")]
    with pytest.raises(ValueError, match="limit is 0"):
        ps.put(b"a", b"x")


def test_prefix_longer_than_max_key_size_raises_value_error(base: KVStore) -> None:
    with pytest.raises(ValueError, match=str(MAX_KEY_SIZE)):
        PrefixStore(base, b"p" * (MAX_KEY_SIZE + 1))


def test_bad_types_raise_type_error_naming_the_argument(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    with pytest.raises(TypeError, match="key"):
        ps.get("a")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="min_key"):
        ps.get_range("a")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value"):
        ps.put(b"a", "v")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prefix"):
        PrefixStore(base, "p")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store"):
        PrefixStore({}, b"p")  # type: ignore[arg-type]


# -- iterators -------------------------------------------------------------------------------


def test_iterator_remove_removes_the_pair_last_returned(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    for k in (b"a", b"b", b"c"):
        ps.put(k, k)
    with ps.get_range() as it:
        with pytest.raises(RuntimeError):
            it.remove()
        assert next(it).key == b"a"
        assert next(it).key == b"b"
        it.remove()
        with pytest.raises(RuntimeError):
            it.remove()
    assert dict(ps.get_range()) == {b"a": b"a", b"c": b"c"}
    assert base.get(b"pb") is None


def test_closed_iterator_yields_nothing_more(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    for k in (b"a", b"b", b"c"):
        ps.put(k, k)
    it = ps.get_range()
    assert next(it).key == b"a"
    it.close()
    assert list(it) == []
    it.close()
    with ps.get_range() as it2:
        assert next(iter(it2)).key == b"a"
    assert list(it2) == []


# -- apply -----------------------------------------------------------------------------------


def test_apply_translates_removes_puts_and_adjusts(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    base.put(b"pa", b"old")
    base.put(b"pb", b"old")
    base.put(b"pc", base.encode_counter(1))
    base.put(b"b", b"outside")
    ps.apply(
        SimpleMutations(
            removes=[KeyRange(b"a", b"b\x00")],
            puts=[(b"a", b"new"), (b"z", b"z")],
            adjusts=[(b"c", 41)],
        )
    )
    assert contents(base) == {
        b"pa": b"new",
        b"pc": base.encode_counter(42),
        b"pz": b"z",
        b"b": b"outside",
    }


def test_apply_checks_everything_before_changing_anything(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    base.put(b"pa", b"old")
    bad = SimpleMutations(
        removes=[KeyRange.FULL], puts=[(b"a", b"new"), (b"\xff" * MAX_KEY_SIZE, b"x")]
    )
    with pytest.raises(ValueError, match="limit"):
        ps.apply(bad)
    with pytest.raises(ValueError, match="amount"):
        ps.apply(SimpleMutations(removes=[KeyRange.FULL], adjusts=[(b"a", 1 << 64)]))
    assert contents(base) == {b"pa": b"old"}


class CountingStore(MemoryStore):
    """A MemoryStore that counts calls to ``apply``."""

    applies = 0

    def apply(self, mutations: Any, sync: bool | None = None) -> None:
        self.applies += 1
        super().apply(mutations, sync)


def test_apply_is_one_apply_of_an_atomic_store() -> None:
    base = CountingStore()
    ps = PrefixStore(base, b"p")
    ps.apply(SimpleMutations(removes=[KeyRange(b"a", b"b")], puts=[(b"a", b"1"), (b"b", b"2")]))
    assert base.applies == 1


def test_over_an_atomic_store_it_is_a_plain_kvstore() -> None:
    ps = PrefixStore(MemoryStore(), b"p")
    assert isinstance(ps, KVStore)
    assert not isinstance(ps, kvstore.AtomicKVStore)


# -- mapping sugar and life cycle ------------------------------------------------------------


def test_mapping_sugar(base: KVStore) -> None:
    ps = PrefixStore(base, b"p")
    ps[b"a"] = b"1"
    assert ps[b"a"] == b"1"
    assert b"a" in ps
    assert b"pa" not in ps
    assert ps[b"a":b"b"] == [KVPair(b"a", b"1")]
    del ps[b"a"]
    with pytest.raises(KeyError):
        del ps[b"a"]
    assert base.get(b"pa") is None


def test_close_leaves_the_underlying_store_open(base: KVStore) -> None:
    base.put(b"pa", b"1")
    with PrefixStore(base, b"p") as ps:
        assert ps.get(b"a") == b"1"
    ps.close()  # idempotent
    assert base.get(b"pa") == b"1"
    base.put(b"pb", b"2")
    for op in (
        lambda: ps.get(b"a"),
        lambda: ps.put(b"a", b"x"),
        lambda: ps.get_range(),
        lambda: ps.remove_range(),
        lambda: ps.get_at_most(None),
        lambda: ps.apply(SimpleMutations()),
    ):
        with pytest.raises(StoreClosed):
            op()


def test_properties_and_repr(base: KVStore) -> None:
    ps = PrefixStore(base, bytearray(b"p"))
    assert ps.prefix == b"p" and type(ps.prefix) is bytes
    assert ps.store is base
    assert repr(ps) == f"PrefixStore({base!r}, b'p')"


def test_exported_from_kvstore() -> None:
    assert kvstore.PrefixStore is PrefixStore


# -- model-based -----------------------------------------------------------------------------

keys = st.lists(st.sampled_from([0x00, 0x01, 0x02, 0xFE, 0xFF]), max_size=3).map(bytes)
prefixes = st.sampled_from([b"", b"\x00", b"\x01", b"\xff", b"\xfe\xff", b"\x00\xff", b"\xff\xff"])


class PrefixStoreMachine(RuleBasedStateMachine):
    """A PrefixStore over a MemoryStore against a dict of the whole underlying store."""

    def __init__(self) -> None:
        super().__init__()
        self.base = MemoryStore()
        self.model: dict[bytes, bytes] = {}
        self.ps = PrefixStore(self.base, b"")
        self.prefix = b""

    @initialize(prefix=prefixes, existing=st.dictionaries(keys, keys, max_size=8))
    def start(self, prefix: bytes, existing: dict[bytes, bytes]) -> None:
        for k, v in existing.items():
            self.base.put(k, v)
            self.model[k] = v
        self.ps = PrefixStore(self.base, prefix)
        self.prefix = prefix

    def _inside(self) -> dict[bytes, bytes]:
        n = len(self.prefix)
        return {k[n:]: v for k, v in self.model.items() if k.startswith(self.prefix)}

    @rule(key=keys, value=keys)
    def put(self, key: bytes, value: bytes) -> None:
        self.ps.put(key, value)
        self.model[self.prefix + key] = value

    @rule(key=keys)
    def remove(self, key: bytes) -> None:
        self.ps.remove(key)
        self.model.pop(self.prefix + key, None)

    @rule(lo=st.none() | keys, hi=st.none() | keys)
    def remove_range(self, lo: bytes | None, hi: bytes | None) -> None:
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        self.ps.remove_range(lo, hi)
        for k in list(self._inside()):
            if (lo is None or k >= lo) and (hi is None or k < hi):
                del self.model[self.prefix + k]

    def _adjust_model(self, key: bytes, amount: int) -> None:
        value = self.model.get(self.prefix + key)
        if value is not None and len(value) == 8:
            total = wrap64(decode_counter(value) + amount)
            self.model[self.prefix + key] = encode_counter(total)

    @rule(key=keys, start=st.integers(-5, 5), amount=st.integers(-5, 5))
    def adjust_counter(self, key: bytes, start: int, amount: int) -> None:
        if start:
            self.ps.put(key, encode_counter(start))
            self.model[self.prefix + key] = encode_counter(start)
        self.ps.adjust_counter(key, amount)
        self._adjust_model(key, amount)

    @rule(
        bounds=st.lists(st.tuples(st.none() | keys, st.none() | keys), max_size=2),
        puts=st.dictionaries(keys, keys, max_size=3),
        adjusts=st.dictionaries(keys, st.integers(-3, 3), max_size=2),
    )
    def apply(
        self,
        bounds: list[tuple[bytes | None, bytes | None]],
        puts: dict[bytes, bytes],
        adjusts: dict[bytes, int],
    ) -> None:
        removes = [
            KeyRange(*sorted((lo or b"", hi or b""))) if hi else KeyRange(lo, None)
            for lo, hi in bounds
        ]
        adjusts = {k: a for k, a in adjusts.items() if k not in puts}
        self.ps.apply(SimpleMutations(removes, puts.items(), adjusts.items()))
        for r in removes:
            for k in list(self._inside()):
                if r.contains(k):
                    del self.model[self.prefix + k]
        for k, v in puts.items():
            self.model[self.prefix + k] = v
        for k, a in adjusts.items():
            self._adjust_model(k, a)

    @rule(every=st.integers(1, 3), reverse=st.booleans())
    def remove_while_iterating(self, every: int, reverse: bool) -> None:
        with self.ps.get_range(reverse=reverse) as it:
            for i, (k, _) in enumerate(it):
                if i % every == 0:
                    it.remove()
                    del self.model[self.prefix + k]

    @rule(lo=st.none() | keys, hi=st.none() | keys, reverse=st.booleans())
    def scan(self, lo: bytes | None, hi: bytes | None, reverse: bool) -> None:
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        expected = sorted(
            (k, v)
            for k, v in self._inside().items()
            if (lo is None or k >= lo) and (hi is None or k < hi)
        )
        if reverse:
            expected.reverse()
        assert list(self.ps.get_range(lo, hi, reverse)) == expected

    @rule(key=keys, bound=st.none() | keys)
    def point_reads(self, key: bytes, bound: bytes | None) -> None:
        inside = self._inside()
        above = [k for k in sorted(inside) if k >= key and (bound is None or k < bound)]
        assert self.ps.get_at_least(key, bound) == ((above[0], inside[above[0]]) if above else None)
        below = [k for k in sorted(inside) if (bound is None or k < bound) and k >= key]
        assert self.ps.get_at_most(bound, key) == (
            (below[-1], inside[below[-1]]) if below else None
        )
        assert self.ps.get(key) == inside.get(key)

    @invariant()
    def underlying_store_matches_the_model(self) -> None:
        assert contents(self.base) == self.model


PrefixStoreMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
test_prefix_store_against_a_model = PrefixStoreMachine.TestCase
