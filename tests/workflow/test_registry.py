"""Step discovery and the registry: what is found, and what is kept as a problem."""

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from tests.shipped import SHIPPED_STEPS
from workflow.registry import Registry, step_files_in
from workflow.steps import ApiStep, CronStep, EventStep, NoopStep

# What the tutorial's "Add a step" writes (startstep users NotifyAdmin): the reader's step.


@pytest.fixture
def discovered():
    registry = Registry()
    registry.autodiscover()
    return registry


@pytest.fixture
def make_module(tmp_path, monkeypatch):
    """Write a module under tmp_path (on sys.path); returns its file path."""
    monkeypatch.syspath_prepend(tmp_path)
    created = []

    def make(name, source):
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        created.append(name)
        return path

    yield make
    for name in created:
        sys.modules.pop(name, None)


def event_handler(input, ctx):
    return None


# Discovery -------------------------------------------------------------------------------


def test_autodiscover_finds_every_users_step(discovered):
    """autodiscover loads every *_step.py module under users/steps/ and bookings/steps/,
    at any depth (the tutorial's five, its email-verification chain's four, the bookings
    example's eight, and any step added since), with no problems."""
    base = Path(settings.BASE_DIR)
    files = sorted(
        str(path.relative_to(base))
        for app in ("users", "bookings")
        for path in (base / app / "steps").rglob("*_step.py")
    )
    assert sorted(step.file for step in discovered) == files
    assert SHIPPED_STEPS.items() <= {step.name: step.file for step in discovered}.items()
    assert discovered.problems == []


def test_the_shipped_steps_are_found_where_tests_shipped_says(discovered):
    """Every step tests/shipped.py names is discovered, from the file it names (steps a
    reader adds since are theirs: the tests of the shipped project leave them out)."""
    found = {name: discovered.get(name).file for name in SHIPPED_STEPS if discovered.get(name)}
    assert found == SHIPPED_STEPS


def test_discovered_steps_have_types_handlers_and_modules(discovered):
    """Each discovered step keeps its config type, its handler and its dotted module."""
    register = discovered.get("RegisterUser")
    assert register.type == "api"
    assert register.module == "users.steps.register_user_step"
    assert register.handler.__module__ == "users.steps.register_user_step"
    events = {s.name for s in discovered.of_type("event")}
    assert {"SendWelcomeEmail", "SetupUserAccount", "LogNotification"} <= events
    apis = {s.name for s in discovered.of_type("api")}
    assert {"RegisterUser", "GetUserStatus"} <= apis
    assert not events & apis


def test_subscribers_of_user_registered(discovered):
    """'user.registered' is delivered to SendWelcomeEmail, SetupUserAccount and any step
    added since that subscribes to it, and to no other step."""
    names = sorted(step.name for step in discovered.subscribers("user.registered"))
    subscribing = [s.name for s in discovered if "user.registered" in s.config.subscribe_topics]
    assert names == sorted(subscribing)
    assert {"SendWelcomeEmail", "SetupUserAccount"} <= set(names)
    assert [s.name for s in discovered.subscribers("email.sent")] == ["LogNotification"]
    assert discovered.subscribers("nobody.listens") == []
    assert discovered.flows() == ["email-verification", "trip-booking", "user-registration"]


def test_wildcard_subscriber_receives_every_topic_once():
    """A '*' subscriber gets every topic, once, even when it also subscribes exactly."""
    registry = Registry()
    registry.add(EventStep(name="Exact", subscribes=["a"]), event_handler)
    registry.add(EventStep(name="Audit", subscribes=["*", "a"]), event_handler)
    registry.add(EventStep(name="All", subscribes=["*"]), event_handler)
    assert [s.name for s in registry.subscribers("a")] == ["Exact", "Audit", "All"]
    assert [s.name for s in registry.subscribers("b")] == ["Audit", "All"]


def test_subscribers_index_is_rebuilt_after_add():
    """A step added after a subscribers() query is seen by the next query."""
    registry = Registry()
    registry.add(EventStep(name="First", subscribes=["a"]), event_handler)
    assert [s.name for s in registry.subscribers("a")] == ["First"]
    registry.add(EventStep(name="Second", subscribes=["a"]), event_handler)
    assert [s.name for s in registry.subscribers("a")] == ["First", "Second"]


# E001: duplicate names -------------------------------------------------------------------


def test_duplicate_name_is_e001_naming_both_files(make_module):
    """A second step with a used name is refused as E001, naming both files."""
    source = """
        from workflow.steps import EventStep
        config = EventStep(name="Twin", subscribes=["a"])
        def handler(input, ctx):
            pass
    """
    first = make_module("wf_dup_one_step", source)
    second = make_module("wf_dup_two_step", source)
    registry = Registry()
    assert registry.load_module("wf_dup_one_step", first) is not None
    assert registry.load_module("wf_dup_two_step", second) is None
    [problem] = registry.problems
    assert problem.id == "workflow.E001"
    assert str(first) in problem.msg
    assert str(second) in problem.msg
    assert "'Twin'" in problem.msg
    assert problem.file == str(second)
    assert registry.get("Twin").file == str(first)


# E002: handlers --------------------------------------------------------------------------


def test_handler_with_wrong_signature_is_e002_showing_expected():
    """A handler that cannot take (input, ctx) is E002, showing what to write."""
    registry = Registry()

    def handler(input):
        pass

    assert registry.add(EventStep(name="E", subscribes=["a"]), handler, file="e_step.py") is None
    [problem] = registry.problems
    assert problem.id == "workflow.E002"
    assert "e_step.py: handler(input) cannot be called" in problem.msg
    assert "`def handler(input, ctx):`" in problem.msg
    assert registry.get("E") is None


