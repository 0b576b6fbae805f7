"""P-set and P-get: :class:`kvstore.PersiDict` against ``sqlitedict`` and ``diskcache``.

Each store gets the same small values (a 3-field dict, about 60 bytes pickled) under the same
string keys, one write per operation: P-set times ``n`` assignments ``d[key] = value`` into an
empty store, P-get times ``n`` lookups ``d[key]`` of those keys in a shuffled order.  Every
repetition uses fresh directories; the stores take turns (rotating the order each
repetition) so all meet the same machine noise, and each figure is the median of the
repetitions, in operations per second.

Durability, compared honestly.  All three columns are "survives a crash of the process, may
lose the last writes if the OS crashes or power fails":

* ``kvstore``: ``kvstore.open(path, durability="none")`` -- each ``d[key] = value`` is a
  committed LMDB write transaction (validated against the commit log, so it is serializable
  with every other transaction), not fsynced.
* ``sqlitedict``: ``SqliteDict(path, autocommit=True)`` -- each write is its own SQLite
  transaction; sqlitedict sets ``PRAGMA synchronous=OFF``, so nothing is fsynced.
* ``diskcache``: ``Cache(path)`` defaults -- SQLite in WAL mode with ``synchronous=NORMAL``,
  which fsyncs only at checkpoints.

The ``kvstore_sync`` figure is ``durability="sync"``: every commit is fsynced before
``d[key] = value`` returns (survives power loss), which neither competitor offers as run here.
It runs ``n // 20`` operations, since each waits for the disk.

``sqlitedict`` and ``diskcache`` are benchmark-only tools (``pip install sqlitedict
diskcache``); a missing one is skipped with a message and its column is ``None``.
"""

from __future__ import annotations

import gc
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kvstore

__all__ = ["run"]

Value = dict[str, Any]


class _Side:
    """One store under test: ``open`` a fresh one in a directory, then ``set``/``get``."""

    name = ""

    def open(self, directory: Path) -> None:
        raise NotImplementedError

    def set(self, key: str, value: Value) -> None:
        raise NotImplementedError

    def get(self, key: str) -> Value:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _KVStore(_Side):
    def __init__(self, durability: str) -> None:
        self.name = "kvstore" if durability == "none" else f"kvstore_{durability}"
        self.durability = durability

    def open(self, directory: Path) -> None:
        self.db = kvstore.open(directory / "db", durability=self.durability)
        self.d = kvstore.PersiDict(self.db, ("bench",))

    def set(self, key: str, value: Value) -> None:
        self.d[key] = value

    def get(self, key: str) -> Value:
        return self.d[key]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.db.close()


class _SqliteDict(_Side):
    name = "sqlitedict"

    def open(self, directory: Path) -> None:
        from sqlitedict import SqliteDict  # type: ignore[import-untyped,unused-ignore]

        self.d = SqliteDict(str(directory / "bench.sqlite"), autocommit=True)

    def set(self, key: str, value: Value) -> None:
        self.d[key] = value

    def get(self, key: str) -> Value:
        return self.d[key]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.d.close()


class _DiskCache(_Side):
    name = "diskcache"

    def open(self, directory: Path) -> None:
        import diskcache  # type: ignore[import-untyped,unused-ignore]

        self.d = diskcache.Cache(str(directory / "cache"))

    def set(self, key: str, value: Value) -> None:
        self.d[key] = value

    def get(self, key: str) -> Value:
        return self.d[key]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.d.close()


def _available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        print(
            f"bench_persidict: {module} is not installed; skipping its column "
            f"(pip install {module})",
            file=sys.stderr,
        )
        return False
    return True


def _timed(fn: Callable[[str], Any], keys: list[str]) -> float:
    gc.collect()
    start = time.perf_counter()
    for key in keys:
        fn(key)
    return time.perf_counter() - start


def _one_rep(side: _Side, n: int, seed: int) -> tuple[float, float]:
    """Set ``n`` keys in a fresh store, then get them in shuffled order: set and get ops/s."""
    keys = [f"k{i:07d}" for i in range(n)]
    values = {k: {"id": i, "name": f"user{i:06d}", "score": i * 0.5} for i, k in enumerate(keys)}
    shuffled = keys[:]
    random.Random(seed).shuffle(shuffled)
    directory = Path(tempfile.mkdtemp(prefix=f"bench-persidict-{side.name}-"))
    try:
        side.open(directory)
        try:
            put = side.set
            set_seconds = _timed(lambda k: put(k, values[k]), keys)
            get_seconds = _timed(side.get, shuffled)
            for k in shuffled[:50]:  # the stores must have stored what they were given
                if side.get(k) != values[k]:
                    raise AssertionError(f"{side.name} returned a wrong value for {k}")
        finally:
            side.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return n / set_seconds, n / get_seconds


def run(quick: bool) -> list[dict[str, Any]]:
    """Measure and return the P-set and P-get rows (ops/s; ``None`` for a skipped store)."""
    n = 2_000 if quick else 20_000
    reps = 3 if quick else 5
    sides: list[tuple[_Side, int]] = [(_KVStore("none"), n), (_KVStore("sync"), max(n // 20, 100))]
    if _available("sqlitedict"):
        sides.append((_SqliteDict(), n))
    if _available("diskcache"):
        sides.append((_DiskCache(), n))
    sets: dict[str, list[float]] = {side.name: [] for side, _ in sides}
    gets: dict[str, list[float]] = {side.name: [] for side, _ in sides}
    for rep in range(reps):
        turn = sides[rep % len(sides) :] + sides[: rep % len(sides)]
        for side, count in turn:
            set_rate, get_rate = _one_rep(side, count, seed=rep)
            sets[side.name].append(set_rate)
            gets[side.name].append(get_rate)

    def row(row_id: str, workload: str, rates: dict[str, list[float]]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": row_id, "workload": workload}
        for name in ("kvstore", "sqlitedict", "diskcache", "kvstore_sync"):
            out[name] = statistics.median(rates[name]) if rates.get(name) else None
        return out

    return [
        row("P-set", f"{n:,} d[key] = small dict, one committed write each", sets),
        row("P-get", f"{n:,} d[key] of stored keys, shuffled", gets),
    ]


def _main() -> None:
    quick = "--quick" in sys.argv[1:]
    rows = run(quick)
    names = ("kvstore", "sqlitedict", "diskcache", "kvstore_sync")
    print(f"{'id':6} {'workload':50} " + " ".join(f"{name:>13}" for name in names))
    for r in rows:
        cells = " ".join(
            f"{r[name]:>13,.0f}" if r[name] is not None else f"{'skipped':>13}" for name in names
        )
        print(f"{r['id']:6} {r['workload']:50} {cells}")
    print("ops/s, median of the repetitions; durability: see benchmarks/bench_persidict.py")


if __name__ == "__main__":
    _main()
