"""The package metadata tells users the truth: license, name, version."""

from __future__ import annotations

import sys
from pathlib import Path

import kvstore

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_file_matches_metadata() -> None:
    assert PROJECT["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0" in text
    assert any("License :: OSI Approved :: Apache" in c for c in PROJECT["classifiers"])


def test_distribution_name_is_free_and_import_name_is_kvstore() -> None:
    # "kvstore" on the package index is an unrelated project; ours is published under
    # another name, and the README says so.
    assert PROJECT["name"] == "kvstore-delta"
    assert "kvstore-delta" in (ROOT / "README.md").read_text()
    assert kvstore.__name__ == "kvstore"


def test_version_is_one_fact() -> None:
    assert PROJECT["version"] == kvstore.__version__
    assert f"## {kvstore.__version__}" in (ROOT / "CHANGELOG.md").read_text()


SPEC_EXPORTS = [
    "open",
    "Database",
    "Transaction",
    "KVStore",
    "AtomicKVStore",
    "DeltaKVStore",
    "MutableView",
    "MemoryStore",
    "LMDBStore",
    "KVPair",
    "KeyRange",
    "KeyRanges",
    "Mutations",
    "Writes",
    "Reads",
    "Conflict",
    "ReadWriteConflict",
    "ReadRemoveConflict",
    "ReadAdjustConflict",
    "Subspace",
    "PrefixStore",
    "PersiDict",
    "RegionClient",
    "AsyncRegionClient",
    "RegionInfo",
    "ConcurrentMemory",
    "Concept",
    "Association",
    "MAX_KEY_SIZE",
    "KVError",
    "ReadOnlyError",
    "StaleTransaction",
    "RetryTransaction",
    "TransactionConflict",
    "TransactionTooOld",
    "CorruptData",
    "StoreFull",
    "StoreClosed",
    "StoreUnavailable",
    "CommitUnknown",
    "RegionError",
    "MutationPolicyError",
]


def test_every_spec_export_is_there() -> None:
    # SPEC §7: the top-level names, every error class among them.
    missing = [name for name in SPEC_EXPORTS if name not in kvstore.__all__]
    assert missing == []
    for name in kvstore.__all__:
        value = getattr(kvstore, name)
        if isinstance(value, type) and name.endswith(("Error", "Data", "Full", "Closed")):
            assert issubclass(value, kvstore.KVError), name
    assert issubclass(kvstore.StoreUnavailable, kvstore.KVError)
    assert issubclass(kvstore.CommitUnknown, kvstore.KVError)
    assert not issubclass(kvstore.CommitUnknown, kvstore.RetryTransaction)  # never retried


def test_project_urls_point_at_the_documented_repository() -> None:
    mkdocs = (ROOT / "mkdocs.yml").read_text()
    repo = next(line.split(": ", 1)[1] for line in mkdocs.splitlines() if "repo_url:" in line)
    assert set(PROJECT["urls"]) == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert all(url.startswith(repo) for url in PROJECT["urls"].values())
