"""Every answer an API step gives is in the OpenAPI document: its status is documented
for the operation, its body validates against the documented schema and the headers
documented as required are sent. The framework's own answers (refused body, NUL in a
path parameter, oversized body, idempotency key reused, failed handler...) included."""

import types

import pytest
from django.urls import include, path
from openapi_schema_validator import OAS30Validator
from rest_framework import authentication, permissions, serializers, throttling

import workflow.urls  # noqa: F401  (routes are built from the real registry, before any swap)
from users import services
from workflow.steps import ApiStep
from workflow.views import view_for

VALID = {"name": "John Doe", "email": "john@example.com", "password": "securepass123"}


def document(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def assert_documented(doc, method, template, response):
    """``response`` is what the document says ``method template`` may answer."""
    responses = doc["paths"][template][method.lower()]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method} {template} answered undocumented {status}"
    documented = responses[status]
    schema = documented["content"]["application/json"]["schema"]
    OAS30Validator({**schema, "components": doc["components"]}).validate(response.json())
    for name, header in documented.get("headers", {}).items():
        assert name in response or not header.get("required"), f"{status} without {name}"


REGISTER = ("POST", "/users/register")


def post(api, body, content_type="application/json", **headers):
    return api.generic("POST", "/users/register", body, content_type=content_type, **headers)


ANSWERS = {
    "malformed JSON": (lambda api: post(api, b'{"name": "John", '), 400),
    "JSON that is not an object": (lambda api: post(api, b"[1, 2]"), 400),
    "a field refused": (
        lambda api: api.post(REGISTER[1], {**VALID, "email": "x"}, format="json"),
        400,
    ),
    "JSON nested too deep": (lambda api: post(api, b"[" * 200 + b"]" * 200), 400),
    "a bad Idempotency-Key": (
        lambda api: api.post(REGISTER[1], VALID, format="json", HTTP_IDEMPOTENCY_KEY=""),
        400,
    ),
    "a body that is not JSON": (lambda api: post(api, b"name=x", "text/plain"), 415),
    "an Accept that JSON cannot satisfy": (
        lambda api: api.post(REGISTER[1], VALID, format="json", HTTP_ACCEPT="text/html"),
        406,
    ),
    "a body over the limit": (lambda api: post(api, b'{"name": "' + b"J" * 1_100_000 + b'"}'), 413),
    "created": (lambda api: api.post(REGISTER[1], VALID, format="json"), 201),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", ANSWERS, ids=list(ANSWERS))
def test_each_answer_of_register_is_documented(api, case):
    """Refused, too large, unacceptable, or created: the answer is as documented."""
    send, status = ANSWERS[case]
    response = send(api)
    assert response.status_code == status, response.content
    assert_documented(document(api), *REGISTER, response)


@pytest.mark.django_db
def test_a_taken_email_and_a_reused_idempotency_key_are_documented(api):
    """409 (the step's own) and 422 (a key sent again with another body) are documented,
    with their X-Trace-Id."""
    api.post("/users/register", VALID, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    taken = api.post("/users/register", VALID, format="json")
    reused = api.post(
        "/users/register", {**VALID, "name": "Jane"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (taken.status_code, reused.status_code) == (409, 422)
    doc = document(api)
    assert_documented(doc, *REGISTER, taken)
    assert_documented(doc, *REGISTER, reused)


@pytest.mark.django_db
def test_a_failed_handler_answers_the_documented_500(api, monkeypatch):
    """A handler that raises answers 500 {"error", "traceId"} with X-Trace-Id."""

    def fail(*args):
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(services, "register_user", fail)
    response = api.post("/users/register", VALID, format="json")
    assert response.status_code == 500
    assert_documented(document(api), *REGISTER, response)
    assert response.json()["traceId"] == response["X-Trace-Id"]


@pytest.mark.django_db
@pytest.mark.parametrize("user_id", ["nobody", "a%00b"])
def test_both_404s_of_the_status_step_are_documented(api, user_id):
    """The step's own 404 ({"error"}) and the framework's for a NUL ({"detail"}) both
    validate against the documented 404."""
    response = api.get(f"/users/{user_id}/status")
    assert response.status_code == 404
    assert_documented(document(api), "GET", "/users/{userId}/status", response)


class Never(throttling.BaseThrottle):
    def allow_request(self, request, view):
        return False

    def wait(self):
        return 30


def answer(request, ctx):
    return {"status": 200, "body": {}}


@pytest.fixture
def guarded(steps, settings):
    """Steps whose DRF policies refuse: Basic auth (401), session auth (403), a throttle
    (429); and one with none."""
    declared = [
        ApiStep(
            name="Basic",
            method="GET",
            path="/basic",
            authentication_classes=[authentication.BasicAuthentication],
            permission_classes=[permissions.IsAuthenticated],
        ),
        ApiStep(
            name="Session",
            method="GET",
            path="/session",
            authentication_classes=[authentication.SessionAuthentication],
            permission_classes=[permissions.IsAuthenticated],
        ),
        ApiStep(name="Throttled", method="GET", path="/throttled", throttle_classes=[Never]),
        ApiStep(name="Open", method="GET", path="/open"),
    ]
    registered = [steps.add(config, answer, "", "guarded_step.py") for config in declared]
    urlconf = types.ModuleType("openapi_answers_test_urlconf")
    urlconf.urlpatterns = [path("api/", include("workflow.api_urls"))] + [
        path(s.config.route, view_for({s.config.method: s})) for s in registered
    ]
    settings.ROOT_URLCONF = urlconf


class AddressSerializer(serializers.Serializer):
    city = serializers.CharField()


class ShipmentSerializer(serializers.Serializer):
    address = AddressSerializer()
    tags = serializers.ListField(child=serializers.CharField(max_length=3))
    parcels = AddressSerializer(many=True)


@pytest.mark.django_db
def test_nested_field_errors_are_documented(api, guarded, steps, settings):
    """Errors of a nested object, of a list's items and of a list of objects nest under
    their field, as the documented FieldErrors say."""
    step = steps.add(
        ApiStep(name="Ship", method="POST", path="/ship", body_schema=ShipmentSerializer),
        answer,
        "",
        "ship_step.py",
    )
    settings.ROOT_URLCONF.urlpatterns.append(path("ship", view_for({"POST": step})))
    body = {"address": {}, "tags": ["ok", "too long"], "parcels": [{"city": "x"}, {}]}
    response = api.post("/ship", body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert (set(errors["address"]), set(errors["tags"]), set(errors["parcels"])) == (
        {"city"},
        {"1"},
        {"1"},
    )
    assert_documented(document(api), "POST", "/ship", response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "status"), [("/basic", 401), ("/session", 403), ("/throttled", 429)]
)
def test_refusals_of_drf_policies_are_documented_where_a_step_has_them(api, guarded, url, status):
    """401 where the authentication class asks for credentials, 403 where it cannot,
    429 (with Retry-After) where the step throttles; a step with none documents none."""
    response = api.get(url)
    assert response.status_code == status
    doc = document(api)
    assert_documented(doc, "GET", url, response)
    assert not {"401", "403", "429"} & set(doc["paths"]["/open"]["get"]["responses"])
    if status == 429:
        assert response["Retry-After"] == "30"
        assert "Retry-After" in doc["paths"][url]["get"]["responses"]["429"]["headers"]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [("name", 12345), ("password", 12345678)])
def test_a_number_where_the_document_says_string_is_refused(api, field, value):
    """A JSON number for a documented string field answers the documented 400."""
    response = api.post("/users/register", {**VALID, field: value}, format="json")
    assert response.status_code == 400
    assert_documented(document(api), *REGISTER, response)
