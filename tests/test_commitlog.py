"""The commit log's entries: the keys a commit wrote, encoded compactly and checked on read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import CorruptData, KeyRange, Reads, Writes
from kvstore.commitlog import Shape

_keys = st.binary(max_size=6)


@given(
    puts=st.dictionaries(_keys, st.binary(max_size=4), max_size=20),
    adjusts=st.dictionaries(_keys, st.integers(-5, 5), max_size=5),
    removes=st.lists(st.tuples(_keys, _keys), max_size=4),
)
def test_shape_round_trips_and_conflicts_like_the_writes(
    puts: dict[bytes, bytes], adjusts: dict[bytes, int], removes: list[tuple[bytes, bytes]]
) -> None:
    writes = Writes()
    for lo, hi in removes:
        writes.record_remove_range(min(lo, hi), max(lo, hi))
    for k, v in puts.items():
        writes.record_put(k, v)
    for k, a in adjusts.items():
        writes.record_adjust(k, a)
    shape = Shape.decode(Shape.of(writes).encode())
    assert list(shape.remove_ranges()) == list(writes.removes)
    assert [k for k, _ in shape.put_pairs()] == list(writes.puts)
    assert [k for k, _ in shape.adjust_pairs()] == list(writes.adjusts)
    reads = Reads([KeyRange(b"", b"\x80")])
    assert reads.all_conflicts(shape) == reads.all_conflicts(writes)


@pytest.mark.parametrize("cut", [1, 3, 5, 9])
def test_damaged_entry_raises_corrupt_data(cut: int) -> None:
    writes = Writes()
    writes.record_put(b"key", b"v")
    writes.record_remove_range(b"a", b"b")
    blob = Shape.of(writes).encode()
    with pytest.raises(CorruptData):
        Shape.decode(blob[:-cut])
    with pytest.raises(CorruptData):
        Shape.decode(blob + b"\x00")


def test_an_abandoned_write_leaves_nothing_cached() -> None:
    from kvstore import MemoryStore
    from kvstore.commitlog import LocalLog

    log = LocalLog(MemoryStore(), keep_seconds=10, keep_commits=100)
    mine, theirs = Writes(), Writes()
    mine.record_put(b"mine", b"1")
    theirs.record_put(b"theirs", b"1")

    def abandoned(batch):  # type: ignore[no-untyped-def]
        pending: dict[int, Shape] = {}
        log.append(batch, log.read_version(batch), mine, pending)
        raise RuntimeError("the store gave up; the write never happened")

    with pytest.raises(RuntimeError):
        log.atomic(abandoned, None)
    pending: dict[int, Shape] = {}
    log.atomic(lambda batch: log.append(batch, log.read_version(batch), theirs, pending), None)
    log.remember(pending)
    reads = Reads([KeyRange.single(b"theirs"), KeyRange.single(b"mine")])
    found = log.atomic(lambda batch: log.conflicts(batch, reads, 0, 1, {}), None)
    assert [str(c) for c in found] == ["read/write conflict on key b'theirs'"]
