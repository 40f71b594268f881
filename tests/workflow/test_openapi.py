"""OpenAPI 3 for API steps (drf-spectacular, from each step's config), and the Swagger UI
and ReDoc pages, served from installed static files only."""

import io
import re
import types

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import include, path
from openapi_spec_validator import validate
from rest_framework import authentication, permissions, serializers

import workflow.urls  # noqa: F401  (routes are built from the real registry, before any swap)
from workflow.steps import ApiStep
from workflow.views import view_for

# What the framework may answer for any API step (a path parameter adds 404).
FRAMEWORK_STATUSES = {"400", "406", "409", "413", "415", "422", "500"}


def schema_of(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content
    return response.json()


class LookupSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    status = serializers.ChoiceField(choices=["open", "shipped"])


class ItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.IntegerField()
    note = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()


class NewOrderSerializer(serializers.Serializer):
    item = serializers.CharField(max_length=40)
    quantity = serializers.IntegerField(min_value=1)


def answer(request, ctx):
    return {"status": 200, "body": {}}


@pytest.fixture
def shop(steps, settings):
    """Three steps on two paths, served with the API documents."""
    declared = [
        ApiStep(
            name="ListItems",
            description="Items of an order",
            method="GET",
            path="/orders/:orderId/items/:itemId",
            flows=["shop"],
            query_params=LookupSerializer,
            response_schema={200: ItemSerializer(many=True), 404: ErrorSerializer},
        ),
        ApiStep(
            name="PlaceOrder",
            method="POST",
            path="/orders",
            flows=["shop", "billing"],
            emits=["order.placed"],
            body_schema=NewOrderSerializer,
            response_schema={201: ItemSerializer},
            authentication_classes=[authentication.BasicAuthentication],
            permission_classes=[permissions.IsAuthenticated],
        ),
        ApiStep(name="CancelOrders", method="DELETE", path="/orders"),
    ]
    registered = [steps.add(config, answer, "", "shop_step.py") for config in declared]
    by_route = {}
    for step in registered:
        by_route.setdefault(step.config.route, {})[step.config.method] = step
    urlconf = types.ModuleType("openapi_test_urlconf")
    urlconf.urlpatterns = [path("api/", include("workflow.api_urls"))] + [
        path(route, view_for(methods)) for route, methods in by_route.items()
    ]
    settings.ROOT_URLCONF = urlconf
    return registered


def test_the_projects_schema_validates_as_openapi_3(api):
    """/api/schema/ for the project's own steps is a valid OpenAPI 3 document."""
    schema = schema_of(api)
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert {"/users/register", "/users/{userId}/status"} <= set(schema["paths"])


def test_spectacular_validate_passes_without_warnings():
    """`manage.py spectacular --validate --fail-on-warn` passes for the project's steps."""
    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out
    )
    assert '"RegisterUser"' in out.getvalue()


def test_path_params_query_params_and_responses_come_from_the_config(api, shop):
    """`:params` are required path parameters; query_params fields are query parameters
    with their constraints; response_schema maps each status, many=True as an array."""
    schema = schema_of(api)
    validate(schema)
    operation = schema["paths"]["/orders/{orderId}/items/{itemId}"]["get"]
    assert operation["operationId"] == "ListItems"
    assert operation["description"] == "Items of an order"
    assert operation["tags"] == ["shop"]
    params = {(p["in"], p["name"]): p for p in operation["parameters"]}
    assert set(params) == {
        ("path", "orderId"),
        ("path", "itemId"),
        ("query", "limit"),
        ("query", "status"),
        ("header", "Idempotency-Key"),
    }
    assert params["path", "orderId"]["required"] is True
    limit = params["query", "limit"]
    assert (limit["schema"]["type"], limit["schema"]["minimum"], limit["schema"]["maximum"]) == (
        "integer",
        1,
        100,
    )
    assert not limit.get("required", False)
    assert params["query", "status"]["required"] is True
    assert params["query", "status"]["schema"]["enum"] == ["open", "shipped"]
    responses = operation["responses"]
    assert set(responses) == {"200", "404"} | FRAMEWORK_STATUSES
    ok = responses["200"]["content"]["application/json"]["schema"]
    assert ok == {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}
    assert responses["404"]["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/Error"}, {"$ref": "#/components/schemas/Detail"}]
    }
    item = schema["components"]["schemas"]["Item"]
    assert set(item["properties"]) == set(ItemSerializer().fields)
    assert item["properties"]["note"]["nullable"] is True


