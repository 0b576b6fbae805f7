"""The tuple layer: FoundationDB's byte layout, round trips, order, ranges and bad input."""

from __future__ import annotations

import enum
import math
import pickle
import struct
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import CorruptData, KeyRange
from kvstore import tuple as fdbtuple
from kvstore.tuple import SingleFloat, compare, pack, unpack

# -- strategies -----------------------------------------------------------------------------

#: Ints the tuple layer can hold: magnitudes of up to 255 bytes.
BIG = (1 << 2040) - 1
ints = st.one_of(
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.integers(min_value=-BIG, max_value=BIG),
    st.sampled_from(
        [
            0,
            1,
            -1,
            255,
            256,
            -255,
            -256,
            (1 << 64) - 1,
            1 << 64,
            -(1 << 64) + 1,
            -(1 << 64),
            BIG,
            -BIG,
        ]
    ),
)
single_floats = st.floats(width=32, allow_nan=True).map(SingleFloat)
scalars = st.one_of(
    st.none(),
    st.binary(max_size=20),
    st.text(max_size=10),
    ints,
    st.floats(allow_nan=True, allow_infinity=True),
    single_floats,
    st.booleans(),
    st.uuids(),
)
elements = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=12
)
tuples = st.lists(elements, max_size=6).map(tuple)
#: Tuples that pack well within MAX_KEY_SIZE, for tests that build KeyRanges.
small_scalars = st.one_of(
    st.none(),
    st.binary(max_size=8),
    st.text(max_size=4),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(),
    single_floats,
    st.booleans(),
    st.uuids(),
)
small_tuples = st.lists(
    st.recursive(small_scalars, lambda inner: st.lists(inner, max_size=3).map(tuple), max_leaves=6),
    max_size=4,
).map(tuple)


def _double_order(f: float) -> int:
    """The IEEE total order of a double, as the tuple layer sorts it."""
    bits: int = struct.unpack(">Q", struct.pack(">d", f))[0]
    return bits ^ ((1 << 64) - 1) if bits >> 63 else bits | (1 << 63)


def model_key(v: Any) -> Any:
    """A Python value that sorts like ``v`` does in the tuple order, within one element type."""
    if v is None:
        return ()
    if isinstance(v, float):
        return _double_order(v)
    if isinstance(v, tuple):
        return tuple(model_key(x) for x in v)
    return v


#: One strategy per element type whose values compare among themselves in Python.
TYPED = [
    st.none(),
    st.binary(max_size=6),
    st.text(alphabet=st.sampled_from("\x00a\xff\u0100\U0001f600"), max_size=5),
    ints,
    st.floats(allow_nan=True),
    single_floats,
    st.booleans(),
    st.uuids(),
]
#: A "shape": a strategy for elements of one type, possibly homogeneous nested tuples of one.
shapes = st.recursive(
    st.sampled_from(TYPED),
    lambda inner: inner.map(lambda s: st.lists(s, max_size=3).map(tuple)),
    max_leaves=3,
)


