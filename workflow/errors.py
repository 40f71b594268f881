"""The runtime's exceptions, importable without Django set up (``workflow.NonRetryable``).

An attempt that raises a :class:`NonRetryable` (or one of its step's
``infrastructure={"queue": {"non_retryable": [...]}}`` exceptions) is not retried: its
delivery goes dead at once, with the error as its one message. Bad input, an emit of an
undeclared topic, an emit of data a subscriber refuses or JSON cannot hold, and an emit
past ``WORKFLOW["MAX_DEPTH"]`` are such errors: running them again would fail the same way.
"""


class StepConfigError(ValueError):
    """A step's config is invalid; the message says how to fix it."""


class NonRetryable(Exception):
    """Raise it from a handler for a failure that retrying cannot mend: the delivery is
    dead at once (replay it once the cause is fixed)."""


class InvalidInput(NonRetryable):
    """An event's data does not match the subscriber's ``input`` serializer."""


class InvalidEmit(NonRetryable, ValueError):
    """Emitted data that a subscriber's ``input`` (or the emit's declared ``schema``)
    refuses: the emit is refused at once, naming the emitter, topic, subscriber and fields."""


class NotJSON(NonRetryable, TypeError):
    """A value JSON cannot hold as given (a tuple, a set, a non-string key, NaN, an
    object): emitted data, a state value; the message names where and the fix."""


class UndeclaredEmit(NonRetryable):
    """A step emitted a topic that is not in its ``emits``."""


class EmitTooDeep(NonRetryable):
    """An emit deeper in its trace than ``WORKFLOW["MAX_DEPTH"]``: a cycle of steps."""


class TraceTooLarge(NonRetryable):
    """An emit past ``WORKFLOW["MAX_TRACE_EVENTS"]`` in its trace: a cycle that fans out."""


class HandlerTimeout(Exception):
    """An attempt ran past its handler timeout (``infrastructure={"handler": {"timeout": s}}``)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g} s")


class NotReplayable(Exception):
    """A delivery that cannot be replayed now; the message says why."""


class ResponseSchemaError(Exception):
    """An API step answered a body that breaks its ``response_schema`` (raised where
    ``WORKFLOW["RESPONSE_SCHEMA_ERRORS"]`` is ``"raise"``)."""
