"""runserver's reloader watches the steps folders: new, removed and broken step files."""

import logging

import pytest
from django.utils import autoreload

from workflow import reloader
from workflow.management.commands.runserver import Command
from workflow.registry import Problem, Registry


@pytest.fixture
def steps(tmp_path, monkeypatch):
    """A steps folder holding one step file, as the registry found it on start."""
    folder = tmp_path / "steps"
    folder.mkdir()
    (folder / "first_step.py").write_text("")
    found = Registry()
    found.step_files = {(folder / "first_step.py").resolve()}
    monkeypatch.setattr(reloader, "registry", found)
    monkeypatch.setattr(reloader, "watched_folders", lambda: [folder])
    return folder


def look(watcher):
    """One look of the reloader: its SystemExit code if it would reload, else None."""
    try:
        list(watcher.snapshot_files())
    except SystemExit as exc:
        return exc.code
    return None


def test_a_step_file_added_since_the_registry_looked_reloads(steps, caplog):
    """A step file that appeared after start-up (even before the first look) reloads."""
    (steps / "second_step.py").write_text("")
    with caplog.at_level(logging.INFO, "django.utils.autoreload"):
        assert look(reloader.StepReloader()) == 3
    assert "second_step.py was added, reloading." in caplog.text


def test_a_step_file_removed_reloads_and_other_files_do_not(steps, caplog):
    """Removing a step file reloads; adding a module that is not a step file, or an
    editor's hidden lock file, does not."""
    watcher = reloader.StepReloader()
    assert look(watcher) is None
    (steps / "helpers.py").write_text("")
    (steps / "notes.txt").write_text("")
    (steps / ".#first_step.py").symlink_to("user@host.1234")  # Emacs' lock file
    assert look(watcher) is None
    (steps / "first_step.py").unlink()
    with caplog.at_level(logging.INFO, "django.utils.autoreload"):
        assert look(watcher) == 3
    assert "first_step.py was removed, reloading." in caplog.text


def test_nested_step_files_count_too(steps):
    """A step file in a sub-folder of steps/ is a step file (the registry loads it)."""
    watcher = reloader.StepReloader()
    assert look(watcher) is None
    (steps / "billing").mkdir()
    (steps / "billing" / "charge_step.py").write_text("")
    assert look(watcher) == 3


def test_runserver_watches_step_folders_and_the_files_that_failed_to_load(steps, monkeypatch):
    """On start the reloader is told to watch every .py file of the steps folders (so a
    fix to a file that never loaded reloads) and each file that failed to load."""
    broken = steps.parent / "services.py"
    reloader.registry.problems.append(
        Problem("workflow.E003", "x could not be loaded", "fix line 1", "x", str(broken))
    )
    watcher = autoreload.StatReloader()
    reloader.watch_steps(sender=watcher)
    assert watcher.directory_globs == {steps: {"**/*.py"}}
    assert broken in watcher.extra_files
    assert (steps / "first_step.py") in set(watcher.watched_files())


def test_the_reloader_replaces_only_djangos_stat_reloader(monkeypatch):
    """Where Django would use its StatReloader, runserver uses StepReloader; Watchman,
    which notices new and deleted files itself, is kept."""
    monkeypatch.setattr(autoreload, "get_reloader", autoreload.StatReloader)
    assert type(reloader.get_reloader()) is reloader.StepReloader
    sentinel = object()
    monkeypatch.setattr(autoreload, "get_reloader", lambda: sentinel)
    assert reloader.get_reloader() is sentinel


def test_the_project_apps_steps_folders_are_watched_not_installed_packages():
    """The shipped project's own apps are watched; apps from site-packages are not."""
    folders = {folder.parent.name for folder in reloader.watched_folders()}
    assert {"users", "workflow", "workbench"} <= folders
    assert not folders & {"rest_framework", "django_q", "admin", "auth"}


REQUEST = {"method": "GET", "status": 200, "time_taken": 0.01, "client": "127.0.0.1:1"}


@pytest.mark.parametrize(
    ("protocol", "action", "details", "shown"),
    [
        ("http", "complete", {**REQUEST, "path": "/users/register"}, True),
        ("http", "complete", {**REQUEST, "path": "/admin/workbench/flows/"}, False),
        ("http", "complete", {**REQUEST, "path": "/static/admin/css/base.css"}, False),
        ("http", "complete", {**REQUEST, "path": "/admin/x/", "status": 500}, True),
        ("websocket", "connected", {"path": "/workbench/ws/", "client": "127.0.0.1:1"}, False),
    ],
)
def test_the_console_shows_your_requests_not_the_workbenchs(
    caplog, protocol, action, details, shown
):
    """Request lines for API steps show at INFO; the workbench's own (admin pages,
    static files, the live websocket) only with django.channels.server at DEBUG."""
    command = Command()
    with caplog.at_level(logging.INFO, "django.channels.server"):
        command.log_action(protocol, action, details)
    assert bool(caplog.records) is shown
    caplog.clear()
    with caplog.at_level(logging.DEBUG, "django.channels.server"):
        command.log_action(protocol, action, details)
    assert caplog.records
