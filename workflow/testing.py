"""Test a flow inline: an API call in, every delivery it causes run, then assertions.

    def test_registration(flow):                  # the `flow` fixture: a FlowTester
        response = flow.post("/users/register", {"name": "Ann", ...})
        assert response.status_code == 201
        flow.assert_emitted("user.registered", {"userId": ANY, "name": "Ann", ...})
        flow.assert_ran("SendWelcomeEmail")
        assert flow.state.get("users", response.json()["userId"])["status"] == "active"
        flow.assert_logged("Email sent successfully", step="SendWelcomeEmail")

No cluster: the request goes through the real URL and DRF view (DRF's ``APIClient``),
then each pending delivery is run in the test's own thread, until none is left, by the
code the workers run: ``store.claim``, ``runner.attempt``, ``store.record`` (in batches
of one: ``runner.run_delivery``). An ``async def`` handler past its timeout is cancelled
as in a worker; a sync one, running in the test's thread, cannot be abandoned. Retries
and delayed emits are run at once (``fast_forward``); ``sleep=False`` skips
``time.sleep`` in handlers. It works in ``django_db`` tests and in
``django_db(transaction=True)`` ones.

One handler alone, with no database: ``call_handler`` (from ``workflow.mocks``).

Fixtures (``pytest_plugins = ["workflow.testing"]`` in a conftest): ``flow``. The
plugin also makes a response that breaks its step's ``response_schema`` fail the call
(``WORKFLOW["RESPONSE_SCHEMA_ERRORS"]`` is ``"raise"`` unless the project sets it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from django.db.models import Max
from django.utils import timezone
from rest_framework.test import APIClient

from . import bus, runner
from .conf import workflow_settings
from .logs import StepLogger, jsonable, redact
from .mocks import Emitted, HandlerResult, LogLine, MockContext, call_handler
from .models import Delivery, Event
from .registry import registry
from .state import StateStore
from .store import store
from .ticker import fire_cron

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse as Response

__all__ = [
    "Emitted",
    "FlowNotQuiet",
    "FlowTester",
    "HandlerResult",
    "LogLine",
    "MockContext",
    "call_handler",
    "flow",
]

Status = Delivery.Status
# A delivery a FlowTester ran: (delivery id, step name, run status).
DeliveryRun = tuple[int, str, str]


class FlowNotQuiet(AssertionError):
    """Deliveries kept coming: a step that emits to itself, or a retry that never ends."""


class FlowTester:
    """Drives a flow inline (API calls, emits, cron slots) and asserts on what it did."""

    def __init__(
        self,
        client: APIClient | None = None,
        *,
        sleep: bool = True,
        fast_forward: bool = True,
        max_runs: int = 500,
    ) -> None:
        self.client = client or APIClient()
        self.sleep = sleep
        self.fast_forward = fast_forward
        self.max_runs = max_runs
        self.lines: list[LogLine] = []  # as steps logged them
        self.slept: list[float] = []  # seconds handlers asked to sleep, when sleep=False
        self.runs: list[DeliveryRun] = []  # in order
        self.first_event = (Event.objects.aggregate(last=Max("pk"))["last"] or 0) + 1
        self.first_delivery = (Delivery.objects.aggregate(last=Max("pk"))["last"] or 0) + 1

    # Driving the flow ------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        data: Any = None,
        *,
        run: bool = True,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        """Call an API step through its URL; then run the flow until quiet."""
        call = getattr(self.client, method.lower())
        if data is not None and method.upper() not in ("GET", "HEAD"):
            extra.setdefault("format", "json")
        with self.watching():
            response = call(path, data, headers=headers, **extra)
        if run:
            self.run_until_quiet()
        return response

    def get(self, path: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("GET", path, data, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", path, data, **kwargs)

    def put(self, path: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("PUT", path, data, **kwargs)

    def patch(self, path: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("PATCH", path, data, **kwargs)

    def delete(self, path: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("DELETE", path, data, **kwargs)

    def emit(self, topic: str, data: Any = None, *, run: bool = True, **options: Any) -> Event:
        """Emit from outside any step (as ``manage.py emit``; ``check=False`` is its
        ``--no-check``); then run until quiet."""
        event = bus.emit(topic, {} if data is None else data, **options)
        if run:
            self.run_until_quiet()
        return event

    def cron(self, step_name: str, *, run: bool = True) -> None:
        """Fire a cron step's slot now (as the ticker would); then run until quiet."""
        step = registry.get(step_name)
        if step is None or step.type != "cron":
            raise LookupError(f"no cron step named {step_name!r}")
        fire_cron(step, timezone.now())
        if run:
            self.run_until_quiet()

    def run_until_quiet(self) -> list[DeliveryRun]:
        """Run pending deliveries, oldest first, until none is left; the runs made."""
        made: list[DeliveryRun] = []
        while True:
            due = self._due()
            if not due:
                return made
            ran = [self._run(delivery_id) for delivery_id in due]
            made += [r for r in ran if r]
            if not any(ran):
                return made  # only fifo deliveries waiting on one still running elsewhere
            if len(made) > self.max_runs:
                raise FlowNotQuiet(f"more than {self.max_runs} runs:\n{self.summary()}")

    def _due(self) -> list[int]:
        now = timezone.now()
        pending = Delivery.objects.filter(status=Status.PENDING)
        if self.fast_forward:
            store.make_due(now)
        else:
            pending = pending.filter(due_at__lte=now)
        return list(pending.order_by("pk").values_list("pk", flat=True))

    def _run(self, delivery_id: int) -> DeliveryRun | None:
        with self.watching():
            status = runner.run_delivery(delivery_id, worker="FlowTester")
        if status is None:
            return None
        step_name = Delivery.objects.values_list("step_name", flat=True).get(pk=delivery_id)
        self.runs.append((delivery_id, step_name, status))
        return self.runs[-1]

    @contextmanager
    def watching(self) -> Iterator[None]:
        """While a step runs: record its log lines, and skip sleeps if asked."""
        with ExitStack() as stack:
            stack.enter_context(mock.patch.object(StepLogger, "_log", self._recording_log()))
            if not self.sleep:
                stack.enter_context(mock.patch.object(time, "sleep", self.slept.append))
            yield

    def _recording_log(self) -> Callable[..., None]:
        original = StepLogger._log
        lines = self.lines

        def _log(
            logger: StepLogger,
            level: str,
            message: str,
            fields: Mapping[str, Any] | None,
            kwargs: dict[str, Any],
        ) -> None:
            data = redact(jsonable({**(fields or {}), **kwargs}))
            lines.append(LogLine(logger.step_name, level, str(message), data, logger.trace_id))
            return original(logger, level, message, fields, kwargs)

        return _log

    # What happened -------------------------------------------------------------

    def events(self, topic: str | None = None) -> list[Event]:
        """The events emitted since this tester was made, oldest first."""
        found = Event.objects.filter(pk__gte=self.first_event).order_by("pk")
        return list(found.filter(topic=topic) if topic else found)

    @property
    def topics(self) -> list[str]:
        return [event.topic for event in self.events()]

    def emitted(self, topic: str) -> list[Any]:
        """The data of each event on ``topic``, oldest first."""
        return [event.data for event in self.events(topic)]

    def deliveries(self, step: str | None = None, status: str | None = None) -> list[Delivery]:
        found = Delivery.objects.filter(pk__gte=self.first_delivery).order_by("pk")
        found = found.filter(step_name=step) if step else found
        return list(found.filter(status=status) if status else found)

    @property
    def state(self) -> StateStore:
        """The state store (``flow.state.get(group, key)``, ``get_group(group)``)."""
        return StateStore()

    def logs(
        self,
        message: str | None = None,
        *,
        step: str | None = None,
        level: str | None = None,
        **fields: Any,
    ) -> list[LogLine]:
        """The log lines steps wrote, filtered by message, step, level and field values."""
        wanted = {"step": step, "level": level, **fields}
        return [line for line in self.lines if line.matches(message, **wanted)]

    def summary(self) -> str:
        """What happened, for assertion messages: events, then each delivery's outcome."""
        lines = [f"events: {self.topics or 'none'}"]
        for d in self.deliveries():
            error = f": {d.last_error.strip().splitlines()[-1]}" if d.last_error else ""
            lines.append(f"  delivery {d.pk} to {d.step_name}: {d.status}{error}")
        return "\n".join(lines)

    # Assertions ----------------------------------------------------------------

    def assert_emitted(
        self, topic: str, data: Any = mock.ANY, *, count: int | None = None
    ) -> list[Any]:
        """At least one event on ``topic`` (exactly ``count``) whose data equals ``data``
        (use ``unittest.mock.ANY`` for fields that vary); returns the matching data."""
        matching = [d for d in self.emitted(topic) if d == data]
        if (not matching) if count is None else (len(matching) != count):
            want = "an event" if count is None else f"{count} event(s)"
            shown = "" if data is mock.ANY else f" with data {data!r}"
            raise AssertionError(
                f"expected {want} on {topic!r}{shown}; got {self.emitted(topic)!r}\n"
                + self.summary()
            )
        return matching

    def assert_not_emitted(self, topic: str) -> None:
        if self.emitted(topic):
            raise AssertionError(f"{topic!r} was emitted: {self.emitted(topic)!r}")

    def assert_ran(self, step: str, status: str = Status.SUCCEEDED) -> list[Delivery]:
        """``step`` has a delivery (since this tester was made) that ended in ``status``."""
        found = self.deliveries(step, status)
        if not found:
            raise AssertionError(f"no {status} delivery to {step!r}\n" + self.summary())
        return found

    def assert_logged(
        self,
        message: str | None = None,
        *,
        step: str | None = None,
        level: str | None = None,
        **fields: Any,
    ) -> list[LogLine]:
        found = self.logs(message, step=step, level=level, **fields)
        if not found:
            shown = "\n".join(f"  [{x.step}] {x.level} {x.message} {x.fields}" for x in self.lines)
            raise AssertionError(f"no log line {message!r} {fields or ''}; the lines:\n{shown}")
        return found


def pytest_configure(config: pytest.Config) -> None:
    """In tests, a body that breaks its response_schema fails the call, DEBUG or not
    (pytest-django turns DEBUG off)."""
    workflow_settings.defaults = {**workflow_settings.defaults, "RESPONSE_SCHEMA_ERRORS": "raise"}
    workflow_settings.reload()


@pytest.fixture
def flow(db: None) -> FlowTester:
    """A ``FlowTester`` with DRF's ``APIClient``: call an API step, then the flow runs inline."""
    return FlowTester(APIClient())
