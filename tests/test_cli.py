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


# -- load: strict input, nothing created on bad input, clean Ctrl-C (issue 9, defect 8) -------
def _run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvstore", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "line",
    [
        '{"key": "!!!", "value": ""}',  # used to store b"" and exit 0
        '{"key": "", "value": "a b"}',
        '{"key": "YQ", "value": ""}',  # missing padding
        '{"key": 5, "value": ""}',
        '["key", "value"]',
        '{"value": ""}',
        "not json",
        '{"key": "' + "A" * 1000 + '", "value": ""}',  # a 750-byte key: over MAX_KEY_SIZE
    ],
)
def test_load_rejects_a_bad_first_line_and_creates_nothing(tmp_path: Path, line: str) -> None:
    db = tmp_path / "db"
    result = _run_cli("load", str(db), stdin=line + "\n")
    assert result.returncode != 0
    assert result.stderr.strip().startswith("kvstore load: line 1 ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not db.exists()


def test_load_of_a_bad_later_line_names_it_and_loads_nothing(tmp_path: Path) -> None:
    db = tmp_path / "db"
    good = '{"key": "YQ==", "value": "Yg=="}\n'
    result = _run_cli("load", str(db), stdin=good + "\n" + '{"key": "!!!", "value": ""}\n')
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("kvstore load: line 3 ")
    if db.exists():
        with kvstore.open(db) as opened, opened.transaction() as tx:
            assert list(tx.get_range()) == []


def test_load_accepts_strict_base64(tmp_path: Path) -> None:
    db = tmp_path / "db"
    result = _run_cli("load", str(db), stdin='{"key": "IT8=", "value": ""}\n')
    assert result.returncode == 0, result.stderr
    with kvstore.open(db) as opened, opened.transaction() as tx:
        assert list(tx.get_range()) == [(b"!?", b"")]


def test_load_interrupted_exits_130_without_a_traceback(tmp_path: Path) -> None:
    import signal
    import time

    db = tmp_path / "db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvstore", "load", str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write('{"key": "YQ==", "value": "Yg=="}\n')
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while not db.exists():  # the first line was read: load is waiting for the next
            assert time.monotonic() < deadline, "load never opened the database"
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip() == "kvstore load: interrupted"
    with kvstore.open(db) as opened, opened.transaction() as tx:
        assert list(tx.get_range()) == []  # the partial load was rolled back
