"""System checks over the step graph (workflow.E001-E006, W001-W005)."""

from io import StringIO

from django.core import checks
from django.core.management import call_command
from rest_framework import serializers

from workflow.checks import (
    check_cycles,
    check_emit_schemas,
    check_flows,
    check_paths,
    check_schemas,
    check_steps,
    check_topics,
)
from workflow.steps import ApiStep, EventStep, NoopStep


def event_handler(input, ctx):
    return None


def api_handler(request, ctx):
    return {"status": 200, "body": {}}


def ids(messages):
    return [m.id for m in messages]


# Topics ----------------------------------------------------------------------------------


def test_w001_subscribing_to_a_topic_nobody_emits(steps):
    """A subscription to a topic no step emits is W001, with the step's file."""
    steps.add(EventStep(name="Listener", subscribes=["user.registred"]), event_handler, "", "l.py")
    [message] = check_topics(steps)
    assert isinstance(message, checks.Warning)
    assert message.id == "workflow.W001"
    assert "Listener subscribes to 'user.registred', which no step emits" in message.msg
    assert message.obj == "l.py"


def test_no_w001_when_the_topic_is_emitted(steps):
    """A subscription to an emitted topic is not reported."""
    steps.add(ApiStep(name="Api", method="POST", path="/a", emits=["t"]), api_handler)
    steps.add(EventStep(name="Listener", subscribes=["t"]), event_handler)
    assert check_topics(steps) == []


def test_virtual_emits_satisfy_subscriptions(steps):
    """A noop step's virtual_emits count as an emitter for W001."""
    steps.add(NoopStep(name="External", virtual_emits=["t"]), None)
    steps.add(EventStep(name="Listener", subscribes=["t"]), event_handler)
    assert check_topics(steps) == []


def test_w002_emitting_a_topic_nobody_subscribes_to(steps):
    """An emit with no subscriber is W002, naming the step and topic."""
    steps.add(ApiStep(name="Api", method="POST", path="/a", emits=["t"]), api_handler, "", "a.py")
    [message] = check_topics(steps)
    assert isinstance(message, checks.Warning)
    assert message.id == "workflow.W002"
    assert "Api emits 't', which no step subscribes to" in message.msg
    assert "subscribes=['t']" in message.hint


def test_w002_hint_teaches_declaring_the_emit_open(steps):
    """W002's hint shows how to declare a topic meant for subscribers outside the project."""
    steps.add(ApiStep(name="Api", method="POST", path="/a", emits=["t"]), api_handler)
    [message] = check_topics(steps)
    assert "declare it open: emits=[{'topic': 't', 'open': True}]" in message.hint


def test_no_w002_for_an_emit_declared_open(steps):
    """An emit declared open has no subscriber by design: no W002 for it; another step
    emitting the same topic without declaring it open is still reported."""
    open_emit = {"topic": "t", "open": True}
    steps.add(ApiStep(name="Api", method="POST", path="/a", emits=[open_emit]), api_handler)
    steps.add(NoopStep(name="Outside", virtual_emits=[open_emit]), None)
    assert check_topics(steps) == []
    steps.add(EventStep(name="Other", subscribes=["u"], emits=["t"]), event_handler)
    w002 = [m for m in check_topics(steps) if m.id == "workflow.W002"]
    assert [m.msg for m in w002] == ["Other emits 't', which no step subscribes to"]


def test_a_monitor_of_every_topic_hides_no_w002(steps):
    """A '*' (or '**') monitor receives every topic, but an emit only it hears is still
    W002: the monitor is no step the topic was meant for."""
    steps.add(ApiStep(name="Api", method="POST", path="/a", emits=["t", "u"]), api_handler)
    steps.add(EventStep(name="Audit", subscribes=["*"]), event_handler)
    steps.add(EventStep(name="Tap", subscribes=["**"]), event_handler)
    steps.add(EventStep(name="Listener", subscribes=["t"]), event_handler)
    assert [m.msg for m in check_topics(steps)] == ["Api emits 'u', which no step subscribes to"]


