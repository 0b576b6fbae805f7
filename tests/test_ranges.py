"""KeyRange: one half-open range of keys, ``[min_key, max_key)``; ``None`` is unbounded."""

from __future__ import annotations

import itertools
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import MAX_KEY_SIZE, KeyRange

ALPHABET = [0x00, 0x01, 0xFF]
small_keys = st.lists(st.sampled_from(ALPHABET), max_size=3).map(bytes)


@st.composite
def key_ranges(draw: st.DrawFn) -> KeyRange:
    a = draw(small_keys)
    b = draw(st.one_of(st.none(), small_keys))
    if b is not None and b < a:
        a, b = b, a
    return KeyRange(a, b)


# -- construction ------------------------------------------------------------------------------
def test_bounds_are_stored_as_bytes() -> None:
    r = KeyRange(bytearray(b"a"), memoryview(b"c"))
    assert r.min_key == b"a" and type(r.min_key) is bytes
    assert r.max_key == b"c" and type(r.max_key) is bytes


def test_min_key_none_means_empty_key() -> None:
    assert KeyRange(None, b"a").min_key == b""


def test_max_key_none_is_unbounded() -> None:
    r = KeyRange(b"a", None)
    assert r.max_key is None
    assert r.contains(b"\xff" * MAX_KEY_SIZE)


def test_min_greater_than_max_raises_value_error() -> None:
    with pytest.raises(ValueError, match="greater than max_key"):
        KeyRange(b"b", b"a")


def test_equal_bounds_make_an_empty_range() -> None:
    r = KeyRange(b"a", b"a")
    assert r.is_empty()
    assert not r.contains(b"a")


@pytest.mark.parametrize("bad", [1, "a", 1.0, [b"a"]])
def test_non_bytes_bound_raises_type_error_naming_it(bad: object) -> None:
    with pytest.raises(TypeError, match="min_key"):
        KeyRange(bad, None)
    with pytest.raises(TypeError, match="max_key"):
        KeyRange(b"", bad)


def test_bound_may_be_one_byte_longer_than_a_key() -> None:
    longest = b"\x01" * MAX_KEY_SIZE
    r = KeyRange(longest, longest + b"\x00")
    assert r.is_single_key()
    with pytest.raises(ValueError, match=str(MAX_KEY_SIZE)):
        KeyRange(b"\x01" * (MAX_KEY_SIZE + 2), None)


def test_single_is_key_to_its_successor() -> None:
    assert KeyRange.single(b"k") == KeyRange(b"k", b"k\x00")
    assert KeyRange.single(b"") == KeyRange(b"", b"\x00")


def test_prefix_covers_keys_with_that_prefix() -> None:
    r = KeyRange.prefix(b"ab")
    assert r == KeyRange(b"ab", b"ac")
    assert r.contains(b"ab") and r.contains(b"ab\xff\xff")
    assert not r.contains(b"aa\xff") and not r.contains(b"ac")


def test_prefix_with_trailing_ff_carries() -> None:
    assert KeyRange.prefix(b"a\xff") == KeyRange(b"a\xff", b"b")


def test_prefix_of_empty_key_is_full() -> None:
    assert KeyRange.prefix(b"") == KeyRange.FULL


def test_prefix_of_all_ff_is_unbounded() -> None:
    r = KeyRange.prefix(b"\xff\xff")
    assert r == KeyRange(b"\xff\xff", None)
    assert r.contains(b"\xff\xff\xff")
    assert not r.contains(b"\xff\xfe")


def test_full_holds_every_key() -> None:
    assert KeyRange(b"", None) == KeyRange.FULL
    assert KeyRange.FULL.is_full()
    assert KeyRange.FULL.contains(b"")


# -- queries -----------------------------------------------------------------------------------
def test_contains_key_is_half_open() -> None:
    r = KeyRange(b"\x00", b"\xff")
    assert r.contains(b"\x00")
    assert r.contains(b"\xfe\xff")
    assert not r.contains(b"\xff")
    assert not r.contains(b"")


def test_in_operator_is_contains() -> None:
    assert b"b" in KeyRange(b"a", b"c")
    assert KeyRange(b"a", b"b") in KeyRange(b"a", b"c")


def test_contains_key_checks_its_type() -> None:
    with pytest.raises(TypeError, match="key"):
        KeyRange(b"a", b"c").contains(3)


def test_contains_range_requires_all_of_it() -> None:
    r = KeyRange(b"b", b"d")
    assert r.contains(KeyRange(b"b", b"d"))
    assert r.contains(KeyRange(b"c", b"c\x00"))
    assert not r.contains(KeyRange(b"a", b"c"))
    assert not r.contains(KeyRange(b"c", b"e"))
    assert not r.contains(KeyRange(b"c", None))
    assert KeyRange(b"b", None).contains(KeyRange(b"c", None))


