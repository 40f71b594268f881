"""Step config types: what a valid config looks like, and how an invalid one is refused."""

import decimal

import pytest
from rest_framework import serializers

from workflow.policy import exception_classes, handler_timeout
from workflow.registry import RegisteredStep
from workflow.steps import (
    STEP_TYPES,
    ApiStep,
    CronStep,
    Emit,
    EventStep,
    NoopStep,
    StepConfigError,
)


class BodySerializer(serializers.Serializer):
    name = serializers.CharField()


def api(**overrides):
    return ApiStep(**{"name": "Api", "method": "GET", "path": "/things", **overrides})


def event(**overrides):
    return EventStep(**{"name": "Event", "subscribes": ["thing.created"], **overrides})


# Valid configs ---------------------------------------------------------------------------


def test_api_step_valid_config():
    """An ApiStep keeps its fields, upper-cases the method and normalises emits to Emit."""
    step = ApiStep(
        name="CreateThing",
        method="post",
        path="/things",
        flows=["things"],
        emits=["thing.created", {"topic": "thing.audited", "label": "audit"}],
        body_schema=BodySerializer,
        response_schema={"201": BodySerializer},
    )
    assert step.type == "api"
    assert step.method == "POST"
    assert step.flows == ("things",)
    assert step.emits == (Emit("thing.created"), Emit("thing.audited", "audit"))
    assert step.emit_topics == {"thing.created", "thing.audited"}
    assert step.body_schema is BodySerializer
    assert step.response_schema == {201: BodySerializer}
    assert step.subscribe_topics == ()
    assert ApiStep.handler_params == ("request", "ctx")


def test_event_step_valid_config():
    """An EventStep keeps its subscribes, input serializer and queue policy."""
    step = EventStep(
        name="OnThing",
        subscribes=["thing.created"],
        emits=[{"topic": "thing.done", "conditional": True}],
        input=BodySerializer,
        infrastructure={"queue": {"type": "fifo", "max_retries": 5}},
    )
    assert step.type == "event"
    assert step.subscribe_topics == ("thing.created",)
    assert step.emits == (Emit("thing.done", "", True),)
    assert step.input is BodySerializer
    assert step.queue == {"type": "fifo", "max_retries": 5}
    assert EventStep.handler_params == ("input", "ctx")


def test_cron_step_valid_config_with_five_or_six_fields():
    """A CronStep accepts 5-field and 6-field (seconds) cron expressions."""
    assert CronStep(name="Every5", cron="*/5 * * * *").cron == "*/5 * * * *"
    assert CronStep(name="EverySecond", cron="* * * * * *").type == "cron"
    assert CronStep.handler_params == ("ctx",)


def test_noop_step_valid_config():
    """A NoopStep needs only a name and takes no handler parameters."""
    step = NoopStep(name="ExternalSystem", virtual_emits=["thing.created"])
    assert step.type == "noop"
    assert step.handler_params == ()
    assert step.virtual_emits == (Emit("thing.created"),)
    assert sorted(STEP_TYPES) == ["api", "cron", "event", "noop"]
    assert STEP_TYPES["noop"] is NoopStep


# Invalid configs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "1abc", "has space", None, "bad/name"])
def test_bad_name_is_refused(name):
    """A name that is not a word is refused with an example of a good one."""
    with pytest.raises(StepConfigError, match="name must be a word such as 'SendWelcomeEmail'"):
        event(name=name)


def test_emits_given_as_string_teaches_list():
    """emits='x' is refused with the list spelling emits=['x']."""
    with pytest.raises(StepConfigError) as info:
        event(emits="x")
    assert "emits=['x']" in str(info.value)


def test_subscribes_given_as_string_teaches_list():
    """subscribes='x' is refused with the list spelling subscribes=['x']."""
    with pytest.raises(StepConfigError) as info:
        EventStep(name="E", subscribes="x")
    assert "subscribes=['x']" in str(info.value)


