"""The registry: every row of the table, in the order it prints, with its PERFORMANCE.md target.

A row's thresholds live here and nowhere else; its ``measure`` function (in the module of
its concern) only measures.  ``--rows`` picks rows by id (``R5`` means R5a, R5b and R5c;
``L0`` means L0a-L0d, ``P`` means P-set and P-get, ``L3p`` means L3p-insert and L3p-path)
or by issue (``core``, ``view``, ``transaction``, ``records``, ``persidict``).
"""

from __future__ import annotations

from collections.abc import Iterable

from . import core, graph, postgres, records, regions, transactions, views
from .harness import Row, Target
from .p1 import P1_ROWS
from .peers import PEER_ROWS

__all__ = ["ROWS", "select"]

_ratio = Target.of_ratio

ROWS: tuple[Row, ...] = (
    Row("L0a", "core", "LMDBStore.get, live store", _ratio(0.8), core.l0a_get),
    Row("L0b", "core", "LMDBStore.snapshot().get", _ratio(0.8), core.l0b_snapshot_get),
    Row("L0c", "core", "LMDBStore.put, sync=False", _ratio(0.8), core.l0c_put),
    Row("L0d", "core", "LMDBStore full scan", _ratio(0.5), core.l0d_scan),
    Row("R1", "view", "view get, reads tracked", _ratio(0.6), views.r1_view_get),
    Row("R2", "transaction", "transaction get", _ratio(0.5), transactions.r2_tx_get),
    Row("R3", "view", "view put", _ratio(1.0), views.r3_view_put),
    Row("R4", "transaction", "commit of 1 tx of n puts", _ratio(0.7), transactions.r4_commit),
    Row("R5a", "view", "view scan", _ratio(0.4), views.r5a_scan),
    Row("R5b", "view", "view scan, 10% overwritten", _ratio(0.3), views.r5b_scan_overwritten),
    Row("R5c", "view", "view scan, reverse", _ratio(0.3), views.r5c_scan_reverse),
    Row("R6", "transaction", "small txns, 1 thread", _ratio(0.3), transactions.r6_small_txns),
    Row(
        "R7",
        "transaction",
        "sync small txns, 4 threads",
        _ratio(2.0),
        transactions.r7_group_commit,
    ),
    Row(
        "R8",
        "records",
        "Reads.is_conflict, no overlap",
        Target.minimum(1_000_000, "keys/s"),
        records.r8_is_conflict,
    ),
    Row("R9a", "records", "Writes.serialize", Target.minimum(50, "MB/s"), records.r9a_serialize),
    Row(
        "R9b", "records", "Writes.deserialize", Target.minimum(50, "MB/s"), records.r9b_deserialize
    ),
    Row(
        "R10",
        "transaction",
        "counter txns, 4 threads",
        _ratio(1.0, "0 confl., exact, >= 1x R6"),
        transactions.r10_counters,
    ),
    Row(
        "M1",
        "records",
        "view memory per entry",
        Target.maximum(350, "B/entry"),
        records.m1_view_memory,
    ),
    Row("L1", "regions", "regions: 64 KiB chunks write+read", _ratio(0.5), regions.l1_chunks),
    Row(
        "L1b",
        "regions",
        "regions: durable writes, concurrent",
        _ratio(1.0, "> 1x one by one"),
        regions.l1b_concurrent,
    ),
    Row(
        "L2",
        "graph",
        "graph: learn_concept enqueue",
        Target.minimum(300_000, "enqueues/s"),
        graph.l2_burst,
    ),
    Row(
        "L3",
        "graph",
        "graph: find_path, 10k concepts",
        _ratio(0.5, ">= 10k/s, >= 0.5x networkx"),
        graph.l3_find_path,
    ),
    # L3p: one measurement against kuzu (and networkx), two rows; ``--rows L3p`` runs both.
    Row(
        "L3p-insert",
        "graph",
        "graph: durable insert vs kuzu",
        _ratio(1.0, "ahead of kuzu"),
        graph.l3p_kuzu,
    ),
    Row(
        "L3p-path",
        "graph",
        "graph: find_path vs kuzu",
        _ratio(1.0, "ahead of kuzu, >= 0.5x nx"),
        graph.l3p_path,
    ),
    Row(
        "L4",
        "graph",
        "graph: reader process during writes",
        _ratio(0.9, ">= 0.9x with no writer"),
        graph.l4_readers,
    ),
    *P1_ROWS,
    *PEER_ROWS,
    # S1: printed, not judged (a round trip against a memory read); S1d checks growth.
    Row("S1a", "postgres", "R2 tx get: PostgresStore", _ratio(0.0, "printed"), postgres.s1a_tx_get),
    Row("S1b", "postgres", "R4 commit: PostgresStore", _ratio(0.0, "printed"), postgres.s1b_commit),
    Row(
        "S1c",
        "postgres",
        "R6 small txns: PostgresStore",
        _ratio(0.0, "printed"),
        postgres.s1c_small_txns,
    ),
    Row(
        "S1d",
        "postgres",
        "commits, 8 vs 1 client processes",
        _ratio(1.0, "grows with clients"),
        postgres.s1d_processes,
    ),
)


def _matches(row: Row, token: str) -> bool:
    token = token.strip().lower()
    row_id = row.id.lower()
    if token in (row_id, row.issue):
        return True
    rest = row_id[len(token) :]
    return row_id.startswith(token) and (rest.isalpha() or rest.startswith("-"))


def select(tokens: Iterable[str] | None) -> list[Row]:
    """The rows ``tokens`` name, in table order; all rows for ``None``.

    ``ValueError`` names a token that matches no row.
    """
    if tokens is None:
        return list(ROWS)
    wanted = [t for t in (t.strip() for t in tokens) if t]
    unknown = [t for t in wanted if not any(_matches(r, t) for r in ROWS)]
    if unknown:
        ids = ", ".join(r.id for r in ROWS)
        raise ValueError(f"no row matches {', '.join(unknown)}; the rows are {ids}")
    return [r for r in ROWS if any(_matches(r, t) for t in wanted)]
