"""``manage.py pause``: pause steps' queues; ``--list`` shows those paused.

manage.py pause SendWelcomeEmail        # its deliveries wait until `manage.py resume`
manage.py pause --list
"""

from django.core.management.base import BaseCommand, CommandError

from workflow import pauses


class Command(BaseCommand):
    help = "Pauses the queues of event or cron steps: their deliveries wait until resumed."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("steps", nargs="*", help="step names")
        parser.add_argument(
            "--list", action="store_true", dest="show", help="list the paused queues"
        )

    def handle(self, *args, steps, show, **options):
        if show or not steps:
            found = pauses.paused()
            for name, row in found.items():
                by = f" by {row.paused_by}" if row.paused_by else ""
                self.stdout.write(f"{name}: paused since {row.paused_at:%Y-%m-%d %H:%M:%S}{by}")
            if not found:
                self.stdout.write("no queue is paused")
            return
        for name in steps:
            try:
                paused = pauses.pause(name, by="manage.py pause")
            except pauses.UnknownStep as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{name}: {'paused' if paused else 'already paused'}")
