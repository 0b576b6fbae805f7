"""Argument checks shared by every public entry point (SPEC §7: bad arguments raise
``TypeError``/``ValueError`` with a message naming the argument and the rule broken).

One place for the rules, so every store, view, transaction and database checks alike:

- a boolean flag must be a real ``bool`` (``"no"`` is truthy and would silently flip it);
- a number must be of the right type (``bool`` is not a number here), finite and in range;
- ``mutations`` must look like a :class:`kvstore.Mutations`.
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = [
    "check_bool",
    "check_int",
    "check_map_size",
    "check_mutations",
    "check_number",
    "check_optional_bool",
]

_MUTATION_METHODS = ("remove_ranges", "put_pairs", "adjust_pairs")


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` if it is a ``bool``; else raise ``TypeError`` naming ``name``."""
    if type(value) is not bool:
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def check_optional_bool(value: Any, name: str) -> bool | None:
    """Like :func:`check_bool`, but ``None`` is allowed too."""
    if value is None:
        return None
    if type(value) is not bool:
        raise TypeError(f"{name} must be a bool or None, not {type(value).__name__}")
    return value


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an ``int`` in ``[minimum, maximum]``.

    ``TypeError`` unless it is an ``int`` (``bool`` is refused); ``ValueError`` when out of
    range.  Both messages name ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, not {value}")
    return value


def check_number(
    value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """Return ``value`` as a finite ``float`` in ``[minimum, maximum]``.

    ``TypeError`` unless it is an ``int`` or ``float`` (``bool`` is refused); ``ValueError``
    when it is NaN, infinite or out of range.  Both messages name ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, not {value!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be <= {maximum}, not {value!r}")
    return number


def check_map_size(value: Any, name: str = "map_size") -> int:
    """An LMDB map size: an ``int`` from 1 to the largest the platform's ``size_t`` holds.

    (py-lmdb would raise ``OverflowError`` on a larger one.)
    """
    return check_int(value, name, minimum=1, maximum=sys.maxsize)


def check_mutations(mutations: Any, name: str = "mutations") -> Any:
    """Return ``mutations`` if it has the three ``Mutations`` methods; else ``TypeError``."""
    for method in _MUTATION_METHODS:
        if not callable(getattr(mutations, method, None)):
            raise TypeError(
                f"{name} must be a Mutations (with remove_ranges, put_pairs and adjust_pairs),"
                f" not {type(mutations).__name__}"
            )
    return mutations
