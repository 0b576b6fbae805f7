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
    (b"kvstore.regions", "h", rid, end)      -> b""   high-water marks: data_length = max
    (b"kvstore.regions", "t", rid)           -> pack((updated,))
    (b"kvstore.regions", "acl", nsid)        -> salt: the namespace is locked
    (b"kvstore.regions", "g", nsid, hash)    -> b"read" | b"write"
    (b"kvstore.regions", "q", nsid)          -> pack((max_bytes,))

Why this shape: a write reads only the capacity record (which changes only when the capacity
does) and the pages it covers partly; it writes its pages, one high-water mark and the
timestamp blindly.  So writers of disjoint pages of one region never conflict, and writers of
one page conflict only with each other (and are retried).  Unwritten pages are absent and read
as zeros, so a 1 TiB sparse region costs one record.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import attrs

from kvstore import (
    Database,
    KVError,
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


@functools.lru_cache(maxsize=4096)
def _region_id(ns: str, key: str) -> bytes:
    packed = tuple_layer.pack((ns, key))
    return hashlib.blake2b(packed, digest_size=16, person=b"kvstore.region").digest()


def _metas(ns: str) -> Subspace:
    return _ROOT.subspace(("m", _ns_id(ns)))


def _meta_key(ns: str, key: str) -> bytes:
    return _metas(ns).pack((key,))


def _time_key(ns: str, key: str) -> bytes:
    return _ROOT.pack(("t", _region_id(ns, key)))


def _pages(ns: str, key: str) -> Subspace:
    return _ROOT.subspace(("p", _region_id(ns, key)))


def _page_key(ns: str, key: str, page: int) -> bytes:
    return _pages(ns, key).pack((page,))


def _marks(ns: str, key: str) -> Subspace:
    return _ROOT.subspace(("h", _region_id(ns, key)))


def _lock_key(ns: str) -> bytes:
    return _ROOT.pack(("acl", _ns_id(ns)))


def _grant_key(ns: str, digest: bytes) -> bytes:
    return _ROOT.pack(("g", _ns_id(ns), digest))


def _quota_key(ns: str) -> bytes:
    return _ROOT.pack(("q", _ns_id(ns)))


def _hash_credential(credential: bytes, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", credential, salt, _PBKDF2_ITERATIONS)


@attrs.frozen
class _Meta:
    size: int
    created: float


def _get_meta(tx: Transaction, ns: str, key: str) -> _Meta | None:
    raw = tx.get(_meta_key(ns, key))
    if raw is None:
        return None
    size, created = tuple_layer.unpack(raw)
    return _Meta(size, created)


def _require_meta(tx: Transaction, ns: str, key: str) -> _Meta:
    meta = _get_meta(tx, ns, key)
    if meta is None:
        raise RegionNotFound(f"no region {key!r} in namespace {ns!r}")
    return meta


def _put_meta(tx: Transaction, ns: str, key: str, meta: _Meta) -> None:
    tx.put(_meta_key(ns, key), tuple_layer.pack((meta.size, meta.created)))


def _touch(tx: Transaction, ns: str, key: str) -> None:
    tx.put(_time_key(ns, key), tuple_layer.pack((time.time(),)))


def _data_length(tx: Transaction, ns: str, key: str) -> int:
    marks = _marks(ns, key)
    last = tx.get_at_most(marks.range().max_key, marks.range().min_key)
    return 0 if last is None else int(marks.unpack(last.key)[0])


def _raise_mark(tx: Transaction, ns: str, key: str, end: int) -> None:
    """Record ``end`` as a high-water mark without reading: blind writes never conflict.

    Marks below ``end`` are dropped (a later, higher mark from another writer survives,
    because each writer removes only marks below its own).
    """
    marks = _marks(ns, key)
    tx.remove_range(marks.range().min_key, marks.pack((end,)))
    tx.put(marks.pack((end,)), b"")


def _truncate_marks(tx: Transaction, ns: str, key: str, new_size: int) -> None:
    marks = _marks(ns, key)
    if _data_length(tx, ns, key) > new_size:
        tx.remove_range(marks.pack((new_size,)), marks.range().max_key)
        tx.put(marks.pack((new_size,)), b"")


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


def _read_bytes(tx: Transaction, ns: str, key: str, offset: int, length: int) -> bytes:
    """The bytes ``[offset, offset + length)``; absent pages and page tails read as zeros."""
    if length == 0:
        return b""
    end = offset + length
    first, last = offset // PAGE_SIZE, (end - 1) // PAGE_SIZE
    # One get per page, not a scan: a scan's read-ahead would copy pages past the end.
    get = tx.get
    stored = {page: get(_page_key(ns, key, page)) for page in range(first, last + 1)}
    out = bytearray(length)
    for page, value in stored.items():
        if value is None:
            continue
        base = page * PAGE_SIZE
        lo, hi = max(offset, base), min(end, base + len(value))
        if lo < hi:
            out[lo - offset : hi - offset] = value[lo - base : hi - base]
    return bytes(out)


def _write_bytes(
    tx: Transaction, ns: str, key: str, offset: int, data: bytes, deadline: float | None
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
        old = tx.get(_page_key(ns, key, page)) or b""
        merged = bytearray(old)
        if len(merged) < hi - base:
            merged.extend(bytes(hi - base - len(merged)))
        merged[lo - base : hi - base] = chunk
        new_pages.append((page, bytes(merged)))
        _check_deadline(deadline, "write_memory")
    _check_deadline(deadline, "write_memory")
    for page, value in new_pages:
        tx.put(_page_key(ns, key, page), value)


def _drop_tail(tx: Transaction, ns: str, key: str, new_size: int) -> None:
    """Remove every stored byte at or past ``new_size`` (so growing again reads zeros)."""
    pages = _pages(ns, key)
    keep = -(-new_size // PAGE_SIZE)  # pages wholly or partly below new_size
    tx.remove_range(pages.pack((keep,)), pages.range().max_key)
    if new_size % PAGE_SIZE:
        last = keep - 1
        old = tx.get(_page_key(ns, key, last))
        cut = new_size - last * PAGE_SIZE
        if old is not None and len(old) > cut:
            tx.put(_page_key(ns, key, last), old[:cut])


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

    def _authorize(self, tx: Transaction, ns: str, write: bool) -> None:
        salt = tx.get(_lock_key(ns))
        if salt is None:
            return
        access = None
        if self._credential is not None:
            access = tx.get(_grant_key(ns, self._digest(salt)))
        if access is None or (write and access != b"write"):
            need = "write" if write else "read"
            raise RegionPermissionDenied(f"no {need} access to namespace {ns!r}")

    def _call(self, tx: Transaction | None, write: bool, fn: Callable[[Transaction], R]) -> R:
        tx = _check_tx(tx)
        try:
            if tx is not None:
                return fn(tx)
            if not write:
                with self._db.transaction(read_only=True) as rtx:
                    return fn(rtx)
            return self._db.run(fn, retries=_RETRIES)
        except StoreFull as e:
            raise RegionResourceExhausted(f"the store is full: {e}") from e

    # operations --------------------------------------------------------------------------

    def allocate_memory(
        self, namespace: str, key: str, size: int, *, tx: Transaction | None = None
    ) -> RegionInfo:
        """Reserve region ``key`` of ``size`` bytes (all zeros); ALREADY_EXISTS if present."""
        ns, k = _check_name(namespace, "namespace"), _check_name(key, "key")
        _check_count(size, "size")

        def fn(t: Transaction) -> RegionInfo:
            self._authorize(t, ns, write=True)
            if _get_meta(t, ns, k) is not None:
                raise RegionExists(f"region {k!r} already exists in namespace {ns!r}")
            _check_quota(t, ns, size)
            now = time.time()
            _put_meta(t, ns, k, _Meta(size, now))
            t.put(_time_key(ns, k), tuple_layer.pack((now,)))
            return RegionInfo(k, ns, size, 0, now, now)

        return self._call(tx, True, fn)

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
        ns, k = _check_name(namespace, "namespace"), _check_name(key, "key")
        _check_count(offset, "offset")
        payload = _check_data(data)
        deadline = _deadline(timeout_ms)

        def fn(t: Transaction) -> int:
            self._authorize(t, ns, write=True)
            meta = _require_meta(t, ns, k)
            end = offset + len(payload)
            if end > meta.size:
                _check_quota(t, ns, end - meta.size)
            if payload:
                _write_bytes(t, ns, k, offset, payload, deadline)
            if end > meta.size:
                _put_meta(t, ns, k, _Meta(end, meta.created))
            _raise_mark(t, ns, k, end)
            _check_deadline(deadline, "write_memory")
            _touch(t, ns, k)
            return len(payload)

        return self._call(tx, True, fn)

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
        ns, k = _check_name(namespace, "namespace"), _check_name(key, "key")
        _check_count(offset, "offset")
        _check_count(length, "length")
        deadline = _deadline(timeout_ms)

        def fn(t: Transaction) -> bytes:
            self._authorize(t, ns, write=False)
            meta = _require_meta(t, ns, k)
            if offset + length > meta.size:
                raise RegionOutOfRange(
                    f"bytes [{offset}, {offset + length}) of region {k!r} lie past its "
                    f"size {meta.size}"
                )
            out = _read_bytes(t, ns, k, offset, length)
            _check_deadline(deadline, "read_memory")
            return out

        return self._call(tx, False, fn)

    def resize_memory(
        self, namespace: str, key: str, new_size: int, *, tx: Transaction | None = None
    ) -> RegionInfo:
        """Set the capacity: growing reads as zeros, shrinking truncates."""
        ns, k = _check_name(namespace, "namespace"), _check_name(key, "key")
        _check_count(new_size, "new_size")

        def fn(t: Transaction) -> RegionInfo:
            self._authorize(t, ns, write=True)
            meta = _require_meta(t, ns, k)
            _check_quota(t, ns, new_size - meta.size)
            if new_size < meta.size:
                _drop_tail(t, ns, k, new_size)
                _truncate_marks(t, ns, k, new_size)
            _put_meta(t, ns, k, _Meta(new_size, meta.created))
            now = time.time()
            t.put(_time_key(ns, k), tuple_layer.pack((now,)))
            return RegionInfo(k, ns, new_size, _data_length(t, ns, k), meta.created, now)

        return self._call(tx, True, fn)

    def free_memory(self, namespace: str, key: str, *, tx: Transaction | None = None) -> None:
        """Delete the region and all its storage; NOT_FOUND if absent."""
        ns, k = _check_name(namespace, "namespace"), _check_name(key, "key")

        def fn(t: Transaction) -> None:
            self._authorize(t, ns, write=True)
            _require_meta(t, ns, k)
            t.remove(_meta_key(ns, k))
            t.remove(_time_key(ns, k))
            for space in (_pages(ns, k), _marks(ns, k)):
                r = space.range()
                t.remove_range(r.min_key, r.max_key)

        self._call(tx, True, fn)

    def describe_memory(
        self, namespace: str, key: str, *, tx: Transaction | None = None
    ) -> RegionInfo:
        """The region's capacity, data length and times; NOT_FOUND if absent."""
        ns, k = _check_name(namespace, "namespace"), _check_name(key, "key")

        def fn(t: Transaction) -> RegionInfo:
            self._authorize(t, ns, write=False)
            meta = _require_meta(t, ns, k)
            raw = t.get(_time_key(ns, k))
            updated = float(tuple_layer.unpack(raw)[0]) if raw is not None else meta.created
            length = min(_data_length(t, ns, k), meta.size)
            return RegionInfo(k, ns, meta.size, length, meta.created, updated)

        return self._call(tx, False, fn)

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

        def fn(t: Transaction) -> list[str]:
            self._authorize(t, ns, write=False)
            return [str(metas.unpack(pair.key)[0]) for pair in t.get_range(lo, hi)]

        return self._call(tx, False, fn)


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