# -- known encodings (FoundationDB's design/tuple.md and its bindings) ------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ((b"foo\x00bar",), b"\x01foo\x00\xffbar\x00"),
        (("F\u00d4O\u0000bar",), b"\x02F\xc3\x94O\x00\xffbar\x00"),
        (((b"foo\x00bar", None, ()),), b"\x05\x01foo\x00\xffbar\x00\x00\xff\x05\x00\x00"),
        ((None,), b"\x00"),
        (((None,),), b"\x05\x00\xff\x00"),
        (((),), b"\x05\x00"),
        ((), b""),
        ((b"",), b"\x01\x00"),
        (("",), b"\x02\x00"),
        ((False, True), b"\x26\x27"),
        (
            (uuid.UUID(int=0x0102030405060708090A0B0C0D0E0F10),),
            b"\x30\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
        ),
        ((SingleFloat(-42.0),), b"\x20\x3d\xd7\xff\xff"),
        ((1.0,), b"\x21\xbf\xf0\x00\x00\x00\x00\x00\x00"),
        ((-1.0,), b"\x21\x40\x0f\xff\xff\xff\xff\xff\xff"),
        ((0.0,), b"\x21\x80" + b"\x00" * 7),
        ((-0.0,), b"\x21\x7f" + b"\xff" * 7),
        (("a", 1, b"b"), b"\x02a\x00\x15\x01\x01b\x00"),
    ],
)
def test_known_encoding(value: tuple[Any, ...], encoded: bytes) -> None:
    assert pack(value) == encoded
    assert pack(unpack(encoded)) == encoded


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, b"\x14"),
        (1, b"\x15\x01"),
        (-1, b"\x13\xfe"),
        (255, b"\x15\xff"),
        (-255, b"\x13\x00"),
        (256, b"\x16\x01\x00"),
        (-256, b"\x12\xfe\xff"),
        (-5551212, b"\x11\xabK\x93"),
        ((1 << 64) - 1, b"\x1c" + b"\xff" * 8),
        (-(1 << 64) + 1, b"\x0c" + b"\x00" * 8),
        (1 << 64, b"\x1d\x09\x01" + b"\x00" * 8),
        (-(1 << 64), b"\x0b\xf6\xfe" + b"\xff" * 8),
        (BIG, b"\x1d\xff" + b"\xff" * 255),
        (-BIG, b"\x0b\x00" + b"\x00" * 255),
    ],
)
def test_int_encoding(n: int, encoded: bytes) -> None:
    assert pack((n,)) == encoded
    assert unpack(encoded) == (n,)


def test_unpack_accepts_the_python_binding_form_of_2_to_64_minus_1() -> None:
    # FoundationDB's Python binding writes +-(2**64 - 1) with the arbitrary-size codes.
    assert unpack(b"\x1d\x08" + b"\xff" * 8) == ((1 << 64) - 1,)
    assert unpack(b"\x0b\xf7" + b"\x00" * 8) == (-(1 << 64) + 1,)


def test_int_too_large_raises_value_error_naming_the_limit() -> None:
    with pytest.raises(ValueError, match="255"):
        pack((1 << 2040,))
    with pytest.raises(ValueError, match="255"):
        pack((-(1 << 2040),))


def test_prefix_argument_is_prepended() -> None:
    assert pack((1,), prefix=b"p") == b"p\x15\x01"
    assert unpack(b"p\x15\x01", prefix_len=1) == (1,)


# -- types -----------------------------------------------------------------------------------


def test_unsupported_element_type_raises_type_error_naming_it() -> None:
    class Thing:
        pass

    with pytest.raises(TypeError, match="Thing"):
        pack((1, Thing()))
    with pytest.raises(TypeError, match="dict"):
        pack(({},))


def test_pack_needs_a_tuple() -> None:
    with pytest.raises(TypeError, match="list"):
        pack([1, 2])  # type: ignore[arg-type]


def test_unpack_needs_bytes() -> None:
    with pytest.raises(TypeError, match="str"):
        unpack("\x14")  # type: ignore[arg-type]
    assert unpack(bytearray(b"\x14")) == (0,)
    assert unpack(memoryview(b"\x15\x01")) == (1,)


def test_lone_surrogate_raises_value_error() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        pack(("\ud800",))


def test_bool_is_not_packed_as_int() -> None:
    assert pack((True,)) != pack((1,))
    assert unpack(pack((True, 1))) == (True, 1)
    assert type(unpack(pack((1,)))[0]) is int


def test_subclasses_pack_as_their_base_type() -> None:
    class Color(enum.IntEnum):
        RED = 3

    class Name(str):
        pass

    assert pack((Color.RED, Name("x"), bytearray(b"y"), memoryview(b"z"))) == pack(
        (3, "x", b"y", b"z")
    )


def test_lists_pack_as_nested_tuples() -> None:
    assert pack(([1, [None]],)) == pack(((1, (None,)),))
    assert unpack(pack(([1, 2],))) == ((1, 2),)


