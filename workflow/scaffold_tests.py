"""The test ``manage.py startstep`` writes beside each step (see ``scaffold``).

Each test runs the step as the runtime does: an API step through its URL with a
``FlowTester``, an event step by an emit on its topic, a cron step by firing a slot,
and each handler alone with ``call_handler``; a noop step is checked in its flow's graph.
"""

from .logs import redact
from .scaffold import assignment, comment, literal
from .scaffold_input import TopicInput
from .topics import example, is_catch_all


def render_test(spec, step_file):
    body = {"api": api_test, "event": event_test, "cron": cron_test, "noop": noop_test}
    doc = f'"""Tests of {spec.name} ({step_file})."""\n\n'
    return doc + body[spec.type](spec)


def emits_checks(spec, source, data):
    """Lines asserting each declared topic was emitted once with ``data``."""
    if not spec.emits:
        return f"    assert {source}.topics == []\n" if source == "result" else ""
    if source == "result":
        return "".join(f"    assert result.emitted({literal(t)}) == [{data}]\n" for t in spec.emits)
    return "".join(f"    flow.assert_emitted({literal(t)}, {data}, count=1)\n" for t in spec.emits)


def api_test(spec):
    n, path = spec.snake, literal(spec.sample_path)
    params = ", ".join(f"{literal(p)}: {literal(p + '-1')}" for p in spec.path_params)
    method = spec.method.lower()
    emitting = f", emitting {', '.join(spec.emits)}" if spec.emits else ""
    if spec.has_body:
        call, answer = f"flow.{method}({path}, BODY)", "BODY"
        emitted = f"{{**BODY, {params}}}" if params else "BODY"
    else:
        call, answer = f"flow.{method}({path})", f'{{"message": "{spec.name} answered"}}'
        emitted = f"{{{params}}}"
    text = "import pytest\n\nfrom workflow.testing import FlowTester\n\n"
    text += "pytestmark = pytest.mark.django_db\n"
    text += '\nBODY = {"message": "hello"}\n' if spec.has_body else ""
    text += (
        f"\n\ndef test_{n}_answers_200():\n"
        f'    """{spec.method} {spec.path} is answered 200{emitting}."""\n'
        "    flow = FlowTester()\n"
        f"    response = {call}\n"
        "    assert response.status_code == 200\n"
        f"    assert response.json() == {answer}\n"
        f"    flow.assert_logged({literal(spec.name + ' called')}, step={literal(spec.name)})\n"
        + emits_checks(spec, "flow", emitted)
    )
    if spec.has_body:
        text += (
            f"\n\ndef test_{n}_answers_400_to_a_bad_body():\n"
            '    """A body without its fields is a 400 naming them; nothing is emitted."""\n'
            "    flow = FlowTester()\n"
            f"    response = flow.{method}({path}, {{}})\n"
            "    assert response.status_code == 400\n"
            '    assert "message" in response.json()\n'
            "    assert flow.topics == []\n"
        )
    return text


def event_test(spec):
    n, name = spec.snake, literal(spec.name)
    topic = next((example(t) for t in spec.subscribes if not is_catch_all(t)), "example.topic")
    group = literal(spec.snake.replace("_", "-"))
    found = spec.input or TopicInput()
    text = "import pytest\n\n"
    text += "from workflow.runner import InvalidInput\n" if found.required else ""
    text += "from workflow.testing import FlowTester, call_handler\n\n"
    text += event_data(found)
    return text + (
        f"\n\ndef test_{n}_keeps_what_it_received_and_emits():\n"
        '    """The handler logs, keeps what it received in state and emits each declared '
        'topic."""\n'
        f"    result = call_handler({name}, INPUT)\n"
        f"    [line] = result.logged({literal(spec.name + ' received')})\n"
        "    assert line.fields == LOGGED\n"
        f"    assert result.state == {{{group}: {{result.trace_id: RECEIVED}}}}\n"
        + emits_checks(spec, "result", "RECEIVED")
        + refusal_test(spec, found)
        + "\n\n@pytest.mark.django_db\n"
        f"def test_{n}_runs_for_each_event_on_its_topic():\n"
        f'    """An event on {topic} is delivered to the step, which succeeds."""\n'
        "    flow = FlowTester(sleep=False)  # the topic's other subscribers run too, unslept\n"
        f"    event = flow.emit({literal(topic)}, INPUT)\n"
        f"    flow.assert_ran({name})\n"
        f"    assert flow.state.get({group}, event.trace_id) == RECEIVED\n"
    )


