"""``kvstore memory <verb>``: the regions layer from the shell (SPEC §6a).

Verbs: ``list <ns> [prefix]``, ``describe <ns> <key>``, ``allocate <ns> <key> <size>``,
``resize <ns> <key> <new_size>``, ``free <ns> <key>``,
``read <ns> <key> [--offset N] [--length N] [-o FILE]`` and
``write <ns> <key> [--offset N] FILE|-``; each takes ``--db PATH`` and ``--credential C``.
Transfers go in 64 KiB chunks, each its own transaction, with a progress bar on a terminal
for anything over a few MB.  Errors are one line carrying the region error code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import kvstore
from kvstore.layers.cli_verbs import add_verb
from kvstore.layers.regions import PAGE_SIZE, RegionClient, RegionError, RegionInfo
from kvstore.progress import Progress

__all__ = ["add_parser", "run"]

_PROGRESS_BYTES = 4 * 1024 * 1024


def _size(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def add_parser(sub: Any) -> None:
    """Add the ``memory`` command and its verbs to an argparse subparsers object."""
    memory = sub.add_parser(
        "memory",
        help="memory regions: named byte buffers per namespace",
        description="Read, write and manage memory regions (kvstore.layers.regions).",
    )
    verbs = memory.add_subparsers(dest="verb", required=True)

    def verb(name: str, text: str, key: bool = True) -> argparse.ArgumentParser:
        p = add_verb(verbs, name, text)
        p.add_argument("--credential", metavar="C", help="the credential to act as")
        p.add_argument("namespace")
        if key:
            p.add_argument("key")
        return p

    p = verb("list", "list a namespace's regions (sorted), optionally by key prefix", key=False)
    p.add_argument("prefix", nargs="?", default="")
    verb("describe", "print a region's size, data length and times as JSON")
    verb("allocate", "create a region of SIZE zero bytes").add_argument("size", type=_size)
    verb("resize", "grow (zeros) or shrink (truncate) a region").add_argument(
        "new_size", type=_size
    )
    verb("free", "delete a region and its storage")
    p = verb("read", "copy a region's bytes to a file or stdout")
    p.add_argument("--offset", type=_size, default=0)
    p.add_argument("--length", type=_size, help="default: up to the region's data length")
    p.add_argument("-o", "--output", metavar="FILE", help="default: stdout")
    p = verb("write", "copy a file (or stdin, '-') into a region at an offset")
    p.add_argument("--offset", type=_size, default=0)
    p.add_argument("file", metavar="FILE|-")


def _info_json(info: RegionInfo) -> str:
    return json.dumps(
        {
            "namespace": info.namespace,
            "key": info.key,
            "size": info.size,
            "data_length": info.data_length,
            "created": info.created,
            "updated": info.updated,
        }
    )


@contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
    else:
        with open(path, "wb") as f:
            yield f


@contextmanager
def _input(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as f:
            yield f


def _read(mem: RegionClient, args: argparse.Namespace) -> None:
    ns, key, offset = args.namespace, args.key, args.offset
    length = args.length
    if length is None:
        length = max(0, mem.describe_memory(ns, key).data_length - offset)
    bar = Progress(length, "read", "B", _PROGRESS_BYTES)
    try:
        with _output(args.output) as out:
            done = 0
            while done < length:
                n = min(PAGE_SIZE, length - done)
                out.write(mem.read_memory(ns, key, offset + done, n))
                done += n
                bar.update(n)
            if length == 0:  # still say OUT_OF_RANGE / NOT_FOUND for an empty read
                mem.read_memory(ns, key, offset, 0)
    finally:
        bar.close()


def _write(mem: RegionClient, args: argparse.Namespace) -> int:
    ns, key, offset = args.namespace, args.key, args.offset
    mem.describe_memory(ns, key)  # NOT_FOUND before reading any input
    total = os.path.getsize(args.file) if args.file != "-" else None
    bar = Progress(total, "write", "B", _PROGRESS_BYTES)
    written = 0
    try:
        with _input(args.file) as f:
            while chunk := f.read(PAGE_SIZE - (offset + written) % PAGE_SIZE):
                written += mem.write_memory(ns, key, offset + written, chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
    return written


def run(args: argparse.Namespace) -> int:
    """Run one ``memory`` verb; errors are printed as one line by the caller."""
    path = args.db
    if args.verb not in ("allocate",) and not os.path.exists(path):
        raise FileNotFoundError(f"no database at {path!r}")
    with kvstore.open(path) as db:
        mem = RegionClient(db, credential=args.credential)
        verb = args.verb
        if verb == "list":
            for key in mem.list_memory_regions(args.namespace, args.prefix):
                print(key)
        elif verb == "describe":
            print(_info_json(mem.describe_memory(args.namespace, args.key)))
        elif verb == "allocate":
            print(_info_json(mem.allocate_memory(args.namespace, args.key, args.size)))
        elif verb == "resize":
            print(_info_json(mem.resize_memory(args.namespace, args.key, args.new_size)))
        elif verb == "free":
            mem.free_memory(args.namespace, args.key)
        elif verb == "read":
            _read(mem, args)
        else:
            written = _write(mem, args)
            print(f"wrote {written} bytes at offset {args.offset}", file=sys.stderr)
    return 0


def format_error(error: BaseException) -> str:
    """A one-line message for a failed verb (region errors already start with their code)."""
    if isinstance(error, RegionError):
        return str(error)
    if isinstance(error, (TypeError, ValueError)):
        return f"INVALID_ARGUMENT: {error}"
    return str(error)
