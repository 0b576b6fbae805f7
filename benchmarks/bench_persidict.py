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

Run it alone (``python benchmarks/bench_persidict.py [--quick]``) for this table, or as the
suite's P-set/P-get rows (``python -m benchmarks --rows P``): both call :func:`measure`.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kvstore

__all__ = ["NAMES", "PEERS", "Figures", "measure", "run", "sizes"]

Value = dict[str, Any]


class _Side:
    """One store under test: ``open`` a fresh one in a directory, then ``set``/``get``.

    ``open`` puts the dict-like store in ``self.d``; every store here is used the same way.
    """

    name = ""
    d: Any

    def open(self, directory: Path) -> None:
        raise NotImplementedError

    def set(self, key: str, value: Value) -> None:
        self.d[key] = value

    def get(self, key: str) -> Value:
        return self.d[key]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.d.close()


class _KVStore(_Side):
    def __init__(self, durability: str) -> None:
        self.name = "kvstore" if durability == "none" else f"kvstore_{durability}"
        self.durability = durability

    def open(self, directory: Path) -> None:
        self.db = kvstore.open(directory / "db", durability=self.durability)
        self.d = kvstore.PersiDict(self.db, ("bench",))

    def close(self) -> None:
        self.db.close()


class _SqliteDict(_Side):
    name = "sqlitedict"

    def open(self, directory: Path) -> None:
        from sqlitedict import SqliteDict  # type: ignore[import-untyped,unused-ignore]

        self.d = SqliteDict(str(directory / "bench.sqlite"), autocommit=True)


class _DiskCache(_Side):
    name = "diskcache"

    def open(self, directory: Path) -> None:
        import diskcache  # type: ignore[import-untyped,unused-ignore]

        self.d = diskcache.Cache(str(directory / "cache"))


#: The peers, in the order their columns print: (name, module to import, side factory).
PEERS: tuple[tuple[str, str, Callable[[], _Side]], ...] = (
    ("sqlitedict", "sqlitedict", _SqliteDict),
    ("diskcache", "diskcache", _DiskCache),
)

#: Every column, in print order; ``kvstore_sync`` is informative, not a competitor.
NAMES = ("kvstore", *(name for name, _, _ in PEERS), "kvstore_sync")


def _available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def sizes(quick: bool) -> tuple[int, int]:
    """Operations per store and repetitions: ``--quick`` or the standard run."""
    return (2_000, 3) if quick else (20_000, 5)


@dataclass(frozen=True)
class Figures:
    """One measurement of every store: median set and get rates (ops/s) by column name.

    ``ops`` maps each store measured to the operations one repetition performed (``n``, or
    ``n // 20`` for ``kvstore_sync``); ``skipped`` names the peers not installed.
    """

    sets: dict[str, float]
    gets: dict[str, float]
    ops: dict[str, int]
    skipped: tuple[str, ...]


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


def measure(n: int, reps: int) -> Figures:
    """Set then get ``n`` keys in every installed store, ``reps`` rotating turns: the medians.

    The one implementation behind both this script and the suite's P-set/P-get rows
    (:mod:`benchmarks.peers`).
    """
    sides: list[tuple[_Side, int]] = [(_KVStore("none"), n), (_KVStore("sync"), max(n // 20, 100))]
    skipped: list[str] = []
    for name, module, factory in PEERS:
        if _available(module):
            sides.append((factory(), n))
        else:
            skipped.append(name)
    sets: dict[str, list[float]] = {side.name: [] for side, _ in sides}
    gets: dict[str, list[float]] = {side.name: [] for side, _ in sides}
    for rep in range(reps):
        turn = sides[rep % len(sides) :] + sides[: rep % len(sides)]
        for side, count in turn:
            set_rate, get_rate = _one_rep(side, count, seed=rep)
            sets[side.name].append(set_rate)
            gets[side.name].append(get_rate)
    return Figures(
        sets={name: statistics.median(rates) for name, rates in sets.items()},
        gets={name: statistics.median(rates) for name, rates in gets.items()},
        ops={side.name: count for side, count in sides},
        skipped=tuple(skipped),
    )


def run(quick: bool) -> list[dict[str, Any]]:
    """Measure and return the P-set and P-get rows (ops/s; ``None`` for a skipped store)."""
    n, reps = sizes(quick)
    figures = measure(n, reps)
    for name in figures.skipped:
        print(
            f"bench_persidict: {name} is not installed; skipping its column (pip install {name})",
            file=sys.stderr,
        )

    def row(row_id: str, workload: str, rates: dict[str, float]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": row_id, "workload": workload}
        for name in NAMES:
            out[name] = rates.get(name)
        return out

    return [
        row("P-set", f"{n:,} d[key] = small dict, one committed write each", figures.sets),
        row("P-get", f"{n:,} d[key] of stored keys, shuffled", figures.gets),
    ]


def _main() -> None:
    quick = "--quick" in sys.argv[1:]
    rows = run(quick)
    print(f"{'id':6} {'workload':50} " + " ".join(f"{name:>13}" for name in NAMES))
    for r in rows:
        cells = " ".join(
            f"{r[name]:>13,.0f}" if r[name] is not None else f"{'skipped':>13}" for name in NAMES
        )
        print(f"{r['id']:6} {r['workload']:50} {cells}")
    print("ops/s, median of the repetitions; durability: see benchmarks/bench_persidict.py")


if __name__ == "__main__":
    _main()
