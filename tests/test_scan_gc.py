"""Scans that the caller keeps build their pairs untracked by the garbage collector.

CPython untracks an exact tuple of bytes at its first collection but never a ``KVPair`` (a
tuple subclass), so a million kept pairs were traversed by every full collection: a view
scan cost 1.8 us a pair at 1M keys against 0.36 at 10k.  ``kvstore.store.collect_pairs``
untracks each pair as the next one is built, and range iterators use it from their second
batch on when the consumer kept the first batch's pairs.  These tests pin down that the
pairs are untracked where that applies, tracked where the consumer drops them, and that the
merged scans of views (built with C-level ``map`` loops) still give the right pairs.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import LMDBStore, MemoryStore, MutableView, Writes
from kvstore.counters import encode_counter
from kvstore.store import KVPair, _untrack, collect_pairs
from tests.storekit import SimpleMutations

needs_untrack = pytest.mark.skipif(_untrack is None, reason="pairs cannot be untracked here")

N = 3000  # several batches: the first ones are small (16, 32, ...)
KEYS = [b"k%05d" % i for i in range(N)]


@pytest.fixture(scope="module")
def lmdb_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LMDBStore]:
    with LMDBStore(tmp_path_factory.mktemp("gc") / "db", sync=False) as store:
        store.apply(SimpleMutations(puts=[(k, b"v" + k) for k in KEYS] + [(b"", b"empty")]))
        yield store


def _tracked(pairs: list[KVPair]) -> int:
    return sum(map(gc.is_tracked, pairs))


@needs_untrack
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bounds", [(None, None), (b"k00100", b"k02900")])
def test_kept_lmdb_scans_are_untracked_after_the_first_batch(
    lmdb_store: LMDBStore, reverse: bool, bounds: tuple[bytes | None, bytes | None]
) -> None:
    lo, hi = bounds
    everything = [(b"", b"empty")] + [(k, b"v" + k) for k in KEYS]
    expect = [p for p in everything if (lo is None or p[0] >= lo) and (hi is None or p[0] < hi)]
    for source in (lmdb_store, lmdb_store.snapshot()):
        pairs = list(source.get_range(lo, hi, reverse=reverse))
        assert pairs == (expect[::-1] if reverse else expect)
        assert all(type(p) is KVPair for p in pairs)
        assert _tracked(pairs) <= 17  # the first batch (16) and the empty key's pair
        gc.collect()  # the collector copes with the untracked pairs and the list holding them
        assert pairs == (expect[::-1] if reverse else expect)


@needs_untrack
@pytest.mark.parametrize("reverse", [False, True])
def test_kept_view_scans_are_untracked_after_the_first_chunk(
    lmdb_store: LMDBStore, reverse: bool
) -> None:
    with lmdb_store.snapshot() as snap:
        view = MutableView(snap)
        model = dict(snap.get_range())
        for i, key in enumerate(KEYS[::7]):  # overwrites
            view.put(key, b"new%d" % i)
            model[key] = b"new%d" % i
        for key in (b"k00050x", b"k01500x", b"zz"):  # new keys between and after the base's
            view.put(key, b"added")
            model[key] = b"added"
        view.put(KEYS[3], encode_counter(5))
        view.adjust_counter(KEYS[3], 2)
        model[KEYS[3]] = encode_counter(7)
        pairs = list(view.get_range(reverse=reverse))
        expect = sorted(model.items(), reverse=reverse)
        assert pairs == expect
        assert _tracked(pairs) <= 18  # the first chunk (16 and a put) and the empty key's pair


def test_streamed_pairs_stay_tracked(lmdb_store: LMDBStore) -> None:
    """A consumer that drops each pair pays nothing for untracking: the GC frees them young."""
    tracked = [gc.is_tracked(pair) for pair in lmdb_store.get_range(b"k")]
    assert len(tracked) == N and all(tracked)
    with lmdb_store.snapshot() as snap:
        view = MutableView(snap)
        view.put(KEYS[10], b"x")
        tracked = [gc.is_tracked(pair) for pair in view.get_range(b"k")]
    assert len(tracked) == N and all(tracked)


@needs_untrack
@pytest.mark.parametrize("count", [0, 1, 2, 700, 3000])
def test_collect_pairs_untracks_every_pair_while_collections_run(count: int) -> None:
    made = ((b"k%d" % i, b"v%d" % i) for i in range(count + 5))
    pairs = map(tuple.__new__, itertools.repeat(KVPair), made)
    threshold = gc.get_threshold()
    gc.set_threshold(1)  # a collection at nearly every allocation, in the middle of the list
    try:
        out = collect_pairs(pairs, count)
    finally:
        gc.set_threshold(*threshold)
    assert out == [(b"k%d" % i, b"v%d" % i) for i in range(count)]
    assert _tracked(out) == 0
    assert next(pairs) == (b"k%d" % count, b"v%d" % count)  # nothing past the limit taken
    gc.collect()


_key = st.lists(st.sampled_from(b"abcdefgh"), min_size=1, max_size=2).map(bytes)
_value = st.binary(max_size=3) | st.integers(-3, 3).map(encode_counter)


@settings(max_examples=150, deadline=None)
@given(
    base=st.dictionaries(_key, _value, max_size=70),
    puts=st.dictionaries(_key, st.binary(max_size=3), max_size=40),
    removes=st.lists(st.tuples(_key, _key), max_size=3),
    adjusts=st.lists(st.tuples(_key, st.integers(-2, 2)), max_size=6),
    bounds=st.tuples(st.none() | _key, st.none() | _key),
    reverse=st.booleans(),
    kept=st.booleans(),
)
def test_view_scans_match_the_writes_applied_to_a_copy(
    tmp_path_factory: pytest.TempPathFactory,
    base: dict[bytes, bytes],
    puts: dict[bytes, bytes],
    removes: list[tuple[bytes, bytes]],
    adjusts: list[tuple[bytes, int]],
    bounds: tuple[bytes | None, bytes | None],
    reverse: bool,
    kept: bool,
) -> None:
    """Invariant: a view's scan equals the base with the view's writes applied, whether the
    consumer keeps the pairs (untracked chunks, merged with the C-level put placement) or
    drops them, over an LMDB snapshot and a MemoryStore, in both directions."""
    lo, hi = bounds
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    writes = Writes()
    for a, b in removes:
        writes.record_remove_range(min(a, b), max(a, b) + b"\x00")
    for k, v in puts.items():
        writes.record_put(k, v)
    for k, amount in adjusts:
        writes.record_adjust(k, amount)
    expected = MemoryStore(base.items())
    writes.apply_to(expected)
    want = list(expected.get_range(lo, hi, reverse=reverse))
    path = tmp_path_factory.mktemp("merge") / "db"
    with LMDBStore(path, sync=False) as store:
        store.apply(SimpleMutations(puts=sorted(base.items())))
        for source in (store.snapshot(), MemoryStore(base.items())):
            view = MutableView(source)
            view.apply(writes)
            # small chunks come first (16, 32, ...): a short base still spans several
            if kept:
                got = list(view.get_range(lo, hi, reverse=reverse))
            else:
                got = [KVPair(k, v) for k, v in view.get_range(lo, hi, reverse=reverse)]
            assert got == want
            assert all(type(p) is KVPair for p in got)


def test_a_removed_range_before_new_puts_is_merged(tmp_path: Path) -> None:
    with LMDBStore(tmp_path / "db", sync=False) as store:
        store.apply(SimpleMutations(puts=[(k, b"v") for k in KEYS[:100]]))
        with store.snapshot() as snap:
            view = MutableView(snap)
            view.remove_range(KEYS[10], KEYS[60])
            view.put(KEYS[20] + b"!", b"new")
            view.put(KEYS[70], b"over")
            pairs = list(view.get_range())
    expect = {k: b"v" for k in KEYS[:10] + KEYS[60:100]}
    expect[KEYS[20] + b"!"] = b"new"
    expect[KEYS[70]] = b"over"
    assert pairs == sorted(expect.items())
