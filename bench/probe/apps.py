from django.apps import AppConfig


class BenchProbeConfig(AppConfig):
    name = "bench.probe"
    label = "benchprobe"
    verbose_name = "Benchmark probe steps"
