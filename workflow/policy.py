"""A step's policies: Motia's ``infrastructure={"queue": {...}, "handler": {...}}`` over
the project's defaults (``WORKFLOW["QUEUE"]``, ``LEASE``, ``HANDLER_TIMEOUT``)."""

import random
from dataclasses import dataclass

from django.utils.module_loading import import_string

from .conf import workflow_settings
from .errors import NonRetryable
from .keys import column_key

GROUP_LENGTH = 200  # Delivery.message_group


@dataclass(frozen=True)
class QueuePolicy:
    type: str
    max_retries: int
    # Seconds a running delivery stays hidden from other workers without news from its
    # worker, which renews it every third of that while the handler runs: the time to
    # recover from a dead or frozen worker, not a limit on the handler.
    visibility_timeout: float
    delay_seconds: float
    backoff: dict
    message_group_id: str | None = None
    non_retryable: tuple = ()

    @classmethod
    def for_step(cls, step):
        merged = {**workflow_settings.QUEUE, **(step.config.queue if step else {})}
        lease = merged.get("visibility_timeout")
        return cls(
            type=merged["type"],
            max_retries=int(merged["max_retries"]),
            visibility_timeout=float(workflow_settings.LEASE if lease is None else lease),
            delay_seconds=float(merged["delay_seconds"]),
            backoff={**workflow_settings.QUEUE["backoff"], **merged.get("backoff", {})},
            message_group_id=merged.get("message_group_id"),
            non_retryable=exception_classes(merged.get("non_retryable", ())),
        )

    def message_group(self, data):
        """The fifo group of an event's ``data`` (the ``message_group_id`` field), else None.

        A fifo step whose event lacks the field orders those events as one group.
        """
        if self.type != "fifo":
            return None
        field = self.message_group_id
        value = data.get(field) if field and isinstance(data, dict) else None
        return "" if value is None else column_key(str(value), GROUP_LENGTH)

    def retry_delay(self, attempt):
        """Seconds before retry number ``attempt`` (1-based): exponential, capped, jittered."""
        backoff = self.backoff
        delay = min(
            float(backoff["max"]),
            float(backoff["initial"]) * float(backoff["factor"]) ** (attempt - 1),
        )
        if backoff.get("jitter"):
            delay = random.uniform(delay / 2, delay)
        return delay

    def retries(self, exc):
        """False for an error retrying cannot mend: a ``NonRetryable`` or one of the
        step's ``non_retryable`` exceptions."""
        return not isinstance(exc, (NonRetryable, *self.non_retryable))


def exception_classes(entries):
    """Exception classes, from classes or their dotted paths."""
    return tuple(import_string(e) if isinstance(e, str) else e for e in entries)


def handler_timeout(step):
    """Seconds an attempt of ``step`` may run: its ``infrastructure["handler"]["timeout"]``,
    else ``WORKFLOW["HANDLER_TIMEOUT"]``."""
    handler = (step.config.infrastructure.get("handler") or {}) if step else {}
    return float(handler.get("timeout", workflow_settings.HANDLER_TIMEOUT))
