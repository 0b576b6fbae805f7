"""The serializability checker shared by the transaction tests and the reliability harness.

Workers run random transactions over a few bank accounts -- transfers, range scans that
write an audit record, blind counter bumps -- and record, for each commit, its version, what
it observed and its serialized writes.  :func:`check_history` replays the commits in version
order on a :class:`~kvstore.MemoryStore` and asserts that every transaction observed exactly
the state its predecessors left (so the history is serializable in commit order), that the
replay ends in the database's final state, and that the total balance is unchanged.
"""

from __future__ import annotations

import random

import kvstore
from kvstore import Database, MemoryStore, RetryTransaction, Transaction, Writes
from kvstore.counters import decode_counter, encode_counter

#: One committed transaction: (commit version, what it observed, its serialized writes).
Commit = tuple[int, dict[str, object], bytes]

# -- serializability checker --------------------------------------------------------------------
ACCOUNTS = [b"acct/%02d" % i for i in range(8)]
START = 1000


def random_transaction(tx: Transaction, rng: random.Random) -> dict[str, object]:
    """One random transaction; returns what it observed."""
    observed: dict[str, object] = {}
    kind = rng.random()
    if kind < 0.6:
        a, b = rng.sample(ACCOUNTS, 2)
        va = decode_counter(tx.get(a) or b"")
        vb = decode_counter(tx.get(b) or b"")
        observed["get"] = {a: va, b: vb}
        amount = rng.randint(0, 50)
        tx.put(a, encode_counter(va - amount))
        tx.put(b, encode_counter(vb + amount))
    elif kind < 0.8:
        pairs = list(tx.get_range(b"acct/", b"acct0", reverse=rng.random() < 0.5))
        observed["range"] = sorted(pairs)
        tx.put(
            b"audit/%d" % rng.randint(0, 3),
            encode_counter(sum(decode_counter(v) for _, v in pairs)),
        )
    else:
        tx.adjust_counter(b"ops", 1)
    return observed


def run_workers(path: str | None, db: Database | None, seed: int, n: int) -> list[Commit]:
    """Run ``n`` random transactions; return (commit version, observed, serialized writes)."""
    own = db is None
    if db is None:
        db = kvstore.open(path, durability="none")
    rng = random.Random(seed)
    history: list[Commit] = []
    try:
        for _ in range(n):
            while True:
                tx = db.transaction()
                observed = random_transaction(tx, rng)
                writes = tx.writes.serialize()
                try:
                    tx.commit()
                except RetryTransaction:
                    continue
                if tx.committed_version is not None:
                    history.append((tx.committed_version, observed, writes))
                break
    finally:
        if own:
            db.close()
    return history


def check_history(history: list[Commit], final: dict[bytes, bytes]) -> None:
    model = MemoryStore()
    for a in ACCOUNTS:
        model.put(a, encode_counter(START))
    model.put(b"ops", encode_counter(0))
    versions = [v for v, _, _ in history]
    assert len(set(versions)) == len(versions), "two commits got the same version"
    for _version, observed, writes in sorted(history, key=lambda h: h[0]):
        if "get" in observed:
            for key, value in observed["get"].items():  # type: ignore[attr-defined]
                assert decode_counter(model.get(key) or b"") == value
        if "range" in observed:
            assert sorted(model.get_range(b"acct/", b"acct0")) == observed["range"]
        model.apply(Writes.deserialize(writes))
    assert dict(model.get_range()) == final
    assert sum(decode_counter(final[a]) for a in ACCOUNTS) == START * len(ACCOUNTS)


def seed_accounts(db: Database) -> None:
    """Write the starting balances and the ``ops`` counter the checker expects."""
    with db.transaction() as tx:
        for a in ACCOUNTS:
            tx.put(a, encode_counter(START))
        tx.put(b"ops", encode_counter(0))
