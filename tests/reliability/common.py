"""Pieces the harness parts share: running a child Python, reading its outcome, and RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

#: The worktree root, so a child finds ``kvstore`` and ``tests`` whatever the caller's cwd.
ROOT = str(Path(__file__).resolve().parents[2])


def child_env() -> dict[str, str]:
    """The environment for a child Python: ours, with the worktree first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def spawn(module: str, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    """Start ``python -m module args...`` with piped, line-buffered text stdout and stderr."""
    return subprocess.Popen(
        [sys.executable, "-u", "-m", module, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )


def run(module: str, *args: str, timeout: float = 300) -> tuple[int, str, str]:
    """Run ``python -m module args...`` to the end: (returncode, stdout, stderr).

    A negative return code is the signal that killed the child.
    """
    proc = spawn(module, *args)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def signal_name(returncode: int) -> str:
    """``SIGBUS`` for a return code of -7; ``exit N`` for a normal exit."""
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"


def rss_bytes() -> int:
    """This process's resident set size now (not the peak), from ``/proc/self/statm``."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def dir_size(path: str) -> int:
    """The bytes the files directly in ``path`` take on disk (an LMDB store's data and lock)."""
    total = 0
    for entry in os.scandir(path):
        if entry.is_file():
            total += entry.stat().st_blocks * 512
    return total
