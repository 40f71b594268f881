"""DRF dispatch of API steps.

Each path gets one DRF view serving the methods its steps declare (others: 405). A
request is checked for size (413), its body parsed (400 on bad JSON) and validated
by the step's ``body_schema`` (400 naming each field), its query by ``query_params``;
then the handler runs inside a transaction, so its state writes, emits and model
writes commit together or not at all. The body it answers is checked against its
``response_schema`` (see ``response_schema``). Events it emits are sent to the workers
only after that commit, and its log lines are stored either way. A request with an
``Idempotency-Key`` header runs its step once; repeats get the stored response (see
``idempotency``).

A step's ``permission_classes``, ``authentication_classes`` and ``throttle_classes``
replace DRF's defaults for its method, checked before the body is read (401/403/429);
its middleware (``middleware``) wraps the handler, inside the transaction. Handlers
and middleware may be ``async def`` (see ``aio``).
"""

import json
import logging
import traceback
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.http import HttpResponseBase
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import idempotency, recording
from .aio import Chain
from .conf import workflow_settings
from .context import Context
from .errors import ResponseSchemaError
from .logs import redact
from .middleware import chain_for
from .models import Run, Trace, new_trace_id
from .openapi import StepAutoSchema
from .parsers import JSONParser
from .reporting import StepReporterFilter
from .response_schema import check_response
from .schemas import validate

logger = logging.getLogger("workflow")
TRACE_HEADER = "X-Trace-Id"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


@dataclass
class ApiRequest:
    """What an API step's handler gets as ``request`` (Motia's ``req``)."""

    path_params: dict[str, str]
    """The path's ``:name`` parameters: ``/users/:userId`` gives ``{"userId": ...}``."""
    query_params: dict[str, Any]
    """The query string, validated by the step's ``query_params`` serializer if it has one."""
    body: Any
    """The JSON body, validated by the step's ``body_schema`` if it has one."""
    headers: dict[str, str]
    """The request's headers, by lower-case name."""
    method: str
    user: Any = None
    """What DRF authenticated (``request.user``)."""
    raw: Any = field(default=None, repr=False)
    """DRF's ``Request`` (None in ``call_handler``)."""


def plain_query(query_dict):
    return {k: v[0] if len(v) == 1 else v for k, v in query_dict.lists()}


