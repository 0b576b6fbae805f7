"""LeftRight: readers always see a whole published state, never one being changed."""

from __future__ import annotations

import threading
import time

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kvstore.layers.leftright import LeftRight, Reading


def _apply(state: dict[int, int], change: dict[int, int]) -> None:
    state.update(change)


Plane = LeftRight[dict[int, int], dict[int, int]]


def _plane(state: dict[int, int], patience: float = 0.1) -> Plane:
    return LeftRight(state, copy=dict.copy, apply=_apply, patience=patience)


class LeftRightMachine(RuleBasedStateMachine):
    """Readers enter and leave between publications; each must keep the state it entered."""

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[int, int] = {}
        self.plane = _plane({}, patience=0.0)
        self.held: list[tuple[Reading[dict[int, int]], dict[int, int], dict[int, int]]] = []

    @rule(change=st.dictionaries(st.integers(0, 9), st.integers(), max_size=5))
    def publish(self, change: dict[int, int]) -> None:
        self.plane.publish(change)
        self.model.update(change)

    @rule(state=st.dictionaries(st.integers(0, 9), st.integers(), max_size=5))
    def reset(self, state: dict[int, int]) -> None:
        self.plane.reset(dict(state))
        self.model = dict(state)

    @rule()
    def enter(self) -> None:
        reading = self.plane.enter()
        state = reading.__enter__()
        self.held.append((reading, state, dict(state)))

    @rule(which=st.integers(0, 100))
    def leave(self, which: int) -> None:
        if self.held:
            reading, _, _ = self.held.pop(which % len(self.held))
            reading.__exit__(None, None, None)

    @invariant()
    def readers_keep_what_they_entered(self) -> None:
        for _, state, seen in self.held:
            assert state == seen

    @invariant()
    def a_new_reader_sees_every_publication(self) -> None:
        with self.plane.enter() as state:
            assert state == self.model
        assert self.plane.live == self.model


TestLeftRightMachine = LeftRightMachine.TestCase
TestLeftRightMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


def test_threads_never_see_a_change_half_applied() -> None:
    """Every change sets all keys to one new value, a key at a time with a thread switch
    between keys; a reader that ever saw two values saw a change half made."""
    keys = range(20)

    def apply_slowly(state: dict[int, int], change: dict[int, int]) -> None:
        for k, v in change.items():
            state[k] = v
            time.sleep(0)

    plane: Plane = LeftRight(
        dict.fromkeys(keys, 0), copy=dict.copy, apply=apply_slowly
    )
    stop = threading.Event()
    mixed: list[set[int]] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            with plane.enter() as state:
                values = set()
                for k in keys:
                    values.add(state[k])
                    if k % 5 == 0:
                        time.sleep(0)
            if len(values) != 1:
                mixed.append(values)
            reads[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for version in range(1, 300):
        plane.publish(dict.fromkeys(keys, version))
    stop.set()
    for t in threads:
        t.join()
    assert not mixed
    assert reads[0] > 0
    with plane.enter() as state:
        assert set(state.values()) == {299}


def test_a_reader_that_never_leaves_costs_a_copy_not_a_stall() -> None:
    plane = _plane({1: 1}, patience=0.05)
    stuck = plane.enter()  # entered and never left
    held = stuck.__enter__()
    plane.publish({1: 2})  # the copy the stuck reader is in becomes the spare
    t0 = time.monotonic()
    plane.publish({1: 3})  # waits its patience for the stuck reader, then copies
    assert time.monotonic() - t0 < 5
    assert held == {1: 1}
    for version in range(4, 10):
        plane.publish({1: version})
    assert held == {1: 1}
    with plane.enter() as state:
        assert state == {1: 9}
