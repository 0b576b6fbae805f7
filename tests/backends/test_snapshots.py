"""Snapshots against a model: each open snapshot must keep showing the store as it was.

MemoryStore snapshots share per-epoch undo logs that are handed between epochs as snapshots
close; this drives writes, snapshots and closes in random orders and checks every open
snapshot against a frozen copy of the model taken when it was opened.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from kvstore import KeyRange, LMDBStore, MemoryStore
from kvstore.store import AtomicKVStore, KVStore
from tests.storekit import SimpleMutations

_keys = st.sampled_from([b"", b"\x00", b"a", b"ab", b"b", b"c", b"\xff"])
_values = st.sampled_from([b"1", b"2", b"\x00" * 7 + b"\x05", b""])


class SnapshotMachine(RuleBasedStateMachine):
    snapshots = Bundle("snapshots")

    def make_store(self) -> AtomicKVStore:
        return MemoryStore()

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.model: dict[bytes, bytes] = {}
        self.open: dict[int, tuple[KVStore, dict[bytes, bytes]]] = {}

    @rule(key=_keys, value=_values)
    def put(self, key: bytes, value: bytes) -> None:
        self.store.put(key, value)
        self.model[key] = value

    @rule(key=_keys)
    def remove(self, key: bytes) -> None:
        self.store.remove(key)
        self.model.pop(key, None)

    @rule(a=_keys, b=_keys)
    def remove_range(self, a: bytes, b: bytes) -> None:
        lo, hi = min(a, b), max(a, b)
        self.store.remove_range(lo, hi)
        for k in [k for k in self.model if lo <= k < hi]:
            del self.model[k]

    @rule(key=_keys, amount=st.integers(-3, 3))
    def adjust(self, key: bytes, amount: int) -> None:
        self.store.adjust_counter(key, amount)
        old = self.model.get(key)
        if old is not None and len(old) == 8:
            total = (int.from_bytes(old, "big", signed=True) + amount + 2**63) % 2**64 - 2**63
            self.model[key] = total.to_bytes(8, "big", signed=True)

    @rule(a=_keys, b=_keys, key=_keys, value=_values)
    def apply(self, a: bytes, b: bytes, key: bytes, value: bytes) -> None:
        lo, hi = min(a, b), max(a, b)
        self.store.apply(SimpleMutations(removes=[KeyRange(lo, hi)], puts=[(key, value)]))
        for k in [k for k in self.model if lo <= k < hi]:
            del self.model[k]
        self.model[key] = value

    @rule(target=snapshots)
    def take(self) -> int:
        snap = self.store.snapshot()  # type: ignore[attr-defined]
        self.open[id(snap)] = (snap, dict(self.model))
        return id(snap)

    @rule(ident=consumes(snapshots))
    def close(self, ident: int) -> None:
        snap, _ = self.open.pop(ident)
        snap.close()

    @invariant()
    def every_open_snapshot_shows_its_moment(self) -> None:
        for snap, frozen in self.open.values():
            expect = sorted(frozen.items())
            assert list(snap.get_range()) == expect
            assert list(snap.get_range(reverse=True)) == expect[::-1]
            for key in (b"", b"a", b"ab", b"zz"):
                assert snap.get(key) == frozen.get(key)
        assert list(self.store.get_range()) == sorted(self.model.items())

    def teardown(self) -> None:
        for snap, _ in self.open.values():
            snap.close()
        self.store.close()


class LMDBSnapshotMachine(SnapshotMachine):
    def make_store(self) -> AtomicKVStore:
        self._dir = Path(tempfile.mkdtemp())
        return LMDBStore(self._dir / "db", sync=False)

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self._dir, ignore_errors=True)


SnapshotMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
LMDBSnapshotMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None
)
TestMemorySnapshots = SnapshotMachine.TestCase
TestLMDBSnapshots = LMDBSnapshotMachine.TestCase