def test_w003_flow_with_a_single_step(steps):
    """A flow name used by one step only is W003."""
    steps.add(EventStep(name="A", subscribes=["t"], flows=["onboarding"]), event_handler)
    steps.add(EventStep(name="B", subscribes=["t"], flows=["onbaording"]), event_handler)
    steps.add(EventStep(name="C", subscribes=["t"], flows=["onboarding"]), event_handler)
    [message] = check_flows(steps)
    assert message.id == "workflow.W003"
    assert "flow 'onbaording' has only one step, B" in message.msg


# Paths -----------------------------------------------------------------------------------


def test_e004_two_api_steps_on_the_same_method_and_path_shape(steps):
    """'/a/:x' and '/a/:y' on the same method collide: E004 naming both steps."""
    steps.add(ApiStep(name="One", method="GET", path="/a/:x"), api_handler, "", "one.py")
    steps.add(ApiStep(name="Two", method="GET", path="/a/:y"), api_handler, "", "two.py")
    [message] = check_paths(steps)
    assert isinstance(message, checks.Error)
    assert message.id == "workflow.E004"
    assert "Two (two.py) and One (one.py) both answer GET /a/:y" in message.msg


def test_e004_ignores_a_trailing_slash(steps):
    """'/a/:x/' and '/a/:y' are the same path for E004."""
    steps.add(ApiStep(name="One", method="GET", path="/a/:x/"), api_handler)
    steps.add(ApiStep(name="Two", method="GET", path="/a/:y"), api_handler)
    assert ids(check_paths(steps)) == ["workflow.E004"]


def test_no_e004_for_different_methods_or_shapes(steps):
    """Same path on different methods, or different paths, do not collide."""
    steps.add(ApiStep(name="Get", method="GET", path="/a/:x"), api_handler)
    steps.add(ApiStep(name="Post", method="POST", path="/a/:y"), api_handler)
    steps.add(ApiStep(name="Fixed", method="GET", path="/a/b/c"), api_handler)
    steps.add(ApiStep(name="Other", method="GET", path="/b/:x"), api_handler)
    assert check_paths(steps) == []


# Schemas ---------------------------------------------------------------------------------


class Count(serializers.Serializer):
    count = serializers.IntegerField()

    class Meta:
        coerce_fields = ["cuont"]


class Basket(serializers.Serializer):
    lines = Count(many=True)


def test_e006_coerce_fields_naming_no_field(steps):
    """A schema whose Meta.coerce_fields (nested ones included) names no field is E006,
    naming the step, the schema and the field, with the step's file."""
    steps.add(
        ApiStep(name="Put", method="PUT", path="/c", body_schema=Basket), api_handler, "", "p.py"
    )
    steps.add(EventStep(name="Sum", subscribes=["t"], input=Count), event_handler, "", "s.py")
    ok = ApiStep(name="Get", method="GET", path="/c", response_schema={200: Basket(many=True)})
    steps.add(ok, api_handler, "", "g.py")
    messages = check_schemas(steps)
    assert ids(messages) == ["workflow.E006"] * 3
    assert [m.obj for m in messages] == ["p.py", "s.py", "g.py"]
    assert messages[0].msg.startswith(
        "Put body_schema: Count.Meta.coerce_fields names 'cuont', not among the fields of Count"
    )
    assert [m.msg.split(":")[0] for m in messages[1:]] == ["Sum input", "Get response_schema[200]"]


def test_e006_a_response_schema_errors_setting_that_is_not_a_mode(steps, settings):
    """WORKFLOW["RESPONSE_SCHEMA_ERRORS"] other than "raise", "log" or None is E006."""
    settings.WORKFLOW = {"RESPONSE_SCHEMA_ERRORS": "loud"}
    [message] = check_schemas(steps)
    assert message.id == "workflow.E006"
    assert 'is "raise", "log" or None (from DEBUG), not \'loud\'' in message.msg


