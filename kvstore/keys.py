"""Argument checking for keys and values, shared by every store.

Keys and values are ``bytes``; any bytes-like input is accepted and copied to ``bytes``.
Keys are limited to :data:`MAX_KEY_SIZE` bytes in every store alike, because that is what LMDB,
the embedded default, can hold.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_KEY_SIZE",
    "check_bound",
    "check_bounds",
    "check_seek_bounds",
    "check_key",
    "check_range_bound",
    "check_value",
    "key_after",
    "prefix_end",
]

#: The longest key any store accepts (LMDB's default limit).
MAX_KEY_SIZE = 511

_BYTES_LIKE = (bytearray, memoryview)


def _too_long(name: str, key: bytes) -> ValueError:
    return ValueError(f"{name} is {len(key)} bytes; the limit is {MAX_KEY_SIZE} (MAX_KEY_SIZE)")


def check_key(key: Any, name: str = "key") -> bytes:
    """Return ``key`` as ``bytes`` or raise ``TypeError``/``ValueError`` naming ``name``."""
    if type(key) is not bytes:
        if not isinstance(key, (bytes, *_BYTES_LIKE)):
            raise TypeError(f"{name} must be bytes-like, not {type(key).__name__}")
        key = bytes(key)
    if len(key) > MAX_KEY_SIZE:
        raise _too_long(name, key)
    return key


def check_bound(key: Any, name: str) -> bytes | None:
    """Like :func:`check_range_bound` but ``None`` (unbounded) is allowed."""
    if key is None:
        return None
    return check_range_bound(key, name)


def check_value(value: Any, name: str = "value") -> bytes:
    """Return ``value`` as ``bytes`` or raise ``TypeError`` naming ``name``."""
    if type(value) is bytes:
        return value
    if not isinstance(value, (bytes, *_BYTES_LIKE)):
        raise TypeError(f"{name} must be bytes-like, not {type(value).__name__}")
    return bytes(value)


def check_range_bound(key: Any, name: str) -> bytes:
    """Check one bound of a range.

    A bound may be one byte longer than :data:`MAX_KEY_SIZE` so that the successor of a
    longest key (``key + b"\\x00"``, see :func:`key_after`) can bound a range.
    """
    if type(key) is not bytes:
        if not isinstance(key, (bytes, *_BYTES_LIKE)):
            raise TypeError(f"{name} must be bytes-like, not {type(key).__name__}")
        key = bytes(key)
    if len(key) > MAX_KEY_SIZE + 1:
        raise _too_long(name, key)
    return key


def check_bounds(min_key: Any, max_key: Any) -> tuple[bytes, bytes | None]:
    """Check a half-open range's bounds; ``min_key=None`` means ``b""``.

    Raises ``ValueError`` when ``min_key > max_key``.
    """
    lo = b"" if min_key is None else check_range_bound(min_key, "min_key")
    hi = None if max_key is None else check_range_bound(max_key, "max_key")
    if hi is not None and lo > hi:
        raise ValueError(f"min_key {lo!r} is greater than max_key {hi!r}")
    return lo, hi


def check_seek_bounds(min_key: Any, max_key: Any) -> tuple[bytes, bytes | None]:
    """Check the bounds of ``get_at_least``/``get_at_most``; ``None`` is unbounded.

    Like :func:`check_bounds` (``min_key=None`` means ``b""``, ``max_key=None`` no upper
    bound), but an empty or inverted range is not an error: the seek then finds nothing.
    """
    lo = b"" if min_key is None else check_range_bound(min_key, "min_key")
    hi = None if max_key is None else check_range_bound(max_key, "max_key")
    return lo, hi


def key_after(key: bytes) -> bytes:
    """The smallest key greater than ``key``."""
    return key + b"\x00"


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix``.

    ``None`` when there is none (``prefix`` is empty or all ``0xff``).
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))
