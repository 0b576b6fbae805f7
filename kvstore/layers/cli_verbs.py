"""What the layers' command-line verbs share: a verb's parser with ``--db PATH``."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_verb"]


def add_verb(verbs: Any, name: str, text: str) -> argparse.ArgumentParser:
    """A verb under ``verbs`` (an argparse subparsers object) with a required ``--db``."""
    p: argparse.ArgumentParser = verbs.add_parser(name, help=text, description=text)
    p.add_argument("--db", required=True, metavar="PATH", help="the database directory")
    return p
