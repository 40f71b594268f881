"""What ``manage.py startstep`` writes: a step module and its test, for each step type.

Both pass as written: the step loads, its test runs it (a ``FlowTester`` through the
real URL or a real delivery, and ``call_handler`` with a mock context). An API step
holds a serializer stub with one example field, ``message``, to replace with your own.
An event step takes its topic's data as the topic's subscribers already declare it (their
``input`` serializer, imported from where it lives), or as it is when none is declared
(see ``scaffold_input``): so the events its topic really carries reach it and pass. The
handler is annotated (``workflow.handlers``), so an editor completes ``ctx.`` and a type
checker checks it.
"""

import json
import re
import textwrap
from dataclasses import dataclass
from string import Template

from .scaffold_input import TopicInput

BODY_METHODS = ("POST", "PUT", "PATCH")
LINE_LENGTH = 100  # ruff's, in this project's pyproject.toml


@dataclass
class Spec:
    """The step to write, as given on the command line."""

    app: str
    name: str
    type: str
    description: str
    flows: list
    emits: list
    subscribes: list
    method: str = ""
    path: str = ""
    cron: str = ""
    input: TopicInput | None = None  # an event step's input (None: not looked up)

    @property
    def snake(self):
        return snake_case(self.name)

    @property
    def module(self):
        return f"{self.app}.steps.{self.snake}_step"

    @property
    def has_body(self):
        return self.method in BODY_METHODS

    @property
    def sample_path(self):
        """``path`` with a sample value per parameter: /orders/:orderId -> /orders/orderId-1."""
        return re.sub(r":([A-Za-z_][A-Za-z0-9_]*)", r"\1-1", self.path)

    @property
    def path_params(self):
        return re.findall(r":([A-Za-z_][A-Za-z0-9_]*)", self.path)


def default_description(type, method="", path="", subscribes=(), cron=""):
    return {
        "api": f"{method} {path}",
        "event": f"runs for each {', '.join(subscribes)} event",
        "cron": f"runs on the schedule {cron}",
        "noop": "done outside the code (a person, another system)",
    }[type]


def snake_case(name):
    """SendWelcomeEmail -> send_welcome_email; SendSMS -> send_sms."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def literal(value):
    """A Python literal of JSON-like ``value`` in ruff's style (double quotes)."""
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def assignment(indent, name, items):
    """``name = {key: value, ...}`` from ``items`` (key, value source) pairs, on one line
    if it fits, else one item a line with a trailing comma (as ruff formats it)."""
    one_line = f"{indent}{name} = {{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if len(one_line) <= LINE_LENGTH or not items:
        return one_line + "\n"
    lines = "".join(f"{indent}    {k}: {v},\n" for k, v in items)
    return f"{indent}{name} = {{\n{lines}{indent}}}\n"


def comment(indent, text):
    """``text`` as comment lines that fit the line length."""
    width = LINE_LENGTH - len(indent) - 2
    return "".join(f"{indent}# {line}\n" for line in textwrap.wrap(text, width))


def common_fields(spec, emits_field="emits"):
    lines = [f"    name={literal(spec.name)},", f"    description={literal(spec.description)},"]
    lines.append(f"    flows={literal(spec.flows)},")
    return lines, f"    {emits_field}={literal(spec.emits)},"


def emit_lines(spec, data):
    return "".join(f"    ctx.emit({literal(topic)}, {data})\n" for topic in spec.emits)


SERIALIZER = Template('''

class $cls(serializers.Serializer):
    """$doc"""

    message = serializers.CharField(max_length=200)
''')


def render_step(spec):
    return {"api": api_step, "event": event_step, "cron": cron_step, "noop": noop_step}[spec.type](
        spec
    )


HANDLER_TYPES = {
    "api": "from workflow.handlers import ApiRequest, ApiResponse, Context",
    "event": "from workflow.handlers import Context",
    "cron": "from workflow.handlers import Context",
    "noop": None,
}


def header(spec, step_class, serializer=True, imports=()):
    """The docstring and imports: the standard library's, DRF's serializers (third
    party), then the project's (``imports``, the handler's types and ``workflow.steps``,
    sorted by module, as isort puts them)."""
    description = spec.description.replace("\\", "/").replace('"', "'")
    doc = f'"""{spec.name} ({spec.type} step): {description}"""\n\n'
    stdlib = "from typing import Any\n\n" if spec.type == "event" else ""
    third_party = "from rest_framework import serializers\n\n" if serializer else ""
    step = f"from workflow.steps import {step_class}"
    ours = sorted(filter(None, [step, HANDLER_TYPES[spec.type], *imports]))
    return doc + stdlib + third_party + "\n".join(ours) + "\n"


