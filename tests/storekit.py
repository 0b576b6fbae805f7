"""Helpers shared by the store tests: store factories and a minimal Mutations value.

Every store, view and transaction must pass the same conformance suite; each entry of
``FACTORIES`` makes a fresh, empty store of one kind and cleans it up afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from kvstore.ranges import KeyRange
from kvstore.store import KVStore

StoreFactory = Callable[[Path], contextlib.AbstractContextManager[KVStore]]


class SimpleMutations:
    """The smallest possible ``Mutations``: three lists, already in key order."""

    def __init__(
        self,
        removes: Iterable[KeyRange] = (),
        puts: Iterable[tuple[bytes, bytes]] = (),
        adjusts: Iterable[tuple[bytes, int]] = (),
    ) -> None:
        self.removes = sorted(removes)
        self.puts = sorted(puts)
        self.adjusts = sorted(adjusts)

    def remove_ranges(self) -> Iterator[KeyRange]:
        return iter(self.removes)

    def put_pairs(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.puts)

    def adjust_pairs(self) -> Iterator[tuple[bytes, int]]:
        return iter(self.adjusts)


@contextlib.contextmanager
def memory_store(tmp: Path) -> Iterator[KVStore]:
    from kvstore.backends.memory import MemoryStore

    with MemoryStore() as store:
        yield store


@contextlib.contextmanager
def lmdb_store(tmp: Path) -> Iterator[KVStore]:
    from kvstore.backends.lmdb import LMDBStore

    with LMDBStore(tmp / "db", sync=False) as store:
        yield store


@contextlib.contextmanager
def postgres_store(tmp: Path) -> Iterator[KVStore]:
    """A PostgresStore on a fresh table of the session's throwaway cluster (tests/pgserver)."""
    from tests import pgserver

    dsn = pgserver.dsn()
    from kvstore.backends.postgres import PostgresStore

    with PostgresStore(dsn, table=pgserver.fresh_table(), sync=False) as store:
        yield store


@contextlib.contextmanager
def view_over(inner: StoreFactory, tmp: Path) -> Iterator[KVStore]:
    from kvstore.view import MutableView

    with inner(tmp) as base:
        base.put(b"\xfe\xfe-base-noise", b"hidden")
        view = MutableView(base)
        view.remove(b"\xfe\xfe-base-noise")
        yield view


@contextlib.contextmanager
def memory_view(tmp: Path) -> Iterator[KVStore]:
    with view_over(memory_store, tmp) as view:
        yield view


@contextlib.contextmanager
def lmdb_view(tmp: Path) -> Iterator[KVStore]:
    with view_over(lmdb_store, tmp) as view:
        yield view


@contextlib.contextmanager
def postgres_view(tmp: Path) -> Iterator[KVStore]:
    with view_over(postgres_store, tmp) as view:
        yield view


@contextlib.contextmanager
def view_of_view(tmp: Path) -> Iterator[KVStore]:
    from kvstore.view import MutableView

    with view_over(memory_store, tmp) as view:
        yield MutableView(view)


@contextlib.contextmanager
def memory_transaction(tmp: Path) -> Iterator[KVStore]:
    import kvstore

    with kvstore.open() as db:
        tx = db.transaction()
        yield tx
        tx.rollback()


@contextlib.contextmanager
def lmdb_transaction(tmp: Path) -> Iterator[KVStore]:
    import kvstore

    with kvstore.open(tmp / "db", durability="none") as db:
        tx = db.transaction()
        yield tx
        tx.rollback()


@contextlib.contextmanager
def postgres_transaction(tmp: Path) -> Iterator[KVStore]:
    import kvstore
    from tests import pgserver

    with kvstore.open(pgserver.dsn(), table=pgserver.fresh_table(), durability="none") as db:
        tx = db.transaction()
        yield tx
        tx.rollback()


@contextlib.contextmanager
def prefix_store(tmp: Path) -> Iterator[KVStore]:
    from kvstore.backends.memory import MemoryStore
    from kvstore.prefix import PrefixStore

    with MemoryStore() as base:
        base.put(b"\x01", b"below")
        base.put(b"\x02", b"below")
        base.put(b"\x03\x00", b"above")
        base.put(b"\x02\xfe\xff", b"below")
        base.put(b"\x03", b"above")
        yield PrefixStore(base, b"\x02\xff")


FACTORIES: dict[str, StoreFactory] = {
    "memory": memory_store,
    "lmdb": lmdb_store,
    "view-memory": memory_view,
    "view-lmdb": lmdb_view,
    "view-of-view": view_of_view,
    "tx-memory": memory_transaction,
    "tx-lmdb": lmdb_transaction,
    "prefix": prefix_store,
    "postgres": postgres_store,
    "view-postgres": postgres_view,
    "tx-postgres": postgres_transaction,
}

#: Factories whose stores are AtomicKVStores (snapshot + atomic apply).
ATOMIC = ["memory", "lmdb", "postgres"]


def as_nobody(fn: Callable[[], bool]) -> int:
    """Run ``fn`` in a forked child without root rights; exit 0 if it returned True.

    1 if it returned False, 2 if it raised; root ignores file permissions, so tests of them
    run their reads as the ``nobody`` user.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            os.setgid(65534)
            os.setuid(65534)
            code = 0 if fn() else 1
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
