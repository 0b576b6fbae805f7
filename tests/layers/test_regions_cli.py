"""``kvstore memory <verb>`` as a user runs it: real subprocesses on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kvstore
from kvstore.layers.regions import RegionClient, grant


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "kvstore", "memory", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_every_verb_round_trip(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    r = run("allocate", "--db", db, "files", "blob", "10")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["size"] == 10
    payload = os.urandom(3 * 65536 + 17)
    src = tmp_path / "in.bin"
    src.write_bytes(payload)
    r = run("write", "--db", db, "--offset", "5", "files", "blob", str(src))
    assert r.returncode == 0, r.stderr
    info = json.loads(run("describe", "--db", db, "files", "blob").stdout)
    assert (info["size"], info["data_length"]) == (5 + len(payload), 5 + len(payload))
    out = tmp_path / "out.bin"
    r = run("read", "--db", db, "files", "blob", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == bytes(5) + payload
    r = run("read", "--db", db, "--offset", "5", "--length", "4", "files", "blob")
    assert r.stdout == payload[:4]
    r = run("write", "--db", db, "files", "blob", "-", stdin=b"STDIN")
    assert r.returncode == 0, r.stderr
    r = run("read", "--db", db, "--length", "6", "files", "blob")
    assert r.stdout == b"STDIN" + payload[:1]
    run("allocate", "--db", db, "files", "blob2", "1")
    assert run("list", "--db", db, "files").stdout.split() == [b"blob", b"blob2"]
    assert run("list", "--db", db, "files", "blob2").stdout.split() == [b"blob2"]
    r = run("resize", "--db", db, "files", "blob", "3")
    assert json.loads(r.stdout)["data_length"] == 3
    assert run("free", "--db", db, "files", "blob").returncode == 0
    assert run("list", "--db", db, "files").stdout.split() == [b"blob2"]


def test_errors_are_one_line_with_the_code(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    run("allocate", "--db", db, "ns", "r", "4")
    cases = [
        (("allocate", "--db", db, "ns", "r", "4"), "ALREADY_EXISTS"),
        (("describe", "--db", db, "ns", "missing"), "NOT_FOUND"),
        (("read", "--db", db, "--length", "5", "ns", "r"), "OUT_OF_RANGE"),
        (("free", "--db", db, "ns", "missing"), "NOT_FOUND"),
        (("allocate", "--db", db, "ns", "a\x01" * 200, "1"), "INVALID_ARGUMENT"),
        (("describe", "--db", str(tmp_path / "nowhere"), "ns", "r"), "no database"),
    ]
    for args, code in cases:
        r = run(*args)
        assert r.returncode == 1, (args, r.stderr)
        err = r.stderr.decode()
        assert code in err and "Traceback" not in err and err.count("\n") == 1, err
    r = run("allocate", "--db", db, "ns", "k", "-3")
    assert r.returncode == 2 and b"must be >= 0" in r.stderr


def test_credential(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with kvstore.open(path) as database:
        RegionClient(database).allocate_memory("team", "r", 4)
        grant(database, "team", "pw", access="read")
    r = run("describe", "--db", str(path), "team", "r")
    assert r.returncode == 1 and b"PERMISSION_DENIED" in r.stderr
    r = run("describe", "--db", str(path), "--credential", "pw", "team", "r")
    assert r.returncode == 0, r.stderr
    r = run("write", "--db", str(path), "--credential", "pw", "team", "r", "-", stdin=b"x")
    assert r.returncode == 1 and b"PERMISSION_DENIED" in r.stderr


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    db = str(tmp_path / "db")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(6 * 1024 * 1024))
    run("allocate", "--db", db, "ns", "big", "0")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real size
    try:
        r = subprocess.run(
            [sys.executable, "-m", "kvstore", "memory", "write", "--db", db, "ns", "big", str(src)],
            stderr=slave,
            stdout=subprocess.PIPE,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],
        )
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert r.returncode == 0
    assert b"write" in seen and b"100%" in seen
    quiet = run("read", "--db", db, "ns", "big", "-o", str(tmp_path / "o.bin"))
    assert quiet.stderr == b""
    assert (tmp_path / "o.bin").read_bytes() == src.read_bytes()