def event_data(found):
    """INPUT (an event on the topic), RECEIVED (what the handler keeps and emits) and
    LOGGED (the fields of its log line, as the logger redacts them)."""
    if found.serializer is None:
        return (
            "# Any data: the step takes its topic's data as it is.\n"
            'INPUT = {"message": "hello"}\n'
            "RECEIVED = INPUT\n"
            'LOGGED = {"data": INPUT}\n'
        )
    text = comment("", f"An event as {found.serializer.__name__} (the step's input) takes it.")
    text += dict_assignment("INPUT", found.sample, {})
    text += dict_assignment("RECEIVED", found.received, {"INPUT": found.sample})
    logged = redact(found.received)
    return text + dict_assignment("LOGGED", logged, {"RECEIVED": found.received})


def dict_assignment(name, value, same):
    """``NAME = {...}``, or ``NAME = OTHER`` when ``same`` (name -> value) holds it."""
    for other, other_value in same.items():
        if value == other_value:
            return f"{name} = {other}\n"
    return assignment("", name, [(literal(k), literal(v)) for k, v in value.items()])


def refusal_test(spec, found):
    """The test that an event without a required field is refused (none if all optional)."""
    if not found.required:
        return ""
    return (
        f"\n\ndef test_{spec.snake}_refuses_input_off_its_schema():\n"
        '    """An event without the input\'s fields fails the step\'s input check."""\n'
        f"    with pytest.raises(InvalidInput, match={literal(found.required)}):\n"
        f"        call_handler({literal(spec.name)}, {{}})\n"
    )


def cron_test(spec):
    n, name = spec.snake, literal(spec.name)
    ran = f'{{"message": "{spec.name} ran"}}'
    return (
        "import pytest\n\n"
        "from workflow.testing import FlowTester, call_handler\n"
        f"\n\ndef test_{n}_logs_and_emits():\n"
        '    """The handler logs and emits each declared topic."""\n'
        f"    result = call_handler({name})\n"
        f"    assert result.logged({literal(spec.name + ' ran')})\n"
        + emits_checks(spec, "result", ran)
        + "\n\n@pytest.mark.django_db\n"
        f"def test_{n}_runs_on_a_slot_of_its_cron():\n"
        f'    """A slot of its cron ({spec.cron}) becomes a delivery, which succeeds."""\n'
        "    flow = FlowTester()\n"
        f"    flow.cron({name})\n"
        f"    flow.assert_ran({name})\n" + emits_checks(spec, "flow", ran)
    )


def noop_test(spec):
    n, name = spec.snake, literal(spec.name)
    flow = literal(spec.flows[0])
    edges = sorted(
        [("in", t) for t in spec.subscribes if not is_catch_all(t)]
        + [("out", t) for t in spec.emits]
    )
    edges = "[" + ", ".join(f"({literal(a)}, {literal(t)})" for a, t in edges) + "]"
    return (
        "from workflow.graph import flow_graph\n"
        "from workflow.registry import registry\n"
        f"\n\ndef test_{n}_is_a_node_of_its_flow():\n"
        '    """The noop step is registered and drawn in its flow, with its virtual edges."""\n'
        f'    assert registry.get({name}).type == "noop"\n'
        f"    graph = flow_graph(registry, {flow})\n"
        f'    assert graph.node({name}).kind == "noop"\n'
        "    edges = sorted(\n"
        f'        ("in" if e.target == {name} else "out", e.topic)\n'
        "        for e in graph.edges\n"
        f"        if {name} in (e.source, e.target) and e.virtual\n"
        "    )\n"
        f"    assert edges == {edges}\n"
    )