# All together ----------------------------------------------------------------------------


def test_registry_problems_become_errors_with_their_ids(steps):
    """E001 and E002 kept by the registry are reported by check_steps as Errors."""

    def bad_handler(input):
        pass

    steps.add(EventStep(name="Twin", subscribes=["*"]), event_handler, "", "one_step.py")
    steps.add(EventStep(name="Twin", subscribes=["*"]), event_handler, "", "two_step.py")
    steps.add(EventStep(name="Bad", subscribes=["*"]), bad_handler, "", "bad_step.py")
    messages = check_steps()
    assert ids(messages) == ["workflow.E001", "workflow.E002"]
    assert all(isinstance(m, checks.Error) for m in messages)
    assert [m.obj for m in messages] == ["two_step.py", "bad_step.py"]
    assert "already used by one_step.py" in messages[0].msg
    assert messages[0].hint == "step names are unique; rename one of them"


def test_check_steps_combines_topic_path_and_flow_checks(steps):
    """check_steps reports the topic, path and flow findings of the global registry."""
    steps.add(ApiStep(name="One", method="GET", path="/a/:x", emits=["t"]), api_handler)
    steps.add(ApiStep(name="Two", method="GET", path="/a/:y", flows=["f"]), api_handler)
    assert sorted(ids(check_steps())) == ["workflow.E004", "workflow.W002", "workflow.W003"]


def test_empty_registry_has_no_findings(steps):
    """No steps, no messages."""
    assert check_steps() == []


def test_manage_py_check_on_the_project_identifies_no_issues(shipped_steps):
    """`check` on the shipped project is clean: the example's account.setup.completed,
    which nobody subscribes to, is declared open (no W002), and nothing is silenced. (A
    step a reader adds is not the shipped project's: the tutorial's NotifyAdmin has its
    own, real W002.)"""
    assert check_steps() == []
    stdout, stderr = StringIO(), StringIO()
    call_command("check", stdout=stdout, stderr=stderr)  # raises on any error
    output = stdout.getvalue() + stderr.getvalue()
    assert output.strip() == "System check identified no issues (0 silenced)."


# Cycles --------------------------------------------------------------------------------


def test_w004_a_step_that_subscribes_to_what_it_emits(steps):
    """A self-loop is W004, naming the step, its topic and the depth limit that stops it."""
    steps.add(EventStep(name="Loop", subscribes=["t"], emits=["t"]), event_handler, "", "l.py")
    [message] = check_cycles(steps)
    assert (message.id, message.obj) == ("workflow.W004", "l.py")
    assert "steps Loop form a cycle (Loop emits 't' to Loop)" in message.msg
    assert "WORKFLOW['MAX_DEPTH'] (64)" in message.msg
    assert "conditional" in message.hint


def test_w004_a_cycle_through_several_steps_is_reported_once(steps):
    """A -> B -> C -> A is one W004 naming the three steps and each emit on the cycle."""
    steps.add(EventStep(name="A", subscribes=["c.done"], emits=["a.done"]), event_handler)
    steps.add(EventStep(name="B", subscribes=["a.done"], emits=["b.done"]), event_handler)
    steps.add(EventStep(name="C", subscribes=["b.done"], emits=["c.done"]), event_handler)
    steps.add(EventStep(name="Outside", subscribes=["a.done"]), event_handler)
    [message] = check_cycles(steps)
    assert "steps A, B, C form a cycle" in message.msg
    for edge in ("A emits 'a.done' to B", "B emits 'b.done' to C", "C emits 'c.done' to A"):
        assert edge in message.msg
    assert "Outside" not in message.msg


