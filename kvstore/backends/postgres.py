"""``PostgresStore``: the scale-out backend, a store in one PostgreSQL table (psycopg 3).

Schema (see docs/postgres.md): the user data lives in ``<table>`` as ``(k bytea PRIMARY KEY,
v bytea NOT NULL)`` — ``bytea`` compares as ``memcmp``, so the primary key's B-tree is in
the store's key order and serves range scans both ways.  Range iterators read in batches
with keyset pagination (``WHERE k > last ORDER BY k LIMIT n``, never ``OFFSET``), so a scan
holds nothing open between batches and is weakly consistent.  The commit log of
:class:`~kvstore.Database` lives beside it in ``<table>_meta`` (same shape), so every
client on every machine validates against the same history.

``apply()`` is one PostgreSQL transaction: removes (single keys with one ``= ANY``, ranges
one ``DELETE`` each), puts (one ``INSERT ... SELECT FROM unnest ... ON CONFLICT``), and
counter adjustments (one ``UPDATE ... FROM unnest``, computed server-side, no read round
trip), sent in one pipeline.  ``snapshot()`` is a ``REPEATABLE READ READ ONLY`` transaction
held on its own pooled connection until closed; the next query on that connection ends it
(``COMMIT;`` in front: no message of its own), or a sweeper thread within 50 ms.

A :class:`~kvstore.Database` commit of a transaction that read is one round trip: the lock,
the log entry with its keys rows (``<table>_keys``: what each commit wrote, one row per key
or range), a guard statement that makes the server check the transaction's reads against the
keys rows of the commits since its snapshot, the writes and ``COMMIT`` — so the commit lock
never waits for a client.  A commit the guard refuses is validated again by the client,
holding the lock, which names the conflict (docs/postgres.md, "Isolation").

Failures: a server that cannot be reached, or a connection that breaks before ``COMMIT`` is
sent, raises :class:`~kvstore.StoreUnavailable` (PostgreSQL aborts the transaction: nothing
was applied).  A connection that breaks while ``COMMIT`` is in flight raises
:class:`~kvstore.CommitUnknown`: the commit may or may not have happened, and it is never
retried.
"""

from __future__ import annotations

import binascii
import itertools
import re
import select
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

try:
    import psycopg
    import psycopg_pool
    from psycopg import pq, sql
    from psycopg.conninfo import conninfo_to_dict
except ImportError as _e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "kvstore.backends.postgres needs psycopg 3 and psycopg_pool: "
        "pip install 'kvstore-delta[postgres]'"
    ) from _e

from kvstore.commitlog import ENTRY_PREFIX, CommitLog, LogBatch, entry_key, version_of
from kvstore.commitlog import VERSION_KEY as _VERSION_KEY
from kvstore.counters import check_amount, wrap64
from kvstore.errors import CommitUnknown, StoreClosed, StoreUnavailable
from kvstore.keys import check_bounds, check_key, check_value, prefix_end
from kvstore.ranges import KeyRange
from kvstore.store import (
    AtomicKVStore,
    FetchingStore,
    KVPair,
    KVStore,
    ReadOnlyStore,
    checked_mutations,
    make_pair,
)
from kvstore.validate import check_bool, check_int, check_number, check_optional_bool

if TYPE_CHECKING:
    from kvstore.commitlog import Shape
    from kvstore.mutations import Mutations, Writes
    from kvstore.reads import Reads

__all__ = ["PostgresLog", "PostgresSnapshot", "PostgresStore"]

T = TypeVar("T")

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: PostgreSQL identifiers are at most 63 bytes; ``_meta`` is appended for the log table.
_MAX_TABLE_NAME = 63 - len("_meta")
_U64 = struct.Struct(">Q")
_end = prefix_end(ENTRY_PREFIX)
assert _end is not None  # the prefix does not end in 0xff
#: Just past every log entry key.
_ENTRY_END: bytes = _end
#: The most log entries fetched in the same round trip as the commit lock.
_PREFETCH = 256
#: A log entry's value starts with the time it was written (as kvstore.commitlog writes it).
_TIME = struct.Struct(">d")
#: A connection whose snapshot was released this recently is trusted to be alive: a commit
#: on it sends everything, ``COMMIT`` included, in one round trip (see ``PostgresStore._take``).
_PROVEN_SECONDS = 1.0
#: How long a closed snapshot's transaction may wait for its connection's next query to end
#: it (``COMMIT; ...`` in front of it) before the store ends it alone (``_sweep``).
_END_AFTER = 0.05
#: The text of the guard's error: it refused a one-round-trip commit (``_Statements.guard``).
_REFUSED = "kvstore: commit refused"

# Counter arithmetic on the server: decode 8 big-endian bytes as int8, add in numeric (no
# overflow), wrap into the signed 64-bit range like a Java long, encode with int8send.
_ADD_WRAPPED = (
    "int8send((mod(mod(('x' || encode(t.v, 'hex'))::bit(64)::int8::numeric + a.amount"
    " + 9223372036854775808, 18446744073709551616) + 18446744073709551616,"
    " 18446744073709551616) - 9223372036854775808)::int8)"
)


def _u64_at(column: str, start: int) -> str:
    """SQL: the big-endian unsigned 64-bit integer at byte ``start`` (1-based) of ``column``."""
    return f"('x' || encode(substring({column} from {start} for 8), 'hex'))::bit(64)::int8"


# The version record (commit/version) as kvstore.commitlog writes it: version, bytes ever
# appended, bytes ever dropped (8 bytes each); a record of 8 bytes holds the version alone.
_VERSION_SQL = _u64_at("v", 1)
_APPENDED_SQL = f"CASE WHEN length(v) = 24 THEN {_u64_at('v', 9)} ELSE 0 END"
_DROPPED_SQL = f"CASE WHEN length(v) = 24 THEN {_u64_at('v', 17)} ELSE 0 END"


#: The statements of the one-round-trip commit, prepared once per connection with SQL
#: ``PREPARE`` (the commit runs them by ``EXECUTE`` in one simple-protocol query).
_FAST_STATEMENTS: dict[str, bytes] = {
    "commit_log": b"kvstore_log",
    "guard": b"kvstore_guard",
    "put_many": b"kvstore_put",
    "remove_keys": b"kvstore_remove",
    "remove_from": b"kvstore_remove_from",
    "remove_between": b"kvstore_remove_between",
    "adjust_many": b"kvstore_adjust",
}
#: The most keys and ranges (written, or read) a commit may have for the one-round-trip path,
#: and the most bytes of values: its parameters travel as SQL literals.
_FAST_ITEMS = 512
_FAST_BYTES = 256 * 1024


def _numbered(query: bytes) -> bytes:
    """``query`` with psycopg's ``%s``/``%b`` placeholders as ``$1``, ``$2``... (for PREPARE)."""
    numbers = itertools.count(1)
    return re.sub(rb"%[sb]", lambda _: b"$%d" % next(numbers), query)


