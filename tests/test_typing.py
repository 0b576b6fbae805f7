"""Types users see survive: ``tx[a:b]`` is ``list[KVPair]``, ``@db.transactional`` keeps the
wrapped signature minus its transaction.  Checked by running mypy on a user's snippet."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = '''
from typing import assert_type
import kvstore
from kvstore import KVPair, Transaction

db = kvstore.open(None)
with db.transaction() as tx:
    assert_type(tx[b"a":b"b"], list[KVPair])
    assert_type(tx[b"a"], bytes)

@db.transactional
def transfer(tx: Transaction, src: bytes, amount: int) -> int:
    return amount

@db.transactional(retries=3)
def count(tx: Transaction) -> str:
    return ""

assert_type(transfer(b"a", 5), int)
assert_type(count(), str)
transfer(b"a", "five")  # E: wrong argument type
'''


def test_user_facing_types(tmp_path: Path) -> None:
    snippet = tmp_path / "user_code.py"
    snippet.write_text(SNIPPET)
    # The project's own mypy settings (strict) apply; kvstore's sources are checked by the
    # plain ``mypy`` run in tox, so only the snippet's errors count here.
    config = Path(__file__).resolve().parent.parent / "pyproject.toml"
    out, err, _status = mypy_api.run(
        ["--config-file", str(config), "--no-incremental", "--python-version", "3.11", str(snippet)]
    )
    errors = [line for line in out.splitlines() if "user_code.py" in line and ": error:" in line]
    # Exactly the one deliberate error: the wrong argument type on the marked line.
    assert len(errors) == 1, out + err
    marked = 1 + next(i for i, line in enumerate(SNIPPET.splitlines()) if "# E:" in line)
    assert f"user_code.py:{marked}:" in errors[0] and "arg-type" in errors[0], out
