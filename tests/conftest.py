"""Shared test configuration: hypothesis profiles, the PostgreSQL cluster, the ``db`` fixture.

The ``db`` fixture runs each test on memory, LMDB and PostgreSQL; the throwaway PostgreSQL
cluster (tests/pgserver.py) is started by the first test that needs it and stopped at the
end of the session.

``HYPOTHESIS_PROFILE=ci`` (set by tox) keeps the property tests thorough but bounded in time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import kvstore
from kvstore import Database
from tests import pgserver

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session", autouse=True)
def postgres_cluster() -> Iterator[None]:
    """Stop the session's PostgreSQL cluster at the end, if any test started it."""
    yield
    pgserver.stop()


@pytest.fixture
def pg_dsn() -> str:
    """The URL of the session's PostgreSQL cluster (skips, or fails under CI, without one)."""
    return pgserver.dsn()


@pytest.fixture(params=["memory", "lmdb", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgres":
        dsn = pgserver.dsn()
        with kvstore.open(dsn, table=pgserver.fresh_table(), durability="none") as d:
            yield d
        return
    path = None if request.param == "memory" else tmp_path / "db"
    with kvstore.open(path, durability="none") as d:
        yield d
