"""S1: the PostgreSQL backend beside LMDBStore — R2, R4, R6, and commits from 1/4/8 processes.

The server is ``$KVSTORE_BENCH_POSTGRES`` (a ``postgresql://`` URL) when set; otherwise a
throwaway local cluster is started for the run (tests/pgserver.py: ``fsync=off``, loopback),
and stopped at exit.  Every figure is printed, not judged: a client/server store pays a
network round trip where LMDB pays a memory read, and the ratios say how much.  The one
condition S1d checks is the issue's: the commit rate grows with client processes.

Sizes are smaller than the LMDB rows' (each PostgreSQL operation costs a round trip):
at most 2,000 gets, 20,000 puts and 500 small transactions per repetition.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing
import os
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import kvstore

from .harness import Context, Measurement, Side, Stopwatch, compare, time_gets
from .transactions import _small, _small_ops

__all__ = ["s1a_tx_get", "s1b_commit", "s1c_small_txns", "s1d_processes"]

_GETS = 2_000
_PUTS = 20_000
_SMALL = 500
_PER_PROCESS = 300
_CLIENTS = (1, 4, 8)
_tables = itertools.count()


def _dsn() -> str:
    dsn = os.environ.get("KVSTORE_BENCH_POSTGRES")
    if dsn:
        return dsn
    try:
        from tests import pgserver  # a throwaway cluster, as the tests use
    except ImportError:
        raise RuntimeError(
            "no PostgreSQL server: set KVSTORE_BENCH_POSTGRES to a postgresql:// URL (outside a"
            " source checkout the suite cannot start a throwaway cluster)"
        ) from None

    started = pgserver.start()
    atexit.register(pgserver.stop)
    return started


def _table() -> str:
    return f"bench_{os.getpid()}_{next(_tables)}"


@contextmanager
def _pg_db(items: Sequence[tuple[bytes, bytes]] = ()) -> Iterator[kvstore.Database]:
    """A Database on a fresh PostgreSQL table holding ``items``; the table is dropped after."""
    db = kvstore.open(_dsn(), table=_table(), durability="none")
    try:
        if items:
            db.store.apply(kvstore.Writes(puts=dict(items)))
        yield db
    finally:
        store = db.store
        table = getattr(store, "table", None)
        db.close()
        if table:
            _drop(table)


def _drop(table: str) -> None:
    import psycopg

    with psycopg.connect(_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}", "{table}_meta", "{table}_keys"')


def s1a_tx_get(ctx: Context) -> Measurement:
    """S1a (R2 on PostgreSQL): random ``get`` in a Transaction, PostgresStore vs LMDBStore."""
    data = ctx.fixture.data
    lookups = data.lookups[:_GETS]
    with ExitStack() as stack:
        pg = stack.enter_context(_pg_db(data.items))
        lm = stack.enter_context(kvstore.open(str(ctx.fixture.kv_path), durability="none"))

        def side(db: kvstore.Database) -> Callable[[], float]:
            def run() -> float:
                with db.transaction() as tx:
                    return time_gets(tx.get, lookups)

            return run

        n = len(lookups)
        return compare(Side(n, side(pg)), Side(n, side(lm)), ctx.reps, raw_label="LMDBStore")


def s1b_commit(ctx: Context) -> Measurement:
    """S1b (R4 on PostgreSQL): commit of one transaction of n puts, PostgresStore vs LMDB."""
    items = ctx.fixture.data.items[:_PUTS]
    root = ctx.config.tmp

    def side(open_db: Callable[[], kvstore.Database]) -> Callable[[], float]:
        def run() -> float:
            with open_db() as db:
                tx = db.transaction()
                for key, value in items:
                    tx.put(key, value)
                with Stopwatch() as sw:
                    tx.commit()
                return sw.seconds

        return run

    @contextmanager
    def lmdb_db() -> Iterator[kvstore.Database]:
        from .data import fresh_dir

        with fresh_dir(root, "s1b-") as path, kvstore.open(str(path), durability="none") as db:
            yield db

    n = len(items)
    return compare(Side(n, side(_pg_db)), Side(n, side(lmdb_db)), ctx.reps, raw_label="LMDBStore")


def s1c_small_txns(ctx: Context) -> Measurement:
    """S1c (R6 on PostgreSQL): small transactions (1 get + 1 put), one thread."""
    data = ctx.fixture.data
    ops = _small_ops(data, _SMALL, salt=61)
    with ExitStack() as stack:
        pg = stack.enter_context(_pg_db(data.items))
        lm = stack.enter_context(kvstore.open(str(ctx.fixture.kv_path), durability="none"))

        def side(db: kvstore.Database) -> Callable[[], float]:
            def run() -> float:
                with Stopwatch() as sw:
                    for get_key, put_key, value in ops:
                        db.run(_small, get_key, put_key, value)
                return sw.seconds

            return run

        n = len(ops)
        return compare(Side(n, side(pg)), Side(n, side(lm)), ctx.reps, raw_label="LMDBStore")


def _client(dsn: str, table: str, me: int, n: int, start: object, done: object) -> None:
    """One client process: ``n`` small transactions on keys of its own, after ``start``."""
    with kvstore.open(dsn, table=table, durability="none") as db:
        db.transaction().rollback()  # connect before the clock starts
        start.wait()  # type: ignore[attr-defined]
        for i in range(n):
            key = b"c%03d/%06d" % (me, i)
            db.run(_small, key, key, b"v" * 100)
        done.put(me)  # type: ignore[attr-defined]  # before closing: commits only


def _commit_rate(clients: int) -> float:
    """Commits per second of ``clients`` processes committing small transactions at once."""
    ctx = multiprocessing.get_context("spawn")
    table = _table()
    dsn = _dsn()
    kvstore.open(dsn, table=table).close()  # create the table once, before the race
    start = ctx.Barrier(clients + 1)
    done = ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(dsn, table, i, _PER_PROCESS, start, done))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    try:
        start.wait(timeout=300)
        with Stopwatch() as sw:
            for _ in procs:
                done.get(timeout=600)
    finally:
        for p in procs:
            p.join(timeout=60)
        _drop(table)
    return clients * _PER_PROCESS / sw.seconds


def s1d_processes(ctx: Context) -> Measurement:
    """S1d: commit rate with 1, 4 and 8 client processes (8 vs 1 is the ratio).

    The three client counts run interleaved, ``ctx.reps`` rounds, and each count's median
    is compared (a round is a few seconds: on a shared machine one round alone says little).
    It passes when 4 and 8 processes both commit faster than 1.
    """
    runs: dict[int, list[float]] = {n: [] for n in _CLIENTS}
    for _ in range(ctx.reps):
        for n in _CLIENTS:
            runs[n].append(_commit_rate(n))
    rates = {n: statistics.median(r) for n, r in runs.items()}
    notes = [
        f"{n} process(es): {rate:,.0f} commits/s (median; runs "
        + ", ".join(f"{r:,.0f}" for r in runs[n])
        + ")"
        for n, rate in rates.items()
    ]
    notes.append(f"4 vs 1: {rates[4] / rates[1]:.2f}x, 8 vs 1: {rates[8] / rates[1]:.2f}x")
    return Measurement(
        rates[8],
        rates[1],
        unit="commits/s",
        raw_label="1 process",
        passed=rates[4] > rates[1] and rates[8] > rates[1],
        notes=notes,
    )
