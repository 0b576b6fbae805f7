"""Key ranges: :class:`KeyRange` (one half-open interval) and :class:`KeyRanges` (a set of them).

Keys order as unsigned bytes.  A range is ``[min_key, max_key)``; ``max_key=None`` means no
upper bound.  These are the vocabulary of removes, reads and conflicts.
"""

from __future__ import annotations

from typing import Any

from kvstore.keys import check_range_bound, key_after, prefix_end

__all__ = ["KeyRange"]


class KeyRange:
    """An immutable half-open range of keys ``[min_key, max_key)``.

    ``max_key=None`` is unbounded.  Ranges are hashable and order by ``min_key``, then by
    ``max_key`` (unbounded last).  ``min_key > max_key`` raises ``ValueError``.

    >>> r = KeyRange(b"a", b"c")
    >>> r.contains(b"b"), r.contains(b"c")
    (True, False)
    >>> KeyRange.prefix(b"ab")
    KeyRange(b'ab', b'ac')
    """

    __slots__ = ("_hash", "max_key", "min_key")

    min_key: bytes
    max_key: bytes | None
    FULL: KeyRange

    def __init__(self, min_key: Any, max_key: Any) -> None:
        lo = b"" if min_key is None else check_range_bound(min_key, "min_key")
        hi = None if max_key is None else check_range_bound(max_key, "max_key")
        if hi is not None and lo > hi:
            raise ValueError(f"min_key {lo!r} is greater than max_key {hi!r}")
        object.__setattr__(self, "min_key", lo)
        object.__setattr__(self, "max_key", hi)
        object.__setattr__(self, "_hash", None)

    @classmethod
    def _make(cls, lo: bytes, hi: bytes | None) -> KeyRange:
        """Build without checks, for callers that already hold valid bounds."""
        r = object.__new__(cls)
        object.__setattr__(r, "min_key", lo)
        object.__setattr__(r, "max_key", hi)
        object.__setattr__(r, "_hash", None)
        return r

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeyRange is immutable")

    @classmethod
    def single(cls, key: Any) -> KeyRange:
        """The range holding exactly ``key``: ``[key, key + b"\\x00")``."""
        k = check_range_bound(key, "key")
        return cls._make(k, key_after(k))

    @classmethod
    def prefix(cls, prefix: Any) -> KeyRange:
        """The range of every key that starts with ``prefix``."""
        p = check_range_bound(prefix, "prefix")
        return cls._make(p, prefix_end(p))

    # -- queries -------------------------------------------------------------------------
    def contains(self, key_or_range: Any) -> bool:
        """Whether a key, or all of another range, lies inside this range."""
        if isinstance(key_or_range, KeyRange):
            other = key_or_range
            if other.min_key < self.min_key:
                return False
            if self.max_key is None:
                return True
            if other.max_key is None:
                return False
            return other.max_key <= self.max_key or other.is_empty()
        key = check_range_bound(key_or_range, "key")
        return self.min_key <= key and (self.max_key is None or key < self.max_key)

    def __contains__(self, key_or_range: Any) -> bool:
        return self.contains(key_or_range)

    def overlaps(self, other: KeyRange) -> bool:
        """Whether the two ranges share at least one key."""
        if not isinstance(other, KeyRange):
            raise TypeError(f"range must be a KeyRange, not {type(other).__name__}")
        lo = max(self.min_key, other.min_key)
        for hi in (self.max_key, other.max_key):
            if hi is not None and hi <= lo:
                return False
        return True

    def is_empty(self) -> bool:
        """Whether the range holds no key (``min_key == max_key``)."""
        return self.max_key == self.min_key

    def is_single_key(self) -> bool:
        """Whether the range holds exactly one key."""
        return self.max_key is not None and self.max_key == key_after(self.min_key)

    def is_full(self) -> bool:
        """Whether the range holds every key."""
        return self.min_key == b"" and self.max_key is None

    def is_prefix_range(self) -> bool:
        """Whether the range is exactly the keys starting with some prefix."""
        if self.is_full():
            return True
        if self.max_key is None:
            return self.min_key.strip(b"\xff") == b""
        return prefix_end(self.min_key) == self.max_key

    # -- value protocol ------------------------------------------------------------------
    def _sort_key(self) -> tuple[bytes, int, bytes]:
        hi = self.max_key
        return (self.min_key, 1, b"") if hi is None else (self.min_key, 0, hi)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self.min_key == other.min_key and self.max_key == other.max_key

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash((self.min_key, self.max_key))
            object.__setattr__(self, "_hash", h)
        return h

    def __lt__(self, other: KeyRange) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self._sort_key() < other._sort_key()

    def __le__(self, other: KeyRange) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self._sort_key() <= other._sort_key()

    def __gt__(self, other: KeyRange) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self._sort_key() > other._sort_key()

    def __ge__(self, other: KeyRange) -> bool:
        if not isinstance(other, KeyRange):
            return NotImplemented
        return self._sort_key() >= other._sort_key()

    def __repr__(self) -> str:
        return f"KeyRange({self.min_key!r}, {self.max_key!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (KeyRange, (self.min_key, self.max_key))


KeyRange.FULL = KeyRange._make(b"", None)
