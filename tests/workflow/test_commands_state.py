"""``manage.py state list|get|set|delete``: the shared state from the shell."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from workflow.models import StateEntry
from workflow.state import StateStore

pytestmark = pytest.mark.django_db


def state(*args, **options):
    out = StringIO()
    call_command("state", *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def store():
    store = StateStore()
    store.set("users", "u1", {"name": "Ann", "status": "pending"})
    store.set("users", "u2", {"name": "Bob", "bio": "x" * 300})
    store.set("emails", "welcome-u1", {"to": "ann@example.com"})
    return store


def test_set_stores_the_json_value(store):
    """set writes through the state store: read back as the same JSON."""
    assert state("set", "users", "u3", '{"name": "Zoë", "tags": ["a"], "n": 1.5}') == (
        "set users/u3\n"
    )
    assert store.get("users", "u3") == {"name": "Zoë", "tags": ["a"], "n": 1.5}


@pytest.mark.parametrize("value, stored", [('"text"', "text"), ("3", 3), ("null", None)])
def test_set_takes_any_json_value(store, value, stored):
    state("set", "flags", "f", value)
    assert StateEntry.objects.get(group="flags", key="f").value == stored


def test_set_replaces_a_value(store):
    state("set", "users", "u1", '{"status": "active"}')
    assert store.get("users", "u1") == {"status": "active"}


@pytest.mark.parametrize("value", ["hello", "{'a': 1}", "{", "NaN"])
def test_set_refuses_a_value_that_is_not_json(store, value):
    """A bare word, Python syntax or NaN is refused, with how to quote a string."""
    with pytest.raises(CommandError, match="the value is not valid JSON") as error:
        state("set", "users", "u9", value)
    assert """'"text"'""" in str(error.value)
    assert store.get("users", "u9") is None


def test_get_prints_the_value_as_json(store):
    assert json.loads(state("get", "users", "u1")) == {"name": "Ann", "status": "pending"}


def test_get_of_a_missing_key_is_an_error(store):
    with pytest.raises(CommandError, match="no state at users/nobody"):
        state("get", "users", "nobody")


def test_get_of_a_stored_null_prints_null(store):
    """A key that holds null exists: it prints null rather than an error."""
    store.set("flags", "f", None)
    assert state("get", "flags", "f").strip() == "null"


def test_delete_removes_one_value(store):
    assert state("delete", "users", "u1") == "deleted users/u1\n"
    assert store.get_group("users").keys() == {"u2"}


def test_delete_of_a_missing_key_is_an_error(store):
    with pytest.raises(CommandError, match="no state at users/nobody"):
        state("delete", "users", "nobody")


def test_list_without_a_group_lists_groups_and_their_sizes(store):
    assert state("list").splitlines() == ["emails  (1 key)", "users  (2 keys)"]


def test_list_of_an_empty_state_says_so():
    assert state("list") == "the state is empty\n"


def test_list_of_a_group_prints_each_key_on_one_line(store):
    """Keys sorted, one line each, long values cut at 120 characters."""
    lines = state("list", "users").splitlines()
    assert lines[0] == 'u1  {"name": "Ann", "status": "pending"}'
    assert lines[1].startswith('u2  {"bio": "xxx')
    assert lines[1].endswith("…")
    assert len(lines[1]) == len("u2  ") + 120


def test_list_full_prints_whole_values(store):
    out = state("list", "users", full=True)
    assert "x" * 300 in out


def test_list_of_an_unknown_group_is_an_error(store):
    with pytest.raises(CommandError, match="no state in group 'nope'"):
        state("list", "nope")


def test_an_action_is_required_and_checked():
    with pytest.raises(CommandError, match="ACTION"):
        state()
    with pytest.raises(CommandError, match="invalid choice: 'show'"):
        state("show", "users")
