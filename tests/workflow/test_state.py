"""StateStore (writes through) and AttemptState (writes held until apply())."""

import threading

import pytest
from django.db import connection, transaction

from workflow import NotJSON
from workflow.models import StateEntry
from workflow.state import AttemptState, StateStore


def increment(value):
    return (value or 0) + 1


def run_threads(count, target):
    """Run ``target(i)`` on ``count`` threads at once; re-raise the first error."""
    errors = []

    def body(i):
        try:
            target(i)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]


# StateStore --------------------------------------------------------------------


@pytest.mark.django_db
def test_store_get_returns_default_for_missing_key():
    """get() of a key never set returns the default (None unless given)."""
    store = StateStore()
    assert store.get("g", "missing") is None
    assert store.get("g", "missing", default=7) == 7


@pytest.mark.django_db
def test_store_set_then_get_and_overwrite():
    """set() stores a value get() returns; a second set() replaces it in one row."""
    store = StateStore()
    store.set("users", "u1", {"name": "Ada"})
    store.set("users", "u1", {"name": "Grace"})
    assert store.get("users", "u1") == {"name": "Grace"}
    assert StateEntry.objects.filter(group="users", key="u1").count() == 1


@pytest.mark.django_db
def test_store_set_returns_a_copy():
    """set() returns a copy: mutating the caller's value afterwards changes nothing stored."""
    store = StateStore()
    value = {"tags": ["a"]}
    returned = store.set("g", "k", value)
    assert returned == {"tags": ["a"]}
    assert returned is not value
    value["tags"].append("b")
    assert returned == {"tags": ["a"]}
    assert store.get("g", "k") == {"tags": ["a"]}


@pytest.mark.django_db
def test_store_set_non_json_raises_type_error_naming_group_and_key():
    """A value that is not JSON raises TypeError naming group/key, and nothing is stored."""
    store = StateStore()
    with pytest.raises(TypeError, match="cfg/when"):
        store.set("cfg", "when", {"at": object()})
    with pytest.raises(TypeError, match="cfg/ratio"):
        store.set("cfg", "ratio", float("nan"))
    assert not StateEntry.objects.exists()


@pytest.mark.django_db
def test_a_value_json_would_change_is_refused_not_stored_changed():
    """A tuple, or a dict with a key that is not a string, is refused (NotJSON naming the
    group/key and where in the value), not stored as a list or with a str key."""
    store = StateStore()
    with pytest.raises(NotJSON, match=r"cfg/pair.*\['p'\] is a tuple"):
        store.set("cfg", "pair", {"p": (1, 2)})
    with pytest.raises(NotJSON, match=r"cfg/names.*its key 1 is an int"):
        store.set("cfg", "names", {1: "a"})
    with pytest.raises(NotJSON, match=r"g/k.*it is a tuple"):
        AttemptState(store).set("g", "k", (1, 2))
    assert not StateEntry.objects.exists()


@pytest.mark.django_db
def test_store_delete_get_group_and_clear():
    """delete() reports whether a row existed; get_group/clear act on one group only."""
    store = StateStore()
    store.set("a", "x", 1)
    store.set("a", "y", 2)
    store.set("b", "x", 3)
    assert store.get_group("a") == {"x": 1, "y": 2}
    assert store.delete("a", "x") is True
    assert store.delete("a", "x") is False
    assert store.get_group("a") == {"y": 2}
    assert store.clear("a") == 1
    assert store.get_group("a") == {}
    assert store.get_group("b") == {"x": 3}


@pytest.mark.django_db
def test_store_update_uses_default_then_latest_value():
    """update() applies fn to the default for a missing key, then to the stored value."""
    store = StateStore()
    assert store.update("g", "list", lambda v: v + [1], default=[]) == [1]
    assert store.update("g", "list", lambda v: v + [2], default=[]) == [1, 2]
    assert store.get("g", "list") == [1, 2]


