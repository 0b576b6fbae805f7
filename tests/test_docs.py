"""The documentation's examples run, with their output checked: every page and every docstring.

Each ``docs/*.md`` page runs as a doctest file (one test per page, so a failure names the
page), in a fresh temporary directory so that examples opening ``data/...`` leave nothing
behind; processes an example starts import the same ``kvstore`` as the test. Every module of
the ``kvstore`` package runs its docstring examples the same way. A fenced ``python`` block
on a page must be in doctest form (``>>>``), so it runs; the only exception is a block right
after a ``<!-- not run: reason -->`` comment, which the page also says in words (for
example, examples that need a PostgreSQL server).

The API reference (docs/reference.md) must list exactly ``kvstore.__all__``, in order, so
that a new public name cannot be left out of it.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
from pathlib import Path

import pytest

import kvstore

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(kvstore.__path__, "kvstore.")
    if not m.name.endswith(".__main__")  # running it would run the command line
)
FLAGS = doctest.ELLIPSIS


def _python_blocks(text: str) -> list[tuple[str, str]]:
    """Each fenced python block of a page, with the line just before its fence."""
    return re.findall(r"([^\n]*)\n```python[^\n]*\n(.*?)```", "\n" + text, re.S)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = page.read_text()
    blocks = _python_blocks(text)
    for before, body in blocks:
        assert body.lstrip().startswith(">>>") or before.startswith("<!-- not run:"), (
            f"{page.name}: a python block is neither a doctest nor marked "
            f"'<!-- not run: ... -->':\n{body}"
        )
    monkeypatch.chdir(tmp_path)
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *([path] if path else [])]))
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=FLAGS, raise_on_error=False
    )
    assert result.failed == 0, f"{page.name}: {result.failed} example(s) failed (see above)"
    runnable = [b for before, b in blocks if not before.startswith("<!-- not run:")]
    assert bool(runnable) == (result.attempted > 0), page.name


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.failed == 0, f"{name}: {result.failed} docstring example(s) failed"


def test_reference_lists_exactly_the_public_names() -> None:
    text = (DOCS / "reference.md").read_text()
    listed = re.findall(r"^::: kvstore\.(\w+)$", text, re.M)
    assert listed == list(kvstore.__all__)
