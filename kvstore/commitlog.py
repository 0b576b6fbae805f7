"""The commit log: what each recent commit wrote, so later commits can be checked against it.

Optimistic transactions validate at commit time: every commit made since a transaction's
snapshot is checked against the key ranges the transaction read.  The log holds, per commit
version, the *shape* of its writes (removed ranges, put keys, adjusted keys — never values)
and the wall-clock time it was made.  It keeps at least ``keep_commits`` entries and every
entry younger than ``keep_seconds`` -- as long as the entries kept fit in ``keep_bytes``
(default :data:`DEFAULT_HISTORY_BYTES`, 4 MiB); a snapshot older than the oldest entry is
too old (:class:`~kvstore.TransactionTooOld`), whichever bound dropped it.

Big commits are *coarsened* so one entry stays small: a commit that wrote more than
:data:`_COARSE_KEYS` keys and ranges, or whose exact entry would exceed :data:`_COARSE_BYTES`,
is recorded as a few key ranges covering everything it wrote (a bucket of consecutive written
keys becomes ``[first, last]``).  Every written key and removed range lies inside a recorded
range, so a read that conflicts with the exact writes conflicts with the coarse ones too: this
costs only false conflicts (reported as :class:`~kvstore.ReadRemoveConflict` over the covering
range), never a missed one.  Without it a 50k-key commit left a ~1 MiB entry per commit and
the LMDB file swelled ~80x over its live data (issue 9, defect 3).

The byte total is kept with the version (``commit/version`` holds the version, the bytes ever
appended and the bytes ever dropped), so bounding it costs no extra read per commit.

Its homes share this logic through :class:`LogBatch`: process memory for any
:class:`~kvstore.AtomicKVStore` (:class:`LocalLog`), the LMDB store's metadata database (so
every process sharing the path sees every commit, :mod:`kvstore.backends.lmdblog`), and
PostgreSQL's meta table.
"""

from __future__ import annotations

import struct
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate, repeat
from typing import Generic, Protocol, TypeVar

from sortedcontainers import SortedDict

from kvstore.conflicts import Conflict
from kvstore.errors import CorruptData, RetryTransaction, TransactionConflict, TransactionTooOld
from kvstore.keys import key_after
from kvstore.mutations import Mutations, Writes
from kvstore.ranges import KeyRange, KeyRanges
from kvstore.reads import Reads
from kvstore.sortedmap import FEW_KEYS
from kvstore.store import AtomicKVStore, KVStore

__all__ = [
    "DEFAULT_HISTORY_BYTES",
    "ENTRY_PREFIX",
    "VERSION_KEY",
    "CommitLog",
    "LocalLog",
    "LogBatch",
    "entry_key",
    "version_of",
]

T = TypeVar("T")
S = TypeVar("S")
#: One metadata record: key, value.
Item = tuple[bytes, bytes]

#: The metadata key of the version record: the last version, then the log's byte tally.
VERSION_KEY = _VERSION_KEY = b"commit/version"
#: The metadata keys of the log entries: this prefix, then the version (8 bytes, big-endian).
ENTRY_PREFIX = _ENTRY_PREFIX = b"commit/log/"
_U64 = struct.Struct(">Q")
#: ``commit/version``: the version, the entry bytes ever appended, the entry bytes ever dropped
#: (a store written before the byte bound holds the version alone: both counts read as 0).
_TALLY = struct.Struct(">QQQ")
_TIME = struct.Struct(">d")

#: The default byte budget of the log's entries (keys plus values): a few MiB, so the log stays
#: small next to the data while holding thousands of ordinary commits.
DEFAULT_HISTORY_BYTES = 4 * 1024 * 1024
#: A commit writing more keys and ranges than this is coarsened without measuring it.
_COARSE_KEYS = 512
#: An exact entry bigger than this is coarsened.
_COARSE_BYTES = 32 * 1024
#: How many commits apart the log looks for entries out of both retention windows.  Each
#: look costs a cursor walk and a page rewrite or two whatever it drops: looking rarely
#: drops many at once (PERFORMANCE R6).  The log then holds up to this many extra entries.
_TRIM_EVERY = 1024
#: When the entries exceed the byte budget, trimming drops this fraction of it more than it
#: must, so the next trim is thousands of commits away.
_TRIM_SLACK = 1 / 16
#: How many covering ranges a coarsened commit keeps per kind (removes, puts, adjusts).
_BUCKETS = 32


