"""The signature suite: argument handling of every public method of SPEC §2-§5, derived from
one table of methods and parameter kinds instead of from examples.

``SIGNATURES`` says, for each public method, its parameters in order and what kind of
argument each takes (a key, a range bound, a value, a flag, ...).  From that the tests derive,
over every store kind of the conformance matrix (``storekit.FACTORIES``):

- every ``None``-bound form (``None`` is unbounded everywhere, SPEC §2), checked against a
  plain ``dict`` model;
- every bytes-like input type (``bytes``, ``bytearray``, ``memoryview``) for every key and
  value argument, with results always ``bytes``;
- wrong types and out-of-range values, which must raise the SPEC's error (``TypeError`` or
  ``ValueError``) with the argument's name in the message.

The table is checked against ``inspect.signature`` of every class, and against the public
methods the API classes define, so a new method or parameter without a case fails here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

import kvstore
from kvstore import (
    AtomicKVStore,
    Database,
    DeltaKVStore,
    KVStore,
    MutableView,
    PrefixStore,
    Transaction,
)
from kvstore.backends.memory import MemoryStore
from kvstore.ranges import KeyRange
from kvstore.store import RangeIterator
from tests.storekit import FACTORIES, SimpleMutations


class Kind(Enum):
    """What a parameter takes; each kind has its good and its bad arguments below."""

    KEY = "key"  # bytes-like, at most the store's key limit
    BOUND = "bound"  # bytes-like range bound (one byte longer allowed) or None: unbounded
    VALUE = "value"  # bytes-like
    FLAG = "flag"  # a real bool
    OPT_FLAG = "optional flag"  # a bool or None
    AMOUNT = "amount"  # a signed 64-bit int
    COUNTER = "counter"  # an 8-byte bytes-like counter value
    MUTATIONS = "mutations"  # a Mutations
    STORE = "store"  # a KVStore


K = Kind

#: Every public method of the store API (SPEC §2-§5): parameter name -> kind, in order.
SIGNATURES: dict[str, dict[str, Kind]] = {
    # KVStore (§2)
    "get": {"key": K.KEY},
    "get_at_least": {"min_key": K.BOUND, "max_key": K.BOUND},
    "get_at_most": {"max_key": K.BOUND, "min_key": K.BOUND},
    "get_range": {"min_key": K.BOUND, "max_key": K.BOUND, "reverse": K.FLAG},
    "put": {"key": K.KEY, "value": K.VALUE},
    "remove": {"key": K.KEY},
    "remove_range": {"min_key": K.BOUND, "max_key": K.BOUND},
    "encode_counter": {"value": K.AMOUNT},
    "decode_counter": {"value": K.COUNTER},
    "adjust_counter": {"key": K.KEY, "amount": K.AMOUNT},
    "apply": {"mutations": K.MUTATIONS},
    "close": {},
    # AtomicKVStore (§2)
    "snapshot": {},
    # DeltaKVStore / MutableView (§4)
    "set_read_only": {},
    "disable_read_tracking": {},
    "without_read_tracking": {"allow_writes": K.FLAG},
    "rebase": {"new_base": K.STORE},
    "clone": {},
    # Transaction (§5)
    "commit": {},
    "rollback": {},
}

#: Methods whose signature differs on some classes: (class, method) -> parameters.
OVERRIDES: dict[tuple[type, str], dict[str, Kind]] = {
    (AtomicKVStore, "apply"): {"mutations": K.MUTATIONS, "sync": K.OPT_FLAG},
}

#: The API classes whose public methods the table must cover.
API_CLASSES: list[type] = [
    KVStore,
    AtomicKVStore,
    DeltaKVStore,
    MutableView,
    Transaction,
    PrefixStore,
]

#: Constructors and Database methods (SPEC §4, §5): parameter name -> kind or a bad-value list.
DB_SIGNATURES: dict[str, list[str]] = {
    "transaction": ["read_only"],
    "run": ["fn", "args", "retries", "kwargs"],
    "transactional": ["fn", "retries"],
    "stats": [],
    "close": [],
}


def params_of(cls: type, name: str) -> dict[str, Kind]:
    """The table's parameters of ``cls.name``, taking :data:`OVERRIDES` into account."""
    for klass in cls.__mro__:
        if (klass, name) in OVERRIDES:
            return OVERRIDES[(klass, name)]
    return SIGNATURES[name]