def test_every_range_contains_an_empty_range() -> None:
    r = KeyRange(b"b", b"d")
    assert r.contains(KeyRange(b"a", b"a"))
    assert r.contains(KeyRange(b"x", b"x"))


def test_overlaps_needs_a_shared_key() -> None:
    r = KeyRange(b"b", b"d")
    assert r.overlaps(KeyRange(b"c", None))
    assert r.overlaps(KeyRange(b"", b"b\x00"))
    assert not r.overlaps(KeyRange(b"d", b"e"))  # touching is not overlapping
    assert not r.overlaps(KeyRange(b"a", b"b"))
    assert not r.overlaps(KeyRange(b"c", b"c"))  # an empty range overlaps nothing


def test_overlaps_rejects_non_ranges() -> None:
    with pytest.raises(TypeError, match="range"):
        KeyRange.FULL.overlaps(b"a")  # type: ignore[arg-type]


def test_is_single_key() -> None:
    assert KeyRange(b"\xff", b"\xff\x00").is_single_key()
    assert not KeyRange(b"a", b"b").is_single_key()
    assert not KeyRange(b"a", None).is_single_key()


def test_is_full() -> None:
    assert not KeyRange(b"\x00", None).is_full()
    assert not KeyRange(b"", b"\xff").is_full()


def test_is_prefix_range() -> None:
    assert KeyRange(b"ab", b"ac").is_prefix_range()
    assert KeyRange(b"\xff", None).is_prefix_range()
    assert KeyRange.FULL.is_prefix_range()
    assert not KeyRange(b"ab", b"ad").is_prefix_range()
    assert not KeyRange(b"a", None).is_prefix_range()


# -- value protocol ----------------------------------------------------------------------------
def test_equal_ranges_hash_equal() -> None:
    assert KeyRange(b"a", b"b") == KeyRange(bytearray(b"a"), b"b")
    assert hash(KeyRange(b"a", b"b")) == hash(KeyRange(b"a", b"b"))
    assert len({KeyRange(b"a", None), KeyRange(b"a", None), KeyRange(b"a", b"b")}) == 2


def test_ranges_are_immutable() -> None:
    r = KeyRange(b"a", b"b")
    with pytest.raises(AttributeError):
        r.min_key = b"z"  # type: ignore[misc]


def test_order_is_by_min_then_max_with_unbounded_last() -> None:
    rs = [KeyRange(b"b", None), KeyRange(b"a", b"z"), KeyRange(b"b", b"c"), KeyRange(b"", None)]
    assert sorted(rs) == [
        KeyRange(b"", None),
        KeyRange(b"a", b"z"),
        KeyRange(b"b", b"c"),
        KeyRange(b"b", None),
    ]
    assert KeyRange(b"a", b"b") <= KeyRange(b"a", b"b") < KeyRange(b"a", None)
    assert KeyRange(b"b", b"b") > KeyRange(b"a", None) >= KeyRange(b"a", None)


def test_comparison_with_other_types_is_not_supported() -> None:
    assert KeyRange(b"a", b"b") != (b"a", b"b")
    with pytest.raises(TypeError):
        _ = KeyRange(b"a", b"b") < (b"a", b"b")  # type: ignore[operator]


def test_repr_round_trips() -> None:
    r = KeyRange(b"\x00a", None)
    assert repr(r) == "KeyRange(b'\\x00a', None)"
    assert eval(repr(r)) == r


def test_pickles() -> None:
    r = KeyRange(b"a", b"b")
    assert pickle.loads(pickle.dumps(r)) == r


# -- properties --------------------------------------------------------------------------------
@given(key_ranges(), small_keys)
def test_contains_matches_the_bounds(r: KeyRange, key: bytes) -> None:
    assert r.contains(key) == (r.min_key <= key and (r.max_key is None or key < r.max_key))


@given(key_ranges(), key_ranges())
def test_overlaps_is_symmetric_and_means_a_shared_key(a: KeyRange, b: KeyRange) -> None:
    shared = any(a.contains(k) and b.contains(k) for k in _universe())
    assert a.overlaps(b) == b.overlaps(a) == shared


@given(key_ranges(), key_ranges())
def test_contains_range_means_every_key(a: KeyRange, b: KeyRange) -> None:
    assert a.contains(b) == all(a.contains(k) for k in _universe() if b.contains(k))


def _universe() -> list[bytes]:
    """Every key of up to 3 bytes over ALPHABET."""
    return [bytes(t) for n in range(4) for t in itertools.product(ALPHABET, repeat=n)]
