"""``python -m benchmarks [--quick | --full] [--rows R1,R3,...]`` — the benchmark suite.

``kvstore bench`` calls :func:`main` with ``["--quick"]``.  The exit status is 0 when every
selected row ran (whether or not it met its target), 1 when a row failed to run, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import lmdb

from .data import Dataset, Fixture
from .harness import Config, Context, Result, format_table
from .rows import select

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="kvstore against raw py-lmdb, side by side: one table of ratios.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_true",
        help="20,000 keys, 5 repetitions (peer rows 3): ~15 s (what `kvstore bench` runs)",
    )
    mode.add_argument(
        "--full",
        action="store_true",
        help="the standard run plus the scaling section (10k/100k/1M keys) and a plot",
    )
    parser.add_argument(
        "--rows",
        metavar="IDS",
        help="comma-separated rows to run: ids (R1, R5 = R5a-c, L0 = L0a-d, L3p = L3p-insert "
        "and L3p-path, P = P-set and "
        "P-get) or issues "
        "(core, view, transaction, records, persidict, regions, graph); default: all",
    )
    return parser


def _say(text: str = "") -> None:
    print(text, flush=True)


def _load() -> float:
    """The 1-minute load average (0.0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def main(argv: list[str] | None = None) -> int:
    """Run the suite and print the table; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        rows = select(args.rows.split(",") if args.rows else None)
    except ValueError as e:
        print(f"python -m benchmarks: {e}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kvstore-bench-") as tmp:
        root = Path(tmp)
        config = Config.quick(root) if args.quick else Config.standard(root)
        _say(
            f"kvstore benchmarks — {config.name} run"
            f"{' (QUICK: fewer keys and repetitions; rough figures)' if args.quick else ''}: "
            f"{config.keys:,} keys of 16 B, values of 100 B, {config.reps} interleaved "
            "repetitions, medians"
        )
        _say(
            f"{datetime.date.today()}, Python {platform.python_version()}, "
            f"py-lmdb {lmdb.__version__}, {os.cpu_count()} CPUs, {platform.platform()}"
        )
        data = Dataset(config.keys, config.seed)
        ctx = Context(config, Fixture(data, root))
        results: list[Result] = []
        loads = [_load()]
        for row in rows:
            t0 = time.perf_counter()
            result = row.run(ctx)
            results.append(result)
            verdict = "ERROR" if result.error else "ok" if result.ok else "MISSES TARGET"
            seconds = time.perf_counter() - t0
            loads.append(_load())
            _say(
                f"  {row.id:<4} {row.workload:<32} {verdict:<14} {seconds:5.1f} s"
                f"   load {loads[-1]:.1f}"
            )

        _say()
        _say(format_table(results))
        cpus = os.cpu_count() or 1
        if max(loads) > cpus:
            _say()
            _say(
                f"WARNING: the machine was busy (1-minute load up to {max(loads):.1f} on {cpus} "
                "CPUs): absolute figures are low and ratios noisier than usual."
            )

        if args.full:
            from .scaling import format_scaling, plot, run_scaling

            _say()
            points = run_scaling(config, lambda text: _say(f"  {text}"))
            _say()
            _say("Scaling: cost per operation (R1 per get, R4 per committed put, R5a per pair)")
            _say(format_scaling(points))
            _say(plot(results, points))

    missed = [r.id for r in results if r.error is None and not r.ok]
    failed = [r.id for r in results if r.error is not None]
    _say()
    _say(
        f"{len(results)} rows in {time.perf_counter() - started:.0f} s: "
        f"{len(results) - len(missed) - len(failed)} met their targets"
        + (f", missed: {', '.join(missed)}" if missed else "")
        + (f", failed to run: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