def test_deeply_nested_tuple_raises_value_error() -> None:
    t: tuple[Any, ...] = ()
    for _ in range(10_000):
        t = (t,)
    with pytest.raises(ValueError, match="nested"):
        pack(t)


def _nest(depth: int) -> tuple[Any, ...]:
    t: tuple[Any, ...] = ()
    for _ in range(depth):
        t = (t,)
    return t


def test_pack_and_unpack_share_one_depth_limit() -> None:
    deepest = (_nest(fdbtuple.MAX_DEPTH - 1),)  # MAX_DEPTH tuples inside the outer one
    data = pack(deepest)
    assert data == b"\x05" * fdbtuple.MAX_DEPTH + b"\x00" * fdbtuple.MAX_DEPTH
    assert unpack(data) == deepest
    with pytest.raises(ValueError, match="nested"):
        pack((deepest,))
    too_deep = b"\x05" * (fdbtuple.MAX_DEPTH + 1) + b"\x00" * (fdbtuple.MAX_DEPTH + 1)
    with pytest.raises(CorruptData, match="MAX_DEPTH"):
        unpack(too_deep)


def test_hostile_nesting_is_refused_in_bounded_time_and_memory() -> None:
    # Issue 9, defect 5: this took seconds and hundreds of MB before raising.
    import time
    import tracemalloc

    data = b"\x05" * 10_000_000
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(CorruptData, match="nested"):
            unpack(data)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 1_000_000


# -- SingleFloat -----------------------------------------------------------------------------


def test_single_float_rounds_to_binary32() -> None:
    assert SingleFloat(0.1).value == struct.unpack(">f", struct.pack(">f", 0.1))[0]
    assert SingleFloat(3).value == 3.0
    assert SingleFloat(1e300).value == math.inf
    assert SingleFloat(-1e300).value == -math.inf
    assert SingleFloat(10**400).value == math.inf


def test_single_float_equality_is_bitwise() -> None:
    assert SingleFloat(1.5) == SingleFloat(1.5)
    assert SingleFloat(0.0) != SingleFloat(-0.0)
    assert SingleFloat(-0.0) < SingleFloat(0.0)
    assert SingleFloat(math.nan) == SingleFloat(math.nan)
    assert SingleFloat(1.5) != 1.5
    assert hash(SingleFloat(2.0)) == hash(SingleFloat(2.0))


def test_single_float_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="str"):
        SingleFloat("1.0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bool"):
        SingleFloat(True)


def test_single_float_is_immutable_and_picklable() -> None:
    f = SingleFloat(2.5)
    with pytest.raises(AttributeError):
        f.value = 3.0  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(f)) == f
    assert repr(f) == "SingleFloat(2.5)"
    assert float(f) == 2.5


def test_single_float_nan_payload_round_trips() -> None:
    signaling = SingleFloat.from_bits(0x7F800001)
    assert unpack(pack((signaling,)))[0].bits == 0x7F800001


# -- properties ------------------------------------------------------------------------------


@given(tuples)
def test_round_trip(t: tuple[Any, ...]) -> None:
    packed = pack(t)
    # Compare bytes, not values: NaN != NaN, and -0.0 == 0.0 though they pack differently.
    assert pack(unpack(packed)) == packed


@given(tuples)
def test_round_trip_values(t: tuple[Any, ...]) -> None:
    assert model_key(unpack(pack(t))) == model_key(t)


@given(st.data())
def test_order_is_preserved_for_same_shaped_tuples(data: st.DataObject) -> None:
    shape = data.draw(st.lists(shapes, min_size=1, max_size=4))
    a = data.draw(st.tuples(*shape))
    b = data.draw(st.tuples(*shape))
    pa, pb = pack(a), pack(b)
    ka, kb = model_key(a), model_key(b)
    assert (pa < pb) == (ka < kb)
    assert (pa == pb) == (ka == kb)


@given(st.lists(shapes, min_size=1, max_size=3), st.data())
def test_a_tuple_sorts_before_its_extensions(shape: list[Any], data: st.DataObject) -> None:
    t = data.draw(st.tuples(*shape))
    k = data.draw(st.integers(min_value=0, max_value=len(t) - 1))
    assert pack(t[:k]) < pack(t)


