"""JSON checks for what steps store and emit: plain JSON, nothing coerced silently."""

import json


def json_copy(value, what):
    """A deep copy of ``value`` through JSON; a clear TypeError if it is not JSON."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} must be JSON (dict, list, str, number, bool, None): {exc}"
        ) from None
