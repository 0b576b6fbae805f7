"""Memory regions: named, byte-addressed buffers per namespace (SPEC §6a).

The Memory API of a clustered service, as a library over any :class:`kvstore.Database`, plus
what the service cannot do: several region operations in one atomic transaction (``tx=``).

Key schema, all under one subspace whose first element is bytes (so it never meets a
PersiDict, whose keys are strings).  ``nsid`` and ``rid`` are 16-byte BLAKE2b digests of the
namespace and of (namespace, key): two 256-byte names would not fit in one LMDB key, and a
digest keeps page keys short.  Isolation between namespaces rests on the digest not
colliding (128 bits)::

    (b"kvstore.regions", "m", nsid, key)     -> pack((size, created))   capacity record
    (b"kvstore.regions", "p", rid, page)     -> page bytes (at most PAGE_SIZE)
    (b"kvstore.regions", "t", rid)           -> updated, a big-endian double
    (b"kvstore.regions", "acl", nsid)        -> salt: the namespace is locked
    (b"kvstore.regions", "g", nsid, hash)    -> b"read" | b"write"
    (b"kvstore.regions", "q", nsid)          -> pack((max_bytes,))

Why this shape: a write reads only the capacity record (which changes only when the capacity
does), the namespace's lock and the pages it covers partly; it writes its pages and the
timestamp blindly.  So writers of disjoint pages of one region never conflict, and writers of
one page conflict only with each other (and are retried).  ``data_length`` needs no record of
its own (which every writer would have to update): a page is stored exactly as long as the
furthest byte written into it, so the data ends where the last stored page does.  Unwritten
pages are absent and read as zeros, so a 1 TiB sparse region costs one record.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import attrs

from kvstore import (
    CorruptData,
    Database,
    KeyRange,
    KVError,
    KVStore,
    StoreFull,
    Subspace,
    Transaction,
)
from kvstore import tuple as tuple_layer

__all__ = [
    "PAGE_SIZE",
    "AsyncRegionClient",
    "RegionClient",
    "RegionDeadlineExceeded",
    "RegionError",
    "RegionExists",
    "RegionInfo",
    "RegionNotFound",
    "RegionOutOfRange",
    "RegionPermissionDenied",
    "RegionResourceExhausted",
    "grant",
    "revoke",
    "set_quota",
]

PAGE_SIZE: Final = 64 * 1024
"""Bytes per stored page: one 64 KiB chunk, the service's usual transfer unit, is one put."""

_MAX_NAME_BYTES: Final = 256
_RETRIES: Final = 100  # own conflicts between writers of one page are expected, not errors
_PBKDF2_ITERATIONS: Final = 200_000
_ROOT: Final = Subspace((b"kvstore.regions",))

R = TypeVar("R")
P = ParamSpec("P")


# --- errors ------------------------------------------------------------------------------


class RegionError(KVError):
    """A region operation failed; ``code`` says why, as the service's status codes do."""

    code: str = ""

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}")


class RegionExists(RegionError):
    code = "ALREADY_EXISTS"


class RegionNotFound(RegionError):
    code = "NOT_FOUND"


class RegionOutOfRange(RegionError):
    code = "OUT_OF_RANGE"


class RegionDeadlineExceeded(RegionError):
    code = "DEADLINE_EXCEEDED"


class RegionResourceExhausted(RegionError):
    code = "RESOURCE_EXHAUSTED"


class RegionPermissionDenied(RegionError):
    code = "PERMISSION_DENIED"


@attrs.frozen
class RegionInfo:
    """What ``describe_memory`` says of a region."""

    key: str
    namespace: str
    size: int
    data_length: int
    created: float
    updated: float


# --- argument checks ---------------------------------------------------------------------


