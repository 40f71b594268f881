"""The API's documents: OpenAPI schema, Swagger UI, ReDoc and the topics (AsyncAPI).

    path("api/", include("workflow.api_urls"))

gives ``api/schema/`` (OpenAPI 3; YAML, or JSON with ``?format=json``), ``api/docs/``
(Swagger UI), ``api/redoc/`` (ReDoc) and ``api/asyncapi.json`` (the event topics).
Swagger UI and ReDoc are served from drf-spectacular-sidecar's static files (settings:
``SWAGGER_UI_DIST`` and ``REDOC_DIST`` = ``"SIDECAR"``): the pages load nothing from
outside.
"""

from django.http import JsonResponse
from django.urls import NoReverseMatch, path, reverse
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .asyncapi import asyncapi_document


@require_GET
def asyncapi(request):
    return JsonResponse(asyncapi_document(), json_dumps_params={"indent": 2})


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="workflow-openapi"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="workflow-openapi"),
        name="workflow-swagger-ui",
    ),
    path(
        "redoc/",
        SpectacularRedocView.as_view(
            url_name="workflow-openapi", template_name="workflow/redoc.html"
        ),
        name="workflow-redoc",
    ),
    path("asyncapi.json", asyncapi, name="workflow-asyncapi"),
]

DOCUMENTS = [
    ("Swagger UI", "workflow-swagger-ui"),
    ("ReDoc", "workflow-redoc"),
    ("OpenAPI schema", "workflow-openapi"),
    ("Event topics (AsyncAPI)", "workflow-asyncapi"),
]


def documents():
    """``[(label, url)]`` of the API's documents, where the project serves them."""
    found = []
    for label, name in DOCUMENTS:
        try:
            found.append((label, reverse(name)))
        except NoReverseMatch:
            pass
    return found
