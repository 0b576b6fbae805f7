"""``--full``: how cost grows — R1, R4 and R5a at 10,000, 100,000 and 1,000,000 keys.

PERFORMANCE.md asks that the per-operation cost stay flat or grow like log n.  Each size gets
its own data set (the first keys of one seeded sequence) and its own databases; R1 does
``min(n, 100,000)`` random gets at every size, R4 commits n puts, R5a scans n pairs.  The
figures are microseconds per operation, kvstore and raw, medians of interleaved repetitions.

:func:`plot` draws the main table's ratios, these curves and, when the PersiDict rows ran,
every store's rate in them into docs/performance.png when matplotlib is importable; it is
never a dependency of kvstore.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import Dataset, Fixture
from .harness import Config, Result, Side, interleave, median_rate
from .transactions import r4_sides
from .views import r1_sides, r5_sides

__all__ = ["SIZES", "ScalePoint", "format_scaling", "plot", "run_scaling"]

SIZES = (10_000, 100_000, 1_000_000)
#: Repetitions per workload and size (the 1,000,000-key commit alone takes seconds).
REPS = 3
#: Random gets per R1 measurement, at every size.
LOOKUPS = 100_000

#: Where the plot goes: the repository's docs/ folder.
PLOT_PATH = Path(__file__).resolve().parent.parent / "docs" / "performance.png"


@dataclass(frozen=True)
class ScalePoint:
    """One workload at one size: microseconds per operation, kvstore and raw."""

    workload: str
    n: int
    kv_us: float
    raw_us: float

    @property
    def ratio(self) -> float:
        """raw cost / kvstore cost — the same sense as the table's ratios (higher is better)."""
        return self.raw_us / self.kv_us if self.kv_us else float("inf")


def _point(workload: str, n: int, sides: tuple[Side, Side]) -> ScalePoint:
    kv, raw = sides
    kv_times, raw_times = interleave([kv, raw], REPS)
    return ScalePoint(
        workload, n, 1e6 / median_rate(kv.ops, kv_times), 1e6 / median_rate(raw.ops, raw_times)
    )


def run_scaling(
    config: Config, progress: Callable[[str], None], sizes: Sequence[int] = SIZES
) -> list[ScalePoint]:
    """Measure R1, R4 and R5a at each size; ``progress`` hears about each step."""
    points: list[ScalePoint] = []
    for n in sizes:
        progress(f"scaling: {n:,} keys — building the data set and databases")
        data = Dataset(n, config.seed)
        with tempfile.TemporaryDirectory(prefix=f"scale-{n}-", dir=config.tmp) as tmp:
            fixture = Fixture(data, Path(tmp))
            with ExitStack() as stack:
                sides = r1_sides(fixture, stack, data.lookups[:LOOKUPS])
                points.append(_point("R1 view get", n, sides))
            progress(f"scaling: {n:,} keys — R1 done")
            points.append(_point("R4 commit (per put)", n, r4_sides(data, Path(tmp))))
            progress(f"scaling: {n:,} keys — R4 done")
            with ExitStack() as stack:
                points.append(_point("R5a view scan (per pair)", n, r5_sides(fixture, stack)))
            progress(f"scaling: {n:,} keys — R5a done")
    return points


