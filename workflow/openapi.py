"""OpenAPI 3 for API steps, by drf-spectacular, from each step's own config.

A path's DRF view serves the steps declared on it, one per method, so this schema
class reads the step of the method being described: ``operationId`` and summary are
the step's name, the description is its ``description``, tags are its ``flows``;
``:params`` in its path are path parameters, ``query_params`` and ``body_schema``
(serializers) are the query parameters and the JSON request body, and
``response_schema`` (``{status: serializer}``) the responses, with the 400 the view
answers when the body or query fails validation. ``x-emits`` lists the
topics the step may emit (their payloads are in the AsyncAPI document, ``asyncapi``).

drf-spectacular finds it through ``StepView.schema``; no decorator is needed.
"""

from http import HTTPStatus

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.serializers import ListSerializer

NO_RESPONSE_SCHEMA = OpenApiResponse(
    description="The step declares no response_schema; the body is whatever it returns."
)
INVALID_REQUEST = OpenApiResponse(
    response={
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "example": {"email": ["Enter a valid email address."]},
    },
    description="The body or query failed validation: a list of messages per field.",
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
        if query is None:
            return []
        return [query.child if isinstance(query, ListSerializer) else query]

    def get_request_serializer(self):
        return self.config.body_schema

    def _get_request_body(self, direction="request"):
        if self.config.body_schema is None:
            return None  # no body is documented for a step that declares none
        return super()._get_request_body(direction)

    def get_response_serializers(self):
        responses = {
            str(code): OpenApiResponse(response=schema, description=phrase(code))
            for code, schema in sorted(self.config.response_schema.items())
        }
        validated = self.config.body_schema is not None or self.config.query_params is not None
        if validated and "400" not in responses:
            responses["400"] = INVALID_REQUEST
        return dict(sorted(responses.items())) or {"default": NO_RESPONSE_SCHEMA}

    def get_extensions(self):
        emits = sorted(self.config.emit_topics)
        return {"x-emits": emits} if emits else {}
