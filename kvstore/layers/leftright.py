"""Two copies of one state: readers never wait and never see a change half made.

The concept graph publishes a new state after every batch, and its readers (``find_path``
and the queries) must use a whole published state without locks.  Copying the graph per
batch costs O(graph); sharing structure between versions (a sharded copy-on-write map, the
previous design) still copied a few dozen items per changed key, most of the read plane's
cost in a reader process during a write burst (PERFORMANCE L4).

This is the *left-right* technique (Ramalhete and Correia): keep two copies.  Readers enter
the published one.  The single writer applies a change to the other copy, publishes it, and
applies the same change to the first copy later, once the readers still in it have left:
each change is applied twice, and nothing is copied.

Readers announce themselves by appending to their copy's list of readers (atomic in CPython,
with or without the GIL) and check that the copy is still the published one; the writer
waits for a copy's list to empty before it changes it.  A reader that never leaves (one
interrupted between entering and its ``with`` block) cannot stall the writer: after
``patience`` seconds the writer stops waiting and makes a fresh copy instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LeftRight", "Reading"]

S = TypeVar("S")
C = TypeVar("C")

#: How often a writer looks again whether the readers of the copy it needs have left.
_POLL = 0.0002


class Reading(Generic[S]):
    """One copy of the state and its readers; ``with`` it to read ``state``, once entered."""

    __slots__ = ("readers", "state")

    def __init__(self, state: S) -> None:
        self.state = state
        self.readers: list[None] = []  # one item per reader inside

    def __enter__(self) -> S:
        return self.state

    def __exit__(self, *exc: object) -> None:
        self.readers.pop()


class LeftRight(Generic[S, C]):
    """A state shared by lock-free readers and one writer (the only caller of the writes).

    ``copy(state)`` returns an independent copy; ``apply(state, change)`` changes a state in
    place, and applying the same changes in the same order to two equal states leaves them
    equal.
    """

    __slots__ = ("_apply", "_copy", "_live", "_patience", "_pending", "_spare")

    def __init__(
        self,
        state: S,
        *,
        copy: Callable[[S], S],
        apply: Callable[[S, C], None],
        patience: float = 0.1,
    ) -> None:
        self._copy = copy
        self._apply = apply
        self._patience = patience
        self._live = Reading(state)
        self._spare = Reading(copy(state))
        self._pending: list[C] = []  # applied to the live copy, not yet to the spare

    # -- readers ---------------------------------------------------------------------------
    def enter(self) -> Reading[S]:
        """The published copy, with this reader counted in it: ``with lr.enter() as state:``."""
        while True:
            live = self._live
            live.readers.append(None)
            if self._live is live:
                return live
            live.readers.pop()  # swapped meanwhile: the writer may be changing it

    # -- the writer ------------------------------------------------------------------------
    @property
    def live(self) -> S:
        """The published state, for the writer only: it is the one thread that changes states."""
        return self._live.state

    def publish(self, change: C) -> None:
        """Apply ``change`` to the spare copy and publish it; readers see all of it or none."""
        spare = self._spare
        deadline = time.monotonic() + self._patience
        while spare.readers and time.monotonic() < deadline:
            time.sleep(_POLL)
        if spare.readers:  # a reader that never left: leave that copy to it
            spare = Reading(self._copy(self._live.state))
        else:
            for earlier in self._pending:
                self._apply(spare.state, earlier)
        self._apply(spare.state, change)
        self._spare, self._live = self._live, spare
        self._pending = [change]

    def reset(self, state: S) -> None:
        """Publish ``state`` in place of everything before it (readers inside keep theirs)."""
        self._spare = Reading(self._copy(state))
        self._live = Reading(state)
        self._pending = []