def test_body_schema_is_the_request_body_and_emits_flows_and_auth_are_shown(api, shop):
    """body_schema is the required JSON body; flows are tags; emits are x-emits; the
    step's authentication class is its security requirement."""
    schema = schema_of(api)
    operation = schema["paths"]["/orders"]["post"]
    assert operation["requestBody"]["required"] is True
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/NewOrder"}
    new_order = schema["components"]["schemas"]["NewOrder"]
    item = re.compile(new_order["properties"]["item"]["pattern"])  # max_length=40, trimmed
    assert item.fullmatch("x" * 40) and item.fullmatch(f" {'x' * 40} ")
    assert not item.fullmatch("x" * 41)
    assert sorted(new_order["required"]) == ["item", "quantity"]
    assert operation["tags"] == ["shop", "billing"]
    assert operation["x-emits"] == ["order.placed"]
    assert operation["security"] == [{"basicAuth": []}]
    assert schema["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"
    assert set(operation["responses"]) == {"201", "401", "403"} | FRAMEWORK_STATUSES


def test_a_step_without_schemas_has_no_body_and_a_default_response(api, shop):
    """A step that declares no body_schema or response_schema documents no request body
    and one 'default' response that says so, beside the framework's answers."""
    operation = schema_of(api)["paths"]["/orders"]["delete"]
    assert "requestBody" not in operation
    assert set(operation["responses"]) == {"default"} | FRAMEWORK_STATUSES
    assert "declares no response_schema" in operation["responses"]["default"]["description"]
    assert operation["responses"]["default"]["headers"]["X-Trace-Id"]["required"] is True


LINKED = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_doc_pages_load_only_files_served_from_installed_packages(api, url):
    """Swagger UI and ReDoc pages link only local static files that exist (the sidecar's),
    and point at the local schema: nothing is loaded from the internet."""
    response = api.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    linked = LINKED.findall(html)
    assert linked
    for link in linked:
        assert link.startswith("/static/drf_spectacular_sidecar/"), link
        assert finders.find(link.removeprefix("/static/")), link
    assert not re.search(r"https?://|//[a-z]", " ".join(linked))
    assert "fonts.googleapis" not in html
    assert "/api/schema/" in html


def test_swagger_ui_has_no_online_validator(api):
    """The validator badge (an image from the validator's site) is switched off."""
    html = api.get("/api/docs/").content.decode()
    assert '"validatorUrl": null' in html


def test_idempotency_and_trace_headers_are_documented_where_they_apply(api):
    """Every operation takes an optional Idempotency-Key header (1 to 255 printable ASCII
    characters; HTTP strips spaces and tabs around it); X-Trace-Id is a required
    response header of every answer, refusals included (every call is traced); a stored
    response may come back marked Idempotent-Replayed, never a 500."""
    paths = schema_of(api)["paths"]
    for operation in [paths["/users/register"]["post"], paths["/users/{userId}/status"]["get"]]:
        [key] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert (key["in"], key.get("required", False)) == ("header", False)
        pattern = re.compile(key["schema"]["pattern"])
        for valid in ["k", "order-17 retry", " k\t", "~" * 255]:
            assert pattern.fullmatch(valid), valid
        for invalid in ["", " ", "~" * 256, "caf\u00e9", "a\tb"]:
            assert not pattern.fullmatch(invalid), invalid
    responses = paths["/users/{userId}/status"]["get"]["responses"]
    for code in ("200", "400", "404", "500"):
        assert responses[code]["headers"]["X-Trace-Id"]["required"] is True, code
    assert "Idempotent-Replayed" in responses["200"]["headers"]
    assert "Idempotent-Replayed" not in responses["500"]["headers"]
