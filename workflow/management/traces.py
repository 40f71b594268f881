"""A trace named on the command line: its full id, or the first characters of it (as
``manage.py deliveries`` and the logs print them)."""

from django.core.management.base import CommandError

from workflow.models import Delivery, Trace

SHORTEST = 6


def find_trace(given):
    """The one trace id ``given`` is, or begins; a CommandError saying why not."""
    given = given.strip()
    if Delivery.objects.filter(trace_id=given).exists():
        return given
    if len(given) < SHORTEST:
        raise CommandError(f"no trace {given!r}; give its id, or at least {SHORTEST} characters")
    found = set()
    for model in (Trace, Delivery):
        ids = model.objects.filter(trace_id__startswith=given).order_by().values_list("trace_id")
        found |= {trace_id for (trace_id,) in ids.distinct()[:2]}
    if not found:
        raise CommandError(f"no trace begins with {given!r}")
    if len(found) > 1:
        raise CommandError(f"{given!r} begins more than one trace ({', '.join(sorted(found))})")
    return found.pop()
