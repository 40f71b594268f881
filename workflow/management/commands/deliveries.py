"""``manage.py deliveries``: what ran and what failed, newest first.

manage.py deliveries                         # the latest 20
manage.py deliveries --dead                  # dead letters (replay them: manage.py replay)
manage.py deliveries --step SendWelcomeEmail --status pending --limit 50
manage.py deliveries --trace 4bf92f35     # a trace: its id, or its first characters

One line per delivery: id, step, status, attempts, topic and event, trace, last error.
"""

from django.core.management.base import BaseCommand, CommandError

from workflow.management.traces import find_trace
from workflow.models import Delivery
from workflow.registry import registry

Status = Delivery.Status
COLUMNS = ("id", "step", "status", "attempts", "topic", "event", "trace", "last error")
ERROR_WIDTH = 80


def error_line(text, width=ERROR_WIDTH):
    """The last error on one line: its last non-empty line (the exception), shortened."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def row(delivery):
    event = delivery.event
    if event is not None:
        topic, event_id = event.topic, str(event.pk)
    else:
        topic, event_id = ("cron" if delivery.cron_slot else "-"), "-"
    replay = f" (replay of {delivery.replay_of_id})" if delivery.replay_of_id else ""
    return (
        str(delivery.pk),
        delivery.step_name,
        delivery.status + replay,
        str(delivery.attempts),
        topic,
        event_id,
        delivery.trace_id[:8],
        error_line(delivery.last_error),
    )


def table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(r[:-1], widths, strict=True))
        + "  "
        + r[-1]
        for r in rows
    ]


class Command(BaseCommand):
    help = "Lists deliveries (newest first): status, attempts and last error of each."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--dead", action="store_true", help="only dead letters")
        parser.add_argument("--status", choices=Status.values, help="only this status")
        parser.add_argument("--step", help="only this step's deliveries")
        parser.add_argument(
            "--trace", help="only this trace's deliveries (its id, or its first characters)"
        )
        parser.add_argument("--limit", type=int, default=20, help="at most N (default 20)")

    def handle(self, *args, dead, status, step, trace, limit, **options):
        if dead and status and status != Status.DEAD:
            raise CommandError("--dead means --status dead; give one of them")
        if limit < 1:
            raise CommandError("--limit is a number of deliveries, 1 or more")
        found = Delivery.objects.select_related("event").order_by("-pk")
        if dead or status:
            found = found.filter(status=Status.DEAD if dead else status)
        if step:
            found = found.filter(step_name=step)
        if trace:
            found = found.filter(trace_id=find_trace(trace))
        total = found.count()
        if not total and step and registry.get(step) is None:
            known = ", ".join(sorted(s.name for s in registry))
            raise CommandError(f"no step named {step!r} has deliveries; the steps are: {known}")
        if not total:
            self.stdout.write("no deliveries")
            return
        shown = list(found[:limit])
        for line in table([COLUMNS, *map(row, shown)]):
            self.stdout.write(line.rstrip())
        if total > len(shown):
            self.stdout.write(f"({len(shown)} of {total}; --limit {total} shows them all)")
