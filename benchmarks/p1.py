"""P1: kvstore's ``Database`` against the libraries users would otherwise pick, in one run.

Each row is one workload, run on every store in turn (rotating the order each repetition,
fresh directories for every repetition that writes), as a user of each library would write
it; every figure is the median rate over the repetitions.  The kvstore column is
``kvstore.open(path)`` used through transactions; the comparison column is the fastest
installed peer (named); the notes give every store's rate as a ratio to raw py-lmdb, which
runs the same workload in the same run.

Durability, matched and stated.  Rows marked *no fsync* survive a crash of the process but
may lose the last commits on power loss: kvstore ``durability="none"``, raw py-lmdb
``sync=False``, sqlitedict (it sets ``PRAGMA synchronous=OFF`` itself), diskcache
``sqlite_synchronous=0`` (WAL, OFF), shelve (dbm writes, no fsync).  ZODB's FileStorage
fsyncs every commit and offers no way not to, so in those rows it does more than the others.
Rows marked *fsync* survive power loss: kvstore ``durability="sync"``, raw py-lmdb
``sync=True``, sqlitedict with ``PRAGMA synchronous=FULL`` set on its connection, diskcache
``sqlite_synchronous=2`` (FULL), ZODB FileStorage; shelve cannot fsync and is left out.

The workloads (``n`` standard pairs: 16-byte keys, 100-byte values; string-keyed peers get
the key's hex):

* **P1a bulk load** -- ``n`` puts, random order, one commit;
* **P1b point reads** -- ``n`` gets in a second random order, one read transaction;
* **P1c ordered scan** -- every pair in key order (shelve has no order: its keys are sorted
  first, in the timed part; diskcache has no ordered item iterator: ``iterkeys`` + get);
* **P1d read-modify-write** -- small transactions, each reads a key and writes it, no fsync;
* **P1e durable RMW, 1 thread** and **P1f durable RMW, 4 threads** -- the same with fsync;
  P1e's comparison column is raw py-lmdb (target 0.85x), P1f's the fastest peer;
* **P1g counter increments** -- small transactions each adding 1 to one of 16 counters,
  no fsync: kvstore's blind ``adjust_counter``, diskcache's ``incr``, read-and-write
  elsewhere.

Peers are an optional ``bench`` extra, never kvstore dependencies: a peer that is not
installed is skipped with a note.
"""

from __future__ import annotations

import importlib.util
import random
import shelve
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import lmdb

import kvstore
from kvstore import KVStore

from .data import RAW_MAP_SIZE, Dataset
from .harness import Config, Context, Measurement, Row, Target, format_rate

__all__ = ["P1_ROWS", "STORES", "measure"]

#: Threads of P1f.
THREADS = 4
#: Counters of P1g.
COUNTERS = 16


