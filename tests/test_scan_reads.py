"""Scan read precision (SPEC §4): a view's scans record only what their result depends on.

A scan leaves out the parts of its span inside ranges the view removed and the runs of keys
its own puts and removes cover at the ends of its span; keys it adjusted are always recorded.
Fewer recorded reads mean fewer false conflicts.  Checked three ways: the exact reads of each
rule; a property that no change of the base outside the recorded reads can change anything
the view returned (the reads are sound) while the removed spans stay unrecorded (they are
precise); and transactions on a ``Database``: conflicts that used to be false now commit,
and a property that every commit that succeeds is serializable.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kvstore
from kvstore import (
    Database,
    KeyRange,
    KeyRanges,
    KVStore,
    MemoryStore,
    MutableView,
    Reads,
    Writes,
)
from kvstore.counters import encode_counter


def k(n: int) -> bytes:
    """Key number ``n``: ``K10`` is ``k(10)``."""
    return b"K%02d" % n


def after(key: bytes) -> bytes:
    return key + b"\x00"


def base_of(*numbers: int) -> MemoryStore:
    store = MemoryStore()
    for n in numbers:
        store.put(k(n), b"base")
    return store


def ranges(*pairs: tuple[bytes, bytes | None]) -> KeyRanges:
    return KeyRanges(KeyRange(lo, hi) for lo, hi in pairs)


def reads_of(view: MutableView) -> Reads:
    reads = view.reads
    assert reads is not None
    return reads


# -- the exact reads of each rule ------------------------------------------------------------
def test_scan_wholly_inside_a_removed_range_records_nothing() -> None:
    view = MutableView(base_of(*range(10, 30)))
    view.remove_range(k(10), k(30))
    assert list(view.get_range(k(12), k(20))) == []
    assert list(view.get_range(k(12), k(20), reverse=True)) == []
    assert view.get_at_least(k(15)) is None or view.get_at_least(k(15), k(30)) is None
    assert reads_of(view) == ranges((k(30), None))  # get_at_least(K15) walked past K30


def test_scan_leaves_out_removed_parts_of_its_span() -> None:
    view = MutableView(base_of(10, 13, 16, 19))
    view.remove_range(k(12), k(15))
    assert [p.key for p in view.get_range(k(10), k(20))] == [k(10), k(16), k(19)]
    assert reads_of(view) == ranges((k(10), k(12)), (k(15), k(20)))


def test_run_of_own_puts_at_the_start_is_not_recorded() -> None:
    view = MutableView(base_of(12, 15))
    view.put(k(10), b"v")
    assert [p.key for p in view.get_range(k(10), k(20))] == [k(10), k(12), k(15)]
    assert reads_of(view) == ranges((after(k(10)), k(20)))


def test_run_mixing_puts_and_removes_at_the_start() -> None:
    view = MutableView(base_of(11, 12, 15))
    view.put(k(10), b"v")
    view.remove_range(after(k(10)), k(12))
    view.put(k(12), b"w")
    assert [p.key for p in view.get_range(k(10), k(20))] == [k(10), k(12), k(15)]
    assert reads_of(view) == ranges((after(k(12)), k(20)))


def test_put_not_at_the_start_of_the_span_is_recorded() -> None:
    # The base's keys in [K05, K10) influence the result: that part is read.
    view = MutableView(base_of(12))
    view.put(k(10), b"v")
    assert [p.key for p in view.get_range(k(5), k(20))] == [k(10), k(12)]
    assert reads_of(view) == ranges((k(5), k(20)))


def test_reverse_scan_leaves_out_the_run_at_the_end() -> None:
    view = MutableView(base_of(12, 15))
    view.put(k(19), b"v")
    got = [p.key for p in view.get_range(k(10), after(k(19)), reverse=True)]
    assert got == [k(19), k(15), k(12)]
    assert reads_of(view) == ranges((k(10), k(19)))


def test_reverse_scan_leaves_out_a_removed_tail() -> None:
    view = MutableView(base_of(12, 15, 25))
    view.remove_range(k(18), None)
    assert [p.key for p in view.get_range(k(10), None, reverse=True)] == [k(15), k(12)]
    assert reads_of(view) == ranges((k(10), k(18)))


def test_partial_scan_leaves_out_a_put_it_stopped_at() -> None:
    view = MutableView(base_of(12, 15))
    view.put(k(10), b"v")
    view.put(k(14), b"v")
    with view.get_range(k(10), k(20)) as it:
        assert [next(it).key for _ in range(3)] == [k(10), k(12), k(14)]
    assert reads_of(view) == ranges((after(k(10)), k(14)))


def test_get_at_least_and_at_most_answered_by_own_puts_record_nothing() -> None:
    view = MutableView(base_of(10, 11, 19))
    view.put(k(10), b"v")
    view.put(k(19), b"v")
    assert view.get_at_least(k(10)) == (k(10), b"v")
    assert view.get_at_most(after(k(19))) == (k(19), b"v")
    assert reads_of(view) == Reads()
    assert view.get_at_least(after(k(10))) == (k(11), b"base")
    assert reads_of(view) == ranges((after(k(10)), after(k(11))))


def test_get_at_least_skips_a_removed_range_unrecorded() -> None:
    view = MutableView(base_of(10, 11, 12, 20))
    view.remove_range(k(10), k(15))
    assert view.get_at_least(k(10)) == (k(20), b"base")
    assert reads_of(view) == ranges((k(15), after(k(20))))


def test_adjusted_keys_are_always_recorded() -> None:
    base = base_of(10)
    base.put(k(12), encode_counter(1))
    view = MutableView(base)
    view.adjust_counter(k(12), 5)
    view.remove_range(k(10), k(12))  # the leading run ends at the adjusted key
    assert [p.key for p in view.get_range(k(10), k(20))] == [k(12)]
    assert reads_of(view) == ranges((k(12), k(20)))
    # A Writes made elsewhere may hold an adjust inside a removed range (SPEC §3).
    given_writes = Writes(removes=[KeyRange(k(11), k(20))], adjusts={k(15): 1})
    view = MutableView(base, writes=given_writes)
    assert list(view.get_range(k(11), k(20))) == []
    assert reads_of(view) == ranges((k(15), after(k(15))))
    view.put(k(30), b"v")
    view.adjust_counter(k(31), 1)
    assert view.get_at_least(k(30), after(k(31))) == (k(30), b"v")
    assert reads_of(view) == ranges((k(15), after(k(15))))  # K31 was not reached


def test_a_write_during_a_scan_keeps_what_was_read_before_it() -> None:
    # K12 was returned from the base; putting it afterwards must not drop that read.
    view = MutableView(base_of(12, 15))
    with view.get_range(k(10), k(20)) as it:
        assert next(it).key == k(12)
        view.put(k(12), b"mine")
        view.remove_range(k(10), k(12))
        assert next(it).key == k(15)
    assert reads_of(view) == ranges((k(10), after(k(15))))


def test_a_view_without_writes_records_one_range() -> None:
    view = MutableView(base_of(10, 12))
    list(view.get_range(k(10), k(20)))
    assert reads_of(view) == ranges((k(10), k(20)))


# -- property: sound and precise -------------------------------------------------------------
KEYS = [b"", b"a", b"a\x00", b"b", b"c", b"c\x00", b"d"]
#: Every key a recorded read could leave out, to change in the base: KEYS and keys between.
UNIVERSE = sorted({*KEYS, *(key + b"\x00\x00" for key in KEYS), b"e"})

keys = st.sampled_from(KEYS)
bounds = st.one_of(st.none(), keys)
values = st.sampled_from([b"p", encode_counter(3)])
writes = st.one_of(
    st.tuples(st.just("put"), keys, values),
    st.tuples(st.just("remove"), keys),
    st.tuples(st.just("remove_range"), bounds, bounds),
    st.tuples(st.just("adjust"), keys, st.integers(-3, 3)),
)
reads = st.one_of(
    st.tuples(st.just("get"), keys),
    st.tuples(st.just("at_least"), bounds, bounds),
    st.tuples(st.just("at_most"), bounds, bounds),
    st.tuples(
        st.just("scan"),
        bounds,
        bounds,
        st.booleans(),
        st.integers(0, 4),
        st.one_of(st.none(), writes),
        st.integers(0, 8),
    ),
)
actions = st.lists(st.one_of(writes, reads), max_size=12)
bases = st.dictionaries(keys, st.sampled_from([b"v", encode_counter(10)]), max_size=len(KEYS))


def ordered(lo: bytes | None, hi: bytes | None) -> tuple[bytes | None, bytes | None]:
    if lo is not None and hi is not None and lo > hi:
        return hi, lo
    return lo, hi


def do_write(store: KVStore, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "put":
        store.put(op[1], op[2])
    elif kind == "remove":
        store.remove(op[1])
    elif kind == "remove_range":
        store.remove_range(*ordered(op[1], op[2]))
    else:
        store.adjust_counter(op[1], op[2])


def run(store: KVStore, ops: list[tuple[Any, ...]]) -> list[Any]:
    """Do ``ops`` on ``store``; return everything the reads returned, in order."""
    seen: list[Any] = []
    for op in ops:
        kind = op[0]
        if kind == "get":
            seen.append(store.get(op[1]))
        elif kind == "at_least":
            seen.append(store.get_at_least(op[1], op[2]))
        elif kind == "at_most":
            seen.append(store.get_at_most(op[1], op[2]))
        elif kind == "scan":
            _, lo, hi, reverse, first, write, second = op
            with store.get_range(*ordered(lo, hi), reverse=reverse) as it:
                seen.append([pair for _, pair in zip(range(first), it, strict=False)])
                if write is not None:
                    do_write(store, write)
                seen.append([pair for _, pair in zip(range(second), it, strict=False)])
        else:
            do_write(store, op)
    return seen


def changed_outside(base: dict[bytes, bytes], read: Reads, delete: bool) -> MemoryStore:
    """``base`` with every key of :data:`UNIVERSE` not covered by ``read`` changed."""
    store = MemoryStore(base.items())
    for key in UNIVERSE:
        if not read.covers_key(key):
            if delete:
                store.remove(key)
            else:
                old = base.get(key)
                store.put(key, encode_counter(77) if old != encode_counter(77) else b"w")
    return store


@given(bases, actions)
def test_reads_are_sound(base: dict[bytes, bytes], ops: list[tuple[Any, ...]]) -> None:
    """Changing the base anywhere outside the recorded reads changes nothing the view saw."""
    view = MutableView(MemoryStore(base.items()))
    seen = run(view, ops)
    read = reads_of(view)
    for delete in (True, False):
        again = MutableView(changed_outside(base, read, delete))
        assert run(again, ops) == seen
        assert again.writes == view.writes


@given(bases, st.lists(writes, max_size=6), bounds, bounds, st.booleans())
def test_removed_spans_and_leading_puts_are_not_recorded(
    base: dict[bytes, bytes],
    ops: list[tuple[Any, ...]],
    lo: bytes | None,
    hi: bytes | None,
    reverse: bool,
) -> None:
    view = MutableView(MemoryStore(base.items()))
    run(view, ops)
    lo, hi = ordered(lo, hi)
    list(view.get_range(lo, hi, reverse=reverse))
    read = reads_of(view)
    adjusted = KeyRanges(KeyRange.single(key) for key in view.writes.adjusts)
    removed = view.writes.removes
    assert (read & removed) - adjusted == KeyRanges()
    start = b"" if lo is None else lo
    if start in view.writes.puts:
        assert not read.covers_key(start)


# -- transactions: conflicts avoided, none missed --------------------------------------------
def _fill(db: Database) -> None:
    with db.transaction() as tx:
        for n in (10, 12, 15, 19, 25):
            tx.put(k(n), b"base")


#: (what the first transaction does, what the second commits meanwhile): each used to be a
#: TransactionConflict for the first; the first only saw the second's keys through its own
#: puts and removes.
AVOIDED: list[tuple[str, Any, Any]] = [
    (
        "scan from an own put",
        lambda tx: (tx.put(k(10), b"t1"), list(tx.get_range(k(10), k(20)))),
        lambda tx: tx.put(k(10), b"t2"),
    ),
    (
        "scan inside an own remove",
        lambda tx: (tx.remove_range(k(10), k(30)), list(tx.get_range(k(12), k(20)))),
        lambda tx: tx.put(k(15), b"t2"),
    ),
    (
        "scan across an own remove",
        lambda tx: (tx.remove_range(k(11), k(16)), list(tx.get_range(k(10), k(20)))),
        lambda tx: (tx.put(k(13), b"t2"), tx.remove(k(15))),
    ),
    (
        "reverse scan from an own put",
        lambda tx: (tx.put(k(19), b"t1"), list(tx.get_range(k(10), after(k(19)), True))),
        lambda tx: tx.remove(k(19)),
    ),
    (
        "get_at_least answered by an own put",
        lambda tx: (tx.put(k(10), b"t1"), tx.get_at_least(k(10))),
        lambda tx: tx.put(k(10), b"t2"),
    ),
    (
        "get_at_most past an own removed tail",
        lambda tx: (tx.remove_range(k(16), None), tx.get_at_most(None)),
        lambda tx: tx.put(k(25), b"t2"),
    ),
]

#: Real conflicts: the first transaction's result depended on what the second changed.
REAL: list[tuple[str, Any, Any]] = [
    (
        "scan past an own put",
        lambda tx: (tx.put(k(10), b"t1"), list(tx.get_range(k(10), k(20)))),
        lambda tx: tx.put(k(15), b"t2"),
    ),
    (
        "scan beside an own remove",
        lambda tx: (tx.remove_range(k(11), k(16)), list(tx.get_range(k(10), k(20)))),
        lambda tx: tx.put(k(17), b"t2"),
    ),
    (
        "adjusted key just past an own remove",
        lambda tx: (
            tx.adjust_counter(k(15), 1),
            tx.remove_range(k(10), k(15)),
            list(tx.get_range(k(10), k(20))),
        ),
        lambda tx: tx.put(k(15), encode_counter(1)),
    ),
    (
        "get_at_least beyond an own put",
        lambda tx: (tx.put(k(10), b"t1"), tx.get_at_least(after(k(10)))),
        lambda tx: tx.put(k(11), b"t2"),
    ),
]


def _race(db: Database, first: Any, second: Any) -> bool:
    """Run ``first`` in a transaction, commit ``second`` meanwhile; did ``first`` commit?"""
    tx = db.transaction()
    first(tx)
    tx.put(b"marker", b"t1 wrote")  # a transaction that wrote nothing always commits
    with db.transaction() as other:
        second(other)
    try:
        tx.commit()
    except kvstore.TransactionConflict:
        return False
    return True


def test_conflicts_avoided(db: Database) -> None:
    """Every scenario of AVOIDED used to conflict; now every one commits."""
    committed = 0
    for _name, first, second in AVOIDED:
        db.store.remove_range()
        _fill(db)
        committed += _race(db, first, second)
    assert committed == len(AVOIDED)


@pytest.mark.parametrize("name", [name for name, _, _ in REAL])
def test_real_conflicts_are_still_found(db: Database, name: str) -> None:
    _, first, second = next(case for case in REAL if case[0] == name)
    _fill(db)
    assert not _race(db, first, second)


@given(bases, actions, st.lists(writes, min_size=1, max_size=6))
def test_commits_are_serializable(
    base: dict[bytes, bytes], ops: list[tuple[Any, ...]], other: list[tuple[Any, ...]]
) -> None:
    """When a transaction commits after a concurrent one, running it after that one instead
    sees exactly what it saw: the precise reads miss no real conflict."""
    with kvstore.open() as db:
        with db.transaction() as tx:
            for key, value in base.items():
                tx.put(key, value)
        t1 = db.transaction()
        seen = run(t1, ops)
        t1.put(b"marker", b"t1")
        with db.transaction() as t2:
            for op in other:
                do_write(t2, op)
        after_t2 = MemoryStore(db.store.get_range())
        try:
            t1.commit()
        except kvstore.TransactionConflict:
            return
        serial = MutableView(after_t2)
        assert run(serial, ops) == seen
