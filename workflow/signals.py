"""Signals for observers (the workbench, metrics). They observe; they never steer.

Each is sent with ``send_robust``: a broken receiver is logged and never breaks a flow.
"""

import logging

from django.dispatch import Signal

logger = logging.getLogger("workflow")

#: After the transaction that recorded it commits: ``event`` and its ``deliveries``.
event_emitted = Signal()
#: In the transaction that records it, before it commits: ``event`` and its
#: ``deliveries``. The bridge writes their wake-up jobs there (the ORM broker).
event_recorded = Signal()
#: A step run started or finished: ``run`` (a ``Run``).
run_started = Signal()
run_finished = Signal()
#: A step log line was stored: ``entry`` (a ``LogEntry``).
log_written = Signal()


def send(signal, sender, **kwargs):
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error("Signal receiver %r failed: %r", receiver, result, exc_info=result)
