"""``manage.py startstep``: write a new step and its test, both passing as written.

manage.py startstep shop CreateOrder --type api --path /orders --method POST --emits order.created
manage.py startstep shop ProcessOrder --type event --subscribes order.created --emits order.done
manage.py startstep shop NightlyReport --type cron --cron "0 3 * * *"
manage.py startstep shop ManualReview --type noop --subscribes order.done

Writes ``<app>/steps/<snake_name>_step.py`` and ``tests/<app>/test_<snake_name>_step.py``
(or ``<app>/tests/`` when the project has no top-level ``tests/``). Refuses to overwrite
either file. Topics and flows may be repeated or comma-separated. An event step's input
is the serializer its topic's subscribers already declare, said on the output; or, when
none is, the topic's data as it is (``workflow.scaffold_input``).
"""

import re
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workflow.project import project_apps
from workflow.registry import registry
from workflow.scaffold import Spec, default_description, render_step
from workflow.scaffold_input import topic_input
from workflow.scaffold_tests import render_test
from workflow.steps import STEP_TYPES, StepConfigError

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
ONLY_FOR = {"path": "api", "method": "api", "cron": "cron"}


def listed(values):
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (repeated and comma-separated options)."""
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


def project_app(label):
    """The installed app ``label``, if its code is in this project (not site-packages)."""
    base = Path(settings.BASE_DIR).resolve()
    ours = [a.label for a in project_apps() if Path(a.path).resolve().is_relative_to(base)]
    try:
        app = apps.get_app_config(label)
    except LookupError:
        raise CommandError(
            f"no installed app labelled {label!r}; this project's apps: {', '.join(ours)} "
            "(create one with manage.py startapp and add it to INSTALLED_APPS)"
        ) from None
    if label not in ours:
        raise CommandError(f"app {label!r} ({app.path}) is not part of this project")
    return app


def relative(path):
    try:
        return str(path.relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return str(path)


class Command(BaseCommand):
    help = "Writes a new step (config, handler, serializer stub) and a test that passes."
    requires_system_checks = []  # like startapp: a broken step must not stop a new one

    def add_arguments(self, parser):
        parser.add_argument("app", help="the app label, e.g. users")
        parser.add_argument("name", help="the step name, e.g. SendWelcomeEmail")
        parser.add_argument("--type", required=True, choices=sorted(STEP_TYPES))
        parser.add_argument("--subscribes", action="append", help="event: topics it runs for")
        parser.add_argument("--emits", action="append", help="topics it may emit")
        parser.add_argument("--flow", action="append", help="flows (default: the app label)")
        parser.add_argument("--path", help="api: the path, e.g. /users/:userId/status")
        parser.add_argument("--method", help="api: the HTTP method (default POST)")
        parser.add_argument("--cron", help="cron: the schedule, e.g. '*/5 * * * *'")
        parser.add_argument("--description", help="what the step does")

    def handle(self, *args, app, name, type, **options):
        app_config = project_app(app)
        spec = self.spec(app_config.label, name, type, options)
        step_file = Path(app_config.path).resolve() / "steps" / f"{spec.snake}_step.py"
        test_file = self.tests_dir(app_config) / f"test_{spec.snake}_step.py"
        for path in (step_file, test_file):
            if path.exists():
                raise CommandError(f"{relative(path)} already exists; not overwriting it")
        step_file.parent.mkdir(parents=True, exist_ok=True)
        step_file.write_text(render_step(spec))
        self.make_package(test_file.parent)
        test_file.write_text(render_test(spec, relative(step_file)))
        self.stdout.write(f"wrote {relative(step_file)}")
        self.stdout.write(f"wrote {relative(test_file)}")
        self.describe_input(spec)
        self.stdout.write(f"run its test: python -m pytest {relative(test_file)}")

    def describe_input(self, spec):
        """Where an event step's input comes from, when it is not the data as it is."""
        found = spec.input
        if found and found.serializer is not None:
            cls = found.serializer
            self.stdout.write(
                f"its input: {cls.__name__} from {cls.__module__}, as {found.declared_by} "
                f"takes {', '.join(spec.subscribes)}"
            )
        elif found and found.note:
            self.stdout.write(f"its input: the data as it is ({found.note})")

    def spec(self, app, name, type, options):
        if not NAME.match(name):
            raise CommandError(
                f"step name {name!r} is not a name such as 'SendWelcomeEmail' "
                "(letters and digits, starting with a letter)"
            )
        if registry.get(name) is not None:
            raise CommandError(f"a step named {name!r} exists already: {registry.get(name).file}")
        for option, step_type in ONLY_FOR.items():
            if options[option] and type != step_type:
                raise CommandError(f"--{option} goes with --type {step_type}, not {type}")
        if options["subscribes"] and type not in ("event", "noop"):
            raise CommandError(f"--subscribes goes with --type event or noop, not {type}")
        spec = Spec(
            app=app,
            name=name,
            type=type,
            description=options["description"] or "",
            flows=listed(options["flow"]) or [app],
            emits=listed(options["emits"]),
            subscribes=listed(options["subscribes"]),
            method=(options["method"] or "POST").upper() if type == "api" else "",
            path=options["path"] or "",
            cron=options["cron"] or "",
        )
        self.check_required(spec)
        spec.description = spec.description or default_description(
            type, spec.method, spec.path, spec.subscribes, spec.cron
        )
        if type == "event":
            spec.input = topic_input(registry, spec.subscribes)
        return spec

    def check_required(self, spec):
        missing = {
            "api": (not spec.path, "--type api needs --path, e.g. --path /orders"),
            "event": (not spec.subscribes, "--type event needs --subscribes, e.g. order.placed"),
            "cron": (not spec.cron, "--type cron needs --cron, e.g. --cron '*/5 * * * *'"),
        }
        if spec.type in missing and missing[spec.type][0]:
            raise CommandError(missing[spec.type][1])
        emits_field = "virtual_emits" if spec.type == "noop" else "emits"
        fields = {"name": spec.name, "flows": spec.flows, emits_field: spec.emits}
        fields.update(
            {
                "api": {"method": spec.method, "path": spec.path},
                "event": {"subscribes": spec.subscribes},
                "cron": {"cron": spec.cron},
                "noop": {"virtual_subscribes": spec.subscribes},
            }[spec.type]
        )
        try:
            STEP_TYPES[spec.type](**fields)  # the runtime's own validation of the config
        except StepConfigError as exc:
            raise CommandError(str(exc)) from None

    def tests_dir(self, app_config):
        project_tests = Path(settings.BASE_DIR).resolve() / "tests"
        if project_tests.is_dir():
            return project_tests / app_config.label
        return Path(app_config.path).resolve() / "tests"

    def make_package(self, directory):
        """The test directory, as a package if its parent is one (as tests/ is here)."""
        if directory.is_dir():
            return
        directory.mkdir(parents=True)
        if (directory.parent / "__init__.py").exists() or directory.name == "tests":
            (directory / "__init__.py").touch()
