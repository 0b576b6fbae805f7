"""PostgresStore specifics: schema, arguments, and failures on a real, throwaway cluster.

The conformance suite (tests/test_conformance.py) and the transaction tests already run on
PostgreSQL; this file covers what only a server backend has: an unreachable server, a
restart, a connection dropped before or during ``COMMIT``, and many clients on one table.
The faults are real: ``pg_ctl stop``/``start`` and ``pg_terminate_backend``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

import kvstore
from kvstore import CommitUnknown, KeyRange, StoreClosed, StoreUnavailable
from kvstore.backends.postgres import PostgresStore
from tests import pgserver
from tests.storekit import SimpleMutations


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_dsn, table=pgserver.fresh_table()) as s:
        yield s


def _admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def _wait_for(dsn: str, query: str, params: tuple[Any, ...], timeout: float = 20.0) -> Any:
    """Poll ``query`` until it returns a row; return its first column."""
    deadline = time.monotonic() + timeout
    with _admin(dsn) as admin:
        while time.monotonic() < deadline:
            row = admin.execute(query, params).fetchone()
            if row is not None:
                return row[0]
            time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {query}")


def _blocked_insert(dsn: str, other_than: int = 0) -> int:
    """The backend pid of an INSERT waiting for a row lock (not ``other_than``)."""
    return int(
        _wait_for(
            dsn,
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE 'INSERT%%' AND pid <> %s",
            (other_than,),
        )
    )


def _in_thread(fn: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t, errors


# -- schema and arguments -----------------------------------------------------------------------
def test_keys_are_bytea_in_a_primary_key(store: PostgresStore, pg_dsn: str) -> None:
    with _admin(pg_dsn) as admin:
        cols = admin.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = %s ORDER BY ordinal_position",
            (store.table,),
        ).fetchall()
        pk = admin.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (store.table,),
        ).fetchall()
    assert cols == [("k", "bytea"), ("v", "bytea")]
    assert pk == [("k",)]


def test_range_scans_use_the_primary_key_both_ways(store: PostgresStore, pg_dsn: str) -> None:
    store.apply(SimpleMutations(puts=[(b"%05d" % i, b"v") for i in range(2000)]))
    with _admin(pg_dsn) as admin:
        admin.execute(f'ANALYZE "{store.table}"')
        for order in ("ASC", "DESC"):
            plan = admin.execute(
                f'EXPLAIN SELECT k, v FROM "{store.table}" WHERE k >= %s AND k < %s'
                f" ORDER BY k {order} LIMIT 16",
                (b"00100", b"00200"),
            ).fetchall()
            text = " ".join(r[0] for r in plan)
            assert "Index Scan" in text and "Sort" not in text, text


def test_two_stores_on_one_table_share_data(store: PostgresStore, pg_dsn: str) -> None:
    with PostgresStore(pg_dsn, table=store.table) as other:
        other.put(b"k", b"from the other client")
    assert store.get(b"k") == b"from the other client"


def test_bad_arguments_name_themselves(pg_dsn: str) -> None:
    with pytest.raises(ValueError, match="table"):
        PostgresStore(pg_dsn, table="no; drop table x")
    with pytest.raises(ValueError, match="table"):
        PostgresStore(pg_dsn, table="x" * 80)
    with pytest.raises(TypeError, match="table"):
        PostgresStore(pg_dsn, table=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dsn"):
        PostgresStore(b"postgresql://x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dsn"):
        PostgresStore("host=x nonsense")
    with pytest.raises(ValueError, match="pool_size"):
        PostgresStore(pg_dsn, pool_size=0)
    with pytest.raises(ValueError, match="table"):
        kvstore.open(None, table="t")


def test_closed_store_raises_store_closed(pg_dsn: str) -> None:
    s = PostgresStore(pg_dsn, table=pgserver.fresh_table())
    snap = s.snapshot()
    s.close()
    s.close()
    with pytest.raises(StoreClosed):
        s.get(b"k")
    with pytest.raises(StoreClosed):
        snap.get(b"k")


def test_open_snapshots_hold_connections_and_give_them_back(pg_dsn: str) -> None:
    with PostgresStore(pg_dsn, table=pgserver.fresh_table(), pool_size=2) as s:
        for _ in range(20):  # more than the pool: each close returns its connection
            with s.snapshot() as snap:
                assert snap.get(b"k") is None


def test_core_never_imports_psycopg() -> None:
    code = "import sys, kvstore; kvstore.open().close(); print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- failures -----------------------------------------------------------------------------------
def test_unreachable_server_is_store_unavailable() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{pgserver._free_port()}/postgres"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="PostgreSQL"):
        PostgresStore(dsn, connect_timeout=1.0)
    with pytest.raises(StoreUnavailable):
        kvstore.open(dsn, table="t")
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_server_restart_gives_clear_errors_then_recovers(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, table=pgserver.fresh_table(), connect_timeout=0.5)
    store.put(b"k", b"before")
    db = kvstore.Database(store)
    pgserver.pg_ctl("stop", "-m", "fast")
    try:
        with pytest.raises(StoreUnavailable):
            store.get(b"k")
        with pytest.raises(StoreUnavailable):
            store.put(b"k", b"during")
        tx = db.transaction()  # takes its snapshot at the first read
        with pytest.raises(StoreUnavailable):
            tx.get(b"k")
        tx.rollback()
    finally:
        pgserver.pg_ctl("start")
    # Every pooled connection died with the old server: reads and writes replace them.
    assert store.get(b"k") == b"before"
    store.put(b"k", b"after")
    with db.transaction() as tx:
        tx.put(b"j", b"1")
    with db.transaction() as tx:  # reads first: its snapshot and its commit find live ones
        assert tx.get(b"j") == b"1"
        tx.put(b"m", b"1")
    assert store.get(b"k") == b"after" and store.get(b"j") == b"1" and store.get(b"m") == b"1"
    store.close()


def test_connection_dropped_mid_apply_applies_nothing(store: PostgresStore, pg_dsn: str) -> None:
    store.apply(SimpleMutations(puts=[(b"a", b"1"), (b"z", b"1")]))
    with _admin(pg_dsn) as blocker:
        blocker.execute("BEGIN")
        blocker.execute(f'SELECT * FROM "{store.table}" WHERE k = %s FOR UPDATE', (b"z",))
        # The remove of "a" runs, then the put of "z" waits for the row lock...
        t, errors = _in_thread(
            lambda: store.apply(
                SimpleMutations(removes=[KeyRange.single(b"a")], puts=[(b"z", b"2")])
            )
        )
        pid = _blocked_insert(pg_dsn)
        # ... and its connection is killed, twice (the retry on a fresh connection too).
        with _admin(pg_dsn) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            pid2 = _blocked_insert(pg_dsn, other_than=pid)
            admin.execute("SELECT pg_terminate_backend(%s)", (pid2,))
        t.join(30)
        blocker.execute("ROLLBACK")
    assert len(errors) == 1 and isinstance(errors[0], StoreUnavailable), errors
    assert list(store.get_range()) == [(b"a", b"1"), (b"z", b"1")]  # neither half happened


def test_one_dropped_connection_before_commit_is_retried_transparently(
    store: PostgresStore, pg_dsn: str
) -> None:
    store.put(b"z", b"1")
    with _admin(pg_dsn) as blocker:
        blocker.execute("BEGIN")
        blocker.execute(f'SELECT * FROM "{store.table}" WHERE k = %s FOR UPDATE', (b"z",))
        t, errors = _in_thread(lambda: store.put(b"z", b"2"))
        pid = _blocked_insert(pg_dsn)
        with _admin(pg_dsn) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
        blocker.execute("ROLLBACK")
        t.join(30)
    assert errors == []
    assert store.get(b"z") == b"2"


@pytest.fixture
def commit_hangs(pg_dsn: str) -> Iterator[None]:
    """Make every synchronous COMMIT wait forever for a standby that does not exist."""
    with _admin(pg_dsn) as admin:
        admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        admin.execute("SELECT pg_reload_conf()")
    time.sleep(0.2)
    try:
        yield
    finally:
        with _admin(pg_dsn) as admin:
            admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            admin.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)


def _kill_the_committer(dsn: str) -> None:
    pid = _wait_for(dsn, "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'", ())
    with _admin(dsn) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_connection_dropped_during_commit_is_commit_unknown(
    store: PostgresStore, pg_dsn: str, commit_hangs: None
) -> None:
    t, errors = _in_thread(lambda: store.put(b"k", b"v"))
    _kill_the_committer(pg_dsn)
    t.join(30)
    assert len(errors) == 1 and isinstance(errors[0], CommitUnknown), errors
    assert "may or may not" in str(errors[0])


def test_commit_unknown_is_never_retried_by_run(
    store: PostgresStore, pg_dsn: str, commit_hangs: None
) -> None:
    db = kvstore.Database(store)
    calls: list[int] = []

    def body(tx: kvstore.Transaction) -> None:
        calls.append(1)
        tx.adjust_counter(b"n", 1)

    # synchronous_commit = off does not wait for the standby: this one commits at once.
    store.apply(SimpleMutations(puts=[(b"n", store.encode_counter(0))]), sync=False)
    t, errors = _in_thread(lambda: db.run(body))
    _kill_the_committer(pg_dsn)
    t.join(30)
    assert len(errors) == 1 and isinstance(errors[0], CommitUnknown), errors
    assert calls == [1]


def test_session_durability_and_per_write_override(pg_dsn: str, commit_hangs: None) -> None:
    """``sync=False`` is set once per session; a write asking ``sync=True`` still waits.

    With a standby that never answers, a synchronous COMMIT hangs: the store's own commits
    must not (the session says ``off``), one asking for ``sync=True`` must (``SET LOCAL``
    back to the server's default), and killing it mid-wait is CommitUnknown.
    """
    with PostgresStore(pg_dsn, table=pgserver.fresh_table(), sync=False) as store:
        store.put(b"a", b"1")  # returns at once: no standby wait
        db = kvstore.Database(store, durability="none")
        with db.transaction() as tx:
            tx.put(b"b", b"1")
        t, errors = _in_thread(lambda: store.apply(SimpleMutations(puts=[(b"c", b"1")]), sync=True))
        _kill_the_committer(pg_dsn)
        t.join(30)
        assert len(errors) == 1 and isinstance(errors[0], CommitUnknown), errors
        assert store.get(b"a") == b"1" and store.get(b"b") == b"1"


# -- the commit's critical section ------------------------------------------------------------
@pytest.mark.parametrize("prefetch", [2, 256])
def test_validation_sees_other_clients_commits_beyond_the_prefetched_entries(
    pg_dsn: str, prefetch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit validates against every other client's commit since its snapshot.

    The log entries after the version a client last saw come with the commit lock, at most
    ``_PREFETCH`` of them; the rest, and those before it (an older snapshot of another
    thread), are read under the lock by a query.  Both ways find the conflict.
    """
    from kvstore.backends import postgres

    monkeypatch.setattr(postgres, "_PREFETCH", prefetch)
    table = pgserver.fresh_table()
    with PostgresStore(pg_dsn, table=table) as s1, PostgresStore(pg_dsn, table=table) as s2:
        db1, db2 = kvstore.Database(s1), kvstore.Database(s2)
        with db1.transaction() as tx:
            tx.put(b"x", b"0")
        old = db1.transaction()  # an older snapshot: it reads x now, commits last
        assert old.get(b"x") == b"0"
        with db1.transaction() as tx:  # this process's last commit moves past old's snapshot
            tx.put(b"w", b"1")
        for i in range(5):  # another client: five commits, the last one writes x
            with db2.transaction() as tx:
                tx.put(b"y%d" % i, b"1")
        with db2.transaction() as tx:
            tx.put(b"x", b"2")
        late = db1.transaction()
        assert late.get(b"w") == b"1"
        reader = db1.transaction()  # snapshot before db2's next commit of x
        assert reader.get(b"x") == b"2"
        for i in range(5):
            with db2.transaction() as tx:
                tx.put(b"z%d" % i, b"1")
        with db2.transaction() as tx:
            tx.put(b"x", b"3")
        reader.put(b"r", b"1")
        with pytest.raises(kvstore.TransactionConflict):
            reader.commit()
        old.put(b"o", b"1")
        with pytest.raises(kvstore.TransactionConflict):
            old.commit()
        late.put(b"l", b"1")  # read only w, which nobody else wrote: commits
        late.commit()
        assert s1.get(b"l") == b"1" and s1.get(b"r") is None and s1.get(b"o") is None
        assert s1.get(b"x") == b"3"


# -- the one-round-trip commit (the server checks the reads) ----------------------------------
@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the commits that took the client-validated path instead of the one-round-trip one."""
    from kvstore.backends import postgres

    calls: list[int] = []
    original = postgres.PostgresLog._validated_commit

    def counting(self: postgres.PostgresLog, *args: Any) -> int:
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(postgres.PostgresLog, "_validated_commit", counting)
    return calls


def test_the_server_checks_reads_and_refuses_only_conflicts(
    pg_dsn: str, validated: list[int]
) -> None:
    """A commit after another client's is checked by the server: passes unless it conflicts.

    A refused commit is validated again by the client, which names the conflict.
    """
    table = pgserver.fresh_table()
    with PostgresStore(pg_dsn, table=table) as s1, PostgresStore(pg_dsn, table=table) as s2:
        db1, db2 = kvstore.Database(s1, durability="none"), kvstore.Database(s2, durability="none")
        with db1.transaction() as tx:
            tx.put(b"x", b"0")
        tx = db1.transaction()
        assert tx.get(b"x") == b"0"
        assert list(tx.get_range(b"r", b"s")) == []
        with db2.transaction() as other:  # after tx's snapshot, outside what it read
            other.get(b"y")
            other.put(b"y", b"1")
            other.put(b"s", b"1")  # just past the range read
        tx.put(b"a", b"1")
        tx.commit()
        assert validated == []  # both went through in one round trip
        for write in (b"x", b"r\x00"):  # a read key, then a key inside the read range
            tx = db1.transaction()
            tx.get(b"x")
            list(tx.get_range(b"r", b"s"))
            with db2.transaction() as other:
                other.get(b"y")
                other.put(write, b"2")
            tx.put(b"b", b"1")
            with pytest.raises(kvstore.TransactionConflict) as info:
                tx.commit()
            assert info.value.conflicts  # the client names it
        assert len(validated) == 2
        assert s1.get(b"b") is None and s1.get(b"a") == b"1"


def test_the_server_refuses_a_snapshot_another_client_trimmed_away(
    pg_dsn: str, validated: list[int]
) -> None:
    """History trimmed by another client makes a snapshot too old; the keys rows go too."""
    from kvstore.commitlog import _TRIM_EVERY

    table = pgserver.fresh_table()
    with PostgresStore(pg_dsn, table=table) as s1, PostgresStore(pg_dsn, table=table) as s2:
        db1 = kvstore.Database(s1, durability="none")
        db2 = kvstore.Database(s2, durability="none", history_commits=1, history_seconds=0)
        tx = db1.transaction()
        tx.get(b"x")
        for i in range(_TRIM_EVERY + 10):  # the log is trimmed every _TRIM_EVERY commits
            with db2.transaction() as other:
                other.put(b"other", b"%d" % i)
        tx.put(b"k", b"v")
        with pytest.raises(kvstore.TransactionTooOld):
            tx.commit()
        assert validated == [1]
        with _admin(pg_dsn) as admin:
            oldest = admin.execute(f'SELECT min(v) FROM "{table}_keys"').fetchone()
        assert oldest is not None and oldest[0] > _TRIM_EVERY // 2  # trimmed with the log


def test_a_closed_snapshot_ends_its_server_transaction_soon(
    store: PostgresStore, pg_dsn: str
) -> None:
    """Its transaction ends with the connection's next query, or within moments if none comes.

    No snapshot lingers to hold back VACUUM, even when the store is not used again.
    """
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        " AND query LIKE %s"
    )
    with _admin(pg_dsn) as admin:
        snap = store.snapshot()
        assert snap.get(b"k") is None
        row = admin.execute(query, (f'%"{store.table}"%',)).fetchone()
        assert row is not None and row[0] == 1
        snap.close()
        deadline = time.monotonic() + 5
        while True:  # the store is not used again: the sweeper must end it
            row = admin.execute(query, (f'%"{store.table}"%',)).fetchone()
            if row is not None and row[0] == 0:
                break
            assert time.monotonic() < deadline, "the snapshot's transaction is still open"
            time.sleep(0.01)
    assert store.get(b"k") is None  # the connection is taken back cleanly


def test_what_follows_a_closed_snapshot_on_its_connection_sees_new_commits(pg_dsn: str) -> None:
    """A snapshot, a read or a commit right after a close ends the old snapshot first."""
    table = pgserver.fresh_table()
    with (
        PostgresStore(pg_dsn, table=table, pool_size=1) as store,
        PostgresStore(pg_dsn, table=table) as other,
    ):
        db = kvstore.Database(store, durability="none")
        for i in range(3):
            with store.snapshot() as snap:
                assert snap.get(b"k") == (b"%d+" % (i - 1) if i else None)
            other.put(b"k", b"%d" % i)  # after the close, before the next use
            with store.snapshot() as snap:  # "COMMIT; BEGIN ...": a fresh snapshot
                assert snap.get(b"k") == b"%d" % i
            other.put(b"k", b"%d+" % i)
            assert store.get(b"k") == b"%d+" % i  # ended by a ROLLBACK of its own
        with store.snapshot() as snap:
            snap.get(b"k")
        other.put(b"k", b"new")
        with db.transaction() as tx:  # its snapshot: "COMMIT; BEGIN ..." on that connection
            assert tx.get(b"k") == b"new"
            tx.put(b"k", b"newer")  # its commit: "COMMIT; BEGIN; EXECUTE ..."
        assert other.get(b"k") == b"newer"


def test_refused_commits_leave_connections_usable(pg_dsn: str) -> None:
    """Threads incrementing one key: many commits are refused, none is lost, none fails.

    A refused commit aborts a pipeline half-way; the statements skipped must not stay
    counted as prepared (they once made every later commit on that connection fail).
    """
    with kvstore.open(pg_dsn, table=pgserver.fresh_table(), durability="none") as db:

        def increment(tx: kvstore.Transaction) -> None:
            tx.put(b"n", b"%d" % (int(tx.get(b"n") or b"0") + 1))

        def work() -> None:
            for _ in range(25):
                db.run(increment)

        threads = [_in_thread(work) for _ in range(4)]
        for t, _ in threads:
            t.join(60)
        assert [e for _, errors in threads for e in errors] == []
        assert db.store.get(b"n") == b"100"
        assert db.stats().conflicts > 0


def test_dropped_prepared_statements_are_prepared_again(pg_dsn: str) -> None:
    """A session whose prepared statements were dropped (DEALLOCATE ALL) still commits."""
    with PostgresStore(pg_dsn, table=pgserver.fresh_table(), pool_size=1) as store:
        db = kvstore.Database(store, durability="none")
        for i in range(3):
            with db.transaction() as tx:
                tx.get(b"k")
                tx.put(b"k", b"%d" % i)
        conn = store._conn()
        conn.execute("DEALLOCATE ALL")
        store._put_back(conn)
        with db.transaction() as tx:
            assert tx.get(b"k") == b"2"
            tx.put(b"k", b"3")
        assert store.get(b"k") == b"3"


def test_connection_dropped_during_a_one_round_trip_commit_is_commit_unknown(
    pg_dsn: str, commit_hangs: None
) -> None:
    """The commit of a transaction that read goes in one round trip: a break is unknown."""
    with PostgresStore(pg_dsn, table=pgserver.fresh_table(), sync=False) as setup:
        setup.put(b"n", b"0")  # commits at once: no standby wait
        table = setup.table
    with PostgresStore(pg_dsn, table=table) as store:
        db = kvstore.Database(store, durability="none")  # commits with the store's sync=True
        calls: list[int] = []

        def body(tx: kvstore.Transaction) -> None:
            calls.append(1)
            tx.put(b"n", b"%d" % (int(tx.get(b"n") or b"0") + 1))

        t, errors = _in_thread(lambda: db.run(body))
        _kill_the_committer(pg_dsn)
        t.join(30)
        assert len(errors) == 1 and isinstance(errors[0], CommitUnknown), errors
        assert calls == [1]


def test_every_kind_of_write_commits_in_one_round_trip(
    store: PostgresStore, validated: list[int]
) -> None:
    """Removes (keys, ranges, open ranges), puts and counter adjustments, as EXECUTEs."""
    db = kvstore.Database(store, durability="none")
    puts = [(b"a", b"1"), (b"b", b"1"), (b"c", b"1"), (b"d", b"1"), (b"z1", b"1")]
    store.apply(SimpleMutations(puts=[*puts, (b"n", store.encode_counter(5))]))
    with db.transaction() as tx:
        assert tx.get(b"a") == b"1"
        tx.remove(b"a")
        tx.remove_range(b"b", b"d")
        tx.remove_range(b"z")
        tx.adjust_counter(b"n", -7)
        tx.put(b"e", b"\x00'\\x")  # bytes that need quoting in a literal
    assert validated == []
    assert list(store.get_range()) == [
        (b"d", b"1"),
        (b"e", b"\x00'\\x"),
        (b"n", store.encode_counter(-2)),
    ]


def test_one_round_trip_commits_do_not_depend_on_standard_conforming_strings(
    pg_dsn: str, validated: list[int]
) -> None:
    """Keys and values travel as SQL literals there: they must mean the same bytes either way."""
    sep = "&" if "?" in pg_dsn else "?"
    dsn = pg_dsn + sep + "options=-c%20standard_conforming_strings%3Doff"
    with PostgresStore(dsn, table=pgserver.fresh_table()) as store:
        db = kvstore.Database(store, durability="none")
        odd = b"\\x00'\\\\\x00\xff"
        with db.transaction() as tx:
            assert tx.get(odd) is None
            tx.put(odd, odd)
        assert validated == []
        assert list(store.get_range()) == [(odd, odd)]


def test_big_commits_are_validated_by_the_client(
    store: PostgresStore, validated: list[int]
) -> None:
    """Too many keys, or too many bytes, for literals in one query: the pipelined path."""
    db = kvstore.Database(store, durability="none")
    for puts in ({b"k%04d" % i: b"" for i in range(600)}, {b"big": b"x" * 300_000}):
        with db.transaction() as tx:
            tx.get(b"k")
            for key, value in puts.items():
                tx.put(key, value)
    assert len(validated) == 2
    assert store.get(b"k0599") == b"" and store.get(b"big") == b"x" * 300_000
