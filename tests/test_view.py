"""MutableView: merged reads, precise read tracking, modes, composition and thread safety."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kvstore import KeyRange, KeyRanges, MemoryStore, MutableView, ReadOnlyError, Reads, Writes
from kvstore.counters import encode_counter


def base_with(*keys: bytes) -> MemoryStore:
    store = MemoryStore()
    for k in keys:
        store.put(k, b"base-" + k)
    return store


def ranges(*pairs: tuple[bytes, bytes | None]) -> KeyRanges:
    return KeyRanges(KeyRange(lo, hi) for lo, hi in pairs)


# -- the view never touches its base -------------------------------------------------------------
def test_writes_do_not_reach_the_base() -> None:
    base = base_with(b"a", b"b")
    view = MutableView(base)
    view.put(b"c", b"1")
    view.remove(b"a")
    view.remove_range(b"b", None)
    assert list(base.get_range()) == [(b"a", b"base-a"), (b"b", b"base-b")]
    assert list(view.get_range()) == []


def test_merged_range_both_directions() -> None:
    view = MutableView(base_with(b"a", b"c", b"e", b"g"))
    view.put(b"b", b"new-b")
    view.put(b"e", b"new-e")
    view.remove(b"c")
    view.remove_range(b"f", b"h")
    view.put(b"g", b"again-g")
    expect = [(b"a", b"base-a"), (b"b", b"new-b"), (b"e", b"new-e"), (b"g", b"again-g")]
    assert list(view.get_range()) == expect
    assert list(view.get_range(reverse=True)) == expect[::-1]


def test_adjusts_apply_to_values_read() -> None:
    base = MemoryStore()
    base.put(b"n", encode_counter(5))
    view = MutableView(base)
    view.adjust_counter(b"n", 3)
    view.adjust_counter(b"n", -1)
    assert view.decode_counter(view.get(b"n") or b"") == 7
    assert view.get_range().__next__() == (b"n", encode_counter(7))
    assert view.writes.adjusts == {b"n": 2}
    assert base.get(b"n") == encode_counter(5)


def test_adjust_without_reading_records_no_read() -> None:
    view = MutableView(MemoryStore())
    view.adjust_counter(b"n", 1)
    assert view.reads == Reads()


# -- read tracking -------------------------------------------------------------------------------
def test_get_from_base_records_the_key() -> None:
    view = MutableView(base_with(b"a"))
    view.get(b"a")
    view.get(b"missing")
    assert view.reads == ranges((b"a", b"a\x00"), (b"missing", b"missing\x00"))


def test_get_answered_by_own_writes_records_nothing() -> None:
    view = MutableView(base_with(b"a", b"b"))
    view.put(b"a", b"x")
    view.remove(b"b")
    view.remove_range(b"c", b"d")
    assert view.get(b"a") == b"x"
    assert view.get(b"b") is None
    assert view.get(b"cc") is None
    assert view.reads == Reads()


def test_exhausted_scan_records_the_whole_range() -> None:
    view = MutableView(base_with(b"a", b"b"))
    assert len(list(view.get_range(b"a", b"z"))) == 2
    assert view.reads == ranges((b"a", b"z"))
    assert len(list(view.get_range(b"x", None, reverse=True))) == 0
    assert view.reads == ranges((b"a", None))


def test_partial_scan_records_up_to_the_last_key_returned() -> None:
    view = MutableView(base_with(b"a", b"b", b"c", b"d"))
    with view.get_range() as it:
        assert next(it).key == b"a"
        assert next(it).key == b"b"
    assert view.reads == ranges((b"", b"b\x00"))


def test_partial_reverse_scan_records_from_the_last_key_returned() -> None:
    view = MutableView(base_with(b"a", b"b", b"c", b"d"))
    with view.get_range(b"a", b"z", reverse=True) as it:
        assert next(it).key == b"d"
        assert next(it).key == b"c"
    assert view.reads == ranges((b"c", b"z"))


def test_open_iterator_reads_are_visible() -> None:
    view = MutableView(base_with(b"a", b"b", b"c"))
    it = view.get_range()
    next(it)
    assert view.reads == ranges((b"", b"a\x00"))
    next(it)
    assert view.reads == ranges((b"", b"b\x00"))
    it.close()


def test_get_at_least_and_at_most_record_their_span() -> None:
    view = MutableView(base_with(b"b", b"d"))
    assert view.get_at_least(b"a") == (b"b", b"base-b")
    assert view.reads == ranges((b"a", b"b\x00"))
    assert view.get_at_most(b"z", b"c") == (b"d", b"base-d")
    assert view.reads == ranges((b"a", b"b\x00"), (b"d", b"z"))
    assert view.get_at_least(b"e", b"f") is None
    assert view.reads == ranges((b"a", b"b\x00"), (b"d", b"z"))


def test_tracking_off() -> None:
    view = MutableView(base_with(b"a"), track_reads=False)
    view.get(b"a")
    assert view.reads is None
    tracked = MutableView(base_with(b"a"))
    tracked.get(b"a")
    tracked.disable_read_tracking()
    assert tracked.reads is None
    tracked.get(b"a")
    assert tracked.reads is None


def test_without_read_tracking_is_per_thread() -> None:
    view = MutableView(base_with(b"a", b"b"))
    other_done = threading.Event()

    def other() -> None:
        view.get(b"b")
        other_done.set()

    with view.without_read_tracking():
        view.get(b"a")
        t = threading.Thread(target=other)
        t.start()
        t.join()
        with pytest.raises(ReadOnlyError):
            view.put(b"x", b"1")
    assert other_done.is_set()
    assert view.reads == ranges((b"b", b"b\x00"))
    with view.without_read_tracking(allow_writes=True):
        view.put(b"x", b"1")
    assert view.get(b"x") == b"1"


def test_set_read_only() -> None:
    view = MutableView(base_with(b"a"))
    view.set_read_only()
    assert view.read_only
    for call in (
        lambda: view.put(b"a", b"1"),
        lambda: view.remove(b"a"),
        lambda: view.remove_range(),
        lambda: view.adjust_counter(b"a", 1),
    ):
        with pytest.raises(ReadOnlyError):
            call()
    assert view.get(b"a") == b"base-a"


# -- clone, rebase, composition -----------------------------------------------------------------
def test_clone_has_its_own_reads_and_writes() -> None:
    view = MutableView(base_with(b"a"))
    view.get(b"a")
    view.put(b"b", b"1")
    twin = view.clone()
    twin.put(b"c", b"2")
    twin.get(b"z")
    assert twin.get(b"b") == b"1"
    assert view.reads == ranges((b"a", b"a\x00"))
    assert view.get(b"c") is None


def test_rebase_keeps_reads_and_writes() -> None:
    view = MutableView(base_with(b"a"))
    view.get(b"a")
    view.put(b"b", b"1")
    view.rebase(base_with(b"q"))
    assert [p.key for p in view.get_range()] == [b"b", b"q"]
    assert view.reads is not None and view.reads.contains(b"a")


def test_view_over_view_and_applying_deltas() -> None:
    base = base_with(b"a", b"b", b"c")
    lower = MutableView(base)
    lower.remove(b"b")
    upper = MutableView(lower)
    upper.put(b"b", b"upper")
    upper.remove_range(b"c", None)
    assert [p.key for p in upper.get_range()] == [b"a", b"b"]
    upper.writes.apply_to(lower)
    assert list(lower.get_range()) == list(upper.get_range())


@pytest.mark.parametrize("target", ["lmdb", "postgres"])
def test_memory_delta_applies_to_a_durable_store(tmp_path: Path, target: str) -> None:
    mem = base_with(b"a", b"b", b"c")
    view = MutableView(mem)
    view.put(b"a", b"A")
    view.remove_range(b"b", b"c")
    view.put(b"d", encode_counter(1))
    view.adjust_counter(b"d", 41)
    shipped = Writes.deserialize(view.writes.serialize())
    from tests.storekit import FACTORIES

    with FACTORIES[target](tmp_path) as durable:
        for k in (b"a", b"b", b"c"):
            durable.put(k, b"base-" + k)
        durable.apply(shipped)
        assert list(durable.get_range()) == list(view.get_range())

    # A view over the durable store itself merges the same way.
    with FACTORIES[target](tmp_path / "again") as durable:
        for k in (b"a", b"b", b"c"):
            durable.put(k, b"base-" + k)
        over = MutableView(durable)
        over.apply(shipped)
        assert list(over.get_range(reverse=True)) == list(view.get_range(reverse=True))
        assert list(durable.get_range()) == [(k, b"base-" + k) for k in (b"a", b"b", b"c")]


# -- iteration while the view changes -----------------------------------------------------------
def test_iterator_sees_writes_made_during_iteration() -> None:
    view = MutableView(base_with(*[b"%03d" % i for i in range(100)]))
    seen = []
    for pair in view.get_range():
        seen.append(pair.key)
        if pair.key == b"010":
            view.put(b"010x", b"new")
            view.remove(b"011")
            view.remove_range(b"050", b"060")
    assert b"010x" in seen and b"011" not in seen
    assert not [k for k in seen if b"050" <= k < b"060"]
    assert seen == sorted(seen)


def test_iterator_remove_on_view() -> None:
    view = MutableView(base_with(b"a", b"b", b"c"))
    with view.get_range() as it:
        for pair in it:
            if pair.key != b"b":
                it.remove()
    assert [p.key for p in view.get_range()] == [b"b"]


# -- threads -------------------------------------------------------------------------------------
def test_many_threads_see_a_consistent_view() -> None:
    view = MutableView(MemoryStore())
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(300):
                view.put(b"t%d-%04d" % (n, i), b"x")
                if i % 3 == 0:
                    view.remove(b"t%d-%04d" % (n, i))
                keys = [p.key for p in view.get_range(b"t%d-" % n, b"t%d." % n)]
                assert len(keys) == i + 1 - (i // 3 + 1)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(list(view.get_range())) == 4 * 200


# -- stateful model test -------------------------------------------------------------------------
_keys = st.sampled_from([b"", b"\x00", b"a", b"a\x00", b"ab", b"b", b"c", b"\xff", b"\xff\xff"])
_values = st.sampled_from([b"v1", b"v2", encode_counter(7), encode_counter(-1), b""])


def _wrap(n: int) -> int:
    return (n + 2**63) % 2**64 - 2**63


class ViewMachine(RuleBasedStateMachine):
    """A view over a store, and a dict model of what the view should show."""

    def __init__(self) -> None:
        super().__init__()
        self.base = MemoryStore()
        for i, k in enumerate([b"a", b"b", b"\xff"]):
            self.base.put(k, encode_counter(i) if i else b"plain")
        self.model = dict(self.base.get_range())
        self.view = MutableView(self.base)

    @rule(key=_keys, value=_values)
    def put(self, key: bytes, value: bytes) -> None:
        self.view.put(key, value)
        self.model[key] = value

    @rule(key=_keys)
    def remove(self, key: bytes) -> None:
        self.view.remove(key)
        self.model.pop(key, None)

    @rule(a=_keys, b=_keys)
    def remove_range(self, a: bytes, b: bytes) -> None:
        lo, hi = min(a, b), max(a, b)
        self.view.remove_range(lo, hi)
        for k in [k for k in self.model if lo <= k < hi]:
            del self.model[k]

    @rule(key=_keys, amount=st.integers(-(2**63), 2**63 - 1))
    def adjust(self, key: bytes, amount: int) -> None:
        self.view.adjust_counter(key, amount)
        old = self.model.get(key)
        if old is not None and len(old) == 8:
            self.model[key] = _wrap(int.from_bytes(old, "big", signed=True) + amount).to_bytes(
                8, "big", signed=True
            )

    @rule(key=_keys)
    def get(self, key: bytes) -> None:
        assert self.view.get(key) == self.model.get(key)

    @rule(a=_keys, b=_keys, reverse=st.booleans())
    def scan(self, a: bytes, b: bytes, reverse: bool) -> None:
        lo, hi = min(a, b), max(a, b)
        expect = sorted((k, v) for k, v in self.model.items() if lo <= k < hi)
        got = list(self.view.get_range(lo, hi, reverse=reverse))
        assert got == (expect[::-1] if reverse else expect)

    @precondition(lambda self: True)
    @rule()
    def ship_through_serialization(self) -> None:
        copy = Writes.deserialize(self.view.writes.serialize())
        assert copy == self.view.writes

    @invariant()
    def applying_writes_to_a_copy_of_the_base_gives_the_model(self) -> None:
        copy = MemoryStore(self.base.get_range())
        self.view.writes.apply_to(copy)
        assert dict(copy.get_range()) == self.model
        assert list(self.view.get_range()) == sorted(self.model.items())


ViewMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestViewMachine = ViewMachine.TestCase


def test_apply_is_all_or_nothing_on_bad_input() -> None:
    from tests.storekit import SimpleMutations

    view = MutableView(base_with(b"a"))
    bad = SimpleMutations(removes=[KeyRange(b"", None)], puts=[(b"b", b"1"), (b"c", "str")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="value"):
        view.apply(bad)
    assert view.writes == Writes()
    assert view.get(b"a") == b"base-a"


def test_no_read_is_lost_while_another_thread_folds_the_reads() -> None:
    base = MemoryStore()
    view = MutableView(base)
    stop = threading.Event()

    def folder() -> None:
        while not stop.is_set():
            reads = view.reads  # folds the queued point reads, concurrently with the gets
            assert reads is not None
            reads.contains(b"x")

    def reader(n: int) -> None:
        for i in range(3000):
            view.get(b"%d-%05d" % (n, i))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: hit the race windows
    f = threading.Thread(target=folder)
    f.start()
    readers = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    stop.set()
    f.join()
    sys.setswitchinterval(switch)
    reads = view.reads
    assert reads is not None
    missing = [
        (n, i) for n in range(3) for i in range(3000) if not reads.contains(b"%d-%05d" % (n, i))
    ]
    assert missing == []


@pytest.mark.parametrize("bad", ["no", 0, None])
def test_view_flags_must_be_bools(bad: object) -> None:
    with pytest.raises(TypeError, match="track_reads"):
        MutableView(MemoryStore(), track_reads=bad)  # type: ignore[arg-type]
    view = MutableView(MemoryStore())
    with (
        pytest.raises(TypeError, match="allow_writes"),
        view.without_read_tracking(allow_writes=bad),  # type: ignore[arg-type]
    ):
        pass
