"""``kvstore graph <verb>``: look into a concept graph from the shell (SPEC §6b).

Verbs: ``stats``, ``concept ID``, ``neighbors ID``, ``path START END [--max-depth N]``, each
with ``--db PATH``; ids are 32 hex digits.  Output is one line of JSON per answer; the
graph is opened read-only, so nothing is ever written.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import attrs

from kvstore.layers.cli_verbs import add_verb
from kvstore.layers.graph import ConcurrentMemory

__all__ = ["add_parser", "run"]


def _hex_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {text!r}") from None
    if len(raw) != 16:
        raise argparse.ArgumentTypeError(f"an id is 16 bytes (32 hex digits), not {len(raw)}")
    return raw


def add_parser(sub: Any) -> None:
    """Add the ``graph`` command and its verbs to an argparse subparsers object."""
    graph = sub.add_parser(
        "graph",
        help="the concept graph: stats, concepts, neighbours, paths",
        description="Query a concept graph (kvstore.layers.graph), read-only.",
    )
    verbs = graph.add_subparsers(dest="verb", required=True)

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        return add_verb(verbs, name, text)

    verb("stats", "counts of concepts and edges, and the write log")
    verb("concept", "one concept as JSON").add_argument("id", type=_hex_id)
    verb("neighbors", "the targets of a concept's associations").add_argument("id", type=_hex_id)
    p = verb("path", "a shortest directed path between two concepts")
    p.add_argument("start", type=_hex_id)
    p.add_argument("end", type=_hex_id)
    p.add_argument("--max-depth", type=int, default=6)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def run(args: argparse.Namespace) -> int:
    """Run one ``graph`` verb; errors are printed as one line by the caller."""
    if not os.path.exists(args.db):
        raise FileNotFoundError(f"no database at {args.db!r}")
    with ConcurrentMemory(args.db, read_only=True) as g:
        if args.verb == "stats":
            out: Any = attrs.asdict(g.stats())
        elif args.verb == "concept":
            c = g.query_concept(args.id)
            if c is None:
                raise LookupError(f"no concept {args.id.hex()}")
            out = attrs.asdict(c)
            out["content"] = c.content.decode("utf-8", "backslashreplace")
        elif args.verb == "neighbors":
            out = g.query_neighbors(args.id)
        else:
            out = g.find_path(args.start, args.end, max_depth=args.max_depth)
        print(json.dumps(_plain(out)))
    return 0
