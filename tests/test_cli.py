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
    missing = tmp_path / "missing"
    assert main(["dump", str(missing)]) == 1
    err = capsys.readouterr().err
    # One line: the path and the cause as a user reads them, no errno or internal flags.
    cause = "no LMDB store here (opening read-only creates nothing)"
    assert err == f"kvstore dump: {missing}: {cause}\n"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["stats", str(afile)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"kvstore stats: {afile}: ") and "directory" in err
    assert "Errno" not in err and "readonly" not in err and err.count("\n") == 1


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


# -- load streams, dump selects, stats counts, backup copies (issue 13) ------------------------
def _dump_lines(pairs: list[tuple[bytes, bytes]]) -> str:
    import base64
    import json

    return "".join(
        json.dumps({"key": base64.b64encode(k).decode(), "value": base64.b64encode(v).decode()})
        + "\n"
        for k, v in pairs
    )


def _contents(path: Path) -> list[tuple[bytes, bytes]]:
    with kvstore.open(path) as db, db.transaction() as tx:
        return [(p.key, p.value) for p in tx.get_range()]


PAIRS = [(b"k%02d" % i, b"v%d" % i) for i in range(10)]


def test_load_commits_in_batches_and_says_how_far_it_got(tmp_path: Path) -> None:
    db = tmp_path / "db"
    text = _dump_lines(PAIRS[:7]) + "not json\n" + _dump_lines(PAIRS[7:])
    with pytest.raises(SystemExit) as e:
        kvstore.cli.load(str(db), io.StringIO(text), batch=3)
    assert str(e.value) == (
        "kvstore load: line 8 is not a dump line: Expecting value: line 1 column 1 (char 0)"
        "; 6 pairs before it were committed"
    )
    assert _contents(db) == PAIRS[:6]  # two whole batches; the third was rolled back


def test_load_atomic_loads_nothing_on_a_bad_line(tmp_path: Path) -> None:
    db = tmp_path / "db"
    text = _dump_lines(PAIRS[:7]) + "not json\n"
    with pytest.raises(SystemExit, match=r"line 8 [^;]*$"):
        kvstore.cli.load(str(db), io.StringIO(text), atomic=True, batch=3)
    assert _contents(db) == []


def test_load_merges_into_an_existing_store_from_a_file(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with kvstore.open(db) as opened, opened.transaction() as tx:
        tx.put(b"k00", b"old")
        tx.put(b"zz", b"kept")
    dump_file = tmp_path / "dump.jsonl"
    dump_file.write_text(_dump_lines(PAIRS))
    result = _run_cli("load", str(db), str(dump_file))
    assert result.returncode == 0, result.stderr
    assert _contents(db) == [*PAIRS, (b"zz", b"kept")]
    result = _run_cli("load", str(db), str(tmp_path / "missing.jsonl"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "missing.jsonl" in result.stderr


def test_dump_selects_by_prefix_and_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    pairs = [(b"a/1", b"x"), (b"a/2", b"y"), (b"b/1", b"z"), (b"\xff\x00", b"w")]
    with kvstore.open(db) as opened, opened.transaction() as tx:
        for k, v in pairs:
            tx.put(k, v)

    def dumped(*options: str) -> str:
        assert main(["dump", str(db), *options]) == 0
        return capsys.readouterr().out

    assert dumped("--prefix", "a/") == _dump_lines(pairs[:2])
    assert dumped("--start", "a/2", "--end", "b/2") == _dump_lines(pairs[1:3])
    assert dumped("--prefix", "a/", "--start", "a/2") == _dump_lines(pairs[1:2])
    assert dumped("--prefix", "/w==", "--base64") == _dump_lines(pairs[3:])
    assert dumped("--start", "b", "--end", "a") == ""
    assert main(["dump", str(db), "--prefix", "!!", "--base64"]) == 1
    assert "--prefix is not valid base64" in capsys.readouterr().err


def test_stats_counts_keys_and_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    db = tmp_path / "db"
    with kvstore.open(db) as opened, opened.transaction() as tx:
        for k, v in PAIRS:
            tx.put(k, v)
    assert main(["stats", str(db)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["keys"], s["key_bytes"], s["value_bytes"]) == (10, 30, 20)
    assert s["version"] == 1 and s["size_bytes"] > 0


def test_backup_copies_consistently_and_compacts(tmp_path: Path) -> None:
    db, copy = tmp_path / "db", tmp_path / "copy"
    with kvstore.open(db, durability="none") as opened:
        with opened.transaction() as tx:
            for i in range(20_000):
                tx.put(b"big%05d" % i, b"x" * 200)
        with opened.transaction() as tx:
            tx.remove_range(b"big", b"bih")
            tx.put(b"k", b"v")
    result = _run_cli("backup", str(db), str(copy))
    assert result.returncode == 0, result.stderr
    assert _contents(copy) == [(b"k", b"v")]
    assert (copy / "data.mdb").stat().st_size < (db / "data.mdb").stat().st_size / 4
    result = _run_cli("backup", str(db), str(copy))  # not empty now: refused, untouched
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not an empty directory" in result.stderr
    assert _contents(copy) == [(b"k", b"v")]


def test_backup_api_refuses_bad_arguments(tmp_path: Path) -> None:
    with kvstore.LMDBStore(tmp_path / "db") as store:
        with pytest.raises(TypeError, match="dest"):
            store.backup(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="compact"):
            store.backup(tmp_path / "c", compact="yes")  # type: ignore[arg-type]
        assert not (tmp_path / "c").exists()


def test_help_explains_the_dump_format_and_merging() -> None:
    dump_help = _run_cli("dump", "--help").stdout
    assert "base64" in dump_help and "JSON" in dump_help
    load_help = _run_cli("load", "--help").stdout
    assert "merge" in load_help and "--atomic" in load_help
    assert "backup" in _run_cli("--help").stdout
