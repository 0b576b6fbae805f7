"""R2, R4, R6, R7, R10: transactions of ``kvstore.open(path)`` against raw py-lmdb.

Small transactions (R6, R7, R10) go through ``db.run`` — the way applications are meant to
write them, retry loop included.  Keys and values come from the standard data set; writes
overwrite existing keys with fresh values of the same size, so the databases keep their
size from one repetition to the next.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import lmdb

import kvstore

from .data import Dataset, fresh_dir, open_raw
from .harness import (
    Context,
    Measurement,
    Side,
    Stopwatch,
    check,
    compare,
    raw_gets,
)

__all__ = [
    "THREADS",
    "r2_tx_get",
    "r4_commit",
    "r4_sides",
    "r6_small_txns",
    "r7_group_commit",
    "r10_counters",
]

#: Committing threads of R7 and R10.
THREADS = 4

#: One small transaction: (key to get, key to put, value to put).
SmallOp = tuple[bytes, bytes, bytes]


def r2_tx_get(ctx: Context) -> Measurement:
    """R2: random ``get`` inside one ``Transaction`` (durability none) vs raw ``txn.get``."""
    lookups = ctx.fixture.data.lookups
    with ExitStack() as stack:
        db = stack.enter_context(kvstore.open(str(ctx.fixture.kv_path), durability="none"))
        env = stack.enter_context(open_raw(ctx.fixture.raw_path))

        def kv() -> float:
            tx = db.transaction()
            try:
                get = tx.get
                with Stopwatch() as sw:
                    for key in lookups:
                        get(key)
            finally:
                tx.rollback()
            return sw.seconds

        def raw() -> float:
            return raw_gets(env, lookups)

        n = len(lookups)
        return compare(Side(n, kv), Side(n, raw), ctx.reps)


def r4_sides(data: Dataset, root: Path) -> tuple[Side, Side]:
    """R4's sides: ``tx.commit()`` of ``data.n`` puts, and raw sorted ``putmulti``.

    Each repetition starts from a new empty database on both sides.  The kvstore side makes
    its puts (in random key order) before the clock starts and times only ``commit()``; the
    raw side times one write transaction, ``putmulti`` of the pairs already sorted, and its
    commit.  Both use no fsync (durability none, ``sync=False``).
    """
    items, sorted_items, n = data.items, data.sorted_items, data.n
    last_key, last_value = items[-1]

    def kv() -> float:
        with fresh_dir(root, "r4-kv-") as path, kvstore.open(str(path), durability="none") as db:
            tx = db.transaction()
            put = tx.put
            for key, value in items:
                put(key, value)
            with Stopwatch() as sw:
                tx.commit()
            with db.transaction(read_only=True) as check_tx:
                check(check_tx.get(last_key) == last_value, "a committed put is missing")
        return sw.seconds

    def raw() -> float:
        with fresh_dir(root, "r4-raw-") as path, open_raw(path) as env:
            with Stopwatch() as sw, env.begin(write=True) as txn:
                _, added = txn.cursor().putmulti(sorted_items)
            check(added == n, "raw putmulti did not add every pair")
        return sw.seconds

    return Side(n, kv), Side(n, raw)


def r4_commit(ctx: Context) -> Measurement:
    """R4: commit of one transaction holding the standard puts vs raw sorted ``putmulti``."""
    kv, raw = r4_sides(ctx.fixture.data, ctx.config.tmp)
    return compare(kv, raw, ctx.reps)


def _small_ops(data: Dataset, count: int, salt: int) -> list[SmallOp]:
    """``count`` small transactions over the standard keys: get one key, put another."""
    keys, n = data.lookups, data.n
    values = data.new_values(min(count, 1000), salt)
    return [(keys[i % n], keys[(i + n // 2) % n], values[i % len(values)]) for i in range(count)]


def _small(tx: kvstore.Transaction, get_key: bytes, put_key: bytes, value: bytes) -> None:
    """The body of one small transaction: one get, one put."""
    tx.get(get_key)
    tx.put(put_key, value)


def _run_small(db: kvstore.Database, ops: Sequence[SmallOp]) -> None:
    run = db.run
    for get_key, put_key, value in ops:
        run(_small, get_key, put_key, value)


def _raw_small(env: lmdb.Environment, ops: Sequence[SmallOp]) -> None:
    begin = env.begin
    for get_key, put_key, value in ops:
        with begin(write=True) as txn:
            txn.get(get_key)
            txn.put(put_key, value)


def _r6_kv_side(db: kvstore.Database, ops: Sequence[SmallOp]) -> Side:
    """R6's kvstore side: the small transactions, one after another, in this thread."""

    def kv() -> float:
        with Stopwatch() as sw:
            _run_small(db, ops)
        return sw.seconds

    return Side(len(ops), kv)