def test_emits_dict_with_unknown_keys_is_refused():
    """An emits dict with unknown keys names them and the allowed keys."""
    with pytest.raises(StepConfigError) as info:
        event(emits=[{"topic": "t", "lable": "oops"}])
    message = str(info.value)
    assert "['lable']" in message
    assert "'topic', 'label', 'conditional', 'open' and 'schema'" in message


def test_an_emit_declared_open_keeps_the_flag():
    """{'topic': ..., 'open': True}: an emit meant for subscribers outside the project."""
    step = event(emits=[{"topic": "t.done", "open": True}, "t.other"])
    assert step.emits == (Emit("t.done", open=True), Emit("t.other"))


def test_an_emit_declares_a_schema():
    """{'topic': ..., 'schema': Serializer}: kept on the Emit; anything but a DRF
    serializer is refused, naming the entry."""

    class Sent(serializers.Serializer):
        userId = serializers.CharField()

    step = event(emits=[{"topic": "t.done", "schema": Sent}])
    assert step.emits == (Emit("t.done", schema=Sent),)
    with pytest.raises(StepConfigError, match=r"emits entry 't.done': 'schema' must be a DRF"):
        event(emits=[{"topic": "t.done", "schema": dict}])


@pytest.mark.parametrize("flag", ["open", "conditional"])
def test_an_emit_flag_that_is_not_a_bool_is_refused(flag):
    """'open': 'yes' is refused, saying the flag is True or False, with an example."""
    with pytest.raises(StepConfigError) as info:
        event(emits=[{"topic": "t", flag: "yes"}])
    assert f"'{flag}' is True or False, not 'yes'" in str(info.value)
    assert f"{{'topic': 't', '{flag}': True}}" in str(info.value)


@pytest.mark.parametrize("entry", [{"label": "no topic"}, 42, ""])
def test_emits_entry_of_wrong_shape_is_refused(entry):
    """An emits entry that is neither a topic string nor a topic dict is refused."""
    with pytest.raises(StepConfigError, match="entries are topic strings or"):
        event(emits=[entry])


def test_emits_as_a_bare_dict_is_refused():
    """emits={'topic': ...} (not in a list) is refused with the list spelling."""
    with pytest.raises(StepConfigError, match=r"emits must be a list, e\.g\. emits=\[\{"):
        event(emits={"topic": "t"})


def test_bad_method_is_refused():
    """An unknown HTTP method is refused, listing the methods allowed."""
    with pytest.raises(StepConfigError) as info:
        api(method="FETCH")
    assert "method must be one of GET, POST" in str(info.value)
    assert "'FETCH'" in str(info.value)


def test_path_without_leading_slash_is_refused():
    """A path not starting with '/' is refused with an example path."""
    with pytest.raises(StepConfigError) as info:
        api(path="users/:userId")
    assert "path must start with '/', e.g. '/users/:userId'" in str(info.value)


@pytest.mark.parametrize("path", ["/users/{userId}", "/users/:1bad", "/a b", "/users/<id>"])
def test_bad_path_segment_is_refused(path):
    """A path segment that is neither plain nor ':name' is refused with the syntax."""
    with pytest.raises(StepConfigError) as info:
        api(path=path)
    assert "is not valid; use plain segments and ':name' parameters" in str(info.value)


@pytest.mark.parametrize("schema", [dict, {"name": str}, "BodySerializer"])
def test_body_schema_not_a_serializer_is_refused(schema):
    """A body_schema that is not a DRF serializer is refused, saying how to declare one."""
    with pytest.raises(StepConfigError) as info:
        api(body_schema=schema)
    assert "body_schema must be a DRF Serializer class" in str(info.value)
    assert "serializers.Serializer" in str(info.value)


def test_response_schema_entry_not_a_serializer_is_refused():
    """A response_schema value that is not a serializer names its status code."""
    with pytest.raises(StepConfigError, match=r"response_schema\[200\] must be a DRF"):
        api(response_schema={200: dict})


