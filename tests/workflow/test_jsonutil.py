"""json_copy: a copy of a value JSON holds exactly as given; anything else is a NotJSON
error naming where it is and the fix, never a silent change."""

import datetime
import decimal
import enum
import uuid

import pytest

from workflow import NonRetryable, NotJSON
from workflow.jsonutil import json_copy


class Color(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


@pytest.mark.parametrize(
    ("value", "where", "fix"),
    [
        ({"tags": ("a", "b")}, "['tags'] is a tuple, ('a', 'b')", "use a list"),
        ({"ids": {1, 2}}, "['ids'] is a set, {1, 2}", "use a sorted list"),
        ({"ids": frozenset({1})}, "['ids'] is a frozenset", "use a sorted list"),
        ({1: "a"}, "it is a dict, {1: 'a'}", "its key 1 is an int, and JSON keys are strings"),
        ({"m": {(1, 2): "a"}}, "['m'] is a dict", "its key (1, 2) is a tuple"),
        ({"n": [1, float("nan")]}, "['n'][1] is a float, nan", "JSON has no NaN or Infinity"),
        ({"n": float("inf")}, "['n'] is a float, inf", "use null or a string"),
        ({"n": float("-inf")}, "['n'] is a float, -inf", "use null or a string"),
        ({"raw": b"\x00"}, "['raw'] is a bytes", "decode it to a str"),
        ({"at": datetime.date(2024, 1, 1)}, "['at'] is a date", "turn it into a str"),
        ({"n": decimal.Decimal("1.5")}, "['n'] is a Decimal", "turn it into a str"),
        ({"id": uuid.UUID(int=1)}, "['id'] is a UUID", "turn it into a str"),
        (object(), "it is an object", "turn it into a str, number, bool, None, list or dict"),
    ],
)
def test_a_value_json_cannot_hold_as_given_is_refused_naming_where(value, where, fix):
    """Each kind JSON has no exact form for (tuple, set, non-string key, NaN, Infinity,
    bytes, an object) raises NotJSON, a TypeError, naming what, where, and the fix."""
    with pytest.raises(NotJSON) as info:
        json_copy(value, "data emitted on 't'")
    message = str(info.value)
    assert message.startswith("data emitted on 't' must be JSON")
    assert where in message
    assert fix in message
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, NonRetryable)  # the same data would fail again


def test_a_value_that_contains_itself_is_refused():
    """A list that contains itself is NotJSON, not a RecursionError."""
    looped = [1]
    looped.append(looped)
    with pytest.raises(NotJSON, match=r"\[1\] is a list.*it contains itself"):
        json_copy(looped, "state value")


def test_plain_json_is_copied_unchanged():
    """Dicts with string keys, lists, strings, finite numbers, booleans and None are
    copied as they are, deeply (changing the copy leaves the original alone)."""
    value = {"a": [1, 2.5, True, None, "s", {"b": []}], "c": {}}
    copied = json_copy(value, "data")
    assert copied == value
    copied["a"][5]["b"].append(1)
    assert value["a"][5]["b"] == []


def test_str_and_int_subclasses_are_copied_as_their_plain_values():
    """An enum (a str or int subclass) is copied as its plain value, as JSON writes it."""
    copied = json_copy({Color.RED: [Size.BIG, Color.RED]}, "data")
    assert copied == {"red": [3, "red"]}
    assert [type(v) for v in copied["red"]] == [int, str]
    assert type(next(iter(copied))) is str
