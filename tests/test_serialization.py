"""Serialized KeyRanges, Reads and Writes: exact round trips; bad input raises only CorruptData.

docs/serialization.md describes the format; the golden-bytes tests below are its examples.
"""

from __future__ import annotations

import random
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import MAX_KEY_SIZE, CorruptData, KeyRange, KeyRanges, Reads, Writes
from kvstore.codec import MAGIC, VERSION, encode_varint, frame
from kvstore.counters import encode_counter

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1

# Mostly short keys over few byte values (so they share prefixes), sometimes long ones.
short_keys = st.binary(max_size=6).map(lambda b: bytes(x % 4 for x in b))
long_keys = st.binary(min_size=MAX_KEY_SIZE - 2, max_size=MAX_KEY_SIZE)
any_keys = st.one_of(short_keys, short_keys, long_keys)
bounds = st.one_of(any_keys, st.binary(min_size=MAX_KEY_SIZE + 1, max_size=MAX_KEY_SIZE + 1))


@st.composite
def key_ranges(draw: st.DrawFn) -> KeyRange:
    a, b = draw(bounds), draw(st.one_of(st.none(), bounds))
    if b is not None and b < a:
        a, b = b, a
    return KeyRange(a, b)


range_sets = st.lists(key_ranges(), max_size=10)


@st.composite
def writes(draw: st.DrawFn) -> Writes:
    puts = draw(st.dictionaries(any_keys, st.binary(max_size=300), max_size=10))
    amounts = st.integers(I64_MIN, I64_MAX) | st.integers(-300, 300)
    adjusts = draw(st.dictionaries(any_keys, amounts, max_size=6))
    return Writes(draw(range_sets), puts, {k: a for k, a in adjusts.items() if k not in puts})


def reseal(data: bytes) -> bytes:
    """Replace the trailing CRC so a damaged body gets past the checksum."""
    return data[:-4] + zlib.crc32(data[:-4]).to_bytes(4, "big")


def body(data: bytes) -> bytes:
    return data[6:-4]


# -- round trips -------------------------------------------------------------------------------
@given(range_sets)
def test_key_ranges_round_trip(ranges: list[KeyRange]) -> None:
    rs = KeyRanges(ranges)
    back = KeyRanges.deserialize(rs.serialize())
    assert type(back) is KeyRanges
    assert list(back) == list(rs)


@given(range_sets)
def test_reads_round_trip(ranges: list[KeyRange]) -> None:
    reads = Reads(ranges)
    back = Reads.deserialize(reads.serialize())
    assert type(back) is Reads
    assert list(back) == list(reads)


@given(writes())
def test_writes_round_trip(w: Writes) -> None:
    back = Writes.deserialize(w.serialize())
    assert back == w
    assert list(back.puts.items()) == list(w.puts.items())
    assert list(back.adjusts.items()) == list(w.adjusts.items())


@given(writes())
def test_serialized_form_depends_only_on_the_content(w: Writes) -> None:
    again = Writes(reversed(list(w.removes)), dict(reversed(w.puts.items())), w.adjusts)
    assert again.serialize() == w.serialize()


def test_deserialize_accepts_any_bytes_like() -> None:
    data = KeyRanges.full().serialize()
    assert KeyRanges.deserialize(bytearray(data)).is_full()
    assert KeyRanges.deserialize(memoryview(data)).is_full()


def test_deserialized_writes_are_mutable() -> None:
    w = Writes.deserialize(Writes(puts={b"k": b"v"}).read_only().serialize())
    w.record_put(b"j", b"w")
    assert len(w.puts) == 2