def test_subscribes_empty_is_refused():
    """An event step with no subscribed topic is refused with an example."""
    with pytest.raises(StepConfigError) as info:
        EventStep(name="E", subscribes=[])
    assert "subscribes=['user.registered']" in str(info.value)


@pytest.mark.parametrize("cron", ["every minute", "61 * * * *", "* * *", 5])
def test_invalid_cron_is_refused(cron):
    """An invalid cron expression is refused with a valid example."""
    with pytest.raises(StepConfigError) as info:
        CronStep(name="C", cron=cron)
    assert "is not a valid cron expression" in str(info.value)
    assert "'*/5 * * * *'" in str(info.value)


def test_unknown_infrastructure_key_is_refused():
    """An unknown infrastructure key is named, and 'queue' suggested."""
    with pytest.raises(StepConfigError) as info:
        event(infrastructure={"queues": {}})
    assert "infrastructure has unknown keys ['queues']; use 'queue'" in str(info.value)


def test_unknown_queue_key_is_refused_with_snake_case_hint():
    """A camelCase queue key is named, with the allowed snake_case keys."""
    with pytest.raises(StepConfigError) as info:
        event(infrastructure={"queue": {"maxRetries": 3}})
    message = str(info.value)
    assert "['maxRetries']" in message
    assert "'max_retries'" in message
    assert "snake_case" in message


def test_bad_queue_type_is_refused():
    """A queue type other than 'standard' or 'fifo' is refused, naming both."""
    with pytest.raises(StepConfigError, match="is 'standard' or 'fifo'"):
        event(infrastructure={"queue": {"type": "priority"}})


@pytest.mark.parametrize("key", ["max_retries", "delay_seconds"])
@pytest.mark.parametrize("value", [-1, "3", True])
def test_negative_or_non_numeric_queue_numbers_are_refused(key, value):
    """max_retries and delay_seconds must be numbers >= 0."""
    with pytest.raises(StepConfigError) as info:
        event(infrastructure={"queue": {key: value}})
    assert f"infrastructure['queue']['{key}'] must be a number >= 0" in str(info.value)


@pytest.mark.parametrize("value", [0, 0.5, -1, "3"])
def test_a_visibility_timeout_under_a_second_is_refused_saying_what_it_is(value):
    """visibility_timeout is a lease of 1 s or more; the error says what it bounds."""
    with pytest.raises(StepConfigError) as info:
        event(infrastructure={"queue": {"visibility_timeout": value}})
    message = str(info.value)
    assert "visibility_timeout'] must be a number of seconds >= 1" in message
    assert "renews it while the handler runs" in message


@pytest.mark.parametrize(
    "handler, expected",
    [
        ({"timeout": 0}, "must be a number of seconds > 0"),
        ({"timeout": "30"}, "must be a number of seconds > 0"),
        ({"timout": 30}, "a dict with keys from ['timeout']"),
        ("30", "a dict with keys from ['timeout']"),
    ],
)
def test_a_bad_handler_timeout_is_refused(handler, expected):
    """infrastructure['handler'] takes Motia's timeout, in seconds > 0, and nothing else."""
    with pytest.raises(StepConfigError) as info:
        event(infrastructure={"handler": handler})
    assert expected in str(info.value)


def test_a_handler_timeout_is_kept_and_read_as_the_steps_timeout():
    """{"handler": {"timeout": 5}} is the step's handler timeout; without it, the default."""
    timed = RegisteredStep(event(infrastructure={"handler": {"timeout": 5}}), None, "", "")
    plain = RegisteredStep(event(), None, "", "")
    assert handler_timeout(timed) == 5.0
    assert handler_timeout(plain) == 30.0  # WORKFLOW["HANDLER_TIMEOUT"], Motia's default


