"""The README's tour runs as written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.read_text().split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert lines == ["pip install . && kvstore demo", "pip install tox && tox"]


def test_tour_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = README.read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    printed = text.split("It prints:\n\n```text\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README tour", "exec"), {})
    assert capsys.readouterr().out == printed  # the output the README shows, exactly
    assert os.path.isdir(tmp_path / "data" / "bank")
