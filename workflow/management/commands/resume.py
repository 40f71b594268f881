"""``manage.py resume``: resume paused steps' queues (``manage.py pause``).

manage.py resume SendWelcomeEmail       # its waiting deliveries run from the next tick
"""

from django.core.management.base import BaseCommand, CommandError

from workflow import pauses


class Command(BaseCommand):
    help = "Resumes the queues of paused steps: their waiting deliveries run."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("steps", nargs="+", help="step names")

    def handle(self, *args, steps, **options):
        for name in steps:
            try:
                resumed = pauses.resume(name)
            except pauses.UnknownStep as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{name}: {'resumed' if resumed else 'was not paused'}")
