"""Subspaces: a key prefix plus the tuple layer, to give each part of an application its keys.

A :class:`Subspace` is an immutable prefix.  Its keys are the prefix followed by a packed
tuple; ``pack`` builds them, ``unpack`` reads them back, ``range`` bounds a scan over them.
This is FoundationDB's ``Subspace``, with the same byte layout.

>>> users = Subspace(("users",))
>>> users.pack((42, "name"))
b'\\x02users\\x00\\x15*\\x02name\\x00'
>>> users.unpack(b'\\x02users\\x00\\x15*\\x02name\\x00')
(42, 'name')
>>> users[42] == users.subspace((42,))
True
"""

from __future__ import annotations

from typing import Any

from kvstore import tuple as tuple_layer
from kvstore.ranges import KeyRange

__all__ = ["Subspace"]

_BYTES_LIKE = (bytes, bytearray, memoryview)


class Subspace:
    """The keys that start with one prefix, addressed by tuples.

    The prefix is ``raw_prefix`` followed by ``prefix_tuple_or_bytes``: a tuple is packed
    with the tuple layer, bytes are used as they are.  So ``Subspace(("app", 1))`` and
    ``Subspace(tuple.pack(("app", 1)))`` are the same subspace, and ``Subspace(b"\\x15\\x01")``
    wraps a raw prefix (which need not be a packed tuple).  Subspaces are equal when their
    prefixes are; they are hashable.
    """

    __slots__ = ("_prefix",)

    _prefix: bytes

    def __init__(
        self, prefix_tuple_or_bytes: tuple[Any, ...] | bytes = (), raw_prefix: bytes = b""
    ) -> None:
        if not isinstance(raw_prefix, _BYTES_LIKE):
            raise TypeError(f"raw_prefix must be bytes-like, not {type(raw_prefix).__name__}")
        raw = bytes(raw_prefix)
        if isinstance(prefix_tuple_or_bytes, tuple):
            prefix = tuple_layer.pack(prefix_tuple_or_bytes, raw)
        elif isinstance(prefix_tuple_or_bytes, _BYTES_LIKE):
            prefix = raw + bytes(prefix_tuple_or_bytes)
        else:
            raise TypeError(
                "prefix_tuple_or_bytes must be a tuple or bytes-like, "
                f"not {type(prefix_tuple_or_bytes).__name__}"
            )
        object.__setattr__(self, "_prefix", prefix)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Subspace is immutable")

    def key(self) -> bytes:
        """The raw prefix: every key of this subspace starts with it."""
        return self._prefix

    def pack(self, t: tuple[Any, ...] = ()) -> bytes:
        """The key for tuple ``t`` in this subspace: the prefix followed by ``tuple.pack(t)``."""
        return tuple_layer.pack(t, self._prefix)

    def unpack(self, key: bytes) -> tuple[Any, ...]:
        """The tuple that ``key`` packs after the prefix.

        ``ValueError`` if ``key`` does not start with the prefix; :class:`kvstore.CorruptData`
        (also a ``ValueError``) if the rest is not a packed tuple.
        """
        if not self.contains(key):
            raise ValueError(f"key {bytes(key)!r} is not in {self!r}")
        return tuple_layer.unpack(key, len(self._prefix))

    def range(self, t: tuple[Any, ...] = ()) -> KeyRange:
        """The keys of every tuple in this subspace that strictly extends ``t``.

        ``[pack(t) + 0x00, pack(t) + 0xff)``, as :func:`kvstore.tuple.range`: the key
        ``pack(t)`` itself is not included (so ``range()`` leaves out the bare prefix).
        """
        p = tuple_layer.pack(t, self._prefix)
        return KeyRange(p + b"\x00", p + b"\xff")

    def contains(self, key: bytes) -> bool:
        """Whether ``key`` starts with this subspace's prefix."""
        if not isinstance(key, _BYTES_LIKE):
            raise TypeError(f"key must be bytes-like, not {type(key).__name__}")
        return bytes(key).startswith(self._prefix)

    def subspace(self, t: tuple[Any, ...]) -> Subspace:
        """The subspace of this one for the tuple ``t``: prefix ``self.pack(t)``."""
        if not isinstance(t, tuple):
            raise TypeError(f"t must be a tuple, not {type(t).__name__}")
        return Subspace(t, self._prefix)

    def __getitem__(self, item: Any) -> Subspace:
        """``sub[item]`` is ``sub.subspace((item,))``."""
        return self.subspace((item,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Subspace):
            return NotImplemented
        return self._prefix == other._prefix

    def __hash__(self) -> int:
        return hash((Subspace, self._prefix))

    def __repr__(self) -> str:
        return f"Subspace({self._prefix!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Subspace, (self._prefix,))
