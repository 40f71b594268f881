"""JSON checks for what steps store and emit: plain JSON, nothing coerced silently.

``json_copy`` copies a value that JSON holds exactly as given: dicts with string keys,
lists, strings, finite numbers, booleans and None (a ``str``, ``int`` or ``float``
subclass, such as an enum, is copied as its plain value, as ``json.dumps`` writes it).
Anything else is a ``NotJSON`` error naming the value, where it is (``['tags'][0]``)
and what to write instead, never a quiet change: ``json.dumps`` alone would turn a
tuple into a list and ``{1: "a"}`` into ``{"1": "a"}``, so that the value read back
would not be the value written.
"""

import math
from typing import Any

from .errors import NotJSON

__all__ = ["NotJSON", "json_copy"]

# What to write instead, for the kinds JSON has no exact form for.
FIXES: dict[type, str] = {
    tuple: "use a list",
    set: "use a sorted list",
    frozenset: "use a sorted list",
    bytes: "decode it to a str (or base64 it)",
    bytearray: "decode it to a str (or base64 it)",
}
OTHER_FIX = "turn it into a str, number, bool, None, list or dict first"
PLAIN = frozenset({str, int, bool, type(None)})


class _Fault(Exception):
    """Raised deep in a value, with the keys to it gathered on the way out."""

    def __init__(self, value: Any, fix: str) -> None:
        self.value, self.fix = value, fix
        self.keys: list[str | int] = []


def json_copy(value: Any, what: str) -> Any:
    """A deep copy of ``value`` if JSON holds it exactly as given; else ``NotJSON``
    (a ``TypeError``) saying ``what`` it is, where the fault is, and the fix."""
    try:
        return _copy(value, set())
    except _Fault as fault:
        raise NotJSON(describe(what, fault)) from None


def _copy(value: Any, open_containers: set[int]) -> Any:
    if type(value) in PLAIN:
        return value
    if isinstance(value, dict | list):
        if id(value) in open_containers:
            raise _Fault(value, "it contains itself, and JSON is a tree")
        open_containers.add(id(value))
        try:
            return _copy_container(value, open_containers)
        finally:
            open_containers.discard(id(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Fault(value, "JSON has no NaN or Infinity; use null or a string")
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    raise _Fault(value, FIXES.get(type(value), OTHER_FIX))


def _copy_container(value: dict | list, open_containers: set[int]) -> Any:
    if isinstance(value, list):
        copied_list = []
        for i, item in enumerate(value):
            try:
                copied_list.append(_copy(item, open_containers))
            except _Fault as fault:
                fault.keys.append(i)
                raise
        return copied_list
    copied = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise _Fault(
                value,
                f"its key {key!r} is {kind(key)}, and JSON keys are strings: write {str(key)!r}",
            )
        try:
            copied[str.__str__(key)] = _copy(item, open_containers)
        except _Fault as fault:
            fault.keys.append(key)
            raise
    return copied


def describe(what: str, fault: _Fault) -> str:
    """``what must be JSON ...: ['tags'][0] is a tuple, (1, 2); use a list``."""
    shown = repr(fault.value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    where = "".join(f"[{key!r}]" for key in reversed(fault.keys)) or "it"
    return (
        f"{what} must be JSON (dict with str keys, list, str, finite number, bool, None): "
        f"{where} is {kind(fault.value)}, {shown}; {fault.fix}"
    )


def kind(value: Any) -> str:
    """``a tuple``, ``an int``: the type of ``value``, for a message."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
