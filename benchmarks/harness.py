"""Timing, results and the printed table.

A workload is a :class:`Side`: a callable that runs one repetition — its own setup untimed —
and returns the seconds spent in the timed part, plus the number of operations that part
performed.  :func:`interleave` runs several sides in turn (A, B, A, B, ...) so that both
meet the same machine noise, and :func:`median_rate` turns the repetitions into one figure.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import Fixture

__all__ = [
    "Config",
    "Context",
    "Measurement",
    "Result",
    "Row",
    "Side",
    "Stopwatch",
    "Target",
    "check",
    "compare",
    "format_rate",
    "format_table",
    "interleave",
    "median_rate",
]


@dataclass(frozen=True)
class Config:
    """The sizes a run uses; :meth:`quick` and :meth:`standard` are the two presets.

    ``keys`` is the size of the standard data set, ``reps`` the repetitions of each row,
    ``small_txns`` the transactions per repetition of L0c and R6, ``sync_txns`` those of R7,
    ``counter_txns`` the transactions of one R10 repetition and ``counter_reps`` its
    repetitions, ``view_entries`` the puts of M1.
    """

    name: str
    keys: int
    reps: int
    small_txns: int
    sync_txns: int
    counter_txns: int
    counter_reps: int
    view_entries: int
    tmp: Path
    seed: int = 20_240_601

    @classmethod
    def quick(cls, tmp: Path) -> Config:
        """``--quick``: 15 s on an idle 2-core machine; what ``kvstore bench`` runs."""
        return cls(
            name="quick",
            keys=20_000,
            reps=5,
            small_txns=4_000,
            sync_txns=400,
            counter_txns=2_000,
            counter_reps=3,
            view_entries=200_000,
            tmp=tmp,
        )

    @classmethod
    def standard(cls, tmp: Path) -> Config:
        """The default: PERFORMANCE.md's standard data, 100,000 keys."""
        return cls(
            name="standard",
            keys=100_000,
            reps=5,
            small_txns=10_000,
            sync_txns=2_000,
            counter_txns=10_000,
            counter_reps=3,
            view_entries=1_000_000,
            tmp=tmp,
        )


@dataclass(frozen=True)
class Context:
    """What a row needs: the run's sizes and the standard data set's databases."""

    config: Config
    fixture: Fixture

    @property
    def reps(self) -> int:
        return self.config.reps


@dataclass(frozen=True)
class Side:
    """One workload: ``run()`` performs one repetition and returns its timed seconds.

    ``run`` does its own setup and teardown outside the timed part; ``ops`` is how many
    operations the timed part performs (gets, puts, transactions, pairs scanned ...).
    """

    ops: int
    run: Callable[[], float]


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``: wall time of the block."""

    __slots__ = ("_start", "seconds")

    def __init__(self) -> None:
        self._start = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def time_gets(get: Callable[[bytes], object], keys: Sequence[bytes]) -> float:
    """Seconds taken by ``get(key)`` for every key, in order."""
    with Stopwatch() as sw:
        for key in keys:
            get(key)
    return sw.seconds


def raw_gets(env: Any, keys: Sequence[bytes]) -> float:
    """Seconds taken by raw ``txn.get`` of every key, in one read transaction of ``env``."""
    with env.begin() as txn:
        return time_gets(txn.get, keys)


def interleave(sides: Sequence[Side], reps: int) -> list[list[float]]:
    """Run every side once per repetition, in turn; return each side's timed seconds.

    A full collection runs before every timed repetition, so no side pays for garbage the
    other left behind; the collector stays enabled while timing, as it is for users.
    """
    times: list[list[float]] = [[] for _ in sides]
    for _ in range(reps):
        for i, side in enumerate(sides):
            gc.collect()
            times[i].append(side.run())
    return times


def median_rate(ops: int, seconds: Sequence[float]) -> float:
    """Operations per second at the median repetition."""
    median = statistics.median(seconds)
    return ops / median if median > 0 else float("inf")


@dataclass
class Measurement:
    """What a row measured: the kvstore figure and, for ratio rows, the raw one.

    ``unit`` names what ``kv`` counts (``ops/s`` unless said); ``raw_label`` marks a
    comparison column that is not raw py-lmdb in one thread; the ratio is ``kv / raw``;
    ``passed`` is False when a condition of the row other than its figure failed (R10's
    conflicts and total); ``figures`` optionally holds every compared store's rate by name
    (the peer rows), for the plot.
    """

    kv: float
    raw: float | None = None
    unit: str = "ops/s"
    raw_label: str = ""
    passed: bool = True
    notes: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A row's target: ``kv/raw >= ratio``, ``kv >= at_least`` or ``kv <= at_most``."""

    text: str
    ratio: float | None = None
    at_least: float | None = None
    at_most: float | None = None

    @classmethod
    def of_ratio(cls, minimum: float, text: str = "") -> Target:
        return cls(text or f">= {minimum:g}x", ratio=minimum)

    @classmethod
    def minimum(cls, value: float, unit: str) -> Target:
        return cls(f">= {format_rate(value)} {unit}", at_least=value)

    @classmethod
    def maximum(cls, value: float, unit: str) -> Target:
        return cls(f"<= {format_rate(value)} {unit}", at_most=value)

    def judge(self, m: Measurement) -> tuple[float | None, bool]:
        """The ratio shown (``None`` for absolute targets) and whether ``m`` meets this."""
        if self.ratio is not None:
            if m.raw is None:
                raise ValueError("a ratio target needs a raw figure")
            ratio = m.kv / m.raw if m.raw else float("inf")
            return ratio, m.passed and ratio >= self.ratio
        if self.at_least is not None:
            return None, m.passed and m.kv >= self.at_least
        if self.at_most is not None:
            return None, m.passed and m.kv <= self.at_most
        raise ValueError("a Target needs ratio, at_least or at_most")


