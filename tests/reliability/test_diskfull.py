"""Smoke version of the disk-full part, on a small tmpfs (or RLIMIT_FSIZE if mount is refused)."""

from __future__ import annotations

import pytest

from tests.reliability.diskfull import run_diskfull


@pytest.mark.slow
def test_full_filesystem_gives_store_full_and_loses_nothing() -> None:
    result = run_diskfull(2, create_on_full=False)
    assert result.rounds == 2
    assert result.acked > 0
    assert result.full_commits == 4, result.problems
    assert (result.losses, result.not_store_full, result.signal_deaths) == (0, 0, 0), (
        result.problems
    )


def test_creating_a_store_on_a_full_filesystem_raises_store_full() -> None:
    result = run_diskfull(1)
    assert result.create_on_full == ["StoreFull"], result.mode
