"""pytest plugin: run persidict's own suite against :class:`kvstore.PersiDict`.

Only the constructors are adapted (``LocalDict`` -> ``PersiDict(None)``,
``FileDirDict(base_dir)`` -> ``PersiDict(base_dir)``), and persidict's names that kvstore also
defines (flags, jokers, errors, ``SafeStrTuple``, ``PersiDict``) are pointed at kvstore's.
Loaded by :mod:`tests.compat.persidict_suite` with ``-p``; never imported by our own suite.
"""

from __future__ import annotations

import sys
from typing import Any

from kvstore.layers import persidict as kp

_UNSET: Any = object()


class LocalDict(kp.PersiDict):
    def __init__(
        self,
        *,
        backend: Any = None,
        serialization_format: str = "pkl",
        append_only: bool = False,
        base_class_for_values: type | None = None,
        prune_interval: int | None = 64,
        db: Any = _UNSET,
        prefix: Any = (),
    ) -> None:
        super().__init__(
            None if db is _UNSET else db,
            prefix,
            serialization_format=serialization_format,
            append_only=append_only,
            base_class_for_values=base_class_for_values,
        )


class FileDirDict(kp.PersiDict):
    def __init__(
        self,
        *,
        base_dir: Any = "__file_dir_dict__",
        serialization_format: str = "pkl",
        append_only: bool = False,
        digest_len: int = 4,
        base_class_for_values: type | None = None,
        db: Any = _UNSET,
        prefix: Any = (),
    ) -> None:
        super().__init__(
            base_dir if db is _UNSET else db,
            prefix,
            serialization_format=serialization_format,
            append_only=append_only,
            base_class_for_values=base_class_for_values,
        )


MAPPED = {
    "LocalDict": LocalDict,
    "FileDirDict": FileDirDict,
    "NonEmptySafeStrTuple": kp.SafeStrTuple,
}
for name in kp.__all__:
    if name in ("PersiDictKey", "SAFE_CHARS_SET", "SAFE_STRING_MAX_LENGTH"):
        continue
    MAPPED[name] = getattr(kp, name)

for modname, mod in list(sys.modules.items()):
    if modname == "persidict" or modname.startswith("persidict."):
        for name, obj in MAPPED.items():
            if hasattr(mod, name):
                setattr(mod, name, obj)
