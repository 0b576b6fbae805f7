"""SortedMap: a dict whose iteration is sorted, checked against a plain dict model."""

from __future__ import annotations

import pickle

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kvstore import sortedmap
from kvstore.sortedmap import SortedMap

_keys = st.binary(max_size=2)


def test_iterates_in_key_order() -> None:
    m = SortedMap({b"b": 1, b"a": 2})
    m[b"c"] = 3
    m[b"\x00"] = 4
    assert list(m) == [b"\x00", b"a", b"b", b"c"]
    assert list(m.items()) == [(b"\x00", 4), (b"a", 2), (b"b", 1), (b"c", 3)]
    assert list(m.values()) == [4, 2, 1, 3]
    assert list(reversed(m)) == [b"c", b"b", b"a", b"\x00"]


def test_sorted_queries() -> None:
    m = SortedMap.fromkeys([b"a", b"c", b"e"], 0)
    assert list(m.irange(b"b", b"e", inclusive=(True, False))) == [b"c"]
    assert list(m.irange(reverse=True)) == [b"e", b"c", b"a"]
    assert m.bisect_left(b"c") == 1 and m.bisect_right(b"c") == 2
    assert m.peekitem(0) == (b"a", 0) and m.peekitem() == (b"e", 0)
    assert m.index(b"e") == 2
    assert m.popitem(0) == (b"a", 0)
    assert list(m.keys()) == [b"c", b"e"] and m.keys()[0] == b"c"


def test_copy_pickle_and_union_keep_the_type() -> None:
    m = SortedMap({b"b": 1, b"a": 2})
    for twin in (m.copy(), pickle.loads(pickle.dumps(m)), m | {}):
        assert isinstance(twin, SortedMap)
        assert list(twin.items()) == [(b"a", 2), (b"b", 1)]
    twin = m.copy()
    twin[b"0"] = 0
    assert b"0" not in m


def test_update_pop_setdefault_clear() -> None:
    m: SortedMap[bytes, int] = SortedMap()
    m.update({b"b": 1})
    m |= {b"a": 0}
    assert m.setdefault(b"z", 9) == 9 and m.setdefault(b"z", 1) == 9
    assert m.pop(b"b") == 1 and m.pop(b"b", None) is None
    assert list(m) == [b"a", b"z"]
    m.clear()
    assert list(m) == [] and len(m) == 0


class SortedMapMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m: SortedMap[bytes, int] = SortedMap()
        self.model: dict[bytes, int] = {}

    @rule(k=_keys, v=st.integers())
    def set(self, k: bytes, v: int) -> None:
        self.m[k] = v
        self.model[k] = v

    @rule(k=_keys)
    def delete(self, k: bytes) -> None:
        if k in self.model:
            del self.m[k]
            del self.model[k]

    @rule(k=_keys)
    def pop(self, k: bytes) -> None:
        assert self.m.pop(k, None) == self.model.pop(k, None)

    @rule(ks=st.lists(_keys, max_size=5))
    def update(self, ks: list[bytes]) -> None:
        self.m.update(dict.fromkeys(ks, 7))
        self.model.update(dict.fromkeys(ks, 7))

    @rule(lo=_keys, hi=_keys, reverse=st.booleans())
    def irange(self, lo: bytes, hi: bytes, reverse: bool) -> None:
        expect = sorted((k for k in self.model if lo <= k < hi), reverse=reverse)
        assert list(self.m.irange(lo, hi, inclusive=(True, False), reverse=reverse)) == expect

    @invariant()
    def same_as_model(self) -> None:
        assert list(self.m.items()) == sorted(self.model.items())
        assert self.m == self.model and len(self.m) == len(self.model)


SortedMapMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=40)
TestSortedMapMachine = SortedMapMachine.TestCase


class LargeMapMachine(SortedMapMachine):
    """The same model test with a tiny small-map threshold, so SortedList takes over."""

    def __init__(self) -> None:
        super().__init__()
        self._saved = sortedmap._SMALL
        sortedmap._SMALL = 3

    def teardown(self) -> None:
        sortedmap._SMALL = self._saved


LargeMapMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=40)
TestLargeMapMachine = LargeMapMachine.TestCase


def test_iter_items_from_a_position() -> None:
    m = SortedMap({b"": 0, b"b": 2, b"a": 1})
    assert list(m.iter_items()) == [(b"", 0), (b"a", 1), (b"b", 2)]
    assert list(m.iter_items(1)) == [(b"a", 1), (b"b", 2)]
