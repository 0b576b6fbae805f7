"""The ``kvstore`` command line: demo, dump, load, stats, bench, memory and graph.

``kvstore demo`` is the tour of the project's main job on the embedded LMDB default:
concurrent transactions from threads and processes, a conflict detected and retried, and a
delta shipped to a second store.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import importlib
import importlib.metadata
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import kvstore
from kvstore.counters import decode_counter, encode_counter
from kvstore.keys import check_key, prefix_end
from kvstore.layers import graph_cli, regions_cli
from kvstore.progress import Progress

__all__ = ["main"]

_ACCOUNTS = [b"account/%d" % i for i in range(4)]


def _say(out: TextIO, text: str = "") -> None:
    print(text, file=out, flush=True)


def _transfer(tx: kvstore.Transaction, src: bytes, dst: bytes, amount: int) -> None:
    a = decode_counter(tx.get(src) or encode_counter(0))
    b = decode_counter(tx.get(dst) or encode_counter(0))
    tx.put(src, encode_counter(a - amount))
    tx.put(dst, encode_counter(b + amount))
    tx.adjust_counter(b"stats/transfers", 1)


def _demo_process(path: str, seed: int, count: int) -> None:
    """A second process running transfers on the same database path."""
    with kvstore.open(path, durability="none") as db:
        for i in range(count):
            src = _ACCOUNTS[(seed + i) % len(_ACCOUNTS)]
            dst = _ACCOUNTS[(seed + i + 1) % len(_ACCOUNTS)]
            db.run(_transfer, src, dst, 1)


def demo(directory: str | None, out: TextIO) -> int:
    """Run the tour; return the exit status."""
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="kvstore-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    path = str(root / "bank")
    _say(out, f"kvstore demo — an LMDB database at {path}")

    with kvstore.open(path, durability="none") as db:
        with db.transaction() as tx:
            for account in _ACCOUNTS:
                tx.put(account, encode_counter(100))
            tx.put(b"stats/transfers", encode_counter(0))
        _say(out, f"1. Opened it and funded {len(_ACCOUNTS)} accounts with 100 each.")

        # A conflict, detected and retried.
        t1 = db.transaction()
        balance = decode_counter(t1.get(_ACCOUNTS[0]) or b"")
        with db.transaction() as t2:
            _transfer(t2, _ACCOUNTS[0], _ACCOUNTS[1], 10)
        t1.put(_ACCOUNTS[0], encode_counter(balance - 5))
        try:
            t1.commit()
            _say(out, "2. Unexpected: the stale write committed.")
            return 1
        except kvstore.TransactionConflict as e:
            _say(out, f"2. Two transactions raced on {_ACCOUNTS[0]!r}; the second to commit got:")
            for conflict in e.conflicts:
                _say(out, f"     {conflict}")
        attempts: list[int] = []

        def withdraw(tx: kvstore.Transaction) -> int:
            attempts.append(1)
            value = decode_counter(tx.get(_ACCOUNTS[0]) or b"")
            if len(attempts) == 1:  # someone else commits meanwhile: forces one retry
                with db.transaction() as other:
                    _transfer(other, _ACCOUNTS[2], _ACCOUNTS[0], 1)
            tx.put(_ACCOUNTS[0], encode_counter(value - 5))
            return value - 5

        left = db.run(withdraw)
        _say(out, f"   db.run retried it: {len(attempts)} attempts, balance now {left}.")

        # Threads and a second process, all at once.
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_demo_process, args=(path, s, 50)) for s in (1, 2)]
        for p in procs:
            p.start()

        def thread_work(seed: int) -> None:
            for i in range(50):
                src = _ACCOUNTS[(seed + i) % len(_ACCOUNTS)]
                dst = _ACCOUNTS[(seed + 2 * i + 1) % len(_ACCOUNTS)]
                if src != dst:
                    db.run(_transfer, src, dst, 1)

        threads = [threading.Thread(target=thread_work, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in procs:
            p.join()
            if p.exitcode != 0:
                _say(out, f"   a worker process failed (exit {p.exitcode})")
                return 1
        with db.transaction(read_only=True) as tx:
            balances = {k: decode_counter(tx.get(k) or b"") for k in _ACCOUNTS}
            transfers = decode_counter(tx.get(b"stats/transfers") or b"")
        stats = db.stats()
        total = sum(balances.values())
        expected = 100 * len(_ACCOUNTS) - 5
        _say(out, "3. Ran transfers from 3 threads and 2 processes at once.")
        _say(
            out,
            f"   {transfers} transfers committed; this process saw {stats.conflicts} "
            f"conflicts and {stats.retries} retries.",
        )
        _say(
            out,
            f"   Balances: {', '.join(str(v) for v in balances.values())} — total {total}"
            f" ({'intact' if total == expected else 'WRONG'}: 400 funded, 5 withdrawn).",
        )

        # Ship a delta to a second store.
        tx = db.transaction()
        tx.put(b"note/hello", b"shipped")
        tx.remove_range(b"stats/", b"stats0")
        blob = tx.writes.serialize()
        tx.rollback()
        replica = kvstore.MemoryStore()
        for key, value in db.store.get_range():
            replica.put(key, value)
        kvstore.Writes.deserialize(blob).apply_to(replica)
        _say(out, f"4. Recorded a delta in a transaction, serialized it ({len(blob)} bytes) and")
        _say(
            out,
            f"   applied it to an in-memory replica: note/hello = {replica.get(b'note/hello')!r}, "
            f"stats/ removed = {replica.get(b'stats/transfers') is None}.",
        )
        _say(out, f"Done. Database version {db.stats().version}, {stats.size_bytes} bytes on disk.")
        return 0 if total == expected else 1


#: Pairs per transaction of a streaming ``load`` (bounded memory, whatever the input size).
LOAD_BATCH = 10_000


def _bound(text: str | None, as_base64: bool, name: str) -> bytes | None:
    """A key bound given on the command line: UTF-8 text, or base64 with ``--base64``."""
    if text is None:
        return None
    if not as_base64:
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(f"{name} is not valid base64 ({e})") from None


def dump_range(
    prefix: str | None, start: str | None, end: str | None, as_base64: bool
) -> tuple[bytes | None, bytes | None]:
    """The ``[min, max)`` key range that ``dump``'s ``--prefix``/``--start``/``--end`` select."""
    lo = _bound(start, as_base64, "--start")
    hi = _bound(end, as_base64, "--end")
    p = _bound(prefix, as_base64, "--prefix")
    if p is not None:
        lo = p if lo is None else max(lo, p)
        p_end = prefix_end(p)
        hi = p_end if hi is None else (hi if p_end is None else min(hi, p_end))
    if lo is not None and hi is not None and hi < lo:
        hi = lo  # an empty selection, not an error
    return lo, hi


