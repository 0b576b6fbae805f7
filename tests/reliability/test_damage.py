"""Smoke version of the damage part: the fixed truncations and page damages, then random ones."""

from __future__ import annotations

from tests.reliability.damage import run_damage


def test_truncations_and_page_damage_never_crash() -> None:
    result = run_damage(0)
    assert result.cases > 150
    assert result.crashes == 0, result.problems
    assert result.corrupt > 0  # the cases do reach the checks


def test_random_zero_ranges_and_bit_flips_never_crash() -> None:
    result = run_damage(400, seed=1)
    assert result.crashes == 0, result.problems
