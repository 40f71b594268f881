"""What ``manage.py startstep`` writes: a step module and its test, for each step type.

Both pass as written: the step loads, its test runs it (a ``FlowTester`` through the
real URL or a real delivery, and ``call_handler`` with a mock context). Each holds a
serializer stub with one example field, ``message``, to replace with your own. The
handler is annotated (``workflow.handlers``), so an editor completes ``ctx.`` and a type
checker checks it.
"""

import json
import re
from dataclasses import dataclass
from string import Template

BODY_METHODS = ("POST", "PUT", "PATCH")


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
    """A Python literal in ruff's style (double quotes): strings and lists of strings."""
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


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
    "api": "from workflow.handlers import ApiRequest, ApiResponse, Context\n",
    "event": "from workflow.handlers import Context\n",
    "cron": "from workflow.handlers import Context\n",
    "noop": "",
}


def header(spec, step_class, serializer=True):
    description = spec.description.replace("\\", "/").replace('"', "'")
    doc = f'"""{spec.name} ({spec.type} step): {description}"""\n\n'
    stdlib = "from typing import Any\n\n" if spec.type == "event" else ""
    imports = "from rest_framework import serializers\n\n" if serializer else ""
    return (
        doc
        + stdlib
        + imports
        + HANDLER_TYPES[spec.type]
        + f"from workflow.steps import {step_class}\n"
    )


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
    cls = f"{spec.name}Input"
    doc = "The event data this step takes: an event that does not match fails its delivery."
    config = [
        "config = EventStep(",
        *common,
        f"    subscribes={literal(spec.subscribes)},",
        emits,
        f"    input={cls},",
        ")",
    ]
    group = spec.snake.replace("_", "-")
    handler = (
        "def handler(input: dict[str, Any], ctx: Context) -> None:\n"
        f"    ctx.logger.info({literal(spec.name + ' received')}, "
        '{"message": input["message"]})\n'
        f'    ctx.state.set({literal(group)}, ctx.trace_id, {{"message": input["message"]}})\n'
        + emit_lines(spec, '{"message": input["message"]}')
    )
    serializer = SERIALIZER.substitute(cls=cls, doc=doc)
    return header(spec, "EventStep") + serializer + "\n\n" + "\n".join(config) + "\n\n\n" + handler


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
