"""``python -m tests.reliability``: the long harness, one summary table, non-zero on any fault.

The default sizes take roughly 10-20 minutes on a 2-core machine; ``--scale 0.1`` runs a
quick version and ``--scale 5`` a longer one; ``--parts crash,soak`` runs only some parts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

PARTS = ["crash", "damage", "diskfull", "fuzz", "soak", "isolation"]


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--scale must be > 0, not {text}")
    return value


def _parts(text: str) -> list[str]:
    parts = [p for p in text.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"--parts: unknown {unknown}; known: {PARTS}")
    return parts


Row = tuple[str, str, int]  # (part, measured figures, bad count)


def _crash(scale: float, seed: int) -> Row:
    from tests.reliability.crash import run_crash

    r = run_crash(max(3, round(500 * scale)), check_every=5, seed=seed)
    bad = r.lost + r.corrupt + r.signal_deaths + r.writer_errors
    for p in r.problems[:10]:
        print("  crash:", p)
    sizes = ", ".join(f"{k} {v >> 20} MiB" for k, v in r.file_bytes.items())
    figures = (
        f"kills {r.kills}, acked {r.acked}, lost {r.lost}, corruptions {r.corrupt}, "
        f"signal deaths {r.signal_deaths}, writer errors {r.writer_errors}; files: {sizes}"
    )
    return "crash", figures, bad


def _damage(scale: float, seed: int) -> Row:
    from tests.reliability.damage import run_damage

    r = run_damage(max(10, round(3000 * scale)), seed=seed)
    for p in r.problems[:10]:
        print("  damage:", p)
    figures = (
        f"cases {r.cases}, crashes {r.crashes} (intact {r.intact}, CorruptData {r.corrupt}, "
        f"silently altered {r.altered})"
    )
    return "damage", figures, r.crashes


def _diskfull(scale: float, seed: int) -> Row:
    from tests.reliability.diskfull import run_diskfull

    r = run_diskfull(max(1, round(10 * scale)))
    print(f"  diskfull: filesystem limit by {r.mode}")
    for p in r.problems[:10]:
        print("  diskfull:", p)
    bad_create = sum(1 for o in r.create_on_full if o != "StoreFull")
    if bad_create:
        print(f"  diskfull: create on a full filesystem: {sorted(set(r.create_on_full))}")
    figures = (
        f"rounds {r.rounds}, acked {r.acked}, losses {r.losses}, StoreFull {r.full_commits}, "
        f"not StoreFull {r.not_store_full}, signal deaths {r.signal_deaths}, "
        f"create-on-full failures {bad_create}"
    )
    return "disk full", figures, r.losses + r.not_store_full + r.signal_deaths + bad_create


def _fuzz(scale: float, seed: int) -> Row:
    from tests.reliability import fuzz

    executions = crashes = 0
    try:
        import atheris  # noqa: F401

        mode = "atheris"
    except ImportError:
        mode = "random (atheris is not installed: pip install -e .[reliability])"
    for target in fuzz.TARGET_NAMES:
        if mode == "atheris":
            r = fuzz.run_atheris(target, max(1000, round(30_000 * scale)))
        else:
            r = fuzz.run_random(target, max(1000, round(30_000 * scale)), seed=seed)
        executions += r.executions
        crashes += r.crashes
        for p in r.problems[:3]:
            print("  fuzz:", p)
    return "fuzz", f"{mode}: executions {executions}, crashes {crashes}", crashes


def _soak(scale: float, seed: int) -> Row:
    from tests.reliability.soak import run_soak

    r = run_soak(max(10.0, 180 * scale))
    for p in r.failures[:5]:
        print("  soak:", p)
    mib = 1 << 20
    figures = (
        f"{r.commits} commits in {r.seconds:.0f}s = {r.throughput:.0f}/s, conflicts "
        f"{r.conflicts}, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, RSS "
        f"{max(r.rss_start, default=0) / mib:.1f}->{max(r.rss_end, default=0) / mib:.1f} MiB "
        f"(max growth {r.rss_growth / mib:.1f} MiB), file {r.file_start / mib:.2f}->"
        f"{r.file_end / mib:.2f} MiB, failures {len(r.failures)}"
    )
    return "soak", figures, len(r.failures)


def _isolation(scale: float, seed: int) -> Row:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from kvstore.backends.lmdb import LMDBStore
    from kvstore.backends.memory import MemoryStore
    from tests.reliability.isolation import OPS, PREFIXES, check_isolation

    examples = max(50, round(2000 * scale))
    failures = 0
    current: list[Any] = [None]

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(prefix=st.sampled_from(PREFIXES), ops=st.lists(OPS, min_size=1, max_size=40))
    def check(prefix: bytes, ops: list[Any]) -> None:
        check_isolation(current[0], prefix, ops)

    with tempfile.TemporaryDirectory(prefix="kv-iso-") as tmp:
        for base in (MemoryStore(), LMDBStore(f"{tmp}/db", sync=False)):
            current[0] = base
            try:
                check()
            except Exception as e:
                failures += 1
                print("  isolation:", type(e).__name__, str(e)[:500])
            base.close()
    return "isolation", f"examples {2 * examples}, escapes {failures}", failures


RUNNERS: dict[str, Callable[[float, int], Row]] = {
    "crash": _crash,
    "damage": _damage,
    "diskfull": _diskfull,
    "fuzz": _fuzz,
    "soak": _soak,
    "isolation": _isolation,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__)
    parser.add_argument("--scale", type=_positive, default=1.0, help="multiply every size")
    parser.add_argument("--parts", type=_parts, default=PARTS, help="comma-separated parts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, int, float]] = []
    for part in args.parts:
        print(f"== {part} (scale {args.scale})", flush=True)
        started = time.monotonic()
        name, figures, bad = RUNNERS[part](args.scale, args.seed)
        rows.append((name, figures, bad, time.monotonic() - started))
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'part':<{width}}  {'bad':>4}  {'time':>6}  figures")
    for name, figures, bad, seconds in rows:
        print(f"{name:<{width}}  {bad:>4}  {seconds:>5.0f}s  {figures}")
    total = sum(r[2] for r in rows)
    print(f"\n{'FAIL' if total else 'OK'}: {total} bad count(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
