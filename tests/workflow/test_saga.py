"""Sagas (workflow.saga): the ledger as a pure function, the saga's step run inline
with compensation steps, and each config mistake refused with the fix."""

import itertools

import pytest

from workflow.saga import Saga
from workflow.steps import EventStep, StepConfigError

ORDER = Saga(
    name="order",
    key="orderId",
    parts=["payment", "stock"],
    completed="order.confirmed",
    timed_out="order.timed_out",
)


def play(outcomes, ledger=None):
    """Record ``outcomes`` in turn: the last ledger and every compensation asked for."""
    ledger, undone = ledger or ORDER.new(), []
    for topic, data in outcomes:
        ledger, undo = ORDER.record(ledger, topic, data)
        undone += undo
    return ledger, undone


def test_every_part_then_completed_completes_with_nothing_undone():
    ledger, undone = play(
        [
            ("payment.succeeded", {"id": "p1"}),
            ("stock.succeeded", {"id": "s1"}),
            ("order.confirmed", {}),
        ]
    )
    assert ledger["status"] == "completed" and ledger["reason"] is None
    assert ledger["parts"]["payment"] == {"status": "succeeded", "data": {"id": "p1"}}
    assert undone == []


def test_a_failure_aborts_and_undoes_exactly_the_parts_that_succeeded_in_any_order():
    outcomes = [
        ("payment.succeeded", {"id": "p1"}),
        ("stock.failed", {"reason": "sold out"}),
        ("order.confirmed", {}),  # too late: an aborted saga stays aborted
    ]
    for order in itertools.permutations(outcomes):
        ledger, undone = play(order)
        if order.index(outcomes[2]) < order.index(outcomes[1]):
            # confirmed first (a join never does that before every part, but the
            # ledger holds regardless): the failure then finds it completed.
            assert ledger["status"] == "completed", order
            continue
        assert ledger["status"] == "aborted" and ledger["reason"] == "sold out", order
        assert undone == [("payment", {"id": "p1"})], order
        assert ledger["parts"]["payment"]["status"] == "compensated"
        assert ledger["parts"]["stock"]["status"] == "failed"


def test_a_timeout_aborts_naming_the_missing_parts_and_a_late_success_is_undone():
    ledger, undone = play([("payment.succeeded", {"id": "p1"}), ("order.timed_out", {})])
    assert (ledger["status"], ledger["reason"]) == ("aborted", "timed out waiting for stock")
    assert undone == [("payment", {"id": "p1"})]
    ledger, undone = play([("stock.succeeded", {"id": "s1"})], ledger)
    assert undone == [("stock", {"id": "s1"})]
    assert ledger["parts"]["stock"]["status"] == "compensated"


def test_a_joins_late_and_duplicate_hand_ons_do_not_abort():
    for reason in ("late", "duplicate"):
        ledger, undone = play([("order.timed_out", {"reason": reason})])
        assert (ledger["status"], undone) == ("running", [])


def test_a_second_success_of_a_part_is_undone_and_its_first_kept_and_a_redelivery_ignored():
    first = [("payment.succeeded", {"id": "p1"})]
    ledger, undone = play([*first, ("payment.succeeded", {"id": "p2"})])
    assert undone == [("payment", {"id": "p2"})]
    assert ledger["parts"]["payment"]["data"] == {"id": "p1"}
    ledger, undone = play([*first, *first])
    assert undone == []


def test_a_part_is_never_undone_twice_and_a_completed_saga_never_aborts():
    ledger, undone = play(
        [
            ("payment.succeeded", {"id": "p1"}),
            ("stock.failed", {"reason": "a"}),
            ("order.timed_out", {}),
            ("stock.failed", {"reason": "b"}),
        ]
    )
    assert undone == [("payment", {"id": "p1"})] and ledger["reason"] == "a"
    done, undone = play([("order.confirmed", {}), ("stock.failed", {}), ("order.timed_out", {})])
    assert (done["status"], undone) == ("completed", [])


def test_record_leaves_the_ledger_it_was_given_as_it_was():
    ledger = ORDER.new()
    ORDER.record(ledger, "payment.succeeded", {"id": "p1"})
    assert ledger == ORDER.new()


def test_the_saga_step_keeps_the_ledger_and_its_compensations_run_once(steps, flow):
    """Inline, with a compensation step per part: a refusal aborts the saga, the part
    done is undone once, and one succeeding after the abort is undone too."""
    config, handler = ORDER.step(name="KeepOrder", flows=["shop"])
    assert config.queue == {"type": "fifo", "message_group_id": "orderId"}
    assert set(config.subscribes) == {
        "payment.succeeded",
        "payment.failed",
        "stock.succeeded",
        "stock.failed",
        "order.confirmed",
        "order.timed_out",
    }
    assert [emit.topic for emit in config.emits] == ["payment.compensate", "stock.compensate"]
    steps.add(config, handler)
    undone = []
    steps.add(
        EventStep(name="Refund", subscribes=["payment.compensate"]),
        lambda input, ctx: undone.append(("payment", input["id"])),
    )
    steps.add(
        EventStep(name="Restock", subscribes=["stock.compensate"]),
        lambda input, ctx: undone.append(("stock", input["id"])),
    )
    flow.emit("payment.succeeded", {"orderId": "o1", "id": "p1"})
    flow.emit("stock.failed", {"orderId": "o1", "reason": "sold out"})
    flow.emit("stock.succeeded", {"orderId": "o1", "id": "s1"})  # after the abort
    flow.emit("payment.succeeded", {"orderId": "o1", "id": "p1"})  # a redelivery
    assert undone == [("payment", "p1"), ("stock", "s1")]
    ledger = ORDER.ledger(flow.state, "o1")
    assert (ledger["status"], ledger["reason"]) == ("aborted", "sold out")
    flow.assert_logged("Saga aborted", step="KeepOrder")


def test_an_outcome_without_the_key_is_logged_and_changes_nothing(steps, flow):
    steps.add(*ORDER.step(name="KeepOrder"))
    flow.emit("payment.succeeded", {"id": "p1"})
    flow.assert_logged("No saga key", step="KeepOrder")
    assert flow.state.get_group(ORDER.group) == {}


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"name": "a trip"}, "a saga's name is a word"),
        ({"key": ""}, "a saga needs a 'key'"),
        ({"parts": "flight"}, "a saga's parts are names"),
        ({"parts": []}, "a saga's parts are names"),
        ({"succeeded": "done"}, "a saga's 'succeeded' is a topic with {part} in it"),
        ({"compensate": "{part}.*"}, "saga compensate"),
    ],
)
def test_each_saga_mistake_is_refused_with_the_fix(options, says):
    with pytest.raises(StepConfigError) as refused:
        Saga(**{"name": "trip", "key": "id", "parts": ["a", "b"], **options})
    assert says in str(refused.value)
