"""R1, R3, R5: a ``MutableView`` over an LMDB snapshot against raw py-lmdb.

Every repetition builds a fresh view (untimed), so read tracking starts empty and the
recorded reads grow during the timed part exactly as they would for a user.
"""

from __future__ import annotations

from contextlib import ExitStack

import lmdb

import kvstore

from .data import Fixture, open_raw
from .harness import Context, Measurement, Side, Stopwatch, check, compare, raw_gets

__all__ = [
    "r1_sides",
    "r1_view_get",
    "r3_view_put",
    "r5_sides",
    "r5a_scan",
    "r5b_scan_overwritten",
    "r5c_scan_reverse",
]


def _open(fixture: Fixture, stack: ExitStack) -> tuple[kvstore.LMDBStore, lmdb.Environment]:
    """The fixture's ``LMDBStore`` and raw environment, both closed with ``stack``."""
    store = stack.enter_context(kvstore.LMDBStore(str(fixture.kv_path), sync=False))
    env = stack.enter_context(open_raw(fixture.raw_path))
    return store, env


def r1_sides(fixture: Fixture, stack: ExitStack, lookups: list[bytes]) -> tuple[Side, Side]:
    """R1's two sides: ``view.get`` (reads tracked) and raw ``txn.get`` of ``lookups``."""
    store, env = _open(fixture, stack)
    distinct = len(set(lookups))

    def kv() -> float:
        with store.snapshot() as snap:
            view = kvstore.MutableView(snap)
            get = view.get
            with Stopwatch() as sw:
                for key in lookups:
                    get(key)
            check(
                view.reads is not None and len(view.reads) == distinct,
                f"the view tracked {len(view.reads or ())} read ranges, not {distinct}",
            )
        return sw.seconds

    def raw() -> float:
        return raw_gets(env, lookups)

    return Side(len(lookups), kv), Side(len(lookups), raw)


def r1_view_get(ctx: Context) -> Measurement:
    """R1: random ``get`` through ``MutableView(snapshot)``, tracking on, vs raw ``txn.get``."""
    with ExitStack() as stack:
        kv, raw = r1_sides(ctx.fixture, stack, ctx.fixture.data.lookups)
        return compare(kv, raw, ctx.reps)


def r3_view_put(ctx: Context) -> Measurement:
    """R3: ``put`` into a ``MutableView`` vs raw ``txn.put`` in one write transaction.

    Both sides write the standard keys, in random order, with fresh values: the view over a
    snapshot of the standard data, the raw side into the standard data's environment (the
    transaction is aborted, untimed, so every repetition starts from the same database).
    """
    data = ctx.fixture.data
    pairs = list(zip(data.lookups, data.new_values(data.n, salt=3), strict=True))
    with ExitStack() as stack:
        store, env = _open(ctx.fixture, stack)

        def kv() -> float:
            with store.snapshot() as snap:
                view = kvstore.MutableView(snap)
                put = view.put
                with Stopwatch() as sw:
                    for key, value in pairs:
                        put(key, value)
                check(len(view.writes.puts) == len(pairs), "the view lost puts")
            return sw.seconds

        def raw() -> float:
            txn = env.begin(write=True)
            try:
                put = txn.put
                with Stopwatch() as sw:
                    for key, value in pairs:
                        put(key, value)
            finally:
                txn.abort()
            return sw.seconds

        n = len(pairs)
        return compare(Side(n, kv), Side(n, raw), ctx.reps)


def r5_sides(
    fixture: Fixture, stack: ExitStack, *, overwrite: float = 0.0, reverse: bool = False
) -> tuple[Side, Side]:
    """R5's two sides: a full scan of a fresh view over a snapshot, and a raw cursor scan.

    ``overwrite`` is the fraction of keys the view puts (new values) before the scan, untimed;
    ``reverse`` scans from the last key down (raw: ``cursor.last()`` then ``iterprev()``).
    """
    store, env = _open(fixture, stack)
    data = fixture.data
    overwritten = int(data.n * overwrite)
    local = list(zip(data.lookups[:overwritten], data.new_values(overwritten, salt=5), strict=True))

    def kv() -> float:
        with store.snapshot() as snap:
            view = kvstore.MutableView(snap)
            for key, value in local:
                view.put(key, value)
            with Stopwatch() as sw:
                pairs = list(view.get_range(reverse=reverse))
        check(len(pairs) == data.n, f"the view scan returned {len(pairs)} pairs, not {data.n}")
        return sw.seconds

    def raw() -> float:
        with env.begin() as txn:
            cursor = txn.cursor()
            with Stopwatch() as sw:
                if reverse:
                    cursor.last()
                    pairs = list(cursor.iterprev())
                else:
                    pairs = list(cursor)
        check(len(pairs) == data.n, "the raw scan missed pairs")
        return sw.seconds

    return Side(data.n, kv), Side(data.n, raw)


def _check_overlay(fixture: Fixture) -> None:
    """The scan of a view with local puts shows the puts (checked once, before timing)."""
    data = fixture.data
    key, new = data.lookups[0], b"overwritten".ljust(100, b".")
    with kvstore.LMDBStore(str(fixture.kv_path), sync=False) as store, store.snapshot() as snap:
        view = kvstore.MutableView(snap)
        view.put(key, new)
        scanned = dict(view.get_range())
        check(scanned.get(key) == new, "a view scan returned the base value, not the view's put")
        backwards = [k for k, _ in view.get_range(reverse=True)]
        check(backwards == sorted(scanned, reverse=True), "a reverse view scan is out of order")


def r5a_scan(ctx: Context) -> Measurement:
    """R5a: full forward scan of a view with no local writes vs a raw cursor scan."""
    with ExitStack() as stack:
        kv, raw = r5_sides(ctx.fixture, stack)
        return compare(kv, raw, ctx.reps)


def r5b_scan_overwritten(ctx: Context) -> Measurement:
    """R5b: full forward scan of a view that overwrote 10% of the keys vs a raw cursor scan."""
    _check_overlay(ctx.fixture)
    with ExitStack() as stack:
        kv, raw = r5_sides(ctx.fixture, stack, overwrite=0.1)
        return compare(kv, raw, ctx.reps)


def r5c_scan_reverse(ctx: Context) -> Measurement:
    """R5c: full reverse scan of a view (no local writes) vs raw ``cursor.iterprev()``."""
    with ExitStack() as stack:
        kv, raw = r5_sides(ctx.fixture, stack, reverse=True)
        return compare(kv, raw, ctx.reps)
