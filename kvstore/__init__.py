"""kvstore: a transactional, ordered key-value store with delta views, on LMDB.

The top-level names are loaded on first use, so ``import kvstore`` stays cheap and the core
never imports a layer until a layer's class is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kvstore.errors import (
    CommitUnknown,
    CorruptData,
    KVError,
    NotAKVStore,
    ReadOnlyError,
    RetryTransaction,
    StaleTransaction,
    StoreClosed,
    StoreFull,
    StoreUnavailable,
    TransactionConflict,
    TransactionTooOld,
)
from kvstore.keys import MAX_KEY_SIZE

if TYPE_CHECKING:
    from kvstore.backends.lmdb import LMDBStore
    from kvstore.backends.memory import MemoryStore
    from kvstore.conflicts import (
        Conflict,
        ReadAdjustConflict,
        ReadRemoveConflict,
        ReadWriteConflict,
    )
    from kvstore.database import Database, Transaction, open
    from kvstore.layers.graph import Association, Concept, ConcurrentMemory
    from kvstore.layers.persidict import MutationPolicyError, PersiDict
    from kvstore.layers.regions import AsyncRegionClient, RegionClient, RegionError, RegionInfo
    from kvstore.mutations import Mutations, Writes
    from kvstore.prefix import PrefixStore
    from kvstore.ranges import KeyRange, KeyRanges
    from kvstore.reads import Reads
    from kvstore.store import AtomicKVStore, KVPair, KVStore
    from kvstore.subspace import Subspace
    from kvstore.view import DeltaKVStore, MutableView

__version__ = "0.1.0"

_LAZY = {
    "open": "kvstore.database",
    "Database": "kvstore.database",
    "Transaction": "kvstore.database",
    "KVStore": "kvstore.store",
    "AtomicKVStore": "kvstore.store",
    "KVPair": "kvstore.store",
    "DeltaKVStore": "kvstore.view",
    "MutableView": "kvstore.view",
    "MemoryStore": "kvstore.backends.memory",
    "LMDBStore": "kvstore.backends.lmdb",
    "KeyRange": "kvstore.ranges",
    "KeyRanges": "kvstore.ranges",
    "Mutations": "kvstore.mutations",
    "Writes": "kvstore.mutations",
    "Reads": "kvstore.reads",
    "Conflict": "kvstore.conflicts",
    "ReadWriteConflict": "kvstore.conflicts",
    "ReadRemoveConflict": "kvstore.conflicts",
    "ReadAdjustConflict": "kvstore.conflicts",
    "Subspace": "kvstore.subspace",
    "PrefixStore": "kvstore.prefix",
    "PersiDict": "kvstore.layers.persidict",
    "MutationPolicyError": "kvstore.layers.persidict",
    "RegionClient": "kvstore.layers.regions",
    "ConcurrentMemory": "kvstore.layers.graph",
    "Concept": "kvstore.layers.graph",
    "Association": "kvstore.layers.graph",
    "AsyncRegionClient": "kvstore.layers.regions",
    "RegionInfo": "kvstore.layers.regions",
    "RegionError": "kvstore.layers.regions",
}

__all__ = [
    "open",
    "Database",
    "Transaction",
    "KVStore",
    "AtomicKVStore",
    "DeltaKVStore",
    "MutableView",
    "MemoryStore",
    "LMDBStore",
    "KVPair",
    "KeyRange",
    "KeyRanges",
    "Mutations",
    "Writes",
    "Reads",
    "Conflict",
    "ReadWriteConflict",
    "ReadRemoveConflict",
    "ReadAdjustConflict",
    "Subspace",
    "PrefixStore",
    "PersiDict",
    "RegionClient",
    "AsyncRegionClient",
    "RegionInfo",
    "ConcurrentMemory",
    "Concept",
    "Association",
    "MAX_KEY_SIZE",
    "KVError",
    "ReadOnlyError",
    "StaleTransaction",
    "RetryTransaction",
    "TransactionConflict",
    "TransactionTooOld",
    "CorruptData",
    "NotAKVStore",
    "StoreFull",
    "StoreClosed",
    "StoreUnavailable",
    "CommitUnknown",
    "RegionError",
    "MutationPolicyError",
]


_SUBMODULES = {"tuple"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"kvstore.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kvstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
