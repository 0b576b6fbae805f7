"""Disk full: create, grow and commit on a full filesystem; ``StoreFull`` every time, no loss.

The harness mounts a size-limited tmpfs (``mount -t tmpfs -o size=...``; root only) and
always unmounts it.  Where mounting is refused it falls back to ``RLIMIT_FSIZE`` in the child
(and says so in :attr:`DiskFullResult.mode`).  Each round:

1. *create on a full filesystem*: a filler file takes every free byte, then a child opens a
   new store there -- it must raise ``StoreFull`` (issue 9 defect 2: it dies by SIGBUS);
2. *grow and commit until full*: a child commits 2 KB values (the map starts small, so it
   grows) until a commit raises ``StoreFull``, tries once more (``StoreFull`` again), and
   prints ``ack N`` after each commit that returned;
3. a checker child reopens the store: every acknowledged commit is there;
4. space is freed (the filler removed) and a child commits again: it must work.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.reliability.common import run, signal_name


@dataclass
class DiskFullResult:
    """Counts; ``losses``, ``not_store_full`` and ``signal_deaths`` must stay 0."""

    mode: str = ""
    rounds: int = 0
    full_commits: int = 0
    acked: int = 0
    losses: int = 0
    not_store_full: int = 0
    signal_deaths: int = 0
    create_on_full: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@contextlib.contextmanager
def limited_dir(size: int, directory: str | None = None) -> Iterator[tuple[str, str, int]]:
    """A directory on a filesystem of ``size`` bytes: ``(path, mode, rlimit)``.

    ``mode`` is ``"tmpfs"`` (then ``rlimit`` is 0) or ``"RLIMIT_FSIZE"`` (mounting was
    refused; children must limit their file size to ``rlimit`` bytes).
    """
    with tempfile.TemporaryDirectory(prefix="kv-full-", dir=directory) as tmp:
        mnt = os.path.join(tmp, "mnt")
        os.mkdir(mnt)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            yield mnt, f"RLIMIT_FSIZE (mount refused: {done.stderr.strip()})", size
            return
        try:
            yield mnt, "tmpfs", 0
        finally:
            subprocess.run(["umount", "-l", mnt], check=False)


def _fill(path: str) -> None:
    """Write ``path`` until the filesystem is full (ENOSPC)."""
    chunk = b"\0" * (64 << 10)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


def run_diskfull(
    rounds: int, *, size: int = 8 << 20, create_on_full: bool = True, directory: str | None = None
) -> DiskFullResult:
    """Run ``rounds`` rounds of the checks above on a ``size``-byte filesystem."""
    result = DiskFullResult()
    with limited_dir(size, directory) as (mnt, mode, rlimit):
        result.mode = mode
        for rnd in range(rounds):
            result.rounds += 1
            filler = os.path.join(mnt, "filler")
            db = os.path.join(mnt, f"db{rnd}")
            if create_on_full:
                if rlimit:
                    outcome = _outcome(run(_MOD, "create", db, "1"))
                else:
                    _fill(filler)
                    outcome = _outcome(run(_MOD, "create", db, "0"))
                    os.remove(filler)
                result.create_on_full.append(outcome)
                shutil.rmtree(db, ignore_errors=True)
            # Keep 1 MiB in reserve, to free once the store has filled the rest.
            with open(filler, "wb") as f:
                f.write(b"\0" * (1 << 20))
            code, out, err = run(_MOD, "fill", db, str(rlimit))
            acked = [line[4:] for line in out.splitlines() if line.startswith("ack ")]
            result.acked += len(acked)
            fulls = [line for line in out.splitlines() if line.startswith("full ")]
            result.full_commits += len(fulls)
            if code < 0:
                result.signal_deaths += 1
                result.problems.append(f"round {rnd} fill: {signal_name(code)}: {err[-300:]}")
            elif code != 0 or len(fulls) != 2:
                result.not_store_full += 1
                result.problems.append(f"round {rnd} fill: exit {code}: {out[-200:]} {err[-300:]}")
            os.remove(filler)
            ack_file = os.path.join(mnt, "acked")
            with open(ack_file, "w") as f:
                f.write("\n".join(acked))
            code, out, err = run(_MOD, "check", db, ack_file)
            os.remove(ack_file)
            if code < 0:
                result.signal_deaths += 1
                result.problems.append(f"round {rnd} check: {signal_name(code)}")
            elif code != 0:
                result.losses += len(out.split()) or 1
                result.problems.append(f"round {rnd} lost: {out[:200]} {err[-300:]}")
            code, out, err = run(_MOD, "again", db, "0")
            if code != 0:
                result.problems.append(
                    f"round {rnd} after freeing: {signal_name(code)} {err[-300:]}"
                )
                result.signal_deaths += code < 0
                result.not_store_full += code > 0
            shutil.rmtree(db, ignore_errors=True)
    return result


_MOD = "tests.reliability.diskfull"


def _outcome(done: tuple[int, str, str]) -> str:
    code, out, err = done
    if code < 0:
        return signal_name(code)
    return out.strip() or f"exit {code}: {err.strip()[-200:]}"


def _limit(rlimit: int) -> None:
    if rlimit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (rlimit, rlimit))


def _child(argv: list[str]) -> int:
    import kvstore

    mode, path, arg = argv
    if mode == "create":
        _limit(int(arg))
        try:
            kvstore.open(path).close()
        except kvstore.StoreFull:
            print("StoreFull")
            return 0
        except Exception as e:
            print(f"{type(e).__name__}: {e}")
            return 1
        print("created")
        return 0
    if mode == "fill":
        _limit(int(arg))
        with kvstore.open(path, map_size=1 << 20) as db:
            fulls = 0
            i = 0
            while fulls < 2:
                tx = db.transaction()
                tx.put(b"k%07d" % i, os.urandom(1000).hex().encode())
                try:
                    tx.commit()
                except kvstore.StoreFull:
                    fulls += 1
                    print(f"full {i}", flush=True)
                    continue
                print(f"ack {i}", flush=True)
                i += 1
        return 0
    if mode == "check":
        with open(arg) as f:
            acked = [int(line) for line in f.read().split()]
        with kvstore.open(path, create=False) as db, db.transaction(read_only=True) as tx:
            present = {int(k[1:]) for k, _ in tx.get_range(b"k", b"l")}
        missing = [n for n in acked if n not in present]
        print(" ".join(map(str, missing[:20])))
        return 1 if missing else 0
    if mode == "again":
        with kvstore.open(path) as db:
            for i in range(20):
                with db.transaction() as tx:
                    tx.put(b"again%02d" % i, b"x" * 1000)
        return 0
    raise SystemExit(f"usage: diskfull create|fill|check|again PATH ARG, not {mode!r}")


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
