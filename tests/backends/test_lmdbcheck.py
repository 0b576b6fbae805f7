"""The page walk before LMDB reads a file: damage is ``CorruptData``, never an abort; sound
files always pass, also while other processes commit; the stamp skips only unchanged files."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvstore
from kvstore import MutableView
from kvstore.backends.lmdb import LMDBStore
from kvstore.backends.lmdbcheck import STAMP, check_pages, stamp, vouched
from kvstore.errors import CorruptData

ROOT = Path(__file__).resolve().parents[2]
PAGE = 4096
P_BRANCH, P_LEAF, P_OVERFLOW = 0x01, 0x02, 0x04

# Opens the store, reads every pair both ways, prints the outcome; dies only by a signal.
_READ_ALL = """
import sys
sys.path.insert(0, sys.argv[2])
import kvstore
try:
    with kvstore.open(sys.argv[1], create=False) as db, db.transaction(read_only=True) as tx:
        n = len(list(tx.get_range()))
        list(tx.get_range(reverse=True))
except kvstore.CorruptData as exc:
    print("CORRUPT", exc)
else:
    print("READ", n)
"""


def _read_in_child(path: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-c", _READ_ALL, str(path), str(ROOT)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr[-2000:]


def _store(path: Path, n: int = 3000) -> None:
    """A store with a branch level, many leaves and overflow runs (values over a page).

    Compacted, so that every page in the file is in a tree (no free pages whose stale
    headers would look like live ones to :func:`_pages`).
    """
    source = path.with_name(path.name + "-source")
    with kvstore.open(source) as db, db.transaction() as tx:
        for i in range(n):
            tx.put(b"key/%06d" % i, b"v%d" % i * (1 + i % 9))
        for i in range(6):
            tx.put(b"big/%d" % i, bytes([i + 1]) * (3 * PAGE))
    with LMDBStore(source) as store:
        store.backup(path, compact=True)
    with LMDBStore(path):
        pass  # a writer's close stamps the copy


def _pages(data: Path) -> dict[int, list[int]]:
    """Page numbers by the kind their header claims (branch, leaf, overflow head)."""
    raw = data.read_bytes()
    kinds: dict[int, list[int]] = {P_BRANCH: [], P_LEAF: [], P_OVERFLOW: []}
    for pgno in range(2, len(raw) // PAGE):
        number, _pad, flags = struct.unpack_from("=QHH", raw, pgno * PAGE)
        if number == pgno and flags & 0x07 in kinds:
            kinds[flags & 0x07].append(pgno)
    return kinds


@pytest.mark.parametrize("kind", [P_BRANCH, P_LEAF, P_OVERFLOW])
@pytest.mark.parametrize("damage", ["zero", "ones", "flags", "node-size"])
def test_a_damaged_tree_page_is_corrupt_data_not_an_abort(
    tmp_path: Path, kind: int, damage: str
) -> None:
    path = tmp_path / "db"
    _store(path)
    data = path / "data.mdb"
    pages = _pages(data)[kind]
    assert pages, f"the store has no page of kind {kind:#x}"
    pgno = pages[len(pages) // 2]
    with open(data, "r+b") as f:
        f.seek(pgno * PAGE)
        page = bytearray(f.read(PAGE))
        if damage == "zero":
            page[:] = bytes(PAGE)
        elif damage == "ones":
            page[:] = b"\xff" * PAGE
        elif damage == "flags":
            page[10] = P_LEAF if kind != P_LEAF else P_BRANCH
        else:  # the first node's size (or child page) gets its high half set
            first = struct.unpack_from("=H", page, 16)[0] if kind != P_OVERFLOW else 16
            page[first + 2 : first + 4] = b"\x7f\x7f"
        f.seek(pgno * PAGE)
        f.write(page)
    code, out = _read_in_child(path)
    assert code == 0, f"died by signal {-code}: {out}"
    if damage == "node-size" and kind == P_OVERFLOW:
        assert out.startswith(("CORRUPT", "READ")), out  # value bytes: may read back altered
    else:
        assert out.startswith("CORRUPT"), out
        assert "data.mdb" in out and f"page {pgno}" in out


def test_every_single_page_zeroed_in_turn_never_kills_the_reader(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    _store(reference, n=800)
    raw = (reference / "data.mdb").read_bytes()
    case = tmp_path / "case"
    outcomes = set()
    for pgno in range(2, len(raw) // PAGE):
        case.mkdir(exist_ok=True)
        for name in ("data.mdb", "kvstore-store"):
            (case / name).write_bytes((reference / name).read_bytes())
        with open(case / "data.mdb", "r+b") as f:
            f.seek(pgno * PAGE)
            f.write(bytes(PAGE))
        code, out = _read_in_child(case)
        assert code == 0, f"page {pgno}: died by signal {-code}: {out}"
        outcomes.add(out.split()[0])
        for name in os.listdir(case):
            os.unlink(case / name)
    assert "CORRUPT" in outcomes


def _check(path: Path) -> bool:
    env = lmdb.open(str(path), max_dbs=16, readonly=True)
    try:
        with env.begin() as txn:
            return check_pages(str(path / "data.mdb"), env.stat()["psize"], txn.id())
    finally:
        env.close()


@settings(max_examples=25, deadline=None)
@given(
    rounds=st.lists(
        st.tuples(
            st.lists(st.tuples(st.integers(0, 400), st.integers(0, 9000)), max_size=60),
            st.lists(st.integers(0, 400), max_size=30),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_sound_stores_always_pass(tmp_path_factory: pytest.TempPathFactory, rounds: list) -> None:
    path = tmp_path_factory.mktemp("sound")
    with LMDBStore(path, sync=False) as store:
        for puts, removes in rounds:
            view = MutableView(store)
            for key, size in puts:
                view.put(b"%05d" % key, b"x" * size)
            for key in removes:
                view.remove(b"%05d" % key)
            store.apply(view.writes)
    assert _check(path)


def test_foreign_databases_with_duplicates_pass_when_adopted(tmp_path: Path) -> None:
    env = lmdb.open(str(tmp_path), max_dbs=8, map_size=1 << 28)
    dups = env.open_db(b"dups", dupsort=True)
    fixed = env.open_db(b"fixed", dupsort=True, dupfixed=True)
    ints = env.open_db(b"ints", integerkey=True)
    with env.begin(write=True) as txn:
        for i in range(3000):
            txn.put(b"k%d" % (i % 40), b"dup-%06d" % i, db=dups)
            txn.put(b"k%d" % (i % 7), struct.pack(">Q", i), db=fixed)
            txn.put(struct.pack("=Q", i), b"y" * (i % 50 * 100), db=ints)
    env.close()
    assert _check(tmp_path)
    with LMDBStore(tmp_path, adopt=True) as store:
        store.put(b"mine", b"1")
    assert _check(tmp_path)


_WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
import kvstore
with kvstore.open(sys.argv[1]) as db:
    print("ready", flush=True)
    end = time.monotonic() + float(sys.argv[3])
    i = 0
    while time.monotonic() < end:
        with db.transaction() as tx:
            tx.remove_range(b"k%04d" % (i % 50), b"k%04d" % (i % 50 + 20))
            for j in range(200):
                tx.put(b"k%04d/%d" % ((i + j) % 1000, j), b"v" * (j * 37 % 5000))
        i += 1
"""


