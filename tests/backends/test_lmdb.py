"""Tests of what is particular to the LMDB backend.

The generic store semantics are covered for every store in ``test_conformance.py``; here:
layout and key edge cases, snapshots, atomic apply, the ``_atomic`` hook used by the
transaction layer, map growth, a full disk, several processes, read-only use, bad paths and
closing.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.backends.lmdb import (
    _LOCK_FILE_SIZE,
    _MAX_READERS,
    LMDBBatch,
    LMDBSnapshot,
    LMDBStore,
    _check_data_file,
    _check_structure,
    _open_lmdb,
)
from kvstore.errors import (
    CorruptData,
    KVError,
    NotAKVStore,
    ReadOnlyError,
    StoreClosed,
    TransactionTooOld,
)
from kvstore.keys import MAX_KEY_SIZE, key_after
from kvstore.ranges import KeyRange
from kvstore.store import KVPair
from tests.storekit import SimpleMutations, as_nobody

ROOT = Path(__file__).resolve().parents[2]  # the repository
LONGEST = b"k" * MAX_KEY_SIZE  # a key of the maximum length
AFTER_LONGEST = key_after(LONGEST)  # a 512-byte bound: LMDB cannot seek to it directly


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LMDBStore]:
    with LMDBStore(tmp_path / "db", sync=False) as s:
        yield s


def _fill(store: LMDBStore, keys: list[bytes]) -> None:
    store.apply(SimpleMutations(puts=[(k, b"v" + k[:8]) for k in keys]))


def _big_puts(n: int, size: int = 1000, prefix: bytes = b"big") -> SimpleMutations:
    return SimpleMutations(puts=[(b"%s%06d" % (prefix, i), bytes([i % 251]) * size)
                                 for i in range(n)])


# -- layout and key edge cases ----------------------------------------------------------------
def test_empty_key_is_stored_beside_the_data(store: LMDBStore) -> None:
    store.put(b"", b"empty")
    store.put(b"\x00", b"zero")
    assert store.get(b"") == b"empty"
    assert list(store.get_range()) == [(b"", b"empty"), (b"\x00", b"zero")]
    assert list(store.get_range(reverse=True)) == [(b"\x00", b"zero"), (b"", b"empty")]
    assert list(store.get_range(b"", b"\x00")) == [(b"", b"empty")]
    assert list(store.get_range(b"\x00")) == [(b"\x00", b"zero")]
    assert store.get_at_least(b"") == (b"", b"empty")
    assert store.get_at_most(b"\x00") == (b"", b"empty")
    store.adjust_counter(b"", 1)  # not a counter: nothing happens
    assert store.get(b"") == b"empty"


def test_empty_key_in_apply_adjust_and_remove_range(store: LMDBStore) -> None:
    store.apply(SimpleMutations(puts=[(b"", store.encode_counter(41)), (b"a", b"1")]))
    store.apply(SimpleMutations(adjusts=[(b"", 1)]))
    assert store.get(b"") == store.encode_counter(42)
    store.remove_range(b"", b"")  # empty range: nothing
    assert store.get(b"") is not None
    store.remove_range(None, b"a")
    assert store.get(b"") is None
    assert store.get(b"a") == b"1"


def test_iterator_remove_of_the_empty_key(store: LMDBStore) -> None:
    _fill(store, [b"", b"a"])
    with store.get_range() as it:
        assert next(it).key == b""
        it.remove()
    assert store.get(b"") is None
    assert store.get(b"a") is not None


def test_longest_keys_and_512_byte_bounds(store: LMDBStore) -> None:
    shorter = LONGEST[:-1]
    above = b"k" * (MAX_KEY_SIZE - 1) + b"l"
    _fill(store, [shorter, LONGEST, above])
    assert list(store.get_range(LONGEST, AFTER_LONGEST)) == [(LONGEST, b"v" + LONGEST[:8])]
    assert [p.key for p in store.get_range(AFTER_LONGEST)] == [above]
    assert [p.key for p in store.get_range(None, AFTER_LONGEST, reverse=True)] == [
        LONGEST, shorter]
    assert [p.key for p in store.get_range(AFTER_LONGEST, reverse=True)] == [above]
    assert store.get_at_most(AFTER_LONGEST).key == LONGEST  # type: ignore[union-attr]
    assert store.get_at_least(LONGEST, AFTER_LONGEST).key == LONGEST  # type: ignore[union-attr]
    assert store.get_at_least(shorter, LONGEST).key == shorter  # type: ignore[union-attr]
    store.remove_range(AFTER_LONGEST)
    assert store.get(above) is None and store.get(LONGEST) is not None
    store.remove_range(LONGEST, AFTER_LONGEST)
    assert store.get(LONGEST) is None and store.get(shorter) is not None


def test_over_long_key_is_refused_on_reads(store: LMDBStore) -> None:
    with pytest.raises(ValueError, match="511"):
        store.get(b"x" * (MAX_KEY_SIZE + 1))
    with store.snapshot() as snap, pytest.raises(ValueError, match="511"):
        snap.get(b"x" * (MAX_KEY_SIZE + 1))


INTERESTING = [b"", b"\x00", b"a", b"a\x00", b"ab", b"\xff", b"\xff" * MAX_KEY_SIZE,
               LONGEST[:-1], LONGEST, b"k" * (MAX_KEY_SIZE - 1) + b"l"]
BOUNDS = [*INTERESTING, AFTER_LONGEST, key_after(b"\xff" * MAX_KEY_SIZE), key_after(b"a")]
keys_st = st.sets(st.one_of(st.sampled_from(INTERESTING), st.binary(max_size=3)), max_size=12)
bound_st = st.one_of(st.none(), st.sampled_from(BOUNDS), st.binary(max_size=3))


@settings(max_examples=150, deadline=None)
@given(keys=keys_st, lo=bound_st, hi=bound_st)
def test_ranges_match_a_sorted_model(
    tmp_path_factory: pytest.TempPathFactory, keys: set[bytes], lo: bytes | None,
    hi: bytes | None,
) -> None:
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    model = {k: b"v" + k[:4] for k in keys}
    path = tmp_path_factory.mktemp("model") / "db"
    with LMDBStore(path, sync=False) as store:
        store.apply(SimpleMutations(puts=model.items()))
        lo_key = lo or b""
        want = sorted(k for k in model if lo_key <= k and (hi is None or k < hi))
        assert [p.key for p in store.get_range(lo, hi)] == want
        assert [p.key for p in store.get_range(lo, hi, reverse=True)] == want[::-1]
        with store.snapshot() as snap:
            assert [p.key for p in snap.get_range(lo, hi, reverse=True)] == want[::-1]
        at_most = store.get_at_most(hi, lo if lo is None or len(lo) <= MAX_KEY_SIZE else None)
        if lo is None or len(lo) <= MAX_KEY_SIZE:
            assert at_most == (KVPair(want[-1], model[want[-1]]) if want else None)
            at_least = store.get_at_least(lo_key, hi)
            assert at_least == (KVPair(want[0], model[want[0]]) if want else None)
        store.remove_range(lo, hi)
        assert [p.key for p in store.get_range()] == sorted(set(model) - set(want))


def test_metadata_is_not_in_the_user_key_space(store: LMDBStore) -> None:
    store._atomic(lambda batch: batch.meta_put(b"version", b"7"))
    store.put(b"version", b"user")
    assert store.meta_get(b"version") == b"7"
    assert list(store.get_range()) == [(b"version", b"user")]
    store.remove_range()
    assert store.meta_get(b"version") == b"7"


# -- iteration on the live store --------------------------------------------------------------
def test_reverse_iteration_across_batches(store: LMDBStore) -> None:
    keys = [b"%05d" % i for i in range(5000)]
    _fill(store, keys)
    assert [p.key for p in store.get_range(reverse=True)] == keys[::-1]
    assert [p.key for p in store.get_range(b"00100", b"04000", reverse=True)] == (
        keys[100:4000][::-1])


def test_live_iterator_remove_removes_from_the_store(store: LMDBStore) -> None:
    keys = [b"%04d" % i for i in range(100)]
    _fill(store, keys)
    with store.get_range(reverse=True) as it:
        for pair in it:
            if int(pair.key) % 2:
                it.remove()
    assert [p.key for p in store.get_range()] == keys[::2]


def test_live_iteration_sees_writes_between_batches(store: LMDBStore) -> None:
    _fill(store, [b"%04d" % i for i in range(100)])
    seen = []
    with store.get_range() as it:
        for pair in it:
            seen.append(pair.key)
            if pair.key == b"0000":
                store.put(b"0099x", b"late")  # beyond the first batch
    assert b"0099x" in seen


# -- snapshots --------------------------------------------------------------------------------
def test_snapshot_is_isolated_from_later_writes(store: LMDBStore) -> None:
    _fill(store, [b"a", b"b", b"c"])
    with store.snapshot() as snap:
        store.put(b"a", b"new")
        store.remove(b"b")
        store.remove_range(b"c")
        store.apply(SimpleMutations(puts=[(b"d", b"4")]))
        assert snap.get(b"a") == b"va"
        assert snap.get(b"b") == b"vb"
        assert snap.get(b"d") is None
        assert [p.key for p in snap.get_range()] == [b"a", b"b", b"c"]
        assert snap.get_at_least(b"b") == (b"b", b"vb")
        assert snap.get_at_most(None) == (b"c", b"vc")
    assert [p.key for p in store.get_range()] == [b"a", b"d"]


def test_snapshot_iterator_is_consistent_while_the_store_changes(store: LMDBStore) -> None:
    keys = [b"%04d" % i for i in range(3000)]
    _fill(store, keys)
    with store.snapshot() as snap:
        seen = []
        for n, pair in enumerate(snap.get_range()):
            seen.append(pair.key)
            if n % 500 == 0:
                store.remove_range()
                store.put(b"0001x", b"new")
        assert seen == keys


def test_snapshot_meta_get_reads_the_same_transaction(store: LMDBStore) -> None:
    store._atomic(lambda batch: batch.meta_put(b"version", b"1"))
    with store.snapshot() as snap:
        store._atomic(lambda batch: batch.meta_put(b"version", b"2"))
        assert snap.meta_get(b"version") == b"1"
        assert store.meta_get(b"version") == b"2"


def test_snapshot_can_be_used_from_another_thread(store: LMDBStore) -> None:
    store.put(b"k", b"v")
    results: list[Any] = []
    with store.snapshot() as snap:
        thread = threading.Thread(target=lambda: results.append(
            (snap.get(b"k"), list(snap.get_range()))))
        thread.start()
        thread.join()
    assert results == [(b"v", [(b"k", b"v")])]


def test_snapshot_is_read_only_and_closes_idempotently(store: LMDBStore) -> None:
    store.put(b"k", b"v")
    snap = store.snapshot()
    assert isinstance(snap, LMDBSnapshot)
    with pytest.raises(ReadOnlyError):
        snap.put(b"k", b"w")
    with pytest.raises(ReadOnlyError):
        snap.apply(SimpleMutations())
    with snap:
        pass
    snap.close()
    for use in (lambda: snap.get(b"k"), lambda: snap.get(b""), lambda: snap.get_range(),
                lambda: snap.get_at_least(b""), lambda: snap.meta_get(b"m"),
                lambda: snap.put(b"k", b"v")):
        with pytest.raises(StoreClosed):
            use()


def test_closing_the_store_closes_its_snapshots(tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "db", sync=False)
    store.put(b"k", b"v")
    snap = store.snapshot()
    it = snap.get_range()
    store.close()
    with pytest.raises(StoreClosed):
        snap.get(b"k")
    with pytest.raises(StoreClosed):
        list(it)


# -- atomic apply -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mutations",
    [
        SimpleMutations(removes=[KeyRange(None, None)], puts=[(b"a", "text")]),  # type: ignore[list-item]
        SimpleMutations(removes=[KeyRange(None, None)], puts=[(b"a", b"1"), (b"b" * 600, b"2")]),
        SimpleMutations(removes=[KeyRange(None, None)], adjusts=[(b"a", 1 << 64)]),
        SimpleMutations(removes=[KeyRange(None, None)], adjusts=[(b"a", 1.5)]),  # type: ignore[list-item]
    ],
    ids=["str-value", "long-key", "huge-amount", "float-amount"],
)
def test_apply_with_a_bad_item_writes_nothing(store: LMDBStore, mutations: SimpleMutations) -> None:
    store.put(b"keep", b"1")
    with pytest.raises((TypeError, ValueError)):
        store.apply(mutations)
    assert list(store.get_range()) == [(b"keep", b"1")]


def test_apply_checks_remove_ranges_are_key_ranges(store: LMDBStore) -> None:
    store.put(b"keep", b"1")
    bad = SimpleMutations(puts=[(b"a", b"1")])
    bad.removes = [(b"a", b"b")]  # type: ignore[list-item]
    with pytest.raises(TypeError, match="KeyRange"):
        store.apply(bad)
    assert list(store.get_range()) == [(b"keep", b"1")]


def test_apply_removes_then_puts_then_adjusts_in_one_transaction(store: LMDBStore) -> None:
    _fill(store, [b"a", b"b", b"c"])
    store.put(b"n", store.encode_counter(1))
    store.apply(SimpleMutations(
        removes=[KeyRange(b"a", b"c")],
        puts=[(b"b", b"again"), (b"m", store.encode_counter(-1))],
        adjusts=[(b"m", -(1 << 63)), (b"n", (1 << 63) - 1)],
    ), sync=True)
    assert [p.key for p in store.get_range()] == [b"b", b"c", b"m", b"n"]
    assert store.get(b"b") == b"again"
    assert store.decode_counter(store.get(b"m")) == (1 << 63) - 1  # type: ignore[arg-type]
    assert store.decode_counter(store.get(b"n")) == -(1 << 63)  # type: ignore[arg-type]


def test_apply_sync_must_be_a_bool(store: LMDBStore) -> None:
    with pytest.raises(TypeError, match="sync"):
        store.apply(SimpleMutations(), sync="yes")  # type: ignore[arg-type]


# -- the _atomic hook -------------------------------------------------------------------------
def test_atomic_commits_data_and_metadata_together(store: LMDBStore) -> None:
    def fn(batch: LMDBBatch) -> str:
        batch.apply(SimpleMutations(puts=[(b"k", b"v"), (b"", b"e")]))
        assert batch.get(b"k") == b"v" and batch.get(b"") == b"e"
        batch.meta_put(b"version", b"1")
        assert batch.meta_get(b"version") == b"1"
        return "done"

    assert store._atomic(fn, sync=True) == "done"
    assert store.get(b"k") == b"v" and store.get(b"") == b"e"
    assert store.meta_get(b"version") == b"1"


def test_atomic_aborts_when_fn_raises(store: LMDBStore) -> None:
    store.put(b"k", b"old")

    def fn(batch: LMDBBatch) -> None:
        batch.apply(SimpleMutations(puts=[(b"k", b"new")], removes=[KeyRange(None, None)]))
        batch.meta_put(b"version", b"1")
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        store._atomic(fn)
    assert list(store.get_range()) == [(b"k", b"old")]
    assert store.meta_get(b"version") is None


def test_atomic_metadata_range_and_deletes(store: LMDBStore) -> None:
    entries = [(b"log/%05d" % i, b"%d" % i) for i in range(600)]

    def write(batch: LMDBBatch) -> None:
        for key, value in entries:
            batch.meta_put(key, value)
        batch.meta_put(b"version", b"600")

    store._atomic(write)

    def read(batch: LMDBBatch) -> list[tuple[bytes, bytes]]:
        got = list(batch.meta_range(b"log/", b"log0"))
        for key, _ in batch.meta_range(b"log/00000", b"log/00100"):
            batch.meta_delete(key)  # deleting while iterating is allowed
        batch.meta_delete_range(b"log/00500", b"log0")
        return got

    assert store._atomic(read) == entries
    left = store._atomic(lambda batch: list(batch.meta_range(None, None)))
    assert left == [*entries[100:500], (b"version", b"600")]


def test_atomic_batch_is_invalid_after_the_call(store: LMDBStore) -> None:
    kept = store._atomic(lambda batch: batch)
    with pytest.raises(RuntimeError, match="_atomic"):
        kept.meta_get(b"x")


def test_atomic_meta_keys_must_not_be_empty(store: LMDBStore) -> None:
    with pytest.raises(ValueError, match="empty"):
        store._atomic(lambda batch: batch.meta_put(b"", b"x"))


# -- map growth -------------------------------------------------------------------------------
def test_map_grows_from_a_tiny_map(tmp_path: Path) -> None:
    with LMDBStore(tmp_path / "db", map_size=64 * 1024, sync=False) as store:
        for chunk in range(8):
            store.apply(_big_puts(1000, prefix=b"c%d-" % chunk))  # 1 MB per write
        store.put(b"single", b"x" * 100_000)
        assert store.get(b"c7-000999") == bytes([999 % 251]) * 1000
        assert sum(1 for _ in store.get_range()) == 8001
        assert store._shared.env.info()["map_size"] >= 8_000_000


def test_atomic_fn_is_rerun_when_the_map_grows(tmp_path: Path) -> None:
    calls = []

    def fn(batch: LMDBBatch) -> int:
        calls.append(1)
        try:
            batch.apply(_big_puts(500))
        except BaseException:  # even a fn that swallows the signal cannot commit half
            pass
        batch.meta_put(b"version", b"1")
        return len(calls)

    with LMDBStore(tmp_path / "db", map_size=64 * 1024, sync=False) as store:
        assert store._atomic(fn) == len(calls) > 1
        assert store.get(b"big000499") is not None and store.meta_get(b"version") == b"1"


def test_current_snapshot_survives_map_growth(tmp_path: Path) -> None:
    with LMDBStore(tmp_path / "db", map_size=64 * 1024, sync=False) as store:
        store.put(b"a", b"1")
        with store.snapshot() as snap:
            it = snap.get_range()
            assert next(it) == (b"a", b"1")
            store.apply(_big_puts(2000))  # grows the map several times
            assert snap.get(b"a") == b"1"
            assert snap.get(b"big000000") is None
            assert list(it) == []
            assert list(snap.get_range()) == [(b"a", b"1")]
        assert store.get(b"big001999") is not None


def test_stale_snapshot_expires_when_the_map_grows(tmp_path: Path) -> None:
    with LMDBStore(tmp_path / "db", map_size=64 * 1024, sync=False) as store:
        store.put(b"a", b"1")
        snap = store.snapshot()
        store.put(b"b", b"2")  # a commit the snapshot does not see
        store.apply(_big_puts(2000))
        with pytest.raises(TransactionTooOld):
            snap.get(b"a")
        with pytest.raises(TransactionTooOld):
            list(snap.get_range())
        snap.close()
        with pytest.raises(StoreClosed):
            snap.get(b"a")


def test_map_growth_with_concurrent_readers(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()
    with LMDBStore(tmp_path / "db", map_size=64 * 1024, sync=False) as store:
        _fill(store, [b"%04d" % i for i in range(200)])

        def read() -> None:
            try:
                while not stop.is_set():
                    assert store.get(b"0100") == b"v0100"
                    assert sum(1 for _ in store.get_range(b"0", b"1")) == 200
                    try:
                        with store.snapshot() as snap:
                            assert snap.get(b"0199") == b"v0199"
                            assert len(list(snap.get_range(b"0", b"1"))) == 200
                    except TransactionTooOld:
                        pass  # a snapshot older than the latest commit when the map grew
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for thread in readers:
            thread.start()
        for chunk in range(6):
            store.apply(_big_puts(400, prefix=b"w%d-" % chunk))
        stop.set()
        for thread in readers:
            thread.join()
        assert store._shared.env.info()["map_size"] > 2_000_000
    assert errors == []


def test_failed_writes_finish_promptly_under_a_stream_of_reads(store: LMDBStore) -> None:
    """py-lmdb 3 aborts a write txn only when no call is in flight; readers must make way."""
    _fill(store, [b"%04d" % i for i in range(100)])
    stop = threading.Event()
    snap = store.snapshot()

    def read() -> None:
        while not stop.is_set():
            snap.get(b"0050")
            store.get(b"0050")
            with store.get_range(b"0", b"1") as it:
                next(it)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()

    def fail(batch: LMDBBatch) -> None:
        batch.apply(SimpleMutations(puts=[(b"x", b"y")]))
        raise ValueError("rolled back")

    try:
        start = time.monotonic()
        for _ in range(20):
            with pytest.raises(ValueError):
                store._atomic(fail)
        assert time.monotonic() - start < 10
    finally:
        stop.set()
        for thread in readers:
            thread.join()
        snap.close()
    assert store.get(b"x") is None


# -- a full disk ------------------------------------------------------------------------------
_FILL_UNTIL_FULL = """
import os, resource, signal, sys
sys.path.insert(0, sys.argv[2])
from kvstore.backends.lmdb import LMDBStore
from kvstore.errors import StoreFull
from tests.storekit import SimpleMutations, as_nobody

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
store = LMDBStore(sys.argv[1], sync=False)
limit = 1 << 20
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
for i in range(100_000):
    key = b"k%06d" % i
    try:
        store.put(key, key * 300)
    except StoreFull:
        break
    print(key.decode(), flush=True)
