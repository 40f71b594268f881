"""Shared state over the ORM: (group, key) -> JSON value.

``StateStore`` reads and writes the database directly (API steps use it inside their
request transaction). ``AttemptState`` is what a background attempt sees: its writes
are held in memory, visible to its own reads, and applied by ``apply()`` in the
transaction that records the attempt's success, so a failed attempt writes nothing.

``update(group, key, fn)`` is an atomic read-modify-write: ``fn`` is applied to the
latest value under a row lock, so racing handlers lose no update. ``fn`` must be a
pure function of the value: an attempt calls it once to show the result to the
handler and again, on the then-latest value, when it commits.

``State`` is what a handler may call on ``ctx.state``, whichever of the two it is.
"""

from collections.abc import Callable
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.utils import timezone

from .connections import give_back
from .jsonutil import json_copy
from .models import StateEntry

DELETED = object()


class State(Protocol):
    """``ctx.state``: JSON values by ``(group, key)``, shared by every step and process."""

    def get(self, group: str, key: str, default: Any = None) -> Any:
        """The value at ``(group, key)``, or ``default`` when there is none."""

    def set(self, group: str, key: str, value: Any) -> Any:
        """Store ``value`` (JSON, else a ``TypeError``); returns it as stored."""

    def delete(self, group: str, key: str) -> bool:
        """Remove ``(group, key)``; True if it was there."""

    def get_group(self, group: str) -> dict[str, Any]:
        """Every value of ``group``: ``{key: value}``."""

    def clear(self, group: str) -> int:
        """Remove every value of ``group``; how many there were."""

    def update(self, group: str, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Atomically replace the value with ``fn(value)`` (``fn(default)`` when there is
        none); returns the new value. ``fn`` must be pure: it may be called twice."""


class StateStore:
    """State read and written in the database at once (in the caller's transaction)."""

    def get(self, group: str, key: str, default: Any = None) -> Any:
        entry = StateEntry.objects.filter(group=group, key=key).only("value").first()
        give_back()  # a handler that reads, then waits, holds no pooled connection
        return default if entry is None else entry.value

    def set(self, group: str, key: str, value: Any) -> Any:
        value = json_copy(value, f"state value for {group}/{key}")
        now = timezone.now()
        StateEntry.objects.bulk_create(
            [StateEntry(group=group, key=key, value=value, created_at=now, updated_at=now)],
            update_conflicts=True,
            unique_fields=["group", "key"],
            update_fields=["value", "updated_at"],
        )
        return value

    def delete(self, group: str, key: str) -> bool:
        return StateEntry.objects.filter(group=group, key=key).delete()[0] > 0

    def get_group(self, group: str) -> dict[str, Any]:
        values = dict(StateEntry.objects.filter(group=group).values_list("key", "value"))
        give_back()
        return values

    def clear(self, group: str) -> int:
        return StateEntry.objects.filter(group=group).delete()[0]

    def update(self, group: str, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        with transaction.atomic():
            entry, created = self._locked(group, key)
            current = default if created else entry.value
            entry.value = json_copy(fn(current), f"state value for {group}/{key}")
            entry.updated_at = timezone.now()
            entry.save(update_fields=["value", "updated_at"])
        return entry.value

    @staticmethod
    def _locked(group: str, key: str) -> tuple[StateEntry, bool]:
        """The (group, key) row, locked for update; created if missing."""
        rows = StateEntry.objects.select_for_update().filter(group=group, key=key)
        entry = rows.first()
        if entry is not None:
            return entry, False
        try:
            with transaction.atomic():
                return StateEntry.objects.create(group=group, key=key, value=None), True
        except IntegrityError:  # another transaction created it first
            return rows.get(), False


class AttemptState:
    """A background attempt's view of the state: writes held until ``apply()``."""

    def __init__(self, store: State | None = None) -> None:
        self.store: State = store or StateStore()
        self._ops: list[tuple[Any, ...]] = []
        self._values: dict[tuple[str, str], Any] = {}
        self._cleared: set[str] = set()

    def get(self, group: str, key: str, default: Any = None) -> Any:
        if (group, key) in self._values:
            value = self._values[(group, key)]
            return default if value is DELETED else json_copy(value, "state value")
        if group in self._cleared:
            return default
        return self.store.get(group, key, default)

    def set(self, group: str, key: str, value: Any) -> Any:
        value = json_copy(value, f"state value for {group}/{key}")
        self._values[(group, key)] = value
        self._ops.append(("set", group, key, value))
        return json_copy(value, "state value")

    def delete(self, group: str, key: str) -> bool:
        existed = self.get(group, key, DELETED) is not DELETED
        self._values[(group, key)] = DELETED
        self._ops.append(("delete", group, key))
        return existed

    def get_group(self, group: str) -> dict[str, Any]:
        values = {} if group in self._cleared else self.store.get_group(group)
        for (g, key), value in self._values.items():
            if g == group:
                if value is DELETED:
                    values.pop(key, None)
                else:
                    values[key] = json_copy(value, "state value")
        return values

    def clear(self, group: str) -> int:
        count = len(self.get_group(group))
        self._cleared.add(group)
        self._values = {k: v for k, v in self._values.items() if k[0] != group}
        self._ops.append(("clear", group))
        return count

    def update(self, group: str, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        value = self.set(group, key, fn(self.get(group, key, default)))
        self._ops[-1] = ("update", group, key, fn, default)
        return value

    def holds_writes(self) -> bool:
        return bool(self._ops)

    def apply(self) -> None:
        """Write the held operations, in order; call inside a transaction. They are kept:
        if that transaction rolls back, the same writes apply in the next one."""
        for op, *args in self._ops:
            getattr(self.store, op)(*args)
