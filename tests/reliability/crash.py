"""Crash: SIGKILL a durable writer at random moments, then check nothing acknowledged is lost.

A writer is a real child process (``python -m tests.reliability.crash write ...``) that
commits with the default ``durability="sync"`` and prints ``ack <token>`` only *after* its
commit returned.  The parent kills it with SIGKILL after a random delay -- while it opens the
store, in the middle of a small commit, a 50k-put commit, or while the LMDB map grows from a
small initial ``map_size`` -- and then a separate checker process reopens the store and checks
that every acknowledged commit is there, that no transaction is there in part, and the
writer's invariants.  A checker (or writer) that dies by a signal counts as a signal death.

Writers are pluggable (:data:`WRITERS`): the core key-value writer, and writers for the
regions and graph layers, so a layer gets the same treatment by adding an entry.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import signal
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.reliability.common import dir_size, run, spawn

ACCOUNTS = [b"acct/%02d" % i for i in range(8)]
START = 1000
#: Puts in a big commit (the issue asks for 50k).
BIG_PUTS = 50_000
#: The writers' initial LMDB map: small, so the map grows (and is killed while growing).
SMALL_MAP = 1 << 20

Ack = Callable[[str], None]


@dataclass(frozen=True)
class Writer:
    """One kind of writer: ``write`` runs until killed, ``check`` lists what is wrong."""

    write: Callable[[str, int, random.Random, int, Ack], None]
    check: Callable[[str, list[str]], tuple[list[str], list[str]]]
    """``check(path, acked) -> (lost, corrupt)``: acknowledged tokens missing, other faults."""


# -- core key-value writer -------------------------------------------------------------------
def _core_write(path: str, rnd: int, rng: random.Random, big_every: int, ack: Ack) -> None:
    """Transfers between accounts plus a set of keys per commit, all-or-nothing.

    Commit ``id`` writes ``tx/<id>/<j>`` for ``j < n`` and the marker ``done/<id> = n``; about
    one commit in ``big_every`` instead replaces the whole ``big/`` set with 50k new keys
    (a remove_range plus 50k puts) and marks it ``done/<id> = big:<n>``.
    """
    import kvstore
    from kvstore.counters import decode_counter, encode_counter

    with kvstore.open(path, map_size=SMALL_MAP) as db:
        with db.transaction() as tx:
            if tx.get(ACCOUNTS[0]) is None:
                for a in ACCOUNTS:
                    tx.put(a, encode_counter(START))
        i = 0
        while True:
            token = f"{rnd:05d}-{i:07d}"
            tx = db.transaction()
            a, b = rng.sample(ACCOUNTS, 2)
            amount = rng.randint(1, 50)
            tx.put(a, encode_counter(decode_counter(tx.get(a) or b"") - amount))
            tx.put(b, encode_counter(decode_counter(tx.get(b) or b"") + amount))
            if big_every and rng.randrange(big_every) == 0:
                tx.remove_range(b"big/", b"big0")
                for j in range(BIG_PUTS):
                    tx.put(b"big/%s/%06d" % (token.encode(), j), b"v")
                tx.put(b"done/" + token.encode(), b"big:%d" % BIG_PUTS)
            else:
                n = rng.randint(1, 20)
                for j in range(n):
                    tx.put(b"tx/%s/%03d" % (token.encode(), j), token.encode())
                tx.put(b"done/" + token.encode(), b"%d" % n)
            tx.commit()
            ack(token)
            i += 1


def _core_check(path: str, acked: list[str]) -> tuple[list[str], list[str]]:
    import kvstore
    from kvstore.counters import decode_counter

    lost: list[str] = []
    corrupt: list[str] = []
    with kvstore.open(path, create=False) as db, db.transaction(read_only=True) as tx:
        done = {k[5:].decode(): v for k, v in tx.get_range(b"done/", b"done0")}
        lost = [t for t in acked if t not in done]
        counts: dict[str, int] = {}
        for k, _ in tx.get_range(b"tx/", b"tx0"):
            token = k.split(b"/")[1].decode()
            counts[token] = counts.get(token, 0) + 1
        for token, n in counts.items():
            if done.get(token) != b"%d" % n:
                corrupt.append(f"commit {token}: {n} keys, marker {done.get(token)!r}")
        for token, v in done.items():
            if not v.startswith(b"big:") and counts.get(token, 0) != int(v):
                corrupt.append(f"commit {token}: marker says {v!r}, {counts.get(token, 0)} keys")
        big: dict[str, int] = {}
        for k, _ in tx.get_range(b"big/", b"big0"):
            token = k.split(b"/")[1].decode()
            big[token] = big.get(token, 0) + 1
        if len(big) > 1:
            corrupt.append(f"big/ holds keys of {len(big)} commits: {sorted(big)}")
        for token, n in big.items():
            if done.get(token) != b"big:%d" % n:
                corrupt.append(f"big commit {token}: {n} keys, marker {done.get(token)!r}")
        balances = [tx.get(a) for a in ACCOUNTS]
        if all(v is not None for v in balances):
            total = sum(decode_counter(v) for v in balances if v is not None)
            if total != START * len(ACCOUNTS):
                corrupt.append(f"balances sum to {total}, not {START * len(ACCOUNTS)}")
        elif any(v is not None for v in balances) or done:
            corrupt.append("some accounts are missing")
    return lost, corrupt


# -- regions layer writer ----------------------------------------------------------------------
_SLOTS = 64
_REC = struct.Struct(">QQ")  # (commit number, commit number): a torn record does not match


def _regions_write(path: str, rnd: int, rng: random.Random, big_every: int, ack: Ack) -> None:
    """Each commit writes its number into the same slot of regions ``a`` and ``b`` together.

    About one commit in ``big_every`` also grows both regions by 256 KiB of one pattern.
    """
    import kvstore
    from kvstore.layers.regions import RegionClient, RegionExists

    with kvstore.open(path, map_size=SMALL_MAP) as db:
        client = RegionClient(db)
        for name in ("a", "b"):
            try:
                client.allocate_memory("crash", name, _SLOTS * _REC.size)
            except RegionExists:
                pass
        i = 0
        while True:
            number = rnd * 10_000_000 + i + 1
            slot = rng.randrange(_SLOTS)
            with db.transaction() as tx:
                for name in ("a", "b"):
                    client.write_memory(
                        "crash", name, slot * _REC.size, _REC.pack(number, number), tx=tx
                    )
                if big_every and rng.randrange(big_every) == 0:
                    tail = bytes([number % 251]) * (256 << 10)
                    for name in ("a", "b"):
                        client.write_memory("crash", name, _SLOTS * _REC.size, tail, tx=tx)
            ack(f"{slot}:{number}")
            i += 1


def _regions_check(path: str, acked: list[str]) -> tuple[list[str], list[str]]:
    import kvstore
    from kvstore.layers.regions import RegionClient, RegionNotFound

    lost: list[str] = []
    corrupt: list[str] = []
    latest: dict[int, int] = {}
    for token in acked:
        slot, number = (int(x) for x in token.split(":"))
        latest[slot] = max(latest.get(slot, 0), number)
    with kvstore.open(path, create=False) as db:
        client = RegionClient(db)
        try:
            regions = {
                name: client.read_memory(
                    "crash", name, 0, client.describe_memory("crash", name).size
                )
                for name in ("a", "b")
            }
        except RegionNotFound:
            return (["regions"] if acked else []), []
    if regions["a"] != regions["b"]:
        corrupt.append("regions a and b differ: a commit was applied in part")
    for slot in range(_SLOTS):
        first, second = _REC.unpack_from(regions["a"], slot * _REC.size)
        if first != second:
            corrupt.append(f"slot {slot} holds a torn record ({first}, {second})")
        if first < latest.get(slot, 0):
            lost.append(f"{slot}:{latest[slot]}")
    return lost, corrupt


# -- graph layer writer ------------------------------------------------------------------------
_BATCH = 10


def _concept_id(batch: str, j: int) -> bytes:
    return hashlib.sha256(f"{batch}/{j}".encode()).digest()[:16]


def _graph_write(path: str, rnd: int, rng: random.Random, big_every: int, ack: Ack) -> None:
    """Learn ten concepts in a chain, ``flush()``, then acknowledge the batch."""
    from kvstore.layers.graph import ConcurrentMemory

    with ConcurrentMemory(path) as memory:
        i = 0
        while True:
            batch = f"{rnd:05d}-{i:07d}"
            ids = [_concept_id(batch, j) for j in range(_BATCH)]
            for cid in ids:
                memory.learn_concept(cid, cid * 4)
            for src, dst in itertools.pairwise(ids):
                memory.learn_association(src, dst)
            memory.flush()
            ack(batch)
            i += 1


def _graph_check(path: str, acked: list[str]) -> tuple[list[str], list[str]]:
    from kvstore.layers.graph import ConcurrentMemory

    lost: list[str] = []
    corrupt: list[str] = []
    if not acked and not os.path.exists(os.path.join(path, "data.mdb")):
        return lost, corrupt
    with ConcurrentMemory(path, read_only=True) as memory:
        for batch in acked:
            ids = [_concept_id(batch, j) for j in range(_BATCH)]
            for j, cid in enumerate(ids):
                concept = memory.query_concept(cid)
                if concept is None:
                    lost.append(f"{batch}/{j}")
                elif concept.content != cid * 4:
                    corrupt.append(f"{batch}/{j}: content {concept.content!r}")
                elif j + 1 < _BATCH and memory.query_neighbors(cid) != [ids[j + 1]]:
                    corrupt.append(f"{batch}/{j}: neighbours {memory.query_neighbors(cid)}")
    return lost, corrupt


#: The writers the harness knows; add a layer's writer here to put it through the same test.
WRITERS: dict[str, Writer] = {
    "core": Writer(_core_write, _core_check),
    "regions": Writer(_regions_write, _regions_check),
    "graph": Writer(_graph_write, _graph_check),
}


# -- the parent --------------------------------------------------------------------------------
@dataclass
class CrashResult:
    """What a crash run counted; ``lost``, ``corrupt`` and ``signal_deaths`` must stay 0."""

    kills: int = 0
    acked: int = 0
    lost: int = 0
    corrupt: int = 0
    signal_deaths: int = 0
    writer_errors: int = 0
    file_bytes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def run_crash(
    kills: int,
    writers: list[str] | None = None,
    *,
    max_delay: float = 1.5,
    big_every: int = 40,
    check_every: int = 1,
    seed: int = 0,
    directory: str | None = None,
) -> CrashResult:
    """Kill ``kills`` writers (shared out over ``writers``) and check after each ``check_every``.

    Each writer kind keeps one store across its kills, so later rounds run on a store that
    survived earlier kills.
    """
    names = list(WRITERS) if writers is None else writers
    for name in names:
        if name not in WRITERS:
            raise ValueError(f"writers: unknown writer {name!r}; known: {sorted(WRITERS)}")
    rng = random.Random(seed)
    result = CrashResult()
    with tempfile.TemporaryDirectory(prefix="kv-crash-", dir=directory) as tmp:
        acked: dict[str, list[str]] = {name: [] for name in names}
        ack_files = {name: os.path.join(tmp, f"{name}.acked") for name in names}
        for k in range(kills):
            name = names[k % len(names)]
            path = os.path.join(tmp, name)
            proc = spawn(
                "tests.reliability.crash",
                "write",
                name,
                path,
                str(k),
                str(rng.getrandbits(32)),
                str(big_every),
            )
            delay = rng.uniform(0.05, max_delay)
            try:
                proc.wait(timeout=delay)
            except Exception:
                proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate()
            result.kills += 1
            if proc.returncode != -signal.SIGKILL:
                if proc.returncode < 0:
                    result.signal_deaths += 1
                else:
                    result.writer_errors += 1
                result.problems.append(f"{name} writer {k}: {proc.returncode}: {err[-500:]}")
            tokens = [line[4:] for line in out.splitlines() if line.startswith("ack ")]
            acked[name].extend(tokens)
            result.acked += len(tokens)
            if (k + 1) % check_every == 0 or k + len(names) >= kills:
                _check(name, path, acked[name], ack_files[name], result)
        for name in names:
            path = os.path.join(tmp, name)
            if os.path.isdir(path):
                result.file_bytes[name] = dir_size(path)
    return result


def _check(name: str, path: str, acked: list[str], ack_file: str, result: CrashResult) -> None:
    with open(ack_file, "w") as f:
        f.write("\n".join(acked))
    code, out, err = run("tests.reliability.crash", "check", name, path, ack_file)
    if code < 0:
        result.signal_deaths += 1
        result.problems.append(f"{name} checker died by signal {-code}: {err[-500:]}")
        return
    lost = [line[5:] for line in out.splitlines() if line.startswith("lost ")]
    corrupt = [line[8:] for line in out.splitlines() if line.startswith("corrupt ")]
    if code != 0 and not (lost or corrupt):
        corrupt.append(f"checker exit {code}: {err[-1500:]}")
    result.lost += len(lost)
    result.corrupt += len(corrupt)
    result.problems.extend(f"{name} lost {t}" for t in lost[:5])
    result.problems.extend(f"{name} corrupt: {t}" for t in corrupt[:5])


def _child(argv: list[str]) -> int:
    if argv[0] == "write":
        name, path, rnd, seed, big_every = argv[1:6]

        def ack(token: str) -> None:
            sys.stdout.write(f"ack {token}\n")
            sys.stdout.flush()

        WRITERS[name].write(path, int(rnd), random.Random(int(seed)), int(big_every), ack)
        return 0
    if argv[0] == "check":
        name, path, ack_file = argv[1:4]
        with open(ack_file) as f:
            acked = [line for line in f.read().splitlines() if line]
        started = time.monotonic()
        try:
            lost, corrupt = WRITERS[name].check(path, acked)
        except FileNotFoundError:
            if acked:
                raise
            # Killed while creating the store, before any commit: nothing to check.
            lost, corrupt = [], []
        for t in lost:
            print(f"lost {t}")
        for t in corrupt:
            print(f"corrupt {t}")
        print(f"checked {len(acked)} in {time.monotonic() - started:.2f}s")
        return 1 if lost or corrupt else 0
    raise SystemExit(f"usage: crash write|check ..., not {argv[0]!r}")


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
