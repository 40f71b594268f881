"""Replay: a finished delivery runs again as a new delivery of the same event and trace,
at most once at a time.

Covers ``workflow.replay``, ``manage.py replay`` and the admin actions.
"""

import threading
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from workflow import bus
from workflow.models import Delivery
from workflow.replay import NotReplayable, replay, replay_event, skip_reason
from workflow.steps import EventStep

pytestmark = [pytest.mark.django_db, pytest.mark.store]
Status = Delivery.Status


def handler(input, ctx):
    pass


@pytest.fixture
def shop(steps):
    """Two steps, Ship and Bill, subscribed to 'order.placed'."""
    steps.add(EventStep(name="Ship", subscribes=["order.placed"]), handler)
    steps.add(EventStep(name="Bill", subscribes=["order.placed"]), handler)
    return steps


def place_order(n=1):
    """Emit 'order.placed'; returns the event."""
    return bus.emit("order.placed", {"orderId": n})


def finish(delivery, status=Status.DEAD):
    """Mark ``delivery`` finished with ``status`` (as the runner would)."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, attempts=1, finished_at=timezone.now(), last_error="boom"
    )
    delivery.refresh_from_db()
    return delivery


def delivery_of(event, step_name):
    return Delivery.objects.filter(event=event, step_name=step_name).order_by("-pk").first()


def run(*args):
    out = StringIO()
    call_command("replay", *map(str, args), stdout=out)
    return out.getvalue()


# replay() and replay_event() ---------------------------------------------------------------


def test_replay_of_a_dead_delivery_is_a_new_pending_delivery_of_the_same_event(
    shop, enqueued, jobs_after_commit, django_capture_on_commit_callbacks
):
    """replay(): a new pending delivery with the same event, step and trace, linked by
    replay_of and woken after commit; the dead one is left as it was."""
    dead = finish(delivery_of(place_order(), "Ship"))
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        again = replay(dead)
        assert enqueued == []  # not before the commit
    again.refresh_from_db()
    assert again.pk != dead.pk
    assert (again.event_id, again.step_name, again.trace_id) == (
        dead.event_id,
        dead.step_name,
        dead.trace_id,
    )
    assert again.replay_of_id == dead.pk
    assert (again.status, again.attempts, again.last_error) == (Status.PENDING, 0, "")
    assert before <= again.due_at <= timezone.now()
    assert enqueued == [again.pk]
    assert again.enqueued_at is not None
    dead.refresh_from_db()
    assert (dead.status, dead.last_error) == (Status.DEAD, "boom")
    assert list(dead.replays.all()) == [again]


def test_replay_of_a_succeeded_delivery_is_allowed(shop):
    """A succeeded delivery is finished too, and may be replayed."""
    done = finish(delivery_of(place_order(), "Bill"), Status.SUCCEEDED)
    assert replay(done).replay_of_id == done.pk


def test_replay_keeps_the_fifo_message_group(steps):
    """A replayed fifo delivery keeps its message group, so it waits its turn in it."""
    queue = {"type": "fifo", "message_group_id": "userId"}
    steps.add(EventStep(name="Fifo", subscribes=["t"], infrastructure={"queue": queue}), handler)
    dead = finish(Delivery.objects.get(event=bus.emit("t", {"userId": "u1"})))
    assert replay(dead).message_group == "u1"


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING])
def test_a_pending_or_running_delivery_is_not_replayable(shop, status):
    """replay() of a delivery that has not finished raises NotReplayable and creates nothing."""
    delivery = delivery_of(place_order(), "Ship")
    Delivery.objects.filter(pk=delivery.pk).update(status=status)
    delivery.refresh_from_db()
    with pytest.raises(NotReplayable, match=f"delivery {delivery.pk} \\(Ship\\) is {status}"):
        replay(delivery)
    assert Delivery.objects.count() == 2


def test_replay_event_replays_only_the_subscribers_whose_newest_delivery_went_dead(shop):
    """replay_event(): per subscriber, its newest delivery (a replay, if one ran) is
    replayed if it went dead; a subscriber whose newest succeeded is skipped, and
    returned as skipped: its work is not done twice."""
    event = place_order()
    ship_again = finish(replay(finish(delivery_of(event, "Ship"))))  # dead twice
    bill = finish(delivery_of(event, "Bill"), Status.SUCCEEDED)
    replays, refusals, skipped = replay_event(event)
    assert [r.replay_of_id for r in replays] == [ship_again.pk]
    assert replays[0].event_id == event.pk and refusals == []
    assert skipped == [bill]
    assert not Delivery.objects.filter(replay_of=bill).exists()


def test_replay_event_skips_a_subscriber_whose_dead_delivery_was_since_replayed_and_succeeded(
    shop,
):
    """Ship died, its replay succeeded: its newest delivery succeeded, so Ship is skipped."""
    event = place_order()
    finish(delivery_of(event, "Bill"))
    ship_again = finish(replay(finish(delivery_of(event, "Ship"))), Status.SUCCEEDED)
    replays, _, skipped = replay_event(event)
    assert [r.step_name for r in replays] == ["Bill"]
    assert skipped == [ship_again]


def test_replay_event_with_succeeded_too_replays_the_newest_finished_delivery_of_each(shop):
    """replay_event(succeeded_too=True): per subscriber, the newest finished delivery,
    dead or succeeded."""
    event = place_order()
    ship_again = finish(replay(finish(delivery_of(event, "Ship"))), Status.SUCCEEDED)
    bill = finish(delivery_of(event, "Bill"))
    replays, refusals, skipped = replay_event(event, succeeded_too=True)
    assert sorted(r.replay_of_id for r in replays) == sorted([ship_again.pk, bill.pk])
    assert refusals == [] and skipped == []


def test_replay_event_skips_a_step_whose_newest_delivery_is_not_finished(shop):
    """A subscriber whose newest delivery is still pending (a replay) is not replayed
    again, even with succeeded_too, and is returned as skipped."""
    event = place_order()
    pending = replay(finish(delivery_of(event, "Ship")))
    bill = finish(delivery_of(event, "Bill"))
    replays, _, skipped = replay_event(event)
    assert [r.replay_of_id for r in replays] == [bill.pk] and skipped == [pending]
    replays, _, skipped = replay_event(event, succeeded_too=True)
    assert replays == [] and {d.status for d in skipped} == {Status.PENDING}
    assert len(skipped) == 2


@pytest.mark.parametrize(
    "status, reason",
    [
        (Status.SUCCEEDED, "succeeded"),
        (Status.PENDING, "is pending (it will run)"),
        (Status.RUNNING, "is running (replay it once it has finished, if it must)"),
        (Status.CANCELLED, "was cancelled (emit again if the work must be done)"),
    ],
)
def test_skip_reason_names_the_delivery_its_step_and_event_and_why(shop, status, reason):
    """skip_reason(): which delivery of which event was left alone, and why."""
    event = place_order()
    ship = delivery_of(event, "Ship")
    Delivery.objects.filter(pk=ship.pk).update(status=status)
    ship.refresh_from_db()
    assert skip_reason(ship) == f"delivery {ship.pk} (Ship) of event {event.pk} {reason}"


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.SUCCEEDED])
def test_a_delivery_with_a_live_or_succeeded_replay_is_not_replayed_again(shop, status):
    """replay() of a delivery whose replay waits, runs or succeeded is refused, naming
    that replay; nothing is created."""
    dead = finish(delivery_of(place_order(), "Ship"))
    first = replay(dead)
    Delivery.objects.filter(pk=first.pk).update(status=status)
    with pytest.raises(
        NotReplayable, match=f"already replayed as delivery {first.pk} \\({status}\\)"
    ):
        replay(dead)
    assert Delivery.objects.filter(replay_of=dead).count() == 1


def test_a_delivery_whose_replay_went_dead_may_be_replayed_again(shop):
    """A replay that failed for good does not block another replay of the original."""
    dead = finish(delivery_of(place_order(), "Ship"))
    finish(replay(dead))
    assert replay(dead).replay_of_id == dead.pk
    assert Delivery.objects.filter(replay_of=dead).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_replays_submitted_at_once_make_one(shop):
    """Two threads replaying one dead letter at the same moment: one replay is made, the
    other is refused (the database's unique constraint decides, not a read before)."""
    dead = finish(delivery_of(place_order(), "Ship"))
    barrier, made, refused = threading.Barrier(2), [], []

    def submit():
        barrier.wait()
        try:
            made.append(replay(dead))
        except NotReplayable as exc:
            refused.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 1 and len(refused) == 1, (made, refused)
    assert Delivery.objects.filter(replay_of=dead).count() == 1


# manage.py replay ------------------------------------------------------------------------


def test_command_replays_deliveries_by_id_and_names_old_and_new_ids(shop):
    """replay 42 43: each is replayed; the output names the old and the new delivery."""
    event = place_order()
    ship, bill = finish(delivery_of(event, "Ship")), finish(delivery_of(event, "Bill"))
    out = run(ship.pk, bill.pk)
    for old in (ship, bill):
        again = Delivery.objects.get(replay_of=old)
        assert (
            f"delivery {old.pk} ({old.step_name}) replayed as delivery {again.pk}, "
            f"trace {old.trace_id}"
        ) in out


def test_command_with_event_replays_the_failed_subscribers_and_names_those_it_skips(shop):
    """replay --event 17 18: of each event, the subscribers whose delivery went dead are
    replayed; each one that succeeded is named as skipped, with how to include it."""
    first, second = place_order(1), place_order(2)
    for delivery in Delivery.objects.all():
        finish(delivery, Status.SUCCEEDED)
    ship = finish(delivery_of(second, "Ship"))
    out = run(first.pk, second.pk, "--event")
    replays = Delivery.objects.filter(replay_of__isnull=False)
    assert list(replays.values_list("replay_of", flat=True)) == [ship.pk]
    skipped = [line for line in out.splitlines() if line.startswith("skipped: ")]
    assert skipped == [
        f"skipped: delivery {delivery_of(event, step).pk} ({step}) of event {event.pk} succeeded"
        for event, step in ((first, "Ship"), (first, "Bill"), (second, "Bill"))
    ]
    assert "--all replays succeeded ones too" in out
    assert f"delivery {ship.pk} (Ship) replayed as delivery" in out


def test_command_with_event_and_all_replays_every_subscriber_of_the_events(shop):
    """replay --event 17 18 --all: each subscriber's delivery of each event is replayed,
    succeeded or dead."""
    first, second = place_order(1), place_order(2)
    for delivery in Delivery.objects.all():
        finish(delivery, Status.SUCCEEDED)
    finish(delivery_of(second, "Ship"))
    out = run(first.pk, second.pk, "--event", "--all")
    replays = Delivery.objects.filter(replay_of__isnull=False)
    assert sorted(replays.values_list("event_id", "step_name")) == sorted(
        [(e.pk, s) for e in (first, second) for s in ("Bill", "Ship")]
    )
    assert "skipped" not in out


def test_command_with_event_where_all_succeeded_replays_nothing(shop):
    """replay --event of an event whose subscribers all succeeded: nothing is run again,
    and the output says what was skipped and that nothing was replayed."""
    event = place_order()
    for delivery in Delivery.objects.all():
        finish(delivery, Status.SUCCEEDED)
    out = run(event.pk, "--event")
    assert out.count("succeeded\n") == 2 and out.endswith("nothing to replay\n")
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


def test_command_dead_replays_dead_deliveries_not_yet_replayed(shop):
    """replay --dead: every dead delivery that has no replay yet; nothing else."""
    event = place_order()
    ship, bill = finish(delivery_of(event, "Ship")), finish(delivery_of(event, "Bill"))
    replay(bill)  # already replayed
    other = place_order(2)
    finish(delivery_of(other, "Ship"), Status.SUCCEEDED)
    pending = delivery_of(other, "Bill")
    run("--dead")
    assert Delivery.objects.filter(replay_of=ship).count() == 1
    assert Delivery.objects.filter(replay_of=bill).count() == 1
    assert Delivery.objects.filter(replay_of__isnull=False).count() == 2
    assert not Delivery.objects.filter(replay_of=pending).exists()


def test_command_dead_with_step_replays_only_that_steps_dead_deliveries(shop):
    """replay --dead --step Ship: only Ship's dead deliveries."""
    event = place_order()
    ship, bill = finish(delivery_of(event, "Ship")), finish(delivery_of(event, "Bill"))
    run("--dead", "--step", "Ship")
    replayed = Delivery.objects.filter(replay_of__isnull=False).values_list("replay_of", flat=True)
    assert list(replayed) == [ship.pk]
    assert not Delivery.objects.filter(replay_of=bill).exists()


def test_command_dead_skips_a_dead_letter_whose_step_has_since_succeeded(shop):
    """replay --dead leaves out a dead delivery when the same step has since succeeded
    for the same event (here a replay of a replay succeeded): no effect twice."""
    dead = finish(delivery_of(place_order(), "Ship"))
    first = finish(replay(dead))  # the first replay failed for good
    finish(replay(first), Status.SUCCEEDED)  # its own replay succeeded
    second = replay(dead)  # a second replay of the original...
    finish(second)  # ...that failed for good too: a dead letter with no replay
    out = run("--dead")
    assert "nothing to replay" in out
    assert not Delivery.objects.filter(replay_of=second).exists()


def test_command_names_the_deliveries_it_does_not_replay_and_why(shop):
    """replay ID of a delivery already replayed: refused, with the reason, and nothing made."""
    dead = finish(delivery_of(place_order(), "Ship"))
    again = replay(dead)
    with pytest.raises(CommandError, match=f"already replayed as delivery {again.pk}"):
        run(dead.pk)
    assert Delivery.objects.filter(replay_of=dead).count() == 1


def test_command_with_nothing_to_replay_says_so(shop):
    """replay --dead with no dead delivery prints 'nothing to replay'."""
    place_order()
    assert "nothing to replay" in run("--dead")
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


def test_command_names_an_unknown_id(shop):
    """An id that is no delivery is a CommandError naming it; nothing is replayed."""
    dead = finish(delivery_of(place_order(), "Ship"))
    with pytest.raises(CommandError, match="no delivery with id 9999"):
        run(dead.pk, 9999)
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


def test_command_names_an_unknown_event_id(shop):
    """With --event, an id that is no event is a CommandError naming it."""
    with pytest.raises(CommandError, match="no event with id 9999"):
        run(9999, "--event")


@pytest.mark.parametrize(
    "args",
    [(1, "--dead"), (), ("--step", "Ship", 1), (1, "--all"), ("--dead", "--all")],
    ids=["ids-and-dead", "nothing", "step-without-dead", "all-without-event", "all-with-dead"],
)
def test_command_refuses_mixed_or_missing_targets(shop, args):
    """Ids together with --dead, neither, --step without --dead, or --all without
    --event: CommandError."""
    finish(delivery_of(place_order(), "Ship"))
    with pytest.raises(CommandError):
        run(*args)
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


def test_command_replays_none_of_a_batch_with_a_pending_delivery(shop):
    """If one id of a batch is still pending, none is replayed and the error names it."""
    event = place_order()
    dead, pending = finish(delivery_of(event, "Ship")), delivery_of(event, "Bill")
    with pytest.raises(CommandError, match=f"delivery {pending.pk} \\(Bill\\) is pending"):
        run(dead.pk, pending.pk)
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


# Admin actions ---------------------------------------------------------------------------


def changelist(model="delivery"):
    return reverse(f"admin:workflow_{model}_changelist")


def post_action(client, action, ids, model="delivery"):
    return client.post(
        changelist(model),
        {"action": action, "_selected_action": [str(i) for i in ids]},
        follow=True,
    )


@pytest.fixture
def staff(django_user_model):
    """A staff user who may view deliveries and events, but not change them."""
    user = django_user_model.objects.create_user(username="viewer", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="workflow", codename__in=["view_delivery", "view_event"]
        )
    )
    return user