def _check_name(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be valid UTF-8 text") from None
    if len(encoded) > _MAX_NAME_BYTES:
        raise ValueError(f"{name} must be at most {_MAX_NAME_BYTES} UTF-8 bytes")
    return value


def _check_prefix(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"prefix must be a str, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError("prefix must not contain NUL")
    return value


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")
    return value


def _check_data(value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes-like, not {type(value).__name__}")
    return bytes(value)


def _check_credential(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"credential must be a str, bytes or None, not {type(value).__name__}")
    raw = bytes(value)
    if not raw:
        raise ValueError("credential must not be empty")
    return raw


def _check_tx(tx: object) -> Transaction | None:
    if tx is not None and not isinstance(tx, Transaction):
        raise TypeError(f"tx must be a kvstore.Transaction or None, not {type(tx).__name__}")
    return tx


def _check_db(db: object) -> Database:
    if not isinstance(db, Database):
        raise TypeError(f"db must be a kvstore.Database, not {type(db).__name__}")
    return db


def _deadline(timeout_ms: object) -> float | None:
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)):
        raise TypeError(f"timeout_ms must be a number or None, not {type(timeout_ms).__name__}")
    if not timeout_ms >= 0 or timeout_ms == float("inf"):
        raise ValueError(f"timeout_ms must be a finite number >= 0, not {timeout_ms}")
    return time.monotonic() + timeout_ms / 1000.0


def _check_deadline(deadline: float | None, what: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise RegionDeadlineExceeded(f"{what} did not finish within timeout_ms")


# --- the key schema ----------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _ns_id(ns: str) -> bytes:
    return hashlib.blake2b(ns.encode("utf-8"), digest_size=16, person=b"kvstore.ns").digest()


def _metas(ns: str) -> Subspace:
    return _ROOT.subspace(("m", _ns_id(ns)))


@functools.lru_cache(maxsize=4096)
def _lock_key(ns: str) -> bytes:
    return _ROOT.pack(("acl", _ns_id(ns)))


def _grant_key(ns: str, digest: bytes) -> bytes:
    return _ROOT.pack(("g", _ns_id(ns), digest))


def _quota_key(ns: str) -> bytes:
    return _ROOT.pack(("q", _ns_id(ns)))


@attrs.frozen
class _Keys:
    """The keys of one region, built once per (namespace, key).

    Every operation needs several of them; packing them anew each time cost a write about a
    quarter of its time (PERFORMANCE L1).
    """

    ns: str
    key: str
    meta: bytes
    time: bytes
    page_prefix: bytes  # every page key starts with it
    page_range: KeyRange

    def page(self, index: int) -> bytes:
        return self.page_prefix + _page_suffix(index)


@functools.lru_cache(maxsize=4096)
def _page_suffix(index: int) -> bytes:
    """The packed page number: shared by every region, so the first 256 MiB of each need
    no packing at all (PERFORMANCE L1)."""
    return tuple_layer.pack((index,))


@functools.lru_cache(maxsize=4096)
def _keys(ns: str, key: str) -> _Keys:
    rid = hashlib.blake2b(
        tuple_layer.pack((ns, key)), digest_size=16, person=b"kvstore.region"
    ).digest()
    pages = _ROOT.subspace(("p", rid))
    return _Keys(
        ns,
        key,
        meta=_metas(ns).pack((key,)),
        time=_ROOT.pack(("t", rid)),
        page_prefix=pages.key(),
        page_range=pages.range(),
    )


def _hash_credential(credential: bytes, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", credential, salt, _PBKDF2_ITERATIONS)


def _get_meta(tx: KVStore, keys: _Keys) -> tuple[int, float] | None:
    """``(size, created)``, or ``None`` when the region does not exist."""
    raw = tx.get(keys.meta)
    return None if raw is None else _decode_meta(raw)


@functools.lru_cache(maxsize=4096)
def _decode_meta(raw: bytes) -> tuple[int, float]:
    """A capacity record's ``(size, created)``: decoded once per value, as every operation
    reads the record and it changes only with the capacity (PERFORMANCE L1)."""
    size, created = tuple_layer.unpack(raw)
    return int(size), float(created)


def _require_meta(tx: KVStore, keys: _Keys) -> tuple[int, float]:
    meta = _get_meta(tx, keys)
    if meta is None:
        raise RegionNotFound(f"no region {keys.key!r} in namespace {keys.ns!r}")
    return meta


def _put_meta(tx: Transaction, keys: _Keys, size: int, created: float) -> None:
    tx.put(keys.meta, tuple_layer.pack((size, created)))


_TIME_RECORD: Final = struct.Struct(">d")


def _touch(tx: Transaction, keys: _Keys, now: float | None = None) -> float:
    now = time.time() if now is None else now
    tx.put(keys.time, _TIME_RECORD.pack(now))
    return now


def _decode_time(raw: bytes) -> float:
    if len(raw) != _TIME_RECORD.size:
        raise CorruptData(f"a region's time record holds {len(raw)} bytes, not 8")
    return float(_TIME_RECORD.unpack(raw)[0])


def _data_length(tx: KVStore, keys: _Keys) -> int:
    """One past the last byte ever written: the end of the last stored page.

    A page is stored as long as the furthest byte written into it (a shrink cuts it), so
    no separate record, which every writer would have to update, is needed.
    """
    r = keys.page_range
    last = tx.get_at_most(r.max_key, r.min_key)
    if last is None:
        return 0
    (page,) = tuple_layer.unpack(last.key, len(keys.page_prefix))
    return int(page) * PAGE_SIZE + len(last.value)


def _usage(tx: Transaction, ns: str) -> int:
    metas = _metas(ns).range()
    return sum(
        int(tuple_layer.unpack(pair.value)[0])
        for pair in tx.get_range(metas.min_key, metas.max_key)
    )


def _check_quota(tx: Transaction, ns: str, growth: int) -> None:
    """RESOURCE_EXHAUSTED if growing the namespace's capacity by ``growth`` passes its quota."""
    if growth <= 0:
        return
    raw = tx.get(_quota_key(ns))
    if raw is None:
        return
    (limit,) = tuple_layer.unpack(raw)
    used = _usage(tx, ns)
    if used + growth > limit:
        raise RegionResourceExhausted(
            f"namespace {ns!r} would hold {used + growth} bytes, past its quota of {limit}"
        )


def _read_bytes(tx: KVStore, keys: _Keys, offset: int, length: int) -> bytes:
    """The bytes ``[offset, offset + length)``; absent pages and page tails read as zeros."""
    if length == 0:
        return b""
    end = offset + length
    # One get per page, not a scan: a scan's read-ahead would copy pages past the end.
    get, page_key = tx.get, keys.page
    pieces = []
    for page in range(offset // PAGE_SIZE, (end - 1) // PAGE_SIZE + 1):
        base = page * PAGE_SIZE
        lo, hi = max(offset, base), min(end, base + PAGE_SIZE)
        value = get(page_key(page))
        # A whole stored page slices to itself: one 64 KiB chunk read copies nothing here.
        piece = value[lo - base : hi - base] if value is not None else b""
        if len(piece) < hi - lo:
            piece += bytes(hi - lo - len(piece))
        pieces.append(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _write_bytes(
    tx: Transaction, keys: _Keys, offset: int, data: bytes, deadline: float | None
) -> None:
    """Put ``data`` at ``offset``: pages it covers whole are written blind, the others merged.

    Every read happens before the first write, so a deadline passed midway changes nothing.
    """
    end = offset + len(data)
    new_pages: list[tuple[int, bytes]] = []
    for page in range(offset // PAGE_SIZE, (end - 1) // PAGE_SIZE + 1):
        base = page * PAGE_SIZE
        lo, hi = max(offset, base), min(end, base + PAGE_SIZE)
        chunk = data[lo - offset : hi - offset]
        if lo == base and hi == base + PAGE_SIZE:
            new_pages.append((page, chunk))
            continue
        new_pages.append((page, _merged(tx.get(keys.page(page)), lo - base, chunk)))
        _check_deadline(deadline, "write_memory")
    _check_deadline(deadline, "write_memory")
    for page, value in new_pages:
        tx.put(keys.page(page), value)


def _merged(old: bytes | None, at: int, chunk: bytes) -> bytes:
    """Page ``old`` with ``chunk`` at ``at``, zero-filled up to it if the page was shorter."""
    merged = bytearray(old or b"")
    if len(merged) < at + len(chunk):
        merged.extend(bytes(at + len(chunk) - len(merged)))
    merged[at : at + len(chunk)] = chunk
    return bytes(merged)


def _extend_to(tx: Transaction, keys: _Keys, end: int) -> None:
    """Make ``data_length`` at least ``end`` without changing a byte (an empty write's end)."""
    if end == 0 or _data_length(tx, keys) >= end:
        return
    page = (end - 1) // PAGE_SIZE
    tx.put(keys.page(page), _merged(tx.get(keys.page(page)), end - page * PAGE_SIZE, b""))


def _drop_tail(tx: Transaction, keys: _Keys, new_size: int) -> None:
    """Remove every stored byte at or past ``new_size`` (so growing again reads zeros)."""
    keep = -(-new_size // PAGE_SIZE)  # pages wholly or partly below new_size
    tx.remove_range(keys.page(keep), keys.page_range.max_key)
    if new_size % PAGE_SIZE:
        last = keep - 1
        old = tx.get(keys.page(last))
        cut = new_size - last * PAGE_SIZE
        if old is not None and len(old) > cut:
            tx.put(keys.page(last), old[:cut])


# --- access control ----------------------------------------------------------------------


def grant(db: Database, namespace: str, credential: str | bytes, access: str = "read") -> None:
    """Give ``credential`` ``access`` ("read" or "write") to ``namespace``.

    The first grant locks the namespace: from then on only credentials holding a grant may
    use it, even after every grant is revoked.  Granting again replaces the access.
    """
    _check_db(db)
    ns = _check_name(namespace, "namespace")
    cred = _check_credential(credential)
    if cred is None:
        raise TypeError("credential must be a str or bytes, not None")
    if access not in ("read", "write"):
        raise ValueError(f"access must be 'read' or 'write', not {access!r}")

    def fn(tx: Transaction) -> None:
        salt = tx.get(_lock_key(ns))
        if salt is None:
            salt = os.urandom(16)
            tx.put(_lock_key(ns), salt)
        tx.put(_grant_key(ns, _hash_credential(cred, salt)), access.encode())

    _run_db(db, fn)


def revoke(db: Database, namespace: str, credential: str | bytes) -> None:
    """Take ``credential``'s grant on ``namespace`` away (the namespace stays locked)."""
    _check_db(db)
    ns = _check_name(namespace, "namespace")
    cred = _check_credential(credential)
    if cred is None:
        raise TypeError("credential must be a str or bytes, not None")

    def fn(tx: Transaction) -> None:
        salt = tx.get(_lock_key(ns))
        if salt is not None:
            tx.remove(_grant_key(ns, _hash_credential(cred, salt)))

    _run_db(db, fn)


def set_quota(db: Database, namespace: str, max_bytes: int | None) -> None:
    """Limit the sum of ``namespace``'s capacities to ``max_bytes`` (``None``: no limit)."""
    _check_db(db)
    ns = _check_name(namespace, "namespace")
    if max_bytes is not None:
        _check_count(max_bytes, "max_bytes")

    def fn(tx: Transaction) -> None:
        if max_bytes is None:
            tx.remove(_quota_key(ns))
        else:
            tx.put(_quota_key(ns), tuple_layer.pack((max_bytes,)))

    _run_db(db, fn)


def _run_db(db: Database, fn: Callable[[Transaction], R]) -> R:
    try:
        return db.run(fn, retries=_RETRIES)
    except StoreFull as e:
        raise RegionResourceExhausted(f"the store is full: {e}") from e


# --- the clients -------------------------------------------------------------------------


class RegionClient:
    """Region operations on one database, as one credential (or none).

    Each operation is its own transaction, retried on its own conflicts, unless ``tx=`` is
    given: then it joins that transaction and commits or fails with it.
    """

    def __init__(self, db: Database, credential: str | bytes | None = None) -> None:
        self._db = _check_db(db)
        self._credential = _check_credential(credential)
        self._digests: dict[bytes, bytes] = {}  # salt -> hash of our credential
        self._digest_lock = threading.Lock()

    # access ------------------------------------------------------------------------------

    def _digest(self, salt: bytes) -> bytes:
        assert self._credential is not None
        with self._digest_lock:
            digest = self._digests.get(salt)
        if digest is None:
            digest = _hash_credential(self._credential, salt)
            with self._digest_lock:
                self._digests[salt] = digest
        return digest

    def _authorize(self, tx: KVStore, ns: str, write: bool) -> None:
        salt = tx.get(_lock_key(ns))
        if salt is None:
            return
        access = None
        if self._credential is not None:
            access = tx.get(_grant_key(ns, self._digest(salt)))
        if access is None or (write and access != b"write"):
            need = "write" if write else "read"
            raise RegionPermissionDenied(f"no {need} access to namespace {ns!r}")

    def _call(self, tx: Transaction | None, fn: Callable[[Transaction], R]) -> R:
        """Run a writing operation in ``tx``, or in its own transaction, retried."""
        tx = _check_tx(tx)
        try:
            if tx is not None:
                return fn(tx)
            return self._db.run(fn, retries=_RETRIES)
        except StoreFull as e:
            raise RegionResourceExhausted(f"the store is full: {e}") from e

    def _read(self, tx: Transaction | None, fn: Callable[[KVStore], R]) -> R:
        """Run a reading operation in ``tx``, or on a snapshot of its own.

        A snapshot reads exactly what a read-only transaction would, without the read and
        write records a transaction keeps (half of a 64 KiB read's cost, PERFORMANCE L1).
        """
        tx = _check_tx(tx)
        if tx is not None:
            return fn(tx)
        with self._db.store.snapshot() as snapshot:
            return fn(snapshot)

    # operations --------------------------------------------------------------------------

    def allocate_memory(
        self, namespace: str, key: str, size: int, *, tx: Transaction | None = None
    ) -> RegionInfo:
        """Reserve region ``key`` of ``size`` bytes (all zeros); ALREADY_EXISTS if present."""
        keys = _keys(_check_name(namespace, "namespace"), _check_name(key, "key"))
        _check_count(size, "size")

        def fn(t: Transaction) -> RegionInfo:
            self._authorize(t, keys.ns, write=True)
            if _get_meta(t, keys) is not None:
                raise RegionExists(f"region {keys.key!r} already exists in namespace {keys.ns!r}")
            _check_quota(t, keys.ns, size)
            now = _touch(t, keys)
            _put_meta(t, keys, size, now)
            return RegionInfo(keys.key, keys.ns, size, 0, now, now)

        return self._call(tx, fn)

    def write_memory(
        self,
        namespace: str,
        key: str,
        offset: int,
        data: bytes,
        timeout_ms: float | None = None,
        *,
        tx: Transaction | None = None,
    ) -> int:
        """Put ``data`` at ``offset``, atomically; past the capacity the region grows."""
        keys = _keys(_check_name(namespace, "namespace"), _check_name(key, "key"))
        _check_count(offset, "offset")
        payload = _check_data(data)
        deadline = _deadline(timeout_ms)

        def fn(t: Transaction) -> int:
            self._authorize(t, keys.ns, write=True)
            size, created = _require_meta(t, keys)
            end = offset + len(payload)
            if end > size:
                _check_quota(t, keys.ns, end - size)
            if payload:
                _write_bytes(t, keys, offset, payload, deadline)
            else:
                _extend_to(t, keys, end)
            if end > size:
                _put_meta(t, keys, end, created)
            _check_deadline(deadline, "write_memory")
            _touch(t, keys)
            return len(payload)

        return self._call(tx, fn)

    def read_memory(
        self,
        namespace: str,
        key: str,
        offset: int,
        length: int,
        timeout_ms: float | None = None,
        *,
        tx: Transaction | None = None,
    ) -> bytes:
        """The bytes ``[offset, offset + length)``; OUT_OF_RANGE past the capacity."""
        keys = _keys(_check_name(namespace, "namespace"), _check_name(key, "key"))
        _check_count(offset, "offset")
        _check_count(length, "length")
        deadline = _deadline(timeout_ms)

        def fn(t: KVStore) -> bytes:
            self._authorize(t, keys.ns, write=False)
            size, _ = _require_meta(t, keys)
            if offset + length > size:
                raise RegionOutOfRange(
                    f"bytes [{offset}, {offset + length}) of region {keys.key!r} lie past its "
                    f"size {size}"
                )
            out = _read_bytes(t, keys, offset, length)
            _check_deadline(deadline, "read_memory")
            return out

        return self._read(tx, fn)

    def resize_memory(
        self, namespace: str, key: str, new_size: int, *, tx: Transaction | None = None
    ) -> RegionInfo:
        """Set the capacity: growing reads as zeros, shrinking truncates."""
        keys = _keys(_check_name(namespace, "namespace"), _check_name(key, "key"))
        _check_count(new_size, "new_size")

        def fn(t: Transaction) -> RegionInfo:
            self._authorize(t, keys.ns, write=True)
            size, created = _require_meta(t, keys)
            _check_quota(t, keys.ns, new_size - size)
            if new_size < size:
                _drop_tail(t, keys, new_size)
            _put_meta(t, keys, new_size, created)
            now = _touch(t, keys)
            return RegionInfo(keys.key, keys.ns, new_size, _data_length(t, keys), created, now)

        return self._call(tx, fn)

    def free_memory(self, namespace: str, key: str, *, tx: Transaction | None = None) -> None:
        """Delete the region and all its storage; NOT_FOUND if absent."""
        keys = _keys(_check_name(namespace, "namespace"), _check_name(key, "key"))

        def fn(t: Transaction) -> None:
            self._authorize(t, keys.ns, write=True)
            _require_meta(t, keys)
            t.remove(keys.meta)
            t.remove(keys.time)
            t.remove_range(keys.page_range.min_key, keys.page_range.max_key)

        self._call(tx, fn)

    def describe_memory(
        self, namespace: str, key: str, *, tx: Transaction | None = None
    ) -> RegionInfo:
        """The region's capacity, data length and times; NOT_FOUND if absent."""
        keys = _keys(_check_name(namespace, "namespace"), _check_name(key, "key"))

        def fn(t: KVStore) -> RegionInfo:
            self._authorize(t, keys.ns, write=False)
            size, created = _require_meta(t, keys)
            raw = t.get(keys.time)
            updated = _decode_time(raw) if raw is not None else created
            length = min(_data_length(t, keys), size)
            return RegionInfo(keys.key, keys.ns, size, length, created, updated)

        return self._read(tx, fn)

    def list_memory_regions(
        self, namespace: str, prefix: str = "", *, tx: Transaction | None = None
    ) -> list[str]:
        """The namespace's region keys that start with ``prefix``, sorted."""
        ns = _check_name(namespace, "namespace")
        p = _check_prefix(prefix)
        metas = _metas(ns)
        # A packed str is 0x02, its UTF-8 bytes, 0x00; UTF-8 never holds 0xff.
        lo = metas.key() + b"\x02" + p.encode("utf-8")
        hi = lo + b"\xff"

        def fn(t: KVStore) -> list[str]:
            self._authorize(t, ns, write=False)
            return [str(metas.unpack(pair.key)[0]) for pair in t.get_range(lo, hi)]

        return self._read(tx, fn)


def _in_thread(
    method: Callable[Concatenate[RegionClient, P], R],
) -> Callable[Concatenate[AsyncRegionClient, P], Coroutine[Any, Any, R]]:
    """``method`` of :class:`RegionClient` as a coroutine run in the async client's pool."""

    async def call(client: AsyncRegionClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await client._call(method, client._sync, *args, **kwargs)

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class AsyncRegionClient:
    """:class:`RegionClient`'s operations as coroutines that never block the event loop.

    Each call runs in a worker thread, so calls made together (``asyncio.gather``) run
    together; their commits share the database's group commit.
    """

    def __init__(
        self, db: Database, credential: str | bytes | None = None, *, max_workers: int = 16
    ) -> None:
        _check_count(max_workers, "max_workers")
        if max_workers == 0:
            raise ValueError("max_workers must be >= 1")
        self._sync = RegionClient(db, credential)
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="kvstore-regions")

    def close(self) -> None:
        """Stop the worker threads (after the calls in flight finish)."""
        self._pool.shutdown(wait=True)

    async def __aenter__(self) -> AsyncRegionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    allocate_memory = _in_thread(RegionClient.allocate_memory)
    write_memory = _in_thread(RegionClient.write_memory)
    read_memory = _in_thread(RegionClient.read_memory)
    resize_memory = _in_thread(RegionClient.resize_memory)
    free_memory = _in_thread(RegionClient.free_memory)
    describe_memory = _in_thread(RegionClient.describe_memory)
    list_memory_regions = _in_thread(RegionClient.list_memory_regions)
