"""The answers the framework gives for an API step, besides the step's own, for OpenAPI.

Whatever its handler returns, a step's method can also be answered by the framework,
before or around the handler (see ``views``), with one of these shared shapes, which
the document has as components (``#/components/schemas/...``):

- ``FieldErrors`` (400): the body, the query or the ``Idempotency-Key`` header is
  refused, with a list of messages per field; nested fields nest; what concerns no
  one field (a body that is not JSON, or not an object) is under ``non_field_errors``
  (DRF's ``NON_FIELD_ERRORS_KEY``).
- ``Detail`` (``{"detail": ...}``, DRF's shape): 401 and 403 where the step's
  authentication or permission classes can refuse, 404 for a path parameter holding
  a NUL character, 406 for an ``Accept`` header JSON cannot satisfy, 413 for a body
  over ``WORKFLOW["MAX_BODY_SIZE"]``, 415 for a body that is not JSON, 429 where the
  step has throttle classes.
- ``IdempotencyError`` (``{"error": ...}``): 409 when a concurrent request with the
  same ``Idempotency-Key`` could not be answered from the winner's response, 422 when
  the key was used with another request.
- ``ServerError`` (``{"error", "traceId"}``): 500 when the handler or its middleware
  raised.

Every answer of a step's view carries the ``X-Trace-Id`` header: a refused request is
traced too (``views.trace_refusal``).
"""

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings

from .conf import workflow_settings


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def components():
    """{name: schema} of the shared answers."""
    key = api_settings.NON_FIELD_ERRORS_KEY
    return {
        "FieldErrors": {
            "type": "object",
            "description": (
                "What was refused, by field: a list of messages per field; the errors "
                "of a nested object nest, those of a list's items are keyed by index. What "
                f"concerns no one field (a body that is not JSON) is under {key!r}."
            ),
            "additionalProperties": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, ref("FieldErrors")]
            },
            "example": {"email": ["Enter a valid email address."]},
        },
        "Detail": text_object("detail", "Not found."),
        "IdempotencyError": text_object(
            "error",
            "This Idempotency-Key was already used with a different request (method, "
            "path or body); send a new key for a new request.",
        ),
        "ServerError": {
            **text_object("error", "Internal Server Error"),
            "example": {
                "error": "Internal Server Error",
                "traceId": "5f0c9d4e2b7a4c1e9d3f6a8b0c2e4f61",
            },
            "properties": {"error": {"type": "string"}, "traceId": {"type": "string"}},
            "required": ["error", "traceId"],
            "description": "The step failed; its trace (in the workbench) has the error.",
        },
    }


def text_object(name, example):
    return {
        "type": "object",
        "properties": {name: {"type": "string"}},
        "required": [name],
        "example": {name: example},
    }


@dataclass(frozen=True)
class Answer:
    status: str
    schema: dict
    description: str


def answers(config, view):
    """The framework's answers for the API step ``config``, served by ``view``."""
    found = [
        Answer("400", ref("FieldErrors"), BAD_REQUEST),
        Answer("406", ref("Detail"), "The Accept header allows no JSON answer."),
        Answer("409", ref("IdempotencyError"), RACE),
        Answer("413", ref("Detail"), too_large()),
        Answer("415", ref("Detail"), "The body is not application/json."),
        Answer("422", ref("IdempotencyError"), REUSED),
        Answer("500", ref("ServerError"), "The handler or a middleware raised."),
    ]
    if config.path_params:
        found.append(Answer("404", ref("Detail"), "A path parameter holds a NUL character."))
    authenticators = policy(config, view, "authentication_classes")
    if authenticators and defines_authenticate_header(authenticators[0]):
        found.append(Answer("401", ref("Detail"), "Not authenticated."))
    permissions = policy(config, view, "permission_classes")
    if authenticators or any(permission is not AllowAny for permission in permissions):
        found.append(Answer("403", ref("Detail"), "Refused by the step's permission classes."))
    if policy(config, view, "throttle_classes"):
        found.append(Answer("429", ref("Detail"), "Throttled; Retry-After says when to retry."))
    return sorted(found, key=lambda answer: answer.status)


BAD_REQUEST = (
    "The body (not JSON, or refused by body_schema), the query (refused by query_params) "
    "or the Idempotency-Key header was refused: a list of messages per field."
)
RACE = (
    "A concurrent request with the same Idempotency-Key ran the step first and its "
    "response cannot be read yet; retry to get it."
)
REUSED = "The Idempotency-Key was already used with another method, path or body."


def too_large():
    return f"The body is larger than {workflow_settings.MAX_BODY_SIZE} bytes."


def policy(config, view, name):
    """The step's DRF policy classes, else the view's (the project's defaults)."""
    declared = getattr(config, name, None)
    return list(getattr(view, name) if declared is None else declared)


def defines_authenticate_header(authentication_class):
    """Whether DRF answers 401 (with WWW-Authenticate) rather than 403 for this class."""
    method = getattr(authentication_class, "authenticate_header", None)
    return method is not None and method is not BaseAuthentication.authenticate_header
