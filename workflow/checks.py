"""Django system checks over the step graph (``manage.py check``).

workflow.E001  duplicate step name
workflow.E002  handler missing or with the wrong signature
workflow.E003  step module that cannot be loaded, or has no config
workflow.E004  two API steps on the same method and path
workflow.E005  a middleware setting (API_MIDDLEWARE, FLOW_MIDDLEWARE) that cannot work
workflow.E006  a schema option that cannot work: a serializer's Meta.coerce_fields, or
               WORKFLOW["RESPONSE_SCHEMA_ERRORS"]
workflow.W001  a step subscribes to a topic no step emits
workflow.W002  a step emits a topic no step subscribes to (unless it declares the emit open)
workflow.W003  a flow name used by one step only
workflow.W004  steps whose emits reach each other in a cycle, none of them conditional
workflow.W005  an emit whose declared schema cannot satisfy a subscriber's input
"""

import re
from collections import defaultdict

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import middleware, response_schema
from .conf import workflow_settings
from .contracts import unmet_inputs
from .registry import registry
from .schemas import bind, schema_name
from .strict import check_coerce_fields
from .topics import is_catch_all, is_pattern, matches


@checks.register("workflow")
def check_steps(app_configs=None, **kwargs):
    messages = [checks.Error(p.msg, hint=p.hint, obj=p.file, id=p.id) for p in registry.problems]
    messages += check_topics(registry)
    messages += check_paths(registry)
    messages += check_flows(registry)
    messages += check_cycles(registry)
    messages += check_emit_schemas(registry)
    messages += check_middleware_settings()
    messages += check_schemas(registry)
    return messages


SCHEMA_ERROR = "workflow.E006"


def check_schemas(reg):
    """workflow.E006 for each step schema whose ``Meta.coerce_fields`` cannot work, and
    for a ``RESPONSE_SCHEMA_ERRORS`` setting that is not one of its values."""
    messages = []
    for step in reg:
        for label, schema in step_schemas(step.config):
            try:
                check_coerce_fields(bind(schema, None))
            except ImproperlyConfigured as exc:
                hint = "Meta.coerce_fields lists the fields that keep DRF's coercion"
                message = f"{step.name} {label}: {exc}"
                messages.append(checks.Error(message, hint=hint, obj=step.file, id=SCHEMA_ERROR))
    try:
        response_schema.mode()
    except ImproperlyConfigured as exc:
        hint = 'leave it unset, or set it to "raise" or "log"'
        setting = checks.Error(str(exc), hint=hint, obj="settings.WORKFLOW", id=SCHEMA_ERROR)
        messages.append(setting)
    return messages


def step_schemas(config):
    """``(label, schema)`` of each schema ``config`` declares whose types are strict."""
    declared = [("body_schema", getattr(config, "body_schema", None))]
    declared.append(("input", getattr(config, "input", None)))
    responses = getattr(config, "response_schema", {}).items()
    declared += [(f"response_schema[{status}]", schema) for status, schema in responses]
    return [(label, schema) for label, schema in declared if schema is not None]


def check_middleware_settings():
    try:
        middleware.check_settings()
    except ImproperlyConfigured as exc:
        hint = "list dotted paths to functions `def mw(request, ctx, next): ... return next()`"
        return [checks.Error(str(exc), hint=hint, obj="settings.WORKFLOW", id="workflow.E005")]
    return []


def check_topics(reg):
    emitted, subscribed = defaultdict(list), defaultdict(list)
    for step in reg:
        for emit in (*step.config.emits, *step.config.virtual_emits):
            emitted[emit.topic].append((step, emit.open))
        for topic in (*step.config.subscribe_topics, *step.config.virtual_subscribes):
            subscribed[topic].append(step)
    messages = []
    for topic, steps in sorted(subscribed.items()):
        if is_catch_all(topic) or any(matches(topic, sent) for sent in emitted):
            continue
        what = "the pattern {!r}, which matches no topic any step emits"
        if not is_pattern(topic):
            what = "{!r}, which no step emits"
        for step in steps:
            messages.append(
                checks.Warning(
                    f"{step.name} subscribes to {what.format(topic)}",
                    hint=f"check the topic's spelling in {step.file}, or add a "
                    f"step that emits {'a topic it matches' if is_pattern(topic) else repr(topic)}",
                    obj=step.file,
                    id="workflow.W001",
                )
            )
    # A monitor (subscribes=["*"]) hears every topic, and hides no topic that nobody
    # else subscribes to; a narrower pattern is a subscriber of what it matches.
    listening = [topic for topic in subscribed if not is_catch_all(topic)]
    for topic, emitters in sorted(emitted.items()):
        if any(matches(pattern, topic) for pattern in listening):
            continue
        for step in (step for step, open_end in emitters if not open_end):
            messages.append(
                checks.Warning(
                    f"{step.name} emits {topic!r}, which no step subscribes to",
                    hint=f"add a step with subscribes=[{topic!r}], or check the topic's "
                    f"spelling in {step.file}; if it is meant for subscribers outside this "
                    f"project, or later ones, declare it open: "
                    f"emits=[{{'topic': {topic!r}, 'open': True}}]",
                    obj=step.file,
                    id="workflow.W002",
                )
            )
    return messages


