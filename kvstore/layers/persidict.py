"""PersiDict: persidict's ``LocalDict`` surface on a kvstore database -- durable and transactional.

A :class:`PersiDict` is a mutable mapping whose keys are non-empty tuples of *safe strings*
(``"a"`` is the 1-tuple ``("a",)``) and whose values are pickled (``"pkl"``), JSON-encoded
(``"json"``) or, for any other format name, stored as text.  It follows the API of the
`persidict <https://github.com/pythagoras-dev/persidict>`_ package -- ``etag``, ``timestamp``,
``get_subdict``, the jokers :data:`KEEP_CURRENT` / :data:`DELETE_CURRENT`, ``append_only`` with
:class:`MutationPolicyError`, ``newest_keys`` ... -- and adds what a transactional store makes
cheap: every operation is atomic across threads and processes, the ETag-conditional operations
(:meth:`~PersiDict.set_item_if` and friends) are true compare-and-swaps, and
:meth:`~PersiDict.in_transaction` lets a caller's transaction include dict operations.

>>> d = PersiDict(None)                       # a fresh in-memory database
>>> d["Eliza"] = "MIT Eliza was a mock psychotherapist."
>>> d["Eliza", "year"] = 1965
>>> sorted(d.keys())
[('Eliza',), ('Eliza', 'year')]
>>> d.get_subdict("Eliza")["year"]
1965

Storage layout.  The item ``key`` of a dict whose ``prefix`` is ``p`` and whose format is
``f`` lives at ``kvstore.tuple.pack((*p, *key, None, f))``: the ``None`` marks where the key
ends (every key part is a ``str``, so nothing else packs to ``0x00`` there), which keeps each
format's items apart exactly as persidict keeps ``key.pkl`` and ``key.json`` apart, and makes
a dict's items sort in key-tuple order, a key just before its extensions.  A sub-dictionary is
simply the dict with a longer prefix, so it shares storage with its parent.  The stored value
is a 17-byte header -- format version ``1``, the write time (a big-endian double of
``time.time()``) and a 64-bit write token -- followed by the serialized value.  The token is
the ETag: it is drawn afresh for every write (a per-process random base plus a counter), so two
writes of one key never share an ETag, even in the same clock tick.
"""

from __future__ import annotations

import heapq
import itertools
import os
import pickle
import random
import re
import string
import struct
import sys
import time
from collections.abc import (
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NewType, TypeVar

import attrs

import kvstore
from kvstore import (
    MAX_KEY_SIZE,
    CorruptData,
    Database,
    KeyRange,
    KVError,
    KVStore,
    RetryTransaction,
    Subspace,
)
from kvstore import tuple as tuple_layer

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ALWAYS_RETRIEVE",
    "ANY_ETAG",
    "DELETE_CURRENT",
    "ETAG_HAS_CHANGED",
    "ETAG_IS_THE_SAME",
    "IF_ETAG_CHANGED",
    "ITEM_NOT_AVAILABLE",
    "KEEP_CURRENT",
    "NEVER_RETRIEVE",
    "SAFE_CHARS_SET",
    "SAFE_STRING_MAX_LENGTH",
    "SafeStrTuple",
    "VALUE_NOT_RETRIEVED",
    "ConcurrencyConflictError",
    "ConditionalOperationResult",
    "ETagConditionFlag",
    "ETagValue",
    "ItemNotAvailableFlag",
    "Joker",
    "MutationPolicyError",
    "OperationResult",
    "PersiDict",
    "PersiDictKey",
    "RetrieveValueFlag",
    "ValueNotRetrievedFlag",
]

R = TypeVar("R")

# -- safe strings ---------------------------------------------------------------------------------

#: The characters a key part may use: ASCII letters, digits and ``()_-~.=`` (persidict's set).
SAFE_CHARS_SET: Final[frozenset[str]] = frozenset(string.ascii_letters + string.digits + "()_-~.=")
#: A key part must be shorter than this (persidict's limit): 1 to 253 characters.
SAFE_STRING_MAX_LENGTH: Final[int] = 254
_SAFE_PART = re.compile(rf"[A-Za-z0-9()_\-~.=]{{1,{SAFE_STRING_MAX_LENGTH - 1}}}")

#: What the dict accepts as a key: a safe string, or a sequence (possibly nested) of them.
PersiDictKey = str | Sequence[Any]

_BYTES_LIKE = (bytes, bytearray, memoryview)


def _flatten(key: object, out: list[str], what: str) -> None:
    """Append the strings of ``key`` (a str or a nested sequence of them) to ``out``."""
    if isinstance(key, str):
        out.append(key)
    elif isinstance(key, Sequence) and not isinstance(key, _BYTES_LIKE):
        for part in key:
            _flatten(part, out, what)
    else:
        raise TypeError(
            f"{what} parts must be str (or sequences of str), not {type(key).__name__}"
        )


def _safe_tuple(key: object, what: str = "key", allow_empty: bool = False) -> tuple[str, ...]:
    """``key`` as a flat tuple of safe strings, or ``TypeError`` / ``ValueError`` saying why not.

    A str is a 1-tuple; sequences (tuples, lists, persidict's ``SafeStrTuple``) are flattened,
    nested ones too, as persidict does.  Each part must be 1 to 253 characters from
    :data:`SAFE_CHARS_SET`.
    """
    if type(key) is str:
        parts: tuple[str, ...] = (key,)
    elif type(key) is tuple and all(type(p) is str for p in key):
        parts = key
    else:
        out: list[str] = []
        _flatten(key, out, what)
        parts = tuple(out)
    fullmatch = _SAFE_PART.fullmatch
    for part in parts:
        if fullmatch(part) is None or part in _DOT_PARTS:
            raise ValueError(_part_error(part, what))
    if not parts and not allow_empty:
        raise ValueError(f"{what} must have at least one part; got an empty key")
    return parts


class SafeStrTuple(tuple[str, ...]):
    """A key as the dict hands it back: a tuple of safe strings, like persidict's SafeStrTuple.

    It is a plain ``tuple`` subclass (so ``k == ("a", "b")``, unpacking and indexing work),
    and a one-part key also equals its string: ``SafeStrTuple(("a",)) == "a"``, so
    ``"a" in list(d.keys())`` holds.  Other sequences compare by their flattened parts, as
    persidict coerces them.  ``.strings`` (and ``.str_chain``) is the plain tuple.  The hash
    is the plain tuple's, consistent with tuple equality (``{k: 1}[("a",)]`` works); a str
    and a tuple cannot share one hash, so look a one-part key up in a set or dict by tuple.
    """

    __slots__ = ()

    @property
    def strings(self) -> tuple[str, ...]:
        """The parts as a plain tuple."""
        return tuple(self)

    @property
    def str_chain(self) -> tuple[str, ...]:
        """Alias of :attr:`strings` (persidict's older name)."""
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple):
            return tuple.__eq__(self, other)
        if isinstance(other, str):
            return len(self) == 1 and self[0] == other
        if isinstance(other, Sequence) and not isinstance(other, _BYTES_LIKE):
            try:
                return tuple.__eq__(self, _safe_tuple(other, allow_empty=True))
            except (TypeError, ValueError):
                return NotImplemented
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return tuple.__repr__(self)