@given(tuples, tuples)
def test_compare_matches_packed_order(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    pa, pb = pack(a), pack(b)
    assert compare(a, b) == (pa > pb) - (pa < pb)
    assert compare(a, a) == 0


def test_type_codes_order_elements_of_different_types() -> None:
    ordered = [None, b"", "", (), -1, 0, 1, SingleFloat(0.0), 0.0, False, True, uuid.UUID(int=0)]
    packed = [pack((x,)) for x in ordered]
    assert packed == sorted(packed)


# -- range -----------------------------------------------------------------------------------


def test_range_is_foundationdb_range() -> None:
    assert fdbtuple.range(("a",)) == KeyRange(b"\x02a\x00\x00", b"\x02a\x00\xff")
    assert fdbtuple.range() == KeyRange(b"\x00", b"\xff")


@given(small_tuples, st.data())
def test_range_holds_exactly_the_strict_extensions(t: tuple[Any, ...], data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=0, max_value=len(t)))
    prefix = t[:k]
    r = fdbtuple.range(prefix)
    assert r.contains(pack(t)) == (len(t) > k)
    other = data.draw(small_tuples)
    extends = len(other) > k and pack(other[:k]) == pack(prefix)
    assert r.contains(pack(other)) == extends


# -- malformed input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x01abc",  # unterminated bytes
        b"\x01abc\x00\xff",  # escaped zero, then no terminator
        b"\x02abc",  # unterminated string
        b"\x02\xff\x00",  # invalid UTF-8
        b"\x02\xed\xa0\x80\x00",  # an encoded surrogate
        b"\x15",  # truncated int
        b"\x1c\x01\x02",
        b"\x13",
        b"\x1d",  # missing length
        b"\x1d\x05\x01",  # truncated big int
        b"\x0b",
        b"\x0b\xf6\x01",
        b"\x20\x00",  # truncated float
        b"\x21\x00\x00",  # truncated double
        b"\x30" + b"\x00" * 15,  # truncated UUID
        b"\x05\x14",  # unterminated nested tuple
        b"\x05\x05\x00",
        b"\x05" * 100_000,
        b"\x03",  # deprecated / reserved / unknown codes
        b"\x04",
        b"\x25",
        b"\x33" + b"\x00" * 12,  # versionstamps are not supported
        b"\xff",
        b"\x14\xff",
    ],
    ids=lambda data: data[:8].hex() + ("..." if len(data) > 8 else ""),
)
def test_malformed_input_raises_corrupt_data(data: bytes) -> None:
    with pytest.raises(CorruptData):
        unpack(data)


def test_corrupt_data_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        unpack(b"\xff")


@given(st.binary(max_size=64))
def test_random_bytes_unpack_or_raise_corrupt_data(data: bytes) -> None:
    try:
        unpack(data)
    except CorruptData:
        pass


@given(tuples, st.data())
def test_damaged_encodings_unpack_or_raise_corrupt_data(
    t: tuple[Any, ...], data: st.DataObject
) -> None:
    packed = bytearray(pack(t))
    if packed:
        cut = data.draw(st.integers(min_value=0, max_value=len(packed) - 1))
        flips = data.draw(
            st.lists(st.tuples(st.integers(0, len(packed) - 1), st.integers(0, 255)), max_size=3)
        )
        for i, b in flips:
            packed[i] = b
        damaged = bytes(packed[:cut]) if data.draw(st.booleans()) else bytes(packed)
    else:
        damaged = bytes(packed)
    try:
        unpack(damaged)
    except CorruptData:
        pass


@pytest.mark.parametrize("bad", ["1", 1.0, None, True])
def test_unpack_prefix_len_must_be_an_int(bad: Any) -> None:
    # "1" used to leak "'>' not supported between instances of 'str' and 'int'".
    with pytest.raises(TypeError, match="prefix_len"):
        unpack(b"\x14", bad)
