"""L1 and L1b: memory regions (``kvstore.layers.regions``) against raw py-lmdb.

L1 writes a region in 64 KiB chunks, one operation (one transaction) per chunk, then reads
it back chunk by chunk; the raw side puts the same chunks, one write transaction each, under
keys of its own, then gets them, one read transaction each.  Both are unsynced
(``durability="none"`` / ``sync=False``): a crash of the process loses nothing, an OS crash
may lose the last writes.  Neither side keeps the chunks it reads (a download writes them
out and drops them); the kvstore side checks the whole region afterwards, untimed.  The
region is 64 MiB in the standard run, 16 MiB in ``--quick``.

L1b prints, for the same region size: 4 KiB writes at random offsets (each merges into the
64 KiB page it falls in), and the 64 KiB chunk writes done one by one, from 4 threads and
from ``asyncio.gather`` on :class:`~kvstore.AsyncRegionClient` — all durable
(``durability="sync"``), where sharing one fsync between concurrent writers (group commit)
is what makes concurrency pay.  Its ratio is the best concurrent rate over one by one.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from pathlib import Path

import kvstore
from kvstore.layers.regions import AsyncRegionClient, RegionClient

from .data import fresh_dir, open_raw
from .harness import Context, Measurement, Side, Stopwatch, check, compare

__all__ = ["l1_chunks", "l1b_concurrent"]

CHUNK = 64 * 1024


def _region_bytes(ctx: Context) -> int:
    return (16 if ctx.config.name == "quick" else 64) * 1024 * 1024


def l1_chunks(ctx: Context) -> Measurement:
    """Write then read a region in 64 KiB chunks vs raw LMDB put/get of the same bytes."""
    size = _region_bytes(ctx)
    rng = random.Random(ctx.config.seed)
    chunks = [rng.randbytes(CHUNK) for _ in range(size // CHUNK)]
    ops = 2 * len(chunks)
    ok: list[bool] = []

    def kv() -> float:
        with fresh_dir(ctx.config.tmp, "l1-kv-") as d, kvstore.open(d, durability="none") as db:
            mem = RegionClient(db)
            mem.allocate_memory("bench", "region", size)
            with Stopwatch() as sw:
                for i, chunk in enumerate(chunks):
                    mem.write_memory("bench", "region", i * CHUNK, chunk)
                for i in range(len(chunks)):
                    mem.read_memory("bench", "region", i * CHUNK, CHUNK)
            # Checked untimed, as the raw side keeps nothing either: holding 64 MiB of reads
            # while timing would charge one side alone for the page faults of fresh memory.
            ok[:] = [mem.read_memory("bench", "region", 0, size) == b"".join(chunks)]
            return sw.seconds

    def raw() -> float:
        with fresh_dir(ctx.config.tmp, "l1-raw-") as d, open_raw(d) as env:
            keys = [b"region/%08d" % i for i in range(len(chunks))]
            with Stopwatch() as sw:
                for key, chunk in zip(keys, chunks, strict=True):
                    with env.begin(write=True) as txn:
                        txn.put(key, chunk)
                for key in keys:
                    with env.begin() as txn:
                        txn.get(key)
            return sw.seconds

    result = compare(Side(ops, kv), Side(ops, raw), ctx.reps)
    check(ok == [True], "the region did not read back what was written")
    result.unit = "chunks/s"
    return result


def _durable(
    ctx: Context, prefix: str, body: Callable[[RegionClient, kvstore.Database], None]
) -> float:
    with fresh_dir(ctx.config.tmp, prefix) as d, kvstore.open(Path(d), durability="sync") as db:
        mem = RegionClient(db)
        mem.allocate_memory("bench", "region", _region_bytes(ctx))
        with Stopwatch() as sw:
            body(mem, db)
        return sw.seconds


def l1b_concurrent(ctx: Context) -> Measurement:
    """Durable chunk writes: one by one, 4 threads, asyncio.gather; and 4 KiB random writes."""
    size = _region_bytes(ctx)
    n = 128  # durable writes wait for the disk: a fixed, modest count
    rng = random.Random(ctx.config.seed)
    chunks = [rng.randbytes(CHUNK) for _ in range(n)]
    small = [(rng.randrange(0, size - 4096), rng.randbytes(4096)) for _ in range(n)]

    def one_by_one(mem: RegionClient, db: kvstore.Database) -> None:
        for i, c in enumerate(chunks):
            mem.write_memory("bench", "region", i * CHUNK, c)

    def threads(mem: RegionClient, db: kvstore.Database) -> None:
        def worker(k: int) -> None:
            for i in range(k, n, 4):
                mem.write_memory("bench", "region", i * CHUNK, chunks[i])

        ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def gathered(mem: RegionClient, db: kvstore.Database) -> None:
        async def main() -> None:
            async with AsyncRegionClient(db) as c:
                await asyncio.gather(
                    *(
                        c.write_memory("bench", "region", i * CHUNK, ch)
                        for i, ch in enumerate(chunks)
                    )
                )

        asyncio.run(main())

    def random_small(mem: RegionClient, db: kvstore.Database) -> None:
        for offset, data in small:
            mem.write_memory("bench", "region", offset, data)

    rates: dict[str, float] = {}
    for name, body in (
        ("one by one", one_by_one),
        ("4 threads", threads),
        ("gather", gathered),
        ("4 KiB random", random_small),
    ):
        seconds = sorted(_durable(ctx, "l1b-", body) for _ in range(max(1, ctx.reps // 2)))
        rates[name] = n / seconds[len(seconds) // 2]
    best = max(rates["4 threads"], rates["gather"])
    m = Measurement(best, rates["one by one"], unit="writes/s", raw_label="1 by 1")
    m.notes.append(", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()))
    m.figures.update(rates)
    return m
