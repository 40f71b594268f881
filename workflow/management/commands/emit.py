"""``manage.py emit``: emit an event from the shell, as a step's ``ctx.emit`` would.

manage.py emit user.registered '{"userId": "u1", "name": "Ann", "email": "ann@example.com"}'
manage.py emit order.placed '{"orderId": 7}' --trace 4bf92f3577b34da6a3ce929d0e0e4736
manage.py emit report.due --delay 60 --idempotency-key report-2024-01
manage.py emit email.sent '{"userId": "u1"}' --no-check

The event is recorded with one delivery per subscriber; the workers (runserver's, or
``manage.py qcluster``) run them. Prints the event id, its trace and each delivery.
Data a subscriber's ``input`` refuses is refused at once, as a step's ``ctx.emit``
would be; ``--no-check`` emits it anyway (to replay test data, or to see a dead letter).
"""

import re

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from workflow import bus
from workflow.errors import InvalidEmit
from workflow.management.jsonarg import parse_json
from workflow.models import Delivery
from workflow.registry import registry

TRACE_ID = re.compile(r"^[0-9A-Za-z_\-]{1,32}$")


def refuse_broken_steps():
    """A step module that cannot load would miss its deliveries: refuse until it is fixed."""
    if registry.problems:
        listed = "; ".join(f"{p.msg} ({p.id})" for p in registry.problems)
        raise CommandError(f"fix the steps first (manage.py check): {listed}")


class Command(BaseCommand):
    help = "Emits an event on a topic, delivered to every subscribing step."
    # Only the checks that matter here (steps that did not load), without the warnings.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("topic", help="the topic, e.g. user.registered")
        parser.add_argument("data", nargs="?", default="{}", help="the data, as JSON")
        parser.add_argument("--trace", help="the trace id to emit in (default: a new trace)")
        parser.add_argument("--delay", type=float, help="deliver after this many seconds")
        parser.add_argument(
            "--idempotency-key", help="emit once per key: a repeat delivers nothing"
        )
        parser.add_argument(
            "--no-check",
            action="store_false",
            dest="check",
            help="emit even data a subscriber's input refuses (its delivery fails)",
        )

    def handle(self, *args, topic, data, trace, delay, idempotency_key, check, **options):
        data = parse_json(data, "the data", """'{"userId": "u1"}'""")
        if trace is not None and not TRACE_ID.match(trace):
            raise CommandError(
                f"--trace {trace!r} is not a trace id (1 to 32 letters, digits, '-' or '_')"
            )
        if delay is not None and delay < 0:
            raise CommandError("--delay is a number of seconds >= 0")
        refuse_broken_steps()
        started = timezone.now()
        try:
            event = bus.emit(
                topic,
                data,
                trace_id=trace,
                delay=delay,
                idempotency_key=idempotency_key,
                check=check,
            )
        except InvalidEmit as exc:
            raise CommandError(f"{exc} (--no-check emits it anyway)") from None
        except (TypeError, ValueError) as exc:  # not storable as JSON, a bad key
            raise CommandError(str(exc)) from None
        if event.created_at < started:
            self.stdout.write(
                f"already emitted with idempotency key {idempotency_key!r}: event {event.pk} "
                f"on {event.topic}, trace {event.trace_id}; nothing delivered again"
            )
            return
        self.stdout.write(f"event {event.pk} on {topic}, trace {event.trace_id}")
        deliveries = Delivery.objects.filter(event=event).order_by("pk")
        for delivery in deliveries:
            due = "" if delivery.due_at <= event.created_at else f", due {delivery.due_at:%c}"
            self.stdout.write(f"  delivery {delivery.pk} to {delivery.step_name}{due}")
        if not deliveries:
            self.stdout.write(f"  no step subscribes to {topic!r}: nothing will run")
