"""A throwaway PostgreSQL cluster for the tests: started once per session, on loopback.

``dsn()`` starts it on first use (``initdb`` into a temp directory, ``pg_ctl start`` on a
free 127.0.0.1 port, as the unprivileged ``postgres`` user when the tests run as root, since
the server refuses to run as root) and returns its URL; the session fixture in conftest.py
calls :func:`stop` at the end.  ``fresh_table()`` names a table no test used before, so each
test gets an empty store.  When the binaries are missing the tests skip with the reason —
unless the ``CI`` environment variable is set: then they fail, so CI never skips silently.

The cluster runs with ``fsync=off``: it is thrown away after the run, and durability is not
what these tests measure.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

_lock = threading.Lock()
_state: dict[str, object] = {}
_tables = itertools.count()


def _binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    candidates = [os.path.dirname(p) for p in (shutil.which("pg_ctl"),) if p]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for d in candidates:
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(
            os.path.join(d, "pg_ctl"), os.X_OK
        ):
            return Path(os.path.realpath(os.path.join(d, "pg_ctl"))).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_server_user() -> tuple[Callable[[], None] | None, int | None, int | None]:
    """How to drop root for the server's commands: (preexec_fn, uid, gid)."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "postgres"], check=True, capture_output=True
        )
        pw = pwd.getpwnam("postgres")
    uid, gid = pw.pw_uid, pw.pw_gid

    def drop() -> None:  # pragma: no cover - runs in the child
        os.setgid(gid)
        os.setuid(uid)

    return drop, uid, gid


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests need a PostgreSQL server: {reason}")


def _run(cmd: list[str], preexec: Callable[[], None] | None, env: dict[str, str]) -> None:
    done = subprocess.run(cmd, preexec_fn=preexec, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")


def start() -> str:
    """Start the cluster (once per process) and return its URL."""
    with _lock:
        if "dsn" in _state:
            return str(_state["dsn"])
        if "error" in _state:
            _unavailable(str(_state["error"]))
        bindir = _binaries()
        if bindir is None:
            _state["error"] = "initdb/pg_ctl not found (apt-get install -y postgresql)"
            _unavailable(str(_state["error"]))
        assert bindir is not None
        preexec, uid, gid = _as_server_user()
        root = Path(tempfile.mkdtemp(prefix="kvstore-pg-"))
        data = root / "data"
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if uid is not None and gid is not None:
            os.chmod(root, 0o700)
            os.chown(root, uid, gid)
        port = _free_port()
        try:
            _run(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--no-sync"],
                preexec, env,
            )  # fmt: skip
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
                " -c fsync=off -c full_page_writes=off -c max_connections=300"
                " -c shared_buffers=64MB"
            )
            _run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                 "-t", "60", "-o", options, "start"],
                preexec, env,
            )  # fmt: skip
        except (RuntimeError, OSError) as e:
            shutil.rmtree(root, ignore_errors=True)
            _state["error"] = str(e)
            _unavailable(str(e))
        _state.update(
            dsn=f"postgresql://postgres@127.0.0.1:{port}/postgres",
            root=root,
            bindir=bindir,
            preexec=preexec,
            env=env,
            port=port,
        )
        return str(_state["dsn"])


def dsn() -> str:
    """The URL of the session's cluster (started on first use)."""
    return start()


def fresh_table() -> str:
    """A table name no store of this session has used (unique across processes too)."""
    return f"t{os.getpid()}_{next(_tables)}"


def pg_ctl(action: str, *extra: str) -> None:
    """Run ``pg_ctl <action>`` on the session's cluster (stop, start, restart) for fault tests."""
    start()
    bindir = _state["bindir"]
    root = _state["root"]
    assert isinstance(bindir, Path) and isinstance(root, Path)
    port = _state["port"]
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
        " -c fsync=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"
    )
    cmd = [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-w"]
    if action in ("start", "restart"):
        cmd += ["-o", options]
    _run([*cmd, *extra, action], _state["preexec"], _state["env"])  # type: ignore[arg-type]


def stop() -> None:
    """Stop the cluster if this process started it, and delete its files."""
    with _lock:
        root = _state.pop("root", None)
        bindir = _state.get("bindir")
        _state.pop("dsn", None)
    if isinstance(root, Path) and isinstance(bindir, Path):
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
            preexec_fn=_state.get("preexec"),  # type: ignore[arg-type]
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
