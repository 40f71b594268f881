"""The bridge: the receiver of ``event_emitted`` that turns an emit into django-q2 jobs.

After the transaction that recorded an event and its deliveries commits, ``emit`` sends
``event_emitted``; this receiver, which the workflow app connects itself, sends the
wake-up jobs of the deliveries due now (delayed ones are the sweeper's, when due). It
is the one receiver that acts: others observe. If it fails, the failure is logged and
the sweeper sends those jobs (the deliveries carry no mark until a job is sent).
"""

from django.utils import timezone

from . import queue, signals


def send_wake_ups(sender, event, deliveries, **kwargs):
    now = timezone.now()
    queue.waker().wake([d.pk for d in deliveries if d.due_at <= now])


def connect():
    signals.event_emitted.connect(send_wake_ups, dispatch_uid="workflow.bridge")