def entry_key(version: int) -> bytes:
    """The metadata key of commit ``version``'s log entry."""
    return _ENTRY_PREFIX + _U64.pack(version)


_entry_key = entry_key


#: How many recent commits' shapes the in-process cache keeps (older ones are read back).
_CACHE_SIZE = 4096


class Shape:
    """The keys one commit wrote: a :class:`Mutations` with empty values and zero amounts.

    Conflicts depend only on keys, so that is all the log keeps.  Made from a ``Writes`` by
    C-level list copies, and written to the log as key lengths plus the keys joined, so
    neither costs a Python step per key (PERFORMANCE R4, R10).
    """

    __slots__ = ("_adjusts", "_puts", "_removes", "size")

    def __init__(self, removes: list[KeyRange], puts: list[bytes], adjusts: list[bytes]) -> None:
        self._removes = removes
        self._puts = puts
        self._adjusts = adjusts
        #: The bytes of its log entry, once written or read (what the cache counts).
        self.size = 0

    @classmethod
    def of(cls, writes: Writes, coarse_keys: int = _COARSE_KEYS) -> Shape:
        """The shape of ``writes``: exact, or coarsened if it wrote over ``coarse_keys`` items."""
        removes, puts, adjusts = writes.removes, writes.puts, writes.adjusts
        count = dict.__len__(puts) + dict.__len__(adjusts)
        if removes._ends or removes._pending:
            count += len(removes)
        if count > coarse_keys:
            # Sorted already (a SortedMap iterates in order; KeyRanges' bounds are canonical):
            # a few index lookups per bucket, no Python step per key (PERFORMANCE R4).
            return cls._cover(removes._bounds(), list(puts), list(adjusts), _BUCKETS)
        return cls(
            list(removes) if removes._ends or removes._pending else [],
            # A few keys are sorted as a copy: skip the fold (PERFORMANCE R6).
            sorted(dict.keys(puts)) if dict.__len__(puts) <= FEW_KEYS else list(puts),
            sorted(dict.keys(adjusts)) if dict.__len__(adjusts) <= FEW_KEYS else list(adjusts),
        )

    @classmethod
    def _cover(
        cls,
        removes: tuple[list[bytes], list[bytes | None]],
        puts: list[bytes],
        adjusts: list[bytes],
        buckets: int,
    ) -> Shape:
        """A shape of ranges only, covering sorted ``puts``/``adjusts`` and canonical removes.

        Each kind is cut into at most ``buckets`` runs of consecutive items; a run becomes the
        range from its first item's start to its last item's end.  Items are sorted, so every
        item of a run lies inside its range: nothing written is left uncovered.
        """
        ranges = _cover_bounds(*removes, buckets)
        ranges += _cover_keys(puts, buckets)
        ranges += _cover_keys(adjusts, buckets)
        return cls(list(KeyRanges(ranges)), [], [])

    def coarsened(self, buckets: int = _BUCKETS) -> Shape:
        """This shape as at most ``3 * buckets`` ranges covering everything it wrote."""
        ranges = KeyRanges(self._removes)._bounds() if self._removes else ([], [])
        puts, adjusts = sorted(self._puts), sorted(self._adjusts)
        return self._cover(ranges, puts, adjusts, buckets)

    def remove_ranges(self) -> Iterable[KeyRange]:
        return self._removes

    def put_pairs(self) -> Iterable[tuple[bytes, bytes]]:
        return zip(self._puts, repeat(b""))

    def adjust_pairs(self) -> Iterable[tuple[bytes, int]]:
        return zip(self._adjusts, repeat(0))

    def encode(self) -> bytes:
        """``removes | puts | adjusts``: a KeyRanges blob, then two key lists (see _keys)."""
        if self._removes:
            removes = KeyRanges(self._removes).serialize()
            return b"".join(
                (
                    _U32.pack(len(removes)),
                    removes,
                    *_encode_keys(self._puts),
                    *_encode_keys(self._adjusts),
                )
            )
        return b"".join((_NO_REMOVES, *_encode_keys(self._puts), *_encode_keys(self._adjusts)))

    @classmethod
    def decode(cls, data: bytes) -> Shape:
        """Parse :meth:`encode`'s output; damage raises :class:`~kvstore.CorruptData`."""
        try:
            (size,) = _U32.unpack_from(data, 0)
            end = _U32.size + size
            if end > len(data):
                raise CorruptData("commit log entry: removes overrun the entry")
            removes = list(KeyRanges.deserialize(data[_U32.size : end])) if size else []
            puts, end = _decode_keys(data, end)
            adjusts, end = _decode_keys(data, end)
        except struct.error as e:
            raise CorruptData(f"commit log entry is truncated: {e}") from None
        if end != len(data):
            raise CorruptData("commit log entry has trailing bytes")
        return cls(removes, puts, adjusts)


