from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # OpenAPI schema, Swagger UI, ReDoc and the event topics (AsyncAPI) of the API steps.
    path("api/", include("workflow.api_urls")),
    # API steps are served at the paths they declare, from the root.
    path("", include("workflow.urls")),
]
