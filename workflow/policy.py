"""A step's queue policy: Motia's ``infrastructure={"queue": {...}}`` over the defaults."""

import random
from dataclasses import dataclass

from .conf import workflow_settings


@dataclass(frozen=True)
class QueuePolicy:
    type: str
    max_retries: int
    visibility_timeout: float
    delay_seconds: float
    backoff: dict
    message_group_id: str | None = None

    @classmethod
    def for_step(cls, step):
        merged = {**workflow_settings.QUEUE, **(step.config.queue if step else {})}
        return cls(
            type=merged["type"],
            max_retries=int(merged["max_retries"]),
            visibility_timeout=float(merged["visibility_timeout"]),
            delay_seconds=float(merged["delay_seconds"]),
            backoff={**workflow_settings.QUEUE["backoff"], **merged.get("backoff", {})},
            message_group_id=merged.get("message_group_id"),
        )

    def message_group(self, data):
        """The fifo group of an event's ``data`` (the ``message_group_id`` field), else None.

        A fifo step whose event lacks the field orders those events as one group.
        """
        if self.type != "fifo":
            return None
        field = self.message_group_id
        value = data.get(field) if field and isinstance(data, dict) else None
        return "" if value is None else str(value)[:200]

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