def test_commits_in_another_process_never_look_like_damage(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _store(path, n=500)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(ROOT), "6"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        opens = 0
        end = time.monotonic() + 5
        while time.monotonic() < end:
            (path / STAMP).unlink(missing_ok=True)  # force the walk every time
            with LMDBStore(path, readonly=opens % 2 == 0) as store:
                store.get(b"key/000001")
            opens += 1
    finally:
        assert writer.wait(timeout=60) == 0
    assert opens >= 5


def test_a_store_kvstore_closed_is_not_walked_again_but_a_changed_one_is(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _store(path, n=500)
    data = path / "data.mdb"
    env = lmdb.open(str(path), max_dbs=16, readonly=True)
    with env.begin() as txn:
        txnid = txn.id()
    env.close()
    assert vouched(str(path), stamp(str(data), txnid))  # stamped when the writer closed
    leaf = _pages(data)[P_LEAF][0]
    with open(data, "r+b") as f:  # damage from outside: the modification time moves
        f.seek(leaf * PAGE)
        f.write(bytes(PAGE))
    assert not vouched(str(path), stamp(str(data), txnid))
    with pytest.raises(CorruptData, match=f"page {leaf}"):
        LMDBStore(path)


def test_a_sound_walk_stamps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _store(path, n=200)
    assert (path / STAMP).exists()
    os.unlink(path / STAMP)
    with LMDBStore(path, readonly=True):
        pass  # a read-only open walks but writes nothing, not even the stamp
    assert not (path / STAMP).exists()
    store = LMDBStore(path)  # a writer's sound walk stamps the file again
    assert (path / STAMP).exists()
    store.close()
