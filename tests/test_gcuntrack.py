"""kvstore.gcuntrack: the one place kvstore takes atomic containers out of the GC's view."""

from __future__ import annotations

import gc
import sys

import pytest

from kvstore.gcuntrack import untrack


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's collector only")
def test_untrack_takes_a_tuple_of_atomic_items_out_of_the_collectors_view() -> None:
    assert untrack is not None
    record = tuple([b"content", 1.0, "semantic", 7])
    assert gc.is_tracked(record)
    untrack(id(record))
    assert not gc.is_tracked(record)
    gc.collect()  # an untracked object is still freed by reference counting
    assert record == (b"content", 1.0, "semantic", 7)


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's collector only")
def test_a_dict_of_untracked_records_is_untracked_by_a_full_collection() -> None:
    assert untrack is not None
    records = {n: tuple([b"x" * n, float(n)]) for n in range(100)}
    for value in records.values():
        untrack(id(value))
    gc.collect()
    assert not gc.is_tracked(records)
