from rest_framework import serializers

from workflow.steps import ApiStep

TOPICS = [
    "probe.flaky",
    "probe.fragile",
    "probe.slow",
    "probe.count",
    "probe.fifo",
    "probe.hang",
    "probe.steady",
    "probe.loop",
    "probe.stuck",
    "probe.part.a",
    "probe.part.b",
    "probe.part.c",
    "probe.one_at_a_time",
    "probe.throttled",
    "probe.debounced",
]


class EmitSerializer(serializers.Serializer):
    topic = serializers.ChoiceField(choices=TOPICS)
    items = serializers.ListField(child=serializers.DictField(), max_length=1000)
    delay = serializers.FloatField(required=False, min_value=0)


config = ApiStep(
    name="ProbeEmit",
    description="Emits each item on a probe topic, in order, in one transaction",
    method="POST",
    path="/probe/emit",
    flows=["probe"],
    emits=TOPICS,
    body_schema=EmitSerializer,
)


def handler(request, ctx):
    for item in request.body["items"]:
        ctx.emit(request.body["topic"], item, delay=request.body.get("delay"))
    return {"status": 202, "body": {"emitted": len(request.body["items"]), "trace": ctx.trace_id}}
