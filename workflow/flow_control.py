"""Flow control for an event step: how many of its deliveries run at once, how often
they start, which of a burst runs, and which goes first.

    config = EventStep(
        name="SyncCrm",
        subscribes=["user.updated"],
        concurrency={"limit": 1, "key": "userId"},   # one at a time per user
        rate_limit={"limit": 5, "period": 1},        # at most 5 starts a second
        debounce={"period": 2, "key": "userId"},     # the last of a burst, 2 s after it
        priority=lambda data: 10 if data.get("plan") == "pro" else 0,
    )

* ``concurrency``: at most ``limit`` attempts of the step running at once, per value
  of ``key`` in the event data if given (``concurrency=3`` is step-wide).
* ``rate_limit``: at most ``limit`` attempts start in any ``period`` seconds (per
  ``key`` if given); the rest wait for the window, nothing is dropped.
* ``debounce``: a delivery waits ``period`` seconds; if another event for the same
  key arrives meanwhile, the earlier one is cancelled as superseded and the new one
  waits its own ``period``. The last event of a burst runs, once. With ``max_wait``
  (Inngest's debounce ``timeout``), a burst that never pauses still runs its latest
  event at most ``max_wait`` seconds after its first.
* ``priority``: an int, or a function of the event data returning one (-1000 to
  1000, default 0). Of a step's deliveries waiting for its concurrency or rate limit,
  the higher priority starts first; the sweeper wakes a backlog in that order too.

All of it is kept on the delivery table, by the claim (``store.claims``): a delivery
the limits hold back stays pending, and is woken when a place frees (the end of an
attempt, the rate window's next opening). One key field serves all three keyed limits.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import StepConfigError
from .keys import column_key

PRIORITY_RANGE = (-1000, 1000)
KEY_LENGTH = 200
CONCURRENCY_EXAMPLE = "concurrency={'limit': 1, 'key': 'userId'} (or concurrency=3, step-wide)"
RATE_EXAMPLE = "rate_limit={'limit': 5, 'period': 1} (5 starts a second; add 'key' for per-key)"
DEBOUNCE_EXAMPLE = (
    "debounce={'period': 2, 'key': 'userId', 'max_wait': 30} "
    "(the last event of a burst runs; max_wait is optional)"
)
PRIORITY_EXAMPLE = "priority=10, or priority=lambda data: 10 if data.get('vip') else 0"


@dataclass(frozen=True)
class FlowControl:
    """A step's checked flow control (``EventStep.flow_control``)."""

    concurrency: int | None = None
    rate_limit: int | None = None
    rate_period: float | None = None
    debounce: float | None = None
    # At most this many seconds from a burst's first event to its run (None: no limit).
    debounce_max_wait: float | None = None
    key: str | None = None
    # Keyed limits: which of concurrency, rate_limit, debounce use ``key``.
    keyed: frozenset[str] = frozenset()
    priority: int | Callable[[Any], int] = 0

    @property
    def guarded(self) -> bool:
        """Whether a claim must look at other deliveries of the step before taking one."""
        return bool(self.concurrency or self.rate_limit or self.debounce)

    def key_of(self, data: Any) -> str | None:
        """The key's value in an event's ``data``, as stored (JSON, so 1 and "1" differ);
        "" for data without it. None when no limit is keyed."""
        if not self.key:
            return None
        value = data.get(self.key) if isinstance(data, dict) else None
        if value is None:
            return ""
        return column_key(json.dumps(value, sort_keys=True, default=str), KEY_LENGTH)

    def priority_of(self, data: Any) -> int:
        """The priority of a delivery of ``data``; 0 if the function fails (the event
        matters more than its order: it is logged, not refused)."""
        if not callable(self.priority):
            return self.priority
        try:
            value = self.priority(data)
        except Exception:
            from .logs import python_logger

            python_logger.warning("The priority function failed; priority 0", exc_info=True)
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            from .logs import python_logger

            python_logger.warning("The priority function returned %r, not an int; 0", value)
            return 0
        return max(PRIORITY_RANGE[0], min(PRIORITY_RANGE[1], value))

    def describe(self) -> list[str]:
        """One line per limit, for ``manage.py flows`` and the workbench."""
        per = f" per {self.key}"
        lines = []
        if self.concurrency:
            keyed = per if "concurrency" in self.keyed else ""
            lines.append(f"concurrency {self.concurrency}{keyed}")
        if self.rate_limit:
            keyed = per if "rate_limit" in self.keyed else ""
            lines.append(f"rate {self.rate_limit}/{self.rate_period:g}s{keyed}")
        if self.debounce:
            keyed = per if "debounce" in self.keyed else ""
            most = f", at most {self.debounce_max_wait:g}s" if self.debounce_max_wait else ""
            lines.append(f"debounce {self.debounce:g}s{keyed}{most}")
        if callable(self.priority):
            lines.append(f"priority by {getattr(self.priority, '__name__', 'function')}")
        elif self.priority:
            lines.append(f"priority {self.priority}")
        return lines