# -- the format, byte by byte (the examples of docs/serialization.md) ------------------------
def test_key_ranges_golden_bytes() -> None:
    rs = KeyRanges([KeyRange(b"ab", b"ac"), KeyRange(b"b", None)])
    data = rs.serialize()
    assert data[:6] == b"KVST\x01\x01"
    assert body(data) == bytes(
        [
            *(2, 1),  # two ranges; the last is unbounded
            *(0, 2, *b"ab"),  # "ab": shares 0 bytes, then 2 new ones
            *(1, 1, *b"c"),  # "ac": shares "a", then "c"
            *(0, 1, *b"b"),  # "b"
        ]
    )
    assert data[-4:] == zlib.crc32(data[:-4]).to_bytes(4, "big")


def test_writes_golden_bytes() -> None:
    w = Writes([KeyRange.single(b"x")], {b"k1": b"v", b"k2": b""}, {b"n": -2})
    data = w.serialize()
    assert data[:6] == b"KVST\x01\x03"
    assert body(data) == bytes(
        [
            *(1, 0, 0, 1, *b"x", 1, 1, 0),  # removes: one bounded range ["x", "x\0")
            *(2, 0, 2, *b"k1", 1, *b"v", 1, 1, *b"2", 0),  # puts: count, (key, value size, value)s
            *(1, 0, 1, *b"n", 3),  # adjusts: count, then key and zigzag(-2) = 3
        ]
    )


def test_kinds_differ() -> None:
    assert KeyRanges().serialize()[5] == 1
    assert Reads().serialize()[5] == 2
    assert Writes().serialize()[5] == 3


def test_empty_values_are_fourteen_bytes_or_less() -> None:
    assert len(KeyRanges().serialize()) == 4 + 2 + 2 + 4
    assert len(Writes().serialize()) == 4 + 2 + 4 + 4


# -- rejected input ----------------------------------------------------------------------------
GOOD = Writes(
    [KeyRange(b"a", b"b"), KeyRange(b"q", None)],
    {b"k1": b"v" * 200, b"k2": b"", b"k3": encode_counter(1)},
    {b"n": I64_MIN, b"o": 7},
).serialize()


def writes_blob(*chunks: bytes) -> bytes:
    return frame(3, list(chunks))


def ranges_blob(*chunks: bytes) -> bytes:
    return frame(1, list(chunks))


NO_RANGES = b"\x00\x00"
NO_ENTRIES = b"\x00"

