"""Mutations: what can be applied to a store, and :class:`Writes`, the record a view keeps.

Applying mutations means: remove every range of :meth:`Mutations.remove_ranges`, then put every
pair of :meth:`Mutations.put_pairs`, then adjust every counter of
:meth:`Mutations.adjust_pairs`.  :class:`Writes` is the concrete, serializable form: a
``MutableView`` records each of its mutations into one through the ``record_*`` methods, which
fold a sequence of operations into that removes-puts-adjusts shape.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn, Protocol, runtime_checkable

from kvstore.codec import (
    KIND_WRITES,
    Reader,
    encode_varint,
    frame,
    write_key_bytes_pairs,
    write_key_int_pairs,
    write_ranges,
)
from kvstore.counters import check_amount, wrap64
from kvstore.errors import CorruptData
from kvstore.keys import MAX_KEY_SIZE, check_key, check_value
from kvstore.ranges import KeyRange, KeyRanges
from kvstore.sortedmap import SortedMap
from kvstore.store import KVStore, checked_mutations

__all__ = ["Mutations", "Writes"]

_MIN_AMOUNT = -(1 << 63)
_MAX_AMOUNT = (1 << 63) - 1


@runtime_checkable
class Mutations(Protocol):
    """Anything that can be applied to a store: removes, then puts, then adjusts.

    Each method returns its items in key order.
    """

    def remove_ranges(self) -> Iterable[KeyRange]:
        """The ranges to remove, in key order."""
        ...

    def put_pairs(self) -> Iterable[tuple[bytes, bytes]]:
        """The ``(key, value)`` pairs to put, in key order."""
        ...

    def adjust_pairs(self) -> Iterable[tuple[bytes, int]]:
        """The ``(key, amount)`` counter adjustments, in key order."""
        ...


class _ReadOnlySortedMap(SortedMap[Any, Any]):
    """A ``SortedMap`` whose mutators raise ``TypeError``: the maps of a read-only Writes."""

    __slots__ = ()

    @classmethod
    def copy_of(cls, source: SortedMap[Any, Any]) -> _ReadOnlySortedMap:
        result = cls()
        dict.update(result, source)  # dict's own update: the override below refuses
        return result

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("this mapping belongs to a read-only Writes; clone() the Writes to edit")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only


def _bytes_values(values: Iterable[Any]) -> bool:
    return set(map(type, values)) <= {bytes}


def _amount_values(values: Iterable[Any]) -> bool:
    values = list(values)
    return set(map(type, values)) <= {int} and (
        not values or (min(values) >= _MIN_AMOUNT and max(values) <= _MAX_AMOUNT)
    )


def _copy_map(
    data: Any, name: str, check: Callable[[Any, str], Any], fast_ok: Callable[[Any], bool]
) -> SortedMap[bytes, Any]:
    """Copy a mapping or an iterable of pairs into a new ``SortedMap``, checking every item.

    A dict whose keys and values already have the right types is copied at C speed
    (``Writes`` built on the commit path, PERFORMANCE R4).
    """
    if (
        isinstance(data, dict)
        and set(map(type, data)) <= {bytes}
        and max(map(len, data), default=0) <= MAX_KEY_SIZE
        and fast_ok(data.values())
    ):
        return SortedMap(data)
    items = data.items() if isinstance(data, Mapping) else data
    if isinstance(items, (str, bytes, bytearray, memoryview)) or not isinstance(items, Iterable):
        raise TypeError(
            f"{name} must be a mapping or an iterable of pairs, not {type(data).__name__}"
        )
    result: SortedMap[bytes, Any] = SortedMap()
    for key, value in items:
        result[check_key(key, f"a key of {name}")] = check(value, f"the value of {name}[{key!r}]")
    return result


def _drop_range(mapping: SortedMap[bytes, Any], lo: bytes, hi: bytes | None) -> None:
    """Delete the keys in ``[lo, hi)`` from ``mapping``: one by one if few, else by rebuilding."""
    doomed = list(mapping.irange(lo, hi, (True, False)))
    if len(doomed) * 4 < len(mapping):
        for key in doomed:
            del mapping[key]
        return
    kept = [(k, mapping[k]) for k in mapping.irange(None, lo, (True, False))]
    if hi is not None:
        kept += [(k, mapping[k]) for k in mapping.irange(hi, None)]
    mapping.clear()
    mapping.update(kept)


class Writes:
    """The mutations a view recorded: ``removes``, then ``puts``, then ``adjusts``.

    * ``removes`` — a :class:`~kvstore.KeyRanges` of removed keys;
    * ``puts`` — a :class:`~kvstore.sortedmap.SortedMap` key -> value;
    * ``adjusts`` — a ``SortedMap`` key -> signed 64-bit amount added to a counter.

    A ``SortedMap`` is a ``dict`` (stores and lookups at C speed, PERFORMANCE R3) that also
    iterates in key order and offers ``irange``/``bisect`` like ``sortedcontainers.SortedDict``.

    These are live structures; whoever edits them directly keeps the invariants: a key is
    never in both ``puts`` and ``adjusts``; a put or adjust may lie inside a removed range (the
    remove came first).  The ``record_*`` methods keep them for you, folding an operation into
    the record exactly as a store would apply it after the earlier ones.

    ``Writes(removes, puts, adjusts)`` copies and checks its arguments: ``removes`` is a
    ``KeyRanges`` or an iterable of ``KeyRange``; ``puts`` and ``adjusts`` are mappings or
    iterables of pairs.
    """

    __slots__ = ("_frozen", "adjusts", "puts", "removes")

    removes: KeyRanges
    puts: SortedMap[bytes, bytes]
    adjusts: SortedMap[bytes, int]
    _frozen: bool

    def __init__(
        self,
        removes: KeyRanges | Iterable[KeyRange] | None = None,
        puts: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]] | None = None,
        adjusts: Mapping[bytes, int] | Iterable[tuple[bytes, int]] | None = None,
    ) -> None:
        if removes is None and puts is None and adjusts is None:  # the common, cheap case (R6)
            self._init(KeyRanges(), SortedMap(), SortedMap(), False)
            return
        r = KeyRanges() if removes is None else KeyRanges._checked(removes, "removes")
        p: SortedMap[bytes, bytes] = (
            SortedMap() if puts is None else _copy_map(puts, "puts", check_value, _bytes_values)
        )
        a: SortedMap[bytes, int] = (
            SortedMap()
            if adjusts is None
            else _copy_map(adjusts, "adjusts", check_amount, _amount_values)
        )
        if p and a and not dict.keys(p).isdisjoint(a):
            both = min(dict.keys(p) & dict.keys(a))
            raise ValueError(f"key {both!r} is in both puts and adjusts; a key may be in only one")
        self._init(r, p, a, False)

    def _init(
        self,
        removes: KeyRanges,
        puts: SortedMap[bytes, bytes],
        adjusts: SortedMap[bytes, int],
        frozen: bool,
    ) -> None:
        # The slots' own setters: __setattr__ refuses, and object.__setattr__ costs more (R6).
        _SET_REMOVES(self, removes)
        _SET_PUTS(self, puts)
        _SET_ADJUSTS(self, adjusts)
        _SET_FROZEN(self, frozen)

    @classmethod
    def _of(
        cls,
        removes: KeyRanges,
        puts: SortedMap[bytes, bytes],
        adjusts: SortedMap[bytes, int],
        frozen: bool,
    ) -> Writes:
        """Build from structures that already hold the invariants (no checks, no copies)."""
        w = object.__new__(cls)
        w._init(removes, puts, adjusts, frozen)
        return w

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Writes.{name} cannot be rebound; edit the structure it holds")

    def _check_mutable(self) -> None:
        if self._frozen:
            raise TypeError("this Writes is read-only; clone() it for a mutable copy")

    # -- Mutations ---------------------------------------------------------------------------
    def remove_ranges(self) -> Iterator[KeyRange]:
        """The removed ranges, in key order."""
        return iter(self.removes)

    def put_pairs(self) -> Iterable[tuple[bytes, bytes]]:
        """The ``(key, value)`` puts, in key order."""
        return self.puts.items()

    def adjust_pairs(self) -> Iterable[tuple[bytes, int]]:
        """The ``(key, amount)`` counter adjustments, in key order."""
        return self.adjusts.items()

    def apply_to(self, store: KVStore) -> None:
        """Apply to ``store``; the same as ``store.apply(self)``."""
        if not isinstance(store, KVStore):
            raise TypeError(f"store must be a KVStore, not {type(store).__name__}")
        store.apply(self)

    # -- recording, for views ------------------------------------------------------------------
    # These take keys and values already checked by the caller (bytes, within the size limit):
    # a view calls them on every mutation (PERFORMANCE R3).
    def record_put(self, key: bytes, value: bytes) -> None:
        """Record ``put(key, value)``: it replaces any earlier put or adjust of ``key``."""
        if self._frozen:
            self._check_mutable()
        self.puts[key] = value
        adjusts = self.adjusts
        if adjusts and key in adjusts:
            del adjusts[key]

    def record_remove(self, key: bytes) -> None:
        """Record ``remove(key)``: the key joins ``removes`` and leaves ``puts``/``adjusts``."""
        if self._frozen:
            self._check_mutable()
        self.removes.add_key(key)
        puts, adjusts = self.puts, self.adjusts
        if key in puts:
            del puts[key]
        elif key in adjusts:
            del adjusts[key]

    def record_remove_range(self, min_key: bytes, max_key: bytes | None) -> None:
        """Record ``remove_range(min_key, max_key)``; puts and adjusts inside it are dropped."""
        self._check_mutable()
        if max_key is not None and max_key <= min_key:
            return
        self.removes.add_range(min_key, max_key)
        for mapping in (self.puts, self.adjusts):
            if mapping:
                _drop_range(mapping, min_key, max_key)

    def record_adjust(self, key: bytes, amount: int) -> None:
        """Record ``adjust_counter(key, amount)``.

        A put of ``key`` that is a valid counter (8 bytes) is replaced by the adjusted value; a
        put that is not is left alone, as is a key inside a removed range (it is gone, and
        adjusting a missing key does nothing).  Otherwise the amount is added to the key's
        adjustment, wrapping into the signed 64-bit range.
        """
        if self._frozen:
            self._check_mutable()
        puts = self.puts
        value = puts.get(key)
        if value is not None:
            if len(value) == 8:
                total = wrap64(int.from_bytes(value, "big", signed=True) + amount)
                puts[key] = total.to_bytes(8, "big", signed=True)
            return
        removes = self.removes
        # (KeyRanges.__len__ would fold queued keys first just to say "not empty": R10.)
        if (removes._ends or removes._pending) and removes.covers_key(key):
            return
        adjusts = self.adjusts
        adjusts[key] = wrap64(adjusts.get(key, 0) + amount)

    def merge(self, other: Mutations) -> None:
        """Record ``other`` on top of this: as if ``other`` were applied after these writes.

        Applying the merged writes to a store has the same effect as applying these and then
        ``other``.  ``other`` may be any :class:`Mutations`; every item is checked before any
        is recorded, so a bad one leaves these writes as they were.
        """
        self._check_mutable()
        removes, puts, adjusts = checked_mutations(other, "other")
        for r in removes:
            self.record_remove_range(r.min_key, r.max_key)
        for key, value in puts:
            self.record_put(key, value)
        for key, amount in adjusts:
            self.record_adjust(key, amount)

    # -- whole-object operations -------------------------------------------------------------
    def is_empty(self) -> bool:
        """Whether there is nothing to apply."""
        return not (self.puts or self.adjusts or self.removes)

    def __bool__(self) -> bool:
        return bool(self.puts or self.adjusts or self.removes)

    def clear(self) -> None:
        """Forget every recorded mutation."""
        self._check_mutable()
        self.removes.clear()
        self.puts.clear()
        self.adjusts.clear()

    def clone(self) -> Writes:
        """A mutable deep copy (the keys and values themselves are immutable and shared)."""
        return Writes._of(self.removes.clone(), self.puts.copy(), self.adjusts.copy(), False)

    def read_only(self) -> Writes:
        """An immutable copy: its mutators, and those of its three structures, raise TypeError."""
        if self._frozen:
            return self
        return Writes._of(
            self.removes.read_only(),
            _ReadOnlySortedMap.copy_of(self.puts),
            _ReadOnlySortedMap.copy_of(self.adjusts),
            True,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Writes):
            return NotImplemented
        return (
            self.puts == other.puts
            and self.adjusts == other.adjusts
            and self.removes == other.removes
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = 8

        def items(mapping: SortedMap[bytes, Any]) -> str:
            parts = [f"{k!r}: {v!r}" for k, v in itertools.islice(mapping.items(), shown)]
            if len(mapping) > shown:
                parts.append(f"... ({len(mapping)} entries)")
            return "{" + ", ".join(parts) + "}"

        text = (
            f"Writes(removes={list(itertools.islice(self.removes, shown))!r}"
            if len(self.removes) <= shown
            else f"Writes(removes={self.removes!r}"
        )
        text += f", puts={items(self.puts)}, adjusts={items(self.adjusts)})"
        return text + (".read_only()" if self._frozen else "")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle through the serialized form: __setattr__ refuses the default protocol.
        return (_unpickle, (self.serialize(), self._frozen))

    # -- serialization ----------------------------------------------------------------------
    def serialize(self) -> bytes:
        """The writes in kvstore's versioned, CRC-checked binary form (docs/serialization.md)."""
        out: list[bytes] = []
        write_ranges(out, *self.removes._bounds())
        puts, adjusts = self.puts, self.adjusts
        out.append(encode_varint(len(puts)))
        write_key_bytes_pairs(out, puts.items())
        out.append(encode_varint(len(adjusts)))
        write_key_int_pairs(out, adjusts.items())
        return frame(KIND_WRITES, out)

    @classmethod
    def deserialize(cls, data: Any) -> Writes:
        """Rebuild from :meth:`serialize` output; damaged input raises ``CorruptData``."""
        reader = Reader(data, KIND_WRITES)
        bounds = reader.ranges()
        put_keys, values = reader.key_bytes_pairs(reader.count(3, "puts"))
        adjust_keys, amounts = reader.key_int_pairs(reader.count(3, "adjusts"))
        reader.finish()
        puts: SortedMap[bytes, bytes] = SortedMap(zip(put_keys, values, strict=True))
        adjusts: SortedMap[bytes, int] = SortedMap(zip(adjust_keys, amounts, strict=True))
        if puts and adjusts and not dict.keys(puts).isdisjoint(adjusts):
            raise CorruptData("serialized Writes has a key in both its puts and its adjusts")
        removes = KeyRanges()
        removes._set(bounds)
        return cls._of(removes, puts, adjusts, False)


_SET_REMOVES = Writes.__dict__["removes"].__set__
_SET_PUTS = Writes.__dict__["puts"].__set__
_SET_ADJUSTS = Writes.__dict__["adjusts"].__set__
_SET_FROZEN = Writes.__dict__["_frozen"].__set__


def _unpickle(data: bytes, frozen: bool) -> Writes:
    writes = Writes.deserialize(data)
    return writes.read_only() if frozen else writes
