"""kvstore's benchmark suite: every PERFORMANCE.md row, measured against raw py-lmdb.

Run it with ``python -m benchmarks`` (``--quick``, ``--full``, ``--rows R1,R5``); see
docs/performance.md.  Each row runs its kvstore workload and the raw counterpart interleaved
(A, B, A, B, ...) in one process and reports medians, so the ratio is what counts, not the
absolute numbers of a shared, noisy machine.

Modules, one per concern:

* :mod:`benchmarks.harness` — configuration, timing, results and the printed table;
* :mod:`benchmarks.data` — the standard data set and the LMDB databases that hold it;
* :mod:`benchmarks.core` — L0: ``LMDBStore`` against raw py-lmdb;
* :mod:`benchmarks.views` — R1, R3, R5: ``MutableView`` reads, writes and scans;
* :mod:`benchmarks.transactions` — R2, R4, R6, R7, R10: transactions and commits;
* :mod:`benchmarks.records` — R8, R9, M1: ``Reads``/``Writes`` speed and view memory;
* :mod:`benchmarks.peers` — P1: the hook for the PersiDict/peer rows (a later issue);
* :mod:`benchmarks.scaling` — ``--full``: per-operation cost at 10k, 100k and 1M keys;
* :mod:`benchmarks.rows` — the registry of rows, in the order they print.

Benchmarks never run inside the unit-test suite.
"""
