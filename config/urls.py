from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    # OpenAPI schema, Swagger UI, ReDoc and the event topics (AsyncAPI) of the API steps.
    path("api/", include("workflow.api_urls")),
    # API steps are served at the paths they declare, from the root; one that declares
    # "/" comes before the landing page and owns it.
    path("", include("workflow.urls")),
    # The landing page, also the admin's "View site".
    path("", views.home, name="home"),
]
