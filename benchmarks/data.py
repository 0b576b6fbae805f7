"""The standard data set, and the LMDB databases that hold it.

PERFORMANCE.md's standard data: keys of 16 random bytes, values of 100 bytes, drawn from a
fixed seed.  Keys come from one sequence, so the first 100,000 keys of the 1,000,000-key set
are the standard 100,000 keys.

A :class:`Fixture` holds one data set twice, in two directories built on first use: a raw
py-lmdb environment (loaded with a sorted ``putmulti``) and a kvstore ``LMDBStore`` (loaded
with one ``apply``).  Rows open and close them as they need; no two handles on one path are
open at once.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import lmdb

import kvstore

__all__ = [
    "KEY_SIZE",
    "RAW_MAP_SIZE",
    "VALUE_SIZE",
    "Dataset",
    "Fixture",
    "fresh_dir",
    "open_raw",
]

KEY_SIZE = 16
VALUE_SIZE = 100
#: Map size of the raw environments: room for 1,000,000 standard pairs and then some.  The
#: map is sparse on disk; kvstore's LMDBStore grows its own map.
RAW_MAP_SIZE = 4 << 30


class Dataset:
    """``n`` distinct random 16-byte keys with random 100-byte values, from ``seed``.

    ``items`` is in generation order (random key order), ``sorted_items`` in key order and
    ``lookups`` is the keys in a second, independent random order — the order of the random
    gets.
    """

    def __init__(self, n: int, seed: int) -> None:
        rng = random.Random(seed)
        pairs: dict[bytes, bytes] = {}
        while len(pairs) < n:
            key = rng.randbytes(KEY_SIZE)
            pairs.setdefault(key, rng.randbytes(VALUE_SIZE))
        self.n = n
        self.seed = seed
        self.items: list[tuple[bytes, bytes]] = list(pairs.items())
        self.keys: list[bytes] = list(pairs)
        self.sorted_items: list[tuple[bytes, bytes]] = sorted(self.items)
        self.lookups: list[bytes] = self.keys.copy()
        random.Random(seed + 1).shuffle(self.lookups)

    def other_keys(self, n: int, salt: int) -> list[bytes]:
        """``n`` random keys none of which is in this set (for writes that must not overlap)."""
        rng = random.Random(self.seed * 1000 + salt)
        mine = set(self.keys)
        out: dict[bytes, None] = {}
        while len(out) < n:
            key = rng.randbytes(KEY_SIZE)
            if key not in mine:
                out[key] = None
        return list(out)

    def new_values(self, n: int, salt: int) -> list[bytes]:
        """``n`` fresh random values (to overwrite keys with)."""
        rng = random.Random(self.seed * 1000 + 500 + salt)
        return [rng.randbytes(VALUE_SIZE) for _ in range(n)]


def open_raw(path: Path, *, sync: bool = False) -> lmdb.Environment:
    """A raw py-lmdb environment at ``path`` (a directory), as the raw side of a row uses it."""
    return lmdb.open(str(path), map_size=RAW_MAP_SIZE, sync=sync, metasync=sync)


@contextmanager
def fresh_dir(root: Path, prefix: str) -> Iterator[Path]:
    """A new empty directory under ``root``, deleted afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Fixture:
    """A data set plus a raw LMDB and a kvstore ``LMDBStore`` both holding it.

    The directories are built on first use, under ``root``; the caller deletes ``root``.
    """

    def __init__(self, data: Dataset, root: Path) -> None:
        self.data = data
        self.root = root

    @cached_property
    def raw_path(self) -> Path:
        """A raw py-lmdb environment holding the data set."""
        path = Path(tempfile.mkdtemp(prefix=f"raw-{self.data.n}-", dir=self.root))
        with open_raw(path) as env, env.begin(write=True) as txn:
            txn.cursor().putmulti(self.data.sorted_items)
        return path

    @cached_property
    def kv_path(self) -> Path:
        """A kvstore ``LMDBStore`` holding the data set."""
        path = Path(tempfile.mkdtemp(prefix=f"kv-{self.data.n}-", dir=self.root))
        with kvstore.LMDBStore(str(path), sync=False) as store:
            store.apply(kvstore.Writes(puts=self.data.sorted_items))
        return path
