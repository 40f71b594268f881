from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # API steps are served at the paths they declare, from the root.
    path("", include("workflow.urls")),
]
