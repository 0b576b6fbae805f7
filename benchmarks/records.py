"""R8, R9, M1: the records a view keeps — ``Reads``, ``Writes`` — and what a view costs in memory.

These rows have absolute targets, so there is no raw column: R8 counts keys checked per
second, R9 megabytes (1e6 bytes of serialized blob) per second, M1 bytes per entry.
"""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc

import kvstore

from .data import KEY_SIZE, VALUE_SIZE
from .harness import (
    Context,
    Measurement,
    Side,
    Stopwatch,
    check,
    interleave,
    median_rate,
)

__all__ = ["m1_view_memory", "r8_is_conflict", "r9a_serialize", "r9b_deserialize"]


def _standard_writes(ctx: Context) -> kvstore.Writes:
    """A ``Writes`` holding the standard data as puts."""
    return kvstore.Writes(puts=ctx.fixture.data.sorted_items)


def r8_is_conflict(ctx: Context) -> Measurement:
    """R8: ``Reads.is_conflict`` — n point reads against n other puts, no overlap.

    The reads are the standard keys (``Reads`` built from ``KeyRange.single``), the puts as
    many other random keys; the figure is (reads + puts) / second.
    """
    data = ctx.fixture.data
    reads = kvstore.Reads(kvstore.KeyRange.single(k) for k in data.keys)
    other = data.other_keys(data.n, salt=8)
    writes = kvstore.Writes(puts=zip(other, data.new_values(data.n, salt=8), strict=True))
    check(len(reads) == data.n, f"Reads merged point reads: {len(reads)} ranges, not {data.n}")
    probe = kvstore.Writes(puts=[(data.keys[0], b"x")])
    check(reads.is_conflict(probe), "Reads.is_conflict missed a read key that was written")
    checked = len(reads) + len(writes.puts)

    def run() -> float:
        with Stopwatch() as sw:
            conflict = reads.is_conflict(writes)
        check(not conflict, "Reads.is_conflict found a conflict where there is none")
        return sw.seconds

    (times,) = interleave([Side(checked, run)], ctx.reps)
    return Measurement(median_rate(checked, times), unit="keys/s")


def r9a_serialize(ctx: Context) -> Measurement:
    """R9a: ``Writes.serialize()`` of the standard puts, in MB (1e6 bytes of blob) per second."""
    writes = _standard_writes(ctx)
    size = len(writes.serialize())

    def run() -> float:
        with Stopwatch() as sw:
            writes.serialize()
        return sw.seconds

    (times,) = interleave([Side(size, run)], ctx.reps)
    result = Measurement(median_rate(size, times) / 1e6, unit="MB/s")
    result.notes.append(f"blob of {len(writes.puts):,} puts: {size / 1e6:.1f} MB")
    return result


def r9b_deserialize(ctx: Context) -> Measurement:
    """R9b: ``Writes.deserialize()`` of the standard puts' blob, in MB per second."""
    writes = _standard_writes(ctx)
    blob = writes.serialize()
    check(kvstore.Writes.deserialize(blob) == writes, "Writes.deserialize(serialize(w)) != w")

    def run() -> float:
        with Stopwatch() as sw:
            kvstore.Writes.deserialize(blob)
        return sw.seconds

    (times,) = interleave([Side(len(blob), run)], ctx.reps)
    return Measurement(median_rate(len(blob), times) / 1e6, unit="MB/s")


def m1_view_memory(ctx: Context) -> Measurement:
    """M1: traced memory growth of a ``MutableView`` from empty to holding n puts, per entry.

    The keys (16 B) and values (100 B) are created inside the traced region and handed to
    the view, which is then their only holder: the figure is everything one entry costs,
    the two ``bytes`` objects included (about 182 B of it, their CPython size).  The view
    sits on an empty ``MemoryStore``; puts never touch the base.
    """
    n = ctx.config.view_entries
    rng = random.Random(ctx.config.seed + 11)
    randbytes = rng.randbytes
    base = kvstore.MemoryStore()
    view = kvstore.MutableView(base)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        put = view.put
        for _ in range(n):
            put(randbytes(KEY_SIZE), randbytes(VALUE_SIZE))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    entries = len(view.writes.puts)
    check(entries == n, f"the view holds {entries} puts, not {n}")
    per_entry = (after - before) / entries
    own = sys.getsizeof(b"k" * KEY_SIZE) + sys.getsizeof(b"v" * VALUE_SIZE)
    result = Measurement(per_entry, unit="B/entry")
    result.notes.append(
        f"{per_entry:.0f} B/entry = {own} B key+value objects + {per_entry - own:.0f} B of "
        f"the view's own structures (tracemalloc, {(after - before) / 1e6:.0f} MB in all)"
    )
    view.close()
    base.close()
    return result