else:
    print("NEVER-FULL", flush=True)
for attempt in (lambda: store.put(b"x", b"x" * 50_000),
                lambda: store.apply(SimpleMutations(puts=[(b"y%d" % i, b"y" * 3000)
                                                          for i in range(100)])),
                lambda: store._atomic(lambda b: b.meta_put(b"m", b"m" * 20_000))):
    try:
        attempt()
        print("NOT-FULL", flush=True)
    except StoreFull:
        pass
assert store.get(b"k000000") == b"k000000" * 300
print("DONE", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_full_disk_raises_store_full_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    proc = subprocess.run(
        [sys.executable, "-c", _FILL_UNTIL_FULL, str(path), str(ROOT)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    lines = proc.stdout.split()
    assert proc.returncode == 0, proc.stderr
    assert lines[-1] == "DONE" and "NEVER-FULL" not in lines and "NOT-FULL" not in lines
    written = [line.encode() for line in lines[:-1]]
    assert len(written) > 10
    with LMDBStore(path, readonly=True) as store:
        for key in written:
            assert store.get(key) == key * 300
        assert store.get(b"x") is None and store.get(b"y0") is None
    with LMDBStore(path) as store:  # writable again once there is room
        store.put(b"after", b"ok")
        assert store.get(b"after") == b"ok"


# -- creating a store on a full filesystem (issue 9, defect 2) ----------------------------------
_TMPFS_BYTES = 1 << 20


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for this test (and always unmounted after), filled by a file.

    The test shrinks the filler to leave ``free`` bytes via :func:`_leave_free`.
    """
    if sys.platform != "linux":
        pytest.skip("mounting a tmpfs needs Linux")
    mount = tmp_path / "full"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={_TMPFS_BYTES}", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {proc.stderr.strip()}")
    try:
        _leave_free(mount, 0)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        if os.path.ismount(mount):
            subprocess.run(["umount", "-l", str(mount)], check=False)


def _leave_free(mount: Path, free: int) -> None:
    """Make the filler file take all of ``mount``'s space but ``free`` bytes."""
    fd = os.open(mount / "filler", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, 0)
        st = os.statvfs(mount)
        room = st.f_bavail * st.f_frsize
        if room > free:
            os.posix_fallocate(fd, 0, room - free)
    finally:
        os.close(fd)


_OPEN_ON_FULL = """
import sys
sys.path.insert(0, sys.argv[2])
import kvstore
try:
    db = kvstore.open(sys.argv[1])
except kvstore.StoreFull as exc:
    print("FULL-AT-OPEN", exc, flush=True)
    raise SystemExit(0)
with db.transaction() as tx:
    before = sum(1 for _ in tx.get_range(b"k", b"l"))
written = 0
try:
    for i in range(before, before + 10_000):
        with db.transaction() as tx:
            tx.put(b"k%06d" % i, b"v" * 2000)
        written += 1
    print("NEVER-FULL", flush=True)
except kvstore.StoreFull:
    print("FULL-AT-WRITE", written, flush=True)
db.close()
with kvstore.open(sys.argv[1], readonly=True) as db, db.transaction() as tx:
    assert sum(1 for _ in tx.get_range(b"k", b"l")) == before + written
print("DONE", flush=True)
"""


def _run_open_on_full(path: Path) -> subprocess.CompletedProcess[str]:
    """Open (and fill) a store in a child, so a SIGBUS is a return code, not a dead pytest."""
    return subprocess.run(
        [sys.executable, "-c", _OPEN_ON_FULL, str(path), str(ROOT)],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize("free", [0, 16 << 10, 70 << 10, 90 << 10, 200 << 10])
def test_creating_a_store_on_a_full_filesystem_raises_store_full(
    full_tmpfs: Path, free: int
) -> None:
    _leave_free(full_tmpfs, free)
    path = full_tmpfs / "db"
    proc = _run_open_on_full(path)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)  # -7 would be SIGBUS
    out = proc.stdout.split()
    if out[0] == "FULL-AT-OPEN":
        assert not path.exists(), list(path.iterdir())  # nothing left behind, not even the dir
    else:
        assert out[0] == "FULL-AT-WRITE" and out[-1] == "DONE", proc.stdout
        names = {p.name for p in path.iterdir()} - {"kvstore-checked"}  # the stamp may fit
        assert sorted(names) == ["data.mdb", "kvstore-store", "lock.mdb"]
    if free == 0:
        assert out[0] == "FULL-AT-OPEN" and "full" in proc.stdout


def test_creating_in_an_existing_directory_on_a_full_filesystem_keeps_it(
    full_tmpfs: Path,
) -> None:
    _leave_free(full_tmpfs, 64 << 10)
    path = full_tmpfs / "db"
    path.mkdir()
    (path / "notes").write_bytes(b"mine")
    _leave_free(full_tmpfs, 0)
    proc = _run_open_on_full(path)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.startswith("FULL-AT-OPEN")
    assert sorted(p.name for p in path.iterdir()) == ["notes"]


def test_a_store_on_a_filesystem_that_fills_up_reopens(full_tmpfs: Path) -> None:
    _leave_free(full_tmpfs, 400 << 10)
    path = full_tmpfs / "db"
    first = _run_open_on_full(path)
    assert first.returncode == 0, (first.returncode, first.stderr)
    assert first.stdout.startswith("FULL-AT-WRITE") and "DONE" in first.stdout
    again = _run_open_on_full(path)  # reopening the existing store on the full disk
    assert again.returncode == 0, (again.returncode, again.stderr)
    assert again.stdout.startswith("FULL-AT-WRITE")


def test_the_lock_file_is_preallocated_to_the_size_lmdb_uses(tmp_path: Path) -> None:
    with LMDBStore(tmp_path / "db") as store:
        assert store._shared.env.max_readers() == _MAX_READERS
    lock = (tmp_path / "db" / "lock.mdb").stat()
    assert lock.st_size == _LOCK_FILE_SIZE
    assert lock.st_blocks * 512 >= _LOCK_FILE_SIZE  # real blocks, not a hole


# -- several processes ------------------------------------------------------------------------
def _write_then_read_other(path: str, me: bytes, other: bytes, n: int, barrier: Any) -> None:
    with LMDBStore(path, map_size=64 * 1024, sync=False) as store:
        for i in range(n):
            store.put(b"%s-%04d" % (me, i), me * 500)  # grows the map: the other must adopt it
        barrier.wait(timeout=60)
        missing = [i for i in range(n) if store.get(b"%s-%04d" % (other, i)) != other * 500]
        with store.snapshot() as snap:
            count = sum(1 for _ in snap.get_range(other, other + b"\xff"))
    if missing or count != n:
        raise SystemExit(f"{me!r} misses {len(missing)} keys of {other!r}, counted {count}")


@pytest.mark.slow
def test_two_processes_see_each_others_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    LMDBStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    n = 400
    procs = [ctx.Process(target=_write_then_read_other, args=(path, a, b, n, barrier))
             for a, b in ((b"p1", b"p2"), (b"p2", b"p1"))]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=90)
    assert [proc.exitcode for proc in procs] == [0, 0]
    with LMDBStore(path) as store:
        assert sum(1 for _ in store.get_range()) == 2 * n


def _grow(path: str, stop: Any) -> None:
    """Commit 64 KiB values until ``stop`` is set: nearly every commit extends the file."""
    with LMDBStore(path, sync=False) as store:
        i = 0
        while not stop.is_set():
            store.put(i.to_bytes(8, "big"), os.urandom(65536))
            i += 1


def test_the_open_check_never_calls_a_file_growing_in_another_process_short(
    tmp_path: Path,
) -> None:
    """The check run at open reads the meta pages and then the file's size: a commit in
    another process between the two (more pages, then the meta page naming them) must not
    look like a truncated file."""
    path = str(tmp_path / "db")
    LMDBStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    writer = ctx.Process(target=_grow, args=(path, stop))
    writer.start()
    try:
        deadline = time.monotonic() + 3
        checks = 0
        while time.monotonic() < deadline:
            _check_data_file(path)
            checks += 1
    finally:
        stop.set()
        writer.join(60)
    assert writer.exitcode == 0 and checks > 100


def _grow_map(path: str, megabytes: int) -> None:
    with LMDBStore(path, sync=False) as store:
        for i in range(megabytes * 16):
            store.put(i.to_bytes(8, "big"), os.urandom(65536))


def test_the_open_check_adopts_a_map_another_process_grew_meanwhile(tmp_path: Path) -> None:
    """Between LMDB's open and the structure check's first read, another process may grow
    the map past the size this one opened with (MDB_MAP_RESIZED): the check adopts it."""
    path = str(tmp_path / "db")
    LMDBStore(path).close()
    env = _open_lmdb(path, 64 * 1024, sync=False, readonly=False)
    ctx = multiprocessing.get_context("spawn")
    grower = ctx.Process(target=_grow_map, args=(path, 8))
    grower.start()
    grower.join(60)
    assert grower.exitcode == 0
    try:
        _check_structure(path, env)
        with env.begin() as txn:
            assert txn.stat(env.open_db(b"data", txn=txn))["entries"] == 128
    finally:
        env.close()


def test_same_path_twice_in_one_process_shares_the_environment(tmp_path: Path) -> None:
    one = LMDBStore(tmp_path / "db", sync=False)
    two = LMDBStore(str(tmp_path / "db"))
    one.put(b"k", b"1")
    assert two.get(b"k") == b"1"
    snap = two.snapshot()
    one.close()
    two.put(b"k", b"2")
    assert two.get(b"k") == b"2" and snap.get(b"k") == b"1"
    with pytest.raises(StoreClosed):
        one.get(b"k")
    two.close()
    with pytest.raises(StoreClosed):
        snap.get(b"k")


# -- read-only use and permissions ------------------------------------------------------------
def test_readonly_store_reads_and_refuses_every_mutation(tmp_path: Path) -> None:
    with LMDBStore(tmp_path / "db") as store:
        store.put(b"k", b"v")
    with LMDBStore(tmp_path / "db", readonly=True) as ro:
        assert ro.readonly
        assert ro.get(b"k") == b"v"
        with ro.snapshot() as snap:
            assert list(snap.get_range()) == [(b"k", b"v")]
        for mutate in (lambda: ro.put(b"k", b"w"), lambda: ro.remove(b"k"),
                       lambda: ro.remove_range(), lambda: ro.adjust_counter(b"k", 1),
                       lambda: ro.apply(SimpleMutations()),
                       lambda: ro._atomic(lambda batch: None)):
            with pytest.raises(ReadOnlyError):
                mutate()
        with ro.get_range() as it:
            next(it)
            with pytest.raises(ReadOnlyError):
                it.remove()
        with pytest.raises(TypeError):  # arguments are still checked first
            ro.put("k", b"v")  # type: ignore[arg-type]
        assert ro.get(b"k") == b"v"


def test_readonly_open_of_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="readonly"):
        LMDBStore(tmp_path / "missing", readonly=True)
    assert not (tmp_path / "missing").exists()


def _open_as_nobody(path: str, readonly: bool) -> bool:
    """Whether opening ``path`` without root rights raises a PermissionError naming it."""

    def attempt() -> bool:
        try:
            LMDBStore(path, readonly=readonly)
        except PermissionError as exc:
            return path in str(exc)
        raise AssertionError("opened")

    return as_nobody(attempt) == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
@pytest.mark.parametrize("readonly", [False, True])
def test_opening_without_write_permission_raises_permission_error(readonly: bool) -> None:
    top = tempfile.mkdtemp()
    path = os.path.join(top, "db")
    try:
        LMDBStore(path).close()
        # Reading needs no write permission (issue 9, defect 4): a read-only open of files it
        # may not write goes without LMDB's lock file.  Writing does need it.
        if os.geteuid() == 0:
            os.chmod(top, 0o755)
            assert _open_as_nobody(path, readonly) is not readonly  # read-only opens succeed
        else:
            for name in ("data.mdb", "lock.mdb"):
                os.chmod(os.path.join(path, name), 0o444)
            os.chmod(path, 0o555)
            if readonly:
                LMDBStore(path, readonly=True).close()
            else:
                with pytest.raises(PermissionError, match="db"):
                    LMDBStore(path, readonly=readonly)
    finally:
        os.chmod(path, 0o755)
        for name in ("data.mdb", "lock.mdb"):
            os.chmod(os.path.join(path, name), 0o644)
        shutil.rmtree(top)


# -- bad paths and arguments ------------------------------------------------------------------
def test_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="file"):
        LMDBStore(tmp_path / "file")
    with pytest.raises(NotADirectoryError, match="file"):
        LMDBStore(tmp_path / "file" / "db")