#: Safe-character parts refused anyway, as persidict does: they name directories in a path.
_DOT_PARTS: Final = frozenset({".", ".."})


def _part_error(part: str, what: str) -> str:
    if not part:
        return f"{what} parts must not be empty"
    if part in _DOT_PARTS:
        return f"{what} part {part!r} is not allowed (it names a directory in persidict)"
    if len(part) >= SAFE_STRING_MAX_LENGTH:
        return (
            f"{what} part is {len(part)} characters long; "
            f"the limit is {SAFE_STRING_MAX_LENGTH - 1}"
        )
    bad = sorted({c for c in part if c not in SAFE_CHARS_SET})
    return (
        f"{what} part {part!r} has unsafe characters {''.join(bad)!r}; "
        "allowed are ASCII letters, digits and ()_-~.="
    )


# -- flags ----------------------------------------------------------------------------------------


class _Flag:
    """A named singleton.  It pickles and copies as itself, so ``is`` comparisons keep working."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name  # pickled as a reference to the module-level constant

    def __copy__(self) -> _Flag:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Flag:
        return self


class Joker(_Flag):
    """A command written in place of a value: :data:`KEEP_CURRENT` or :data:`DELETE_CURRENT`."""

    __slots__ = ()


class ItemNotAvailableFlag(_Flag):
    """The type of :data:`ITEM_NOT_AVAILABLE`."""

    __slots__ = ()


class ValueNotRetrievedFlag(_Flag):
    """The type of :data:`VALUE_NOT_RETRIEVED`."""

    __slots__ = ()


class ETagConditionFlag(_Flag):
    """The type of :data:`ANY_ETAG`, :data:`ETAG_IS_THE_SAME` and :data:`ETAG_HAS_CHANGED`."""

    __slots__ = ()


class RetrieveValueFlag(_Flag):
    """The type of :data:`ALWAYS_RETRIEVE`, :data:`NEVER_RETRIEVE` and :data:`IF_ETAG_CHANGED`."""

    __slots__ = ()


#: ``d[k] = KEEP_CURRENT`` changes nothing (and creates nothing).
KEEP_CURRENT: Final = Joker("KEEP_CURRENT")
#: ``d[k] = DELETE_CURRENT`` deletes ``k`` if it is there (like :meth:`PersiDict.discard`).
DELETE_CURRENT: Final = Joker("DELETE_CURRENT")
#: Stands for a missing item: as an expected or actual ETag, a result value, a transformer input.
ITEM_NOT_AVAILABLE: Final = ItemNotAvailableFlag("ITEM_NOT_AVAILABLE")
#: In a result, the item exists but its value was not read (see ``retrieve_value``).
VALUE_NOT_RETRIEVED: Final = ValueNotRetrievedFlag("VALUE_NOT_RETRIEVED")
#: A condition that always holds.
ANY_ETAG: Final = ETagConditionFlag("ANY_ETAG")
#: Holds when the item's current ETag equals the expected one (both may be ITEM_NOT_AVAILABLE).
ETAG_IS_THE_SAME: Final = ETagConditionFlag("ETAG_IS_THE_SAME")
#: Holds when the item's current ETag differs from the expected one.
ETAG_HAS_CHANGED: Final = ETagConditionFlag("ETAG_HAS_CHANGED")
#: Conditional operations return the current value whenever the item exists.
ALWAYS_RETRIEVE: Final = RetrieveValueFlag("ALWAYS_RETRIEVE")
#: Conditional operations never read the value; they return VALUE_NOT_RETRIEVED instead.
NEVER_RETRIEVE: Final = RetrieveValueFlag("NEVER_RETRIEVE")
#: Read the value only when the current ETag differs from the expected one (the default):
#: a caller that expected this ETag already has the value.
IF_ETAG_CHANGED: Final = RetrieveValueFlag("IF_ETAG_CHANGED")

_CONDITIONS = (ANY_ETAG, ETAG_IS_THE_SAME, ETAG_HAS_CHANGED)
_RETRIEVALS = (ALWAYS_RETRIEVE, NEVER_RETRIEVE, IF_ETAG_CHANGED)

#: An ETag: an opaque string that changes with every write of an item.
ETagValue = NewType("ETagValue", str)
ETagIfExists = ETagValue | ItemNotAvailableFlag


@attrs.frozen
class ConditionalOperationResult:
    """What an ETag-conditional operation found and did.

    ``actual_etag`` is the item's ETag when the condition was checked (ITEM_NOT_AVAILABLE if it
    was missing); ``resulting_etag`` its ETag afterwards; ``new_value`` the value afterwards --
    the written value, the existing value, ITEM_NOT_AVAILABLE when there is none, or
    VALUE_NOT_RETRIEVED when it was not read.
    """

    condition_was_satisfied: bool
    actual_etag: ETagIfExists
    resulting_etag: ETagIfExists
    new_value: Any

    @property
    def value_was_mutated(self) -> bool:
        """Whether the operation wrote or deleted the item."""
        return self.resulting_etag != self.actual_etag


@attrs.frozen
class OperationResult:
    """What :meth:`PersiDict.transform_item` left: the item's ETag and value afterwards."""

    resulting_etag: ETagIfExists
    new_value: Any


# -- errors ---------------------------------------------------------------------------------------


class MutationPolicyError(KVError, TypeError):
    """The dict's policy forbids this mutation: an ``append_only`` dict never overwrites or deletes.

    A ``TypeError``, as in persidict; ``policy`` names the policy (``"append-only"``).
    """

    def __init__(self, policy: str, detail: str = "") -> None:
        super().__init__(f"{policy}: {detail}" if detail else policy)
        self.policy = policy
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.policy, self.detail))


class ConcurrencyConflictError(RetryTransaction, RuntimeError):
    """An operation kept conflicting with concurrent writers until its retries ran out.

    ``key`` is the item, ``attempts`` the number of transactions tried; the last
    :class:`kvstore.RetryTransaction` is the ``__cause__``.  A ``RuntimeError``, as persidict's
    error of the same name, and a :class:`kvstore.RetryTransaction`.
    """

    def __init__(self, key: object, attempts: int) -> None:
        super().__init__(f"operation on key {key!r} failed after {attempts} attempt(s)")
        self.key = key
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.attempts))


