"""The project's URLs plus the baseline of the API overhead benchmark."""

from django.urls import include, path

from bench.views import PlainRegisterView

urlpatterns = [
    path("bench/plain-register", PlainRegisterView.as_view()),
    path("", include("config.urls")),
]