def check_paths(reg):
    seen = {}
    messages = []
    for step in reg.of_type("api"):
        shape = re.sub(r":[^/]+", ":", step.config.path.rstrip("/") or "/")
        key = (step.config.method, shape)
        if key in seen:
            other = seen[key]
            messages.append(
                checks.Error(
                    f"{step.name} ({step.file}) and {other.name} ({other.file}) both "
                    f"answer {step.config.method} {step.config.path}",
                    hint="give one of them another path or method",
                    obj=step.file,
                    id="workflow.E004",
                )
            )
        else:
            seen[key] = step
    return messages


def check_flows(reg):
    members = defaultdict(list)
    for step in reg:
        for flow in step.config.flows:
            members[flow].append(step)
    return [
        checks.Warning(
            f"flow {flow!r} has only one step, {steps[0].name}",
            hint="check the flow name's spelling; steps of one flow share the name",
            obj=steps[0].file,
            id="workflow.W003",
        )
        for flow, steps in sorted(members.items())
        if len(steps) == 1
    ]


def emit_edges(reg):
    """``{step: [(topic, subscriber, conditional)]}``: where each step's emits go (emits
    the runtime delivers; virtual ones are only drawn)."""
    edges = defaultdict(list)
    for step in reg:
        for emit in step.config.emits:
            for subscriber in reg.subscribers(emit.topic):
                edges[step.name].append((emit.topic, subscriber.name, emit.conditional))
    return edges


def cycles(reg):
    """The step graph's cycles, as lists of step names: each strongly connected group of
    steps (Tarjan's algorithm), and each step whose emits come back to itself."""
    edges = emit_edges(reg)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(name):
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for _, target, _ in edges[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            loops = len(group) > 1 or any(t == name for _, t, _ in edges[name])
            if loops:
                found.append(sorted(group))

    for step in reg:
        if step.name not in index:
            visit(step.name)
    return found, edges


def check_cycles(reg):
    found, edges = cycles(reg)
    messages = []
    for group in found:
        inside = [
            (source, topic, target, conditional)
            for source in group
            for topic, target, conditional in edges[source]
            if target in group
        ]
        if any(conditional for *_, conditional in inside):
            continue  # a conditional emit on the cycle is how it ends
        shown = "; ".join(f"{s} emits {t!r} to {d}" for s, t, d, _ in inside)
        first = reg.get(group[0])
        messages.append(
            checks.Warning(
                f"steps {', '.join(group)} form a cycle ({shown}): one event can cause the "
                f"next without end, until an emit is deeper than WORKFLOW['MAX_DEPTH'] "
                f"({workflow_settings.MAX_DEPTH}) and fails",
                hint="break the cycle; or, if it ends by itself (a step emits only while "
                "work is left), declare that emit conditional: "
                "emits=[{'topic': ..., 'conditional': True}]",
                obj=first.file,
                id="workflow.W004",
            )
        )
    return messages


def check_emit_schemas(reg):
    return [
        checks.Warning(
            f"{emitter.name}'s schema for {emit.topic!r} ({schema_name(emit.schema)}) cannot "
            f"satisfy {subscriber.name}'s input ({schema_name(subscriber.config.input)}): "
            f"{'; '.join(problems)}",
            hint=f"declare in {schema_name(emit.schema)} the fields "
            f"{schema_name(subscriber.config.input)} requires, with their types (or relax "
            "the input); every emit of data it refuses is refused",
            obj=emitter.file,
            id="workflow.W005",
        )
        for emitter, emit, subscriber, problems in unmet_inputs(reg)
    ]