def _append_only(key: tuple[str, ...], what: str) -> MutationPolicyError:
    return MutationPolicyError(
        "append-only", f"cannot {what} {key!r}; an append-only PersiDict only adds new items"
    )


# -- stored records -------------------------------------------------------------------------------

_HEADER = struct.Struct(">BdQ")  # record version, time.time() of the write, write token
_HEADER_SIZE = _HEADER.size
_RECORD_VERSION = 1
_TOKEN_MASK = (1 << 64) - 1
_token_base = int.from_bytes(os.urandom(8), "big")
_token_counter = itertools.count()


def _reseed_tokens() -> None:
    """A forked child draws its own token base, so it never repeats its parent's ETags."""
    global _token_base, _token_counter
    _token_base = int.from_bytes(os.urandom(8), "big")
    _token_counter = itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_tokens)


def _record(payload: bytes) -> tuple[bytes, ETagValue]:
    """A stored record for ``payload`` written now, and its ETag."""
    token = (_token_base + next(_token_counter)) & _TOKEN_MASK
    return _HEADER.pack(_RECORD_VERSION, time.time(), token) + payload, ETagValue(f"{token:016x}")


def _header(raw: bytes) -> tuple[float, ETagValue]:
    """The write time and ETag of a stored record."""
    if len(raw) < _HEADER_SIZE or raw[0] != _RECORD_VERSION:
        raise CorruptData(f"not a PersiDict record (starts {bytes(raw[:_HEADER_SIZE])!r})")
    _, ts, token = _HEADER.unpack_from(raw)
    return ts, ETagValue(f"{token:016x}")


def _etag_of(raw: bytes | None) -> ETagIfExists:
    return ITEM_NOT_AVAILABLE if raw is None else _header(raw)[1]


def _tx_put(tx: KVStore, k: bytes, rec: bytes) -> None:
    tx.put(k, rec)


def _tx_remove(tx: KVStore, k: bytes) -> None:
    tx.remove(k)


#: Keys read per snapshot when a dict outside a transaction is iterated.
_PAGE = 1000
_MISSING: Any = object()


# -- the dict -------------------------------------------------------------------------------------


