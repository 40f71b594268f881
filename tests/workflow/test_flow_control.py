"""Flow control: concurrency (per step and per key), rate limit, debounce and priority,
kept by the store's claims, its sweeper pick and its outcomes (``workflow.store.gates``).

Claims and outcomes go through the store directly, in a test transaction, as in
test_fifo.py; the module also runs on PostgreSQL (the ``store`` marker), where the
claims of a guarded step take an advisory lock and the fast batch claim skips them.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from workflow import bus
from workflow.flow_control import configure
from workflow.models import Delivery, Run
from workflow.steps import EventStep, StepConfigError
from workflow.store import Outcome, store

pytestmark = [pytest.mark.django_db, pytest.mark.store]
Status = Delivery.Status


def handler(input, ctx):
    pass


def add(steps, name="Limited", topic="msg", **flow):
    return steps.add(EventStep(name=name, subscribes=[topic], **flow), handler)


def emit(data, topic="msg", **options):
    """Emit ``data`` and return its single delivery."""
    return Delivery.objects.get(event=bus.emit(topic, data, **options))


def claim(*deliveries):
    """The store's claims of ``deliveries`` (one batch), by delivery id."""
    return {c.pk: c for c in store.claim([d.pk for d in deliveries])}


def succeed(claimed):
    """Record the attempt's success; the ids to wake."""
    _, wake = store.record([Outcome.success(claimed)])
    return wake


def row(delivery):
    return Delivery.objects.get(pk=delivery.pk)


# Concurrency ------------------------------------------------------------------------


def test_concurrency_per_key_lets_one_run_per_key_and_wakes_the_next_when_it_ends(steps):
    add(steps, concurrency={"limit": 1, "key": "userId"})
    first, second = emit({"userId": "u1"}), emit({"userId": "u1"})
    other = emit({"userId": "u2"})
    assert (first.flow_key, other.flow_key) == ('"u1"', '"u2"')
    taken = claim(first, second, other)
    assert set(taken) == {first.pk, other.pk}
    held = row(second)
    assert (held.status, held.attempts, held.enqueued_at) == (Status.PENDING, 0, None)
    assert succeed(taken[first.pk]) == [second.pk]
    assert set(claim(second)) == {second.pk}


def test_step_wide_concurrency_counts_every_running_attempt_of_the_step(steps):
    add(steps, concurrency=2)
    deliveries = [emit({"n": n}) for n in range(4)]
    assert len(claim(*deliveries)) == 2
    assert Delivery.objects.filter(status=Status.RUNNING).count() == 2


def test_a_failed_attempt_frees_its_place_while_it_waits_for_its_retry(steps):
    add(steps, concurrency=1)
    first, second = emit({}), emit({})
    taken = claim(first)
    (recorded,), wake = store.record([Outcome.failure(taken[first.pk], "boom")])
    assert (recorded.status, wake) == (Status.PENDING, [second.pk])


@pytest.mark.parametrize("concurrency", [{"limit": 1, "key": "userId"}, 1])
def test_a_place_held_by_an_attempt_whose_lease_ran_out_is_free_again(
    steps, concurrency, jobs_after_commit
):
    """The worker running the only attempt allowed died: once its lease ran out, the
    sweeper takes that delivery again (it is not left behind its own full limit), and
    the place it held is free (the next delivery may start)."""
    add(steps, concurrency=concurrency)
    first, second = emit({"userId": "u1"}), emit({"userId": "u1"})
    claim(first)
    assert store.take_due(timezone.now()) == []  # the place is taken: both wait
    Delivery.objects.filter(pk=first.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1), enqueued_at=None
    )
    assert set(store.take_due(timezone.now())) == {first.pk, second.pk}
    assert set(claim(second)) == {second.pk}
    assert claim(first) == {}  # now the place is the second's


def test_the_sweeper_leaves_a_full_key_alone_and_wakes_the_others(steps, jobs_after_commit):
    add(steps, concurrency={"limit": 1, "key": "userId"})
    first, second = emit({"userId": "u1"}), emit({"userId": "u1"})
    other = emit({"userId": "u2"})
    claim(first)
    now = timezone.now()
    assert store.take_due(now) == [other.pk]
    assert row(second).enqueued_at is None  # not woken while u1's place is taken


def test_claims_racing_on_threads_never_exceed_the_limit(steps, transactional_db):
    """Eight threads each claim a delivery of their own at once: one runs (limit 1)."""
    add(steps, concurrency=1)
    deliveries = [emit({"n": n}) for n in range(8)]
    start = threading.Barrier(8)
    won = []

    def race(delivery):
        try:
            start.wait()
            won.extend(store.claim([delivery.pk]))
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(d,)) for d in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert Delivery.objects.filter(status=Status.RUNNING).count() == 1


# Rate limit -------------------------------------------------------------------------