@dataclass
class Result:
    """One line of the table: a row's measurement judged against its target.

    ``measurement`` is ``None`` when the row could not run; ``error`` then says why.
    """

    id: str
    workload: str
    target: Target
    measurement: Measurement | None = None
    ratio: float | None = None
    ok: bool = False
    error: str | None = None

    @classmethod
    def judged(cls, id: str, workload: str, target: Target, m: Measurement) -> Result:
        ratio, ok = target.judge(m)
        return cls(id, workload, target, m, ratio, ok)


@dataclass(frozen=True)
class Row:
    """A table row: its id, the issue it belongs to, what it measures and its target.

    ``measure`` runs the row's workloads and returns the figures; :meth:`run` judges them
    against ``target``.  A row that fails — a kvstore module not there yet, a wrong answer —
    becomes an error line in the table, and the run goes on.
    """

    id: str
    issue: str
    workload: str
    target: Target
    measure: Callable[[Context], Measurement]

    def run(self, ctx: Context) -> Result:
        try:
            m = self.measure(ctx)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            return Result(self.id, self.workload, self.target, error=f"{type(e).__name__}: {e}")
        return Result.judged(self.id, self.workload, self.target, m)


def format_rate(value: float) -> str:
    """A figure with thousands separators, rounded to what a noisy machine can tell apart."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


_HEADER = ("workload", "kvstore ops/s", "raw-lmdb ops/s", "ratio", "target", "ok?")


def _cells(r: Result) -> tuple[str, ...]:
    m = r.measurement
    if m is None:
        return (f"{r.id} {r.workload}", "error", "-", "-", r.target.text, "ERROR")
    kv = format_rate(m.kv) + ("" if m.unit == "ops/s" else f" {m.unit}")
    raw = "-" if m.raw is None else format_rate(m.raw)
    if m.raw_label and m.raw is not None:
        raw += f" {m.raw_label}"
    ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
    return (f"{r.id} {r.workload}", kv, raw, ratio, r.target.text, "yes" if r.ok else "NO")


def format_table(results: Sequence[Result]) -> str:
    """The plain, aligned text table, notes and errors listed below it."""
    rows = [_HEADER, *(_cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    right = {1, 2, 3}  # the numeric columns

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return " | ".join(cells).rstrip()

    out = [line(rows[0]), "-+-".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows[1:])
    notes = [(r.id, n) for r in results if r.measurement for n in r.measurement.notes]
    notes += [(r.id, f"error: {r.error}") for r in results if r.error is not None]
    if notes:
        out.append("")
        out.extend(f"  {id}: {note}" for id, note in notes)
    return "\n".join(out)


def compare(kv: Side, raw: Side, reps: int, *, raw_label: str = "") -> Measurement:
    """Run ``kv`` and ``raw`` interleaved, ``reps`` times each: their median rates.

    The row's ratio is the quotient of the two medians, so a reader can check it against
    the two columns.
    """
    kv_times, raw_times = interleave([kv, raw], reps)
    return Measurement(
        median_rate(kv.ops, kv_times), median_rate(raw.ops, raw_times), raw_label=raw_label
    )


def check(condition: bool, message: str) -> None:
    """Fail the row (not the run) when a workload's answer is wrong."""
    if not condition:
        raise AssertionError(message)
