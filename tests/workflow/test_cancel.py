"""Cancel a trace: pending deliveries cancelled, running ones not retried and their
outcome dropped; ``manage.py cancel`` by id or prefix; the admin action."""

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.urls import reverse

from workflow import bus
from workflow.models import Delivery, Event, Run
from workflow.replay import NotReplayable, replay
from workflow.state import StateStore
from workflow.steps import EventStep
from workflow.store import Outcome, store

pytestmark = [pytest.mark.django_db, pytest.mark.store]
Status = Delivery.Status
TRACE = "c0ffee00" + "1" * 24


def handler(input, ctx):
    pass


@pytest.fixture
def shop(steps):
    ship = EventStep(name="Ship", subscribes=["order.placed"], emits=["order.shipped"])
    steps.add(ship, handler)
    steps.add(EventStep(name="Bill", subscribes=["order.placed"]), handler)
    return steps


def place_order(trace=TRACE):
    event = bus.emit("order.placed", {"orderId": 1}, trace_id=trace)
    return {d.step_name: d for d in Delivery.objects.filter(event=event)}


def test_cancel_stops_pending_deliveries_and_drops_the_outcome_of_running_ones(shop):
    """Bill pending, Ship running: both cancelled; Ship's run is interrupted, and its
    success, recorded later, is discarded with its held writes and emits."""
    placed = place_order()
    (ship,) = store.claim([placed["Ship"].pk], "w1")
    cancelled = store.cancel(TRACE)
    assert (cancelled.pending, cancelled.running) == (1, 1)
    rows = dict(Delivery.objects.values_list("step_name", "status"))
    assert rows == {"Ship": Status.CANCELLED, "Bill": Status.CANCELLED}
    assert Run.objects.get(pk=ship.run.pk).status == Run.Status.INTERRUPTED

    def writes():
        StateStore().set("orders", "1", "shipped")
        bus.emit("order.shipped", {"orderId": 1}, trace_id=TRACE)

    (recorded,), _ = store.record([Outcome.success(ship, writes)])
    assert recorded.discarded and recorded.reason == "its trace was cancelled"
    assert StateStore().get("orders", "1") is None
    assert not Event.objects.filter(topic="order.shipped").exists()
    assert store.claim([placed["Bill"].pk, placed["Ship"].pk]) == []  # never run again


def test_a_failure_after_cancel_is_not_retried(shop):
    """A running attempt that fails after its trace was cancelled schedules no retry."""
    placed = place_order()
    (ship,) = store.claim([placed["Ship"].pk], "w1")
    store.cancel(TRACE)
    (recorded,), _ = store.record([Outcome.failure(ship, "ValueError: boom")])
    assert recorded.discarded
    assert Delivery.objects.get(pk=ship.pk).status == Status.CANCELLED


def test_cancel_leaves_finished_deliveries_and_other_traces_alone(shop):
    """Succeeded deliveries of the trace, and every delivery of another, are untouched."""
    placed = place_order()
    (bill,) = store.claim([placed["Bill"].pk])
    store.record([Outcome.success(bill)])
    other = place_order("d" * 32)
    cancelled = store.cancel(TRACE)
    assert (cancelled.pending, cancelled.running) == (1, 0)
    assert Delivery.objects.get(pk=placed["Bill"].pk).status == Status.SUCCEEDED
    assert {d.status for d in Delivery.objects.filter(pk__in=[d.pk for d in other.values()])} == {
        Status.PENDING
    }
    assert store.cancel(TRACE).pending == 0  # nothing left


def test_a_cancelled_delivery_is_not_replayed(shop):
    """Replay is for finished deliveries: a cancelled one is refused."""
    placed = place_order()
    store.cancel(TRACE)
    with pytest.raises(NotReplayable, match="is cancelled"):
        replay(Delivery.objects.get(pk=placed["Bill"].pk))


def run(*args):
    out = StringIO()
    call_command("cancel", *args, stdout=out)
    return out.getvalue()


def test_command_cancels_a_trace_given_by_its_first_characters(shop):
    """manage.py cancel c0ffee00: the trace whose id begins so, named whole in the output."""
    place_order()
    assert run(TRACE[:8]) == f"trace {TRACE}: cancelled 2 pending and 0 running deliveries\n"
    assert run(TRACE) == f"trace {TRACE}: nothing left to cancel\n"


@pytest.mark.parametrize(
    "given, error",
    [
        ("c0ff", "no trace 'c0ff'; give its id, or at least 6 characters"),
        ("abcdef12", "no trace begins with 'abcdef12'"),
        ("c0ffee", "'c0ffee' begins more than one trace"),
    ],
)
def test_command_refuses_a_trace_it_cannot_tell(shop, given, error):
    """Too short, unknown, or ambiguous: a CommandError saying which, nothing cancelled."""
    place_order()
    place_order("c0ffee99" + "2" * 24)
    with pytest.raises(CommandError, match=error):
        run(given)
    assert not Delivery.objects.filter(status=Status.CANCELLED).exists()


def test_admin_action_cancels_the_traces_of_selected_deliveries(shop, client, django_user_model):
    """With the change-delivery permission, the action cancels each selected delivery's
    trace; a viewer without it gets no such action."""
    placed = place_order()
    viewer = django_user_model.objects.create_user(username="v", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="workflow", codename="view_delivery")
    )
    client.force_login(viewer)
    changelist = reverse("admin:workflow_delivery_changelist")
    assert "cancel_traces" not in client.get(changelist).content.decode()
    body = {"action": "cancel_traces", "_selected_action": [str(placed["Bill"].pk)]}
    client.post(changelist, body)
    assert not Delivery.objects.filter(status=Status.CANCELLED).exists()
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="workflow", codename="change_delivery")
    )
    response = client.post(changelist, body, follow=True)
    assert "Cancelled 2 pending and 0 running deliveries in 1 trace(s)." in (
        response.content.decode()
    )
    assert set(Delivery.objects.values_list("status", flat=True)) == {Status.CANCELLED}