BAD: list[tuple[str, bytes, Callable[[bytes], Any], str]] = [
    ("empty", b"", Writes.deserialize, "even an empty one"),
    ("short", MAGIC + b"\x01\x03", Writes.deserialize, "even an empty one"),
    ("magic", b"XXXX" + GOOD[4:], Writes.deserialize, "magic"),
    ("version", reseal(MAGIC + b"\x02" + GOOD[5:]), Writes.deserialize, "version 2"),
    ("kind", GOOD, KeyRanges.deserialize, "holds a serialized Writes, not a KeyRanges"),
    ("reads kind", KeyRanges().serialize(), Reads.deserialize, "not a Reads"),
    ("unknown kind", reseal(MAGIC + b"\x01\x09" + GOOD[6:]), Writes.deserialize, "unknown kind"),
    ("crc", GOOD[:10] + bytes([GOOD[10] ^ 1]) + GOOD[11:], Writes.deserialize, "CRC32"),
    ("truncated", reseal(GOOD[:-30] + b"\0\0\0\0"), Writes.deserialize, "corrupt"),
    ("trailing", reseal(GOOD[:-4] + b"\x00" + b"\0\0\0\0"), Writes.deserialize, "unexpected"),
    (
        "huge count",
        writes_blob(NO_RANGES, encode_varint(1 << 62), b"\x00\x01a\x00"),
        Writes.deserialize,
        "claims",
    ),
    ("long varint", writes_blob(NO_RANGES, b"\x80" * 11), Writes.deserialize, "longer than"),
    (
        "65-bit varint",
        writes_blob(NO_RANGES, b"\xff" * 9 + b"\x7f", NO_ENTRIES),
        Writes.deserialize,
        "larger than 64 bits",
    ),
    (
        "padded varint",
        writes_blob(NO_RANGES, b"\x81\x00", b"\x00\x01a\x00", NO_ENTRIES),
        Writes.deserialize,
        "redundant",
    ),
    (
        "unsorted puts",
        writes_blob(NO_RANGES, b"\x02", b"\x00\x01b\x00", b"\x00\x01a\x00", NO_ENTRIES),
        Writes.deserialize,
        "increasing",
    ),
    (
        "duplicate puts",
        writes_blob(NO_RANGES, b"\x02", b"\x00\x01a\x00", b"\x01\x00\x00", NO_ENTRIES),
        Writes.deserialize,
        "increasing",
    ),
    (
        "unsorted adjusts",
        writes_blob(NO_RANGES, NO_ENTRIES, b"\x02", b"\x00\x01b\x02", b"\x00\x01a\x02"),
        Writes.deserialize,
        "increasing",
    ),
    (
        "put and adjust",
        writes_blob(NO_RANGES, b"\x01\x00\x01a\x00", b"\x01\x00\x01a\x02"),
        Writes.deserialize,
        "both its puts and its adjusts",
    ),
    (
        "long key",
        writes_blob(NO_RANGES, b"\x01\x00", encode_varint(MAX_KEY_SIZE + 1), b"k" * 600),
        Writes.deserialize,
        "limit",
    ),
    (
        "shared too long",
        writes_blob(NO_RANGES, b"\x02", b"\x00\x01a\x00", b"\x05\x01b\x00", NO_ENTRIES),
        Writes.deserialize,
        "shares 5 bytes",
    ),
    (
        "value too long",
        writes_blob(NO_RANGES, b"\x01\x00\x01a", encode_varint(1 << 40), b"xx", NO_ENTRIES),
        Writes.deserialize,
        "value is",
    ),
    (
        "overlapping ranges",
        ranges_blob(b"\x02\x00", b"\x00\x01a", b"\x00\x01c", b"\x00\x01b", b"\x00\x01d"),
        KeyRanges.deserialize,
        "increasing",
    ),
    (
        "adjacent ranges",
        ranges_blob(b"\x02\x00", b"\x00\x01a", b"\x00\x01b", b"\x00\x01b", b"\x00\x01c"),
        KeyRanges.deserialize,
        "increasing",
    ),
    (
        "empty range",
        ranges_blob(b"\x01\x00", b"\x00\x01a", b"\x01\x00"),
        KeyRanges.deserialize,
        "increasing",
    ),
    ("bad flag", ranges_blob(b"\x01\x02", b"\x00\x01a"), KeyRanges.deserialize, "flag"),
    ("flag without ranges", ranges_blob(b"\x00\x01"), KeyRanges.deserialize, "flag"),
    (
        "long bound",
        ranges_blob(b"\x01\x01", b"\x00", encode_varint(MAX_KEY_SIZE + 2), b"k" * 600),
        KeyRanges.deserialize,
        "limit",
    ),
]


