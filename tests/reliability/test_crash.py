"""Smoke version of the crash part: 20 SIGKILLs over the core, regions and graph writers."""

from __future__ import annotations

import pytest

from tests.reliability.crash import run_crash


@pytest.mark.slow
def test_killed_writers_lose_no_acknowledged_commit() -> None:
    result = run_crash(20, max_delay=1.0, big_every=6, check_every=2, seed=9)
    assert result.kills == 20
    assert result.acked > 0
    assert (result.lost, result.corrupt, result.signal_deaths, result.writer_errors) == (
        0,
        0,
        0,
        0,
    ), result.problems


def test_unknown_writer_is_named() -> None:
    with pytest.raises(ValueError, match="writers"):
        run_crash(1, ["nope"])
