"""``manage.py replay``: run dead (or any finished) deliveries again.

manage.py replay 42 43            # deliveries 42 and 43
manage.py replay --event 17       # every subscriber of event 17
manage.py replay --dead [--step SendWelcomeEmail]   # every dead letter

A delivery already replayed (its replay waiting, running or succeeded) is not replayed
again; ``--dead`` leaves out dead letters whose step has since succeeded for that event.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workflow.models import Delivery, Event
from workflow.replay import NotReplayable, dead_letters, replay, replay_each, replay_event


class Command(BaseCommand):
    help = "Replays deliveries (by id, by event, or every dead letter) as new deliveries."

    def add_arguments(self, parser):
        parser.add_argument(
            "ids", nargs="*", type=int, help="delivery ids (event ids with --event)"
        )
        parser.add_argument("--event", action="store_true", help="the ids are event ids")
        parser.add_argument("--dead", action="store_true", help="replay every dead delivery")
        parser.add_argument("--step", help="with --dead: only this step's dead deliveries")

    def handle(self, *args, ids, event, dead, step, **options):
        if bool(ids) == dead:
            raise CommandError("give delivery ids (or event ids with --event), or --dead")
        if step and not dead:
            raise CommandError("--step goes with --dead")
        if dead:
            replays = self.replay_each(dead_letters(step))
        elif event:
            replays = []
            for found in self.found(Event, ids):
                made, refused = replay_event(found)
                replays += made
                for reason in refused:
                    self.stderr.write(f"not replayed: {reason}")
        else:
            replays = self.replay_all(self.found(Delivery, ids))
        for again in replays:
            self.stdout.write(
                f"delivery {again.replay_of_id} ({again.step_name}) replayed as delivery "
                f"{again.pk}, trace {again.trace_id}"
            )
        if not replays:
            self.stdout.write("nothing to replay")

    def found(self, model, ids):
        found = model.objects.in_bulk(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            name = model._meta.verbose_name
            raise CommandError(f"no {name} with id {', '.join(map(str, missing))}")
        return [found[i] for i in ids]

    def replay_each(self, deliveries):
        """Each that can be replayed; those that cannot are named, and skipped."""
        replays, refusals = replay_each(deliveries)
        for reason in refusals:
            self.stderr.write(f"not replayed: {reason}")
        return replays

    def replay_all(self, deliveries):
        """All of them, or none if one cannot be replayed."""
        try:
            with transaction.atomic():
                return [replay(delivery) for delivery in deliveries]
        except NotReplayable as exc:
            raise CommandError(str(exc)) from None
