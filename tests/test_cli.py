"""The command line: demo, dump/load, stats."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kvstore
import kvstore.cli
from kvstore.cli import main
from tests.storekit import as_nobody


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


# -- read-only commands never write (issue 9, defect 4) ---------------------------------------
def _fingerprint(path: Path) -> tuple[bytes, int, list[str]]:
    data = path / "data.mdb"
    return data.read_bytes(), data.stat().st_mtime_ns, sorted(os.listdir(path))


def test_stats_and_dump_do_not_write_into_a_plain_lmdb_environment(tmp_path: Path) -> None:
    import lmdb

    path = tmp_path / "plain"
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"user", b"data")
    env.close()
    before = _fingerprint(path)
    for command in ("stats", "dump"):
        result = _run_cli(command, str(path))
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "not a kvstore" in result.stderr
        assert _fingerprint(path) == before  # stats used to create kvstore's databases in it


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_stats_and_dump_work_on_read_only_files() -> None:
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp())  # not under pytest's root-only directory: see nobody below
    path = top / "db"
    with kvstore.open(path) as db, db.transaction() as tx:
        tx.put(b"k", b"v")
    expected_dump = '{"key": "aw==", "value": "dg=="}\n'
    modes = {p: p.stat().st_mode for p in (path, *path.iterdir())}
    os.chmod(top, 0o755)
    try:
        for p in path.iterdir():
            os.chmod(p, 0o444)
        os.chmod(path, 0o555)
        before = _fingerprint(path)
        # As this user (root can write anyway: then what matters is that nothing was written).
        result = _run_cli("stats", str(path))
        assert result.returncode == 0, result.stderr
        assert '"version": 1' in result.stdout
        result = _run_cli("dump", str(path))
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected_dump
        assert _fingerprint(path) == before
        if os.geteuid() == 0:  # and as a user the files really are read-only to

            def read_both() -> bool:
                out = io.StringIO()
                return (
                    main(["dump", str(path)]) == 0
                    and kvstore.cli.dump(str(path), out) == 0
                    and out.getvalue() == expected_dump
                    and kvstore.cli.stats(str(path), io.StringIO()) == 0
                )

            assert as_nobody(read_both) == 0
            assert _fingerprint(path) == before
    finally:
        for p, mode in modes.items():
            os.chmod(p, mode)
        shutil.rmtree(top)


def test_version() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "kvstore", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.strip() == f"kvstore {kvstore.__version__}"


def test_dump_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with kvstore.LMDBStore(path) as store:
        for i in range(50_000):
            store.put(b"key%06d" % i, b"v" * 50)
    r = subprocess.run(
        f"{sys.executable} -m kvstore dump {path} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        executable="/bin/bash",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert r.stdout.count("\n") == 1
    assert r.stderr == ""
    r = subprocess.run(
        f"set -o pipefail; {sys.executable} -m kvstore dump {path} | head -n 1 > /dev/null",
        shell=True,
        capture_output=True,
        executable="/bin/bash",
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert r.returncode == 0, r.stderr
