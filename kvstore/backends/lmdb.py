"""``LMDBStore``: the embedded, durable, multi-process default backend, on LMDB.

Layout: one LMDB environment (a directory holding ``data.mdb``, ``lock.mdb`` and the
``kvstore-store`` marker, written once the store exists, so a lost ``data.mdb`` is noticed)
with three named databases, so every user key belongs to the user and none collides with internals:

* ``b"data"`` -- user keys of 1 to :data:`~kvstore.MAX_KEY_SIZE` bytes;
* ``b"empty-key"`` -- the value of the user key ``b""`` (LMDB cannot store an empty key), kept
  under the single slot key ``b"\\x00"``;
* ``b"meta"`` -- internal metadata, e.g. the transaction layer's commit version.

Reads on the live store each run in their own short read transaction; ``snapshot()`` holds
one read transaction open.  Writes run in one write transaction each, serialized per process by
a lock and across processes by LMDB.  When the map is full the write is aborted, the map
doubled and the write retried: see :class:`_Environment` and docs/lmdb.md for how that stays
safe with readers in flight.
"""

from __future__ import annotations

import errno
import functools
import itertools
import operator
import os
import stat
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar

import lmdb

from kvstore.backends.lmdbcheck import META, STAMP, check_pages, stamp, vouch, vouched
from kvstore.counters import check_amount
from kvstore.errors import (
    CorruptData,
    KVError,
    NotAKVStore,
    ReadOnlyError,
    StoreClosed,
    StoreFull,
    TransactionTooOld,
)
from kvstore.keys import MAX_KEY_SIZE, check_bounds, check_key, check_value
from kvstore.mutations import Writes
from kvstore.ranges import KeyRange
from kvstore.sortedmap import FEW_KEYS, SortedMap
from kvstore.store import (
    AtomicKVStore,
    FetchingStore,
    KVPair,
    ReadOnlyStore,
    checked_mutations,
    collect_pairs,
    collect_tracked,
)
from kvstore.validate import check_bool, check_map_size, check_optional_bool

if TYPE_CHECKING:
    from kvstore.mutations import Mutations

    _Txn = lmdb.Transaction[bytes]
    _Db = lmdb._Database

__all__ = ["LMDBBatch", "LMDBSnapshot", "LMDBStore"]

T = TypeVar("T")
P = TypeVar("P", bound=tuple[bytes, bytes])

_DATA_DB = b"data"
_EMPTY_DB = b"empty-key"
_META_DB = b"meta"
#: The one key of the ``empty-key`` database: it holds the value of the user key ``b""``.
_EMPTY_SLOT = b"\x00"

_64BIT = sys.maxsize > 2**32
if sys.platform == "win32":
    # Windows LMDB allocates the whole map on disk: start small, growth is automatic.
    _DEFAULT_MAP_SIZE = 1 << 28
else:
    # Elsewhere the map only reserves address space; the file stays as small as the data.
    _DEFAULT_MAP_SIZE = 1 << 40 if _64BIT else 1 << 30
#: Growth stops here (64 TiB: within a 64-bit user address space; just under 2 GiB on 32-bit).
_MAX_MAP_SIZE = 1 << 46 if _64BIT else (1 << 31) - (1 << 16)
_MAX_DBS = 8  # three are used; the rest are room to grow without a format change
_MAX_READERS = 1022  # every open snapshot holds a reader slot; each slot costs 64 bytes
_MAX_SPARE_TXNS = 64  # py-lmdb recycles ended read txns, so a short read costs no allocation
#: The size LMDB gives ``lock.mdb`` for :data:`_MAX_READERS` slots: a 128-byte header (two
#: cache lines of ``MDB_txninfo``) and one 64-byte ``MDB_reader`` per slot.
_LOCK_FILE_SIZE = 128 + 64 * _MAX_READERS
_LOCK_FILE = "lock.mdb"
_DATA_FILE = "data.mdb"

_FLUSHING = "flushing to disk"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_SPACE_PROBE = 1 << 20
_CORRUPT_ERRORS: tuple[type[lmdb.Error], ...] = tuple(
    getattr(lmdb, name)
    for name in (
        "CorruptedError",
        "InvalidError",
        "PageNotFoundError",
        "PanicError",
        "VersionMismatchError",
        "IncompatibleError",
        "BadChecksumError",
    )
    if hasattr(lmdb, name)
)

# PERFORMANCE R5: map(_new, _PAIRS, pairs) turns cursor tuples into KVPairs at C speed, ~20%
# cheaper per pair than kvstore.store.make_pair (no functools.partial layer).
_new = tuple.__new__
_PAIRS = itertools.repeat(KVPair)
# PERFORMANCE L0d: batches of up to 2048 pairs.  512 measured ~10% faster while the pairs
# were tracked by the GC; built untracked (kept scans), 2048 is ~5% faster than 512.
_MAX_BATCH = 2048


class _MapFull(BaseException):
    """Raised inside a write transaction when LMDB's map is full.

    A ``BaseException`` so that code run by :meth:`LMDBStore._atomic` cannot swallow it with
    ``except Exception``; :meth:`LMDBStore._write` catches it, grows the map and retries.
    """


