"""P1 and the PersiDict rows — the hook for a later issue; nothing is measured here yet.

PERFORMANCE.md's P1 compares ``kvstore.PersiDict`` with its peers (sqlitedict, diskcache,
ZODB, shelve) on bulk load, point read, scan, small transactions and counters; its target is
kvstore ahead of every peer on every workload.  When ``kvstore/layers/persidict.py`` lands:

* write one ``measure`` function per workload here, each returning a
  :class:`~benchmarks.harness.Measurement` whose ``raw`` is the fastest peer's figure and
  whose ``raw_label`` names that peer (e.g. ``"(diskcache)"``), with every peer's figure in
  ``notes``; run kvstore and each peer interleaved with :func:`~benchmarks.harness.interleave`;
* import a peer only inside its measure function and skip it, with a note, when it is not
  installed — peers are never dependencies of kvstore;
* list the rows in :data:`PEER_ROWS` (issue ``"persidict"``, ids ``P1a``, ``P1b``, ...,
  target ``Target.of_ratio(1.0, "ahead of every peer")``); :mod:`benchmarks.rows` appends
  them to the table and ``--rows P1`` selects them.
"""

from __future__ import annotations

from benchmarks.harness import Row

__all__ = ["PEER_ROWS"]

#: The P1/PersiDict rows.  Empty until the PersiDict layer lands (a later issue).
PEER_ROWS: tuple[Row, ...] = ()
