"""Smoke version of the soak part: 4 processes x 2 threads for about 10 seconds."""

from __future__ import annotations

import pytest

from tests.reliability.soak import run_soak


@pytest.mark.slow
def test_mixed_load_is_serializable_and_flat() -> None:
    result = run_soak(8.0)
    assert result.failures == []
    assert result.commits > 100
    assert len(result.rss_end) == 4
    assert result.rss_growth < 32 << 20  # the long run holds this over minutes
    assert result.file_end < 64 << 20