class StepView(APIView):
    """Serves the API steps declared on one path, by method."""

    steps: dict[str, Any] = {}  # method -> RegisteredStep, set by as_view()
    # A bad body is a 400, whatever the project's DRF settings say (see parsers).
    parser_classes = [JSONParser]
    schema = StepAutoSchema()  # OpenAPI from the steps' configs (drf-spectacular)

    def step_for(self, method):
        """The step serving ``method`` (HEAD is served by the GET step), or None."""
        return self.steps.get(method) or (self.steps.get("GET") if method == "HEAD" else None)

    def initialize_request(self, request, *args, **kwargs):
        self.step_method = request.method  # authenticators are chosen before self.request is set
        self.started_at = timezone.now()
        request.exception_reporter_filter = StepReporterFilter()
        return super().initialize_request(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        """Every answer of a step carries a trace id: one refused before the handler ran
        gets a trace and a run of its own here (``trace_refusal``). A method no step
        serves (405, OPTIONS) is no call of a step and is not traced."""
        response = super().finalize_response(request, response, *args, **kwargs)
        step = self.step_for(request.method)
        if step is not None and not response.has_header(TRACE_HEADER):
            trace_refusal(step, response, self.started_at)
        return response

    def _policy(self, name):
        """The current method's step's DRF policy classes, else the view's defaults."""
        request = getattr(self, "request", None)
        step = self.step_for(getattr(request, "method", None) or getattr(self, "step_method", ""))
        classes = getattr(step.config, name, None) if step else None
        return getattr(self, name) if classes is None else classes

    def get_permissions(self):
        return [permission() for permission in self._policy("permission_classes")]

    def get_authenticators(self):
        return [auth() for auth in self._policy("authentication_classes")]

    def get_throttles(self):
        return [throttle() for throttle in self._policy("throttle_classes")]

    def check_body_size(self, request):
        limit = workflow_settings.MAX_BODY_SIZE
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if (declared.isdigit() and int(declared) > limit) or len(request.body) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")

    # An error page shows these as stars, here and in the frames this one calls (Django
    # looks up the stack for the marks): the body may hold a password or its hash, the
    # headers a token. ``reporting`` keeps the marks in DEBUG too.
    @sensitive_variables("body", "query", "api_request")
    def serve(self, request, **path_params):
        step = self.step_for(request.method)
        if any("\x00" in value for value in path_params.values()):
            raise exceptions.NotFound()  # no such resource; PostgreSQL refuses NUL in text
        self.check_body_size(request)
        claim = idempotency.claim(step, request)  # None without an Idempotency-Key header
        if claim is not None and (record := claim.stored()) is not None:
            return replay(claim, record)
        config = step.config
        body = request.data if request.body else None
        if config.body_schema is not None:
            body = validate(config.body_schema, body if body is not None else {})
        query = plain_query(request.query_params)
        if config.query_params is not None:
            query = validate(config.query_params, query, strict=False)
        api_request = ApiRequest(
            path_params=path_params,
            query_params=query,
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            method=request.method,
            user=getattr(request, "user", None),
            raw=request,
        )
        return run_api_step(step, api_request, claim)


def run_api_step(step, api_request, claim=None):
    """Call the middleware and handler in a transaction; record the run; turn the result
    into a response.

    With a ``claim`` (an idempotency key), the response is stored in that transaction.
    Once the transaction has ended, nothing turns the answer into another: the run is
    recorded by ``recording``, which never raises.
    """
    trace_id = new_trace_id()
    ctx = Context(step, trace_id, held=False)
    run = Run(step_name=step.name, trace_id=trace_id, started_at=timezone.now())
    try:
        with transaction.atomic():
            links = [*chain_for(step.config), step.handler]
            result = Chain(links, (api_request,), ctx)()
            response = to_response(step, result, ctx)
            if claim is not None:
                claim.store(response, trace_id)  # KeyTaken: rolls this transaction back
        run.status = Run.Status.of_answer(response.status_code)
    except idempotency.KeyTaken as exc:  # its work undone: failed, whatever the answer
        run.status, run.error = Run.Status.FAILED, str(exc)
        response = answer_race_loser(claim)
    except Exception as exc:
        run.status = Run.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"
        run.traceback = traceback.format_exc()
        logger.exception("API step %s failed (trace %s)", step.name, trace_id)
        response = Response(
            {"error": public_error(exc), "traceId": trace_id},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    run.status_code = response.status_code
    run.finished_at = timezone.now()
    record_run(run, Trace(trace_id=trace_id, entry_step=step.name, started_at=run.started_at), ctx)
    if not response.has_header(idempotency.REPLAYED_HEADER):  # a replay keeps its trace id
        response[TRACE_HEADER] = trace_id
    return response


def public_error(exc):
    """What a 500 says: "Internal Server Error", or the broken response_schema (whose
    error is raised in development and tests only)."""
    return str(exc) if isinstance(exc, ResponseSchemaError) else "Internal Server Error"


def record_run(run, trace, ctx):
    """Record the API call's run, its trace and its log lines (on PostgreSQL in one
    statement), then announce them; never raises (see ``recording``)."""
    ctx.logger.run = run
    recording.record(recording.ApiCall(run, trace, ctx.logger.take(), ctx.logger))


def trace_refusal(step, response, started_at):
    """Record a request refused before its handler ran (a bad body, 401/403/404/413/415/
    429) as a refused run of ``step``, with a trace of its own, and put the trace id on
    ``response``. The run's error is the status and the answer's messages, with fields
    named like secrets left out; the request's body is never stored."""
    trace_id = new_trace_id()
    run = Run(
        step_name=step.name,
        trace_id=trace_id,
        status=Run.Status.of_answer(response.status_code),
        status_code=response.status_code,
        started_at=started_at,
        finished_at=timezone.now(),
        error=refusal_error(response),
    )
    trace = Trace(trace_id=trace_id, entry_step=step.name, started_at=started_at)
    recording.record(recording.ApiCall(run, trace))
    response[TRACE_HEADER] = trace_id


def refusal_error(response):
    """``400 Bad Request: {"email": ["Invalid email address"]}``, at most 2000 characters,
    in ASCII JSON: no NUL or lone surrogate echoed from the request reaches the database."""
    detail = json.dumps(redact(getattr(response, "data", None)), default=str)
    return f"{response.status_code} {response.reason_phrase}: {detail}"[:2000]


def replay(claim, record):
    """Answer a repeated request from its stored record, without running the handler.
    A replay carries the first request's trace id; a 422 (another request) gets a trace
    of its own, as a refusal."""
    response = claim.answer(record)  # the stored response, or 422 for another request
    if response.has_header(idempotency.REPLAYED_HEADER):
        response[TRACE_HEADER] = record.trace_id
    return response


def answer_race_loser(claim):
    """The winner's stored response, or 409 if it cannot be read."""
    record = claim.stored()
    if record is not None:
        return replay(claim, record)
    return Response(
        {
            "error": f"Another request with this {idempotency.HEADER} was processed at the "
            "same time; retry to get its response."
        },
        status=status.HTTP_409_CONFLICT,
    )


def to_response(step, result, ctx):
    if isinstance(result, HttpResponseBase):
        return result
    if not isinstance(result, dict) or not isinstance(result.get("status"), int):
        raise TypeError(
            f"API step {step.name!r} ({step.file}) must return "
            f"{{'status': <int>, 'body': ...}}, not {result!r}"
        )
    body = result.get("body")
    check_response(step, result["status"], body, ctx)
    return Response(body, status=result["status"], headers=result.get("headers"))


def view_for(steps_by_method):
    """A view serving ``steps_by_method`` (e.g. ``{"GET": step}``); others get 405."""
    methods = {method.lower(): StepView.serve for method in steps_by_method}
    view_class = type("StepView", (StepView,), methods)
    # A form body (which the step refuses) would show on an error page: hide it all.
    return sensitive_post_parameters()(view_class.as_view(steps=steps_by_method))
