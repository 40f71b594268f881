"""Discovery of ``<app>/steps/*_step.py`` modules and the registry of steps.

Like ``admin.autodiscover()``, the ``workflow`` app imports every installed app's step
modules when Django starts. A module that cannot be loaded, or a config that cannot
work, does not stop Django: it is kept as a problem that ``manage.py check`` reports
with an id, the file and the fix (and runserver refuses to start until it is fixed).
"""

import inspect
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings

from . import topics
from .conf import workflow_settings
from .steps import Step

SUBSCRIBERS_CACHED = 10_000  # topics whose subscribers are remembered (emits may name any)
STEP_FILES = "*_step.py"  # in an app's steps/ folder, at any depth


def step_files_in(steps_dir):
    """The step files of a ``steps/`` folder, at any depth, sorted; hidden ones (an
    editor's lock or backup, such as Emacs' ``.#x_step.py``) are no step."""
    return sorted(
        path
        for path in steps_dir.rglob(STEP_FILES)
        if not any(part.startswith(".") for part in path.relative_to(steps_dir).parts)
    )


@dataclass
class RegisteredStep:
    """A step's config with its handler and the file that declared it."""

    config: Step
    handler: Callable[..., Any] | None
    module: str
    file: str

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def type(self) -> str:
        return self.config.type


@dataclass(frozen=True)
class Problem:
    """A fault found while loading steps; ``checks.py`` turns it into a check message."""

    id: str
    msg: str
    hint: str
    file: str
    source: str = ""  # the file that failed to load (absolute), for runserver to watch


def relative_file(path):
    try:
        return str(Path(path).resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except (ValueError, AttributeError):
        return str(path)


def error_location(exc):
    """The file and line an import failed at (not a frame of the import machinery)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if not f.filename.startswith("<frozen")] or frames
    return ours[-1].filename, ours[-1].lineno


def handler_problem(config, handler, file):
    """The reason ``handler`` cannot serve ``config``, or None."""
    expected = f"def handler({', '.join(config.handler_params)})"
    if config.type == "noop":
        return None
    if handler is None:
        return f"{file} declares a {config.type} step but no handler; add `{expected}:`"
    if not callable(handler):
        return f"{file}: handler is not a function; write `{expected}:`"
    try:
        inspect.signature(handler).bind(*config.handler_params)
    except TypeError:
        got = f"handler{inspect.signature(handler)}"
        return f"{file}: {got} cannot be called as {expected[4:]}; write `{expected}:`"
    return None


class Registry:
    def __init__(self):
        self.steps = {}
        self.problems = []
        self.step_files = set()  # every step file found (resolved), loaded or not
        self._subscribers = None
        self._guarded = None

    # Loading -----------------------------------------------------------------

    def autodiscover(self):
        for app_config, steps_dir in self.step_folders():
            for path in step_files_in(steps_dir):
                self.step_files.add(path.resolve())
                dotted = ".".join(path.relative_to(steps_dir).with_suffix("").parts)
                self.load_module(f"{app_config.name}.steps.{dotted}", path)

    @staticmethod
    def step_folders():
        """``(app config, its steps folder)`` for each installed app but those in
        ``EXCLUDE_APPS``, whether the folder exists yet or not."""
        excluded = set(workflow_settings.EXCLUDE_APPS)
        return [
            (app_config, Path(app_config.path) / "steps")
            for app_config in apps.get_app_configs()
            if app_config.label not in excluded
        ]

    def load_module(self, module_name, path=None):
        file = relative_file(path or module_name)
        try:
            module = import_module(module_name)
        except Exception as exc:
            filename, lineno = error_location(exc)
            self.problems.append(
                Problem(
                    "workflow.E003",
                    f"{file} could not be loaded: {type(exc).__name__}: {exc}",
                    f"fix line {lineno} of {relative_file(filename)}",
                    file,
                    source=str(Path(filename).resolve()),
                )
            )
            return None
        file = relative_file(getattr(module, "__file__", file))
        config = getattr(module, "config", None)
        if not isinstance(config, Step):
            self.problems.append(
                Problem(
                    "workflow.E003",
                    f"{file} has no step config",
                    "declare `config = EventStep(...)` (or ApiStep, CronStep, NoopStep)",
                    file,
                )
            )
            return None
        return self.add(config, getattr(module, "handler", None), module_name, file)

    def add(self, config, handler, module="", file=""):
        problem = handler_problem(config, handler, file or config.name)
        if problem:
            self.problems.append(
                Problem("workflow.E002", problem, "handlers are functions (def or async def)", file)
            )
            return None
        if config.name in self.steps:
            first = self.steps[config.name].file
            self.problems.append(
                Problem(
                    "workflow.E001",
                    f"step name {config.name!r} in {file} is already used by {first}",
                    "step names are unique; rename one of them",
                    file,
                )
            )
            return None
        step = RegisteredStep(config, handler, module, file)
        self.steps[config.name] = step
        self._subscribers = None
        self._guarded = None
        return step

    # Queries -----------------------------------------------------------------

    def get(self, name):
        return self.steps.get(name)

    def __iter__(self):
        return iter(self.steps.values())

    def of_type(self, step_type):
        return [step for step in self if step.type == step_type]

    def subscribers(self, topic):
        """The steps a ``topic`` is delivered to: those subscribed to it by name, then
        those subscribed by a pattern that matches it (``workflow.topics``), each once."""
        if self._subscribers is None or len(self._subscribers) > SUBSCRIBERS_CACHED:
            self._subscribers = {}
        found = self._subscribers.get(topic)
        if found is None:
            exact = [step for step in self if topic in step.config.subscribe_topics]
            found = exact + [
                step
                for step in self
                if step not in exact
                and any(topics.matches(pattern, topic) for pattern in step.config.subscribe_topics)
            ]
            self._subscribers[topic] = found
        return list(found)

    def guarded(self):
        """Names of the steps with flow control that a claim must check
        (``workflow.flow_control``: concurrency, rate limit, debounce)."""
        if self._guarded is None:
            self._guarded = frozenset(
                step.name
                for step in self
                if (flow := getattr(step.config, "flow_control", None)) and flow.guarded
            )
        return self._guarded

    def flows(self):
        names = {flow for step in self for flow in step.config.flows}
        return sorted(names)


registry = Registry()