def _cover_bounds(los: list[bytes], his: list[bytes | None], buckets: int) -> list[KeyRange]:
    """At most ``buckets`` ranges ``[los[i], his[j])`` covering every ``[los[k], his[k])``.

    The ranges must be canonical (sorted, disjoint, only the last unbounded): then a run's
    first start is its least key and its last end its greatest bound.
    """
    n = len(los)
    if not n:
        return []
    step = -(-n // buckets)
    return [KeyRange._make(los[i], his[min(i + step, n) - 1]) for i in range(0, n, step)]


def _cover_keys(keys: list[bytes], buckets: int) -> list[KeyRange]:
    """At most ``buckets`` ranges ``[keys[i], keys[j]]`` covering every key of sorted ``keys``."""
    n = len(keys)
    if not n:
        return []
    step = -(-n // buckets)
    return [
        KeyRange._make(keys[i], key_after(keys[min(i + step, n) - 1])) for i in range(0, n, step)
    ]


_U32 = struct.Struct("<I")
_NO_REMOVES = _U32.pack(0)
_U16 = struct.Struct("<H")
_NO_KEYS = (_U32.pack(0), b"", b"")
_ONE_KEY = _U32.pack(1)


def _encode_keys(keys: list[bytes]) -> tuple[bytes, bytes, bytes]:
    """A key list as: count (u32), lengths (u16 each, little-endian), the keys joined."""
    if not keys:
        return _NO_KEYS
    if len(keys) == 1:  # the common small commit (PERFORMANCE R6)
        return _ONE_KEY, _U16.pack(len(keys[0])), keys[0]
    lengths = array("H", map(len, keys))
    if sys.byteorder == "big":
        lengths.byteswap()
    return _U32.pack(len(keys)), lengths.tobytes(), b"".join(keys)


def _decode_keys(data: bytes, at: int) -> tuple[list[bytes], int]:
    (count,) = _U32.unpack_from(data, at)
    at += _U32.size
    if at + 2 * count > len(data):
        raise CorruptData("commit log entry: key count overruns the entry")
    lengths = array("H")
    lengths.frombytes(data[at : at + 2 * count])
    if sys.byteorder == "big":
        lengths.byteswap()
    at += 2 * count
    ends = list(accumulate(lengths, initial=at))
    if ends[-1] > len(data):
        raise CorruptData("commit log entry: keys overrun the entry")
    keys = list(map(data.__getitem__, map(slice, ends, ends[1:])))
    return keys, ends[-1]


class LogBatch(Protocol):
    """What a log needs from one atomic write: data mutations plus a metadata namespace."""

    def apply(self, mutations: Mutations) -> None: ...

    def meta_get(self, key: bytes) -> bytes | None: ...

    def meta_put(self, key: bytes, value: bytes) -> None: ...

    def meta_delete(self, key: bytes) -> None: ...

    def meta_delete_range(self, min_key: bytes, max_key: bytes | None) -> None: ...

    def meta_range(
        self, min_key: bytes, max_key: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]: ...


class CommitLog(Generic[S]):
    """Validation and bookkeeping over some :class:`LogBatch`; subclasses say where it lives.

    ``store`` is the store whose commits it logs (of type ``S``, the subclass's kind).
    """

    def __init__(
        self,
        store: S,
        keep_seconds: float,
        keep_commits: int,
        keep_bytes: int = DEFAULT_HISTORY_BYTES,
    ) -> None:
        self._store = store
        self.keep_seconds = keep_seconds
        self.keep_commits = keep_commits
        self.keep_bytes = keep_bytes
        # version -> (the keys it wrote, its entry's size); an entry never changes once written
        self._cache: dict[int, tuple[Shape, int]] = {}
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()
        self._commits_since_trim = 0
        self._trimmed = 0  # the newest version this process has dropped from the log
        # Within one write (writes are exclusive): entry bytes ever appended / ever dropped,
        # read with the version by read_version and stored back with it.
        self._appended = 0
        self._dropped = 0

    # -- to be provided by the home of the log ---------------------------------------------------
    def begin(self) -> tuple[KVStore, int]:
        """A snapshot and the version of the last commit it includes."""
        raise NotImplementedError

    def atomic(self, fn: Callable[[LogBatch], T], sync: bool | None) -> T:
        """Run ``fn`` in one all-or-nothing write; ``fn`` may be re-run from scratch."""
        raise NotImplementedError

    # -- shared logic ------------------------------------------------------------------------------
    def read_version(self, batch: LogBatch) -> int:
        """The current version, at the start of a write (also loads the byte tally)."""
        return self.load_tally(batch.meta_get(_VERSION_KEY))

    def load_tally(self, raw: bytes | None) -> int:
        """Load the byte tally from the :data:`VERSION_KEY` record ``raw``; its version."""
        if raw is not None and len(raw) == _TALLY.size:  # the usual record: no call (R6)
            version, self._appended, self._dropped = _TALLY.unpack(raw)
        else:
            version, self._appended, self._dropped = _read_tally(raw)
        return version

    def _shape(self, batch: LogBatch, version: int, raw: bytes | None) -> Shape:
        """The keys commit ``version`` wrote; another process's are parsed once, then cached.

        Only for versions committed before the current write began (they never change).
        """
        cached = self._cache.get(version)
        if cached is not None:
            return cached[0]
        if raw is None:
            raw = batch.meta_get(_entry_key(version))
            if raw is None:
                raise TransactionTooOld(f"commit {version} has left the commit history")
        parsed = Shape.decode(raw[_TIME.size :])
        parsed.size = len(raw)
        self._remember(version, parsed)
        return parsed

    def _remember(self, version: int, shape: Shape) -> None:
        """Cache a commit's shape.

        The cache keeps about the newest _CACHE_SIZE commits, and no more than about
        ``keep_bytes`` of entries, so its memory is bounded like the log's.
        """
        with self._cache_lock:
            cache = self._cache
            old = cache.get(version)
            if old is not None:
                self._cache_bytes -= old[1]
            cache[version] = (shape, shape.size)
            self._cache_bytes += shape.size
            if len(cache) > 2 * _CACHE_SIZE or self._cache_bytes > 2 * self.keep_bytes:
                for v in sorted(cache):
                    if len(cache) <= _CACHE_SIZE and self._cache_bytes <= self.keep_bytes:
                        break
                    self._cache_bytes -= cache.pop(v)[1]

    def conflicts(
        self, batch: LogBatch, reads: Reads, since: int, now: int, pending: dict[int, Shape]
    ) -> list[Conflict]:
        """Conflicts between ``reads`` and every commit in ``(since, now]``.

        ``pending`` holds the commits this write has appended so far (not yet durable, so not
        yet cached: the write may still be abandoned and its versions reused by another).
        """
        if now <= since:
            return []
        if since < self._trimmed:
            raise self._too_old(since)
        found: list[Conflict] = []
        cache = self._cache
        versions = range(since + 1, now + 1)
        if all(v in pending or v in cache for v in versions):
            for v in versions:
                shape = pending.get(v) or cache[v][0]
                found.extend(reads.all_conflicts(shape))
            return found
        entries = list(batch.meta_range(_entry_key(since + 1), _entry_key(now + 1)))
        if len(entries) != now - since:
            raise self._too_old(since)
        for key, raw in entries:
            v = _U64.unpack_from(key, len(_ENTRY_PREFIX))[0]
            shape = pending.get(v) or self._shape(batch, v, raw)
            found.extend(reads.all_conflicts(shape))
        return found

    def _too_old(self, since: int) -> TransactionTooOld:
        return TransactionTooOld(
            f"the snapshot (version {since}) is older than the commit history kept "
            f"({self.keep_commits} commits / {self.keep_seconds:g} s, "
            f"within {self.keep_bytes} bytes)"
        )

    @staticmethod
    def entry(writes: Writes) -> tuple[Shape, bytes]:
        """The shape of ``writes`` and its encoded log entry (without the time).

        Independent of the log's state, so a commit computes it before taking the write lock.
        An exact entry over :data:`_COARSE_BYTES` is coarsened (at worst to three ranges).
        """
        puts, adjusts, removes = writes.puts, writes.adjusts, writes.removes
        if (
            dict.__len__(puts) + dict.__len__(adjusts) == 1
            and not removes._ends
            and not removes._pending
        ):
            # One put or one adjustment, the commonest commit: both parts made directly, as
            # _encode_keys would (R6, P1g).
            if puts:
                keys = list(dict.keys(puts))
                key = keys[0]
                return Shape([], keys, []), b"".join(
                    (_NO_REMOVES, _ONE_KEY, _U16.pack(len(key)), key, *_NO_KEYS)
                )
            keys = list(dict.keys(adjusts))
            key = keys[0]
            return Shape([], [], keys), b"".join(
                (_NO_REMOVES, *_NO_KEYS, _ONE_KEY, _U16.pack(len(key)), key)
            )
        shape = Shape.of(writes)
        encoded = shape.encode()
        if len(encoded) > _COARSE_BYTES:
            shape = shape.coarsened()
            encoded = shape.encode()
            if len(encoded) > _COARSE_BYTES:  # long keys: one range per kind
                shape = shape.coarsened(1)
                encoded = shape.encode()
        return shape, encoded

    def append(
        self,
        batch: LogBatch,
        version: int,
        writes: Writes,
        pending: dict[int, Shape],
        entry: tuple[Shape, bytes] | None = None,
    ) -> int:
        """Apply ``writes`` and record them as the commit after ``version``; return it.

        ``entry`` is :meth:`entry` of ``writes`` if already made.  The entry goes into
        ``pending``; :meth:`remember` caches it once the write is durable.
        """
        shape, encoded = self.entry(writes) if entry is None else entry
        batch.apply(writes)
        version += 1
        for key, value in self.records(version, shape, encoded):
            batch.meta_put(key, value)
        pending[version] = shape
        return version

    def records(self, version: int, shape: Shape, encoded: bytes) -> tuple[Item, Item]:
        """The two metadata records of commit ``version``: its entry, and the version record.

        Counts the entry's bytes into the tally (and into ``shape.size``).
        """
        key = _ENTRY_PREFIX + _U64.pack(version)
        value = _TIME.pack(time.time()) + encoded
        size = shape.size = len(key) + len(value)
        self._appended += size
        return (key, value), (_VERSION_KEY, _TALLY.pack(version, self._appended, self._dropped))

    def refusal(
        self,
        batch: LogBatch,
        reads: Reads,
        since: int | None,
        now: int,
        pending: dict[int, Shape],
    ) -> RetryTransaction | None:
        """Why a commit whose snapshot shows ``since`` cannot follow version ``now``, or None.

        A transaction that never read the store (``since`` None) has nothing to check.
        """
        if since is None or since == now:
            return None
        try:
            conflicts = self.conflicts(batch, reads, since, now, pending)
        except RetryTransaction as e:
            return e
        if conflicts:
            return TransactionConflict(
                f"{len(conflicts)} conflict(s), first: {conflicts[0]}", conflicts
            )
        return None

    def commit(self, writes: Writes, reads: Reads, since: int | None, sync: bool | None) -> int:
        """Validate one commit and write it alone; return its version.

        Raises the :class:`~kvstore.RetryTransaction` that refused it (nothing is written).
        """
        entry = self.entry(writes)
        pending: dict[int, Shape] = {}

        def write(batch: LogBatch) -> int:
            # May run more than once (the store may start the write over): start afresh.
            pending.clear()
            now = self.read_version(batch)
            refusal = self.refusal(batch, reads, since, now, pending)
            if refusal is not None:
                raise refusal  # aborts the write: nothing was written
            now = self.append(batch, now, writes, pending, entry)
            self.trim(batch, now)
            return now

        version = self.atomic(write, sync)
        self.remember(pending)
        return version

    def remember(self, pending: dict[int, Shape]) -> None:
        """After a successful write: cache what it appended, for later validations here."""
        for version, shape in pending.items():
            self._remember(version, shape)

    def trim(self, batch: LogBatch, version: int) -> None:
        """Drop the oldest entries outside both retention windows or over the byte budget.

        Amortized: looks every :data:`_TRIM_EVERY` commits, or at once when the entries
        exceed ``keep_bytes`` (known without a read: the tally travels with the version).
        Over the budget, it drops down to :data:`_TRIM_SLACK` below it, so a stream of commits
        at the bound trims once per thousands of commits, not one entry per commit (R6).  The
        newest entry stays.
        """
        if self.trim_due():
            self._trim(batch, version)

    def trim_next(self, size: int) -> bool:
        """Whether the next commit, appending ``size`` bytes of log, will be due to trim
        (:meth:`trim_due` then); counts nothing."""
        return (
            self._commits_since_trim + 1 >= _TRIM_EVERY
            or self._appended + size - self._dropped > self.keep_bytes
        )

    def trim_due(self) -> bool:
        """Count one commit; whether :meth:`trim` should look now (see there)."""
        self._commits_since_trim += 1
        return (
            self._commits_since_trim >= _TRIM_EVERY
            or self._appended - self._dropped > self.keep_bytes
        )

    def _trim(self, batch: LogBatch, version: int) -> None:
        live = self._appended - self._dropped
        over = live > self.keep_bytes
        self._commits_since_trim = 0
        cutoff_version = version - self.keep_commits
        if cutoff_version <= self._trimmed and not over:
            return  # nothing is old enough by count yet: no need to look (PERFORMANCE R6)
        cutoff_time = time.time() - self.keep_seconds
        budget = self.keep_bytes - int(self.keep_bytes * _TRIM_SLACK) if over else self.keep_bytes
        last: bytes | None = None  # the newest entry to drop
        freed = 0
        for key, value in batch.meta_range(_ENTRY_PREFIX, _entry_key(version)):
            if live - freed <= budget and (
                _U64.unpack_from(key, len(_ENTRY_PREFIX))[0] > cutoff_version
                or _TIME.unpack_from(value)[0] >= cutoff_time
            ):
                break
            last = key
            freed += len(key) + len(value)
        if last is not None:
            # One range delete: LMDB walks it with one cursor instead of a search per key.
            batch.meta_delete_range(_ENTRY_PREFIX, key_after(last))
            # Entries of a store written before the byte bound were never counted as appended:
            # never count more dropped than appended, or the budget would stretch by them.
            self._dropped = min(self._dropped + freed, self._appended)
            batch.meta_put(_VERSION_KEY, _TALLY.pack(version, self._appended, self._dropped))
            # Snapshots before this version have lost history, cached or not.  (Set even if
            # the write is then abandoned: refusing a few more old snapshots is harmless.)
            self._trimmed = max(self._trimmed, _U64.unpack_from(last, len(_ENTRY_PREFIX))[0])


def version_of(raw: bytes | None) -> int:
    """The version in a :data:`VERSION_KEY` record (``None``: no commit yet, version 0)."""
    return 0 if raw is None else _U64.unpack_from(raw)[0]


def _read_tally(raw: bytes | None) -> tuple[int, int, int]:
    """``commit/version`` as (version, bytes appended, bytes dropped); see :data:`_TALLY`."""
    if raw is None:
        return 0, 0, 0
    if len(raw) == _U64.size:
        return _U64.unpack(raw)[0], 0, 0
    if len(raw) != _TALLY.size:
        raise CorruptData(f"commit version record has {len(raw)} bytes")
    version, appended, dropped = _TALLY.unpack(raw)
    return version, appended, dropped


class _LocalBatch:
    """A :class:`LogBatch` over an AtomicKVStore and an in-memory metadata map.

    Everything is buffered and applied by :meth:`commit` only once the write function has
    returned, so a write abandoned by an exception leaves neither data nor log behind.
    """

    def __init__(self, meta: SortedDict) -> None:
        self._meta = meta
        self._mutations: list[Mutations] = []
        self._meta_puts: dict[bytes, bytes] = {}
        self._meta_deletes: set[bytes] = set()

    def apply(self, mutations: Mutations) -> None:
        self._mutations.append(mutations)

    def meta_get(self, key: bytes) -> bytes | None:
        if key in self._meta_deletes:
            return None
        value: bytes | None = self._meta_puts.get(key, self._meta.get(key))
        return value

    def meta_put(self, key: bytes, value: bytes) -> None:
        self._meta_deletes.discard(key)
        self._meta_puts[key] = value

    def meta_delete(self, key: bytes) -> None:
        self._meta_puts.pop(key, None)
        self._meta_deletes.add(key)

    def meta_delete_range(self, min_key: bytes, max_key: bytes | None) -> None:
        for key, _ in list(self.meta_range(min_key, max_key)):
            self.meta_delete(key)

    def meta_range(self, min_key: bytes, max_key: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        keys = set(self._meta.irange(min_key, max_key, inclusive=(True, False)))
        keys.update(k for k in self._meta_puts if k >= min_key and (max_key is None or k < max_key))
        for key in sorted(keys - self._meta_deletes):
            value = self.meta_get(key)
            if value is not None:
                yield key, value

    def commit(self, store: AtomicKVStore, sync: bool | None) -> None:
        for mutations in self._mutations:
            store.apply(mutations, sync=sync)
        meta = self._meta
        for key in self._meta_deletes:
            meta.pop(key, None)
        meta.update(self._meta_puts)


class LocalLog(CommitLog[AtomicKVStore]):
    """The log kept in process memory, for stores that only this process uses."""

    def __init__(
        self,
        store: AtomicKVStore,
        keep_seconds: float,
        keep_commits: int,
        keep_bytes: int = DEFAULT_HISTORY_BYTES,
    ) -> None:
        super().__init__(store, keep_seconds, keep_commits, keep_bytes)
        self._meta: SortedDict = SortedDict()
        self._lock = threading.Lock()

    def begin(self) -> tuple[KVStore, int]:
        with self._lock:
            return self._store.snapshot(), version_of(self._meta.get(_VERSION_KEY))

    def atomic(self, fn: Callable[[LogBatch], T], sync: bool | None) -> T:
        with self._lock:
            batch = _LocalBatch(self._meta)
            result = fn(batch)
            batch.commit(self._store, sync)
            return result
