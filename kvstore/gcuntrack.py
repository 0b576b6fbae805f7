"""Keeping objects that can never be in a reference cycle out of the garbage collector's view.

CPython stops tracking an exact tuple of atomic items (bytes, str, numbers) at its first
collection, but never a tuple subclass such as ``KVPair``, and a dict is tracked again as soon
as a tracked value enters it.  Where kvstore holds many such objects -- the pairs a kept scan
builds (PERFORMANCE L0d, R5), the record tuples of the concept graph's read plane (L4) -- every
full collection would visit each one.  :data:`untrack` lets them opt out as CPython's own
atomic tuples do.

A utility, not part of the store: the core and the layers both use it, and it knows nothing
of either.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

__all__ = ["untrack"]


def _untracker() -> Callable[[int], None] | None:
    """``PyObject_GC_UnTrack`` called with an object's ``id()``; None where unavailable.

    Only on CPython (where ``id()`` is the object's address), called through ``ctypes``
    without releasing the GIL (``PYFUNCTYPE``), and only once a probe tuple is seen untracked.
    """
    if sys.implementation.name != "cpython":
        return None
    try:
        import ctypes

        address = ctypes.cast(ctypes.pythonapi.PyObject_GC_UnTrack, ctypes.c_void_p).value
        if not address:
            return None
        found: Callable[[int], None] = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(address)
        probe = tuple([b"probe", 1.0])
        found(id(probe))
        if gc.is_tracked(probe):
            return None
    except Exception:  # no ctypes, no pythonapi: objects stay tracked, nothing else changes
        return None
    return found


#: ``untrack(id(obj))`` stops the collector tracking ``obj``; ``None`` where that is not
#: available (then callers leave their objects tracked).  Only for objects that hold nothing
#: but atomic items: an untracked object in a reference cycle would never be collected.
untrack: Callable[[int], None] | None = _untracker()
