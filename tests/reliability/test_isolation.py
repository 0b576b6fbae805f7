"""Smoke version of the isolation part: hypothesis drives PrefixStore over memory and LMDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.backends.lmdb import LMDBStore
from kvstore.backends.memory import MemoryStore
from kvstore.store import KVStore
from tests.reliability.isolation import OPS, PREFIXES, check_isolation


@pytest.fixture(scope="module", params=["memory", "lmdb"])
def base(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KVStore]:
    if request.param == "memory":
        with MemoryStore() as store:
            yield store
    else:
        path: Path = tmp_path_factory.mktemp("iso") / "db"
        with LMDBStore(path, sync=False) as store:
            yield store


@settings(max_examples=150)
@given(prefix=st.sampled_from(PREFIXES), ops=st.lists(OPS, min_size=1, max_size=25))
def test_prefix_store_never_escapes(base: KVStore, prefix: bytes, ops: list[Any]) -> None:
    check_isolation(base, prefix, ops)
