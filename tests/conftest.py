"""Shared test configuration: hypothesis profiles, and the ``db`` fixture (memory and LMDB).

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

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(params=["memory", "lmdb"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    path = None if request.param == "memory" else tmp_path / "db"
    with kvstore.open(path, durability="none") as d:
        yield d
