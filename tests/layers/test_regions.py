"""Memory regions (SPEC §6a): the service's usage scenarios, every error code, the schema."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import struct
import threading
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import kvstore
from kvstore import Database
from kvstore.layers import regions
from kvstore.layers.regions import (
    PAGE_SIZE,
    AsyncRegionClient,
    RegionClient,
    RegionDeadlineExceeded,
    RegionError,
    RegionExists,
    RegionInfo,
    RegionNotFound,
    RegionOutOfRange,
    RegionPermissionDenied,
    RegionResourceExhausted,
    grant,
    revoke,
    set_quota,
)


@pytest.fixture
def mem(db: Database) -> RegionClient:
    return RegionClient(db)


# --- exports and errors ------------------------------------------------------------------


def test_exports_and_error_codes() -> None:
    assert kvstore.RegionClient is RegionClient
    assert kvstore.AsyncRegionClient is AsyncRegionClient
    assert kvstore.RegionInfo is RegionInfo
    assert kvstore.RegionError is RegionError
    assert issubclass(RegionError, kvstore.KVError)
    codes = {
        RegionExists: "ALREADY_EXISTS",
        RegionNotFound: "NOT_FOUND",
        RegionOutOfRange: "OUT_OF_RANGE",
        RegionDeadlineExceeded: "DEADLINE_EXCEEDED",
        RegionResourceExhausted: "RESOURCE_EXHAUSTED",
        RegionPermissionDenied: "PERMISSION_DENIED",
    }
    for cls, code in codes.items():
        assert issubclass(cls, RegionError)
        assert cls.code == code
        assert str(cls("x")).startswith(code)


# --- the basic operations ----------------------------------------------------------------


def test_allocate_write_read_describe(mem: RegionClient) -> None:
    info = mem.allocate_memory("ns", "buf", 100)
    assert (info.key, info.namespace, info.size, info.data_length) == ("buf", "ns", 100, 0)
    assert mem.read_memory("ns", "buf", 0, 100) == bytes(100)  # never written: zeros
    assert mem.write_memory("ns", "buf", 10, b"hello") == 5
    assert mem.read_memory("ns", "buf", 8, 9) == b"\0\0hello\0\0"
    d = mem.describe_memory("ns", "buf")
    assert (d.size, d.data_length) == (100, 15)
    assert d.created <= d.updated <= time.time()
    with pytest.raises(attrs_frozen_error()):
        d.size = 5  # type: ignore[misc]


def attrs_frozen_error() -> type[Exception]:
    import attrs

    return attrs.exceptions.FrozenInstanceError


def test_write_past_capacity_grows(mem: RegionClient) -> None:
    mem.allocate_memory("ns", "r", 4)
    mem.write_memory("ns", "r", 2, b"abcdef")
    d = mem.describe_memory("ns", "r")
    assert (d.size, d.data_length) == (8, 8)
    assert mem.read_memory("ns", "r", 0, 8) == b"\0\0abcdef"


def test_read_out_of_range(mem: RegionClient) -> None:
    mem.allocate_memory("ns", "r", 10)
    assert mem.read_memory("ns", "r", 10, 0) == b""
    with pytest.raises(RegionOutOfRange):
        mem.read_memory("ns", "r", 5, 6)
    with pytest.raises(RegionOutOfRange):
        mem.read_memory("ns", "r", 11, 0)


def test_resize_keeps_and_truncates(mem: RegionClient) -> None:
    mem.allocate_memory("ns", "r", 10)
    mem.write_memory("ns", "r", 0, b"0123456789")
    info = mem.resize_memory("ns", "r", 2 * PAGE_SIZE + 7)
    assert (info.size, info.data_length) == (2 * PAGE_SIZE + 7, 10)
    assert mem.read_memory("ns", "r", 0, 12) == b"0123456789\0\0"
    info = mem.resize_memory("ns", "r", 4)
    assert (info.size, info.data_length) == (4, 4)
    # Growing again after a shrink reads zeros where the cut bytes were.
    mem.resize_memory("ns", "r", 10)
    assert mem.read_memory("ns", "r", 0, 10) == b"0123" + bytes(6)
    assert mem.describe_memory("ns", "r").data_length == 4


def test_data_length_at_page_boundaries(mem: RegionClient) -> None:
    """data_length is where the last stored page ends, so page edges are where it can slip."""
    mem.allocate_memory("ns", "r", 0)
    mem.write_memory("ns", "r", 2 * PAGE_SIZE, b"")  # an empty write still sets the end
    assert mem.describe_memory("ns", "r").data_length == 2 * PAGE_SIZE
    assert mem.read_memory("ns", "r", 0, 2 * PAGE_SIZE) == bytes(2 * PAGE_SIZE)
    mem.write_memory("ns", "r", 0, b"x")  # a write below the end leaves it alone
    assert mem.describe_memory("ns", "r").data_length == 2 * PAGE_SIZE
    mem.write_memory("ns", "r", PAGE_SIZE - 1, b"ab")  # straddles the first page edge
    assert mem.describe_memory("ns", "r").data_length == 2 * PAGE_SIZE
    assert mem.read_memory("ns", "r", PAGE_SIZE - 1, 2) == b"ab"
    mem.resize_memory("ns", "r", PAGE_SIZE)  # a cut exactly at a page edge
    info = mem.describe_memory("ns", "r")
    assert (info.size, info.data_length) == (PAGE_SIZE, PAGE_SIZE)
    assert mem.read_memory("ns", "r", PAGE_SIZE - 1, 1) == b"a"
    mem.resize_memory("ns", "r", 3 * PAGE_SIZE)
    assert mem.describe_memory("ns", "r").data_length == PAGE_SIZE
    assert mem.read_memory("ns", "r", PAGE_SIZE, 1) == b"\0"


def test_shrink_across_pages_drops_storage(mem: RegionClient, db: Database) -> None:
    mem.allocate_memory("ns", "r", 0)
    data = os.urandom(3 * PAGE_SIZE + 100)
    mem.write_memory("ns", "r", 0, data)
    mem.resize_memory("ns", "r", PAGE_SIZE + 1)
    mem.resize_memory("ns", "r", len(data))
    assert mem.read_memory("ns", "r", 0, len(data)) == data[: PAGE_SIZE + 1] + bytes(
        len(data) - PAGE_SIZE - 1
    )
    with db.transaction(read_only=True) as tx:
        pages = regions._keys("ns", "r").page_range
        assert len(tx[pages.min_key : pages.max_key]) == 2


def test_free_and_not_found(mem: RegionClient, db: Database) -> None:
    mem.allocate_memory("ns", "r", PAGE_SIZE * 3)
    mem.write_memory("ns", "r", 0, os.urandom(PAGE_SIZE * 3))
    mem.free_memory("ns", "r")
    with db.transaction(read_only=True) as tx:
        assert tx[regions._ROOT.range().min_key : regions._ROOT.range().max_key] == []
    for call in (
        lambda: mem.free_memory("ns", "r"),
        lambda: mem.describe_memory("ns", "r"),
        lambda: mem.read_memory("ns", "r", 0, 0),
        lambda: mem.write_memory("ns", "r", 0, b"x"),
        lambda: mem.resize_memory("ns", "r", 5),
    ):
        with pytest.raises(RegionNotFound):
            call()
    # Nothing but allocate creates a region.
    assert mem.list_memory_regions("ns") == []
    mem.allocate_memory("ns", "r", 1)
    with pytest.raises(RegionExists):
        mem.allocate_memory("ns", "r", 1)


def test_list_with_prefix(mem: RegionClient) -> None:
    for k in ["b", "a/2", "a/1", "ab", "a", "é", "z"]:
        mem.allocate_memory("ns", k, 1)
    mem.allocate_memory("other", "a/3", 1)
    assert mem.list_memory_regions("ns") == sorted(["b", "a/2", "a/1", "ab", "a", "é", "z"])
    assert mem.list_memory_regions("ns", "a") == ["a", "a/1", "a/2", "ab"]
    assert mem.list_memory_regions("ns", "a/") == ["a/1", "a/2"]
    assert mem.list_memory_regions("ns", "q") == []
    assert mem.list_memory_regions("empty") == []


def test_sparse_terabyte_region(mem: RegionClient, db: Database) -> None:
    tib = 1 << 40
    mem.allocate_memory("ns", "huge", tib)
    mem.write_memory("ns", "huge", tib - 3, b"end")
    assert mem.read_memory("ns", "huge", tib - 5, 5) == b"\0\0end"
    assert mem.read_memory("ns", "huge", 12345, 4) == bytes(4)
    with db.transaction(read_only=True) as tx:
        pages = regions._keys("ns", "huge").page_range
        assert len(tx[pages.min_key : pages.max_key]) == 1
    mem.resize_memory("ns", "huge", 2 * tib)
    assert mem.describe_memory("ns", "huge").data_length == tib


# --- argument validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda m: m.allocate_memory("", "k", 1), ValueError, "namespace"),
        (lambda m: m.allocate_memory(b"ns", "k", 1), TypeError, "namespace"),
        (lambda m: m.allocate_memory("ns", "a\0b", 1), ValueError, "key"),
        (lambda m: m.allocate_memory("ns", "é" * 129, 1), ValueError, "key"),
        (lambda m: m.allocate_memory("ns", "k", -1), ValueError, "size"),
        (lambda m: m.allocate_memory("ns", "k", 1.0), TypeError, "size"),
        (lambda m: m.allocate_memory("ns", "k", True), TypeError, "size"),
        (lambda m: m.write_memory("ns", "k", -1, b""), ValueError, "offset"),
        (lambda m: m.write_memory("ns", "k", 0, "text"), TypeError, "data"),
        (lambda m: m.write_memory("ns", "k", 0, b"", timeout_ms=-1), ValueError, "timeout_ms"),
        (lambda m: m.write_memory("ns", "k", 0, b"", timeout_ms="1"), TypeError, "timeout_ms"),
        (lambda m: m.read_memory("ns", "k", 0, -2), ValueError, "length"),
        (lambda m: m.resize_memory("ns", "k", None), TypeError, "new_size"),
        (lambda m: m.list_memory_regions("ns", 5), TypeError, "prefix"),
        (lambda m: m.describe_memory("ns", "k", tx="tx"), TypeError, "tx"),
    ],
)
def test_bad_arguments_name_the_argument(
    mem: RegionClient, call: object, exc: type[Exception], name: str
) -> None:
    with pytest.raises(exc, match=name):
        call(mem)  # type: ignore[operator]


def test_names_at_the_limit_work(mem: RegionClient) -> None:
    key = "é" * 128  # 256 UTF-8 bytes
    mem.allocate_memory("n" * 256, key, 1)
    assert mem.list_memory_regions("n" * 256) == [key]


def test_bad_client_and_admin_arguments(db: Database) -> None:
    with pytest.raises(TypeError, match="db"):
        RegionClient("not a db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="credential"):
        RegionClient(db, credential=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="access"):
        grant(db, "ns", "c", access="admin")
    with pytest.raises(ValueError, match="max_bytes"):
        set_quota(db, "ns", -1)


# --- the service's usage scenarios -------------------------------------------------------

CHUNK = 64 * 1024


def test_upload_and_download_a_file_in_64k_chunks(mem: RegionClient, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(5 * 1024 * 1024 + 12345))
    size = src.stat().st_size
    mem.allocate_memory("files", "model.bin", size)
    with src.open("rb") as f:
        offset = 0
        while chunk := f.read(CHUNK):
            assert mem.write_memory("files", "model.bin", offset, chunk) == len(chunk)
            offset += len(chunk)
    dst = tmp_path / "copy.bin"
    with dst.open("wb") as f:
        for offset in range(0, size, CHUNK):
            f.write(mem.read_memory("files", "model.bin", offset, min(CHUNK, size - offset)))
    assert dst.read_bytes() == src.read_bytes()
    assert mem.describe_memory("files", "model.bin").data_length == size


def test_header_plus_payload(mem: RegionClient) -> None:
    mem.allocate_memory("ns", "msg", 16 + 1000)
    payload = os.urandom(1000)
    mem.write_memory("ns", "msg", 16, payload)
    mem.write_memory("ns", "msg", 0, struct.pack("!IIII", 1, 2, 3, len(payload)))
    header = struct.unpack("!IIII", mem.read_memory("ns", "msg", 0, 16))
    assert header == (1, 2, 3, 1000)
    assert mem.read_memory("ns", "msg", 16, header[3]) == payload


def test_gather_writes_are_correct_and_durable(tmp_path: Path) -> None:
    """64 durable writes at once under gather, then one by one: the same bytes either way.

    That gather is faster (group commit shares fsyncs) is benchmark row L1b's to check, not
    a timed unit test's.
    """
    with kvstore.open(tmp_path / "db", durability="sync") as db:
        client = AsyncRegionClient(db)
        chunks = [os.urandom(CHUNK) for _ in range(64)]

        async def main() -> None:
            await client.allocate_memory("ns", "par", 64 * CHUNK)
            await client.allocate_memory("ns", "seq", 64 * CHUNK)
            for i, c in enumerate(chunks):
                await client.write_memory("ns", "seq", i * CHUNK, c)
            written = await asyncio.gather(
                *(client.write_memory("ns", "par", i * CHUNK, c) for i, c in enumerate(chunks))
            )
            assert written == [CHUNK] * 64
            back = await asyncio.gather(
                *(client.read_memory("ns", "par", i * CHUNK, CHUNK) for i in range(64))
            )
            assert back == chunks
            assert await client.read_memory("ns", "seq", 0, 64 * CHUNK) == b"".join(chunks)

        asyncio.run(main())
        client.close()
    with kvstore.open(tmp_path / "db") as db:  # and durable: there after a reopen
        assert RegionClient(db).read_memory("ns", "par", 0, 64 * CHUNK) == b"".join(chunks)


def test_async_client_errors_and_every_method(db: Database) -> None:
    async def main() -> None:
        async with AsyncRegionClient(db) as c:
            info = await c.allocate_memory("ns", "k", 8)
            assert info.size == 8
            await c.write_memory("ns", "k", 0, b"abc")
            assert await c.read_memory("ns", "k", 0, 3) == b"abc"
            assert (await c.resize_memory("ns", "k", 2)).data_length == 2
            assert (await c.describe_memory("ns", "k")).size == 2
            assert await c.list_memory_regions("ns") == ["k"]
            await c.free_memory("ns", "k")
            with pytest.raises(RegionNotFound):
                await c.describe_memory("ns", "k")

    asyncio.run(main())


def test_concurrent_writers_of_one_page_all_succeed(db: Database) -> None:
    mem = RegionClient(db)
    mem.allocate_memory("ns", "p", 256)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(8):
                mem.write_memory("ns", "p", i * 32 + j * 4, bytes([i + 1]) * 4)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert mem.read_memory("ns", "p", 0, 256) == b"".join(bytes([i + 1]) * 32 for i in range(8))


# A circular buffer of 4-byte items: header (write_pos, read_pos, count, capacity).
HEADER = struct.Struct("!IIII")


def _push(mem: RegionClient, db: Database, item: bytes) -> None:
    def fn(tx: kvstore.Transaction) -> None:
        w, r, count, cap = HEADER.unpack(mem.read_memory("q", "ring", 0, 16, tx=tx))
        mem.write_memory("q", "ring", 16 + w * 4, item, tx=tx)
        mem.write_memory("q", "ring", 0, HEADER.pack((w + 1) % cap, r, count + 1, cap), tx=tx)

    db.run(fn, retries=1000)


def _ring_pusher(path: str, n: int, tag: int) -> None:
    with kvstore.open(path, durability="none") as db:
        mem = RegionClient(db)
        for i in range(n):
            _push(mem, db, struct.pack("!HH", tag, i))


def _make_ring(mem: RegionClient, capacity: int) -> None:
    mem.allocate_memory("q", "ring", 16 + 4 * capacity)
    mem.write_memory("q", "ring", 0, HEADER.pack(0, 0, 0, capacity))


def test_circular_buffer_two_threads_exact_count(db: Database) -> None:
    mem = RegionClient(db)
    _make_ring(mem, 1000)
    threads = [
        threading.Thread(
            target=lambda t=t: [_push(mem, db, struct.pack("!HH", t, i)) for i in range(200)]
        )
        for t in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w, _, count, _ = HEADER.unpack(mem.read_memory("q", "ring", 0, 16))
    assert (w, count) == (400, 400)
    items = [struct.unpack("!HH", mem.read_memory("q", "ring", 16 + 4 * i, 4)) for i in range(400)]
    for tag in (0, 1):  # each pusher's items all there, in its own order
        assert [i for t, i in items if t == tag] == list(range(200))


def test_circular_buffer_two_processes_exact_count(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    with kvstore.open(path, durability="none") as db:
        _make_ring(RegionClient(db), 1000)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_ring_pusher, args=(path, 150, t)) for t in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with kvstore.open(path, durability="none") as db:
        mem = RegionClient(db)
        w, _, count, _ = HEADER.unpack(mem.read_memory("q", "ring", 0, 16))
        assert (w, count) == (300, 300)
        items = [
            struct.unpack("!HH", mem.read_memory("q", "ring", 16 + 4 * i, 4)) for i in range(300)
        ]
        for tag in (0, 1):
            assert [i for t, i in items if t == tag] == list(range(150))


def test_tx_makes_several_operations_one(db: Database) -> None:
    mem = RegionClient(db)
    mem.allocate_memory("ns", "a", 4)
    with pytest.raises(RegionNotFound), db.transaction() as tx:
        mem.write_memory("ns", "a", 0, b"AAAA", tx=tx)
        mem.allocate_memory("ns", "b", 4, tx=tx)
        assert mem.list_memory_regions("ns", tx=tx) == ["a", "b"]
        mem.write_memory("ns", "missing", 0, b"x", tx=tx)
    assert mem.read_memory("ns", "a", 0, 4) == bytes(4)
    assert mem.list_memory_regions("ns") == ["a"]


def test_persistence_across_reopen(tmp_path: Path) -> None:
    data = os.urandom(PAGE_SIZE + 10)
    with kvstore.open(tmp_path / "db") as db:
        RegionClient(db).allocate_memory("ns", "r", 10)
        RegionClient(db).write_memory("ns", "r", 3, data)
    with kvstore.open(tmp_path / "db") as db:
        mem = RegionClient(db)
        assert mem.read_memory("ns", "r", 3, len(data)) == data
        assert mem.describe_memory("ns", "r").size == len(data) + 3


# --- deadlines ---------------------------------------------------------------------------


def test_deadline_exceeded_changes_nothing(mem: RegionClient) -> None:
    mem.allocate_memory("ns", "r", 10)
    big = os.urandom(4 * PAGE_SIZE + 3)
    with pytest.raises(RegionDeadlineExceeded):
        mem.write_memory("ns", "r", 1, big, timeout_ms=0)
    d = mem.describe_memory("ns", "r")
    assert (d.size, d.data_length) == (10, 0)
    assert mem.read_memory("ns", "r", 0, 10) == bytes(10)
    with pytest.raises(RegionDeadlineExceeded):
        mem.read_memory("ns", "r", 0, 10, timeout_ms=0)
    assert mem.write_memory("ns", "r", 0, b"ok", timeout_ms=10_000) == 2


# --- access control and quotas -----------------------------------------------------------


def test_namespace_open_until_first_grant(db: Database) -> None:
    anyone = RegionClient(db)
    anyone.allocate_memory("team", "r", 4)
    grant(db, "team", "s3cret", access="write")
    writer = RegionClient(db, credential="s3cret")
    reader_cred = b"\x01reader"
    grant(db, "team", reader_cred, access="read")
    reader = RegionClient(db, credential=reader_cred)
    wrong = RegionClient(db, credential="guess")

    writer.write_memory("team", "r", 0, b"data")
    assert reader.read_memory("team", "r", 0, 4) == b"data"
    assert reader.list_memory_regions("team") == ["r"]
    assert reader.describe_memory("team", "r").size == 4
    for c in (anyone, wrong):
        with pytest.raises(RegionPermissionDenied):
            c.read_memory("team", "r", 0, 4)
    with pytest.raises(RegionPermissionDenied):
        reader.write_memory("team", "r", 0, b"x")
    with pytest.raises(RegionPermissionDenied):
        reader.free_memory("team", "r")
    # Checked before existence: an outsider learns nothing about which regions exist.
    for key in ("r", "no-such-region"):
        with pytest.raises(RegionPermissionDenied):
            wrong.describe_memory("team", key)
    # Other namespaces stay open.
    wrong.allocate_memory("elsewhere", "r", 1)
    # Granting again replaces access; revoking every grant keeps the namespace closed.
    grant(db, "team", reader_cred, access="write")
    reader.write_memory("team", "r", 0, b"mine")
    revoke(db, "team", reader_cred)
    revoke(db, "team", "s3cret")
    for c in (reader, writer, anyone):
        with pytest.raises(RegionPermissionDenied):
            c.list_memory_regions("team")


def test_credentials_stored_only_as_salted_hashes(db: Database) -> None:
    grant(db, "a", "hunter2-credential", access="read")
    grant(db, "b", "hunter2-credential", access="read")
    with db.transaction(read_only=True) as tx:
        everything = b"".join(p.key + p.value for p in tx.get_range())
        grants = tx[regions._ROOT.range(("g",)).min_key : regions._ROOT.range(("g",)).max_key]
    assert b"hunter2-credential" not in everything
    assert len(grants) == 2
    digests = [regions._ROOT.unpack(p.key)[2] for p in grants]
    assert digests[0] != digests[1]  # one salt per namespace


def test_quota(db: Database) -> None:
    mem = RegionClient(db)
    mem.allocate_memory("ns", "a", 60)
    set_quota(db, "ns", 100)
    mem.allocate_memory("ns", "b", 40)  # exactly at the quota: allowed
    for call in (
        lambda: mem.allocate_memory("ns", "c", 1),
        lambda: mem.resize_memory("ns", "a", 61),
        lambda: mem.write_memory("ns", "b", 40, b"x"),
    ):
        with pytest.raises(RegionResourceExhausted):
            call()
    assert mem.list_memory_regions("ns") == ["a", "b"]
    assert mem.describe_memory("ns", "b").size == 40
    mem.resize_memory("ns", "a", 10)  # shrinking is always allowed
    mem.write_memory("ns", "b", 40, b"y" * 50)
    mem.allocate_memory("other", "big", 10**6)  # quotas are per namespace
    set_quota(db, "ns", None)
    mem.allocate_memory("ns", "c", 10**6)


# --- isolation ---------------------------------------------------------------------------


def test_crafted_names_never_reach_another_namespace(mem: RegionClient) -> None:
    mem.allocate_memory("a", "b", 8)
    mem.write_memory("a", "b", 0, b"secret!!")
    for ns in ["a\x01", "a\xff", "a/b", "\x02a", "ab", "A", "a\x00\xff"[:2].strip("\x00")]:
        if ns == "a":
            continue
        assert mem.list_memory_regions(ns) == []
        with pytest.raises(RegionNotFound):
            mem.read_memory(ns, "b", 0, 8)
    for key in ["b\x01", "b\xff", "", "b/"]:
        if key:
            with pytest.raises(RegionNotFound):
                mem.read_memory("a", key, 0, 1)
    mem.allocate_memory("a\x01", "b", 8)
    assert mem.read_memory("a\x01", "b", 0, 8) == bytes(8)
    assert mem.list_memory_regions("a") == ["b"]
    assert mem.list_memory_regions("a", "b") == ["b"]


# --- a model-based test ------------------------------------------------------------------


class RegionsModel(RuleBasedStateMachine):
    """Random operations against a dict of bytearrays."""

    def __init__(self) -> None:
        super().__init__()
        self.db = kvstore.open(None)
        self.mem = RegionClient(self.db)
        self.model: dict[str, bytearray] = {}
        self.lengths: dict[str, int] = {}

    keys = st.sampled_from(["a", "b", "c"])
    offsets = st.integers(0, 3 * PAGE_SIZE)

    @rule(key=keys, size=st.integers(0, 2 * PAGE_SIZE))
    def allocate(self, key: str, size: int) -> None:
        if key in self.model:
            with pytest.raises(RegionExists):
                self.mem.allocate_memory("ns", key, size)
        else:
            self.mem.allocate_memory("ns", key, size)
            self.model[key] = bytearray(size)
            self.lengths[key] = 0

    @rule(key=keys, offset=offsets, data=st.binary(max_size=200) | st.integers(0, 70_000))
    def write(self, key: str, offset: int, data: bytes | int) -> None:
        payload = data if isinstance(data, bytes) else random.Random(data).randbytes(data)
        if key not in self.model:
            with pytest.raises(RegionNotFound):
                self.mem.write_memory("ns", key, offset, payload)
            return
        self.mem.write_memory("ns", key, offset, payload)
        buf = self.model[key]
        end = offset + len(payload)
        if end > len(buf):
            buf.extend(bytes(end - len(buf)))
        buf[offset:end] = payload
        self.lengths[key] = max(self.lengths[key], end)

    @rule(key=keys, new_size=st.integers(0, 3 * PAGE_SIZE))
    def resize(self, key: str, new_size: int) -> None:
        if key not in self.model:
            return
        self.mem.resize_memory("ns", key, new_size)
        buf = self.model[key]
        if new_size < len(buf):
            del buf[new_size:]
        else:
            buf.extend(bytes(new_size - len(buf)))
        self.lengths[key] = min(self.lengths[key], new_size)

    @rule(key=keys)
    def free(self, key: str) -> None:
        if key in self.model:
            self.mem.free_memory("ns", key)
            del self.model[key], self.lengths[key]

    @rule(key=keys, offset=offsets, length=st.integers(0, PAGE_SIZE + 10))
    def read(self, key: str, offset: int, length: int) -> None:
        if key not in self.model:
            return
        buf = self.model[key]
        if offset + length > len(buf):
            with pytest.raises(RegionOutOfRange):
                self.mem.read_memory("ns", key, offset, length)
        else:
            assert self.mem.read_memory("ns", key, offset, length) == buf[offset : offset + length]

    @invariant()
    def described(self) -> None:
        assert self.mem.list_memory_regions("ns") == sorted(self.model)
        for key, buf in self.model.items():
            d = self.mem.describe_memory("ns", key)
            assert (d.size, d.data_length) == (len(buf), self.lengths[key])

    def teardown(self) -> None:
        self.db.close()


RegionsModel.TestCase.settings = settings(max_examples=30, stateful_step_count=25)
TestRegionsModel = RegionsModel.TestCase


def _fill_until_full(path: str) -> str:
    """Write 64 KiB chunks until the disk is full; return what describe says after."""
    with kvstore.open(path, durability="none") as db:
        mem = RegionClient(db)
        mem.allocate_memory("n", "r", 0)
        written = 0
        with pytest.raises(RegionResourceExhausted):
            for i in range(10_000):
                mem.write_memory("n", "r", i * PAGE_SIZE, os.urandom(PAGE_SIZE))
                written = (i + 1) * PAGE_SIZE
        info = mem.describe_memory("n", "r")
        assert info.size == info.data_length == written  # every acknowledged write is there
        assert mem.read_memory("n", "r", written - 4, 4) != b""
        return "ok"


def test_full_disk_is_resource_exhausted(tmp_path: Path) -> None:
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
        ).returncode
        == 0
    )
    try:
        if mounted:
            assert _fill_until_full(str(mount / "db")) == "ok"
        else:  # no permission to mount: a file-size limit in a child process instead
            ctx = multiprocessing.get_context("spawn")
            p = ctx.Process(target=_limited_fill, args=(str(tmp_path / "db"),))
            p.start()
            p.join(120)
            assert p.exitcode == 0
    finally:
        if mounted:
            subprocess.run(["umount", str(mount)], check=True)


def _limited_fill(path: str) -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    with kvstore.open(path, durability="none"):
        pass
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 * 1024 * 1024, 4 * 1024 * 1024))
    _fill_until_full(path)