def format_scaling(points: Sequence[ScalePoint]) -> str:
    """The scaling table: one line per workload and size."""
    header = ("workload", "keys", "kvstore us/op", "raw us/op", "ratio")
    rows = [header] + [
        (p.workload, f"{p.n:,}", f"{p.kv_us:.3f}", f"{p.raw_us:.3f}", f"{p.ratio:.2f}x")
        for p in points
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
        for r in rows
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _plot_peers(ax: Any, rows: Sequence[Result], formatter: Any) -> None:
    """Grouped bars: every store's rate in each peer row (P1a-g, P-set, P-get), log scale."""
    names: list[str] = []
    for r in rows:
        assert r.measurement is not None
        names += [name for name in r.measurement.figures if name not in names]
    height = 0.8 / len(names)
    for i, name in enumerate(names):
        offset = (i - (len(names) - 1) / 2) * height
        bars = [
            (g + offset, r.measurement.figures[name])
            for g, r in enumerate(rows)
            if r.measurement is not None and name in r.measurement.figures
        ]
        ax.barh(
            [y for y, _ in bars], [x for _, x in bars], height=height, color=f"C{i}", label=name
        )
        for y, rate in bars:
            ax.annotate(
                f"{rate:,.0f}",
                (rate, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize="small",
            )
    ax.set_yticks(range(len(rows)), [r.id for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    lowest = min(x for r in rows if r.measurement for x in r.measurement.figures.values())
    ax.set_xlim(10 ** math.floor(math.log10(lowest) - 0.5), ax.get_xlim()[1] * 4)
    ax.xaxis.set_major_formatter(formatter(lambda x, _: f"{x:,.0f}"))
    ax.set_xlabel("operations per second (higher is better; log scale)")
    ax.set_title("Database and PersiDict against their peers")
    ax.legend(loc="upper right", fontsize="small")


def plot(results: Sequence[Result], points: Sequence[ScalePoint], path: Path = PLOT_PATH) -> str:
    """Draw the ratios and the scaling curves into ``path``; say what happened."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib to get one)"

    ratio_rows = [r for r in results if r.ratio is not None and r.target.ratio is not None]
    # The peer rows (P1a-g, P-set, P-get): every store's rate in ops/s.  Other rows' figures
    # (L1b's variants, L3p's sides, L4's flat-out ratio) are in their own units.
    peer_rows = [
        r
        for r in results
        if r.id.startswith("P") and r.measurement is not None and r.measurement.figures
    ]
    widths = [1.15, 1.0, 0.75] if peer_rows else [1.0, 1.0]
    fig, axes = plt.subplots(
        1, len(widths), figsize=(6.5 * sum(widths), 6), gridspec_kw={"width_ratios": widths}
    )
    left, right = axes[0], axes[1]
    if ratio_rows:

        def label(r: Result) -> str:
            m = r.measurement
            mark = m.raw_label.strip("()") if m is not None and m.raw_label else ""
            return f"{r.id} (vs {mark})" if mark else r.id

        labels = [label(r) for r in ratio_rows]
        ys = range(len(ratio_rows))
        colors = ["tab:green" if r.ok else "tab:red" for r in ratio_rows]
        left.barh(ys, [r.ratio or 0.0 for r in ratio_rows], color=colors)
        for y, r in zip(ys, ratio_rows, strict=True):
            left.annotate(  # right of the bar and of the target mark, never on them
                f"{r.ratio:.2f}x",
                (max(r.ratio or 0.0, r.target.ratio or 0.0), y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize="small",
            )
        left.scatter(
            [r.target.ratio for r in ratio_rows],
            ys,
            marker="|",
            s=300,
            color="black",
            label="target",
            zorder=3,
        )
        left.set_yticks(list(ys), labels)
        left.invert_yaxis()
        left.set_xscale("log")
        left.set_xticks([0.05, 0.1, 0.2, 0.5, 1, 2, 5])
        left.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
        left.set_xlim(0.02, max(5.0, *(2 * (r.ratio or 0.0) for r in ratio_rows)))
        left.axvline(1.0, color="grey", linewidth=0.8)
        left.set_xlabel(
            "kvstore / raw py-lmdb, or the named comparison (higher is better; log scale)"
        )
        left.set_title("kvstore against raw LMDB (and peers), same run")
        left.legend(loc="upper right")
    if peer_rows:
        _plot_peers(axes[2], peer_rows, FuncFormatter)
    workloads = sorted({p.workload for p in points})
    for i, workload in enumerate(workloads):
        mine = sorted((p for p in points if p.workload == workload), key=lambda p: p.n)
        color = f"C{i}"
        ns = [p.n for p in mine]
        right.plot(ns, [p.kv_us for p in mine], "o-", color=color, label=f"{workload} kvstore")
        right.plot(ns, [p.raw_us for p in mine], "s--", color=color, label=f"{workload} raw")
    right.set_xscale("log")
    right.set_yscale("log")
    right.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    right.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    right.set_xlabel("keys")
    right.set_ylabel("microseconds per operation (log scale)")
    right.set_title("cost per operation as the store grows")
    if points:
        right.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"plot written to {path}"