def configure(
    concurrency: Any = None, rate_limit: Any = None, debounce: Any = None, priority: Any = 0
) -> FlowControl | None:
    """The ``FlowControl`` of a step's arguments, each checked (a ``StepConfigError``
    says what to write instead); None when the step has none."""
    keys: dict[str, str] = {}
    limit = _concurrency(concurrency, keys)
    rate, period = _rate_limit(rate_limit, keys)
    wait, max_wait = _debounce(debounce, keys)
    _priority(priority)
    if len(set(keys.values())) > 1:
        named = ", ".join(f"{name} by {key!r}" for name, key in sorted(keys.items()))
        raise StepConfigError(
            f"flow control uses one key field for all its limits, not several ({named}); "
            "key them by the same field, or split the step in two"
        )
    if limit is None and rate is None and wait is None and not priority:
        return None
    return FlowControl(
        concurrency=limit,
        rate_limit=rate,
        rate_period=period,
        debounce=wait,
        debounce_max_wait=max_wait,
        key=next(iter(keys.values()), None),
        keyed=frozenset(keys),
        priority=priority,
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _options(
    value: Any, name: str, allowed: set[str], example: str, keys: dict[str, str]
) -> dict[str, Any]:
    """``value``, a dict of ``allowed`` keys; its ``key`` (a data field) noted in ``keys``."""
    if not isinstance(value, dict):
        raise StepConfigError(f"{name} is a dict, e.g. {example}")
    unknown = set(value) - allowed
    if unknown:
        raise StepConfigError(
            f"{name} has unknown keys {sorted(unknown)}; use {sorted(allowed)}, e.g. {example}"
        )
    key = value.get("key")
    if key is not None and (not isinstance(key, str) or not key):
        raise StepConfigError(f"{name} 'key' names a field of the event data, e.g. {example}")
    if key:
        keys[name] = key
    return value


def _field(value: dict[str, Any], name: str, field: str, valid, meaning: str, example: str):
    """``value[field]``, or a ``StepConfigError`` saying what it must be."""
    if not valid(value.get(field)):
        raise StepConfigError(
            f"{name} {field!r} is {meaning}, not {value.get(field)!r}; e.g. {example}"
        )
    return value[field]


def _concurrency(value: Any, keys: dict[str, str]) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        value = {"limit": value}
    example = CONCURRENCY_EXAMPLE
    value = _options(value, "concurrency", {"limit", "key"}, example, keys)
    meaning = "a whole number of attempts at once, 1 or more"
    return _field(value, "concurrency", "limit", _count, meaning, example)


def _rate_limit(value: Any, keys: dict[str, str]) -> tuple[int | None, float | None]:
    if value is None:
        return None, None
    value = _options(value, "rate_limit", {"limit", "period", "key"}, RATE_EXAMPLE, keys)
    meaning = "a whole number of starts per period, 1 or more"
    limit = _field(value, "rate_limit", "limit", _count, meaning, RATE_EXAMPLE)
    meaning = "a number of seconds above 0"
    return limit, float(_field(value, "rate_limit", "period", _seconds, meaning, RATE_EXAMPLE))


def _debounce(value: Any, keys: dict[str, str]) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    allowed = {"period", "key", "max_wait"}
    value = _options(value, "debounce", allowed, DEBOUNCE_EXAMPLE, keys)
    meaning = "a number of seconds above 0 (how long to wait for a newer event)"
    period = float(_field(value, "debounce", "period", _seconds, meaning, DEBOUNCE_EXAMPLE))
    if value.get("max_wait") is None:
        return period, None
    meaning = "a number of seconds from a burst's first event to its run, at least the period"
    valid = lambda given: _seconds(given) and given >= period  # noqa: E731
    return period, float(_field(value, "debounce", "max_wait", valid, meaning, DEBOUNCE_EXAMPLE))


def _priority(value: Any) -> None:
    if callable(value):
        return
    low, high = PRIORITY_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise StepConfigError(
            f"priority is a whole number from {low} to {high} (higher starts first), or a "
            f"function of the event data returning one, not {value!r}; e.g. {PRIORITY_EXAMPLE}"
        )