def test_a_rate_limit_starts_limit_per_period_and_postpones_the_rest_to_the_window(steps):
    add(steps, rate_limit={"limit": 2, "period": 10})
    deliveries = [emit({"n": n}) for n in range(3)]
    before = timezone.now()
    taken = claim(*deliveries)
    assert len(taken) == 2
    (late,) = [d for d in deliveries if d.pk not in taken]
    held = row(late)
    assert held.status == Status.PENDING
    assert held.attempts == 0
    started = min(c.run.started_at for c in taken.values())
    assert held.due_at == started + timedelta(seconds=10)
    assert held.due_at >= before + timedelta(seconds=9)
    assert "rate limit 2/10s" in held.last_error
    assert store.take_due(timezone.now()) == []  # not due until the window opens
    Run.objects.update(started_at=timezone.now() - timedelta(seconds=11))
    Delivery.objects.filter(pk=late.pk).update(due_at=timezone.now())
    assert set(claim(late)) == {late.pk}


def test_a_keyed_rate_limit_counts_each_key_apart(steps):
    add(steps, rate_limit={"limit": 1, "period": 60, "key": "account"})
    a1, a2, b1 = emit({"account": "a"}), emit({"account": "a"}), emit({"account": "b"})
    assert set(claim(a1, a2, b1)) == {a1.pk, b1.pk}


# Debounce ---------------------------------------------------------------------------


def test_debounce_runs_the_last_event_of_a_burst_and_cancels_the_earlier_ones(steps):
    add(steps, debounce={"period": 5, "key": "userId"})
    burst = [emit({"userId": "u1", "n": n}) for n in range(3)]
    other = emit({"userId": "u2"})
    assert all(d.due_at >= d.created_at + timedelta(seconds=5) for d in burst)
    assert store.take_due(timezone.now()) == []  # each waits its period
    Delivery.objects.update(due_at=timezone.now())
    taken = claim(*burst, other)
    assert set(taken) == {burst[-1].pk, other.pk}
    for earlier in burst[:-1]:
        held = row(earlier)
        assert held.status == Status.CANCELLED
        assert held.last_error == f"Debounced: superseded by delivery {burst[-1].pk}"


def test_long_debounce_keys_that_share_their_start_do_not_supersede_each_other(steps):
    """A key longer than its column is stored as its start and a digest of the whole:
    one user's newer event does not cancel another's whose key starts the same."""
    add(steps, debounce={"period": 5, "key": "userId"})
    start = "u" * 300
    one, other = emit({"userId": start + "1"}), emit({"userId": start + "2"})
    assert one.flow_key != other.flow_key
    assert len(one.flow_key) == Delivery._meta.get_field("flow_key").max_length
    Delivery.objects.update(due_at=timezone.now())
    assert set(claim(one, other)) == {one.pk, other.pk}
    assert row(one).status != Status.CANCELLED


def test_a_debounced_event_whose_newer_one_was_cancelled_runs(steps):
    """Cancelling the newest event's trace does not leave the burst with no run."""
    add(steps, debounce={"period": 5})
    older, newer = emit({"n": 1}), emit({"n": 2})
    store.cancel(newer.trace_id)
    Delivery.objects.update(due_at=timezone.now())
    assert set(claim(older)) == {older.pk}


def test_a_replay_of_a_debounced_delivery_is_not_superseded(steps):
    add(steps, debounce={"period": 1})
    first = emit({})
    Delivery.objects.update(due_at=timezone.now())
    succeed(claim(first)[first.pk])
    emit({})  # a newer event, still waiting for its period
    replay = store.record_replay(row(first))
    assert set(claim(replay)) == {replay.pk}


def aged(delivery, seconds):
    """``delivery`` as if its event had come ``seconds`` ago."""
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_burst_that_never_pauses_runs_its_latest_event_by_max_wait(steps):
    """With max_wait, an event of a burst that began 8 s ago is due by the burst's
    10 s, not its own 5 s period; the earlier ones it supersedes as ever."""
    add(steps, debounce={"period": 5, "key": "userId", "max_wait": 10})
    first = emit({"userId": "u1", "n": 1})
    aged(first, 8)
    before = timezone.now()
    latest = emit({"userId": "u1", "n": 2})
    assert before + timedelta(seconds=1.5) <= latest.due_at <= before + timedelta(seconds=2.5)
    other = emit({"userId": "u2"})  # another key's burst is its own
    assert other.due_at >= before + timedelta(seconds=5)
    Delivery.objects.filter(pk__in=[first.pk, latest.pk]).update(due_at=timezone.now())
    assert set(claim(first, latest)) == {latest.pk}
    assert row(first).status == Status.CANCELLED


def test_a_burst_past_max_wait_is_due_at_once_and_one_that_ran_starts_anew(steps):
    add(steps, debounce={"period": 5, "max_wait": 10})
    first = emit({"n": 1})
    aged(first, 12)
    now = timezone.now()
    assert emit({"n": 2}).due_at <= now + timedelta(seconds=0.5)  # the burst is overdue
    Delivery.objects.update(due_at=timezone.now())
    ran = emit({"n": 3})
    Delivery.objects.update(due_at=timezone.now())
    succeed(claim(ran)[ran.pk])
    after = timezone.now()
    assert emit({"n": 4}).due_at >= after + timedelta(seconds=5)  # a new burst