def methods_of(store: KVStore) -> list[str]:
    """The table's methods that ``store`` has."""
    return [name for name in SIGNATURES if callable(getattr(store, name, None))]


# -- arguments of each kind ------------------------------------------------------------------
COUNTER_KEY = b"n"
DATA = {b"a": b"1", b"b": b"2", b"c": b"3", COUNTER_KEY: kvstore.KVStore.encode_counter(5)}

#: A good argument of each kind (for keys and bounds, per parameter name: see good()).
GOOD: dict[Kind, Any] = {
    K.KEY: COUNTER_KEY,
    K.VALUE: b"value",
    K.FLAG: False,
    K.OPT_FLAG: None,
    K.AMOUNT: 1,
    K.COUNTER: KVStore.encode_counter(7),
}
GOOD_BOUND = {"min_key": b"a\x00", "max_key": b"c\x00"}

_NOT_BYTES = [1, "k", 1.5, object(), [1], True]
#: Wrong arguments of each kind and the error each must raise.
BAD: dict[Kind, list[tuple[Any, type[Exception]]]] = {
    K.KEY: [(v, TypeError) for v in [*_NOT_BYTES, None]],
    K.BOUND: [(v, TypeError) for v in _NOT_BYTES],
    K.VALUE: [(v, TypeError) for v in [*_NOT_BYTES, None]],
    K.FLAG: [(v, TypeError) for v in [1, 0, "yes", "", 1.0, None, object(), [True]]],
    K.OPT_FLAG: [(v, TypeError) for v in [1, 0, "yes", 1.0, object()]],
    K.AMOUNT: [
        *[(v, TypeError) for v in [True, False, 1.0, "1", None, object(), [1]]],
        (2**63, ValueError),
        (-(2**63) - 1, ValueError),
    ],
    K.COUNTER: [
        *[(v, TypeError) for v in [*_NOT_BYTES, None]],
        (b"1234567", ValueError),
        (b"123456789", ValueError),
    ],
    K.MUTATIONS: [(v, TypeError) for v in [1, "m", None, object(), [], {}]],
    K.STORE: [(v, TypeError) for v in [1, "s", None, object(), {}]],
}


def key_limit(store: KVStore) -> int:
    return int(getattr(store, "max_key_size", kvstore.MAX_KEY_SIZE))


def too_long(store: KVStore, kind: Kind) -> bytes:
    """The shortest argument of ``kind`` that is over ``store``'s limit."""
    return b"k" * (key_limit(store) + (2 if kind is K.BOUND else 1))


def good(store: KVStore, name: str, kind: Kind) -> Any:
    if kind is K.BOUND:
        return GOOD_BOUND[name]
    if kind is K.MUTATIONS:
        return SimpleMutations(puts=[(b"m", b"v")])
    if kind is K.STORE:
        return MemoryStore()
    return GOOD[kind]


def call(store: KVStore, method: str, kwargs: dict[str, Any], enter: bool = True) -> Any:
    """Call ``store.method(**kwargs)`` and normalize the result (iterators are drained).

    ``enter=False``: a context manager returned is not entered (the call itself must check).
    """
    result = getattr(store, method)(**kwargs)
    if isinstance(result, RangeIterator):
        with result:
            return list(result)
    if method == "without_read_tracking" and enter:
        with result:
            return None
    return result


def fill(store: KVStore) -> None:
    store.remove_range()
    for k, v in DATA.items():
        store.put(k, v)


def dump(store: KVStore) -> list[tuple[bytes, bytes]]:
    with store.get_range() as it:
        pairs = [tuple(p) for p in it]
    for k, v in pairs:
        assert type(k) is bytes and type(v) is bytes
    return pairs  # type: ignore[return-value]