def _lit(value: bytes | None) -> bytes:
    """A bytea SQL literal (an ``E''`` string: whatever ``standard_conforming_strings`` says)."""
    return b"NULL" if value is None else b"E'\\\\x" + binascii.hexlify(value) + b"'::bytea"


def _lit_array(values: list[bytes] | list[bytes | None]) -> bytes:
    """A bytea[] SQL literal."""
    if not values:
        return b"'{}'::bytea[]"
    return b"ARRAY[" + b",".join(map(_lit, values)) + b"]"


def _literal(value: bytes | list[bytes] | list[int]) -> bytes:
    """The SQL literal of a data write's parameter (see :func:`_data_writes`)."""
    if isinstance(value, bytes):
        return _lit(value)
    if value and isinstance(value[0], int):
        return b"ARRAY[" + b",".join(b"%d" % a for a in value) + b"]::int8[]"
    return _lit_array(value)  # type: ignore[arg-type]


def _data_writes(mutations: Mutations) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements applying ``mutations``: (``_Statements`` attribute, parameters) each.

    Single-key removes in one ``DELETE``, other ranges one each, all puts in one upsert (the
    last value of a key: ``ON CONFLICT`` may not touch a row twice), all counter adjustments
    summed per key in one ``UPDATE``.
    """
    removes, puts, adjusts = checked_mutations(mutations)
    writes: list[tuple[str, tuple[Any, ...]]] = []
    singles = [r.min_key for r in removes if r.is_single_key()]
    if singles:
        writes.append(("remove_keys", (singles,)))
    for r in removes:
        if r.is_single_key():
            continue
        if r.max_key is None:
            writes.append(("remove_from", (r.min_key,)))
        else:
            writes.append(("remove_between", (r.min_key, r.max_key)))
    if puts:
        if len(puts) > 1:
            merged = dict(puts)
            writes.append(("put_many", (list(merged), list(merged.values()))))
        else:
            writes.append(("put_many", ([puts[0][0]], [puts[0][1]])))
    if adjusts:
        sums: dict[bytes, int] = {}
        for key, amount in adjusts:
            sums[key] = wrap64(sums.get(key, 0) + amount)
        writes.append(("adjust_many", (list(sums), list(sums.values()))))
    return writes


def _execute(name: bytes, *params: bytes) -> bytes:
    return b"EXECUTE " + name + b"(" + b",".join(params) + b")"


def _end_aborted(pipeline: psycopg.Pipeline) -> None:
    """After a statement failed in ``pipeline``: read the replies to the ones skipped after it.

    Leaving the block would otherwise do it and log "error ignored terminating" besides the
    error raised: a refused commit (the guard) is routine, not worth a warning.
    """
    try:
        pipeline.sync()
    except psycopg.Error:
        pass


def _unavailable(exc: BaseException | str, doing: str) -> StoreUnavailable:
    return StoreUnavailable(f"PostgreSQL is unavailable while {doing}: {exc}".strip())


class _Statements:
    """The SQL of one store, composed once with its table names quoted."""

    def render(self, context: psycopg.Connection[Any]) -> None:
        """Turn every statement into bytes, once: psycopg caches the parsing of a bytes query,
        while a ``Composed`` one is rendered again at each execution (PERFORMANCE S1)."""
        for name, value in list(vars(self).items()):
            if isinstance(value, sql.Composable):
                setattr(self, name, value.as_bytes(context))
            elif isinstance(value, dict):
                setattr(self, name, {k: v.as_bytes(context) for k, v in value.items()})
        self.prepare_fast = b"; ".join(
            b"PREPARE " + name + b" AS " + _numbered(getattr(self, attr))
            for attr, name in _FAST_STATEMENTS.items()
        )

    def __init__(self, table: str) -> None:
        t = sql.Identifier(table)
        m = sql.Identifier(table + "_meta")
        w = sql.Identifier(table + "_keys")
        self.create = [
            # What each logged commit wrote, one row per key or range, for the server to check
            # a commit against (the guard below); trimmed with the log entries.
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (v int8 NOT NULL, lo bytea NOT NULL, hi bytea,"
                " PRIMARY KEY (v, lo))"
            ).format(w),
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL)").format(
                t
            ),
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL)").format(
                m
            ),
            sql.SQL("INSERT INTO {} (k, v) VALUES (%s, %s) ON CONFLICT (k) DO NOTHING").format(m),
        ]
        self.keys_put_many = sql.SQL(
            "INSERT INTO {} (v, lo, hi) SELECT * FROM unnest(%s::int8[], %b::bytea[], %b::bytea[])"
        ).format(w)
        self.keys_trim = sql.SQL("DELETE FROM {} WHERE v <= %s").format(w)
        # The one-round-trip commit (PostgresStore._commit_fast), two statements.  First the
        # commit lock and the log: the UPDATE of the version record waits for the row lock
        # (READ COMMITTED re-reads the newest record once granted), moves the version on and
        # counts the entry's bytes; the same statement writes the entry and its keys rows.
        self.commit_log = sql.SQL(
            "WITH ver AS (UPDATE {m} SET v = int8send(" + _VERSION_SQL + " + 1)"
            " || int8send(" + _APPENDED_SQL + " + %s::int8)"
            " || int8send(" + _DROPPED_SQL + ") WHERE k = %s::bytea RETURNING v),"
            " e AS (INSERT INTO {m} (k, v)"
            " SELECT %s::bytea || substring(ver.v from 1 for 8), %s::bytea FROM ver),"
            " w AS (INSERT INTO {w} (v, lo, hi) SELECT " + _u64_at("ver.v", 1) + ", r.lo, r.hi"
            " FROM ver, unnest(%b::bytea[], %b::bytea[]) AS r(lo, hi))"
            " SELECT v FROM ver"
        ).format(m=m, w=w)
        # Then the guard, a new statement after the lock: it sees every earlier commit.  It
        # fails the transaction (an int cast of _REFUSED) when a commit after the snapshot
        # wrote into a read range, when the log no longer holds the snapshot's successor
        # (too old), or when the log is over its byte budget (the client must trim); the
        # client then takes the validating path, which says exactly why or commits.
        # Parameters: the entry key after the snapshot's version, the version key, the byte
        # budget, the read ranges (two arrays), the snapshot's version, the version key.
        self.guard = sql.SQL(
            "SELECT CAST(CASE WHEN NOT EXISTS (SELECT 1 FROM {m} WHERE k = %s::bytea)"
            " OR (SELECT " + _APPENDED_SQL + " - " + _DROPPED_SQL + " FROM {m}"
            " WHERE k = %s::bytea) > %s::int8"
            " OR EXISTS (SELECT 1 FROM {w} AS w, unnest(%s::bytea[], %s::bytea[])"
            " AS r(lo, hi) WHERE w.v > %s::int8"
            " AND w.v < (SELECT " + _VERSION_SQL + " FROM {m} WHERE k = %s::bytea)"
            " AND (r.hi IS NULL OR w.lo < r.hi) AND (w.hi IS NULL OR r.lo < w.hi))"
            " THEN {refused} ELSE '0' END AS int4)"
        ).format(m=m, w=w, refused=sql.Literal(_REFUSED))
        self.get = sql.SQL("SELECT v FROM {} WHERE k = %s").format(t)
        # A snapshot and the version it shows, in one simple-protocol query (two statements):
        # one execution instead of a pipeline of two (PERFORMANCE S1).
        self.begin_snapshot = sql.SQL(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT v FROM {} WHERE k = {}"
        ).format(m, sql.Literal(_VERSION_KEY))
        # The same after ending a closed snapshot still open on the connection (read only).
        self.end_and_begin_snapshot = sql.SQL("COMMIT; ") + self.begin_snapshot
        fetch: dict[tuple[bool, bool], sql.Composed] = {}
        for reverse in (False, True):
            order = sql.SQL("DESC" if reverse else "ASC")
            fetch[reverse, False] = sql.SQL(
                "SELECT k, v FROM {} WHERE k >= %s ORDER BY k {} LIMIT %s"
            ).format(t, order)
            fetch[reverse, True] = sql.SQL(
                "SELECT k, v FROM {} WHERE k >= %s AND k < %s ORDER BY k {} LIMIT %s"
            ).format(t, order)
        self.fetch = fetch
        self.put = sql.SQL(
            "INSERT INTO {} (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
        ).format(t)
        self.remove = sql.SQL("DELETE FROM {} WHERE k = %s").format(t)
        self.remove_keys = sql.SQL("DELETE FROM {} WHERE k = ANY(%b::bytea[])").format(t)
        self.remove_from = sql.SQL("DELETE FROM {} WHERE k >= %s::bytea").format(t)
        self.remove_between = sql.SQL(
            "DELETE FROM {} WHERE k >= %s::bytea AND k < %s::bytea"
        ).format(t)
        self.put_many = sql.SQL(
            "INSERT INTO {} (k, v) SELECT * FROM unnest(%b::bytea[], %b::bytea[])"
            " ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
        ).format(t)
        self.adjust_many = sql.SQL(
            "UPDATE {} AS t SET v = " + _ADD_WRAPPED + " FROM unnest(%b::bytea[], %s::int8[])"
            " AS a(k, amount) WHERE t.k = a.k AND length(t.v) = 8"
        ).format(t)
        self.size = sql.SQL(
            "SELECT pg_total_relation_size(%s::regclass) + pg_total_relation_size(%s::regclass)"
        )
        self.meta_get = sql.SQL("SELECT v FROM {} WHERE k = %s").format(m)
        self.meta_lock = sql.SQL("SELECT v FROM {} WHERE k = %s FOR UPDATE").format(m)
        self.meta_range_from = sql.SQL("SELECT k, v FROM {} WHERE k >= %s ORDER BY k").format(m)
        self.meta_range = sql.SQL("SELECT k, v FROM {} WHERE k >= %s AND k < %s ORDER BY k").format(
            m
        )
        self.meta_range_limit = sql.SQL(
            "SELECT k, v FROM {} WHERE k >= %s AND k < %s ORDER BY k LIMIT %s"
        ).format(m)
        self.meta_put_many = sql.SQL(
            "INSERT INTO {} (k, v) SELECT * FROM unnest(%b::bytea[], %b::bytea[])"
            " ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
        ).format(m)
        self.meta_delete_many = sql.SQL("DELETE FROM {} WHERE k = ANY(%b::bytea[])").format(m)


class PostgresStore(FetchingStore, AtomicKVStore):
    """An :class:`~kvstore.AtomicKVStore` in a PostgreSQL table, shared by every client.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL; ``table`` names the data
    table (created when missing, with ``<table>_meta`` for the commit log); ``pool_size`` is
    the most connections this object pools (each open snapshot holds one; when all are in
    use, an operation waits up to ``connect_timeout`` for one, then opens an unpooled
    connection for itself rather than fail).  ``sync=False``
    commits with ``synchronous_commit = off`` (a server crash may lose the latest commits,
    never half of one); ``connect_timeout`` bounds how long an unreachable server is waited
    for before :class:`~kvstore.StoreUnavailable`.  Thread safe.
    """

    #: Batches of a range scan: each is one ``SELECT ... LIMIT``; bigger means fewer trips.
    _max_batch = 4096

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "kvstore",
        pool_size: int = 16,
        sync: bool = True,
        connect_timeout: float = 5.0,
    ) -> None:
        if not isinstance(dsn, str):
            raise TypeError(f"dsn must be a str, not {type(dsn).__name__}")
        if not isinstance(table, str):
            raise TypeError(f"table must be a str, not {type(table).__name__}")
        if not _TABLE_NAME.fullmatch(table) or len(table) > _MAX_TABLE_NAME:
            raise ValueError(
                f"table must be a plain SQL identifier (letters, digits, _; at most "
                f"{_MAX_TABLE_NAME} characters), not {table!r}"
            )
        pool_size = check_int(pool_size, "pool_size", minimum=1, maximum=10_000)
        check_bool(sync, "sync")
        connect_timeout = check_number(connect_timeout, "connect_timeout", minimum=0.001)
        self._dsn = dsn
        self._table = table
        self._sync = sync
        self._timeout = connect_timeout
        self._sql = _Statements(table)
        self._closed = False
        self._snapshots: weakref.WeakSet[PostgresSnapshot] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._parked_cond = threading.Condition(self._lock)  # wakes the sweeper (_sweep)
        self._sweeper: threading.Thread | None = None
        self._sweeper_busy = False  # it will look again by itself (a timed wait or a sweep)
        self._direct: set[int] = set()  # ids of connections made outside the pool (_conn)
        # Connections of closed snapshots: when parked, and whether the snapshot's transaction
        # is still open (to be ended by the next query) or its ROLLBACK was sent (the reply is
        # still to be read).  See _release and _take.
        self._parked: list[tuple[psycopg.Connection[Any], float, bool]] = []
        # Connections holding the one-round-trip commit's prepared statements.
        self._prepared: weakref.WeakKeyDictionary[psycopg.Connection[Any], None] = (
            weakref.WeakKeyDictionary()
        )
        try:
            conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as e:
            raise ValueError(f"dsn is not a valid PostgreSQL connection string: {e}") from None
        try:
            self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
                psycopg_pool.ConnectionPool(
                    dsn,
                    min_size=1,
                    max_size=pool_size,
                    kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
                    configure=self._configure,
                    timeout=connect_timeout,
                    open=False,
                    name=f"kvstore-{table}",
                )
            )
        except psycopg.ProgrammingError as e:
            raise ValueError(f"dsn is not a valid PostgreSQL connection string: {e}") from None
        try:
            # One direct attempt first: a refused or unknown server fails now, with its reason,
            # instead of after the pool's connect-retry loop times out.
            refused = self._why_unreachable()
            if refused is not None:
                raise _unavailable(refused, "connecting")
            try:
                self._pool.open(wait=True, timeout=connect_timeout)
            except psycopg_pool.PoolTimeout:
                raise _unavailable(
                    self._why_unreachable() or "the pool timed out", "connecting"
                ) from None
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Set up a new connection: the store's commit durability, once per session.

        A store made with ``sync=False`` sets ``synchronous_commit = off`` for the session,
        so its commits need no ``SET LOCAL`` statement each (PERFORMANCE S1: every statement
        costs client CPU); only a write asking for the other setting sends one.
        """
        if not self._sync:
            conn.execute("SET synchronous_commit = off")

    def _why_unreachable(self) -> BaseException | None:
        """Why a direct connection attempt fails, or ``None`` when it succeeds."""
        try:
            psycopg.connect(self._dsn, connect_timeout=max(1, round(self._timeout))).close()
        except psycopg.Error as e:
            return e
        return None

    # -- connections -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the PostgresStore is closed")

    def _conn(self) -> psycopg.Connection[Any]:
        """A connection (autocommit, no transaction open), or StoreUnavailable."""
        conn, _, snapshot_open = self._take()
        if snapshot_open:
            self._abort(conn)
        return conn

    def _take(self) -> tuple[psycopg.Connection[Any], bool, bool]:
        """A connection; whether it is *proven*; whether a closed snapshot is still open on it.

        A closed snapshot's connection comes first (the last one parked).  Its read-only
        transaction is usually still open: the caller ends it with ``COMMIT;`` in front of
        its own query (PERFORMANCE S1: no message, no round trip of its own), or by
        :meth:`_abort`.  Otherwise its ROLLBACK was sent and the reply is read now.  Such a
        connection is proven when the snapshot closed less than ``_PROVEN_SECONDS`` ago: a
        transaction's commit on it follows its reads, which just succeeded there.  A commit
        on a proven connection sends everything, ``COMMIT`` included, at once; on another it
        first makes sure the connection is alive (a dead pooled connection, after a server
        restart, must not make a commit's outcome unknown).
        """
        self._check_open()
        while True:
            with self._lock:
                if not self._parked:
                    break
                conn, parked_at, snapshot_open = self._parked.pop()
            proven = time.monotonic() - parked_at < _PROVEN_SECONDS
            if snapshot_open:
                return conn, proven, True
            if self._drain(conn):
                return conn, proven, False
            self._put_back(conn)  # closed: the pool replaces it
        return self._pooled(), False, False

    def _drain(self, conn: psycopg.Connection[Any]) -> bool:
        """Read the reply of the ROLLBACK :meth:`_release` sent; False (and closed) if it failed."""
        pgconn = conn.pgconn
        deadline = time.monotonic() + self._timeout
        try:
            pgconn.consume_input()
            while pgconn.is_busy():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise psycopg.OperationalError("no reply to ROLLBACK")
                select.select([pgconn.socket], [], [], remaining)
                pgconn.consume_input()
            ok = True
            while (result := pgconn.get_result()) is not None:
                ok = ok and result.status == pq.ExecStatus.COMMAND_OK
            if ok and pgconn.transaction_status == pq.TransactionStatus.IDLE:
                return True
        except psycopg.Error:
            pass
        conn.close()
        return False

    def _pooled(self) -> psycopg.Connection[Any]:
        """A connection from the pool (or a direct one), or StoreUnavailable.

        Normally a pooled one.  When the pool times out but the server answers a direct
        attempt (just after a restart, the pool is still backing off between reconnects), the
        direct connection is used for this one operation and closed afterwards.
        """
        self._check_open()
        try:
            return self._pool.getconn(timeout=self._timeout)
        except psycopg_pool.PoolClosed:
            raise StoreClosed("the PostgresStore is closed") from None
        except psycopg_pool.PoolTimeout:
            pass
        except psycopg.OperationalError as e:
            raise _unavailable(e, "connecting") from None
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
            self._configure(conn)
        except psycopg.Error as e:
            raise _unavailable(e, "connecting") from None
        with self._lock:
            self._direct.add(id(conn))
        return conn

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        """Give back a closed snapshot's connection: park it, its transaction still open.

        The next query on it ends the snapshot (``COMMIT;`` in front: read only, nothing to
        commit): a transaction's commit follows its snapshot's close at once, and ending the
        snapshot costs it no message (PERFORMANCE S1).  A connection not taken within
        ``_END_AFTER`` is ended by the sweeper thread, so no snapshot lingers to hold back
        VACUUM.  A failed snapshot (a read raised) gets its ROLLBACK sent now instead.
        """
        if not self._closed and not conn.broken:
            healthy = conn.pgconn.transaction_status == pq.TransactionStatus.INTRANS
            if healthy or self._send_rollback(conn):
                with self._lock:
                    if not self._closed:
                        self._parked.append((conn, time.monotonic(), healthy))
                        if not healthy or self._sweeper_busy:
                            return
                        if self._start_sweeper():
                            self._parked_cond.notify()  # only when idle: no wake per close
                            return
                        self._parked.pop()  # no thread to end it (interpreter shutdown)
                if not healthy:
                    self._drain(conn)  # the store closed meanwhile: give it back clean
        self._abort(conn)
        self._put_back(conn)

    def _start_sweeper(self) -> bool:
        """Start the sweeper thread once (the caller holds ``_lock``); False if it cannot."""
        if self._sweeper is None:
            sweeper = threading.Thread(
                target=self._sweep, name=f"kvstore-{self._table}-snapshots", daemon=True
            )
            try:
                sweeper.start()
            except RuntimeError:  # at interpreter shutdown (a snapshot's finalizer)
                return False
            self._sweeper = sweeper
        return True

    def _sweep(self) -> None:
        """End the transactions of snapshots parked for more than ``_END_AFTER``, until close."""
        while True:
            with self._parked_cond:
                while True:
                    if self._closed:
                        return
                    opened = [at for _, at, open_ in self._parked if open_]
                    if not opened:
                        self._sweeper_busy = False
                        self._parked_cond.wait()
                        continue
                    self._sweeper_busy = True
                    due = min(opened) + _END_AFTER - time.monotonic()
                    if due <= 0:
                        break
                    self._parked_cond.wait(due)
                now = time.monotonic()
                stale = [e for e in self._parked if e[2] and e[1] + _END_AFTER <= now]
                self._parked = [e for e in self._parked if e not in stale]
            for conn, _, _ in stale:
                self._abort(conn)
                self._put_back(conn)

    def _put_back(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            direct = id(conn) in self._direct
            self._direct.discard(id(conn))
        if direct:
            conn.close()
            return
        try:
            self._pool.putconn(conn)
        except psycopg_pool.PoolClosed:  # pragma: no cover - close() raced us
            conn.close()

    def _read(self, fn: Callable[[psycopg.Connection[Any]], T], doing: str) -> T:
        """Run a read on a pooled connection; a dead pooled connection is retried once.

        Reads change nothing, so running one again on a fresh connection is always safe;
        after a server restart every idle pooled connection is dead, and this hides that.
        """
        for attempt in (1, 2):
            conn = self._conn()
            try:
                return fn(conn)
            except psycopg.OperationalError as e:
                if attempt == 2 or not conn.broken:
                    raise _unavailable(e, doing) from None
            finally:
                self._put_back(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(
        self,
        fn: Callable[[psycopg.Connection[Any]], T],
        sync: bool | None,
        doing: str,
        *,
        pipelined_commit: bool = False,
        probe: bool = False,
    ) -> T:
        """Run ``fn`` in one transaction and commit it; classify failures (see module doc).

        A connection found broken before ``COMMIT`` was sent is replaced and ``fn`` run once
        more from scratch: PostgreSQL aborted that transaction, so nothing of it happened
        (after a server restart, every idle pooled connection is dead).  A break once
        ``COMMIT`` was sent is never retried: it raises :class:`~kvstore.CommitUnknown`.

        ``pipelined_commit`` sends ``COMMIT`` in the same round trip as the statements ``fn``
        left unsynced (a commit sends its writes under the commit lock, so this saves a round
        trip there).  Only for an ``fn`` that syncs first (the lock), or with ``probe``: that
        first round trip is what finds a dead pooled connection, before anything that could
        commit is sent.  ``probe`` syncs after ``BEGIN`` unless the connection is proven
        (:meth:`_take`), so on a proven one the whole transaction is one round trip.
        """
        for attempt in (1, 2):
            conn, proven, snapshot_open = self._take()
            sent = False  # COMMIT was sent: from now on a break is CommitUnknown
            try:
                try:
                    with conn.pipeline() as pipeline:
                        try:
                            if snapshot_open:  # a closed snapshot's: end it first
                                conn.execute("COMMIT")
                            conn.execute("BEGIN")
                            if probe and not proven:
                                pipeline.sync()
                            if sync is not None and sync != self._sync:
                                # The session has the store's setting (_configure): override.
                                conn.execute(
                                    "SET LOCAL synchronous_commit TO DEFAULT"
                                    if sync
                                    else "SET LOCAL synchronous_commit = off"
                                )
                            result = fn(conn)
                            if pipelined_commit:
                                sent = True
                                conn.execute("COMMIT")
                        except psycopg.Error:
                            if not conn.broken:
                                _end_aborted(pipeline)
                            raise
                except psycopg.OperationalError as e:
                    if sent and conn.broken:
                        raise self._commit_unknown(e, doing) from None
                    # Not sent, or the server answered with an error: it rolled back.
                    self._abort(conn, failed=True)
                    if attempt == 1 and conn.broken:
                        continue
                    raise _unavailable(e, doing) from None
                except BaseException as e:
                    self._abort(conn, failed=isinstance(e, psycopg.Error))
                    raise
                if pipelined_commit:
                    return result
                try:
                    conn.execute("COMMIT")
                except psycopg.OperationalError as e:
                    if conn.broken:
                        raise self._commit_unknown(e, doing) from None
                    raise _unavailable(e, doing) from None  # refused: rolled back
                return result
            finally:
                self._put_back(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _commit_unknown(exc: BaseException, doing: str) -> CommitUnknown:
        return CommitUnknown(
            f"the connection to PostgreSQL broke during COMMIT while {doing}: "
            f"the commit may or may not have been applied ({exc})"
        )

    def _abort(self, conn: psycopg.Connection[Any], *, failed: bool = False) -> None:
        """Roll back what is open on ``conn``.

        ``failed``: a statement of a pipeline failed, so the server skipped the rest, and
        psycopg may count as prepared a statement whose preparation was skipped: its
        ``rollback()`` forgets them all (``DEALLOCATE ALL``).  Otherwise below psycopg (see
        :meth:`_send_rollback`), keeping the session's prepared statements.
        """
        if conn.broken or conn.closed:
            return
        if failed:
            self._prepared.pop(conn, None)  # rollback() says DEALLOCATE ALL
            try:
                conn.rollback()
            except psycopg.Error:
                conn.close()
        elif self._send_rollback(conn):
            self._drain(conn)

    def _send_rollback(self, conn: psycopg.Connection[Any]) -> bool:
        """Send ``ROLLBACK`` on ``conn`` without waiting for the reply (:meth:`_drain` reads it).

        Sent through libpq directly: psycopg, seeing a ``ROLLBACK``, would drop every
        prepared statement of the session (``DEALLOCATE ALL``, one more round trip), and the
        next transaction would prepare them again (PERFORMANCE S1).  Nothing this store rolls
        back ever changed the schema, so they stay valid.  False (closed) if it failed.
        """
        pgconn = conn.pgconn
        try:
            pgconn.send_query(b"ROLLBACK")
            while pgconn.flush():  # a few bytes: sent at once in practice
                select.select([], [pgconn.socket], [], self._timeout)
        except psycopg.Error:
            conn.close()
            return False
        return True

    def _create_schema(self) -> None:
        s = self._sql

        def create(conn: psycopg.Connection[Any]) -> None:
            # Several clients may create the same table at once: serialize the DDL.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x6B7673746F7265,))
            for stmt in s.create[:-1]:
                conn.execute(stmt)
            conn.execute(s.create[-1], (_VERSION_KEY, _U64.pack(0)))
            s.render(conn)

        try:
            self._write(create, None, "creating the tables")
        except CommitUnknown as e:  # DDL is idempotent: say it plainly
            raise StoreUnavailable(str(e)) from None

    # -- reads -------------------------------------------------------------------------------
    def _fetch(self, lo: bytes, hi: bytes | None, reverse: bool, limit: int) -> list[KVPair]:
        stmt = self._sql.fetch[reverse, hi is not None]
        params = (lo, limit) if hi is None else (lo, hi, limit)

        def run(conn: psycopg.Connection[Any]) -> list[KVPair]:
            rows = conn.execute(stmt, params, binary=True).fetchall()
            return list(map(make_pair, rows))

        return self._read(run, "reading a range")

    def get(self, key: bytes) -> bytes | None:
        key = check_key(key)
        stmt = self._sql.get

        def run(conn: psycopg.Connection[Any]) -> bytes | None:
            row = conn.execute(stmt, (key,), binary=True).fetchone()
            return None if row is None else row[0]

        return self._read(run, "reading a key")

    # -- writes ------------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        key = check_key(key)
        value = check_value(value)
        stmt = self._sql.put
        self._write(lambda c: c.execute(stmt, (key, value)), None, "writing a key")

    def remove(self, key: bytes) -> None:
        key = check_key(key)
        stmt = self._sql.remove
        self._write(lambda c: c.execute(stmt, (key,)), None, "removing a key")

    def remove_range(self, min_key: bytes | None = None, max_key: bytes | None = None) -> None:
        lo, hi = check_bounds(min_key, max_key)
        removes = _Checked([KeyRange(lo, hi)], [], [])
        self._write(lambda c: self._apply_in(c, removes), None, "removing")

    def adjust_counter(self, key: bytes, amount: int) -> None:
        key = check_key(key)
        amount = check_amount(amount)
        stmt = self._sql.adjust_many
        self._write(lambda c: c.execute(stmt, ([key], [amount])), None, "adjusting a counter")

    def _apply_in(self, conn: psycopg.Connection[Any], mutations: Mutations) -> None:
        """Send ``mutations`` as part of the open transaction on ``conn`` (a few statements)."""
        s = self._sql
        for name, params in _data_writes(mutations):
            conn.execute(getattr(s, name), params)

    def apply(self, mutations: Mutations, sync: bool | None = None) -> None:
        """Apply ``mutations`` in one PostgreSQL transaction: all of them or none.

        Every item is checked before anything is sent.  ``sync=False`` commits with
        ``synchronous_commit = off``; ``None`` keeps the store's setting.
        """
        check_optional_bool(sync, "sync")
        checked = checked_mutations(mutations)
        self._write(lambda c: self._apply_in(c, _Checked(*checked)), sync, "applying")

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> PostgresSnapshot:
        """A read-only store frozen now: a REPEATABLE READ READ ONLY transaction.

        It holds one pooled connection until ``close()``: close it promptly.
        """
        return self._begin_snapshot()[0]

    def _begin_snapshot(self) -> tuple[PostgresSnapshot, int]:
        """A snapshot and the commit version it shows (read inside it: they agree)."""
        for attempt in (1, 2):
            conn, _, snapshot_open = self._take()
            try:
                # The snapshot is taken by the first statement after BEGIN: the version read.
                # A closed snapshot still open on the connection ends first (read only).
                s = self._sql
                cur = conn.execute(s.end_and_begin_snapshot if snapshot_open else s.begin_snapshot)
                for _ in range(1 + snapshot_open):
                    cur.nextset()
                row = cur.fetchone()
            except psycopg.OperationalError as e:
                self._abort(conn, failed=True)
                self._put_back(conn)
                # A read: safe to take again on a fresh connection (one dead after a restart).
                if attempt == 1 and conn.broken:
                    continue
                raise _unavailable(e, "taking a snapshot") from None
            except BaseException as e:
                self._abort(conn, failed=isinstance(e, psycopg.Error))
                self._put_back(conn)
                raise
            version = version_of(None if row is None else row[0])
            snap = PostgresSnapshot(self, conn)
            with self._lock:
                self._snapshots.add(snap)
            return snap, version
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the commit log (internal hook for kvstore.database) ----------------------------------
    def _make_commit_log(
        self, keep_seconds: float, keep_commits: int, keep_bytes: int
    ) -> PostgresLog:
        """The log of :class:`~kvstore.Database`, kept in this store's meta table."""
        return PostgresLog(self, keep_seconds, keep_commits, keep_bytes)

    def _atomic(
        self, fn: Callable[[LogBatch], T], sync: bool | None, seen: int = 0
    ) -> tuple[T, int]:
        """Run ``fn(batch)`` in ONE transaction holding the commit lock, and commit.

        The first statement locks the version row (``SELECT ... FOR UPDATE``): committers
        on every machine take turns, and each sees every earlier commit (READ COMMITTED
        statements after the lock is granted see what its last holder committed).  The log
        entries after version ``seen`` are fetched in the same round trip as the lock, so
        validating against other clients' commits costs no round trip under the lock.
        Returns ``fn``'s result and the version this transaction leaves (committed).
        """

        def run(conn: psycopg.Connection[Any]) -> tuple[T, int]:
            batch = _PgBatch(self, conn, seen)
            result = fn(batch)
            batch.flush()
            return result, batch.version_after()

        return self._write(run, sync, "committing", pipelined_commit=True)

    def _commit_fast(
        self,
        mutations: Mutations,
        log: tuple[int, bytes, tuple[list[bytes], list[bytes | None]]],
        guard: tuple[bytes, int, list[bytes], list[bytes | None], int],
        sync: bool | None,
    ) -> bytes | None:
        """Commit in one round trip, the server checking the reads; None if it refused.

        ``log`` is the entry's size, its value and its keys rows; ``guard`` the next entry's
        key, the byte budget, the read ranges and the snapshot's version.  One query:
        ``BEGIN``, the lock and the log (one statement), the guard, the data writes,
        ``COMMIT`` — so the commit lock is held for the server's own work only, never for a
        client's reply (PERFORMANCE S1d: on a busy machine, waking the lock holder's client
        cost more than everything else).  The statements are prepared once per connection
        and run by ``EXECUTE`` in one simple-protocol query: one execution for the client
        instead of five (S1).  A refusal rolls it all back.  Returns the new version record.
        """
        size, value, (los, his) = log
        nxt, budget, read_los, read_his, since = guard
        vk = _lit(_VERSION_KEY)
        parts = [
            _execute(
                b"kvstore_log",
                b"%d" % size,
                vk,
                _lit(ENTRY_PREFIX),
                _lit(value),
                _lit_array(los),
                _lit_array(his),
            ),
            _execute(
                b"kvstore_guard",
                _lit(nxt),
                vk,
                b"%d" % budget,
                _lit_array(read_los),
                _lit_array(read_his),
                b"%d" % since,
                vk,
            ),
        ]
        for name, params in _data_writes(mutations):
            parts.append(_execute(_FAST_STATEMENTS[name], *map(_literal, params)))
        if sync is not None and sync != self._sync:
            parts.insert(
                0,
                b"SET LOCAL synchronous_commit TO DEFAULT"
                if sync
                else b"SET LOCAL synchronous_commit = off",
            )
        body = b"; ".join([*parts, b"COMMIT"])
        for attempt in (1, 2):
            conn, proven, snapshot_open = self._take()
            sent = False  # COMMIT was sent: from now on a break is CommitUnknown
            try:
                try:
                    if snapshot_open and (not proven or conn not in self._prepared):
                        self._abort(conn)
                        snapshot_open = False
                    if conn not in self._prepared:
                        conn.execute(self._sql.prepare_fast, prepare=False)
                        self._prepared[conn] = None
                        proven = True  # it just answered
                    if proven:  # a closed snapshot's transaction ends with its first COMMIT
                        query = (b"COMMIT; BEGIN; " if snapshot_open else b"BEGIN; ") + body
                    else:  # make sure it is alive before sending what commits
                        conn.execute(b"BEGIN", prepare=False)
                        query = body
                    sent = True
                    cur = conn.execute(query, prepare=False)
                except psycopg.OperationalError as e:
                    if sent and conn.broken:
                        raise self._commit_unknown(e, "committing") from None
                    self._abort(conn)
                    if attempt == 1 and conn.broken:
                        continue
                    raise _unavailable(e, "committing") from None
                except psycopg.errors.InvalidSqlStatementName:
                    # Our prepared statements are gone (a DEALLOCATE ALL): the transaction
                    # failed before COMMIT, nothing happened; prepare them again.
                    self._abort(conn)
                    self._prepared.pop(conn, None)
                    if attempt == 1:
                        continue
                    raise
                except BaseException as e:
                    self._abort(conn)
                    if isinstance(e, psycopg.errors.InvalidTextRepresentation) and _REFUSED in str(
                        e
                    ):
                        return None
                    raise
                for _ in range(snapshot_open + proven + parts[0].startswith(b"SET")):
                    cur.nextset()  # past the results of the snapshot's end, BEGIN and SET
                row = cur.fetchone()
                if row is None:  # pragma: no cover - the version record is made with the table
                    raise StoreUnavailable(f"the version record of {self._table!r} is missing")
                raw: bytes = row[0]
                return raw
            finally:
                self._put_back(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- size and life cycle -----------------------------------------------------------------
    def size_bytes(self) -> int:
        """Disk space of the data and log tables with their indexes (pg_total_relation_size)."""
        s = self._sql
        names = (self._table, self._table + "_meta")

        def run(conn: psycopg.Connection[Any]) -> int:
            row = conn.execute(s.size, (f'"{names[0]}"', f'"{names[1]}"')).fetchone()
            return int(row[0]) if row else 0

        return self._read(run, "measuring the tables")

    @property
    def table(self) -> str:
        return self._table

    def close(self) -> None:
        """Close open snapshots and the connection pool; later use raises StoreClosed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            snaps = list(self._snapshots)
            parked, self._parked = self._parked, []
            sweeper = self._sweeper
            self._parked_cond.notify_all()
        if sweeper is not None and sweeper is not threading.current_thread():
            sweeper.join(5)
        for snap in snaps:
            snap.close()
        for conn, _, _ in parked:
            conn.close()  # the server rolls back whatever is left
            self._put_back(conn)
        self._pool.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<PostgresStore table={self._table!r} {state}>"


class _Checked:
    """Already checked mutations, so ``_apply_in`` does not check them twice."""

    __slots__ = ("_a", "_p", "_r")

    def __init__(
        self, r: list[KeyRange], p: list[tuple[bytes, bytes]], a: list[tuple[bytes, int]]
    ) -> None:
        self._r, self._p, self._a = r, p, a

    def remove_ranges(self) -> list[KeyRange]:
        return self._r

    def put_pairs(self) -> list[tuple[bytes, bytes]]:
        return self._p

    def adjust_pairs(self) -> list[tuple[bytes, int]]:
        return self._a


class PostgresSnapshot(ReadOnlyStore, FetchingStore):
    """A frozen, read-only view of a :class:`PostgresStore`: one REPEATABLE READ transaction."""

    _max_batch = 4096

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any]) -> None:
        self._store = store
        self._conn = conn
        self._cursor = conn.cursor(binary=True)  # one for every read (PERFORMANCE S1)
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, store._release, conn)

    def _check_open(self) -> None:
        if not self._finalizer.alive:
            raise StoreClosed("the snapshot is closed")
        self._store._check_open()

    def _query(self, stmt: Any, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            self._check_open()
            try:
                return self._cursor.execute(stmt, params).fetchall()
            except psycopg.OperationalError as e:
                raise _unavailable(e, "reading a snapshot") from None

    def get(self, key: bytes) -> bytes | None:
        key = check_key(key)
        rows = self._query(self._store._sql.get, (key,))
        return rows[0][0] if rows else None

    def _fetch(self, lo: bytes, hi: bytes | None, reverse: bool, limit: int) -> list[KVPair]:
        stmt = self._store._sql.fetch[reverse, hi is not None]
        params = (lo, limit) if hi is None else (lo, hi, limit)
        return list(map(make_pair, self._query(stmt, params)))

    def meta_get(self, key: bytes) -> bytes | None:
        """The meta table's value of ``key`` in this snapshot."""
        rows = self._query(self._store._sql.meta_get, (key,))
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._finalizer()

    def __repr__(self) -> str:
        state = "open" if self._finalizer.alive else "closed"
        return f"<PostgresSnapshot {state}>"


class _PgBatch:
    """The :class:`~kvstore.commitlog.LogBatch` of one commit transaction.

    The version row is locked by the first ``meta_get`` of it, in one round trip with the
    log entries after ``seen`` (up to :data:`_PREFETCH` of them): the validation that follows
    reads them from memory.  Data mutations are sent at once (pipelined); metadata writes
    are buffered and sent by :meth:`flush` as one upsert and one delete, and ``COMMIT`` follows
    in the same pipeline, so a commit costs one round trip under the lock whatever it logs.
    """

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any], seen: int) -> None:
        self._store = store
        self._conn = conn
        self._puts: dict[bytes, bytes] = {}
        self._deletes: set[bytes] = set()
        self._locked = False
        self._seen = seen
        #: The version read under the lock (0 until locked).
        self.locked_version = 0
        # Log entries fetched with the lock: every entry key in [_lo, _hi) is in _fetched.
        self._fetched: dict[bytes, bytes] = {}
        self._lo = self._hi = b""
        # The keys rows of the commits appended (version, lo, hi), and the newest version
        # whose entry is deleted (trimmed): its keys rows and older ones go too.
        self._keys: tuple[list[int], list[bytes], list[bytes | None]] = ([], [], [])
        self._trim_to = 0

    def log_keys(self, version: int, shape: Shape) -> None:
        """Record what commit ``version`` wrote in the keys table (for the server's guard)."""
        los, his = _shape_rows(shape)
        self._keys[0].extend([version] * len(los))
        self._keys[1].extend(los)
        self._keys[2].extend(his)

    def apply(self, mutations: Mutations) -> None:
        self._store._apply_in(self._conn, mutations)

    def _lock_version(self) -> bytes | None:
        """Lock the version row and fetch the log entries after ``seen``: one round trip.

        The entry query runs after the lock is granted, as a new READ COMMITTED statement,
        so it sees every entry up to the locked version.  Returns the version row's value.
        """
        s = self._store._sql
        conn = self._conn
        lock = conn.execute(s.meta_lock, (_VERSION_KEY,), binary=True)
        lo = entry_key(self._seen + 1)
        entries = conn.execute(s.meta_range_limit, (lo, _ENTRY_END, _PREFETCH), binary=True)
        row = lock.fetchone()  # syncs the pipeline: both results arrive together
        rows: list[tuple[bytes, bytes]] = entries.fetchall()
        self._locked = True
        self._fetched = dict(rows)
        self._lo = lo
        # A full batch covers only up to its last key (the rest is read when needed).
        self._hi = _ENTRY_END if len(rows) < _PREFETCH else rows[-1][0] + b"\x00"
        value: bytes | None = None if row is None else row[0]
        self.locked_version = version_of(value)
        return value

    def version_after(self) -> int:
        """The version this transaction leaves: the one it writes, else the locked one."""
        written = self._puts.get(_VERSION_KEY)
        return self.locked_version if written is None else version_of(written)

    def _covered(self, lo: bytes, hi: bytes | None) -> bool:
        """Whether every entry key in ``[lo, hi)`` was fetched with the lock."""
        return self._locked and hi is not None and self._lo <= lo and hi <= self._hi

    def meta_get(self, key: bytes) -> bytes | None:
        if key in self._deletes:
            return None
        if key in self._puts:
            return self._puts[key]
        if key == _VERSION_KEY and not self._locked:
            return self._lock_version()
        if self._covered(key, key + b"\x00"):
            return self._fetched.get(key)
        row = self._conn.execute(self._store._sql.meta_get, (key,), binary=True).fetchone()
        return None if row is None else row[0]

    def meta_put(self, key: bytes, value: bytes) -> None:
        self._deletes.discard(key)
        self._puts[key] = value

    def meta_delete(self, key: bytes) -> None:
        self._puts.pop(key, None)
        self._deletes.add(key)
        if key.startswith(ENTRY_PREFIX) and len(key) == len(ENTRY_PREFIX) + _U64.size:
            # The log is trimmed oldest first: this entry's keys rows and older ones go too.
            self._trim_to = max(self._trim_to, _U64.unpack_from(key, len(ENTRY_PREFIX))[0])

    def meta_delete_range(self, min_key: bytes, max_key: bytes | None) -> None:
        for key, _ in list(self.meta_range(min_key, max_key)):
            self.meta_delete(key)

    def meta_range(self, min_key: bytes, max_key: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        s = self._store._sql
        rows: list[tuple[bytes, bytes]]
        if max_key is not None and self._covered(min_key, max_key):
            rows = [kv for kv in self._fetched.items() if min_key <= kv[0] < max_key]
        elif max_key is None:
            rows = self._conn.execute(s.meta_range_from, (min_key,), binary=True).fetchall()
        else:
            rows = self._conn.execute(s.meta_range, (min_key, max_key), binary=True).fetchall()
        found = {k: v for k, v in rows if k not in self._deletes}
        for k, v in self._puts.items():
            if k >= min_key and (max_key is None or k < max_key):
                found[k] = v
        for k in sorted(found):
            yield k, found[k]

    def flush(self) -> None:
        """Send the buffered metadata writes (inside the same transaction)."""
        if not self._locked:
            self._lock_version()
        s = self._store._sql
        if self._deletes:
            self._conn.execute(s.meta_delete_many, (list(self._deletes),))
        if self._puts:
            self._conn.execute(s.meta_put_many, (list(self._puts), list(self._puts.values())))
        if self._trim_to:
            self._conn.execute(s.keys_trim, (self._trim_to,))
        if self._keys[0]:
            self._conn.execute(s.keys_put_many, self._keys)


def _shape_rows(shape: Shape) -> tuple[list[bytes], list[bytes | None]]:
    """A commit's keys rows: ``[lo, hi)`` per key written or range removed (hi None: no end).

    One row per ``lo`` (the keys table's key): ranges starting at the same key are merged.
    """
    rows: dict[bytes, bytes | None] = {}
    for r in shape.remove_ranges():
        rows[r.min_key] = r.max_key
    for pairs in (shape.put_pairs(), shape.adjust_pairs()):
        for key, _ in pairs:
            # A removed range starting at ``key`` already covers it.
            rows.setdefault(key, key + b"\x00")
    return list(rows), list(rows.values())


class PostgresLog(CommitLog["PostgresStore"]):
    """The commit log kept in a PostgresStore's meta table, shared by every client."""

    def __init__(
        self, store: PostgresStore, keep_seconds: float, keep_commits: int, keep_bytes: int
    ) -> None:
        super().__init__(store, keep_seconds, keep_commits, keep_bytes)
        # The log entries after this version are fetched with the commit lock: the version
        # this process's last commit left, or else its first snapshot's (commits are
        # exclusive in a process, and each one moves it on).
        self._seen = 0

    def begin(self) -> tuple[KVStore, int]:
        snapshot, version = self._store._begin_snapshot()
        if self._seen == 0:
            self._seen = version
        return snapshot, version

    def append(
        self,
        batch: LogBatch,
        version: int,
        writes: Writes,
        pending: dict[int, Shape],
        entry: tuple[Shape, bytes] | None = None,
    ) -> int:
        """As :meth:`CommitLog.append`, and the commit's keys rows for the server's guard."""
        version = super().append(batch, version, writes, pending, entry)
        assert isinstance(batch, _PgBatch)
        batch.log_keys(version, pending[version])
        return version

    def commit(self, writes: Writes, reads: Reads, since: int | None, sync: bool | None) -> int:
        """Validate and write one commit; usually in one round trip, checked by the server.

        The server checks the reads against the keys rows of the commits after ``since``
        (``_Statements.guard``) under the commit lock, so the lock is never held while
        this client validates (PERFORMANCE S1d).  A commit the guard refuses — a conflict, a
        snapshot too old, a log over its byte budget — or one that reads too many ranges, is
        due to trim, or read nothing (its first round trip must probe the connection) takes
        the validating path of :class:`CommitLog`, which says exactly why, or commits.
        """
        if since is None or since < self._trimmed:
            return super().commit(writes, reads, since, sync)
        read_los, read_his = reads._bounds()
        shape, encoded = self.entry(writes)
        value = _TIME.pack(time.time()) + encoded
        size = len(ENTRY_PREFIX) + _U64.size + len(value)
        rows = _shape_rows(shape)
        if (
            len(read_los) > _FAST_ITEMS
            or len(rows[0]) > _FAST_ITEMS  # a coarsened shape has few rows: count the writes
            or dict.__len__(writes.puts) + dict.__len__(writes.adjusts) > _FAST_ITEMS
            or sum(map(len, dict.values(writes.puts))) > _FAST_BYTES
            or self.trim_next(size)
        ):
            return self._validated_commit(writes, reads, since, sync)
        guard = (entry_key(since + 1), self.keep_bytes, read_los, read_his, since)
        raw = self._store._commit_fast(writes, (size, value, rows), guard, sync)
        if raw is None:
            return self._validated_commit(writes, reads, since, sync)
        version = self.load_tally(raw)
        self._commits_since_trim += 1
        shape.size = size
        self.remember({version: shape})
        return version

    def _validated_commit(self, writes: Writes, reads: Reads, since: int, sync: bool | None) -> int:
        """The commit path that validates in this client, holding the commit lock."""
        # Fetch the log entries after the snapshot with the lock: those are what it checks.
        self._seen = since
        return super().commit(writes, reads, since, sync)

    def atomic(self, fn: Callable[[LogBatch], T], sync: bool | None) -> T:
        # A transaction's snapshot is normally at or after the version seen by this process's
        # last commit, so the entries it validates against are among those fetched; an older
        # one's are read by a query under the lock, as before.
        result, version = self._store._atomic(fn, sync, self._seen)
        self._seen = max(self._seen, version)
        return result
