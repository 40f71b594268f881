"""``manage.py cancel``: stop a trace.

manage.py cancel 4bf92f3577b34da6a3ce929d0e0e4736
manage.py cancel 4bf92f35            # the first characters, as `deliveries` prints them

Its pending deliveries become cancelled; a running one goes on until its handler
returns, but its outcome, state writes and emits are dropped and it is not retried.
"""

from django.core.management.base import BaseCommand

from workflow.management.traces import find_trace
from workflow.store import store


class Command(BaseCommand):
    help = (
        "Cancels a trace: its pending and running deliveries stop (running ones are not retried)."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("trace", nargs="+", help="trace ids, or their first characters")

    def handle(self, *args, trace, **options):
        for given in trace:
            trace_id = find_trace(given)
            cancelled = store.cancel(trace_id)
            if not (cancelled.pending or cancelled.running):
                self.stdout.write(f"trace {trace_id}: nothing left to cancel")
                continue
            self.stdout.write(
                f"trace {trace_id}: cancelled {cancelled.pending} pending and "
                f"{cancelled.running} running deliveries"
                + (
                    " (a running handler finishes, its outcome dropped)"
                    if cancelled.running
                    else ""
                )
            )