def test_no_w004_for_a_chain_or_a_cycle_that_declares_how_it_ends(steps):
    """A chain is no cycle; a cycle with a conditional emit on it (a loop that ends by
    itself) is not reported."""
    steps.add(EventStep(name="First", subscribes=["go"], emits=["next"]), event_handler)
    steps.add(EventStep(name="Second", subscribes=["next"]), event_handler)
    steps.add(
        EventStep(
            name="Poll",
            subscribes=["poll"],
            emits=[{"topic": "poll", "label": "until done", "conditional": True}],
        ),
        event_handler,
    )
    assert check_cycles(steps) == []


def test_w004_a_monitor_of_every_topic_that_emits(steps):
    """A '*' subscriber receives its own emits: a cycle."""
    steps.add(EventStep(name="Audit", subscribes=["*"], emits=["audit.logged"]), event_handler)
    [message] = check_cycles(steps)
    assert "Audit emits 'audit.logged' to Audit" in message.msg


def test_virtual_emits_make_no_cycle(steps):
    """virtual_emits are drawn, not delivered: they close no cycle."""
    steps.add(EventStep(name="Drawn", subscribes=["t"], virtual_emits=["t"]), event_handler)
    assert check_cycles(steps) == []


# Declared emit schemas against subscribers' input (W005) ---------------------------------


class Address(serializers.Serializer):
    city = serializers.CharField()


class Order(serializers.Serializer):
    orderId = serializers.IntegerField()
    total = serializers.FloatField()
    email = serializers.EmailField()
    note = serializers.CharField(required=False)
    address = Address()


class CheckoutSent(serializers.Serializer):
    """What Checkout declares it emits: no email, total optional, orderId a string."""

    orderId = serializers.CharField()
    total = serializers.IntegerField(required=False)
    address = serializers.DictField()
    extra = serializers.BooleanField()


class WholeOrder(serializers.Serializer):
    orderId = serializers.IntegerField()
    total = serializers.IntegerField()  # an integer is a number
    email = serializers.CharField()
    address = Address()


def checkout_emitting(steps, schema):
    emits = [{"topic": "order.placed", "schema": schema}]
    steps.add(
        ApiStep(name="Checkout", method="POST", path="/c", emits=emits), api_handler, "", "c.py"
    )
    steps.add(EventStep(name="Ship", subscribes=["order.placed"], input=Order), event_handler)


def test_w005_an_emit_schema_that_cannot_satisfy_a_subscribers_input(steps):
    """A declared emit schema that lacks a field the subscriber's input requires, leaves
    it optional, or declares another JSON type is W005, naming both steps and serializers
    and each field; a nested serializer is compared field by field."""
    checkout_emitting(steps, CheckoutSent)
    [message] = check_emit_schemas(steps)
    assert isinstance(message, checks.Warning)
    assert (message.id, message.obj) == ("workflow.W005", "c.py")
    assert message.msg == (
        "Checkout's schema for 'order.placed' (CheckoutSent) cannot satisfy Ship's input "
        "(Order): orderId takes integer, declared string; total is required but declared "
        "optional; email is required but not declared"
    )
    assert "declare in CheckoutSent the fields Order requires" in message.hint


def test_manage_py_check_reports_w005(steps):
    """check_steps (manage.py check) includes W005."""
    checkout_emitting(steps, CheckoutSent)
    assert "workflow.W005" in ids(check_steps())


def test_w005_compares_nested_serializers(steps):
    """A nested serializer's fields are compared too (address.city)."""

    class Cityless(WholeOrder):
        address = serializers.Serializer()

    checkout_emitting(steps, Cityless)
    [message] = check_emit_schemas(steps)
    assert message.msg.endswith("(Order): address.city is required but not declared")


def test_no_w005_when_the_schema_satisfies_the_input_or_none_is_declared(steps):
    """A schema with every required field, of compatible types, is not reported; nor is
    an emit without a schema, or a subscriber without an input."""
    checkout_emitting(steps, WholeOrder)
    steps.add(EventStep(name="Audit", subscribes=["order.placed"]), event_handler)
    steps.add(ApiStep(name="Quick", method="POST", path="/q", emits=["order.placed"]), api_handler)
    assert check_emit_schemas(steps) == []