@pytest.fixture(params=sorted(FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    with FACTORIES[request.param](tmp_path) as s:
        yield s


# -- the table matches the code --------------------------------------------------------------
@pytest.mark.parametrize("cls", API_CLASSES, ids=lambda c: c.__name__)
def test_table_covers_every_public_method(cls: type) -> None:
    """A public method added to an API class without a row in the table fails here."""
    public = {
        name
        for klass in cls.__mro__
        if klass in API_CLASSES
        for name, member in vars(klass).items()
        if not name.startswith("_") and (callable(member) or isinstance(member, staticmethod))
    }
    assert public <= set(SIGNATURES), sorted(public - set(SIGNATURES))


def _signature(fn: Callable[..., Any]) -> list[str]:
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def test_table_matches_every_signature(store: KVStore) -> None:
    """Each method's parameters, on this concrete class, are exactly the table's."""
    cls = type(store)
    for name in methods_of(store):
        assert _signature(getattr(store, name)) == list(params_of(cls, name)), (cls, name)


def test_table_matches_prefix_and_backends() -> None:
    for cls in (PrefixStore, MemoryStore, kvstore.LMDBStore, MutableView, Transaction):
        for name in SIGNATURES:
            fn = getattr(cls, name, None)
            if fn is None:
                continue
            params = _signature(fn)
            if params and params[0] == "self":
                params = params[1:]
            assert params == list(params_of(cls, name)), (cls.__name__, name)


def test_database_table_matches() -> None:
    public = {n for n, m in vars(Database).items() if not n.startswith("_") and callable(m)}
    assert public == set(DB_SIGNATURES)
    for name, params in DB_SIGNATURES.items():
        names = [p.name for p in inspect.signature(getattr(Database, name)).parameters.values()]
        assert names[1:] == params, name


# -- None bounds -----------------------------------------------------------------------------
def model_seek(lo: bytes | None, hi: bytes | None, last: bool) -> tuple[bytes, bytes] | None:
    keys = sorted(k for k in DATA if (lo is None or k >= lo) and (hi is None or k < hi))
    if not keys:
        return None
    key = keys[-1] if last else keys[0]
    return key, DATA[key]


def model_range(lo: bytes | None, hi: bytes | None, reverse: bool) -> list[tuple[bytes, bytes]]:
    keys = sorted(k for k in DATA if (lo is None or k >= lo) and (hi is None or k < hi))
    return [(k, DATA[k]) for k in (reversed(keys) if reverse else keys)]


BOUND_SAMPLES = [None, b"a\x00", b"c"]
#: Methods whose first bound has a default (SPEC §2: ``get_at_least``'s ``min_key`` has none).
FIRST_BOUND_OPTIONAL = {"get_range", "remove_range"}


def _bound_forms(method: str) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Every way of passing each bound combination: positionally, by keyword, omitted."""
    names = [n for n, kind in SIGNATURES[method].items() if kind is K.BOUND]
    first, second = names
    for a in BOUND_SAMPLES:
        for b in BOUND_SAMPLES:
            yield (a, b), {}
            yield (), {first: a, second: b}
            yield (a,), {second: b}
            if b is None:
                yield (a,), {}
            if a is None and method in FIRST_BOUND_OPTIONAL:
                yield (), {second: b}
                if b is None:
                    yield (), {}


def _resolve(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = list(SIGNATURES[method])
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


def test_none_bounds_get_at_least(store: KVStore) -> None:
    fill(store)
    assert store.get_at_least(None) == (b"a", b"1")
    assert store.get_at_least(None, None) == (b"a", b"1")
    for args, kwargs in _bound_forms("get_at_least"):
        b = _resolve("get_at_least", args, kwargs)
        lo, hi = b.get("min_key"), b.get("max_key")
        assert store.get_at_least(*args, **kwargs) == model_seek(lo, hi, False), (args, kwargs)


def test_none_bounds_get_at_most(store: KVStore) -> None:
    fill(store)
    assert store.get_at_most(None) == (COUNTER_KEY, DATA[COUNTER_KEY])
    assert store.get_at_most(None, None) == (COUNTER_KEY, DATA[COUNTER_KEY])
    for args, kwargs in _bound_forms("get_at_most"):
        b = _resolve("get_at_most", args, kwargs)
        lo, hi = b.get("min_key"), b.get("max_key")
        assert store.get_at_most(*args, **kwargs) == model_seek(lo, hi, True), (args, kwargs)


@pytest.mark.parametrize("reverse", [False, True])
def test_none_bounds_get_range(store: KVStore, reverse: bool) -> None:
    fill(store)
    for args, kwargs in _bound_forms("get_range"):
        b = _resolve("get_range", args, kwargs)
        lo, hi = b.get("min_key"), b.get("max_key")
        if lo is not None and hi is not None and lo > hi:
            continue
        with store.get_range(*args, **kwargs, reverse=reverse) as it:
            got = [tuple(p) for p in it]
        assert got == model_range(lo, hi, reverse), (args, kwargs)
    assert [tuple(p) for p in store[None:None]] == model_range(None, None, False)


def test_none_bounds_remove_range(store: KVStore) -> None:
    for args, kwargs in _bound_forms("remove_range"):
        b = _resolve("remove_range", args, kwargs)
        lo, hi = b.get("min_key"), b.get("max_key")
        if lo is not None and hi is not None and lo > hi:
            continue
        fill(store)
        store.remove_range(*args, **kwargs)
        kept = [p for p in sorted(DATA.items()) if p not in model_range(lo, hi, False)]
        assert dump(store) == kept, (args, kwargs)


# -- bytes-like inputs -------------------------------------------------------------------------
CONVERSIONS: list[Callable[[bytes], Any]] = [bytes, bytearray, memoryview]
BYTES_KINDS = (K.KEY, K.BOUND, K.VALUE, K.COUNTER)


def _results_are_bytes(result: Any) -> None:
    if isinstance(result, (tuple, list)):
        for item in result:
            _results_are_bytes(item)
    elif result is not None and not isinstance(result, (int, bool)):
        assert type(result) is bytes, type(result)


BYTES_METHODS = [
    m for m, params in SIGNATURES.items() if any(kind in BYTES_KINDS for kind in params.values())
]


@pytest.mark.parametrize("method", BYTES_METHODS)
def test_bytes_like_arguments(store: KVStore, method: str) -> None:
    """bytes, bytearray and memoryview give the same result and state; results are bytes."""
    params = params_of(type(store), method)
    outcomes = []
    for convert in CONVERSIONS:
        fill(store)
        kwargs = {name: good(store, name, kind) for name, kind in params.items()}
        for name, kind in params.items():
            if kind in BYTES_KINDS:
                kwargs[name] = convert(kwargs[name])
        result = call(store, method, kwargs)
        _results_are_bytes(result)
        outcomes.append((result, dump(store)))
    assert outcomes[1] == outcomes[0] and outcomes[2] == outcomes[0]


def test_bytes_like_mutation_contents(store: KVStore) -> None:
    for convert in CONVERSIONS:
        fill(store)
        store.apply(
            SimpleMutations(
                removes=[KeyRange(convert(b"a"), convert(b"b"))],
                puts=[(convert(b"k"), convert(b"v"))],
                adjusts=[(convert(COUNTER_KEY), 2)],
            )
        )
        assert dump(store) == [
            (b"b", b"2"),
            (b"c", b"3"),
            (b"k", b"v"),
            (COUNTER_KEY, KVStore.encode_counter(7)),
        ]


def test_bytes_like_mapping_sugar(store: KVStore) -> None:
    for convert in CONVERSIONS:
        fill(store)
        store[convert(b"x")] = convert(b"y")
        value = store[convert(b"x")]
        assert value == b"y" and type(value) is bytes
        assert convert(b"x") in store
        assert [tuple(p) for p in store[convert(b"c") : convert(b"n")]] == [(b"c", b"3")]
        del store[convert(b"x")]
        assert b"x" not in store


# -- wrong arguments -------------------------------------------------------------------------
def _bad_cases(store: KVStore) -> Iterator[tuple[str, str, Any, type[Exception]]]:
    for method in methods_of(store):
        if isinstance(store, Transaction) and method == "rebase":
            continue  # refused whatever the argument: see test_transaction_refuses_rebase
        for name, kind in params_of(type(store), method).items():
            for value, error in BAD[kind]:
                yield method, name, value, error
            if kind in (K.KEY, K.BOUND):
                yield method, name, too_long(store, kind), ValueError


def test_wrong_arguments(store: KVStore) -> None:
    """Each wrong argument, the others good, raises the SPEC's error naming the argument."""
    failures = []
    cases = 0
    for method, name, value, error in _bad_cases(store):
        cases += 1
        fill(store)
        params = params_of(type(store), method)
        kwargs = {n: good(store, n, k) for n, k in params.items()}
        kwargs[name] = value
        try:
            call(store, method, kwargs, enter=False)
        except error as exc:
            if name not in str(exc):
                failures.append(f"{method}({name}={value!r}): message {exc!r} lacks {name!r}")
        except Exception as exc:
            failures.append(f"{method}({name}={value!r}): {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{method}({name}={value!r}): no error, expected {error.__name__}")
        assert dump(store) == sorted(DATA.items()), f"{method}({name}={value!r}) wrote"
    assert cases > 50
    assert not failures, "\n".join(failures)


BAD_MUTATIONS: list[tuple[SimpleMutations, type[Exception], str]] = [
    (SimpleMutations(puts=[(1, b"v")]), TypeError, "key"),  # type: ignore[list-item]
    (SimpleMutations(puts=[(None, b"v")]), TypeError, "key"),  # type: ignore[list-item]
    (SimpleMutations(puts=[(b"k", "v")]), TypeError, "value"),  # type: ignore[list-item]
    (SimpleMutations(puts=[(b"k", None)]), TypeError, "value"),  # type: ignore[list-item]
    (SimpleMutations(puts=[(b"k" * 600, b"v")]), ValueError, "key"),
    (SimpleMutations(adjusts=[(b"k", True)]), TypeError, "amount"),
    (SimpleMutations(adjusts=[(b"k", 1.0)]), TypeError, "amount"),  # type: ignore[list-item]
    (SimpleMutations(adjusts=[(b"k", 2**63)]), ValueError, "amount"),
    (SimpleMutations(adjusts=[("k", 1)]), TypeError, "key"),  # type: ignore[list-item]
    (SimpleMutations(removes=[(b"a", b"b")]), TypeError, "KeyRange"),  # type: ignore[list-item]
]


@pytest.mark.parametrize("index", range(len(BAD_MUTATIONS)))
def test_wrong_mutation_contents(store: KVStore, index: int) -> None:
    """A bad item inside a Mutations fails before anything is applied, naming what it is."""
    mutations, error, word = BAD_MUTATIONS[index]
    fill(store)
    with pytest.raises(error, match=word):
        store.apply(mutations)
    assert dump(store) == sorted(DATA.items())


def test_wrong_mapping_sugar(store: KVStore) -> None:
    for value in [1, "k", None, 1.5]:
        with pytest.raises(TypeError, match="key"):
            store[value]  # type: ignore[index]
        with pytest.raises(TypeError, match="key"):
            store[value] = b"v"  # type: ignore[index]
        with pytest.raises(TypeError, match="key"):
            del store[value]  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="key"):
            value in store  # noqa: B015
        with pytest.raises(TypeError, match="value"):
            store[b"k"] = value  # type: ignore[assignment]
    with pytest.raises(TypeError, match="min_key"):
        store[1:]  # type: ignore[misc]
    with pytest.raises(TypeError, match="max_key"):
        store[:"b"]  # type: ignore[misc]
    with pytest.raises(ValueError, match="step"):
        store[b"a":b"b":2]  # type: ignore[misc]


def test_wrong_view_constructor() -> None:
    base = MemoryStore()
    for value, error in BAD[K.STORE]:
        with pytest.raises(error, match="base"):
            MutableView(value)
    for value, error in BAD[K.FLAG]:
        with pytest.raises(error, match="track_reads"):
            MutableView(base, track_reads=value)
    for bad in [1, "w", object(), kvstore.Reads()]:
        with pytest.raises(TypeError, match="writes"):
            MutableView(base, writes=bad)
    for bad in [1, "r", object(), kvstore.Writes()]:
        with pytest.raises(TypeError, match="reads"):
            MutableView(base, reads=bad)
    assert _signature(MutableView.__init__)[1:] == ["base", "track_reads", "writes", "reads"]


def test_transaction_refuses_rebase() -> None:
    with kvstore.open() as db:
        tx = db.transaction()
        with pytest.raises(TypeError, match="rebase"):
            tx.rebase(MemoryStore())
        tx.rollback()


def test_wrong_prefix_constructor() -> None:
    for value, error in BAD[K.STORE]:
        with pytest.raises(error, match="store"):
            PrefixStore(value, b"p")
    for value, error in BAD[K.KEY]:
        with pytest.raises(error, match="prefix"):
            PrefixStore(MemoryStore(), value)
    with pytest.raises(ValueError, match="prefix"):
        PrefixStore(MemoryStore(), b"p" * (kvstore.MAX_KEY_SIZE + 1))
    assert _signature(PrefixStore.__init__)[1:] == ["store", "prefix"]


# -- Database (§5) ---------------------------------------------------------------------------
def _noop(tx: Transaction) -> int:
    return 1


def test_wrong_database_arguments() -> None:
    with kvstore.open() as db:
        for value, error in BAD[K.FLAG]:
            with pytest.raises(error, match="read_only"):
                db.transaction(read_only=value)
        for value in [1, "f", None, object()]:
            with pytest.raises(TypeError, match="fn"):
                db.run(value)
        for bad, error in [
            (True, TypeError),
            (1.0, TypeError),
            ("3", TypeError),
            (None, TypeError),
            (-1, ValueError),
        ]:
            with pytest.raises(error, match="retries"):
                db.run(_noop, retries=bad)
            with pytest.raises(error, match="retries"):
                db.transactional(retries=bad)
        with pytest.raises(TypeError):
            db.transactional(1)  # type: ignore[call-overload]
        assert db.run(_noop, retries=0) == 1
        assert db.transactional(retries=0)(_noop)() == 1


OPEN_BAD: list[tuple[str, Any, type[Exception]]] = [
    ("path", 1, TypeError),
    ("path", b"/tmp/x", TypeError),
    ("path", object(), TypeError),
    ("durability", "fast", ValueError),
    ("durability", 1, TypeError),
    ("durability", None, TypeError),
    ("durability", ["sync"], TypeError),
    ("history_seconds", "1", TypeError),
    ("history_seconds", True, TypeError),
    ("history_seconds", -1, ValueError),
    ("history_seconds", float("nan"), ValueError),
    ("history_commits", 1.0, TypeError),
    ("history_commits", True, TypeError),
    ("history_commits", 0, ValueError),
    ("history_bytes", 1.0, TypeError),
    ("history_bytes", True, TypeError),
    ("history_bytes", "1", TypeError),
    ("history_bytes", 0, ValueError),
    ("table", "t", ValueError),  # only for a postgresql:// URL
    ("map_size", "1", TypeError),
    ("map_size", True, TypeError),
    ("map_size", 0, ValueError),
    ("readonly", 1, TypeError),
    ("readonly", None, TypeError),
    ("create", "yes", TypeError),
    ("create", None, TypeError),
]


@pytest.mark.parametrize(("name", "value", "error"), OPEN_BAD)
def test_wrong_open_arguments(tmp_path: Path, name: str, value: Any, error: type) -> None:
    kwargs: dict[str, Any] = {"path": tmp_path / "db", name: value}
    with pytest.raises(error, match=name):
        kvstore.open(**kwargs)


def test_open_table_matches() -> None:
    names = {name for name, _, _ in OPEN_BAD}
    assert names == set(_signature(kvstore.open))


DATABASE_BAD: list[tuple[str, Any, type[Exception]]] = [
    (n, v, e)
    for n, v, e in OPEN_BAD
    if n in ("durability", "history_seconds", "history_commits", "history_bytes")
] + [
    ("store", 1, TypeError),
    ("store", None, TypeError),
    ("store", "s", TypeError),
    ("owns_store", 1, TypeError),
    ("owns_store", None, TypeError),
]


@pytest.mark.parametrize(("name", "value", "error"), DATABASE_BAD)
def test_wrong_database_constructor(name: str, value: Any, error: type) -> None:
    kwargs: dict[str, Any] = {"store": MemoryStore(), name: value}
    with pytest.raises(error, match=name):
        Database(**kwargs)


def test_database_constructor_table_matches() -> None:
    assert {name for name, _, _ in DATABASE_BAD} == set(_signature(Database.__init__)[1:])


# -- Writes and Reads (§3) -------------------------------------------------------------------
#: The public methods of ``Writes`` and ``Reads`` that take arguments: name -> parameters.
#: ``record_*`` are the views' unchecked fast paths (documented as such), not SPEC API.
MUTATION_SIGNATURES: dict[tuple[type, str], list[str]] = {
    (kvstore.Writes, "__init__"): ["removes", "puts", "adjusts"],
    (kvstore.Writes, "apply_to"): ["store"],
    (kvstore.Writes, "merge"): ["other"],
    (kvstore.Writes, "deserialize"): ["data"],
    (kvstore.Reads, "is_conflict"): ["mutations"],
    (kvstore.Reads, "find_conflict"): ["mutations"],
    (kvstore.Reads, "all_conflicts"): ["mutations"],
}
UNCHECKED_FAST_PATHS = {"record_put", "record_remove", "record_remove_range", "record_adjust"}
NO_ARGUMENTS = {
    "clear",
    "clone",
    "read_only",
    "is_empty",
    "serialize",
    "remove_ranges",
    "put_pairs",
    "adjust_pairs",
}


def test_mutations_table_matches() -> None:
    public = {
        n
        for n, m in vars(kvstore.Writes).items()
        if not n.startswith("_") and (callable(m) or isinstance(m, classmethod))
    }
    listed = {name for cls, name in MUTATION_SIGNATURES if cls is kvstore.Writes}
    assert public - UNCHECKED_FAST_PATHS - NO_ARGUMENTS == listed - {"__init__"}
    for (cls, name), params in MUTATION_SIGNATURES.items():
        names = _signature(getattr(cls, name))
        assert [n for n in names if n not in ("self", "cls")] == params, (cls, name)


def test_wrong_writes_arguments() -> None:
    writes = kvstore.Writes(puts={b"k": b"v"})
    for bad in [1, "x", object(), True, KeyRange(b"a", b"b"), [(b"a", b"b")]]:
        with pytest.raises(TypeError, match="removes"):
            kvstore.Writes(removes=bad)
    for name in ("puts", "adjusts"):
        for bad in [1, "x", object(), True, b"ab"]:
            with pytest.raises(TypeError, match=name):
                kvstore.Writes(**{name: bad})
    with pytest.raises(TypeError, match="puts"):
        kvstore.Writes(puts={b"k": 1})
    with pytest.raises(TypeError, match="adjusts"):
        kvstore.Writes(adjusts={b"k": True})
    for value, error in BAD[K.STORE]:
        with pytest.raises(error, match="store"):
            writes.apply_to(value)
    for value, error in BAD[K.MUTATIONS]:
        with pytest.raises(error, match="other"):
            writes.merge(value)
    for mutations, error, word in BAD_MUTATIONS:
        with pytest.raises(error, match=word):
            writes.merge(mutations)
        assert writes == kvstore.Writes(puts={b"k": b"v"})
    for value in [*_NOT_BYTES, None]:
        with pytest.raises(TypeError, match="data"):
            kvstore.Writes.deserialize(value)


def test_bytes_like_writes_arguments() -> None:
    for convert in CONVERSIONS:
        writes = kvstore.Writes(
            removes=[KeyRange(convert(b"a"), convert(b"b"))],
            puts={convert(b"k"): convert(b"v")} if convert is not bytearray else [(b"k", b"v")],
            adjusts=[(convert(b"n"), 1)],
        )
        assert writes == kvstore.Writes(
            removes=[KeyRange(b"a", b"b")], puts={b"k": b"v"}, adjusts={b"n": 1}
        )
        assert all(type(key) is bytes for key in [*writes.puts, *writes.adjusts])
        assert kvstore.Writes.deserialize(convert(writes.serialize())) == writes


@pytest.mark.parametrize("method", ["is_conflict", "find_conflict", "all_conflicts"])
def test_wrong_reads_arguments(method: str) -> None:
    reads = kvstore.Reads([KeyRange(b"a", b"b")])
    for value, error in BAD[K.MUTATIONS]:
        with pytest.raises(error, match="mutations"):
            getattr(reads, method)(value)