def test_admin_replays_selected_finished_deliveries(shop, admin_client):
    """A superuser's replay_deliveries action replays the finished ones and skips the rest."""
    event = place_order()
    dead, pending = finish(delivery_of(event, "Ship")), delivery_of(event, "Bill")
    response = post_action(admin_client, "replay_deliveries", [dead.pk, pending.pk])
    assert response.status_code == 200
    again = Delivery.objects.get(replay_of=dead)
    assert (again.status, again.event_id, again.trace_id) == (
        Status.PENDING,
        dead.event_id,
        dead.trace_id,
    )
    assert not Delivery.objects.filter(replay_of=pending).exists()
    page = response.content.decode()
    assert f"Replayed as new deliveries: {again.pk}." in page
    assert "Not replayed: 1 not finished (pending, running or cancelled)" in page


def test_admin_replay_submitted_twice_makes_one_replay(shop, admin_client):
    """The same replay action posted twice (a double click): one replay, and the second
    answer says it was already replayed."""
    dead = finish(delivery_of(place_order(), "Ship"))
    post_action(admin_client, "replay_deliveries", [dead.pk])
    response = post_action(admin_client, "replay_deliveries", [dead.pk])
    (again,) = Delivery.objects.filter(replay_of=dead)
    assert f"already replayed as delivery {again.pk} (pending)" in response.content.decode()


