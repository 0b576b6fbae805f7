"""PersiDict: persidict's LocalDict behaviour on kvstore, plus atomic conditional operations.

Every behaviour runs over an in-memory and an LMDB database.  The first tests replay the usage
examples of persidict's README (written for FileDirDict, whose in-memory twin is LocalDict).
"""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import kvstore
from kvstore import Database, KVError, PersiDict, RetryTransaction, TransactionConflict
from kvstore.layers import persidict as pd
from kvstore.layers.persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    ConcurrencyConflictError,
    MutationPolicyError,
)


@pytest.fixture
def d(db: Database) -> PersiDict:
    return PersiDict(db)


@pytest.fixture
def ao(db: Database) -> PersiDict:
    return PersiDict(db, ("ao",), append_only=True)


class Point:
    """A module-level class, so pickle can store it."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


# -- persidict's own usage examples ---------------------------------------------------------------
def test_readme_example_eliza_and_shoebox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "my_folder"
    my_dictionary = PersiDict(path)
    my_dictionary["Eliza"] = "MIT Eliza was a mock psychotherapist."
    my_dictionary["Eliza", "year"] = 1965
    my_dictionary["Eliza", "authors"] = ["Joseph Weizenbaum"]
    my_dictionary["Shoebox"] = "IBM Shoebox performed arithmetic operations"
    my_dictionary["Shoebox"] += " on voice commands."
    my_dictionary["Shoebox", "year"] = 1961
    my_dictionary["Shoebox", "authors"] = ["W.C. Dersch", "E.A. Quade"]
    for k in my_dictionary:
        print(list(k), "==>", my_dictionary[k])
    if "Eliza" not in my_dictionary:
        print("Something is wrong")
    # persidict does not promise an order, so compare the printed lines as a set
    assert set(capsys.readouterr().out.splitlines()) == {
        "['Eliza'] ==> MIT Eliza was a mock psychotherapist.",
        "['Shoebox'] ==> IBM Shoebox performed arithmetic operations on voice commands.",
        "['Shoebox', 'authors'] ==> ['W.C. Dersch', 'E.A. Quade']",
        "['Shoebox', 'year'] ==> 1961",
        "['Eliza', 'authors'] ==> ['Joseph Weizenbaum']",
        "['Eliza', 'year'] ==> 1965",
    }
    my_dictionary.close()
    del my_dictionary
    with PersiDict(path) as new_dict:
        assert len(new_dict) == 6


def test_readme_example_app_settings(tmp_path: Path) -> None:
    app_settings = PersiDict(tmp_path / "my_app_data")
    app_settings["username"] = "alex"
    app_settings["theme"] = "dark"
    app_settings["notifications_enabled"] = True
    app_settings["recent_projects"] = ["project_a", "project_b"]
    assert f"Current theme is: {app_settings['theme']}" == "Current theme is: dark"
    app_settings.close()
    with PersiDict(tmp_path / "my_app_data") as reloaded_settings:
        assert f"Number of settings: {len(reloaded_settings)}" == "Number of settings: 4"
        assert "username" in reloaded_settings


def test_readme_example_in_memory_like_localdict() -> None:
    with PersiDict(None) as d:
        d["Eliza"] = "MIT Eliza was a mock psychotherapist."
        d["Eliza", "year"] = 1965
        assert dict(d.items()) == {
            ("Eliza",): "MIT Eliza was a mock psychotherapist.",
            ("Eliza", "year"): 1965,
        }
    with PersiDict(None) as fresh:
        assert len(fresh) == 0


# -- keys -----------------------------------------------------------------------------------------
def test_str_key_is_a_one_tuple(d: PersiDict) -> None:
    d["a"] = 1
    assert d[("a",)] == 1
    assert list(d.keys()) == [("a",)]


def test_sequences_of_str_are_keys_and_nested_ones_flatten(d: PersiDict) -> None:
    d[["a", "b"]] = 1
    d["a", ("b", ["c"])] = 2
    assert d["a", "b"] == 1
    assert d["a", "b", "c"] == 2


def test_keys_come_back_as_tuples_in_key_order(d: PersiDict) -> None:
    for key in [("b",), ("a", "z"), ("a",), ("a", "b", "c"), ("B",)]:
        d[key] = 0
    assert list(d) == [("B",), ("a",), ("a", "b", "c"), ("a", "z"), ("b",)]


@pytest.mark.parametrize("bad", ["a/b", "a b", "caf\u00e9", "a\x00", "*", "", ("a", "")])
def test_unsafe_or_empty_parts_raise_value_error(d: PersiDict, bad: Any) -> None:
    with pytest.raises(ValueError):
        d[bad] = 1
    with pytest.raises(ValueError):
        _ = d[bad]


def test_every_safe_character_is_allowed(d: PersiDict) -> None:
    key = "".join(sorted(pd.SAFE_CHARS_SET))
    d[key] = 1
    assert d[key] == 1
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789()_-~.=")
    assert allowed == pd.SAFE_CHARS_SET


def test_empty_key_raises_value_error(d: PersiDict) -> None:
    for empty in [(), [], ((),)]:
        with pytest.raises(ValueError, match="at least one part"):
            d[empty] = 1


@pytest.mark.parametrize("bad", [1, None, b"abc", ("a", 2), 1.5, {"a": 1}])
def test_non_str_parts_raise_type_error(d: PersiDict, bad: Any) -> None:
    with pytest.raises(TypeError):
        d[bad] = 1


def test_part_length_limit_is_253(db: Database) -> None:
    d = PersiDict(db)
    d["x" * 253] = 1
    assert d["x" * 253] == 1
    with pytest.raises(ValueError, match="253"):
        d["x" * 254] = 1


def test_key_longer_than_the_store_allows_raises_value_error(d: PersiDict) -> None:
    with pytest.raises(ValueError, match=str(kvstore.MAX_KEY_SIZE)):
        d["x" * 200, "y" * 200, "z" * 200] = 1


def test_missing_key_raises_key_error_naming_the_tuple(d: PersiDict) -> None:
    with pytest.raises(KeyError) as info:
        _ = d["nope"]
    assert info.value.args == (("nope",),)


def test_prefixes_keep_dicts_apart(db: Database) -> None:
    a, b = PersiDict(db, ("a",)), PersiDict(db, ("b",))
    a["k"] = 1
    assert "k" not in b
    assert len(b) == 0


def test_formats_keep_items_apart_on_one_prefix(db: Database) -> None:
    p, j = PersiDict(db), PersiDict(db, serialization_format="json")
    p["k"] = {1, 2}
    j["k"] = [1, 2]
    assert p["k"] == {1, 2}
    assert j["k"] == [1, 2]
    assert len(p) == len(j) == 1
    j.clear()
    assert p["k"] == {1, 2}


def test_bad_prefix_raises(db: Database) -> None:
    with pytest.raises(ValueError):
        PersiDict(db, ("a b",))
    with pytest.raises(TypeError):
        PersiDict(db, (1,))  # type: ignore[arg-type]


def test_prefix_lives_in_the_tuple_layer_key_space(db: Database) -> None:
    d = PersiDict(db, ("app", "cache"))
    d["k"] = 1
    with db.transaction() as tx:
        keys = [kv.key for kv in tx.get_range()]
    assert keys == [kvstore.tuple.pack(("app", "cache", "k", None, "pkl"))]


# -- values ---------------------------------------------------------------------------------------
def test_pickle_format_round_trips_objects(d: PersiDict) -> None:
    value = {"p": Point(1, 2), "s": {1, 2}, "t": (1, "x"), "b": b"\x00"}
    d["k"] = value
    assert d["k"] == value


class _Point:
    def __init__(self, x: int, y: tuple[int, ...]) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Point) and (self.x, self.y) == (other.x, other.y)


def test_json_format_round_trips_python_objects_via_jsonpickle(db: Database) -> None:
    j = PersiDict(db, serialization_format="json")
    j["k"] = {"a": [1, 2.5, None, True, "s"]}
    j["t"] = (1, 2)
    j["s"] = {1, 2}
    j["o"] = _Point(3, (4, 5))
    assert j["k"] == {"a": [1, 2.5, None, True, "s"]}
    assert j["t"] == (1, 2) and type(j["t"]) is tuple
    assert j["s"] == {1, 2} and type(j["s"]) is set
    assert j["o"] == _Point(3, (4, 5))


def test_json_format_reads_plain_json_and_names_the_extra_if_missing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = PersiDict(db, serialization_format="json")
    j["k"] = {"a": [1]}
    assert j["k"] == {"a": [1]}  # plain JSON values stay plain JSON
    monkeypatch.setitem(sys.modules, "jsonpickle", None)
    with pytest.raises(ImportError, match=r"kvstore\[persidict-json\]"):
        PersiDict(db, serialization_format="json")


def test_other_formats_store_text_and_need_str_values(db: Database) -> None:
    with pytest.raises(ValueError, match="base_class_for_values=str"):
        PersiDict(db, serialization_format="txt")
    t = PersiDict(db, serialization_format="txt", base_class_for_values=str)
    t["k"] = "h\u00e9llo"
    assert t["k"] == "h\u00e9llo"
    with pytest.raises(TypeError):
        t["n"] = 5


@pytest.mark.parametrize("fmt", ["", "a/b", "p k l"])
def test_unsafe_serialization_format_raises_value_error(db: Database, fmt: str) -> None:
    with pytest.raises(ValueError):
        PersiDict(db, serialization_format=fmt)


def test_base_class_is_checked_on_write(db: Database) -> None:
    d = PersiDict(db, base_class_for_values=int)
    d["ok"] = 1
    with pytest.raises(TypeError, match="int"):
        d["bad"] = "one"
    assert "bad" not in d


def test_base_class_is_checked_on_read(db: Database) -> None:
    PersiDict(db)["k"] = "a string"
    ints = PersiDict(db, base_class_for_values=int)
    with pytest.raises(TypeError, match="int"):
        _ = ints["k"]


def test_base_class_must_be_a_type(db: Database) -> None:
    with pytest.raises(TypeError):
        PersiDict(db, base_class_for_values=5)  # type: ignore[arg-type]


def test_a_persidict_cannot_be_a_value(d: PersiDict) -> None:
    with pytest.raises(TypeError):
        d["k"] = d


# -- append-only ----------------------------------------------------------------------------------
def test_append_only_adds_new_items(ao: PersiDict) -> None:
    ao["k"] = 1
    assert ao["k"] == 1


def test_append_only_refuses_overwrite(ao: PersiDict) -> None:
    ao["k"] = 1
    with pytest.raises(MutationPolicyError) as info:
        ao["k"] = 2
    assert info.value.policy == "append-only"
    assert ao["k"] == 1


def test_mutation_policy_error_is_a_kv_error_and_a_type_error() -> None:
    assert issubclass(MutationPolicyError, KVError)
    assert issubclass(MutationPolicyError, TypeError)


@pytest.mark.parametrize(
    "delete",
    [
        lambda d: d.__delitem__("k"),
        lambda d: d.discard("k"),
        lambda d: d.delete_if_exists("k"),
        lambda d: d.pop("k"),
        lambda d: d.popitem(),
        lambda d: d.clear(),
        lambda d: d.__setitem__("k", DELETE_CURRENT),
        lambda d: d.set_item_if("k", DELETE_CURRENT, d.etag("k")),
        lambda d: d.discard_if("k", d.etag("k")),
        lambda d: d.transform_item("k", lambda v: DELETE_CURRENT),
    ],
)
def test_append_only_refuses_every_delete(ao: PersiDict, delete: Any) -> None:
    ao["k"] = 1
    with pytest.raises(MutationPolicyError):
        delete(ao)
    assert ao["k"] == 1


def test_append_only_accepts_keep_current_and_setdefault(ao: PersiDict) -> None:
    ao["k"] = 1
    ao["k"] = KEEP_CURRENT
    assert ao.setdefault("k", 2) == 1
    assert ao["k"] == 1


def test_append_only_update_is_all_or_nothing(ao: PersiDict) -> None:
    ao["k"] = 1
    with pytest.raises(MutationPolicyError):
        ao.update({"new": 1, "k": 2})
    assert "new" not in ao


# -- jokers ---------------------------------------------------------------------------------------
def test_keep_current_changes_nothing(d: PersiDict) -> None:
    d["k"] = 1
    tag = d.etag("k")
    d["k"] = KEEP_CURRENT
    d["absent"] = KEEP_CURRENT
    assert d["k"] == 1 and d.etag("k") == tag
    assert "absent" not in d


def test_delete_current_deletes(d: PersiDict) -> None:
    d["k"] = 1
    d["k"] = DELETE_CURRENT
    d["absent"] = DELETE_CURRENT
    assert "k" not in d and len(d) == 0


def test_flags_stay_singletons_through_pickle_and_copy() -> None:
    for flag in [KEEP_CURRENT, DELETE_CURRENT, ITEM_NOT_AVAILABLE, VALUE_NOT_RETRIEVED, ANY_ETAG]:
        assert pickle.loads(pickle.dumps(flag)) is flag
        assert copy.deepcopy(flag) is flag


# -- etag and timestamp ---------------------------------------------------------------------------
def test_etag_changes_on_every_write_even_in_one_clock_tick(d: PersiDict) -> None:
    tags = set()
    for _ in range(200):
        d["k"] = "same value"
        tags.add(d.etag("k"))
    assert len(tags) == 200


def test_etag_is_stable_between_writes(d: PersiDict) -> None:
    d["k"] = 1
    assert d.etag("k") == d.etag(("k",))


def test_etag_and_timestamp_of_missing_key_raise_key_error(d: PersiDict) -> None:
    with pytest.raises(KeyError):
        d.etag("k")
    with pytest.raises(KeyError):
        d.timestamp("k")


def test_timestamp_is_the_write_time(d: PersiDict) -> None:
    before = time.time()
    d["k"] = 1
    after = time.time()
    assert before <= d.timestamp("k") <= after


def test_etag_and_value_survive_reopening(tmp_path: Path) -> None:
    with PersiDict(tmp_path / "db") as d:
        d["k"] = [1, 2]
        tag, ts = d.etag("k"), d.timestamp("k")
    with PersiDict(tmp_path / "db") as d:
        assert (d["k"], d.etag("k"), d.timestamp("k")) == ([1, 2], tag, ts)


# -- mapping API ----------------------------------------------------------------------------------
def test_len_iter_contains(d: PersiDict) -> None:
    d["a"] = 1
    d["a", "b"] = 2
    assert len(d) == 2
    assert set(d) == {("a",), ("a", "b")}
    assert "a" in d and ("a", "b") in d and "b" not in d


def test_keys_values_items_agree(d: PersiDict) -> None:
    d.update({"a": 1, ("b", "c"): 2, "d": 3})
    assert list(d.items()) == list(zip(d.keys(), d.values(), strict=True))
    assert list(d.values()) == [1, 2, 3]


def test_the_and_timestamps_forms(d: PersiDict) -> None:
    d["a"] = 1
    ts = d.timestamp("a")
    assert list(d.keys_and_timestamps()) == [(("a",), ts)]
    assert list(d.values_and_timestamps()) == [(1, ts)]
    assert list(d.items_and_timestamps()) == [(("a",), 1, ts)]


def test_get_returns_default_when_absent(d: PersiDict) -> None:
    d["a"] = 1
    assert d.get("a") == 1
    assert d.get("b") is None
    assert d.get("b", 7) == 7


def test_setdefault(d: PersiDict) -> None:
    assert d.setdefault("k", [1]) == [1]
    assert d.setdefault("k", [2]) == [1]
    assert d["k"] == [1]
    with pytest.raises(TypeError):
        d.setdefault("j", KEEP_CURRENT)


def test_clear_removes_only_this_dicts_items(db: Database) -> None:
    d, sub, other = PersiDict(db), PersiDict(db, ("s",)), PersiDict(db, serialization_format="json")
    d["a"] = 1
    other["a"] = 1
    sub.clear()
    assert len(d) == 1
    d["s", "x"] = 1
    sub.clear()
    assert list(d) == [("a",)] and len(other) == 1
    d.clear()
    assert len(d) == 0 and len(other) == 1


def test_discard_and_delete_if_exists_say_whether_deleted(d: PersiDict) -> None:
    d["a"] = 1
    d["b"] = 2
    assert d.discard("a") is True
    assert d.discard("a") is False
    assert d.delete_if_exists("b") is True
    assert d.delete_if_exists("b") is False


def test_delitem_of_missing_key_raises_key_error(d: PersiDict) -> None:
    with pytest.raises(KeyError):
        del d["k"]


def test_pop_and_popitem(d: PersiDict) -> None:
    d["a"] = 1
    d["b"] = 2
    assert d.pop("a") == 1
    assert d.pop("a", None) is None
    with pytest.raises(KeyError):
        d.pop("a")
    assert d.popitem() == (("b",), 2)
    with pytest.raises(KeyError):
        d.popitem()


def test_update_is_all_or_nothing(db: Database) -> None:
    d = PersiDict(db, base_class_for_values=int)
    with pytest.raises(TypeError):
        d.update([("a", 1), ("b", "two")])
    assert len(d) == 0
    d.update({"a": 1}, b=2)
    d |= {"c": 3}
    assert dict(d.items()) == {("a",): 1, ("b",): 2, ("c",): 3}


def test_get_subdict_shares_storage_with_relative_keys(d: PersiDict) -> None:
    d["Eliza"] = "the item named like the prefix is not in the subdict"
    d["Eliza", "year"] = 1965
    sub = d.get_subdict("Eliza")
    assert dict(sub.items()) == {("year",): 1965}
    sub["authors"] = ["Joseph Weizenbaum"]
    assert d["Eliza", "authors"] == ["Joseph Weizenbaum"]
    assert d.get_subdict(("Eliza", "year")) == {}
    assert d.get_subdict(()) == d


def test_subdicts_maps_first_parts_to_subdicts(d: PersiDict) -> None:
    d["a", "x"] = 1
    d["b", "y"] = 2
    subs = d.subdicts()
    assert set(subs) == {"a", "b"}
    assert subs["a"]["x"] == 1


def test_newest_and_oldest_keys_and_values(d: PersiDict) -> None:
    for i, key in enumerate(["c", "a", "b"]):
        d[key] = i
        time.sleep(0.002)
    assert d.oldest_keys() == [("c",), ("a",), ("b",)]
    assert d.newest_keys(2) == [("b",), ("a",)]
    assert d.oldest_values(1) == [0]
    assert d.newest_values() == [2, 1, 0]
    assert d.newest_keys(0) == [] and d.oldest_keys(-1) == []


def test_random_key(d: PersiDict) -> None:
    assert d.random_key() is None
    for key in "abc":
        d[key] = 0
    assert {d.random_key() for _ in range(200)} == {("a",), ("b",), ("c",)}


def test_equality_follows_persidict(db: Database) -> None:
    d = PersiDict(db, serialization_format="json")
    d["key1"] = "value1"
    assert d == PersiDict(**d.get_params())
    assert d == {"key1": "value1"}
    other = PersiDict(None)
    other["key1"] = "value1"
    assert d == other
    other["key1"] = "different"
    assert d != other
    assert d != 5


def test_repr_names_the_parameters_and_str_shows_items(d: PersiDict) -> None:
    d["a"] = 1
    assert "prefix=()" in repr(d) and "serialization_format='pkl'" in repr(d)
    assert str(d) == "{('a',): 1}"


def test_pickling_raises_type_error_and_copy_shares_storage(d: PersiDict) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(d)
    c = copy.copy(d)
    c["a"] = 1
    assert d["a"] == 1


def test_bool_is_whether_there_is_an_item(d: PersiDict) -> None:
    assert not d
    d["a", "b"] = 1
    assert d


def test_iteration_reads_in_pages(d: PersiDict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pd, "_PAGE", 3)
    d.update({f"k{i:02}": i for i in range(10)})
    assert list(d.values()) == list(range(10))


def test_iteration_survives_concurrent_writes(
    d: PersiDict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pd, "_PAGE", 2)
    d.update({f"k{i}": i for i in range(6)})
    seen = []
    for key in d:
        seen.append(key)
        d.discard("k5")
        d["k9"] = 9
    assert seen == [("k0",), ("k1",), ("k2",), ("k3",), ("k4",), ("k9",)]


def test_db_may_be_a_path_or_none_and_close_closes_what_it_opened(tmp_path: Path) -> None:
    d = PersiDict(str(tmp_path / "db"))
    d["a"] = 1
    d.close()
    with pytest.raises(kvstore.StoreClosed):
        d["a"] = 2
    with pytest.raises(TypeError):
        PersiDict(42)  # type: ignore[arg-type]


def test_close_leaves_a_passed_in_database_open(db: Database) -> None:
    with PersiDict(db) as d:
        d["a"] = 1
    assert PersiDict(db)["a"] == 1


# -- ETag-conditional operations ------------------------------------------------------------------
def test_get_item_if_on_missing_key_reports_item_not_available(d: PersiDict) -> None:
    r = d.get_item_if("k", ITEM_NOT_AVAILABLE)
    assert r.condition_was_satisfied
    assert r.actual_etag is r.resulting_etag is r.new_value is ITEM_NOT_AVAILABLE
    assert not d.get_item_if("k", "some-etag").condition_was_satisfied


def test_get_item_if_retrieves_per_retrieve_value(d: PersiDict) -> None:
    d["k"] = "v"
    tag = d.etag("k")
    assert d.get_item_if("k", tag).new_value is VALUE_NOT_RETRIEVED  # the caller has it
    assert d.get_item_if("k", "stale").new_value == "v"
    assert d.get_item_if("k", tag, retrieve_value=ALWAYS_RETRIEVE).new_value == "v"
    never = d.get_item_if("k", "stale", retrieve_value=NEVER_RETRIEVE)
    assert never.new_value is VALUE_NOT_RETRIEVED
    r = d.get_item_if("k", tag, ETAG_HAS_CHANGED)
    assert not r.condition_was_satisfied and r.actual_etag == tag and not r.value_was_mutated


def test_set_item_if_writes_when_the_etag_matches(d: PersiDict) -> None:
    d["k"] = 1
    r = d.set_item_if("k", 2, d.etag("k"))
    assert r.condition_was_satisfied and r.value_was_mutated
    assert r.resulting_etag == d.etag("k") and r.new_value == 2 == d["k"]


def test_set_item_if_changes_nothing_when_the_etag_is_stale(d: PersiDict) -> None:
    d["k"] = 1
    stale = d.etag("k")
    d["k"] = 2
    r = d.set_item_if("k", 3, stale)
    assert not r.condition_was_satisfied and not r.value_was_mutated
    assert r.actual_etag == d.etag("k") and r.new_value == 2 == d["k"]


def test_set_item_if_with_item_not_available_creates_only_if_absent(d: PersiDict) -> None:
    assert d.set_item_if("k", 1, ITEM_NOT_AVAILABLE).condition_was_satisfied
    r = d.set_item_if("k", 2, ITEM_NOT_AVAILABLE)
    assert not r.condition_was_satisfied and d["k"] == 1


def test_set_item_if_other_conditions(d: PersiDict) -> None:
    d["k"] = 1
    tag = d.etag("k")
    assert not d.set_item_if("k", 2, tag, ETAG_HAS_CHANGED).condition_was_satisfied
    assert d.set_item_if("k", 2, "other", ETAG_HAS_CHANGED).condition_was_satisfied
    assert d.set_item_if("k", 3, "whatever", ANY_ETAG).condition_was_satisfied
    assert d["k"] == 3


def test_set_item_if_accepts_persidict_keywords(d: PersiDict) -> None:
    r = d.set_item_if("k", value=1, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE)
    assert r.condition_was_satisfied


def test_set_item_if_with_jokers(d: PersiDict) -> None:
    d["k"] = 1
    tag = d.etag("k")
    r = d.set_item_if("k", KEEP_CURRENT, tag, retrieve_value=ALWAYS_RETRIEVE)
    assert r.condition_was_satisfied and not r.value_was_mutated and r.new_value == 1
    r = d.set_item_if("k", DELETE_CURRENT, tag)
    assert r.condition_was_satisfied and r.resulting_etag is ITEM_NOT_AVAILABLE
    assert "k" not in d


def test_set_item_if_on_append_only(ao: PersiDict) -> None:
    assert ao.set_item_if("k", 1, ITEM_NOT_AVAILABLE).condition_was_satisfied
    assert not ao.set_item_if("k", 2, ITEM_NOT_AVAILABLE).condition_was_satisfied
    with pytest.raises(MutationPolicyError):
        ao.set_item_if("k", 2, ao.etag("k"))


def test_setdefault_if(d: PersiDict) -> None:
    r = d.setdefault_if("k", 1, ITEM_NOT_AVAILABLE)
    assert r.condition_was_satisfied and r.value_was_mutated and d["k"] == 1
    r = d.setdefault_if("k", 2, ITEM_NOT_AVAILABLE)
    assert not r.condition_was_satisfied and r.new_value == 1 and d["k"] == 1


def test_discard_if(d: PersiDict) -> None:
    d["k"] = 1
    stale = d.etag("k")
    d["k"] = 2
    r = d.discard_if("k", stale)
    assert not r.condition_was_satisfied and r.new_value is VALUE_NOT_RETRIEVED and "k" in d
    r = d.discard_if("k", d.etag("k"))
    assert r.condition_was_satisfied and r.resulting_etag is ITEM_NOT_AVAILABLE and "k" not in d
    assert d.discard_if("k", ITEM_NOT_AVAILABLE).condition_was_satisfied  # both say: absent


def test_conditional_operations_check_their_arguments(d: PersiDict) -> None:
    with pytest.raises(ValueError):
        d.get_item_if("k", ITEM_NOT_AVAILABLE, "same")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        d.get_item_if("k", ITEM_NOT_AVAILABLE, retrieve_value=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        d.set_item_if("k", 1, None)  # type: ignore[arg-type]


def test_transform_item_gets_item_not_available_when_absent(d: PersiDict) -> None:
    seen = []

    def f(v: Any) -> Any:
        seen.append(v)
        return 1 if v is ITEM_NOT_AVAILABLE else v + 1

    assert d.transform_item("n", f).new_value == 1
    r = d.transform_item("n", f)
    assert seen == [ITEM_NOT_AVAILABLE, 1]
    assert r.new_value == 2 and r.resulting_etag == d.etag("n")


def test_transform_item_with_jokers(d: PersiDict) -> None:
    d["k"] = 1
    assert d.transform_item("k", lambda v: KEEP_CURRENT).new_value == 1
    r = d.transform_item("k", lambda v: DELETE_CURRENT)
    assert r.resulting_etag is ITEM_NOT_AVAILABLE and "k" not in d


def test_transform_item_is_atomic_across_threads(d: PersiDict) -> None:
    def work() -> None:
        for _ in range(25):
            d.transform_item("n", lambda v: 1 if v is ITEM_NOT_AVAILABLE else v + 1, n_retries=None)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert d["n"] == 100


def test_transform_item_raises_concurrency_conflict_when_retries_run_out(d: PersiDict) -> None:
    calls = []

    def meddle(v: Any) -> Any:
        calls.append(v)
        d["k"] = len(calls) * 100  # another writer changes the item every time
        return 0

    d["k"] = 1
    with pytest.raises(ConcurrencyConflictError) as info:
        d.transform_item("k", meddle, n_retries=2)
    assert len(calls) == 3 and info.value.attempts == 3
    assert isinstance(info.value, RetryTransaction) and isinstance(info.value, RuntimeError)


def test_transformer_errors_propagate_and_write_nothing(d: PersiDict) -> None:
    d["k"] = 1
    with pytest.raises(ZeroDivisionError):
        d.transform_item("k", lambda v: v / 0)
    assert d["k"] == 1


# -- in a caller's transaction --------------------------------------------------------------------
def test_in_transaction_writes_wait_for_commit(db: Database, d: PersiDict) -> None:
    with db.transaction() as tx:
        bound = d.in_transaction(tx)
        bound["a"] = 1
        assert bound["a"] == 1 and list(bound) == [("a",)]
        assert "a" not in d
    assert d["a"] == 1


def test_rollback_discards_the_dicts_writes(db: Database, d: PersiDict) -> None:
    d["keep"] = 1
    with pytest.raises(RuntimeError), db.transaction() as tx:
        bound = d.in_transaction(tx)
        bound["a"] = 1
        del bound["keep"]
        bound.transform_item("n", lambda v: 1)
        raise RuntimeError("abort")
    assert list(d.items()) == [(("keep",), 1)]


def test_dict_writes_compose_atomically_with_other_writes(db: Database, d: PersiDict) -> None:
    d["balance", "alice"] = 10
    d["balance", "bob"] = 0

    def transfer(tx: kvstore.Transaction, amount: int) -> None:
        accounts = d.in_transaction(tx).get_subdict("balance")
        accounts["alice"] -= amount
        accounts["bob"] += amount
        tx.put(b"log", b"transfer %d" % amount)

    db.run(transfer, 3)
    assert (d["balance", "alice"], d["balance", "bob"]) == (7, 3)
    assert db.store.get(b"log") == b"transfer 3"


def test_bound_dict_reads_conflict_with_concurrent_commits(db: Database, d: PersiDict) -> None:
    d["k"] = 1
    tx = db.transaction()
    bound = d.in_transaction(tx)
    bound["k"] = bound["k"] + 1
    d["k"] = 100  # commits meanwhile
    with pytest.raises(TransactionConflict):
        tx.commit()
    assert d["k"] == 100


def test_in_transaction_needs_a_store(d: PersiDict) -> None:
    with pytest.raises(TypeError):
        d.in_transaction("tx")  # type: ignore[arg-type]


# -- two processes --------------------------------------------------------------------------------
def _racer(path: str, rounds: int, etags: Any, barrier: Any, results: Any, me: int) -> None:
    try:
        db = kvstore.open(path, durability="none")
        d = PersiDict(db)
        results.put((me, "ready"))
        for _ in range(rounds):
            etag = etags.get()
            barrier.wait()
            r = d.set_item_if("k", me, etag)
            results.put((me, r.condition_was_satisfied))
        db.close()
    except BaseException:
        results.put((me, traceback.format_exc()))  # the parent shows it
        raise


@pytest.mark.slow
def test_racing_set_item_if_with_one_etag_has_exactly_one_winner(tmp_path: Path) -> None:
    rounds = 5
    path = str(tmp_path / "db")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results: Any = ctx.Queue()
    inboxes: list[Any] = [ctx.Queue(), ctx.Queue()]
    with kvstore.open(path, durability="none") as db:
        d = PersiDict(db)
        d["k"] = "start"
        procs = [
            ctx.Process(target=_racer, args=(path, rounds, inboxes[i], barrier, results, i))
            for i in range(2)
        ]
        for p in procs:
            p.start()
        try:
            # starting a spawned interpreter can take long on a busy machine
            ready = sorted(results.get(timeout=300) for _ in range(2))
            assert ready == [(0, "ready"), (1, "ready")], ready
            for _ in range(rounds):
                d["k"] = "start"
                etag = d.etag("k")
                for inbox in inboxes:
                    inbox.put(etag)
                outcome = dict(results.get(timeout=120) for _ in range(2))
                assert sorted(outcome.values(), key=str) == [False, True], outcome
                winner = next(me for me, won in outcome.items() if won is True)
                assert d["k"] == winner
        finally:
            for p in procs:
                p.join(timeout=60)
                if p.is_alive():
                    p.kill()
        assert all(p.exitcode == 0 for p in procs)


# -- against a dict model -------------------------------------------------------------------------
_parts = st.sampled_from(["a", "b", "c"])
_keys = st.lists(_parts, min_size=1, max_size=3).map(tuple)


class PersiDictMachine(RuleBasedStateMachine):
    """Random operation sequences on a PersiDict and on a dict of (value, etag) must agree."""

    def __init__(self) -> None:
        super().__init__()
        self.db = kvstore.open(None)
        self.d = PersiDict(self.db, ("m",))
        self.model: dict[tuple[str, ...], tuple[int, str]] = {}

    def teardown(self) -> None:
        self.db.close()

    @rule(key=_keys, value=st.integers())
    def set(self, key: tuple[str, ...], value: int) -> None:
        self.d[key] = value
        self.model[key] = (value, self.d.etag(key))

    @rule(key=_keys)
    def discard(self, key: tuple[str, ...]) -> None:
        assert self.d.discard(key) == (key in self.model)
        self.model.pop(key, None)

    @rule(key=_keys, value=st.integers())
    def setdefault(self, key: tuple[str, ...], value: int) -> None:
        expected = self.model[key][0] if key in self.model else value
        assert self.d.setdefault(key, value) == expected
        if key not in self.model:
            self.model[key] = (value, self.d.etag(key))

    @rule(key=_keys, value=st.integers(), stale=st.booleans())
    def set_item_if(self, key: tuple[str, ...], value: int, stale: bool) -> None:
        current = self.model[key][1] if key in self.model else ITEM_NOT_AVAILABLE
        expected = "0123456789abcdef" if stale else current
        r = self.d.set_item_if(key, value, expected)
        assert r.condition_was_satisfied == (not stale)
        if not stale:
            self.model[key] = (value, r.resulting_etag)  # type: ignore[assignment]

    @rule(key=_keys)
    def transform(self, key: tuple[str, ...]) -> None:
        r = self.d.transform_item(key, lambda v: 0 if v is ITEM_NOT_AVAILABLE else v + 1)
        old = self.model[key][0] if key in self.model else -1
        self.model[key] = (old + 1, r.resulting_etag)  # type: ignore[assignment]

    @rule(part=_parts)
    def subdict_matches(self, part: str) -> None:
        expected = {k[1:]: v for k, (v, _) in self.model.items() if k[0] == part and len(k) > 1}
        assert dict(self.d.get_subdict(part).items()) == expected

    @precondition(lambda self: len(self.model) > 5)
    @rule()
    def clear(self) -> None:
        self.d.clear()
        self.model.clear()

    @invariant()
    def same_items(self) -> None:
        assert dict(self.d.items()) == {k: v for k, (v, _) in self.model.items()}
        assert list(self.d) == sorted(self.model)
        assert len(self.d) == len(self.model)

    @invariant()
    def same_etags(self) -> None:
        for key, (_, etag) in self.model.items():
            assert self.d.etag(key) == etag


PersiDictMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None
)
test_persidict_matches_a_dict_model = PersiDictMachine.TestCase


# -- issue 14: drop-in details ----------------------------------------------------------------


def test_get_with_etag_returns_value_and_etag_in_one_result(d: PersiDict) -> None:
    d["k"] = [1, 2]
    r = d.get_with_etag("k")
    assert r.condition_was_satisfied
    assert r.new_value == [1, 2]
    assert r.actual_etag == r.resulting_etag == d.etag("k")
    assert not r.value_was_mutated
    missing = d.get_with_etag("absent")
    assert missing.condition_was_satisfied
    assert missing.new_value is ITEM_NOT_AVAILABLE
    assert missing.actual_etag is ITEM_NOT_AVAILABLE


def test_keys_come_back_as_safe_str_tuples(d: PersiDict) -> None:
    d["a"] = 1
    d["b", "c"] = 2
    keys = list(d.keys())
    assert "a" in keys and ("a",) in keys and ("b", "c") in keys
    k = next(iter(d))
    assert isinstance(k, pd.SafeStrTuple) and isinstance(k, tuple)
    assert k == "a" and k == ("a",) and k == ["a"]
    assert (k != "a") is False
    assert k != "b" and k != ("a", "x") and k != 3
    assert k.strings == ("a",) and type(k.strings) is tuple
    assert hash(k) == hash(("a",)) and {k: 1}[("a",)] == 1
    assert pickle.loads(pickle.dumps(k)) == k
    with pytest.raises(KeyError) as info:
        d["missing"]
    assert isinstance(info.value.args[0], pd.SafeStrTuple)
    assert info.value.args[0] == "missing"


@pytest.mark.parametrize("part", [".", ".."])
def test_dot_key_parts_are_refused_like_persidict(d: PersiDict, part: str) -> None:
    for key in (part, ("a", part), (part, "b")):
        with pytest.raises(ValueError, match="not allowed"):
            d[key] = 1
        with pytest.raises(ValueError):
            d.get_subdict(key)
    d["..."] = d[".a"] = d["a."] = 1  # only the bare dot names are special
    assert len(d) == 3


def test_error_types_match_persidict(d: PersiDict, tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        d.transform_item("k", lambda v: 1, n_retries="bad")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        d.transform_item("k", lambda v: 1, n_retries=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        d.transform_item("k", lambda v: 1, n_retries=-1)
    with pytest.raises(TypeError):
        d.__setstate__({})
    with pytest.raises(TypeError):
        pickle.dumps(d)
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a database")
    for path in (a_file, str(a_file)):
        with pytest.raises(ValueError, match="regular file"):
            PersiDict(path)
    assert a_file.read_text() == "not a database"


def test_in_memory_values_are_copies_like_on_disk(db: Database) -> None:
    d = PersiDict(db)
    stored = [1]
    d["k"] = stored
    stored.append(2)
    got = d["k"]
    got.append(3)
    assert d["k"] == [1]  # values are pickled, in memory as on disk (docs/persidict.md)
    with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
        d["lam"] = lambda: None


def test_sub_dicts_and_copies_of_a_subclass_are_of_that_subclass(db: Database) -> None:
    """As in persidict: ``get_subdict``/``copy`` keep the dict's class (found by its suite)."""

    class Tagged(PersiDict):
        pass

    d = Tagged(db, ("tagged",))
    d["a", "b"] = 1
    assert type(d.get_subdict("a")) is Tagged
    assert type(d.copy()) is Tagged and type(copy.copy(d)) is Tagged
    assert all(type(sub) is Tagged for sub in d.subdicts().values())
    with db.transaction() as tx:
        assert type(d.in_transaction(tx)) is Tagged
    assert d.get_subdict("a")["b"] == 1
