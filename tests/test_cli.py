"""The command line: demo, dump/load, stats."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import kvstore
from kvstore.cli import main


def test_demo_runs_and_reports_an_intact_total(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kvstore", "demo", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "read/write conflict on key b'account/0'" in result.stdout
    assert "intact" in result.stdout
    assert "2 processes" in result.stdout


def test_dump_then_load_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "a", tmp_path / "b"
    with kvstore.open(source) as db, db.transaction() as tx:
        tx.put(b"", b"empty key")
        tx.put(b"\x00\xff", b"\x01\x02")
    assert main(["dump", str(source)]) == 0
    dumped = capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO(dumped))
    assert main(["load", str(target)]) == 0
    with kvstore.open(target) as db, db.transaction() as tx:
        assert list(tx.get_range()) == [(b"", b"empty key"), (b"\x00\xff", b"\x01\x02")]
    assert main(["stats", str(target)]) == 0
    assert '"version": 1' in capsys.readouterr().out


def test_load_rejects_a_bad_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json\n"))
    with pytest.raises(SystemExit, match="line 1"):
        main(["load", str(tmp_path / "db")])


def test_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dump", str(tmp_path / "missing")]) == 1
    assert "kvstore dump" in capsys.readouterr().err