@pytest.mark.parametrize(("data", "load", "match"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_corrupt_data(
    data: bytes, load: Callable[[bytes], Any], match: str
) -> None:
    with pytest.raises(CorruptData, match=match):
        load(data)


def test_corrupt_data_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Writes.deserialize(b"junk")


@pytest.mark.parametrize("load", [KeyRanges.deserialize, Reads.deserialize, Writes.deserialize])
@pytest.mark.parametrize("data", [None, "KVST", 12, [1, 2]])
def test_non_bytes_input_raises_type_error(load: Callable[[Any], Any], data: object) -> None:
    with pytest.raises(TypeError, match="data must be bytes-like"):
        load(data)


def test_hostile_lengths_use_no_memory_and_no_time() -> None:
    hostile = [
        writes_blob(NO_RANGES, encode_varint((1 << 64) - 1), b"\x00" * 32),
        writes_blob(NO_RANGES, b"\x01\x00", encode_varint((1 << 64) - 1), b"\x00" * 32),
        writes_blob(NO_RANGES, b"\x01\x00\x01a", encode_varint((1 << 64) - 1), b"\x00" * 32),
        ranges_blob(encode_varint(1 << 60), b"\x00" * 32),
    ]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        for data in hostile:
            with pytest.raises(CorruptData):
                Writes.deserialize(data) if data[5] == 3 else KeyRanges.deserialize(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 200_000


# -- fuzzing -----------------------------------------------------------------------------------
LOADERS: list[Callable[[bytes], Any]] = [
    KeyRanges.deserialize,
    Reads.deserialize,
    Writes.deserialize,
]


def load_or_corrupt(load: Callable[[bytes], Any], data: bytes) -> None:
    """``data`` either loads into a value that round-trips, or raises CorruptData."""
    try:
        value = load(data)
    except CorruptData:
        return
    assert load(value.serialize()) == value


@given(st.binary(max_size=300), st.sampled_from(LOADERS))
def test_random_bytes_raise_only_corrupt_data(data: bytes, load: Callable[[bytes], Any]) -> None:
    load_or_corrupt(load, data)
    header = MAGIC + bytes([VERSION, 1 + LOADERS.index(load)])
    load_or_corrupt(load, reseal(header + data + b"0000"))


def samples() -> list[tuple[Callable[[bytes], Any], bytes]]:
    rng = random.Random(3)
    w = Writes()
    for i in range(40):
        key = bytes(rng.randrange(3) for _ in range(rng.randrange(6)))
        choice = i % 4
        if choice == 0:
            w.record_put(key, rng.randbytes(rng.choice([0, 5, 130])))
        elif choice == 1:
            w.record_adjust(key, rng.randrange(I64_MIN, I64_MAX))
        elif choice == 2:
            w.record_remove(key)
        else:
            w.record_remove_range(key, key + b"\x02")
    reads = Reads(w.removes)
    reads.add(KeyRange(b"\x02\x02", None))
    return [
        (Writes.deserialize, w.serialize()),
        (Writes.deserialize, GOOD),
        (Reads.deserialize, reads.serialize()),
        (KeyRanges.deserialize, KeyRanges(reads).serialize()),
    ]


HUGE = [encode_varint((1 << 64) - 1), encode_varint(1 << 31), b"\x80" * 10 + b"\x01", b"\xff"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One random damage to ``data``: truncate, flip bits, or overwrite a field with a huge one."""
    n = len(data)
    kind = rng.randrange(5)
    if kind == 0:
        return data[: rng.randrange(n)]
    if kind == 1:
        i = rng.randrange(n)
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    if kind == 2:
        i = rng.randrange(6, n - 4)
        return data[:i] + rng.choice(HUGE) + data[i + 1 :]
    if kind == 3:
        i = rng.randrange(6, n - 4)
        return data[:i] + data[i + rng.randrange(1, 4) :]  # drop bytes from the body
    return data[:4] + bytes([rng.randrange(256)]) + data[5:]  # wrong version


def test_damaged_blobs_raise_only_corrupt_data_quickly() -> None:
    rng = random.Random(11)
    start = time.perf_counter()
    tried = 0
    for load, data in samples():
        for _ in range(600):
            damaged = mutate(rng, data)
            load_or_corrupt(load, damaged)  # the CRC catches it...
            if len(damaged) >= 10:
                load_or_corrupt(load, reseal(damaged))  # ...and so does the parser
            tried += 2
    assert time.perf_counter() - start < 20
    assert tried == 4 * 600 * 2


def test_every_truncation_is_rejected() -> None:
    for load, data in samples():
        for end in range(len(data) - 1):
            with pytest.raises(CorruptData):
                load(data[:end])
            if end >= 10:
                with pytest.raises(CorruptData):
                    load(reseal(data[:end]))
