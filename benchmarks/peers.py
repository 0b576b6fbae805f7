"""P-set and P-get: ``kvstore.PersiDict`` against its peers, sqlitedict and diskcache.

PERFORMANCE.md's P1 compares ``kvstore.PersiDict`` with its peers; its target is kvstore
ahead of every peer on every workload.  The measuring is :mod:`benchmarks.bench_persidict`'s
(``measure``; its docstring says what each store does and how durable it is), shared with
that script's own ``__main__``, so the rows and the script cannot drift apart:

* **P-set** — ``n`` assignments ``d[key] = value`` of small dicts into an empty store, each
  one committed write;
* **P-get** — ``n`` lookups ``d[key]`` of those keys, shuffled.

Each row's kvstore column is ``kvstore.PersiDict`` on ``durability="none"``; its comparison
column is the fastest installed peer's figure, marked with that peer's name (e.g.
``(diskcache)``), and the notes list every store's figure, including kvstore with
``durability="sync"`` (for information; no peer fsyncs every write).  Target: ahead of every
peer, ratio >= 1.0.  Peers are never dependencies of kvstore: a peer that is not installed
is skipped with a note; with none installed the rows are left out of the table (a plain
checkout runs ``kvstore bench`` cleanly), and the run says so.

Both rows come from one measurement (the stores take rotating turns, set then get, on fresh
directories each repetition), made once per run and shared.  ``--rows P`` (or ``persidict``)
selects them.  ZODB and shelve, also named in P1, are not measured yet.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

from . import bench_persidict
from .harness import Config, Context, Measurement, Row, Target, format_rate

__all__ = ["PEER_ROWS", "p_get", "p_set"]


@lru_cache(maxsize=1)
def _figures(config: Config) -> bench_persidict.Figures:
    """One measurement per run (a run's ``Config`` is unique: it holds its temp directory)."""
    n, reps = bench_persidict.sizes(config.name == "quick")
    return bench_persidict.measure(n, reps)


def _measurement(figures: bench_persidict.Figures, rates: dict[str, float]) -> Measurement:
    peers = {name: rates[name] for name, _, _ in bench_persidict.PEERS if name in rates}
    if not peers:
        wanted = " ".join(name for name, _, _ in bench_persidict.PEERS)
        raise RuntimeError(f"no peer is installed to compare with (pip install {wanted})")
    fastest = max(peers, key=peers.__getitem__)
    n = figures.ops["kvstore"]
    notes = [
        f"ops/s, {n:,} ops per store: "
        + ", ".join(f"{name} {format_rate(rate)}" for name, rate in peers.items())
        + f"; kvstore with durability sync {format_rate(rates['kvstore_sync'])} "
        f"({figures.ops['kvstore_sync']:,} ops)"
    ]
    notes += [f"{name} not installed: skipped (pip install {name})" for name in figures.skipped]
    return Measurement(
        rates["kvstore"],
        peers[fastest],
        raw_label=f"({fastest})",
        notes=notes,
        figures={"kvstore": rates["kvstore"], **peers},
    )


def p_set(ctx: Context) -> Measurement:
    """P-set: ``d[key] = value``, one committed write each, kvstore against the fastest peer."""
    figures = _figures(ctx.config)
    return _measurement(figures, figures.sets)


def p_get(ctx: Context) -> Measurement:
    """P-get: ``d[key]`` of stored keys, shuffled, kvstore against the fastest peer."""
    figures = _figures(ctx.config)
    return _measurement(figures, figures.gets)


_AHEAD = Target.of_ratio(1.0, "ahead of every peer")



def _any_peer_installed() -> bool:
    return any(importlib.util.find_spec(module) for _, module, _ in bench_persidict.PEERS)


#: The PersiDict rows, appended to the table by :mod:`benchmarks.rows`; empty when no peer
#: is installed (``pip install sqlitedict diskcache`` to measure them).
PEER_ROWS: tuple[Row, ...] = (
    (
        Row("P-set", "persidict", "PersiDict d[k] = v, 1 commit each", _AHEAD, p_set),
        Row("P-get", "persidict", "PersiDict d[k], shuffled keys", _AHEAD, p_get),
    )
    if _any_peer_installed()
    else ()
)
