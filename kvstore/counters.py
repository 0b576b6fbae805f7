"""Counter encoding: 8-byte big-endian signed two's complement, wrapping like a Java long."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_AMOUNT", "MIN_AMOUNT", "check_amount", "decode_counter", "encode_counter", "wrap64"]

#: The range of a counter and of an amount added to one: signed 64-bit.
MIN_AMOUNT = _MIN = -(1 << 63)
MAX_AMOUNT = _MAX = (1 << 63) - 1


def wrap64(value: int) -> int:
    """Wrap an integer modulo 2**64 into the signed 64-bit range."""
    return ((value + (1 << 63)) & 0xFFFFFFFFFFFFFFFF) - (1 << 63)


def check_amount(amount: Any, name: str = "amount") -> int:
    """Check that ``amount`` is a signed 64-bit ``int``."""
    if type(amount) is not int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"{name} must be an int, not {type(amount).__name__}")
        amount = int(amount)
    if not _MIN <= amount <= _MAX:
        raise ValueError(f"{name} {amount} is outside the signed 64-bit range [-2**63, 2**63 - 1]")
    return amount


def encode_counter(value: int) -> bytes:
    """Encode a signed 64-bit integer as an 8-byte big-endian counter value."""
    return check_amount(value, "value").to_bytes(8, "big", signed=True)


def decode_counter(value: Any) -> int:
    """Decode an 8-byte counter value; ``ValueError`` if it is not 8 bytes.

    The parameter is ``value``, as in :func:`encode_counter` and ``KVStore.decode_counter``,
    so the errors name the argument the caller passed.
    """
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"value must be bytes-like, not {type(value).__name__}")
    if len(value) != 8:
        raise ValueError(f"a counter is 8 bytes; value is {len(value)} bytes")
    return int.from_bytes(value, "big", signed=True)
