"""A trace named on the command line: its full id, or the first characters of it (as
``manage.py deliveries`` and the logs print them). Every command that takes a trace
resolves it here, so a prefix works alike everywhere."""

from django.core.management.base import CommandError

from workflow.models import Delivery, Trace

SHORTEST = 6
SHOWN = 3  # traces an ambiguous prefix names


def find_trace(given):
    """The one trace id ``given`` is, or begins; a CommandError saying why not: too
    short, no such trace, or (naming a few of them) more than one."""
    given = given.strip()
    if Delivery.objects.filter(trace_id=given).exists():
        return given
    if len(given) < SHORTEST:
        raise CommandError(f"no trace {given!r}; give its id, or at least {SHORTEST} characters")
    found = set()
    for model in (Trace, Delivery):
        ids = model.objects.filter(trace_id__startswith=given).order_by("trace_id")
        found |= set(ids.values_list("trace_id", flat=True).distinct()[: SHOWN + 1])
    if not found:
        raise CommandError(f"no trace begins with {given!r}")
    if len(found) > 1:
        named = ", ".join(sorted(found)[:SHOWN]) + (", …" if len(found) > SHOWN else "")
        raise CommandError(
            f"{given!r} begins more than one trace ({named}); give more of its characters"
        )
    return found.pop()
