"""The commit log's entries: the keys a commit wrote, encoded compactly and checked on read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import CorruptData, KeyRange, Reads, Writes
from kvstore.commitlog import _Shape

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
    shape = _Shape.decode(_Shape.of(writes).encode())
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
    blob = _Shape.of(writes).encode()
    with pytest.raises(CorruptData):
        _Shape.decode(blob[:-cut])
    with pytest.raises(CorruptData):
        _Shape.decode(blob + b"\x00")