def test_admin_replays_the_failed_deliveries_of_selected_events(shop, admin_client):
    """A superuser's replay_events action replays the subscribers of the selected event
    whose delivery went dead; the page names each one skipped and why."""
    event = place_order()
    ship = finish(delivery_of(event, "Ship"))
    bill = finish(delivery_of(event, "Bill"), Status.SUCCEEDED)
    page = changelist("event")
    assert (
        "Replay the failed deliveries of selected events" in admin_client.get(page).content.decode()
    )
    response = post_action(admin_client, "replay_events", [event.pk], model="event")
    again = Delivery.objects.get(replay_of__isnull=False)
    assert again.replay_of_id == ship.pk
    text = response.content.decode()
    assert f"Replayed as new deliveries: {again.pk}." in text
    assert (
        f"Only failed deliveries are replayed; skipped: delivery {bill.pk} (Bill) of event "
        f"{event.pk} succeeded. To run a succeeded one again, replay that delivery from "
        "Deliveries."
    ) in text


def test_staff_without_change_delivery_cannot_see_or_run_the_replay_actions(shop, client, staff):
    """A staff user who may only view gets no replay action, and posting one replays nothing."""
    event = place_order()
    dead = finish(delivery_of(event, "Ship"))
    client.force_login(staff)
    page = client.get(changelist())
    assert page.status_code == 200
    assert "replay_deliveries" not in page.content.decode()
    assert "replay_events" not in client.get(changelist("event")).content.decode()
    post_action(client, "replay_deliveries", [dead.pk])
    post_action(client, "replay_events", [event.pk], model="event")
    assert not Delivery.objects.filter(replay_of__isnull=False).exists()


def test_staff_with_change_delivery_can_run_the_replay_action(shop, client, staff):
    """The change_delivery permission is what the replay actions take."""
    dead = finish(delivery_of(place_order(), "Ship"))
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="workflow", codename="change_delivery")
    )
    client.force_login(staff)
    assert "replay_deliveries" in client.get(changelist()).content.decode()
    post_action(client, "replay_deliveries", [dead.pk])
    assert Delivery.objects.filter(replay_of=dead).exists()