class Store:
    """One library under test; subclasses say how a user of it does each workload.

    ``open(directory, durable)`` makes or reopens the store in ``directory``.  Every method
    that writes commits before it returns, with the durability ``open`` was given.
    """

    name = ""
    module = ""  # the module that must be importable for this store to run
    durable_ok = True  # whether it can fsync commits (rows P1e, P1f)

    def open(self, directory: Path, durable: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def load(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        raise NotImplementedError

    def gets(self, keys: Sequence[bytes]) -> None:
        raise NotImplementedError

    def scan(self) -> int:
        raise NotImplementedError

    def rmw(self, key: bytes) -> None:
        """One committed transaction: read ``key``'s value, write a changed one."""
        raise NotImplementedError

    def incr(self, key: bytes) -> None:
        """One committed transaction: add 1 to counter ``key`` (made by ``load_counters``)."""
        raise NotImplementedError

    def load_counters(self, keys: Sequence[bytes]) -> None:
        raise NotImplementedError

    def for_thread(self) -> Store:
        """The handle one extra thread uses (the same one where the library is thread-safe)."""
        return self


def _bump(value: bytes) -> bytes:
    return value[1:] + value[:1]


class KVStoreDB(Store):
    name = "kvstore"
    module = "kvstore"

    def open(self, directory: Path, durable: bool) -> None:
        self.db = kvstore.open(directory, durability="sync" if durable else "none")

    def close(self) -> None:
        self.db.close()

    def load(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        with self.db.transaction() as tx:
            put = tx.put
            for k, v in items:
                put(k, v)

    def gets(self, keys: Sequence[bytes]) -> None:
        with self.db.transaction(read_only=True) as tx:
            get = tx.get
            for k in keys:
                get(k)

    def scan(self) -> int:
        with self.db.transaction(read_only=True) as tx:
            return sum(1 for _ in tx.get_range())

    def rmw(self, key: bytes) -> None:
        with self.db.transaction() as tx:
            tx.put(key, _bump(tx.get(key) or b""))

    def load_counters(self, keys: Sequence[bytes]) -> None:
        with self.db.transaction() as tx:
            for k in keys:
                tx.put(k, KVStore.encode_counter(0))

    def incr(self, key: bytes) -> None:
        with self.db.transaction() as tx:
            tx.adjust_counter(key, 1)


class RawLMDB(Store):
    name = "raw"
    module = "lmdb"

    def open(self, directory: Path, durable: bool) -> None:
        self.env = lmdb.open(str(directory), map_size=RAW_MAP_SIZE, sync=durable, max_dbs=0)

    def close(self) -> None:
        self.env.close()

    def load(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        with self.env.begin(write=True) as txn:
            put = txn.put
            for k, v in items:
                put(k, v)

    def gets(self, keys: Sequence[bytes]) -> None:
        with self.env.begin() as txn:
            get = txn.get
            for k in keys:
                get(k)

    def scan(self) -> int:
        with self.env.begin() as txn:
            return sum(1 for _ in txn.cursor())

    def rmw(self, key: bytes) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(key, _bump(txn.get(key) or b""))

    def load_counters(self, keys: Sequence[bytes]) -> None:
        with self.env.begin(write=True) as txn:
            for k in keys:
                txn.put(k, KVStore.encode_counter(0))

    def incr(self, key: bytes) -> None:
        with self.env.begin(write=True) as txn:
            value = KVStore.decode_counter(txn.get(key) or b"")
            txn.put(key, KVStore.encode_counter(value + 1))


def _identity(value: Any) -> Any:
    return value


class SqliteDictStore(Store):
    name = "sqlitedict"
    module = "sqlitedict"

    def open(self, directory: Path, durable: bool) -> None:
        from sqlitedict import SqliteDict

        directory.mkdir(parents=True, exist_ok=True)
        self.d = SqliteDict(str(directory / "d.sqlite"), encode=_identity, decode=_identity)
        if durable:
            self.d.conn.execute("PRAGMA synchronous=FULL")

    def close(self) -> None:
        self.d.close()

    def load(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        d = self.d
        for k, v in items:
            d[k.hex()] = v
        d.commit()

    def gets(self, keys: Sequence[bytes]) -> None:
        d = self.d
        for k in keys:
            d[k.hex()]

    def scan(self) -> int:
        query = f'SELECT key, value FROM "{self.d.tablename}" ORDER BY key'
        return sum(1 for _ in self.d.conn.select(query))

    def rmw(self, key: bytes) -> None:
        k = key.hex()
        self.d[k] = _bump(self.d[k])
        self.d.commit()

    def load_counters(self, keys: Sequence[bytes]) -> None:
        for k in keys:
            self.d[k.hex()] = 0
        self.d.commit()

    def incr(self, key: bytes) -> None:
        k = key.hex()
        self.d[k] = self.d[k] + 1
        self.d.commit()


class DiskCacheStore(Store):
    name = "diskcache"
    module = "diskcache"

    def open(self, directory: Path, durable: bool) -> None:
        import diskcache

        self.cache = diskcache.Cache(str(directory), sqlite_synchronous=2 if durable else 0)

    def close(self) -> None:
        self.cache.close()

    def load(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        cache = self.cache
        with cache.transact():
            for k, v in items:
                cache.set(k, v)

    def gets(self, keys: Sequence[bytes]) -> None:
        get = self.cache.get
        for k in keys:
            get(k)

    def scan(self) -> int:
        cache = self.cache
        return sum(1 for k in cache.iterkeys() if cache.get(k) is not None)

    def rmw(self, key: bytes) -> None:
        cache = self.cache
        with cache.transact():
            cache.set(key, _bump(cache.get(key)))

    def load_counters(self, keys: Sequence[bytes]) -> None:
        for k in keys:
            self.cache.set(k, 0)

    def incr(self, key: bytes) -> None:
        self.cache.incr(key)


class ZODBStore(Store):
    name = "ZODB"
    module = "ZODB"

    def open(self, directory: Path, durable: bool) -> None:
        import transaction
        import ZODB
        import ZODB.FileStorage
        from BTrees.OOBTree import OOBTree

        directory.mkdir(parents=True, exist_ok=True)
        self.zdb = ZODB.DB(ZODB.FileStorage.FileStorage(str(directory / "data.fs")))
        self.tm = transaction.TransactionManager()
        self.conn = self.zdb.open(self.tm)
        root = self.conn.root()
        if "tree" not in root:
            root["tree"] = OOBTree()
            self.tm.commit()
        self.tree = root["tree"]
        self._threads: list[ZODBStore] = []

    def close(self) -> None:
        for other in self._threads:
            other.conn.close()
        self.conn.close()
        self.zdb.close()

    def load(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        tree = self.tree
        for k, v in items:
            tree[k] = v
        self.tm.commit()

    def gets(self, keys: Sequence[bytes]) -> None:
        tree = self.tree
        for k in keys:
            tree[k]

    def scan(self) -> int:
        return sum(1 for _ in self.tree.items())

    def _retry(self, fn: Callable[[], None]) -> None:
        from ZODB.POSException import ConflictError

        for _ in range(100):
            try:
                fn()
                self.tm.commit()
                return
            except ConflictError:
                self.tm.abort()
        raise RuntimeError("ZODB: too many conflicts")

    def rmw(self, key: bytes) -> None:
        def change() -> None:
            self.tree[key] = _bump(self.tree[key])

        self._retry(change)

    def load_counters(self, keys: Sequence[bytes]) -> None:
        for k in keys:
            self.tree[k] = 0
        self.tm.commit()

    def incr(self, key: bytes) -> None:
        def add() -> None:
            self.tree[key] += 1

        self._retry(add)

    def for_thread(self) -> Store:
        import transaction

        other = ZODBStore()
        other.zdb = self.zdb
        other.tm = transaction.TransactionManager()
        other.conn = self.zdb.open(other.tm)
        other.tree = other.conn.root()["tree"]
        other._threads = []
        self._threads.append(other)
        return other


class ShelveStore(Store):
    name = "shelve"
    module = "shelve"
    durable_ok = False

    def open(self, directory: Path, durable: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.s = shelve.open(str(directory / "shelf"))  # noqa: SIM115 (closed by close())

    def close(self) -> None:
        self.s.close()

    def load(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        s = self.s
        for k, v in items:
            s[k.hex()] = v
        s.sync()

    def gets(self, keys: Sequence[bytes]) -> None:
        s = self.s
        for k in keys:
            s[k.hex()]

    def scan(self) -> int:
        s = self.s
        return sum(1 for k in sorted(s.keys()) if s[k] is not None)

    def rmw(self, key: bytes) -> None:
        k = key.hex()
        self.s[k] = _bump(self.s[k])
        self.s.sync()

    def load_counters(self, keys: Sequence[bytes]) -> None:
        for k in keys:
            self.s[k.hex()] = 0
        self.s.sync()

    def incr(self, key: bytes) -> None:
        k = key.hex()
        self.s[k] = self.s[k] + 1
        self.s.sync()


#: Every store P1 compares, kvstore first and raw py-lmdb second.
STORES: tuple[type[Store], ...] = (
    KVStoreDB,
    RawLMDB,
    SqliteDictStore,
    DiskCacheStore,
    ZODBStore,
    ShelveStore,
)
PEERS = tuple(s.name for s in STORES[2:])


def _installed() -> list[type[Store]]:
    return [s for s in STORES if importlib.util.find_spec(s.module) is not None]


# -- the workloads: each returns (ops, timed seconds) for one repetition on one store ------------
Workload = Callable[[type[Store], Path, Dataset, Config], tuple[int, float]]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _each(fn: Callable[[bytes], None], keys: Sequence[bytes]) -> None:
    for k in keys:
        fn(k)


def _loaded(cls: type[Store], root: Path, data: Dataset, durable: bool) -> Store:
    """A store holding ``data``, loaded (untimed) and reopened, as a user's would be."""
    store = cls()
    store.open(root, durable)
    store.load(data.items)
    store.close()
    store = cls()
    store.open(root, durable)
    return store


def w_load(cls: type[Store], root: Path, data: Dataset, config: Config) -> tuple[int, float]:
    store = cls()
    store.open(root, False)
    try:
        return data.n, _timed(lambda: store.load(data.items))
    finally:
        store.close()


def w_gets(cls: type[Store], root: Path, data: Dataset, config: Config) -> tuple[int, float]:
    store = _loaded(cls, root, data, False)
    try:
        return data.n, _timed(lambda: store.gets(data.lookups))
    finally:
        store.close()


def w_scan(cls: type[Store], root: Path, data: Dataset, config: Config) -> tuple[int, float]:
    store = _loaded(cls, root, data, False)
    try:
        count = [0]
        seconds = _timed(lambda: count.__setitem__(0, store.scan()))
        if count[0] != data.n:
            raise AssertionError(f"{cls.name} scanned {count[0]} pairs, not {data.n}")
        return data.n, seconds
    finally:
        store.close()


def _rmw(
    cls: type[Store], root: Path, data: Dataset, ops: int, durable: bool, threads: int
) -> tuple[int, float]:
    small = Dataset(max(ops, 1000), data.seed + 1)
    store = _loaded(cls, root, small, durable)
    try:
        handles = [store] + [store.for_thread() for _ in range(threads - 1)]
        keys = [k for k, _ in small.items]
        # Thread t works on its own keys, so no workload conflicts by design.
        shares = [keys[t::threads][: ops // threads] for t in range(threads)]
        if threads == 1:
            return len(shares[0]), _timed(lambda: _each(store.rmw, shares[0]))
        barrier = threading.Barrier(threads + 1)
        errors: list[BaseException] = []

        def work(handle: Store, share: list[bytes]) -> None:
            barrier.wait()
            try:
                for k in share:
                    handle.rmw(k)
            except BaseException as e:
                errors.append(e)

        workers = [
            threading.Thread(target=work, args=(h, s)) for h, s in zip(handles, shares, strict=True)
        ]
        for w in workers:
            w.start()
        start = time.perf_counter()
        barrier.wait()
        for w in workers:
            w.join()
        seconds = time.perf_counter() - start
        if errors:
            raise errors[0]
        return sum(len(s) for s in shares), seconds
    finally:
        store.close()


def w_rmw(cls: type[Store], root: Path, data: Dataset, config: Config) -> tuple[int, float]:
    return _rmw(cls, root, data, config.small_txns // 2, False, 1)


def w_rmw_sync(cls: type[Store], root: Path, data: Dataset, config: Config) -> tuple[int, float]:
    return _rmw(cls, root, data, config.sync_txns // 4, True, 1)


def w_rmw_sync4(cls: type[Store], root: Path, data: Dataset, config: Config) -> tuple[int, float]:
    return _rmw(cls, root, data, config.sync_txns // 2, True, THREADS)


def w_counters(cls: type[Store], root: Path, data: Dataset, config: Config) -> tuple[int, float]:
    keys = [b"counter-%02d" % i for i in range(COUNTERS)]
    store = cls()
    store.open(root, False)
    try:
        store.load_counters(keys)
        ops = config.small_txns // 2
        order = [keys[i % COUNTERS] for i in range(ops)]
        return ops, _timed(lambda: _each(store.incr, order))
    finally:
        store.close()


#: (row id, workload text, workload, durable rows leave out stores that cannot fsync)
WORKLOADS: tuple[tuple[str, str, Workload, bool], ...] = (
    ("P1a", "bulk load, 1 commit", w_load, False),
    ("P1b", "point reads", w_gets, False),
    ("P1c", "ordered scan", w_scan, False),
    ("P1d", "RMW txns, no fsync", w_rmw, False),
    ("P1e", "RMW txns, fsync, 1 thread", w_rmw_sync, True),
    ("P1f", "RMW txns, fsync, 4 threads", w_rmw_sync4, True),
    ("P1g", "counter increments", w_counters, False),
)


def measure(row: str, config: Config, reps: int = 3) -> dict[str, float]:
    """Rates (ops/s, median of ``reps``) of every installed store on workload ``row``."""
    _, _, workload, durable = next(w for w in WORKLOADS if w[0] == row)
    stores = [s for s in _installed() if s.durable_ok or not durable]
    data = _dataset(config.keys, config.seed)
    times: dict[str, list[float]] = {s.name: [] for s in stores}
    ops: dict[str, int] = {}
    rng = random.Random(config.seed)
    for rep in range(reps):
        order = stores[rep % len(stores) :] + stores[: rep % len(stores)]
        rng.shuffle(order)
        for cls in order:
            root = Path(tempfile.mkdtemp(prefix=f"p1-{cls.name}-", dir=config.tmp))
            try:
                n, seconds = workload(cls, root / "store", data, config)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            ops[cls.name] = n
            times[cls.name].append(seconds)
    return {name: ops[name] / statistics.median(t) for name, t in times.items()}


@lru_cache(maxsize=2)
def _dataset(n: int, seed: int) -> Dataset:
    return Dataset(n, seed)


def _row_measure(row: str) -> Callable[[Context], Measurement]:
    def run(ctx: Context) -> Measurement:
        rates = measure(row, ctx.config, reps=min(ctx.reps, 3))
        kv, raw = rates["kvstore"], rates["raw"]
        peers = {name: rate for name, rate in rates.items() if name in PEERS}
        notes = [
            "x raw py-lmdb: "
            + ", ".join(f"{n} {rate / raw:.2f}x" for n, rate in rates.items() if n != "raw")
            + f" (raw {format_rate(raw)} ops/s)"
        ]
        missing = [s.name for s in STORES if s.name not in rates]
        if missing:
            notes.append("not run: " + ", ".join(missing) + " (not installed or cannot fsync)")
        if row == "P1e" or not peers:
            return Measurement(kv, raw, notes=notes, figures=rates)
        fastest = max(peers, key=peers.__getitem__)
        return Measurement(kv, peers[fastest], raw_label=f"({fastest})", notes=notes, figures=rates)

    return run


_AHEAD = Target.of_ratio(1.0, "ahead of every peer")

#: The P1 rows, in table order (``--rows P1`` selects them all).
P1_ROWS: tuple[Row, ...] = tuple(
    Row(
        row,
        "peers",
        f"Database: {text}",
        Target.of_ratio(0.85, ">= 0.85x raw lmdb") if row == "P1e" else _AHEAD,
        _row_measure(row),
    )
    for row, text, _, _ in WORKLOADS
)
