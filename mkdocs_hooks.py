"""MkDocs hooks for the kvstore site (mkdocs.yml ``hooks:``).

The docstrings use Sphinx cross-reference roles (``:class:`~kvstore.Reads```), which
mkdocstrings renders as the role's name followed by code. This hook turns each into plain
code showing what a reader of the source sees: the full name, or only its last part when
written with ``~``.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc):<code>(~?)([^<]+)</code>")


def _code(match: re.Match[str]) -> str:
    name = match.group(2)
    if match.group(1):
        name = name.rsplit(".", 1)[-1]
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Replace the rendered Sphinx roles in a page's HTML by plain code."""
    return _ROLE.sub(_code, html)