def dump(path: str, out: TextIO, lo: bytes | None = None, hi: bytes | None = None) -> int:
    """Print the pairs with keys in ``[lo, hi)`` as JSON lines with base64 key and value."""
    with (
        kvstore.LMDBStore(path, readonly=True, create=False) as store,
        # A bar only when the pairs go to a file or pipe, not onto the same terminal.
        Progress(None, "dump", " pairs", enabled=not out.isatty()) as bar,
    ):
        for key, value in store.get_range(lo, hi):
            line = {
                "key": base64.b64encode(key).decode(),
                "value": base64.b64encode(value).decode(),
            }
            print(json.dumps(line), file=out)
            bar.update(1)
    return 0


class BadLine(Exception):
    """A line of ``load``'s input that is not a dump line; ``str()`` says which and why."""


def _bad_line(n: int, error: BaseException) -> BadLine:
    reason = " ".join(str(error).split()) or type(error).__name__  # one line, whatever it says
    return BadLine(f"line {n} is not a dump line: {reason}")


def _field(item: Any, name: str) -> bytes:
    text = item[name]
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a base64 string, not {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(f"{name} is not valid base64 ({e})") from None


def _dump_pairs(source: TextIO) -> Iterator[tuple[int, bytes, bytes]]:
    """``(line number, key, value)`` for each line of a dump; a bad line raises BadLine."""
    for n, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise TypeError(f"expected a JSON object, not {type(item).__name__}")
            key = check_key(_field(item, "key"))
            yield n, key, _field(item, "value")
        except (ValueError, KeyError, TypeError) as e:
            raise _bad_line(n, e) from None


def load(path: str, source: TextIO, *, atomic: bool = False, batch: int = LOAD_BATCH) -> int:
    """Merge the JSON lines written by ``dump`` into the database at ``path``.

    By default the pairs are committed in transactions of ``batch`` pairs, so memory stays
    bounded however big the input; a bad line or Ctrl-C stops the load, and the message says
    how many pairs were committed before it.  ``atomic`` loads everything in one transaction:
    all of it or, on any error, none.  Keys and values must be strict base64.  The first line
    is checked before the database is opened, so input rejected there creates nothing.
    """
    pairs = _dump_pairs(source)
    committed = 0
    try:
        first = next(pairs, None)
        with kvstore.open(path) as db, Progress(None, "load", " pairs") as bar:
            tx = db.transaction()
            try:
                pending = 0
                for _, key, value in itertools.chain([first] if first else [], pairs):
                    tx.put(key, value)
                    pending += 1
                    if pending == batch and not atomic:
                        tx.commit()
                        committed += pending
                        bar.update(pending)
                        pending = 0
                        tx = db.transaction()
                tx.commit()
                committed += pending
                bar.update(pending)
            finally:
                tx.rollback()
    except BadLine as e:
        raise SystemExit(f"kvstore load: {e}{_committed(committed)}") from None
    except KeyboardInterrupt:
        raise _Interrupted(_committed(committed)) from None
    return 0


def _committed(n: int) -> str:
    return f"; {n:,} pairs before it were committed" if n else ""


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``load``; ``str()`` says what had been committed."""


def stats(path: str, out: TextIO) -> int:
    """Print the version, the file size, and the key count and sizes (one read snapshot)."""
    with kvstore.open(path, readonly=True, create=False) as db:
        s = db.stats()
        keys = key_bytes = value_bytes = 0
        with db.transaction(read_only=True) as tx:
            for key, value in tx.get_range():
                keys += 1
                key_bytes += len(key)
                value_bytes += len(value)
        line = {
            "version": s.version,
            "size_bytes": s.size_bytes,
            "keys": keys,
            "key_bytes": key_bytes,
            "value_bytes": value_bytes,
        }
        print(json.dumps(line), file=out)
    return 0


def backup(path: str, dest: str, compact: bool, out: TextIO) -> int:
    """Copy the store at ``path`` consistently into ``dest`` (a new or empty directory)."""
    with kvstore.LMDBStore(path, readonly=True, create=False) as store:
        store.backup(dest, compact=compact)
        with kvstore.LMDBStore(dest, readonly=True, create=False) as copy:
            size = copy.size_bytes()
    _say(out, f"kvstore backup: {path} -> {dest} ({size:,} bytes)")
    return 0


#: The entry-point group an installed benchmark suite registers its ``main`` under.
BENCH_ENTRY_POINTS = "kvstore.bench"


def _bench_main() -> Callable[[list[str]], int] | None:
    """The benchmark suite's ``main``: the installed entry point, else a source checkout's.

    The suite is not part of the library (the package never imports it): the distribution
    installs it beside the package as ``kvstore_benchmarks`` and names it in the entry-point
    group :data:`BENCH_ENTRY_POINTS`; in a source checkout ``benchmarks/`` is used directly.
    """
    if os.path.isfile(os.path.join("benchmarks", "rows.py")):
        if os.getcwd() not in sys.path:  # a console script does not put it there
            sys.path.insert(0, os.getcwd())
        with contextlib.suppress(ImportError):
            found: Callable[[list[str]], int] = importlib.import_module("benchmarks.__main__").main
            return found
    for entry in importlib.metadata.entry_points(group=BENCH_ENTRY_POINTS):
        loaded: Callable[[list[str]], int] = entry.load()
        return loaded
    return None


def bench(args: list[str]) -> int:
    """Run the benchmark suite with ``args`` (its own options); errors go to stderr."""
    bench_main = _bench_main()
    if bench_main is None:
        print(
            "kvstore bench: the benchmark suite is not installed (reinstall kvstore-delta, or run"
            " it from a source checkout: python -m benchmarks)",
            file=sys.stderr,
        )
        return 2
    return bench_main(args)


def _verb(sub: Any, name: str, text: str, description: str) -> argparse.ArgumentParser:
    """A verb that works on the database at a positional ``PATH``."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=description)
    p.add_argument("path", help="the database directory")
    return p


def _message(exc: BaseException) -> str:
    """An error as a user reads it: ``path: cause`` for OS errors (no ``[Errno N]``)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kvstore", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kvstore {kvstore.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="the tour: transactions, conflicts, processes, deltas")
    p.add_argument(
        "directory", nargs="?", help="where to create the database (default: a temp dir)"
    )
    p = _verb(
        sub,
        "dump",
        "print a database as JSON lines",
        "Print every pair (or those selected) as one JSON object per line: "
        '{"key": <base64>, "value": <base64>}, in key order. `load` reads this format.',
    )
    p.add_argument("--prefix", help="only keys starting with this (UTF-8 text)")
    p.add_argument("--start", help="only keys >= this (UTF-8 text)")
    p.add_argument("--end", help="only keys < this (UTF-8 text)")
    p.add_argument(
        "--base64", action="store_true", help="--prefix/--start/--end are base64, not text"
    )
    p = _verb(
        sub,
        "load",
        "merge JSON lines (from dump) into a database",
        "Read JSON lines written by `dump` from FILE (default: stdin) and merge "
        "them into the database at PATH, creating it if needed; existing keys are "
        f"overwritten, others kept. Commits every {LOAD_BATCH:,} pairs (bounded memory) "
        "unless --atomic. A bad line stops the load with its line number.",
    )
    p.add_argument("file", nargs="?", default="-", help="the dump to read (default: stdin)")
    p.add_argument(
        "--atomic", action="store_true", help="one transaction: all pairs or, on error, none"
    )
    _verb(
        sub,
        "stats",
        "print a database's version, file size, key count and sizes",
        "Print one JSON object: version, size_bytes (the data file), keys, "
        "key_bytes, value_bytes (from one read snapshot). Never writes.",
    )
    p = _verb(
        sub,
        "backup",
        "copy a database consistently (compacted) to a new directory",
        "Write a consistent copy of the database at PATH into DEST, a new or "
        "empty directory, from one read snapshot: writers may go on meanwhile.",
    )
    p.add_argument("dest", help="where to write the copy (new or empty directory)")
    p.add_argument("--no-compact", action="store_true", help="copy free pages too (faster, bigger)")
    p = sub.add_parser(
        "bench",
        help="the quick benchmark suite (ratios against raw py-lmdb)",
        description="Run the benchmark suite: kvstore beside raw py-lmdb and the peers that are"
        " installed (missing ones are named), one table of ratios. --quick unless --full is"
        " given; --rows R1,P1 picks rows.",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small data set (the default)")
    size.add_argument("--full", action="store_true", help="the standard data set and scaling")
    p.add_argument("--rows", metavar="IDS", help="comma-separated row ids or prefixes (R1,P1)")
    regions_cli.add_parser(sub)
    graph_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "graph":
        try:
            return graph_cli.run(args)
        except (kvstore.KVError, OSError, LookupError, TypeError, ValueError) as e:
            print(f"kvstore graph {args.verb}: {e}", file=sys.stderr)
            return 1
    if args.command == "memory":
        try:
            return regions_cli.run(args)
        except (kvstore.KVError, OSError, TypeError, ValueError) as e:
            print(f"kvstore memory {args.verb}: {regions_cli.format_error(e)}", file=sys.stderr)
            return 1
    try:
        if args.command == "demo":
            return demo(args.directory, sys.stdout)
        if args.command == "dump":
            lo, hi = dump_range(args.prefix, args.start, args.end, args.base64)
            return dump(args.path, sys.stdout, lo, hi)
        if args.command == "load":
            if args.file == "-":
                return load(args.path, sys.stdin, atomic=args.atomic)
            with open(args.file, encoding="utf-8") as source:
                return load(args.path, source, atomic=args.atomic)
        if args.command == "stats":
            return stats(args.path, sys.stdout)
        if args.command == "backup":
            return backup(args.path, args.dest, not args.no_compact, sys.stdout)
        return bench(
            ["--full" if args.full else "--quick", *(["--rows", args.rows] if args.rows else [])]
        )
    except BrokenPipeError:
        # The reader went away (``kvstore dump ... | head``): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (kvstore.KVError, OSError, ValueError) as e:
        print(f"kvstore {args.command}: {_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        # Ctrl-C: whatever transaction was open has been rolled back on the way out.
        print(f"kvstore {args.command}: interrupted{e}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
