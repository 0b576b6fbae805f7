"""FrozenMap against a dict model: every version stays as it was, updates share the rest."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kvstore.layers.frozenmap import FrozenMap

keys = st.binary(min_size=0, max_size=3)


class FrozenMapMachine(RuleBasedStateMachine):
    """Keeps every version made, each beside the dict it must equal."""

    def __init__(self) -> None:
        super().__init__()
        self.versions: list[tuple[FrozenMap[bytes, int], dict[bytes, int]]] = [
            (FrozenMap(), {})
        ]

    @rule(changes=st.dictionaries(keys, st.integers(), max_size=40), base=st.integers(0, 1000))
    def update(self, changes: dict[bytes, int], base: int) -> None:
        m, model = self.versions[base % len(self.versions)]
        new = m.updated(changes)
        self.versions.append((new, {**model, **changes}))

    @rule(base=st.integers(0, 1000))
    def rebuild(self, base: int) -> None:
        m, model = self.versions[base % len(self.versions)]
        self.versions.append((FrozenMap(m), dict(model)))

    @invariant()
    def every_version_equals_its_model(self) -> None:
        for m, model in self.versions:
            assert len(m) == len(model)
            assert dict(m.items()) == model
            assert sorted(m) == sorted(model)
            shards, mask = m.parts()
            for k, v in model.items():
                assert m[k] == v and m.get(k) == v and k in m
                assert shards[hash(k) & mask][k] == v
            assert m.get(b"\xff" * 8, -1) == -1 and b"\xff" * 8 not in m


TestFrozenMap = FrozenMapMachine.TestCase
TestFrozenMap.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_growth_rehashes_and_keeps_small_updates_small() -> None:
    m: FrozenMap[int, int] = FrozenMap()
    for i in range(0, 20_000, 100):
        m = m.updated({j: j for j in range(i, i + 100)})
    assert len(m) == 20_000 and all(m[i] == i for i in range(20_000))
    shards, _ = m.parts()
    assert len(shards) >= 20_000 // 32  # the shard count grew with the map
    after = m.updated({-1: -1})
    changed = [a is not b for a, b in zip(shards, after.parts()[0], strict=True)]
    assert sum(changed) == 1  # one shard copied, the others shared
    assert -1 not in m and after[-1] == -1


def test_an_empty_update_is_the_same_map() -> None:
    m = FrozenMap({b"a": 1})
    assert m.updated({}) is m
    assert repr(m) == "FrozenMap({b'a': 1})"