def test_missing_store_with_create_false(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        LMDBStore(tmp_path / "missing", create=False)
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(FileNotFoundError, match="emptydir"):
        LMDBStore(tmp_path / "emptydir", create=False)
    assert not (tmp_path / "emptydir" / "data.mdb").exists()


def test_directory_holding_something_else_is_corrupt_data(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "data.mdb").write_bytes(b"not an lmdb file" * 1000)
    with pytest.raises(CorruptData, match="junk"):
        LMDBStore(tmp_path / "junk")


def test_lmdb_environment_without_kvstore_layout(tmp_path: Path) -> None:
    lmdb.open(str(tmp_path / "plain")).close()
    with pytest.raises(CorruptData, match="plain"):
        LMDBStore(tmp_path / "plain", readonly=True)


@pytest.mark.parametrize("bad", [42, None])
def test_path_must_be_path_like(bad: Any) -> None:
    with pytest.raises(TypeError, match="path"):
        LMDBStore(bad)


@pytest.mark.parametrize("bad", [0, -1, 2**64, 2**80])
def test_map_size_must_be_a_positive_int(tmp_path: Path, bad: Any) -> None:
    # 2**80 used to escape as py-lmdb's OverflowError (issue 9, defect 6).
    with pytest.raises(ValueError, match="map_size"):
        LMDBStore(tmp_path / "db", map_size=bad)
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize("bad", [1.5, "big", True])
def test_map_size_of_another_type_is_a_type_error(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(TypeError, match="map_size"):
        LMDBStore(tmp_path / "db", map_size=bad)


@pytest.mark.parametrize("arg", ["sync", "readonly", "create"])
@pytest.mark.parametrize("bad", ["no", 1, None])
def test_lmdb_flags_must_be_bools(tmp_path: Path, arg: str, bad: Any) -> None:
    with pytest.raises(TypeError, match=arg):
        LMDBStore(tmp_path / "db", **{arg: bad})


# -- closing ----------------------------------------------------------------------------------
def test_close_is_idempotent_and_later_use_raises(tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "db", sync=False)
    store.put(b"k", b"v")
    store.close()
    store.close()
    for use in (lambda: store.get(b"k"), lambda: store.get(b""), lambda: store.put(b"k", b"v"),
                lambda: store.get_range(), lambda: store.get_at_most(None),
                lambda: store.snapshot(), lambda: store.apply(SimpleMutations()),
                lambda: store._atomic(lambda batch: None), lambda: store.meta_get(b"m"),
                lambda: store.sync()):
        with pytest.raises(StoreClosed):
            use()
    assert "closed" in repr(store)


def test_context_manager_closes_and_data_persists(tmp_path: Path) -> None:
    with LMDBStore(tmp_path / "db") as store:
        store.put(b"k", b"v")
    with pytest.raises(StoreClosed):
        store.get(b"k")
    with LMDBStore(tmp_path / "db", create=False) as again:
        assert again.get(b"k") == b"v"
        assert again.size_bytes() > 0


def test_sync_false_store_flushes_on_request(tmp_path: Path) -> None:
    with LMDBStore(tmp_path / "db", sync=False) as store:
        store.put(b"k", b"v")
        store.apply(SimpleMutations(puts=[(b"j", b"w")]), sync=True)
        store.sync()
        assert store._shared.nosync


def test_too_many_open_snapshots_is_a_kvstore_error(store: LMDBStore) -> None:
    snapshots = []
    try:
        with pytest.raises(KVError, match="snapshots") as info:
            for _ in range(2000):
                snapshots.append(store.snapshot())
        assert not isinstance(info.value, lmdb.Error)
        assert len(snapshots) > 900
    finally:
        for snap in snapshots:
            snap.close()
    with store.snapshot() as snap:  # slots are free again
        assert snap.get(b"k") is None


def test_sync_is_a_no_op_on_a_readonly_store(tmp_path: Path) -> None:
    LMDBStore(tmp_path / "db").close()
    with LMDBStore(tmp_path / "db", readonly=True) as ro:
        ro.sync()


def test_unclosed_store_is_released_when_collected(tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "db", sync=False)
    store.put(b"k", b"v")
    shared = store._shared
    del store
    import gc

    gc.collect()
    assert shared.refs == 0
    with LMDBStore(tmp_path / "db") as again:
        assert again.get(b"k") == b"v"


def test_reads_are_cheap_enough_to_use_in_loops(store: LMDBStore) -> None:
    """A smoke check that get() takes the fast path (no lock, no Python-level txn setup)."""
    _fill(store, [b"%05d" % i for i in range(1000)])
    start = time.perf_counter()
    for i in range(1000):
        store.get(b"%05d" % i)
    assert time.perf_counter() - start < 1.0


# -- a damaged data file (issue 9, defect 1) ------------------------------------------------
_OPEN_DAMAGED = """
import sys
sys.path.insert(0, sys.argv[2])
import kvstore
from kvstore.errors import CorruptData
try:
    kvstore.open(sys.argv[1]).close()
except CorruptData as exc:
    print("CORRUPT", exc)
else:
    print("OPENED")
"""


def _open_in_child(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _OPEN_DAMAGED, str(path), str(ROOT)],
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize("cut", ["8k", "12k", "64k", "half", "zero", "missing"])
def test_truncated_data_file_raises_corrupt_data_not_sigbus(tmp_path: Path, cut: str) -> None:
    path = tmp_path / "db"
    with LMDBStore(path, sync=False) as store:
        store.apply(_big_puts(400))  # about 450 KiB of pages
    data = path / "data.mdb"
    full = data.stat().st_size
    assert full > 128 * 1024
    if cut == "missing":
        data.unlink()
    else:
        sizes = {"8k": 8192, "12k": 12288, "64k": 65536, "half": full // 2, "zero": 0}
        os.truncate(data, sizes[cut])
    proc = _open_in_child(path)
    # A negative return code is death by a signal (SIGBUS is -7).
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.startswith("CORRUPT"), proc.stdout
    assert "data.mdb" in proc.stdout and str(path) in proc.stdout


def test_undamaged_store_still_opens_and_a_new_one_is_marked(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LMDBStore(path, sync=False) as store:
        store.put(b"k", b"v")
    proc = _open_in_child(path)
    assert (proc.returncode, proc.stdout.strip()) == (0, "OPENED"), proc.stderr
    assert (path / "kvstore-store").exists()
    with LMDBStore(path, readonly=True) as store:
        assert store.get(b"k") == b"v"


# -- environments kvstore did not make (issue 9, defect 4) -------------------------------------
def _plain_environment(path: Path) -> None:
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"user", b"data")
    env.close()


def _fingerprint(path: Path) -> tuple[bytes, int]:
    data = path / "data.mdb"
    return data.read_bytes(), data.stat().st_mtime_ns


@pytest.mark.parametrize("readonly", [False, True])
def test_a_plain_lmdb_environment_is_refused_and_not_written(
    tmp_path: Path, readonly: bool
) -> None:
    import kvstore

    path = tmp_path / "plain"
    _plain_environment(path)
    before = _fingerprint(path)
    with pytest.raises(NotAKVStore, match="kvstore") as info:
        LMDBStore(path, readonly=readonly)
    assert isinstance(info.value, KVError)
    with pytest.raises(NotAKVStore):
        kvstore.open(path, readonly=readonly)
    assert _fingerprint(path) == before


def test_adopt_adds_a_store_beside_a_plain_environments_data(tmp_path: Path) -> None:
    path = tmp_path / "plain"
    _plain_environment(path)
    with LMDBStore(path, adopt=True) as store:
        assert list(store.get_range()) == []
        store.put(b"k", b"v")
    with LMDBStore(path) as store:  # adopted once: now it is a kvstore store
        assert list(store.get_range()) == [(b"k", b"v")]
    env = lmdb.open(str(path), max_dbs=8)
    try:
        with env.begin() as txn:
            assert txn.get(b"user") == b"data"
    finally:
        env.close()


def test_an_empty_environment_is_initialized(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    lmdb.open(str(path)).close()
    with LMDBStore(path) as store:
        store.put(b"k", b"v")
        assert store.get(b"k") == b"v"


def test_a_bounded_scan_copies_no_values_past_its_bound(tmp_path: Path) -> None:
    """A scan stops at its bound: reading one 64 KiB value does not copy the next 15 too."""
    import tracemalloc

    from kvstore import MutableView

    with LMDBStore(tmp_path / "db", sync=False) as store:
        view = MutableView(store)
        for i in range(40):
            view.put(b"page%03d" % i, bytes([i]) * 65536)
        store.apply(view.writes)
        for reverse in (False, True):
            tracemalloc.start()
            try:
                got = list(store.get_range(b"page010", b"page011", reverse=reverse))
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert got == [(b"page010", bytes([10]) * 65536)]
            assert peak < 4 * 65536, (reverse, peak)  # was about 16 values, 1 MiB


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=6), max_size=20),
    st.lists(st.binary(min_size=0, max_size=6), min_size=2, max_size=40),
)
def test_sorted_batches_land_whether_or_not_they_follow_the_last_key(
    existing: list[bytes], batch: list[bytes]
) -> None:
    """Batches after the last key are appended (MDB_APPEND); any other batch is searched in.

    Both must leave exactly the union: an append of keys that do not follow the last one
    would fail or misplace them.
    """
    from kvstore.mutations import Writes

    with tempfile.TemporaryDirectory() as d, LMDBStore(d, sync=False) as store:
        _fill(store, existing)
        writes = Writes(puts={k: b"new" + k for k in batch})
        store.apply(writes)
        expected = {k: b"v" + k[:8] for k in existing} | {k: b"new" + k for k in batch}
        with store.get_range() as it:
            assert dict(it) == expected
        with store.get_range() as it:
            assert [k for k, _ in it] == sorted(expected)


def test_snapshots_dropped_unclosed_do_not_pile_up(store: LMDBStore) -> None:
    """The registry of open snapshots holds them weakly and sweeps the dead references."""
    for _ in range(1_000):
        store.snapshot()  # dropped without close(): its reader is freed with it
    kept = [store.snapshot() for _ in range(3)]
    registry = store._shared.snapshots
    assert len(registry) == 3
    assert len(registry._refs) < 200
    store.close()
    assert all(snap._closed for snap in kept)