def test_a_burst_long_gone_does_not_cut_a_new_one_short(steps):
    """Deliveries of a burst never run (their traces cancelled) from longer ago than
    max_wait and period together are not the new event's burst."""
    add(steps, debounce={"period": 5, "max_wait": 10})
    old = emit({"n": 1})
    store.cancel(old.trace_id)
    aged(old, 16)
    now = timezone.now()
    assert emit({"n": 2}).due_at >= now + timedelta(seconds=5)


# Priority ---------------------------------------------------------------------------


def test_a_waiting_delivery_of_higher_priority_starts_before_older_ones(steps):
    add(steps, concurrency=1, priority=lambda data: 10 if data.get("vip") else 0)
    running = emit({})
    taken = claim(running)
    low = [emit({"n": n}) for n in range(3)]
    vip = emit({"vip": True})
    assert (low[0].priority, vip.priority) == (0, 10)
    assert succeed(taken[running.pk]) == [vip.pk]
    assert claim(low[0]) == {}  # the vip one, due and waiting, goes first
    assert set(claim(vip)) == {vip.pk}


def test_the_sweeper_wakes_a_backlog_highest_priority_first(steps, jobs_after_commit):
    add(steps, name="Low", topic="low")
    add(steps, name="High", topic="high", priority=5)
    low, high = emit({}, topic="low"), emit({}, topic="high")
    assert store.take_due(timezone.now()) == [high.pk, low.pk]


def test_a_failing_priority_function_gives_priority_0_and_keeps_the_event(steps, caplog):
    add(steps, concurrency=1, priority=lambda data: data["missing"])
    assert emit({}).priority == 0
    assert "priority function failed" in caplog.text


# Config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flow", "says"),
    [
        ({"concurrency": 0}, "concurrency 'limit' is a whole number"),
        ({"concurrency": {"limit": 1, "by": "userId"}}, "unknown keys ['by']"),
        ({"concurrency": {"limit": 1, "key": ""}}, "'key' names a field"),
        ({"rate_limit": 5}, "rate_limit is a dict, e.g. rate_limit={'limit': 5"),
        ({"rate_limit": {"limit": 5}}, "rate_limit 'period' is a number of seconds"),
        ({"debounce": {"key": "userId"}}, "debounce 'period' is a number of seconds"),
        ({"debounce": {"period": 5, "max_wait": 2}}, "'max_wait' is a number of seconds"),
        ({"debounce": {"period": 5, "max_wait": "1m"}}, "at least the period, not '1m'"),
        ({"priority": 5000}, "priority is a whole number from -1000 to 1000"),
        ({"priority": "high"}, "priority=lambda data"),
        (
            {"concurrency": {"limit": 1, "key": "a"}, "debounce": {"period": 1, "key": "b"}},
            "one key field for all its limits",
        ),
    ],
)
def test_each_config_mistake_is_refused_with_the_fix(flow, says):
    with pytest.raises(StepConfigError, match=None) as refused:
        EventStep(name="Limited", subscribes=["msg"], **flow)
    assert says in str(refused.value)


def test_a_join_cannot_debounce():
    join = {"key": "id", "timeout": 5, "on_timeout": "x.timed_out"}
    with pytest.raises(StepConfigError, match="a join step cannot debounce"):
        EventStep(name="J", subscribes=["a", "b"], join=join, debounce={"period": 1})


def test_a_step_without_flow_control_has_none_and_keeps_the_fast_claim():
    assert EventStep(name="Plain", subscribes=["msg"]).flow_control is None
    flow = configure(
        concurrency={"limit": 2, "key": "userId"}, rate_limit={"limit": 3, "period": 2}
    )
    assert flow.describe() == ["concurrency 2 per userId", "rate 3/2s"]
    assert flow.key_of({"userId": 7}) == "7"
    assert flow.key_of({"userId": "7"}) == '"7"'
    assert flow.key_of({}) == ""


# Shown ------------------------------------------------------------------------------


def test_flow_control_is_shown_by_manage_py_flows_the_card_and_the_panel(steps):
    from io import StringIO

    from django.core.management import call_command

    from workbench import describe, graph

    debounce = {"period": 2, "key": "userId", "max_wait": 30}
    add(steps, concurrency={"limit": 1, "key": "userId"}, debounce=debounce)
    steps.get("Limited").config.flows = ("limits",)
    out = StringIO()
    call_command("flows", "--flow", "limits", stdout=out)
    line = "concurrency 1 per userId, debounce 2s per userId, at most 30s"
    assert f"  Limited [event] {line}" in out.getvalue()
    assert describe.step_detail(steps.get("Limited"))["flowControl"] == line
    card = next(node for node in graph.drawing("limits")["nodes"] if node.id == "Limited")
    assert card.subtitle == line
