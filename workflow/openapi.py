"""OpenAPI 3 for API steps, by drf-spectacular, from each step's own config.

A path's DRF view serves the steps declared on it, one per method, so this schema
class reads the step of the method being described: ``operationId`` and summary are
the step's name, the description is its ``description``, tags are its ``flows``;
``:params`` in its path are path parameters, ``query_params`` and ``body_schema``
(serializers) are the query parameters and the JSON request body, and
``response_schema`` (``{status: serializer}``) the responses; a text field's pattern says
what DRF refuses or trims (``openapi_fields``). The answers the framework
gives around the handler (a refused body, a NUL in a path parameter, an oversized
body, an idempotency key reused, a failed handler...) are added with their shared
shapes (``openapi_answers``); where a step declares the same status, either body is
documented (``anyOf``). The optional ``Idempotency-Key`` request header and the
``X-Trace-Id`` and ``Idempotent-Replayed`` response headers are documented where they
apply. ``x-emits`` lists the topics the step may emit (their payloads are in the
AsyncAPI document, ``asyncapi``).

drf-spectacular finds it through ``StepView.schema``; no decorator is needed.
"""

from http import HTTPStatus

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.serializers import ListSerializer

from . import idempotency
from .openapi_answers import answers, components
from .openapi_fields import text_pattern

TRACE_HEADER = "X-Trace-Id"  # views.TRACE_HEADER (views imports this module)
TRACED = "The trace of this call, as the workbench's Traces show it."
NO_RESPONSE_SCHEMA = OpenApiResponse(
    description="The step declares no response_schema; the body is whatever it returns."
)
IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    {
        "type": "string",
        # 1 to 255 printable ASCII characters; spaces or tabs around them are not part of
        # the value (HTTP strips them before the server reads the header).
        "pattern": f"^[ \\t]*[!-~](?:[ -~]{{0,{idempotency.MAX_KEY_LENGTH - 2}}}[!-~])?[ \\t]*$",
    },
    OpenApiParameter.HEADER,
    description="Run the step once for this key: a repeat gets the stored response.",
)


def phrase(code):
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"Status {code}"


class StepAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, reading the API step of the described method."""

    @property
    def step(self):
        return self.view.steps[self.method]

    @property
    def config(self):
        return self.step.config

    def get_operation_id(self):
        return self.step.name

    def get_summary(self):
        return self.step.name

    def get_description(self):
        return self.config.description

    def get_tags(self):
        return list(self.config.flows) or super().get_tags()

    def get_override_parameters(self):
        # A serializer here is exploded into one query parameter per field.
        query = self.config.query_params
        if isinstance(query, ListSerializer):
            query = query.child
        return [*([query] if query else []), IDEMPOTENCY_KEY, *self.response_headers()]

    def get_request_serializer(self):
        return self.config.body_schema

    def _get_request_body(self, direction="request"):
        if self.config.body_schema is None:
            return None  # no body is documented for a step that declares none
        return super()._get_request_body(direction)

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        text_pattern(field, schema)  # what DRF refuses or trims before the lengths count

    def get_response_serializers(self):
        responses = {
            str(code): OpenApiResponse(response=schema, description=phrase(code))
            for code, schema in sorted(self.config.response_schema.items())
        }
        return responses or {"default": NO_RESPONSE_SCHEMA}

    def _get_response_bodies(self, direction="response"):
        """The step's declared responses, and the framework's answers merged in."""
        responses = super()._get_response_bodies(direction)
        for name, schema in components().items():
            self.registry.register_on_missing(
                ResolvedComponent(name, ResolvedComponent.SCHEMA, schema, f"workflow.{name}")
            )
        for answer in answers(self.config, self.view):
            response = OpenApiResponse(answer.schema, description=answer.description)
            framework = self._get_response_for_code(response, answer.status)
            responses[answer.status] = either(responses.get(answer.status), framework)
        return dict(sorted(responses.items()))

    def response_headers(self):
        """X-Trace-Id on every answer (a refused request is traced too),
        Idempotent-Replayed on what a repeat can get, Retry-After on 429."""
        declared = [str(code) for code in self.config.response_schema] or ["default"]
        framework = [answer.status for answer in answers(self.config, self.view)]
        stored = [code for code in declared if code == "default" or int(code) < 500]
        return [
            trace_header(sorted(set(framework) | set(declared))),
            OpenApiParameter(
                idempotency.REPLAYED_HEADER,
                {"type": "string", "enum": ["true"]},
                OpenApiParameter.HEADER,
                description="This is the stored response of an earlier request with "
                "the same Idempotency-Key; the step did not run again.",
                response=stored,
            ),
            OpenApiParameter(
                "Retry-After",
                {"type": "string"},
                OpenApiParameter.HEADER,
                description="Seconds to wait before retrying.",
                response=["429"],
            ),
        ]

    def get_extensions(self):
        emits = sorted(self.config.emit_topics)
        return {"x-emits": emits} if emits else {}


def trace_header(codes):
    return OpenApiParameter(
        TRACE_HEADER,
        {"type": "string"},
        OpenApiParameter.HEADER,
        required=True,
        description=TRACED,
        response=codes,
    )


def either(declared, framework):
    """One response for a status both the step and the framework answer: either body."""
    if declared is None:
        return framework
    content = {}
    for media_type, body in framework["content"].items():
        ours = declared.get("content", {}).get(media_type, {}).get("schema")
        both = {"anyOf": [ours, body["schema"]]}
        content[media_type] = body if ours in (None, body["schema"]) else {"schema": both}
    description = f"{declared['description']}; or: {framework['description']}"
    return {**declared, "description": description, "content": content}