@pytest.mark.parametrize(
    "entries, expected",
    [
        ("ValueError", "must be a list of exceptions"),
        ([42], "entries are exception classes, not 42"),
        (["no.such.Error"], "'no.such.Error' cannot be imported"),
        ([dict], "entries are exception classes"),
    ],
)
def test_bad_non_retryable_entries_are_refused(entries, expected):
    """non_retryable lists exception classes or their dotted paths; anything else is refused."""
    with pytest.raises(StepConfigError) as info:
        event(infrastructure={"queue": {"non_retryable": entries}})
    assert expected in str(info.value)


def test_non_retryable_takes_classes_and_dotted_paths():
    """Both forms are accepted and read as the classes."""
    entries = [KeyError, "decimal.InvalidOperation"]
    config = event(infrastructure={"queue": {"non_retryable": entries}})
    assert exception_classes(config.queue["non_retryable"]) == (KeyError, decimal.InvalidOperation)


def test_a_full_backoff_is_accepted():
    """A backoff with initial, factor, max and jitter is kept as given."""
    backoff = {"initial": 0.5, "factor": 3, "max": 60, "jitter": False}
    assert event(infrastructure={"queue": {"backoff": backoff}}).queue["backoff"] == backoff


@pytest.mark.parametrize("backoff", [5, [1, 2], {"initial": 1, "maximum": 30}])
def test_a_backoff_that_is_not_a_dict_of_known_keys_is_refused(backoff):
    """A backoff that is not a dict, or has an unknown key, is refused with an example."""
    with pytest.raises(StepConfigError) as info:
        event(infrastructure={"queue": {"backoff": backoff}})
    message = str(info.value)
    assert "infrastructure['queue']['backoff'] is a dict with keys from" in message
    assert "['factor', 'initial', 'jitter', 'max']" in message
    assert "{'initial': 1, 'factor': 2, 'max': 300}" in message


@pytest.mark.parametrize("key", ["initial", "factor", "max"])
@pytest.mark.parametrize("value", [-1, "3", None])
def test_negative_or_non_numeric_backoff_numbers_are_refused(key, value):
    """backoff initial, factor and max must be numbers >= 0."""
    with pytest.raises(StepConfigError) as info:
        event(infrastructure={"queue": {"backoff": {key: value}}})
    assert f"infrastructure['queue']['backoff']['{key}'] must be >= 0" in str(info.value)


def test_a_fifo_queue_with_a_message_group_field_is_accepted():
    """A fifo queue names the data field that groups its messages."""
    queue = {"type": "fifo", "message_group_id": "userId"}
    assert event(infrastructure={"queue": queue}).queue == queue


@pytest.mark.parametrize("value", [1, ["userId"]])
def test_a_message_group_id_that_is_not_a_string_is_refused(value):
    """message_group_id names a data field, so it must be a string."""
    with pytest.raises(StepConfigError, match=r"\['message_group_id'\] names a data field"):
        event(infrastructure={"queue": {"type": "fifo", "message_group_id": value}})


def test_step_config_error_is_a_value_error():
    """StepConfigError is a ValueError, so callers catching ValueError see it."""
    with pytest.raises(ValueError):
        event(name="")


# Routes ----------------------------------------------------------------------------------


def test_route_converts_path_params_to_django_converters():
    """'/users/:userId/status' becomes the Django route 'users/<str:userId>/status'."""
    step = api(path="/users/:userId/status")
    assert step.route == "users/<str:userId>/status"
    assert step.path_params == ["userId"]


def test_route_with_several_params_and_trailing_slash():
    """Several params convert in order; a trailing slash is kept."""
    step = api(path="/orgs/:orgId/users/:userId/")
    assert step.route == "orgs/<str:orgId>/users/<str:userId>/"
    assert step.path_params == ["orgId", "userId"]


def test_route_of_plain_path_and_root():
    """A plain path has no params; the root path maps to the empty route."""
    assert api(path="/users/register").route == "users/register"
    assert api(path="/users/register").path_params == []
    assert api(path="/").route == ""
