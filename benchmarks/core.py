"""L0 (issue "core"): kvstore's ``LMDBStore`` against raw py-lmdb, operation for operation.

These rows measure the thin wrapper alone — no views, no transactions — so that every later
row's cost can be split into "the store" and "what kvstore adds on top".  Target: >= 0.8x.
"""

from __future__ import annotations

from contextlib import ExitStack

import kvstore

from .data import open_raw
from .harness import (
    Context,
    Measurement,
    Side,
    Stopwatch,
    check,
    compare,
    raw_gets,
    time_gets,
)

__all__ = ["l0a_get", "l0b_snapshot_get", "l0c_put", "l0d_scan"]


def _open_store(ctx: Context, stack: ExitStack) -> kvstore.LMDBStore:
    """The standard data's ``LMDBStore``, closed with ``stack``."""
    store = kvstore.LMDBStore(str(ctx.fixture.kv_path), sync=False)
    stack.callback(store.close)
    return store


def l0a_get(ctx: Context) -> Measurement:
    """``LMDBStore.get`` on the live store vs raw ``with env.begin() as t: t.get(k)`` per get."""
    data = ctx.fixture.data
    lookups = data.lookups
    with ExitStack() as stack:
        store = _open_store(ctx, stack)
        env = stack.enter_context(open_raw(ctx.fixture.raw_path))
        expected = dict(data.items)
        check(all(store.get(k) == expected[k] for k in lookups[:100]), "LMDBStore.get is wrong")

        def kv() -> float:
            get = store.get
            with Stopwatch() as sw:
                for key in lookups:
                    get(key)
            return sw.seconds

        def raw() -> float:
            begin = env.begin
            with Stopwatch() as sw:
                for key in lookups:
                    with begin() as txn:
                        txn.get(key)
            return sw.seconds

        n = len(lookups)
        return compare(Side(n, kv), Side(n, raw), ctx.reps)


def l0b_snapshot_get(ctx: Context) -> Measurement:
    """``LMDBStore.snapshot().get`` vs raw ``txn.get``, all gets in one read transaction."""
    lookups = ctx.fixture.data.lookups
    with ExitStack() as stack:
        store = _open_store(ctx, stack)
        env = stack.enter_context(open_raw(ctx.fixture.raw_path))

        def kv() -> float:
            with store.snapshot() as snap:
                return time_gets(snap.get, lookups)

        def raw() -> float:
            return raw_gets(env, lookups)

        n = len(lookups)
        return compare(Side(n, kv), Side(n, raw), ctx.reps)


def l0c_put(ctx: Context) -> Measurement:
    """``LMDBStore.put`` (``sync=False``) vs a raw one-put write transaction per put.

    Both overwrite existing keys of the standard data with fresh 100-byte values.
    """
    data = ctx.fixture.data
    n = min(ctx.config.small_txns, data.n)
    pairs = list(zip(data.lookups[:n], data.new_values(n, salt=1), strict=True))
    with ExitStack() as stack:
        store = _open_store(ctx, stack)
        env = stack.enter_context(open_raw(ctx.fixture.raw_path))

        def kv() -> float:
            put = store.put
            with Stopwatch() as sw:
                for key, value in pairs:
                    put(key, value)
            return sw.seconds

        def raw() -> float:
            begin = env.begin
            with Stopwatch() as sw:
                for key, value in pairs:
                    with begin(write=True) as txn:
                        txn.put(key, value)
            return sw.seconds

        result = compare(Side(n, kv), Side(n, raw), ctx.reps)
        check(store.get(pairs[-1][0]) == pairs[-1][1], "LMDBStore.put did not store the value")
        return result


def l0d_scan(ctx: Context) -> Measurement:
    """Full scan ``list(store.get_range())`` vs raw ``list(txn.cursor())``."""
    n = ctx.fixture.data.n
    with ExitStack() as stack:
        store = _open_store(ctx, stack)
        env = stack.enter_context(open_raw(ctx.fixture.raw_path))
        check(len(list(store.get_range())) == n, "LMDBStore.get_range missed keys")

        def kv() -> float:
            with Stopwatch() as sw:
                list(store.get_range())
            return sw.seconds

        def raw() -> float:
            with env.begin() as txn, Stopwatch() as sw:
                list(txn.cursor())
            return sw.seconds

        return compare(Side(n, kv), Side(n, raw), ctx.reps)
