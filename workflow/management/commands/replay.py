"""``manage.py replay``: run dead (or any finished) deliveries again.

manage.py replay 42 43            # deliveries 42 and 43
manage.py replay --event 17       # the subscribers of event 17 that failed
manage.py replay --event 17 --all # every subscriber of event 17, succeeded ones too
manage.py replay --dead [--step SendWelcomeEmail]   # every dead letter

A delivery already replayed (its replay waiting, running or succeeded) is not replayed
again; ``--dead`` leaves out dead letters whose step has since succeeded for that event;
``--event`` re-runs only the subscribers whose newest delivery of the event went dead,
unless given ``--all``, and names each subscriber it skipped and why.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workflow.models import Delivery, Event
from workflow.replay import (
    NotReplayable,
    dead_letters,
    replay,
    replay_each,
    replay_event,
    skip_reason,
)

Status = Delivery.Status


class Command(BaseCommand):
    help = "Replays deliveries (by id, by event, or every dead letter) as new deliveries."

    def add_arguments(self, parser):
        parser.add_argument(
            "ids", nargs="*", type=int, help="delivery ids (event ids with --event)"
        )
        parser.add_argument(
            "--event",
            action="store_true",
            help="the ids are event ids: replay their subscribers that failed",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            dest="succeeded_too",
            help="with --event: replay the subscribers that succeeded too",
        )
        parser.add_argument("--dead", action="store_true", help="replay every dead delivery")
        parser.add_argument("--step", help="with --dead: only this step's dead deliveries")

    def handle(self, *args, ids, event, succeeded_too, dead, step, **options):
        if bool(ids) == dead:
            raise CommandError("give delivery ids (or event ids with --event), or --dead")
        if step and not dead:
            raise CommandError("--step goes with --dead")
        if succeeded_too and not event:
            raise CommandError("--all goes with --event (delivery ids are replayed as given)")
        if dead:
            replays = self.replay_each(dead_letters(step))
        elif event:
            replays = self.replay_events(self.found(Event, ids), succeeded_too)
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

    def replay_events(self, events, succeeded_too):
        """The failed subscribers of each event (all finished ones with ``--all``); each
        subscriber left alone is named, with why."""
        replays, succeeded_skipped = [], False
        for found in events:
            made, refused, skipped = replay_event(found, succeeded_too)
            replays += made
            for reason in refused:
                self.stderr.write(f"not replayed: {reason}")
            for delivery in skipped:
                self.stdout.write(f"skipped: {skip_reason(delivery)}")
                succeeded_skipped |= delivery.status == Status.SUCCEEDED
        if succeeded_skipped:
            self.stdout.write(
                "(only subscribers that failed are replayed; --all replays succeeded ones too)"
            )
        return replays

    def replay_all(self, deliveries):
        """All of them, or none if one cannot be replayed."""
        try:
            with transaction.atomic():
                return [replay(delivery) for delivery in deliveries]
        except NotReplayable as exc:
            raise CommandError(str(exc)) from None
