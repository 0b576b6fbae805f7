"""Smoke version of the fuzz part: corpus plus random mutations of every target, no atheris."""

from __future__ import annotations

import pytest

from tests.reliability.fuzz import TARGET_NAMES, corpus, run_random, targets


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_deserializer_raises_only_documented_errors(target: str) -> None:
    assert corpus(target), f"no seed corpus for {target}"
    result = run_random(target, 3000, seed=9)
    assert result.executions > 3000
    assert result.crashes == 0, result.problems


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_seed_corpus_is_valid_input(target: str) -> None:
    # The seeds must decode, or the fuzzer starts from nothing.
    for data in corpus(target):
        targets()[target].fn(data)