def r6_small_txns(ctx: Context) -> Measurement:
    """R6: small transactions (1 get + 1 put, durability none), one thread, vs raw write txns."""
    ops = _small_ops(ctx.fixture.data, ctx.config.small_txns, salt=6)
    with ExitStack() as stack:
        db = stack.enter_context(kvstore.open(str(ctx.fixture.kv_path), durability="none"))
        env = stack.enter_context(open_raw(ctx.fixture.raw_path))

        def raw() -> float:
            with Stopwatch() as sw:
                _raw_small(env, ops)
            return sw.seconds

        return compare(_r6_kv_side(db, ops), Side(len(ops), raw), ctx.reps)


def _in_threads(work: Sequence[Callable[[], None]]) -> float:
    """Run each callable in its own thread, all released at once; the wall time until all end."""
    barrier = threading.Barrier(len(work) + 1)
    errors: list[BaseException] = []

    def target(fn: Callable[[], None]) -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as e:  # reported to the caller below
            errors.append(e)

    threads = [threading.Thread(target=target, args=(fn,)) for fn in work]
    for t in threads:
        t.start()
    barrier.wait()
    with Stopwatch() as sw:
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return sw.seconds


def r7_group_commit(ctx: Context) -> Measurement:
    """R7: small transactions with durability sync from 4 threads vs raw fsync per txn.

    Each thread gets and puts its own quarter of the keys, so the threads never conflict;
    the raw side runs the same transactions in one thread on an environment with
    ``sync=True`` (one fsync per transaction).
    """
    data = ctx.fixture.data
    ops = _small_ops(data, ctx.config.sync_txns, salt=7)
    # Partition by key so no thread reads what another writes.
    parts: list[list[SmallOp]] = [[] for _ in range(THREADS)]
    for i, (_, _, value) in enumerate(ops):
        part = i % THREADS
        get_key = data.lookups[(i * THREADS + part) % data.n]
        put_key = data.lookups[((i + 1) * THREADS + part) % data.n]
        parts[part].append((get_key, put_key, value))
    with ExitStack() as stack:
        db = stack.enter_context(kvstore.open(str(ctx.fixture.kv_path), durability="sync"))
        env = stack.enter_context(open_raw(ctx.fixture.raw_path, sync=True))
        before = db.stats()

        def kv() -> float:
            return _in_threads([functools.partial(_run_small, db, part) for part in parts])

        def raw() -> float:
            with Stopwatch() as sw:
                _raw_small(env, ops)
            return sw.seconds

        result = compare(Side(len(ops), kv), Side(len(ops), raw), ctx.reps, raw_label="(1 thr)")
        after = db.stats()
        result.notes.append(
            f"{after.commits - before.commits} commits, "
            f"{after.conflicts - before.conflicts} conflicts, "
            f"{after.retries - before.retries} retries over {ctx.reps} reps"
        )
        return result


def _bump(tx: kvstore.Transaction, key: bytes) -> None:
    tx.adjust_counter(key, 1)


def r10_counters(ctx: Context) -> Measurement:
    """R10: ``adjust_counter`` transactions on one key from 4 threads, against R6's rate.

    The comparison side is R6's kvstore workload (one thread of small transactions on the
    standard data), run interleaved with this one; the counter lives in a fresh database.
    Targets: no conflicts, an exact total, and a rate at least R6's.
    """
    config = ctx.config
    per_thread = config.counter_txns // THREADS
    count = per_thread * THREADS
    key = b"counter/r10"
    ops = _small_ops(ctx.fixture.data, config.small_txns, salt=10)
    with ExitStack() as stack:
        root = stack.enter_context(fresh_dir(config.tmp, "r10-"))
        db = stack.enter_context(kvstore.open(str(root), durability="none"))
        r6_db = stack.enter_context(kvstore.open(str(ctx.fixture.kv_path), durability="none"))
        with db.transaction() as tx:
            tx.put(key, kvstore.KVStore.encode_counter(0))
        before = db.stats()

        def bump_many() -> None:
            run = db.run
            for _ in range(per_thread):
                run(_bump, key)

        def kv() -> float:
            return _in_threads([bump_many] * THREADS)

        result = compare(
            Side(count, kv), _r6_kv_side(r6_db, ops), config.counter_reps, raw_label="(R6 kv)"
        )
        after = db.stats()
        with db.transaction(read_only=True) as tx:
            total = kvstore.KVStore.decode_counter(tx.get(key) or b"")
    conflicts = after.conflicts - before.conflicts
    retries = after.retries - before.retries
    expected = count * config.counter_reps
    exact = total == expected
    result.passed = conflicts == 0 and exact
    result.notes.append(
        f"{count:,} txns x {config.counter_reps} reps: {conflicts} conflicts, {retries} retries, "
        f"counter {total:,} (expected {expected:,}: {'exact' if exact else 'WRONG'}); "
        "raw column = R6's kvstore rate, measured interleaved"
    )
    return result
