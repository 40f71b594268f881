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

    def emit(self, topic, data=None, *, delay=None):
        """Emit ``data`` on ``topic`` (also ``emit({"topic": ..., "data": ...})``)."""
        if isinstance(topic, dict):
            message = topic
            unknown = set(message) - {"topic", "data", "delay"}
            if "topic" not in message or unknown:
                raise TypeError(
                    f'emit takes ("topic", data) or {{"topic": ..., "data": ...}}, not {message!r}'
                )
            topic, data = message["topic"], message.get("data", data)
            delay = message.get("delay", delay)
        declared = self.step.config.emit_topics
        if topic not in declared:
            raise UndeclaredEmit(
                f"step {self.step.name!r} ({self.step.file}) emitted {topic!r}, which is "
                f"not in its emits {sorted(declared)}; add {topic!r} to config.emits "
                "or emit a declared topic"
            )
        data = json_copy({} if data is None else data, f"data emitted on {topic!r}")
        if self.held:
            self._emits.append((topic, data, delay))
        else:
            self._send(topic, data, delay)

    def _send(self, topic, data, delay):
        bus.emit(topic, data, trace_id=self.trace_id, emitted_by=self.step.name, delay=delay)

    def commit(self):
        """Write what a background attempt held: state first, then its emits."""
        if self.held:
            self.state.apply()
            emits, self._emits = self._emits, []
            for topic, data, delay in emits:
                self._send(topic, data, delay)