class PersiDict(MutableMapping[tuple[str, ...], Any]):
    """A persistent dict of safe-string-tuple keys, stored in a kvstore database.

    ``db`` is a :class:`kvstore.Database`; a path (``str`` or ``os.PathLike``) opens one with
    ``kvstore.open(path)`` (LMDB, ``durability="sync"``), and ``None`` opens a fresh in-memory
    one -- like persidict's ``LocalDict``.  A database the dict opened is closed by
    :meth:`close` (or leaving a ``with`` block); one passed in is left to its owner.

    ``prefix`` (a tuple of safe strings, possibly empty) is where the items live: two dicts
    with the same prefix and format are the same dict, and ``d.get_subdict(("a",))`` is the
    dict at ``prefix + ("a",)``.  Give each dict a prefix of its own within a database shared
    with other data.

    ``serialization_format`` is ``"pkl"`` (pickle, the default) or ``"json"`` (jsonpickle, as
    in persidict: tuples, sets and arbitrary objects round-trip; plain JSON data stays plain
    JSON; needs the ``persidict-json`` extra).  Any other safe name stores
    ``str`` values as UTF-8 text, and then ``base_class_for_values`` must be ``str`` or a
    subclass, as in persidict.  ``base_class_for_values`` (a type or None) is checked on every
    write and read (``TypeError``).  ``append_only=True`` refuses to overwrite or delete
    anything (:class:`MutationPolicyError`).

    Atomicity.  Reading one item reads the store directly (a single read is atomic); every
    write, and every read-modify-write (``setdefault``, ``pop``, ``discard``, the ``*_if``
    operations, ``transform_item``, ``update``, ``clear``), runs in a transaction of its own,
    retried on conflicts with ``Database.run`` -- atomic across threads and processes.
    Iteration outside a transaction reads pages of 1000 items, each from a fresh snapshot: it
    never fails because of concurrent writers, and yields each key at most once, in key order.

    Transactions.  ``d.in_transaction(tx)`` is this dict bound to ``tx`` (a
    :class:`kvstore.Transaction`, or any :class:`kvstore.KVStore`): all its reads and writes go
    through ``tx``, so they commit or roll back with it, are isolated like the rest of ``tx``,
    and are not retried on their own (the caller's ``db.run`` retries the whole).
    """

    __slots__ = (
        "_append_only",
        "_base_class",
        "_db",
        "_dumps",
        "_format",
        "_loads",
        "_owns_db",
        "_plen",
        "_prefix",
        "_range",
        "_slen",
        "_space",
        "_suffix",
        "_tx",
    )

    def __init__(
        self,
        db: Database | str | os.PathLike[str] | None,
        prefix: PersiDictKey = (),
        *,
        serialization_format: str = "pkl",
        append_only: bool = False,
        base_class_for_values: type | None = None,
    ) -> None:
        prefix_t = _safe_tuple(prefix, "prefix", allow_empty=True)
        if not isinstance(serialization_format, str):
            raise TypeError(
                "serialization_format must be a str, "
                f"not {type(serialization_format).__name__}"
            )
        if _SAFE_PART.fullmatch(serialization_format) is None:
            raise ValueError(
                "serialization_format must be a non-empty name of safe characters "
                f"(letters, digits, ()_-~.=), not {serialization_format!r}"
            )
        if base_class_for_values is not None and not isinstance(base_class_for_values, type):
            raise TypeError(
                "base_class_for_values must be a type or None, "
                f"not {type(base_class_for_values).__name__}"
            )
        if serialization_format not in ("pkl", "json") and not (
            base_class_for_values is not None and issubclass(base_class_for_values, str)
        ):
            raise ValueError(
                f"serialization_format {serialization_format!r} stores text: it needs "
                "base_class_for_values=str (or a subclass); for other values use 'pkl' or 'json'"
            )
        owns = False
        if db is None or isinstance(db, (str, os.PathLike)):
            if db is not None and os.path.isfile(db):
                raise ValueError(
                    f"PersiDict path {os.fspath(db)!r} is an existing regular file; "
                    "give a directory (new or holding a kvstore database)"
                )
            db = kvstore.open(db)
            owns = True
        elif not isinstance(db, Database):
            raise TypeError(
                f"db must be a kvstore.Database, a path or None, not {type(db).__name__}"
            )
        self._setup(
            db, owns, prefix_t, serialization_format, bool(append_only), base_class_for_values, None
        )

    def _setup(
        self,
        db: Database,
        owns: bool,
        prefix: tuple[str, ...],
        fmt: str,
        append_only: bool,
        base_class: type | None,
        tx: KVStore | None,
    ) -> None:
        self._db = db
        self._owns_db = owns
        self._prefix = prefix
        self._format = fmt
        self._append_only = append_only
        self._base_class = base_class
        self._tx = tx
        self._space = Subspace(prefix)
        self._suffix = tuple_layer.pack((None, fmt))
        self._plen = len(self._space.key())
        self._slen = len(self._suffix)
        # Every key part is a str, whose tuple-layer code is 0x02: the items are exactly the
        # keys in [prefix + 0x02, prefix + 0x03).  (Subspace.range() would also hold the item
        # named by the prefix itself -- the parent's item -- which is not in this dict.)
        p = self._space.key()
        self._range = KeyRange(p + b"\x02", p + b"\x03")
        self._dumps: Callable[[Any], bytes]
        self._loads: Callable[[bytes], Any]
        if fmt == "pkl":
            self._dumps = _pickle_dumps
            self._loads = pickle.loads
        elif fmt == "json":
            # A fresh Pickler/Unpickler per call (they hold per-call state) with keys=False pins
            # jsonpickle's current -- and persidict's -- encoding of dict keys; passing them as
            # the context also keeps jsonpickle 4's per-call "keys will default" warning quiet.
            jp = _jsonpickle()
            self._dumps = lambda value: jp.encode(
                value, context=jp.pickler.Pickler(keys=False)
            ).encode("utf-8")
            self._loads = lambda data: jp.decode(
                data.decode("utf-8"), context=jp.unpickler.Unpickler(keys=False)
            )
        else:
            self._dumps = _text_dumps
            self._loads = _text_loads

    def _clone(self, prefix: tuple[str, ...], tx: KVStore | None) -> Self:
        # Of the same class: a subclass's sub-dicts and copies are of that subclass too.
        other = type(self).__new__(type(self))
        other._setup(
            self._db, False, prefix, self._format, self._append_only, self._base_class, tx
        )
        return other

    # -- configuration ---------------------------------------------------------------------------
    @property
    def db(self) -> Database:
        """The database holding the items."""
        return self._db

    @property
    def prefix(self) -> tuple[str, ...]:
        """The key prefix under which this dict's items live."""
        return self._prefix

    @property
    def serialization_format(self) -> str:
        return self._format

    @property
    def append_only(self) -> bool:
        return self._append_only

    @property
    def base_class_for_values(self) -> type | None:
        return self._base_class

    @property
    def transaction(self) -> KVStore | None:
        """The transaction this dict is bound to (see :meth:`in_transaction`), or None."""
        return self._tx

    def get_params(self) -> dict[str, Any]:
        """The parameters that rebuild this dict, ``PersiDict(**d.get_params())``, by name."""
        return {
            "append_only": self._append_only,
            "base_class_for_values": self._base_class,
            "db": self._db,
            "prefix": self._prefix,
            "serialization_format": self._format,
        }

    def in_transaction(self, tx: KVStore) -> Self:
        """This dict bound to ``tx``: every operation on the result reads and writes through it.

        ``tx`` is usually a :class:`kvstore.Transaction` of this dict's database, e.g. inside
        ``db.run(fn)`` or ``with db.transaction() as tx``; the dict's writes then commit or
        roll back with the rest of ``tx``.  Nothing is retried by the bound dict.

        >>> db = kvstore.open()
        >>> d = PersiDict(db)
        >>> with db.transaction() as tx:
        ...     d.in_transaction(tx)["a"] = 1
        ...     tx.put(b"audit", b"a was set")
        >>> d["a"], db.store.get(b"audit")
        (1, b'a was set')
        """
        if not isinstance(tx, KVStore):
            raise TypeError(f"tx must be a kvstore Transaction or KVStore, not {type(tx).__name__}")
        return self._clone(self._prefix, tx)

    def get_subdict(self, prefix_key: PersiDictKey) -> Self:
        """The dict of the items whose keys start with ``prefix_key``, keys relative to it.

        It shares storage (and the transaction, if bound) with this dict: writes through
        either show in both.  An empty ``prefix_key`` gives this dict again.
        """
        extra = _safe_tuple(prefix_key, "prefix_key", allow_empty=True)
        return self._clone(self._prefix + extra, self._tx)

    def subdicts(self) -> dict[str, Self]:
        """A sub-dictionary for each distinct first key part."""
        return {first: self.get_subdict(first) for first in {k[0] for k in self.keys()}}

    # -- encoding --------------------------------------------------------------------------------
    def _key_bytes(self, key: PersiDictKey) -> bytes:
        """The store key of item ``key``; ``TypeError``/``ValueError`` for a bad key."""
        k = self._space.pack(_safe_tuple(key)) + self._suffix
        if len(k) > MAX_KEY_SIZE:
            raise ValueError(
                f"key {key!r} takes {len(k)} bytes with this dict's prefix; "
                f"the limit is {MAX_KEY_SIZE}"
            )
        return k

    def _key_of(self, k: bytes) -> SafeStrTuple:
        return SafeStrTuple(tuple_layer.unpack(k[self._plen : -self._slen]))

    def _check_value(self, value: Any) -> None:
        if isinstance(value, PersiDict):
            raise TypeError("a PersiDict cannot be stored as a value")
        base = self._base_class
        if base is not None and not isinstance(value, base):
            raise TypeError(
                f"value must be an instance of {base.__name__}, not {type(value).__name__}"
            )

    def _encode(self, value: Any) -> tuple[bytes, ETagValue]:
        """The record (and its ETag) that stores ``value``, after the value checks."""
        if isinstance(value, Joker):
            raise TypeError(f"{value!r} cannot be stored as a value")
        self._check_value(value)
        return _record(self._dumps(value))

    def _decode(self, raw: bytes) -> Any:
        if len(raw) < _HEADER_SIZE or raw[0] != _RECORD_VERSION:
            _header(raw)  # raises CorruptData
        value = self._loads(raw[_HEADER_SIZE:])
        base = self._base_class
        if base is not None and not isinstance(value, base):
            raise TypeError(
                f"stored value is a {type(value).__name__}, "
                f"not an instance of {base.__name__}"
            )
        return value

    # -- plumbing --------------------------------------------------------------------------------
    def _read(self, k: bytes) -> bytes | None:
        tx = self._tx
        return self._db.store.get(k) if tx is None else tx.get(k)

    def _run(self, key: object, fn: Callable[..., R], *args: Any, retries: int = 10) -> R:
        """``fn(tx, *args)`` in the bound transaction, or in a new one retried on conflicts."""
        tx = self._tx
        if tx is not None:
            return fn(tx, *args)
        try:
            return self._db.run(fn, *args, retries=retries)
        except ConcurrencyConflictError:
            raise
        except RetryTransaction as e:
            raise ConcurrencyConflictError(key, e.attempts) from e

    def _scan(self, store: KVStore | None = None) -> Generator[tuple[bytes, bytes], None, None]:
        """``(store key, record)`` of every item, in key order.

        Through ``store`` (a transaction) when given or bound; otherwise in pages, each read
        from a fresh snapshot of the database.
        """
        rng = self._range
        lo, hi = rng.min_key, rng.max_key
        suffix = self._suffix
        tx = store if store is not None else self._tx
        if tx is not None:
            with tx.get_range(lo, hi) as it:
                for k, v in it:
                    if k.endswith(suffix):
                        yield k, v
            return
        db_store = self._db.store
        while True:
            with db_store.snapshot() as snap, snap.get_range(lo, hi) as it:
                page = list(itertools.islice(it, _PAGE))
            for k, v in page:
                if k.endswith(suffix):
                    yield k, v
            if len(page) < _PAGE:
                return
            lo = page[-1][0] + b"\x00"

    # -- mapping ---------------------------------------------------------------------------------
    def __getitem__(self, key: PersiDictKey) -> Any:
        """The value of ``key``; ``KeyError`` if absent, ``TypeError`` if of the wrong class."""
        raw = self._read(self._key_bytes(key))
        if raw is None:
            raise KeyError(SafeStrTuple(_safe_tuple(key)))
        return self._decode(raw)

    def __setitem__(self, key: PersiDictKey, value: Any) -> None:
        """Store ``value`` under ``key``; KEEP_CURRENT does nothing, DELETE_CURRENT deletes.

        Raises ``TypeError`` for a value of the wrong class (or unserializable), and
        :class:`MutationPolicyError` when an append-only dict already has ``key``.
        """
        k = self._key_bytes(key)
        if value is KEEP_CURRENT:
            return
        if value is DELETE_CURRENT:
            if self._append_only:
                raise _append_only(_safe_tuple(key), "delete")
            self._run(key, _tx_remove, k)
            return
        rec, _ = self._encode(value)
        if self._append_only:
            self._run(key, self._tx_insert, k, rec, key)
        else:
            self._run(key, _tx_put, k, rec)  # a blind write: it never conflicts

    def _tx_insert(self, tx: KVStore, k: bytes, rec: bytes, key: PersiDictKey) -> None:
        if tx.get(k) is not None:
            raise _append_only(_safe_tuple(key), "overwrite")
        tx.put(k, rec)

    def __delitem__(self, key: PersiDictKey) -> None:
        """Delete ``key``; ``KeyError`` if absent, :class:`MutationPolicyError` if append-only."""
        if not self.discard(key):
            raise KeyError(SafeStrTuple(_safe_tuple(key)))

    def __contains__(self, key: object) -> bool:
        return self._read(self._key_bytes(key)) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        """The number of items (a scan of the dict's key range, from one snapshot)."""
        rng = self._range
        suffix = self._suffix
        tx = self._tx
        if tx is not None:
            with tx.get_range(rng.min_key, rng.max_key) as it:
                return sum(1 for k, _ in it if k.endswith(suffix))
        with self._db.store.snapshot() as snap, snap.get_range(rng.min_key, rng.max_key) as it:
            return sum(1 for k, _ in it if k.endswith(suffix))

    def __bool__(self) -> bool:
        scan = self._scan()
        try:
            return next(scan, None) is not None
        finally:
            scan.close()  # releases the range iterator now, not at garbage collection

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        key_of = self._key_of
        for k, _ in self._scan():
            yield key_of(k)

    def keys(self) -> Iterator[tuple[str, ...]]:  # type: ignore[override]
        """The keys, in key order (persidict returns an iterator too, not a view)."""
        return iter(self)

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        """The values, in key order."""
        decode = self._decode
        for _, raw in self._scan():
            yield decode(raw)

    def items(self) -> Iterator[tuple[tuple[str, ...], Any]]:  # type: ignore[override]
        """``(key, value)`` pairs, in key order."""
        key_of, decode = self._key_of, self._decode
        for k, raw in self._scan():
            yield key_of(k), decode(raw)

    def keys_and_timestamps(self) -> Iterator[tuple[tuple[str, ...], float]]:
        """``(key, timestamp)`` pairs, in key order."""
        key_of = self._key_of
        for k, raw in self._scan():
            yield key_of(k), _header(raw)[0]

    def values_and_timestamps(self) -> Iterator[tuple[Any, float]]:
        """``(value, timestamp)`` pairs, in key order."""
        decode = self._decode
        for _, raw in self._scan():
            yield decode(raw), _header(raw)[0]

    def items_and_timestamps(self) -> Iterator[tuple[tuple[str, ...], Any, float]]:
        """``(key, value, timestamp)`` triples, in key order."""
        key_of, decode = self._key_of, self._decode
        for k, raw in self._scan():
            yield key_of(k), decode(raw), _header(raw)[0]

    def get(self, key: PersiDictKey, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when absent."""
        raw = self._read(self._key_bytes(key))
        return default if raw is None else self._decode(raw)

    def setdefault(self, key: PersiDictKey, default: Any = None) -> Any:
        """The value of ``key``; if absent, store ``default`` first (atomically) and return it."""
        if isinstance(default, Joker):
            raise TypeError("setdefault's default must be a value, not a joker")
        return self._run(key, self._tx_setdefault, self._key_bytes(key), default)

    def _tx_setdefault(self, tx: KVStore, k: bytes, default: Any) -> Any:
        raw = tx.get(k)
        if raw is not None:
            return self._decode(raw)
        tx.put(k, self._encode(default)[0])
        return default

    def pop(self, key: PersiDictKey, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value atomically; ``default`` or ``KeyError`` if absent."""
        k = self._key_bytes(key)
        if self._append_only:
            raise _append_only(_safe_tuple(key), "pop")
        raw = self._run(key, self._tx_take, k)
        if raw is None:
            if default is _MISSING:
                raise KeyError(SafeStrTuple(_safe_tuple(key)))
            return default
        return self._decode(raw)

    def _tx_take(self, tx: KVStore, k: bytes) -> bytes | None:
        raw = tx.get(k)
        if raw is not None:
            tx.remove(k)
        return raw

    def popitem(self) -> tuple[tuple[str, ...], Any]:
        """Remove and return the first ``(key, value)`` in key order; ``KeyError`` if empty."""
        if self._append_only:
            raise MutationPolicyError(
                "append-only", "cannot popitem; an append-only PersiDict only adds new items"
            )
        found = self._run(None, self._tx_pop_first)
        if found is None:
            raise KeyError("popitem(): the PersiDict is empty")
        k, raw = found
        return self._key_of(k), self._decode(raw)

    def _tx_pop_first(self, tx: KVStore) -> tuple[bytes, bytes] | None:
        scan = self._scan(tx)
        try:
            first = next(scan, None)
        finally:
            scan.close()
        if first is not None:
            tx.remove(first[0])
        return first

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store every pair of ``other`` (a mapping or pairs) and ``kwargs`` in one transaction.

        All or nothing: a bad key or value, or an append-only violation, writes none of them.
        Jokers work as in ``d[k] = v``.
        """
        if isinstance(other, Mapping):
            pairs: Iterable[tuple[Any, Any]] = other.items()
        elif hasattr(other, "keys"):
            pairs = ((k, other[k]) for k in other.keys())  # noqa: SIM118 - dict.update's rule
        else:
            pairs = other
        plan: list[tuple[bytes, bytes | None, tuple[str, ...]]] = []
        for key, value in itertools.chain(pairs, kwargs.items()):
            k = self._key_bytes(key)
            if value is KEEP_CURRENT:
                continue
            if value is DELETE_CURRENT:
                if self._append_only:
                    raise _append_only(_safe_tuple(key), "delete")
                plan.append((k, None, ()))
            else:
                plan.append((k, self._encode(value)[0], _safe_tuple(key)))
        if plan:
            self._run(None, self._tx_update, plan)

    def _tx_update(
        self, tx: KVStore, plan: list[tuple[bytes, bytes | None, tuple[str, ...]]]
    ) -> None:
        append_only = self._append_only
        for k, rec, key in plan:
            if rec is None:
                tx.remove(k)
            else:
                if append_only and tx.get(k) is not None:
                    raise _append_only(key, "overwrite")
                tx.put(k, rec)

    def __ior__(self, other: Mapping[Any, Any]) -> PersiDict:
        """``d |= mapping``: :meth:`update`."""
        if not isinstance(other, Mapping):
            return NotImplemented
        self.update(other)
        return self

    def clear(self) -> None:
        """Delete every item of this dict (all in one transaction)."""
        if self._append_only:
            raise MutationPolicyError(
                "append-only", "cannot clear; an append-only PersiDict only adds new items"
            )
        self._run(None, self._tx_clear)

    def _tx_clear(self, tx: KVStore) -> None:
        for k in [k for k, _ in self._scan(tx)]:
            tx.remove(k)

    def discard(self, key: PersiDictKey) -> bool:
        """Delete ``key`` if present, and say whether it was.  Refused by append-only dicts."""
        k = self._key_bytes(key)
        if self._append_only:
            raise _append_only(_safe_tuple(key), "delete")
        return self._run(key, self._tx_take, k) is not None

    def delete_if_exists(self, key: PersiDictKey) -> bool:
        """The same as :meth:`discard` (persidict keeps this older name)."""
        return self.discard(key)

    # -- versions and times ----------------------------------------------------------------------
    def etag(self, key: PersiDictKey) -> ETagValue:
        """The ETag of ``key``'s value: it changes with every write.  ``KeyError`` if absent."""
        raw = self._read(self._key_bytes(key))
        if raw is None:
            raise KeyError(SafeStrTuple(_safe_tuple(key)))
        return _header(raw)[1]

    def timestamp(self, key: PersiDictKey) -> float:
        """When ``key`` was last written (``time.time()`` seconds); ``KeyError`` if absent."""
        raw = self._read(self._key_bytes(key))
        if raw is None:
            raise KeyError(SafeStrTuple(_safe_tuple(key)))
        return _header(raw)[0]

    def oldest_keys(self, max_n: int | None = None) -> list[tuple[str, ...]]:
        """Up to ``max_n`` keys (all when None), least recently written first."""
        return [k for k, _ in self._by_time(self.keys_and_timestamps(), max_n, newest=False)]

    def newest_keys(self, max_n: int | None = None) -> list[tuple[str, ...]]:
        """Up to ``max_n`` keys (all when None), most recently written first."""
        return [k for k, _ in self._by_time(self.keys_and_timestamps(), max_n, newest=True)]

    def oldest_values(self, max_n: int | None = None) -> list[Any]:
        """The values of :meth:`oldest_keys`, read in the same pass."""
        return [v for v, _ in self._by_time(self.values_and_timestamps(), max_n, newest=False)]

    def newest_values(self, max_n: int | None = None) -> list[Any]:
        """The values of :meth:`newest_keys`, read in the same pass."""
        return [v for v, _ in self._by_time(self.values_and_timestamps(), max_n, newest=True)]

    @staticmethod
    def _by_time(
        pairs: Iterator[tuple[Any, float]], max_n: int | None, newest: bool
    ) -> list[tuple[Any, float]]:
        def by_ts(pair: tuple[Any, float]) -> float:
            return pair[1]

        if max_n is None:
            return sorted(pairs, key=by_ts, reverse=newest)
        if max_n <= 0:
            return []
        pick = heapq.nlargest if newest else heapq.nsmallest
        return pick(max_n, pairs, key=by_ts)

    def random_key(self) -> tuple[str, ...] | None:
        """A key chosen uniformly at random (one pass, reservoir sampling); None if empty."""
        chosen: tuple[str, ...] | None = None
        for i, key in enumerate(self.keys(), 1):
            if random.random() * i < 1.0:
                chosen = key
        return chosen

    # -- ETag-conditional operations -------------------------------------------------------------
    @staticmethod
    def _check_args(
        expected_etag: object, condition: object, retrieve_value: object = ALWAYS_RETRIEVE
    ) -> None:
        if not (isinstance(expected_etag, str) or expected_etag is ITEM_NOT_AVAILABLE):
            raise TypeError(
                "expected_etag must be an ETag string or ITEM_NOT_AVAILABLE, "
                f"not {type(expected_etag).__name__}"
            )
        if condition not in _CONDITIONS:
            raise ValueError(
                "condition must be ANY_ETAG, ETAG_IS_THE_SAME or ETAG_HAS_CHANGED, "
                f"not {condition!r}"
            )
        if retrieve_value not in _RETRIEVALS:
            raise TypeError(
                "retrieve_value must be ALWAYS_RETRIEVE, NEVER_RETRIEVE or IF_ETAG_CHANGED, "
                f"not {retrieve_value!r}"
            )

    @staticmethod
    def _holds(condition: object, expected: object, actual: object) -> bool:
        if condition is ETAG_IS_THE_SAME:
            return expected == actual
        if condition is ETAG_HAS_CHANGED:
            return expected != actual
        return True

    def _existing(
        self, raw: bytes | None, satisfied: bool, expected: object, retrieve: object
    ) -> ConditionalOperationResult:
        """The result of an operation that changed nothing, with the value if asked for."""
        if raw is None:
            return ConditionalOperationResult(
                satisfied, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE
            )
        actual = _header(raw)[1]
        want = retrieve is ALWAYS_RETRIEVE or (retrieve is IF_ETAG_CHANGED and expected != actual)
        value = self._decode(raw) if want else VALUE_NOT_RETRIEVED
        return ConditionalOperationResult(satisfied, actual, actual, value)

    def get_item_if(
        self,
        key: PersiDictKey,
        expected_etag: ETagIfExists,
        condition: ETagConditionFlag = ETAG_IS_THE_SAME,
        *,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult:
        """Read ``key`` and report whether its ETag meets ``condition`` against ``expected_etag``.

        Never writes.  ``new_value`` is the value (per ``retrieve_value``: by default only when
        the ETag differs from ``expected_etag``, i.e. when the caller's copy is stale), or
        ITEM_NOT_AVAILABLE for a missing key -- never a ``KeyError``.

        >>> d = PersiDict(None); d["k"] = "v1"; tag = d.etag("k")
        >>> d.get_item_if("k", tag, ETAG_HAS_CHANGED).new_value    # our copy is current
        VALUE_NOT_RETRIEVED
        >>> d["k"] = "v2"
        >>> d.get_item_if("k", tag, ETAG_HAS_CHANGED).new_value
        'v2'
        """
        self._check_args(expected_etag, condition, retrieve_value)
        raw = self._read(self._key_bytes(key))
        satisfied = self._holds(condition, expected_etag, _etag_of(raw))
        return self._existing(raw, satisfied, expected_etag, retrieve_value)

    def get_with_etag(self, key: PersiDictKey) -> ConditionalOperationResult:
        """The value of ``key`` and its ETag, read together (persidict's ``get_with_etag``).

        Shorthand for ``get_item_if(key, ITEM_NOT_AVAILABLE, ANY_ETAG,
        retrieve_value=ALWAYS_RETRIEVE)``: ``condition_was_satisfied`` is always True,
        ``new_value`` is the value and ``actual_etag`` (= ``resulting_etag``) its ETag, both
        from one atomic read.  A missing key gives ITEM_NOT_AVAILABLE for both -- no KeyError.

        >>> d = PersiDict(None); d["k"] = "v"
        >>> r = d.get_with_etag("k")
        >>> r.new_value, r.actual_etag == d.etag("k")
        ('v', True)
        """
        return self.get_item_if(key, ITEM_NOT_AVAILABLE, ANY_ETAG, retrieve_value=ALWAYS_RETRIEVE)

    def set_item_if(
        self,
        key: PersiDictKey,
        value: Any,
        expected_etag: ETagIfExists,
        condition: ETagConditionFlag = ETAG_IS_THE_SAME,
        *,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult:
        """Atomically write ``value`` only if ``key``'s ETag meets ``condition``.

        The default condition, ETAG_IS_THE_SAME, is compare-and-swap: the write happens only if
        the item is still at ``expected_etag`` -- or, with ``expected_etag=ITEM_NOT_AVAILABLE``,
        still missing (create-if-absent).  Of two processes racing with the same ETag, exactly
        one succeeds.  The check and the write are one transaction; a conflict with a
        concurrent writer re-runs both, so the condition is always judged on the latest value.

        Returns a :class:`ConditionalOperationResult`; a failed condition is not an exception.
        On success ``resulting_etag`` is the new ETag and ``new_value`` the value written.  On
        failure nothing changes and ``new_value`` is the current value per ``retrieve_value``
        (by default read only if its ETag differs from ``expected_etag``).  ``value`` may be
        KEEP_CURRENT (nothing is written) or DELETE_CURRENT (the item is deleted).  An
        append-only dict raises :class:`MutationPolicyError` for DELETE_CURRENT, and when the
        condition holds but the item exists.
        """
        self._check_args(expected_etag, condition, retrieve_value)
        k = self._key_bytes(key)
        rec: bytes | None = None
        etag: ETagValue | None = None
        if value is DELETE_CURRENT:
            if self._append_only:
                raise _append_only(_safe_tuple(key), "delete")
        elif value is not KEEP_CURRENT:
            rec, etag = self._encode(value)
        args = (k, key, value, rec, etag, expected_etag, condition, retrieve_value)
        return self._run(key, self._tx_set_if, *args)

    def _tx_set_if(
        self,
        tx: KVStore,
        k: bytes,
        key: PersiDictKey,
        value: Any,
        rec: bytes | None,
        etag: ETagValue | None,
        expected: ETagIfExists,
        condition: ETagConditionFlag,
        retrieve: RetrieveValueFlag,
    ) -> ConditionalOperationResult:
        raw = tx.get(k)
        actual = _etag_of(raw)
        satisfied = self._holds(condition, expected, actual)
        if not satisfied or value is KEEP_CURRENT:
            return self._existing(raw, satisfied, expected, retrieve)
        if value is DELETE_CURRENT:
            if raw is not None:
                tx.remove(k)
            return ConditionalOperationResult(True, actual, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
        if raw is not None and self._append_only:
            raise _append_only(_safe_tuple(key), "overwrite")
        assert rec is not None and etag is not None
        tx.put(k, rec)
        return ConditionalOperationResult(True, actual, etag, value)

    def setdefault_if(
        self,
        key: PersiDictKey,
        default_value: Any,
        expected_etag: ETagIfExists,
        condition: ETagConditionFlag = ETAG_IS_THE_SAME,
        *,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult:
        """Atomically store ``default_value`` if ``key`` is missing and the condition holds.

        An existing item is never changed (the result carries it per ``retrieve_value``).
        Allowed on append-only dicts.
        """
        if isinstance(default_value, Joker):
            raise TypeError("default_value must be a value, not a joker")
        self._check_args(expected_etag, condition, retrieve_value)
        rec, etag = self._encode(default_value)
        args = (self._key_bytes(key), default_value, rec, etag, expected_etag, condition)
        return self._run(key, self._tx_setdefault_if, *args, retrieve_value)

    def _tx_setdefault_if(
        self,
        tx: KVStore,
        k: bytes,
        value: Any,
        rec: bytes,
        etag: ETagValue,
        expected: ETagIfExists,
        condition: ETagConditionFlag,
        retrieve: RetrieveValueFlag,
    ) -> ConditionalOperationResult:
        raw = tx.get(k)
        satisfied = self._holds(condition, expected, _etag_of(raw))
        if raw is not None or not satisfied:
            return self._existing(raw, satisfied, expected, retrieve)
        tx.put(k, rec)
        return ConditionalOperationResult(True, ITEM_NOT_AVAILABLE, etag, value)

    def discard_if(
        self,
        key: PersiDictKey,
        expected_etag: ETagIfExists,
        condition: ETagConditionFlag = ETAG_IS_THE_SAME,
    ) -> ConditionalOperationResult:
        """Atomically delete ``key`` only if its ETag meets ``condition``.

        By default: only if the item is still at ``expected_etag`` (so a delete never loses
        someone else's newer write).  On success ``resulting_etag`` and ``new_value`` are
        ITEM_NOT_AVAILABLE; when the condition fails ``new_value`` is VALUE_NOT_RETRIEVED (or
        ITEM_NOT_AVAILABLE for a missing key).  An append-only dict raises
        :class:`MutationPolicyError` when the condition holds and the item exists.
        """
        self._check_args(expected_etag, condition)
        return self._run(
            key, self._tx_discard_if, self._key_bytes(key), key, expected_etag, condition
        )

    def _tx_discard_if(
        self,
        tx: KVStore,
        k: bytes,
        key: PersiDictKey,
        expected: ETagIfExists,
        condition: ETagConditionFlag,
    ) -> ConditionalOperationResult:
        raw = tx.get(k)
        actual = _etag_of(raw)
        satisfied = self._holds(condition, expected, actual)
        if raw is None or not satisfied:
            return self._existing(raw, satisfied, expected, NEVER_RETRIEVE)
        if self._append_only:
            raise _append_only(_safe_tuple(key), "delete")
        tx.remove(k)
        return ConditionalOperationResult(True, actual, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)

    def transform_item(
        self,
        key: PersiDictKey,
        transformer: Callable[[Any], Any],
        *,
        n_retries: int | None = 6,
    ) -> OperationResult:
        """Atomically replace ``key``'s value with ``transformer(value)``.

        ``transformer`` gets the current value, or ITEM_NOT_AVAILABLE when ``key`` is missing;
        it returns the new value, KEEP_CURRENT (change nothing) or DELETE_CURRENT (delete the
        item).  Read and write are one transaction: if another writer changes the item
        in between, the transaction conflicts and the whole is re-run -- so ``transformer``
        may be called more than once and should have no side effects.  After ``n_retries``
        re-runs (None: no limit) :class:`ConcurrencyConflictError` is raised.  In a bound dict
        (:meth:`in_transaction`) it runs once, in the caller's transaction.

        >>> d = PersiDict(None)
        >>> def increment(v):
        ...     return 1 if v is ITEM_NOT_AVAILABLE else v + 1
        >>> d.transform_item("hits", increment).new_value
        1
        >>> d.transform_item("hits", increment).new_value
        2
        """
        if not callable(transformer):
            raise TypeError(f"transformer must be callable, not {type(transformer).__name__}")
        if n_retries is None:
            retries = sys.maxsize
        elif isinstance(n_retries, int) and not isinstance(n_retries, bool) and n_retries >= 0:
            retries = n_retries
        elif isinstance(n_retries, int) and not isinstance(n_retries, bool):
            raise ValueError(f"n_retries must be >= 0 (or None), not {n_retries!r}")
        else:
            raise TypeError(f"n_retries must be an int or None, not {type(n_retries).__name__}")
        k = self._key_bytes(key)
        return self._run(key, self._tx_transform, k, key, transformer, retries=retries)

    def _tx_transform(
        self, tx: KVStore, k: bytes, key: PersiDictKey, transformer: Callable[[Any], Any]
    ) -> OperationResult:
        raw = tx.get(k)
        current = ITEM_NOT_AVAILABLE if raw is None else self._decode(raw)
        new = transformer(current)
        if new is KEEP_CURRENT:
            return OperationResult(_etag_of(raw), current)
        if raw is not None and self._append_only:
            raise _append_only(_safe_tuple(key), "delete" if new is DELETE_CURRENT else "overwrite")
        if new is DELETE_CURRENT:
            if raw is not None:
                tx.remove(k)
            return OperationResult(ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
        rec, etag = self._encode(new)
        tx.put(k, rec)
        return OperationResult(etag, new)

    # -- identity, copying, life cycle -----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        """Equal to a PersiDict with the same parameters, or to any mapping with the same items."""
        if self is other:
            return True
        if not isinstance(other, Mapping):
            return NotImplemented
        if isinstance(other, PersiDict) and self.get_params() == other.get_params():
            return True
        try:
            other_items = list(other.items())
            if len(other_items) != len(self):
                return False
            for key, value in other_items:
                mine = self.get(key, _MISSING)
                if mine is _MISSING or mine != value:
                    return False
        except (KeyError, TypeError, ValueError):
            return False
        return True

    __hash__ = None  # type: ignore[assignment]  # mutable, like dict

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        bound = "" if self._tx is None else f", in {self._tx!r}"
        return f"PersiDict({params}{bound})"

    def __str__(self) -> str:
        return str(dict(self.items()))

    def __copy__(self) -> Self:
        """Another PersiDict on the same storage (like persidict's ``copy``)."""
        return self._clone(self._prefix, self._tx)

    def copy(self) -> Self:
        return self.__copy__()

    def __reduce__(self) -> Any:
        raise TypeError(
            "PersiDict objects cannot be pickled (they hold a database); "
            "pass the path and get_params() instead and build a new one"
        )

    def __getstate__(self) -> Any:
        raise TypeError("PersiDict objects cannot be pickled (they hold a database)")

    def __setstate__(self, state: Any) -> None:
        raise TypeError(
            "PersiDict objects cannot be unpickled; build one from a path and get_params()"
        )

    def close(self) -> None:
        """Close the database if this dict opened it (from a path or None); idempotent."""
        if self._owns_db:
            self._db.close()

    def __enter__(self) -> PersiDict:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _pickle_dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _jsonpickle() -> Any:
    """The jsonpickle module, which ``serialization_format="json"`` needs (as persidict does)."""
    try:
        import jsonpickle
        import jsonpickle.pickler
        import jsonpickle.unpickler
    except ImportError as e:
        raise ImportError(
            'PersiDict(serialization_format="json") needs jsonpickle; '
            "install it with: pip install 'kvstore[persidict-json]'"
        ) from e
    return jsonpickle


def _text_dumps(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"a text-format PersiDict stores str values, not {type(value).__name__}")
    return value.encode("utf-8")


def _text_loads(data: bytes) -> str:
    return data.decode("utf-8")