def api_step(spec):
    common, emits = common_fields(spec)
    if spec.has_body:
        cls, doc = f"{spec.name}Body", "The request body: a body that does not match is a 400."
        schema = [f"    body_schema={cls},", f"    response_schema={{200: {cls}}},"]
        data, body = "{**request.body, **request.path_params}", "request.body"
    else:
        cls, doc = f"{spec.name}Response", "The response body (in DEBUG, one off it is logged)."
        schema = [f"    response_schema={{200: {cls}}},"]
        data, body = "dict(request.path_params)", f'{{"message": "{spec.name} answered"}}'
    config = [
        "config = ApiStep(",
        *common,
        f"    method={literal(spec.method)},",
        f"    path={literal(spec.path)},",
        emits,
        *schema,
        ")",
    ]
    handler = (
        "def handler(request: ApiRequest, ctx: Context) -> ApiResponse:\n"
        f"    ctx.logger.info({literal(spec.name + ' called')}, "
        "path_params=request.path_params)\n"
        + emit_lines(spec, data)
        + f'    return {{"status": 200, "body": {body}}}\n'
    )
    serializer = SERIALIZER.substitute(cls=cls, doc=doc)
    return header(spec, "ApiStep") + serializer + "\n\n" + "\n".join(config) + "\n\n\n" + handler


def event_step(spec):
    common, emits = common_fields(spec)
    found = spec.input or TopicInput()
    schema, body, data = event_input(spec, found)
    config = [
        "config = EventStep(",
        *common,
        f"    subscribes={literal(spec.subscribes)},",
        emits,
        *schema,
        ")",
    ]
    group = spec.snake.replace("_", "-")
    handler = (
        "def handler(input: dict[str, Any], ctx: Context) -> None:\n"
        + body
        + f"    ctx.state.set({literal(group)}, ctx.trace_id, {data})\n"
        + emit_lines(spec, data)
    )
    head = header(spec, "EventStep", serializer=False, imports=[serializer_import(found)])
    return head + "\n" + "\n".join(config) + "\n\n\n" + handler


def event_input(spec, found):
    """An event step's ``input`` lines (with a comment saying where it comes from), the
    handler's first lines, and the name of what it keeps and emits."""
    topics = ", ".join(spec.subscribes)
    logged = literal(spec.name + " received")
    if found.serializer is None:
        text = (
            f"No input is declared for {topics} yet: the handler gets the event's data as "
            "emitted. Declare one (input=a serializer) to check it: an emit of data that "
            "does not match is refused."
        )
        body = f"    ctx.logger.info({logged}, data=input)\n"
        return [comment("    ", text).rstrip("\n")], body, "input"
    text = (
        f"The input {found.declared_by} declares for {topics}: an emit of data that does "
        "not match is refused."
    )
    schema = [comment("    ", text).rstrip("\n"), f"    input={found.serializer.__name__},"]
    fields = [(literal(name), f"input[{literal(name)}]") for name in found.received]
    body = assignment("    ", "received", fields)
    body += f"    ctx.logger.info({logged}, received)\n"
    return schema, body, "received"


def serializer_import(found):
    """``from <module> import <Serializer>`` for a declared input, or None."""
    if found.serializer is None:
        return None
    return f"from {found.serializer.__module__} import {found.serializer.__name__}"


def cron_step(spec):
    common, emits = common_fields(spec)
    config = ["config = CronStep(", *common, f"    cron={literal(spec.cron)},", emits, ")"]
    handler = (
        "def handler(ctx: Context) -> None:\n"
        f"    ctx.logger.info({literal(spec.name + ' ran')})\n"
        + emit_lines(spec, f'{{"message": "{spec.name} ran"}}')
    )
    head = header(spec, "CronStep", serializer=False)
    return head + "\n" + "\n".join(config) + "\n\n\n" + handler


def noop_step(spec):
    common, emits = common_fields(spec, "virtual_emits")
    config = [
        "# A noop step is a node of the graph with no handler: a person, an outside system.",
        "config = NoopStep(",
        *common,
        f"    virtual_subscribes={literal(spec.subscribes)},",
        emits,
        ")",
    ]
    return header(spec, "NoopStep", serializer=False) + "\n" + "\n".join(config) + "\n"
