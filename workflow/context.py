"""The handler context: ``emit``, ``state``, ``logger``, ``trace_id``, ``flows``.

A background attempt's context holds its emits and state writes until ``commit()``,
which the runner calls in the transaction that records the attempt's success; an API
step's context writes through, inside the request's transaction.
"""

from . import bus
from .jsonutil import json_copy
from .logs import StepLogger
from .state import AttemptState, StateStore


class UndeclaredEmit(Exception):
    """A step emitted a topic that is not in its ``emits``."""


class Context:
    def __init__(self, step, trace_id, *, held, logger=None, run=None):
        self.step = step
        self.trace_id = trace_id
        self.flows = list(step.config.flows)
        self.held = held
        self.state = AttemptState() if held else StateStore()
        self.logger = logger or StepLogger(step.name, trace_id, run=run)
        self._emits = []

    def emit(self, topic, data=None, *, delay=None, idempotency_key=None):
        """Emit ``data`` on ``topic`` (also ``emit({"topic": ..., "data": ...})``).

        ``delay`` (seconds) delivers it later; ``idempotency_key`` delivers it once
        per key, however many times it is emitted.
        """
        options = {"delay": delay, "idempotency_key": idempotency_key}
        if isinstance(topic, dict):
            topic, data, options = self._unpack(topic, data, options)
        declared = self.step.config.emit_topics
        if topic not in declared:
            raise UndeclaredEmit(
                f"step {self.step.name!r} ({self.step.file}) emitted {topic!r}, which is "
                f"not in its emits {sorted(declared)}; add {topic!r} to config.emits "
                "or emit a declared topic"
            )
        data = json_copy({} if data is None else data, f"data emitted on {topic!r}")
        if self.held:
            self._emits.append((topic, data, options))
        else:
            self._send(topic, data, options)

    @staticmethod
    def _unpack(message, data, options):
        unknown = set(message) - {"topic", "data", *options}
        if "topic" not in message or unknown:
            raise TypeError(
                f'emit takes ("topic", data) or {{"topic": ..., "data": ...}}, not {message!r}'
            )
        options = {name: message.get(name, value) for name, value in options.items()}
        return message["topic"], message.get("data", data), options

    def _send(self, topic, data, options):
        bus.emit(topic, data, trace_id=self.trace_id, emitted_by=self.step.name, **options)

    def holds_writes(self):
        """True if ``commit()`` has something to write (held emits or state writes)."""
        return bool(self._emits) or (self.held and self.state.holds_writes())

    def commit(self):
        """Write what a background attempt held: state first, then its emits."""
        if self.held:
            self.state.apply()
            emits, self._emits = self._emits, []
            for topic, data, options in emits:
                self._send(topic, data, options)
