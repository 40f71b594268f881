"""The bridge: the signal receiver that turns an emit into django-q2 jobs.

Its jobs wake the deliveries of an emit that are due now (delayed ones are the
sweeper's, when due). When it sends them depends on where the broker keeps its jobs:

- The ORM broker (the embedded default) keeps them in the deliveries' database. The
  bridge receives ``event_recorded``, sent inside the transaction that records the
  event and its deliveries, and writes the jobs in that same transaction: they commit
  with the event, or not at all. No second write follows the commit, and on SQLite
  that second write waited for the write lock behind a busy web server's other
  requests (tens of milliseconds on every emit).
- Another broker (Redis) cannot share the transaction, and a job seen before the
  commit would find no delivery: the bridge receives ``event_emitted``, sent after the
  commit, and sends the jobs then.

It is the one receiver that acts: others observe. If it fails, the failure is logged
and the sweeper sends those jobs (the deliveries carry no mark until a job is sent).
"""

from django.utils import timezone

from . import queue, signals


def write_wake_ups(sender, event, deliveries, **kwargs):
    """``event_recorded``: the jobs, in the emit's transaction (the ORM broker)."""
    if queue.jobs_share_the_transaction() and (due := _due(deliveries)):
        queue.wake(due)


def send_wake_ups(sender, event, deliveries, **kwargs):
    """``event_emitted``: the jobs, once the emit committed (any other broker)."""
    if not queue.jobs_share_the_transaction():
        queue.waker().wake(_due(deliveries))


def _due(deliveries):
    now = timezone.now()
    return [d.pk for d in deliveries if d.due_at <= now]


def connect():
    signals.event_recorded.connect(write_wake_ups, dispatch_uid="workflow.bridge.recorded")
    signals.event_emitted.connect(send_wake_ups, dispatch_uid="workflow.bridge")
