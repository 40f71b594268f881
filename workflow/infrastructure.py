"""A step's ``infrastructure`` (Motia's): ``{"queue": {...}, "handler": {"timeout": s}}``,
checked when the step is declared, each mistake refused with what to write instead."""

from django.utils.module_loading import import_string

from .errors import StepConfigError

QUEUE_KEYS = {
    "type",
    "max_retries",
    "visibility_timeout",
    "delay_seconds",
    "message_group_id",
    "backoff",
    "non_retryable",
}
HANDLER_KEYS = {"timeout"}


def check_infrastructure(infrastructure):
    """The step's queue policy (``infrastructure["queue"]``), once all of it is checked."""
    if not isinstance(infrastructure, dict):
        raise StepConfigError("infrastructure must be a dict, e.g. {'queue': {...}}")
    unknown = set(infrastructure) - {"queue", "handler"}
    if unknown:
        raise StepConfigError(
            f"infrastructure has unknown keys {sorted(unknown)}; use 'queue' and 'handler'"
        )
    _check_handler(infrastructure.get("handler", {}))
    queue = infrastructure.get("queue", {})
    if not isinstance(queue, dict):
        raise StepConfigError("infrastructure['queue'] must be a dict")
    unknown = set(queue) - QUEUE_KEYS
    if unknown:
        raise StepConfigError(
            f"infrastructure['queue'] has unknown keys {sorted(unknown)}; "
            f"allowed: {sorted(QUEUE_KEYS)} (snake_case, e.g. max_retries)"
        )
    for key in ("max_retries", "delay_seconds"):
        if key in queue and (not _number(queue[key]) or queue[key] < 0):
            raise StepConfigError(f"infrastructure['queue']['{key}'] must be a number >= 0")
    if "visibility_timeout" in queue and (
        not _number(queue["visibility_timeout"]) or queue["visibility_timeout"] < 1
    ):
        raise StepConfigError(
            "infrastructure['queue']['visibility_timeout'] must be a number of seconds >= 1: "
            "how long a running delivery stays hidden from other workers without news from "
            "its worker (which renews it while the handler runs)"
        )
    _check_non_retryable(queue.get("non_retryable", []))
    if queue.get("type", "standard") not in ("standard", "fifo"):
        raise StepConfigError("infrastructure['queue']['type'] is 'standard' or 'fifo'")
    if not isinstance(queue.get("message_group_id", ""), str):
        raise StepConfigError("infrastructure['queue']['message_group_id'] names a data field")
    _check_backoff(queue.get("backoff", {}))
    return queue


BACKOFF_KEYS = {"initial", "factor", "max", "jitter"}


def _number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_handler(handler):
    if not isinstance(handler, dict) or set(handler) - HANDLER_KEYS:
        raise StepConfigError(
            "infrastructure['handler'] is a dict with keys from "
            f"{sorted(HANDLER_KEYS)}, e.g. {{'timeout': 30}} (seconds)"
        )
    if "timeout" in handler and (not _number(handler["timeout"]) or handler["timeout"] <= 0):
        raise StepConfigError(
            "infrastructure['handler']['timeout'] must be a number of seconds > 0, e.g. 30"
        )


def _check_non_retryable(entries):
    """Exception classes, or dotted paths to them: errors that make a delivery dead at once."""
    example = "e.g. [PermissionError, 'myapp.errors.CardDeclined']"
    if isinstance(entries, str) or not isinstance(entries, list | tuple):
        raise StepConfigError(
            f"infrastructure['queue']['non_retryable'] must be a list of exceptions, {example}"
        )
    for entry in entries:
        if isinstance(entry, str):
            try:
                entry = import_string(entry)
            except ImportError as exc:
                raise StepConfigError(
                    f"infrastructure['queue']['non_retryable'] entry {entry!r} cannot be "
                    f"imported ({exc}); give the exception class or its dotted path"
                ) from None
        if not (isinstance(entry, type) and issubclass(entry, BaseException)):
            raise StepConfigError(
                f"infrastructure['queue']['non_retryable'] entries are exception classes, "
                f"not {entry!r}; {example}"
            )


def _check_backoff(backoff):
    if not isinstance(backoff, dict) or set(backoff) - BACKOFF_KEYS:
        raise StepConfigError(
            "infrastructure['queue']['backoff'] is a dict with keys from "
            f"{sorted(BACKOFF_KEYS)}, e.g. {{'initial': 1, 'factor': 2, 'max': 300}}"
        )
    for key in ("initial", "factor", "max"):
        if key in backoff and (not isinstance(backoff[key], int | float) or backoff[key] < 0):
            raise StepConfigError(f"infrastructure['queue']['backoff']['{key}'] must be >= 0")
