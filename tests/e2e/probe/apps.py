from django.apps import AppConfig


class ProbeConfig(AppConfig):
    name = "tests.e2e.probe"
    label = "probe"
    verbose_name = "Probe steps for end-to-end tests"