def test_api_handler_signature_is_request_ctx():
    """An API handler must take (request, ctx); an extra required parameter is E002."""
    registry = Registry()

    def handler(request, ctx, extra):
        pass

    registry.add(ApiStep(name="A", method="GET", path="/a"), handler, file="a_step.py")
    [problem] = registry.problems
    assert problem.id == "workflow.E002"
    assert "`def handler(request, ctx):`" in problem.msg


def test_cron_handler_takes_only_ctx():
    """A cron handler is handler(ctx); handler(input, ctx) is E002."""
    registry = Registry()
    registry.add(CronStep(name="C", cron="* * * * *"), event_handler, file="c_step.py")
    [problem] = registry.problems
    assert problem.id == "workflow.E002"
    assert "`def handler(ctx):`" in problem.msg


def test_async_handler_is_registered():
    """An ``async def`` handler with the right signature is a step like any other."""
    registry = Registry()

    async def handler(input, ctx):
        pass

    step = registry.add(EventStep(name="E", subscribes=["a"]), handler, file="e_step.py")
    assert registry.problems == []
    assert registry.get("E") is step


def test_async_handler_with_wrong_signature_is_e002():
    """An async handler is checked like a sync one: a wrong signature is E002 with the fix."""
    registry = Registry()

    async def handler(ctx):
        pass

    registry.add(EventStep(name="E", subscribes=["a"]), handler, file="e_step.py")
    [problem] = registry.problems
    assert problem.id == "workflow.E002"
    assert "`def handler(input, ctx):`" in problem.msg


def test_missing_handler_is_e002(make_module):
    """A step module with a config but no handler is E002 naming the file."""
    path = make_module(
        "wf_nohandler_step",
        """
        from workflow.steps import EventStep
        config = EventStep(name="NoHandler", subscribes=["a"])
        """,
    )
    registry = Registry()
    assert registry.load_module("wf_nohandler_step", path) is None
    [problem] = registry.problems
    assert problem.id == "workflow.E002"
    assert f"{path} declares a event step but no handler" in problem.msg
    assert "def handler(input, ctx)" in problem.msg


def test_noncallable_handler_is_e002():
    """A handler that is not callable is E002."""
    registry = Registry()
    registry.add(EventStep(name="E", subscribes=["a"]), "not a function", file="e_step.py")
    assert [p.id for p in registry.problems] == ["workflow.E002"]
    assert "handler is not a function" in registry.problems[0].msg


def test_noop_step_needs_no_handler():
    """A noop step registers without a handler and with no problem."""
    registry = Registry()
    step = registry.add(NoopStep(name="External"), None, file="external_step.py")
    assert step is not None
    assert registry.get("External") is step
    assert registry.problems == []


# E003: modules that cannot load ----------------------------------------------------------


def test_module_raising_on_import_is_e003_naming_file_and_line(make_module):
    """A module that raises on import is E003 naming the file, the error and the line."""
    path = make_module(
        "wf_raises_step",
        """\
        from workflow.steps import EventStep

        raise RuntimeError("database not configured")
        """,
    )
    registry = Registry()
    assert registry.load_module("wf_raises_step", path) is None
    [problem] = registry.problems
    assert problem.id == "workflow.E003"
    assert problem.file == str(path)
    assert problem.msg == (f"{path} could not be loaded: RuntimeError: database not configured")
    assert problem.hint == f"fix line 3 of {path}"


def test_module_with_syntax_error_is_e003_naming_its_line(make_module):
    """A module with a syntax error is E003 whose hint names the module's own line."""
    path = make_module("wf_syntax_step", "x = 1\ny = (\n")
    registry = Registry()
    assert registry.load_module("wf_syntax_step", path) is None
    [problem] = registry.problems
    assert problem.id == "workflow.E003"
    assert "SyntaxError" in problem.msg
    assert problem.hint == f"fix line 2 of {path}"


def test_module_without_config_is_e003(make_module):
    """A step module with no `config` is E003 saying how to declare one."""
    path = make_module("wf_noconfig_step", "def handler(input, ctx):\n    pass\n")
    registry = Registry()
    assert registry.load_module("wf_noconfig_step", path) is None
    [problem] = registry.problems
    assert problem.id == "workflow.E003"
    assert problem.msg == f"{path} has no step config"
    assert "config = EventStep(...)" in problem.hint
    assert list(registry) == []


def test_invalid_config_in_module_is_e003_with_the_fix(make_module):
    """A config that raises StepConfigError is E003 carrying the config's own message."""
    path = make_module(
        "wf_badconfig_step",
        """
        from workflow.steps import EventStep
        config = EventStep(name="Bad", subscribes="user.registered")
        def handler(input, ctx):
            pass
        """,
    )
    registry = Registry()
    assert registry.load_module("wf_badconfig_step", path) is None
    [problem] = registry.problems
    assert problem.id == "workflow.E003"
    assert "StepConfigError" in problem.msg
    assert "subscribes=['user.registered']" in problem.msg


def test_hidden_files_in_a_steps_folder_are_no_steps(tmp_path):
    """An editor's lock or backup (Emacs' ``.#x_step.py``, a file in a hidden folder) is
    not a step file; nested step files are, in order."""
    (tmp_path / "b_step.py").write_text("")
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "a_step.py").write_text("")
    (tmp_path / ".#b_step.py").symlink_to("user@host.1234")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "c_step.py").write_text("")
    found = [p.relative_to(tmp_path).as_posix() for p in step_files_in(tmp_path)]
    assert found == ["b_step.py", "billing/a_step.py"]
