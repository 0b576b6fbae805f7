"""Load / soak: processes x threads of mixed transactions, checked for serializability.

Every worker runs :func:`tests.serializability.random_transaction` (transfers between
accounts, range scans, counter bumps) until the deadline and records each commit; the
history of all of them is replayed by :func:`tests.serializability.check_history`, which also
checks the total balance.  Reported: commits per second, conflicts, p50/p99 commit latency,
each process's RSS at start and end, and the store's file size at start and end.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from tests.reliability.common import dir_size, rss_bytes, spawn


@dataclass
class SoakResult:
    """What a soak run measured; ``failures`` must stay empty."""

    commits: int = 0
    conflicts: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    rss_start: list[int] = field(default_factory=list)
    rss_end: list[int] = field(default_factory=list)
    file_start: int = 0
    file_end: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.commits / self.seconds if self.seconds else 0.0

    @property
    def rss_growth(self) -> int:
        """The largest growth of one process's RSS from its warm-up to the end, in bytes."""
        return max((e - s for s, e in zip(self.rss_start, self.rss_end, strict=True)), default=0)


def run_soak(
    seconds: float, processes: int = 4, threads: int = 2, *, directory: str | None = None
) -> SoakResult:
    """Run ``processes`` x ``threads`` workers for ``seconds``, then check the history."""
    import kvstore
    from tests.serializability import check_history, seed_accounts

    result = SoakResult()
    with tempfile.TemporaryDirectory(prefix="kv-soak-", dir=directory) as tmp:
        path = os.path.join(tmp, "db")
        with kvstore.open(path) as db:
            seed_accounts(db)
        result.file_start = dir_size(path)
        started = time.monotonic()
        procs = [
            spawn(_MOD, path, str(seconds), str(threads), str(1000 * p)) for p in range(processes)
        ]
        history = []
        latencies: list[float] = []
        for n, p in enumerate(procs):
            out, err = p.communicate(timeout=seconds + 600)
            if p.returncode != 0:
                result.failures.append(f"worker exit {p.returncode}: {err[-500:]}")
                continue
            report = json.loads(out.splitlines()[-1])
            with open(f"{path}.{1000 * n}.history") as f:
                for line in f:
                    version, obs, writes, took = json.loads(line)
                    history.append((version, _decode(obs), bytes.fromhex(writes)))
                    latencies.append(took)
            result.conflicts += report["conflicts"]
            result.rss_start.append(report["rss_start"])
            result.rss_end.append(report["rss_end"])
        result.seconds = time.monotonic() - started
        result.file_end = dir_size(path)
        result.commits = len(history)
        if latencies:
            q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
            result.p50_ms, result.p99_ms = q[49] * 1000, q[98] * 1000
        with kvstore.open(path) as db, db.transaction(read_only=True) as tx:
            final = dict(tx.get_range())
        try:
            check_history(history, final)
        except AssertionError as e:
            result.failures.append(f"not serializable: {e}")
    return result


_MOD = "tests.reliability.soak"


def _encode(observed: dict[str, object]) -> object:
    if "get" in observed:
        return {"get": {k.hex(): v for k, v in observed["get"].items()}}  # type: ignore[attr-defined]
    if "range" in observed:
        return {"range": [[k.hex(), v.hex()] for k, v in observed["range"]]}  # type: ignore[attr-defined]
    return {}


def _decode(observed: dict[str, object]) -> dict[str, object]:
    if "get" in observed:
        return {"get": {bytes.fromhex(k): v for k, v in observed["get"].items()}}  # type: ignore[attr-defined]
    if "range" in observed:
        return {"range": [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in observed["range"]]}  # type: ignore[attr-defined]
    return {}


def _child(argv: list[str]) -> int:
    import random

    import kvstore
    from kvstore import RetryTransaction
    from tests.serializability import random_transaction

    path, seconds, threads, seed = argv[0], float(argv[1]), int(argv[2]), int(argv[3])
    # History and latencies go to a file, not a list, so the RSS measured is kvstore's.
    log = open(f"{path}.{seed}.history", "w")  # noqa: SIM115 - closed below
    conflicts = 0
    lock = threading.Lock()
    warm = threading.Event()
    rss_start = 0
    with kvstore.open(path) as db:
        deadline = time.monotonic() + seconds
        warm_at = time.monotonic() + min(2.0, seconds / 5)

        def work(n: int) -> None:
            nonlocal conflicts, rss_start
            rng = random.Random(seed + n)
            while time.monotonic() < deadline:
                tx = db.transaction()
                observed = random_transaction(tx, rng)
                writes = tx.writes.serialize()
                t0 = time.perf_counter()
                try:
                    tx.commit()
                except RetryTransaction:
                    with lock:
                        conflicts += 1
                    continue
                took = time.perf_counter() - t0
                with lock:
                    if tx.committed_version is not None:
                        entry = (tx.committed_version, _encode(observed), writes.hex(), took)
                        log.write(json.dumps(entry) + "\n")
                    if not warm.is_set() and time.monotonic() >= warm_at:
                        rss_start = rss_bytes()  # after warm-up: caches and pools are full
                        warm.set()

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    log.close()
    report = {
        "conflicts": conflicts,
        "rss_start": rss_start or rss_bytes(),
        "rss_end": rss_bytes(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
