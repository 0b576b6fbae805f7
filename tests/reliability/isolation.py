"""Isolation: a ``PrefixStore`` never reads or writes outside its prefix.

The base store holds sentinel keys just outside the prefix (the prefix minus its last byte,
the key before it padded with ``0xff``, the prefix's end and keys after it).  A random
sequence of operations -- crafted keys at the boundary, the empty key (the prefix itself),
``0xff`` runs, ``None`` bounds, reverse scans, ``get_at_least``/``get_at_most`` seeks,
``remove_range`` with ``None`` bounds, counters and ``apply()`` of mutations with unbounded
removes -- runs on the ``PrefixStore`` and on a fresh ``MemoryStore`` (the model); results,
including which exception is raised, must be equal, and after every operation the sentinel
keys must be exactly as they were.  Reads that leaked an outside key would differ from the
model; writes that escaped would change a sentinel.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from kvstore.keys import prefix_end
from kvstore.prefix import PrefixStore
from kvstore.ranges import KeyRange
from kvstore.store import KVStore
from tests.storekit import SimpleMutations

#: Prefixes with awkward boundaries: a trailing 0xff (its end carries), all-0xff (no end), a
#: trailing 0x00, a one-byte prefix.
PREFIXES = [b"\x02\xff", b"\xff", b"\xff\xff", b"a\x00", b"a", b"ab\xfe"]


def sentinels(prefix: bytes) -> dict[bytes, bytes]:
    """Keys just outside ``prefix``, on both sides, each with a value naming itself."""
    keys = {b"", b"\x00", prefix[:-1], prefix[:-1] + b"\xff" * 4, b"\xff" * 6}
    if prefix[-1] > 0:
        before = prefix[:-1] + bytes([prefix[-1] - 1])
        keys |= {before, before + b"\xff" * 5}
    end = prefix_end(prefix)
    if end is not None:
        keys |= {end, end + b"\x00", end + b"\xff"}
    keys = {k for k in keys if not k.startswith(prefix)}
    return {k: b"outside:" + k for k in keys}


_BYTE = st.sampled_from([0x00, 0x01, 0x7F, 0xFE, 0xFF])
KEYS = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=3).map(lambda b: b),
    st.lists(_BYTE, min_size=1, max_size=5).map(bytes),
    st.integers(1, 8).map(lambda n: b"\xff" * n),
)
BOUNDS = st.one_of(st.none(), KEYS)
VALUES = st.one_of(st.binary(max_size=8), st.just(b"\0" * 8))
OPS = st.one_of(
    st.tuples(st.just("put"), KEYS, VALUES),
    st.tuples(st.just("remove"), KEYS),
    st.tuples(st.just("remove_range"), BOUNDS, BOUNDS),
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("get_range"), BOUNDS, BOUNDS, st.booleans()),
    st.tuples(st.just("get_at_least"), KEYS, BOUNDS),
    st.tuples(st.just("get_at_most"), BOUNDS, BOUNDS),
    st.tuples(st.just("adjust_counter"), KEYS, st.integers(-(2**63), 2**63 - 1)),
    st.tuples(
        st.just("apply"),
        st.lists(st.tuples(BOUNDS, BOUNDS), max_size=2),
        st.dictionaries(KEYS, VALUES, max_size=3),
        st.dictionaries(KEYS, st.integers(-5, 5), max_size=2),
    ),
)


def _call(store: KVStore, op: tuple[Any, ...]) -> object:
    """Run one operation; its result, or the type of the exception it raised."""
    name, *args = op
    try:
        if name == "get_range":
            return list(store.get_range(args[0], args[1], reverse=args[2]))
        if name == "apply":
            removes, puts, adjusts = args
            ranges = [KeyRange(lo, hi) for lo, hi in removes]
            adjusts = {k: v for k, v in adjusts.items() if k not in puts}
            store.apply(SimpleMutations(ranges, puts.items(), adjusts.items()))
            return None
        return getattr(store, name)(*args)
    except (ValueError, TypeError) as e:
        return type(e)


def check_isolation(base: KVStore, prefix: bytes, ops: list[tuple[Any, ...]]) -> None:
    """Run ``ops`` on ``PrefixStore(base, prefix)`` and a model; assert isolation after each.

    ``base`` must be empty; it is emptied again afterwards.
    """
    from kvstore.backends.memory import MemoryStore

    outside = sentinels(prefix)
    for k, v in outside.items():
        base.put(k, v)
    view = PrefixStore(base, prefix)
    model = MemoryStore()
    try:
        for op in ops:
            got, want = _call(view, op), _call(model, op)
            assert got == want, f"{op}: prefix store gave {got!r}, a store of its own {want!r}"
            seen = {k: v for k, v in base.get_range() if not k.startswith(prefix)}
            assert seen == outside, f"{op} wrote outside the prefix {prefix!r}"
            inside = {k[len(prefix) :]: v for k, v in base.get_range() if k.startswith(prefix)}
            assert inside == dict(model.get_range()), f"{op}: inside keys differ from the model"
    finally:
        base.remove_range()
