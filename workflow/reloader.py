"""runserver's reloader: Django's, watching every app's ``steps/`` folder as well.

Django's reloader watches the modules it has loaded. A step file it never loaded is not
one of them: a new file, one that failed to load (a syntax error, reported as
workflow.E003), or one deleted (after a duplicate step name, workflow.E001). So on
start it is also told to watch the ``.py`` files in the project's apps' ``steps/``
folders and each file that failed to load; and ``StepReloader``, used where Django would
use its ``StatReloader``, reloads when a step file appears in, or goes away from, those
folders (``StatReloader`` takes a new file for one "first seen" and a deleted one for
nothing; Django's ``WatchmanReloader`` already notices both). Nothing new happens in
the workers: they are the server's embedded cluster, and reload with it.
"""

import logging
import signal
import sys
from pathlib import Path

from django.dispatch import receiver
from django.utils import autoreload

from .project import installed_package
from .registry import registry, step_files_in

logger = logging.getLogger("django.utils.autoreload")


def watched_folders():
    """The steps folders runserver watches: the registry's, but for installed packages'."""
    folders = [folder.absolute() for _, folder in registry.step_folders()]
    return [folder for folder in folders if not installed_package(folder.resolve())]


@receiver(autoreload.autoreload_started, dispatch_uid="workflow.watch_steps")
def watch_steps(sender, **kwargs):
    """Watch every ``.py`` file of the steps folders, and the files that failed to load."""
    for folder in watched_folders():
        sender.watch_dir(folder, "**/*.py")
    for problem in registry.problems:
        if problem.source:
            sender.extra_files.add(Path(problem.source))


class StepReloader(autoreload.StatReloader):
    """``StatReloader`` that also reloads when a step file appears or goes away, since
    the registry looked for them when the server started."""

    def __init__(self):
        super().__init__()
        self.folders = None  # watched_folders(), once the apps are ready
        self.step_files = None  # as of the last look; first, as the registry found them

    def snapshot_files(self):
        yield from super().snapshot_files()
        self.notice_step_files_added_or_removed()

    def notice_step_files_added_or_removed(self):
        if self.folders is None:
            self.folders = watched_folders()
            self.step_files = {p for p in registry.step_files if within(p, self.folders)}
        found = {p.resolve() for folder in self.folders for p in step_files_in(folder)}
        added, removed = sorted(found - self.step_files), sorted(self.step_files - found)
        self.step_files = found
        if added or removed:
            path = (added or removed)[0]
            logger.info("%s %s, reloading.", path, "was added" if added else "was removed")
            sys.exit(3)  # as autoreload.trigger_reload: the restart loop starts a new child


def within(path, folders):
    return any(path.is_relative_to(folder.resolve()) for folder in folders)


def get_reloader():
    """Django's choice of reloader, with ``StepReloader`` for its ``StatReloader``."""
    reloader = autoreload.get_reloader()
    return StepReloader() if type(reloader) is autoreload.StatReloader else reloader


def run_with_reloader(main_func, **kwargs):
    """``django.utils.autoreload.run_with_reloader``, in the reloaded child (the parent
    is runserver's restart loop), with ``get_reloader`` above."""
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
    try:
        reloader = get_reloader()
        logger.info("Watching for file changes with %s", type(reloader).__name__)
        autoreload.start_django(reloader, main_func, **kwargs)
    except KeyboardInterrupt:
        pass