# AttemptState ------------------------------------------------------------------


@pytest.mark.django_db
def test_attempt_reads_see_own_writes_but_db_is_untouched():
    """An attempt's get() sees its own set/delete; the database sees nothing before apply()."""
    store = StateStore()
    store.set("g", "old", "stored")
    attempt = AttemptState()
    attempt.set("g", "new", {"v": 1})
    assert attempt.delete("g", "old") is True
    assert attempt.get("g", "new") == {"v": 1}
    assert attempt.get("g", "old", default="gone") == "gone"
    assert store.get("g", "new") is None
    assert store.get("g", "old") == "stored"


@pytest.mark.django_db
def test_attempt_get_group_merges_held_sets_deletes_and_clear():
    """get_group() is the stored group with the attempt's held sets, deletes and clear applied."""
    store = StateStore()
    store.set("g", "a", 1)
    store.set("g", "b", 2)
    attempt = AttemptState()
    attempt.set("g", "c", 3)
    attempt.delete("g", "a")
    assert attempt.get_group("g") == {"b": 2, "c": 3}
    assert attempt.clear("g") == 2
    assert attempt.get_group("g") == {}
    assert attempt.get("g", "b") is None
    attempt.set("g", "d", 4)
    assert attempt.get_group("g") == {"d": 4}
    assert store.get_group("g") == {"a": 1, "b": 2}


@pytest.mark.django_db
def test_attempt_non_json_value_raises_type_error():
    """A held set() of a non-JSON value raises TypeError naming group/key at once."""
    with pytest.raises(TypeError, match="g/k"):
        AttemptState().set("g", "k", {1, 2})


@pytest.mark.django_db
def test_attempt_apply_writes_held_operations_in_order():
    """apply() writes the held operations in the order they were made."""
    store = StateStore()
    store.set("g", "stale", 0)
    store.set("other", "keep", 1)
    attempt = AttemptState()
    attempt.set("g", "x", 1)
    attempt.delete("g", "x")  # set then delete: gone
    attempt.delete("g", "y")
    attempt.set("g", "y", 2)  # delete then set: present
    attempt.clear("g")  # clears stale and y ...
    attempt.set("g", "z", 3)  # ... but not what follows
    assert store.get_group("g") == {"stale": 0}
    attempt.apply()
    assert store.get_group("g") == {"z": 3}
    assert store.get_group("other") == {"keep": 1}


@pytest.mark.django_db
def test_attempt_update_recomputes_on_latest_value_at_apply():
    """update() shows fn(current) to the handler and re-applies fn to the latest value at apply."""
    store = StateStore()
    store.set("counters", "n", 1)
    attempt = AttemptState()
    assert attempt.update("counters", "n", increment) == 2
    assert attempt.get("counters", "n") == 2
    store.set("counters", "n", 10)  # another attempt committed meanwhile
    attempt.apply()
    assert store.get("counters", "n") == 11


# Concurrency -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_store_update_loses_no_increment_across_threads():
    """50 threads each calling StateStore.update(+1) on one key leave exactly 50."""
    start = threading.Barrier(50, timeout=30)

    def bump(_):
        start.wait()
        StateStore().update("counters", "hits", increment)

    run_threads(50, bump)
    assert StateStore().get("counters", "hits") == 50


@pytest.mark.django_db(transaction=True)
def test_attempt_update_applies_lose_no_increment_across_threads():
    """20 attempts that all read 0, then apply update(+1) in a transaction, leave exactly 20."""
    all_read = threading.Barrier(20, timeout=30)
    seen = []

    def attempt_run(_):
        attempt = AttemptState()
        seen.append(attempt.update("counters", "hits", increment))
        all_read.wait()  # every attempt has computed on the old value before any applies
        with transaction.atomic():
            attempt.apply()

    run_threads(20, attempt_run)
    assert seen == [1] * 20
    assert StateStore().get("counters", "hits") == 20