# -- the shared environment ------------------------------------------------------------------
class _Gate:
    """Admits any number of short LMDB reads at once, or one exclusive operation, never both.

    The exclusive operations are map resizes (py-lmdb invalidates every transaction and cursor
    of an environment when its map is resized, so a resize must not overlap a read that is
    using one), write-transaction aborts (see :meth:`_Environment.abort_write`) and closing.
    A reader appends to ``inside`` and pops when done (both atomic list operations, so the hot
    path takes no lock -- PERFORMANCE R1); an exclusive operation sets ``resizing`` and waits
    for ``inside`` to drain.  A reader that finds ``resizing`` set backs out and waits.
    """

    __slots__ = ("_cond", "inside", "resizing")

    def __init__(self) -> None:
        self.inside: list[None] = []
        self.resizing = False
        self._cond = threading.Condition(threading.Lock())

    def enter(self) -> None:
        """Register a read; waits while a resize is running."""
        self.inside.append(None)
        if self.resizing:
            self.exit()
            with self._cond:
                while self.resizing:
                    self._cond.wait()
                self.inside.append(None)

    def exit(self) -> None:
        """Unregister a read and wake a resize waiting for readers to drain."""
        self.inside.pop()
        if self.resizing:
            self.wake()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def run_exclusive(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` with no read inside the gate (readers wait until it returns)."""
        with self._cond:
            self.resizing = True
            try:
                while self.inside:
                    self._cond.wait(0.05)
                return fn()
            finally:
                self.resizing = False
                self._cond.notify_all()


class _Snapshots:
    """The open snapshots of an environment, held weakly (a dropped one frees its reader).

    A dict of weak references by ``id``, without callbacks: adding and discarding cost a
    dict operation each, where a ``WeakSet`` runs Python code for both (PERFORMANCE R6).
    References left dead by snapshots dropped unclosed are swept as the dict doubles.
    Callers hold the environment's ``lock``.
    """

    __slots__ = ("_refs", "_sweep_at")

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[LMDBSnapshot]] = {}
        self._sweep_at = 64

    def add(self, snap: LMDBSnapshot) -> None:
        refs = self._refs
        refs[id(snap)] = weakref.ref(snap)
        if len(refs) >= self._sweep_at:
            for key in [key for key, ref in refs.items() if ref() is None]:
                del refs[key]
            self._sweep_at = max(64, 2 * len(refs))

    def discard(self, snap: LMDBSnapshot) -> None:
        ref = self._refs.get(id(snap))
        if ref is not None and ref() is snap:
            del self._refs[id(snap)]

    def __iter__(self) -> Iterator[LMDBSnapshot]:
        alive = [ref() for ref in self._refs.values()]
        return iter([snap for snap in alive if snap is not None])

    def __len__(self) -> int:
        return sum(ref() is not None for ref in self._refs.values())


class _Environment:
    """One open LMDB environment, shared by every :class:`LMDBStore` of the same directory.

    LMDB forbids opening an environment twice in one process (its file locks would break), so
    stores on the same path share this object; it is closed with the last of them.  It owns
    what must be per environment: the write lock, the resize gate and the open snapshots.
    """

    def __init__(
        self, path: str, env: lmdb.Environment, readonly: bool, nosync: bool, adopt: bool
    ) -> None:
        self.path = path
        self.env = env
        self.readonly = readonly
        self.nosync = nosync
        self.pid = os.getpid()
        self.key: tuple[int, int] = (0, 0)  # the registry key (device, inode of the directory)
        self.refs = 0
        self.write_lock = threading.RLock()
        self.gate = _Gate()
        self.lock = threading.Lock()
        self.snapshots = _Snapshots()
        self.data, self.empty, self.meta = _open_databases(path, env, readonly, adopt)

    # -- ending write transactions and growing the map -----------------------------------
    def abort_write(self, txn: _Txn) -> None:
        """Abort a write transaction with this process's readers paused.

        py-lmdb 3 aborts a write transaction only once no call on the environment is in flight
        in any thread; under a steady stream of reads that moment may never come (measured:
        three reading threads stall it indefinitely).  Pausing the readers at the gate makes
        the abort immediate.  Aborts only happen on errors and map growth.
        """

        def abort() -> None:
            with suppress(lmdb.Error):
                txn.abort()

        self.gate.run_exclusive(abort)

    def grow(self) -> None:
        """Double the map after a write failed with map-full (its txn already aborted)."""
        with self.write_lock:
            self.gate.run_exclusive(self._double_map)

    def adopt_map_size(self) -> None:
        """Take on the map size another process grew the map to (after MapResizedError)."""
        with self.write_lock:
            self.gate.run_exclusive(lambda: self._set_mapsize(0))

    def _double_map(self) -> None:
        size = self.env.info()["map_size"]
        if size >= _MAX_MAP_SIZE:
            raise StoreFull(
                f"the LMDB map of {self.path!r} is at its largest ({size} bytes); "
                "the write was rolled back"
            )
        self._set_mapsize(min(size * 2, _MAX_MAP_SIZE))

    def _set_mapsize(self, size: int) -> None:
        """Resize the map; the caller holds the write lock and the gate exclusively."""
        try:
            self.env.set_mapsize(size)
        except lmdb.Error as exc:
            raise StoreFull(f"could not resize the LMDB map of {self.path!r}: {exc}") from exc
        # set_mapsize ended every transaction: give each open snapshot a new one when nothing
        # was committed since it began (the new one then sees exactly the same data).
        with self.lock:
            snapshots = list(self.snapshots)
        for snap in snapshots:
            snap._revive()

    # -- errors ----------------------------------------------------------------------------
    def error(self, exc: lmdb.Error, action: str) -> Exception:
        """The kvstore exception for an LMDB error raised while doing ``action``."""
        code = getattr(exc, "code", 0)
        if isinstance(exc, lmdb.ReadonlyError):
            return ReadOnlyError(f"the LMDB store at {self.path!r} is read-only: {exc}")
        if isinstance(exc, (lmdb.DiskError, lmdb.MapFullError)) or code in _FULL_ERRNOS:
            return _store_full(self.path, action, exc)
        if code == errno.EIO and _out_of_space(self.path):
            # LMDB reports a short write as EIO: it is a full disk or file-size limit.
            return _store_full(self.path, action, exc)
        if isinstance(exc, _CORRUPT_ERRORS):
            return CorruptData(f"the LMDB store at {self.path!r} is damaged: {exc}")
        if isinstance(exc, lmdb.ReadersFullError):
            return KVError(
                f"too many open readers on {self.path!r} (limit {self.env.max_readers()}): "
                "close snapshots you no longer need"
            )
        if code == errno.EIO:
            return OSError(errno.EIO, f"I/O error while {action}: {exc}", self.path)
        return KVError(f"LMDB error at {self.path!r} while {action}: {exc}")

    # -- life cycle ------------------------------------------------------------------------
    def release(self) -> None:
        """Drop one store's reference; close the environment with the last one."""
        with _REGISTRY_LOCK:
            self.refs -= 1
            if self.refs:
                return
            if _REGISTRY.get(self.key) is self:
                del _REGISTRY[self.key]
        with self.write_lock:
            self.gate.run_exclusive(self._close)

    def _close(self) -> None:
        """Close the environment; a writer stamps the file as sound (see :func:`vouch`)."""
        if not self.readonly:
            with suppress(lmdb.Error, OSError):
                last = self.env.info()["last_txnid"]
                vouch(self.path, stamp(os.path.join(self.path, _DATA_FILE), last))
        self.env.close()


def _store_full(path: str, action: str, exc: lmdb.Error) -> StoreFull:
    if action == _FLUSHING:
        outcome = "the write is committed but may not be on disk yet"
    else:
        outcome = "the write was rolled back and nothing committed before it was lost"
    return StoreFull(
        f"the disk holding {path!r} is full (or a file-size limit was reached) while {action}; "
        f"{outcome} ({exc})"
    )


def _out_of_space(path: str) -> bool:
    """Whether writes under ``path`` fail for lack of space.

    LMDB turns a short write into ``EIO``, which is also what a failing disk reports; this
    tells the two apart: a file-size limit the data file is at, or no room for a scratch file.
    """
    try:
        size = os.path.getsize(os.path.join(path, "data.mdb"))
    except OSError:
        size = 0
    if sys.platform != "win32":
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and size + _SPACE_PROBE > soft:
            return True
        with suppress(OSError):
            st = os.statvfs(path)
            if st.f_bavail * st.f_frsize < _SPACE_PROBE:
                return True
    probe = os.path.join(path, f"space-probe-{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return exc.errno in _FULL_ERRNOS
    try:
        return os.write(fd, bytes(_SPACE_PROBE)) < _SPACE_PROBE
    except OSError as exc:
        return exc.errno in _FULL_ERRNOS
    finally:
        os.close(fd)
        with suppress(OSError):
            os.unlink(probe)


# -- checking data.mdb before LMDB maps it -----------------------------------------------------
#: The file that marks a directory as a kvstore store once its creation has finished: with it,
#: an empty or missing ``data.mdb`` is damage, not a new store.
_MARKER = "kvstore-store"
_MARKER_TEXT = b"kvstore LMDB store: do not delete while data.mdb exists\n"
_META_MAGIC = 0xBEEFC0DE
_META_VERSION = 1
_PSIZE_INDEX = 9  # the free DB's pad field holds the page size (in meta page 0)


def _corrupt_file(path: str, why: str) -> CorruptData:
    return CorruptData(f"the LMDB data file {path!r} is damaged: {why}")


def _check_data_file(path: str) -> None:
    """Refuse (``CorruptData``) a ``data.mdb`` that LMDB would map past its end.

    LMDB trusts the meta pages: a file cut short makes the first touch of a missing page kill
    the process with SIGBUS.  So this reads both meta pages and checks they are LMDB's and
    that the file holds every page the newest of them refers to.  An empty or missing file is
    damage too when the directory's marker says a store was created here.
    """
    data = os.path.join(path, "data.mdb")
    marked = os.path.exists(os.path.join(path, _MARKER))
    try:
        with open(data, "rb") as f:
            head = f.read(META.size)
            if not head:
                if marked:
                    raise _corrupt_file(data, "it is empty, but a store was created here")
                return  # a store whose creation never finished: LMDB starts it afresh
            if len(head) < META.size:
                raise _corrupt_file(data, f"{len(head)} bytes is too short for an LMDB meta page")
            first = META.unpack(head)
            psize = first[_PSIZE_INDEX]
            if psize < 512 or psize > 1 << 16 or psize & (psize - 1):
                raise _corrupt_file(data, f"meta page 0 gives an impossible page size {psize}")
            f.seek(psize)
            tail = f.read(META.size)
            # The size after the meta pages: a commit in another process writes its pages
            # before the meta page that names them, so a file growing meanwhile is never short
            size = os.fstat(f.fileno()).st_size
            if len(tail) < META.size:
                raise _corrupt_file(data, f"{size} bytes cannot hold the two meta pages")
            second = META.unpack(tail)
    except FileNotFoundError:
        if marked:
            raise _corrupt_file(data, "it is missing, but a store was created here") from None
        return
    except PermissionError:
        return  # LMDB's open reports this, as PermissionError naming the path
    except OSError as exc:
        raise _corrupt_file(data, f"cannot read its meta pages: {exc}") from exc
    for n, meta in enumerate((first, second)):
        magic, version = meta[5], meta[6]
        if magic != _META_MAGIC or version != _META_VERSION:
            raise _corrupt_file(
                data, f"meta page {n} is not an LMDB one (magic {magic:#x}, version {version})"
            )
    last_pgno, _txnid = max((first, second), key=lambda m: m[-1])[-2:]
    needed = (last_pgno + 1) * psize
    if size < needed:
        raise _corrupt_file(
            data, f"it is {size} bytes but its pages reach {needed} bytes (truncated?)"
        )


def _check_structure(path: str, env: lmdb.Environment) -> str:
    """Walk the newest snapshot's pages (:func:`check_pages`) before LMDB itself reads any.

    The read transaction held meanwhile keeps writers in other processes from reusing its
    pages, so a concurrent commit can never look like damage.  Returns the file's stamp as it
    was walked (for the caller to :func:`vouch`), or ``""`` when its stamp already vouched
    for it.  Closes ``env`` on damage.
    """
    data = os.path.join(path, _DATA_FILE)
    try:
        psize = env.stat()["psize"]
        for _attempt in range(100):
            try:
                txn = env.begin()
            except lmdb.MapResizedError:  # another process grew the map: adopt its size
                env.set_mapsize(0)
                continue
            with txn:
                txnid = txn.id()
                before = stamp(data, txnid)
                if vouched(path, before):
                    return ""
                if check_pages(data, psize, txnid):
                    return before  # as it was before the walk: a change since is walked
        raise KVError(f"cannot check {data!r}: its snapshots kept changing while read")
    except BaseException:
        env.close()
        raise


def _mark_created(path: str) -> None:
    """Write the marker once ``data.mdb`` holds a store (best effort: it is a safety net)."""
    marker = os.path.join(path, _MARKER)
    if os.path.exists(marker):
        return
    tmp = f"{marker}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(_MARKER_TEXT)
        os.replace(tmp, marker)
    except OSError:
        with suppress(OSError):
            os.unlink(tmp)  # e.g. a full disk: leave no scratch file behind


_REGISTRY: dict[tuple[int, int], _Environment] = {}
_REGISTRY_LOCK = threading.Lock()


def _check_directory(path: str, readonly: bool, create: bool) -> tuple[os.stat_result, bool]:
    """Check (creating it when allowed) the store directory; errors name the path.

    Returns its stat and whether this call created it.
    """
    why = "opening read-only creates nothing" if readonly else "create=False creates nothing"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if readonly or not create:
            raise FileNotFoundError(errno.ENOENT, f"no LMDB store here ({why})", path) from None
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                raise StoreFull(
                    f"the disk is full: cannot create the LMDB store directory {path!r}"
                ) from exc
            raise type(exc)(
                exc.errno, f"cannot create the LMDB store directory: {exc.strerror}", path
            ) from exc
        return os.stat(path), True
    except PermissionError:
        raise PermissionError(
            errno.EACCES, "permission denied looking up the LMDB store", path
        ) from None
    except NotADirectoryError:
        raise NotADirectoryError(
            errno.ENOTDIR, "a component of the LMDB store path is not a directory", path
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(
            errno.ENOTDIR, "an LMDBStore path must be a directory, but this is not", path
        )
    if (readonly or not create) and not os.path.exists(os.path.join(path, "data.mdb")):
        raise FileNotFoundError(
            errno.ENOENT, f"the directory holds no LMDB store (no data.mdb; {why})", path
        )
    return st, False


def _preallocate_lock_file(path: str) -> None:
    """Give ``lock.mdb`` real disk blocks before LMDB maps it (issue 9, defect 2).

    LMDB sizes the lock file with ``ftruncate`` and writes it through ``mmap``: on a full disk
    the file is sparse and the first write to it kills the process with SIGBUS.  Allocating the
    missing part first (``posix_fallocate``; where that is unsupported, a free-space check)
    turns that into :class:`StoreFull`.  Only the part beyond the current end is allocated, so
    a lock file other processes are using is never written -- except a sparse one beside no
    ``data.mdb`` (left by a creation that died), which is allocated whole.
    """
    lock = os.path.join(path, _LOCK_FILE)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        if exc.errno in _FULL_ERRNOS:
            raise StoreFull(f"the disk holding {path!r} is full: cannot create {lock!r}") from exc
        return  # LMDB's own open reports it (permissions and the like), naming the path
    try:
        st = os.fstat(fd)
        size = st.st_size
        if (
            size
            and st.st_blocks * 512 < size
            and not os.path.exists(os.path.join(path, _DATA_FILE))
        ):
            size = 0  # a sparse leftover of a creation that died (no store yet): allocate it all
        if size >= _LOCK_FILE_SIZE:
            return
        try:
            os.posix_fallocate(fd, size, _LOCK_FILE_SIZE - size)
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                raise StoreFull(
                    f"the disk holding {path!r} is full: no room for the LMDB lock file "
                    f"({_LOCK_FILE_SIZE} bytes); nothing was created"
                ) from exc
            # Not supported here (EOPNOTSUPP, EINVAL): at least refuse a visibly full disk.
            vfs = os.fstatvfs(fd)
            if vfs.f_bavail * vfs.f_frsize < _LOCK_FILE_SIZE - size + _SPACE_PROBE:
                raise StoreFull(
                    f"the disk holding {path!r} is full: no room for the LMDB lock file"
                ) from exc
    finally:
        os.close(fd)


def _remove_created(path: str, files: list[str], directory: bool) -> None:
    """Undo a failed creation: remove the ``files`` it made, and ``path`` if it made that."""
    for name in files:
        with suppress(OSError):
            os.unlink(os.path.join(path, name))
    if directory:
        with suppress(OSError):
            os.rmdir(path)  # only if empty: never anything someone else put there


def _open_environment(
    path: str, map_size: int, sync: bool, readonly: bool, create: bool, adopt: bool = False
) -> _Environment:
    """Open (or share the already open) environment in directory ``path``."""
    st, created_dir = _check_directory(path, readonly, create)
    key = (st.st_dev, st.st_ino)
    with _REGISTRY_LOCK:
        shared = _REGISTRY.get(key)
        if shared is not None and shared.pid != os.getpid():
            shared = None  # inherited through fork(): LMDB handles do not survive it
        if shared is not None and shared.readonly and not readonly:
            raise ValueError(
                f"{path!r} is already open read-only in this process; close that store first"
            )
        if shared is None:
            # What a failed creation must remove again (a full disk leaves nothing behind).
            fresh = [
                name
                for name in (_LOCK_FILE, _DATA_FILE, STAMP)
                if not os.path.exists(os.path.join(path, name))
            ]
            try:
                if not readonly and hasattr(os, "posix_fallocate"):
                    _preallocate_lock_file(path)
                _check_data_file(path)
                env = _open_lmdb(path, map_size, sync, readonly)
                sound = _check_structure(path, env)
                shared = _Environment(path, env, readonly, not sync, adopt)
                if sound and not readonly:  # never written by a read-only open, nor before
                    vouch(path, sound)  # the environment is known to be kvstore's
            except StoreFull:
                _remove_created(path, fresh, created_dir)
                raise
            if not readonly:
                _mark_created(path)
            shared.key = key
            _REGISTRY[key] = shared
        shared.refs += 1
        return shared


def _open_lmdb(path: str, map_size: int, sync: bool, readonly: bool) -> lmdb.Environment:
    """Open the environment; read-only on files this process cannot write, without locking.

    A read-only open normally still writes its reader slot into ``lock.mdb``; when that file
    (or the directory, to create it) is not writable, LMDB cannot lock at all, so the read-only
    open retries without the lock file -- reading read-only media or someone else's files
    works, and nothing is written.  (Without the lock, a writer in another process could
    reuse pages this reader still reads: only do that where no one can write.)
    """
    options: dict[str, Any] = {
        "map_size": map_size,
        "subdir": True,
        "readonly": readonly,
        "sync": sync,
        "create": False,
        "max_dbs": _MAX_DBS,
        "max_readers": _MAX_READERS,
        "max_spare_txns": _MAX_SPARE_TXNS,
    }
    try:
        return lmdb.open(path, **options)
    except lmdb.Error as exc:
        code = getattr(exc, "code", 0)
        denied = isinstance(exc, lmdb.ReadonlyError) or code in (
            errno.EACCES,
            errno.EPERM,
            errno.EROFS,
        )
        if not (readonly and denied):
            raise _open_error(path, exc) from exc
    try:
        return lmdb.open(path, lock=False, **options)
    except lmdb.Error as exc:
        raise _open_error(path, exc) from exc


def _open_error(path: str, exc: lmdb.Error) -> Exception:
    code = getattr(exc, "code", 0)
    if isinstance(exc, lmdb.ReadonlyError) or code in (errno.EACCES, errno.EPERM):
        return PermissionError(
            errno.EACCES,
            "permission denied opening the LMDB store (even read-only use needs write "
            f"access to lock.mdb): {exc}",
            path,
        )
    if isinstance(exc, _CORRUPT_ERRORS):
        return CorruptData(f"{path!r} does not hold a valid kvstore LMDB store: {exc}")
    if code == errno.ENOENT:
        return FileNotFoundError(errno.ENOENT, f"no LMDB store here: {exc}", path)
    if code == errno.ENOTDIR:
        return NotADirectoryError(errno.ENOTDIR, f"not a directory: {exc}", path)
    if code in _FULL_ERRNOS:
        return _store_full(path, "opening", exc)
    return KVError(f"cannot open the LMDB store at {path!r}: {exc}")


def _foreign_entry(env: lmdb.Environment, names: tuple[bytes, ...]) -> bytes | None:
    """The first key of the main database that is not one of kvstore's databases, if any.

    A kvstore environment's main database holds its named databases (all of them: they are
    created in one transaction), and nothing else unless it was adopted; any other key, in an
    environment without them, means it belongs to someone else.  Reads a few keys at most.
    """
    with env.begin() as txn:
        if all(txn.get(name) is not None for name in names):
            return None  # a kvstore store (perhaps an adopted one)
        for key in txn.cursor().iternext(keys=True, values=False):
            if key not in names:
                found: bytes = key
                return found
    return None


def _open_databases(
    path: str, env: lmdb.Environment, readonly: bool, adopt: bool = False
) -> tuple[_Db, _Db, _Db]:
    """Open (creating unless read-only) the three named databases.

    An environment whose main database holds anything else was not made by kvstore: opening
    it for writing raises :class:`NotAKVStore` before anything is written, unless ``adopt``
    (then kvstore's databases are added beside what is there, which stays untouched).  An
    empty environment is initialized as a new store.

    Another process may have grown the map past ours (MapResizedError: adopt its size) and a
    tiny map may be too small even for this (MapFullError: double it); both retry.
    """
    names = (_DATA_DB, _EMPTY_DB, _META_DB)
    try:
        while True:
            try:
                if readonly:
                    dbs = [env.open_db(name, create=False) for name in names]
                elif not adopt and (foreign := _foreign_entry(env, names)) is not None:
                    env.close()
                    raise NotAKVStore(
                        f"{path!r} is an LMDB environment not made by kvstore (its main database"
                        f" holds {foreign[:40]!r}); refusing to write into it -- pass"
                        " adopt=True to add a kvstore store beside its data"
                    )
                else:
                    with env.begin(write=True) as txn:
                        dbs = [env.open_db(name, txn=txn) for name in names]
                return dbs[0], dbs[1], dbs[2]
            except lmdb.MapResizedError:
                env.set_mapsize(0)
            except lmdb.MapFullError:
                size = env.info()["map_size"]
                if size >= _MAX_MAP_SIZE:
                    raise
                env.set_mapsize(min(size * 2, _MAX_MAP_SIZE))
    except lmdb.NotFoundError as exc:
        env.close()
        raise NotAKVStore(f"{path!r} is an LMDB store but not a kvstore one: {exc}") from exc
    except lmdb.Error as exc:
        env.close()
        raise _open_error(path, exc) from exc


# -- reading and writing inside one transaction ----------------------------------------------
def _seek(cursor: lmdb.Cursor[bytes], lo: bytes) -> bool:
    """Position ``cursor`` on the first key ``>= lo``; False when there is none.

    ``lo`` may be one byte longer than LMDB's key limit (the successor of a longest key), which
    LMDB cannot seek to: seek to its truncation, then step over the one key that can lie
    between (the truncation itself).
    """
    if not lo:
        return cursor.first()
    if len(lo) <= MAX_KEY_SIZE:
        return cursor.set_range(lo)
    found = cursor.set_range(lo[:MAX_KEY_SIZE])
    if found and cursor.key() < lo:
        found = cursor.next()
    return found


def _seek_before(cursor: lmdb.Cursor[bytes], hi: bytes | None) -> bool:
    """Position ``cursor`` on the last key ``< hi`` (``None``: the last key)."""
    if hi is None:
        return cursor.last()
    if not cursor.set_range(hi[:MAX_KEY_SIZE]):
        return cursor.last()
    if cursor.key() >= hi:
        return cursor.prev()
    return True


def _below(hi: bytes | None, pairs: Iterator[P]) -> Iterator[P]:
    """``pairs`` up to the first whose key is ``>= hi``, tested in C (``(hi,) > pair``).

    So a cursor stops at the bound and copies no value past it.
    """
    if hi is None:
        return pairs
    return itertools.takewhile(functools.partial(operator.gt, (hi,)), pairs)


def _scan(
    txn: _Txn,
    data: _Db,
    empty: _Db,
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    limit: int,
    collect: Callable[[Iterable[KVPair], int], list[KVPair]],
) -> list[KVPair]:
    """Up to ``limit`` pairs of ``[lo, hi)`` in iteration order, read in one transaction.

    The cursor loop runs in C (PERFORMANCE R5): ``islice(map(...), iternext())``.  A bound
    stops it through ``takewhile`` with a C-level test (``(hi,) > pair`` is ``key < hi``), so
    a bounded scan copies at most one value past its bound, never ``limit`` of them (which
    cost a region read 1 MiB of copies per 64 KiB page).  ``collect(pairs, limit)`` makes
    the list: ``collect_tracked`` or, for a consumer that keeps the pairs, ``collect_pairs``.
    """
    if hi is not None and hi <= lo:
        return []
    out: list[KVPair] = []
    with txn.cursor(data) as cursor:
        if reverse:
            if _seek_before(cursor, hi):
                pairs: Iterator[KVPair] = map(_new, _PAIRS, cursor.iterprev())
                if lo:  # (lo,) <= pair is key >= lo
                    pairs = itertools.takewhile(functools.partial(operator.le, (lo,)), pairs)
                out = collect(pairs, limit)
            if not lo and len(out) < limit:
                value = txn.get(_EMPTY_SLOT, db=empty)
                if value is not None:
                    out.append(KVPair(b"", value))
            return out
        if not lo:
            value = txn.get(_EMPTY_SLOT, db=empty)
            if value is not None:
                out.append(KVPair(b"", value))
                limit -= 1
                if not limit:
                    return out
        if _seek(cursor, lo):
            forward = _below(hi, map(_new, _PAIRS, cursor.iternext()))
            batch = collect(forward, limit)
            if out:
                out += batch
            else:
                out = batch
    return out


def _delete_range(txn: _Txn, db: _Db, lo: bytes, hi: bytes | None) -> None:
    """Delete the keys of ``[lo, hi)`` from ``db`` (whose keys are never empty)."""
    if hi is not None and hi <= lo:
        return
    if not lo and hi is None:
        txn.drop(db, delete=False)
        return
    with txn.cursor(db) as cursor:
        if not _seek(cursor, lo):
            return
        key = cursor.key()
        # delete() moves to the next key; past the end the cursor is unpositioned, key() b"".
        while key and (hi is None or key < hi):
            cursor.delete()
            key = cursor.key()


def _apply(
    txn: _Txn,
    data: _Db,
    empty: _Db,
    removes: list[KeyRange],
    puts: _Puts,
    adjusts: list[tuple[bytes, int]],
) -> None:
    """Apply checked mutations in one write transaction: removes, then puts, then adjusts."""
    for r in removes:
        lo, hi = r.min_key, r.max_key
        if not lo and hi != b"":
            txn.delete(_EMPTY_SLOT, db=empty)
        _delete_range(txn, data, lo, hi)
    if isinstance(puts, SortedMap):
        _put_map(txn, data, empty, puts)
    elif puts:
        rest = puts
        if not puts[0][0]:  # sorted: the empty key, if present, comes first
            txn.put(_EMPTY_SLOT, puts[0][1], db=empty)
            rest = puts[1:]
        if len(rest) == 1:
            txn.put(rest[0][0], rest[0][1], db=data)
        elif rest:
            with txn.cursor(data) as cursor:
                _putmulti(cursor, rest, rest[0][0])
    for key, amount in adjusts:
        _adjust(txn, data if key else empty, key or _EMPTY_SLOT, amount)


#: Puts to apply: checked pairs, or a trusted Writes' own map (see _checked).
_Puts = list[tuple[bytes, bytes]] | SortedMap[bytes, bytes]


def _checked(
    mutations: Mutations,
) -> tuple[
    list[KeyRange], list[tuple[bytes, bytes]] | SortedMap[bytes, bytes], list[tuple[bytes, int]]
]:
    """The mutations to apply, checked; a ``Writes`` is trusted and its puts not copied.

    A ``Writes`` checked every item as it was recorded; one edited by hand into holding a bad
    item still fails inside the write transaction, which then aborts: nothing is written
    either way, and the hot paths skip a pass over every item (PERFORMANCE R4, R6).
    """
    if type(mutations) is Writes:
        removes, adjusts = mutations.removes, mutations.adjusts
        return (
            list(removes) if removes._ends or removes._pending else [],
            mutations.puts,
            list(adjusts.items()) if dict.__len__(adjusts) else [],
        )
    return checked_mutations(mutations)


def _put_map(txn: _Txn, data: _Db, empty: _Db, puts: SortedMap[bytes, bytes]) -> None:
    """Put a Writes' puts straight from its map: no list of pairs is built (PERFORMANCE R4)."""
    count = len(puts)
    if count <= FEW_KEYS:  # a few descents cost less than sorting and seeking a cursor
        put = txn.put
        for key, value in dict.items(puts):
            if key:
                put(key, value, db=data)
            else:
                put(_EMPTY_SLOT, value, db=empty)
        return
    start = 0
    if b"" in puts:  # the smallest key: first in sorted order
        txn.put(_EMPTY_SLOT, puts[b""], db=empty)
        start = 1
    with txn.cursor(data) as cursor:
        _putmulti(cursor, puts.iter_items(start), puts.peekitem(start)[0])


def _putmulti(
    cursor: lmdb.Cursor[bytes], items: Iterable[tuple[bytes, bytes]], first: bytes
) -> None:
    """Put sorted, distinct ``items`` (the least key ``first``) in one C call (R3/R4).

    When they all sort after the database's last key -- a fresh store, or keys that grow
    like times or sequence numbers -- LMDB appends them without searching (``MDB_APPEND``):
    a bulk load then costs less than a sorted ``putmulti`` into the same tree (R4, P1a).
    """
    append = not cursor.last() or cursor.key() < first
    cursor.putmulti(items, append=append)


def _adjust(txn: _Txn, db: _Db, key: bytes, amount: int) -> None:
    value = txn.get(key, db=db)
    if value is not None and len(value) == 8:
        total = int.from_bytes(value, "big", signed=True) + amount
        # Wrap modulo 2**64 into the signed range, like a Java long (kvstore.counters.wrap64).
        txn.put(key, (total & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"), db=db)


def _meta_key(key: Any, name: str = "key") -> bytes:
    if type(key) is bytes and 0 < len(key) <= MAX_KEY_SIZE:
        return key  # the commit log's own keys, on every commit: nothing to convert (R6)
    checked = check_key(key, name)
    if not checked:
        raise ValueError(f"a metadata {name} must not be empty")
    return checked


def _closed_begin(*args: Any, **kwargs: Any) -> Any:
    raise StoreClosed("the LMDBStore is closed")


# -- the store -------------------------------------------------------------------------------
class _TxnReader(FetchingStore):
    """What :class:`LMDBStore` and :class:`LMDBSnapshot` read alike, each through its own
    ``_read(fn)``: a fresh short transaction for the store, the snapshot's own for a snapshot."""

    _max_batch = _MAX_BATCH
    _data: _Db
    _empty: _Db
    _meta: _Db

    def _read(self, fn: Callable[[_Txn], T]) -> T:
        raise NotImplementedError

    def _fetch(self, lo: bytes, hi: bytes | None, reverse: bool, limit: int) -> list[KVPair]:
        data, empty = self._data, self._empty
        # PERFORMANCE R5: one short read per batch; nothing is held in between.
        return self._read(
            lambda txn: _scan(txn, data, empty, lo, hi, reverse, limit, collect_tracked)
        )

    def _fetch_kept(self, lo: bytes, hi: bytes | None, reverse: bool, limit: int) -> list[KVPair]:
        data, empty = self._data, self._empty  # the same, pairs built untracked (L0d, R5)
        return self._read(
            lambda txn: _scan(txn, data, empty, lo, hi, reverse, limit, collect_pairs)
        )

    def _get_slow(self, key: Any) -> bytes | None:
        key = check_key(key)
        if key:
            return self._read(lambda txn: txn.get(key))
        empty = self._empty
        return self._read(lambda txn: txn.get(_EMPTY_SLOT, db=empty))

    def meta_get(self, key: bytes) -> bytes | None:
        """Read ``key`` from the internal metadata database (not part of the user key space)."""
        key = _meta_key(key)
        meta = self._meta
        return self._read(lambda txn: txn.get(key, db=meta))


class LMDBStore(_TxnReader, AtomicKVStore):
    """A durable, ordered byte store in an LMDB environment (a directory).

    ``map_size`` is the initial size of the memory map (default 1 TiB on 64-bit: address space
    only, the file stays as small as the data); it grows automatically when full.
    ``sync=True`` makes every write durable when it returns; ``sync=False`` survives a process
    crash but may lose the latest writes on an OS crash or power loss.  ``readonly=True``
    opens an existing store for reading only (every mutation raises
    :class:`~kvstore.ReadOnlyError`); it writes nothing into the directory, and works on files
    it may not write (then without LMDB's lock file).  ``create=False`` refuses to create a
    missing store.  An LMDB environment that kvstore did not make (its main database holds
    other data) raises :class:`~kvstore.NotAKVStore` instead of being written into, unless
    ``adopt=True``: then kvstore's databases are added beside its data, which stays untouched.

    Errors on opening: a path that exists but is not a directory raises
    ``NotADirectoryError``; a missing store with ``create=False`` or ``readonly=True`` raises
    ``FileNotFoundError``; a data file that is not an LMDB store raises
    :class:`~kvstore.CorruptData`; missing permissions raise ``PermissionError``.  All name the
    path.

    Several processes (and several ``LMDBStore`` objects in one process) may open the same path;
    each sees the others' writes once committed.  Thread safe.  Beyond :class:`~kvstore.KVStore`:
    :meth:`sync`, :meth:`size_bytes`, :meth:`meta_get` and, for the transaction layer,
    :meth:`_atomic`.  See docs/lmdb.md.
    """

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the LMDBStore is closed")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int | None = None,
        sync: bool = True,
        readonly: bool = False,
        create: bool = True,
        adopt: bool = False,
    ) -> None:
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        fspath = os.fsdecode(os.fspath(path))
        map_size = _DEFAULT_MAP_SIZE if map_size is None else check_map_size(map_size)
        check_bool(sync, "sync")
        check_bool(readonly, "readonly")
        check_bool(create, "create")
        check_bool(adopt, "adopt")
        self._closed = True  # until fully open, so close() does nothing
        self._path = fspath
        self._sync = bool(sync)
        shared = _open_environment(fspath, map_size, self._sync, readonly, create, adopt)
        self._shared = shared
        self._readonly = bool(readonly)
        self._data = shared.data
        self._empty = shared.empty
        self._meta = shared.meta
        self._gate = shared.gate
        self._inside = shared.gate.inside
        self._begin: Callable[..., _Txn] = shared.env.begin
        self._finalizer = weakref.finalize(self, shared.release)
        self._closed = False

    # -- internals ---------------------------------------------------------------------------
    def _read(self, fn: Callable[[_Txn], T], action: str = "reading", keep: bool = False) -> T:
        """Run ``fn`` in a short read transaction (inside the resize gate).

        The transaction is aborted afterwards unless ``keep``: then ``fn`` owns it.
        """
        gate = self._gate
        while True:
            gate.enter()
            try:
                try:
                    txn = self._begin(self._data)
                except lmdb.MapResizedError:
                    pass  # adopt the new size below, outside the gate
                else:
                    if keep:
                        return fn(txn)
                    try:
                        return fn(txn)
                    finally:
                        txn.abort()
            except lmdb.Error as exc:
                raise self._error(exc, action) from exc
            finally:
                gate.exit()
            self._shared.adopt_map_size()

    def _write(self, fn: Callable[[_Txn], T], sync: bool | None = None) -> T:
        """Run ``fn`` in one write transaction and commit; grow the map and retry when full.

        If ``fn`` raises, the transaction is aborted and the exception propagates.  ``fn`` may
        run more than once (after the map grows), so it must not have outside side effects.
        """
        if self._closed:
            raise StoreClosed("the LMDBStore is closed")
        if self._readonly:
            raise ReadOnlyError(f"the LMDBStore at {self._path!r} was opened read-only")
        shared = self._shared
        begin = shared.env.begin
        with shared.write_lock:
            while True:
                try:
                    txn = begin(self._data, None, True)
                except lmdb.MapResizedError:
                    shared.adopt_map_size()
                    continue
                except lmdb.Error as exc:
                    raise self._error(exc, "writing") from exc
                try:
                    result = fn(txn)
                    txn.commit()
                except (lmdb.MapFullError, _MapFull):
                    shared.abort_write(txn)
                    shared.grow()
                    continue
                except lmdb.Error as exc:
                    shared.abort_write(txn)
                    raise self._error(exc, "writing") from exc
                except BaseException:
                    shared.abort_write(txn)
                    raise
                break
        if (self._sync if sync is None else sync) and shared.nosync:
            try:
                shared.env.sync(True)
            except lmdb.Error as exc:
                raise self._error(exc, _FLUSHING) from exc
        return result

    def _error(self, exc: lmdb.Error, action: str) -> Exception:
        if self._closed:
            return StoreClosed("the LMDBStore is closed")
        return self._shared.error(exc, action)

    # -- KVStore: reads ----------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        # PERFORMANCE R1: the usual case inlines the gate and one short read transaction;
        # anything else (bad or empty key, resize, LMDB error) takes _get_slow.
        if type(key) is bytes and len(key) <= MAX_KEY_SIZE:
            inside = self._inside
            inside.append(None)
            try:
                if not self._gate.resizing:
                    txn = self._begin(self._data)
                    try:
                        return txn.get(key)  # b"" raises BadValsizeError: handled below
                    finally:
                        txn.abort()
            except lmdb.Error:
                pass
            finally:
                inside.pop()
                if self._gate.resizing:
                    self._gate.wake()
        return self._get_slow(key)

    # -- KVStore: writes ---------------------------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        key = check_key(key)
        value = check_value(value)
        if key:
            self._write(lambda txn: txn.put(key, value))
        else:
            empty = self._empty
            self._write(lambda txn: txn.put(_EMPTY_SLOT, value, db=empty))

    def remove(self, key: bytes) -> None:
        key = check_key(key)
        if key:
            self._write(lambda txn: txn.delete(key))
        else:
            empty = self._empty
            self._write(lambda txn: txn.delete(_EMPTY_SLOT, db=empty))

    def remove_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        """Remove every key of ``[min_key, max_key)`` in one write transaction."""
        lo, hi = check_bounds(min_key, max_key)
        data, empty = self._data, self._empty
        self._write(lambda txn: _apply(txn, data, empty, [KeyRange._make(lo, hi)], [], []))

    def adjust_counter(self, key: bytes, amount: int) -> None:
        """Add ``amount`` to the counter at ``key`` in one write transaction (see KVStore)."""
        key = check_key(key)
        amount = check_amount(amount)
        db = self._data if key else self._empty
        slot = key or _EMPTY_SLOT
        self._write(lambda txn: _adjust(txn, db, slot, amount))

    def apply(self, mutations: Mutations, sync: bool | None = None) -> None:
        """Apply ``mutations`` in one write transaction: all of them or, on error, none.

        ``sync=True`` flushes to disk before returning even on a ``sync=False`` store;
        ``sync=False`` cannot skip the flush on a ``sync=True`` store (LMDB syncs every commit
        of such an environment).  Every item is checked before the transaction begins.
        """
        check_optional_bool(sync, "sync")
        removes, puts, adjusts = _checked(mutations)
        data, empty = self._data, self._empty
        self._write(lambda txn: _apply(txn, data, empty, removes, puts, adjusts), sync)

    # -- transactions (internal hook for kvstore.database) -----------------------------------
    def _atomic(self, fn: Callable[[LMDBBatch], T], sync: bool | None = None) -> T:
        """Run ``fn(batch)`` in ONE write transaction and commit; return its result.

        If ``fn`` raises, the transaction is aborted (nothing is written) and the exception
        propagates.  ``fn`` may be re-run from scratch when the map must grow, so it must have
        no side effects outside the batch.  The batch is only valid during the call.
        """

        def run(txn: _Txn) -> T:
            batch = LMDBBatch(self, txn)
            try:
                result = fn(batch)
                if batch._map_full:
                    raise _MapFull  # fn swallowed it; the transaction is unusable anyway
                return result
            finally:
                batch._txn = None

        return self._write(run, sync)

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> LMDBSnapshot:
        """A read-only store frozen now: one LMDB read transaction held until ``close()``.

        It holds an LMDB reader slot and keeps the pages it sees from being reused, so close
        it promptly (or use it as a context manager).
        """
        return self._snapshot_and_meta(None)[0]

    def _snapshot_and_meta(self, meta_key: bytes | None) -> tuple[LMDBSnapshot, bytes | None]:
        """A :meth:`snapshot`, and the value of metadata ``meta_key`` in it (if not None).

        For the commit log, whose every transaction reads the version with its snapshot:
        one read instead of two (PERFORMANCE R6).
        """
        # PERFORMANCE R6, L1: every transaction that reads starts here.  The usual case
        # inlines the gate, as get() does; a resize or an LMDB error takes the general path.
        inside = self._inside
        inside.append(None)
        try:
            if not self._gate.resizing:
                try:
                    txn = self._begin(self._data)
                except lmdb.Error:
                    pass  # MapResizedError, or a closed store: _read says which
                else:
                    return self._adopt(txn, meta_key)
        finally:
            inside.pop()
            if self._gate.resizing:
                self._gate.wake()
        return self._read(
            functools.partial(self._adopt, meta_key=meta_key), "taking a snapshot", keep=True
        )

    def _adopt(self, txn: _Txn, meta_key: bytes | None) -> tuple[LMDBSnapshot, bytes | None]:
        """Make read transaction ``txn`` a registered snapshot (or abort it and raise)."""
        try:
            value = None if meta_key is None else txn.get(meta_key, db=self._meta)
        except lmdb.Error as exc:
            txn.abort()
            raise self._error(exc, "taking a snapshot") from exc
        snap = LMDBSnapshot(self, txn)
        shared = self._shared
        with shared.lock:
            if not self._closed:  # else close() has already collected ours
                shared.snapshots.add(snap)
                return snap, value
        txn.abort()
        raise StoreClosed("the LMDBStore is closed")

    # -- durability and size -----------------------------------------------------------------
    def sync(self) -> None:
        """Flush every committed write to disk (what ``sync=True`` does after each write).

        Useful on a ``sync=False`` store; nothing to do on a read-only one.
        """
        if self._closed:
            raise StoreClosed("the LMDBStore is closed")
        if self._readonly:
            return
        try:
            self._shared.env.sync(True)
        except lmdb.Error as exc:
            raise self._error(exc, _FLUSHING) from exc

    def size_bytes(self) -> int:
        """The size of the data file on disk, in bytes."""
        if self._closed:
            raise StoreClosed("the LMDBStore is closed")
        try:
            return os.path.getsize(os.path.join(self._path, "data.mdb"))
        except OSError:
            return 0

    def backup(self, dest: str | os.PathLike[str], *, compact: bool = True) -> None:
        """Write a consistent copy of the store into ``dest``, a new or empty directory.

        The copy is made from one read snapshot (LMDB's ``env.copy``), so writers go on
        meanwhile and the copy holds exactly the commits made before it began.  ``compact``
        leaves free pages out, so the copy is often much smaller than ``data.mdb``.  On any
        failure nothing is left in ``dest`` but what was there (nothing).  The copy opens
        with ``LMDBStore(dest)`` / ``kvstore.open(dest)``.
        """
        check_bool(compact, "compact")
        if not isinstance(dest, (str, os.PathLike)):
            raise TypeError(f"dest must be a str or os.PathLike, not {type(dest).__name__}")
        if self._closed:
            raise StoreClosed("the LMDBStore is closed")
        target = os.path.abspath(os.fspath(dest))
        if os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
            raise FileExistsError(
                errno.EEXIST, "backup destination is not an empty directory", target
            )
        created = not os.path.exists(target)
        os.makedirs(target, exist_ok=True)
        try:
            self._shared.env.copy(target, compact=compact)
            _mark_created(target)
        except BaseException as exc:
            for name in ("data.mdb", "lock.mdb", _MARKER):
                with suppress(OSError):
                    os.remove(os.path.join(target, name))
            if created:
                with suppress(OSError):
                    os.rmdir(target)
            if isinstance(exc, lmdb.Error):
                raise self._error(exc, "backing up") from exc
            raise

    # -- life cycle --------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The directory holding the store."""
        return self._path

    @property
    def readonly(self) -> bool:
        """Whether the store was opened with ``readonly=True``."""
        return self._readonly

    def close(self) -> None:
        """Close the store and its open snapshots; later use raises StoreClosed.  Idempotent."""
        if self._closed:
            return
        shared = self._shared
        with shared.lock:
            if self._closed:
                return
            self._closed = True
            self._begin = _closed_begin
            mine = [snap for snap in shared.snapshots if snap._store is self]
        for snap in mine:
            snap.close()
        self._finalizer()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "read-only" if self._readonly else "open"
        return f"<LMDBStore {self._path!r} {state}>"


# -- snapshots -------------------------------------------------------------------------------
class LMDBSnapshot(ReadOnlyStore, _TxnReader):
    """A frozen, read-only view of an :class:`LMDBStore`: one LMDB read transaction.

    It may be used from any thread (py-lmdb opens environments with ``MDB_NOTLS``).  Its
    iterators read in batches through cursors on the same transaction.  ``close()`` releases
    the transaction; it is idempotent and later use raises :class:`~kvstore.StoreClosed`.

    If the map must grow while the snapshot is open, LMDB ends its transaction.  It is renewed
    transparently when nothing was committed since the snapshot began; otherwise its data is
    gone and the next use raises :class:`~kvstore.TransactionTooOld` (take a new snapshot).
    """

    def _check_open(self) -> None:
        self._live_txn()

    def __init__(self, store: LMDBStore, txn: _Txn) -> None:
        self._store = store
        self._shared = store._shared
        self._data = store._data
        self._empty = store._empty
        self._meta = store._meta
        self._gate = store._gate
        self._txn: _Txn | None = txn
        self._txn_id = txn.id()
        self._expired = False
        self._closed = False
        # PERFORMANCE R2: get() calls this bound method directly.
        self._get: Callable[[bytes], bytes | None] = txn.get

    # -- internals ---------------------------------------------------------------------------
    def _live_txn(self) -> _Txn:
        txn = self._txn
        if txn is None:
            if self._expired and not self._closed:
                raise TransactionTooOld(
                    "the snapshot was released when the LMDB map grew after newer commits; "
                    "take a new snapshot"
                )
            raise StoreClosed("the snapshot is closed")
        return txn

    def _revive(self) -> None:
        """After a map resize ended our transaction, renew it if the data is unchanged."""
        with self._shared.lock:
            if self._txn is None:
                return
            try:
                txn = self._shared.env.begin(self._data)
            except lmdb.Error:
                txn = None
            if txn is not None and txn.id() == self._txn_id:
                self._txn = txn
                self._get = txn.get
                return
            if txn is not None:
                txn.abort()
            self._txn = None
            self._expired = True
            self._get = self._get_slow
            self._shared.snapshots.discard(self)

    def _error(self, exc: lmdb.Error, action: str) -> Exception:
        self._live_txn()  # raises StoreClosed / TransactionTooOld when that is the cause
        return self._shared.error(exc, action)

    def _read(self, fn: Callable[[_Txn], T]) -> T:
        gate = self._shared.gate
        gate.enter()  # a resize waits for this read to finish, then renews our transaction
        try:
            return fn(self._live_txn())
        except lmdb.Error as exc:
            raise self._error(exc, "reading a snapshot") from exc
        finally:
            gate.exit()

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        if self._closed:
            raise StoreClosed("the snapshot is closed")
        raise ReadOnlyError("an LMDBSnapshot is read-only")

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        # PERFORMANCE R2: as close to a raw txn.get as it gets.  It does not register at the
        # gate (that costs ~10% of R2); it only stays out while a resize or abort runs, which
        # py-lmdb makes safe for calls already in flight: they fail with lmdb.Error and retry
        # in _get_slow.  The empty key (LMDB raises BadValsizeError), bad keys and a closed or
        # renewed transaction also go to _get_slow.
        if type(key) is bytes and len(key) <= MAX_KEY_SIZE and not self._gate.resizing:
            try:
                return self._get(key)
            except lmdb.Error:
                pass
        return self._get_slow(key)

    # -- life cycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Release the read transaction; later use raises StoreClosed.  Idempotent."""
        shared = self._shared
        with shared.lock:
            if self._closed:
                return
            self._closed = True
            txn, self._txn = self._txn, None
            self._get = self._get_slow
            shared.snapshots.discard(self)
        if txn is not None:
            try:
                txn.abort()
            except lmdb.Error:
                pass  # nothing left to release

    def __repr__(self) -> str:
        state = "closed" if self._closed else "expired" if self._expired else "open"
        return f"<LMDBSnapshot of {self._store.path!r} {state}>"


# -- the write batch of LMDBStore._atomic ----------------------------------------------------
class LMDBBatch:
    """One write transaction, as seen by the function given to :meth:`LMDBStore._atomic`.

    ``apply`` and ``get`` work on the user data; the ``meta_*`` methods on the internal
    metadata database, whose keys are 1 to :data:`~kvstore.MAX_KEY_SIZE` bytes.  Everything
    done here commits together or not at all.  Valid only during the ``_atomic`` call.
    """

    __slots__ = ("_map_full", "_store", "_txn")

    def __init__(self, store: LMDBStore, txn: _Txn) -> None:
        self._store = store
        self._txn: _Txn | None = txn
        self._map_full = False

    def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(txn, *args, **kwargs)`` on the batch's transaction, with LMDB errors mapped.

        Map-full becomes :class:`_MapFull`, which makes ``_atomic`` grow the map and start
        over; every later call fails the same way.
        """
        txn = self._txn
        if txn is None:
            raise RuntimeError("an LMDBBatch is only valid inside its _atomic() call")
        if self._map_full:
            raise _MapFull  # the transaction died of it; _atomic starts over with a bigger map
        try:
            return fn(txn, *args, **kwargs)
        except lmdb.MapFullError:
            self._map_full = True
            raise _MapFull from None
        except lmdb.Error as exc:
            raise self._store._error(exc, "writing") from exc

    # Every commit applies its writes, reads and writes the version record and appends one
    # log entry: these check only what is not already plain bytes, and make no closure (R6).
    def apply(self, mutations: Mutations) -> None:
        """Apply ``mutations`` to the user data (removes, puts, adjusts), checked first."""
        store = self._store
        self._run(_apply, store._data, store._empty, *_checked(mutations))

    def get(self, key: bytes) -> bytes | None:
        """The user value of ``key`` in this transaction (its own writes included)."""
        key = check_key(key)
        if key:
            return self._run(_TXN_GET, key, db=self._store._data)
        return self._run(_TXN_GET, _EMPTY_SLOT, db=self._store._empty)

    def meta_get(self, key: bytes) -> bytes | None:
        """The metadata value of ``key``, or ``None``."""
        key = _meta_key(key)
        return self._run(_TXN_GET, key, db=self._store._meta)

    def meta_put(self, key: bytes, value: bytes) -> None:
        """Set metadata ``key`` to ``value``."""
        key = _meta_key(key)
        if type(value) is not bytes:
            value = check_value(value)
        self._run(_TXN_PUT, key, value, db=self._store._meta)

    def meta_delete(self, key: bytes) -> None:
        """Delete metadata ``key`` (nothing happens when it is absent)."""
        key = _meta_key(key)
        self._run(_TXN_DELETE, key, db=self._store._meta)

    def meta_range(
        self, min_key: bytes | None = None, max_key: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate the metadata pairs of ``[min_key, max_key)`` in key order.

        Lazy: consume it inside the ``_atomic`` call.  Deleting while iterating is allowed.
        """
        lo, hi = check_bounds(min_key, max_key)
        return self._meta_iter(lo, hi)

    def _meta_iter(self, lo: bytes, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        meta = self._store._meta
        after = lo
        size = _FIRST_META_CHUNK
        while True:
            # Re-seek per chunk, so deletes between chunks never confuse the cursor.
            chunk = self._run(_meta_chunk, meta, after, hi, size)
            yield from chunk
            if len(chunk) < size:
                return
            after = chunk[-1][0] + b"\x00"
            size = min(2 * size, _META_CHUNK)

    def meta_delete_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        """Delete the metadata keys of ``[min_key, max_key)``."""
        lo, hi = check_bounds(min_key, max_key)
        self._run(_delete_range, self._store._meta, lo, hi)


_TXN_GET = lmdb.Transaction.get
_TXN_PUT = lmdb.Transaction.put
_TXN_DELETE = lmdb.Transaction.delete
#: Metadata is read in chunks growing from the first to the last size: a trim that looks at
#: only the oldest entry or two reads few (PERFORMANCE R6), a long scan reads many per call.
_FIRST_META_CHUNK = 8
_META_CHUNK = 256


def _meta_chunk(
    txn: _Txn, meta: _Db, lo: bytes, hi: bytes | None, size: int
) -> list[tuple[bytes, bytes]]:
    with txn.cursor(meta) as cursor:
        if not _seek(cursor, lo):
            return []
        return list(itertools.islice(_below(hi, cursor.iternext()), size))
