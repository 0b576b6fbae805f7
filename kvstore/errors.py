"""The error classes of kvstore.

Every error the package defines derives from :class:`KVError`, so callers can catch the whole
family at once.  Bad arguments are not in this family: they raise the built-in ``TypeError``
or ``ValueError`` with a message naming the argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kvstore.conflicts import Conflict

__all__ = [
    "CommitUnknown",
    "CorruptData",
    "KVError",
    "NotAKVStore",
    "ReadOnlyError",
    "RetryTransaction",
    "StaleTransaction",
    "StoreClosed",
    "StoreFull",
    "StoreUnavailable",
    "TransactionConflict",
    "TransactionTooOld",
]


class KVError(Exception):
    """Base of every error kvstore defines."""


class ReadOnlyError(KVError):
    """A mutation was attempted on a read-only store, snapshot, view or transaction."""


class StaleTransaction(KVError):
    """The transaction has already ended (committed, rolled back or failed)."""


class RetryTransaction(KVError):
    """The transaction failed for a reason a retry may cure.

    ``attempts`` is set by :meth:`kvstore.Database.run` to the number of attempts made when
    retries ran out; it is ``1`` for an error raised by a single commit.
    """

    attempts: int = 1


class TransactionConflict(RetryTransaction):
    """Commit found that data this transaction read was changed by a later commit."""

    def __init__(self, message: str, conflicts: Sequence[Conflict] = ()) -> None:
        super().__init__(message)
        self.conflicts: list[Conflict] = list(conflicts)


class TransactionTooOld(RetryTransaction):
    """The transaction's snapshot is older than the commit history the database keeps."""


class CorruptData(KVError, ValueError):
    """Serialized or stored data is damaged, truncated, of the wrong version or hostile."""


class NotAKVStore(CorruptData):
    """The LMDB environment at the path was not made by kvstore (it holds other databases).

    Opening one for writing would write kvstore's databases into it, so it is refused unless
    asked for with ``LMDBStore(path, adopt=True)``.  A ``CorruptData`` (so a ``ValueError``)
    because to kvstore the path does not hold a valid store.
    """


class StoreFull(KVError):
    """The disk holding the store is full; nothing committed before was lost."""


class StoreClosed(KVError):
    """The store (or the view, snapshot or database over it) has been closed."""


class StoreUnavailable(KVError):
    """The store cannot be reached (a server backend is down, unreachable or restarting).

    Nothing was changed by the operation that raised it.
    """


class CommitUnknown(KVError):
    """A commit's outcome is unknown: the connection dropped after it was sent.

    The commit may or may not have been applied; it is never retried automatically, since
    running it twice could apply it twice.  Read the data back to find out.
    """
