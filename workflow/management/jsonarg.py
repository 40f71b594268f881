"""JSON given on the command line (``manage.py emit`` and ``manage.py state set``)."""

import json

from django.core.management.base import CommandError


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_json(text, what, example):
    """``text`` parsed as JSON, or a CommandError naming ``what`` and showing ``example``."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, or NaN / Infinity
        raise CommandError(
            f"{what} is not valid JSON ({exc}): {text!r}; write e.g. {example}"
        ) from None
