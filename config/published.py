"""Where a secret key is published: the example of docs/deployment.md, or a text file of
the project itself.

``config.production`` refuses a ``DJANGO_SECRET_KEY`` found here: a key that anyone who
reads the docs or the code knows signs sessions and password-reset links for them too.

The files read are the project's own text under ``BASE_DIR`` (``TEXT_SUFFIXES``, and
``.env.*`` files such as ``.env.example``), skipping virtualenvs (any folder with a
``pyvenv.cfg``), ``SKIPPED_DIRS`` and ``.env`` itself, the untracked file where a
deployment may keep its real key. About 250 files take a few milliseconds.
"""

import os
from pathlib import Path

# The key shown in docs/deployment.md's "The environment": refused even where the docs
# are not deployed.
DOCUMENTED_EXAMPLE_KEY = "k2Vq8xZ4mN7pR1tY6wB3cE9hJ5sL0dF8gA2uQ7iO4zX1vT6nM3bK9yW5eH0rC8jP"

TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json"}
SKIPPED_DIRS = {".venv", ".git", "node_modules", "staticfiles", "test-artifacts", "__pycache__"}


def is_text_file(name):
    if name.startswith(".env"):
        return name != ".env"
    return os.path.splitext(name)[1] in TEXT_SUFFIXES


def text_files(root):
    """The project's text files under ``root``, as paths."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if d not in SKIPPED_DIRS and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        ]
        for name in files:
            if is_text_file(name):
                yield Path(folder, name)


def file_publishing(key, root):
    """The path (relative to ``root``) of the first text file that contains ``key``,
    or None."""
    needle = key.encode()
    for path in text_files(root):
        try:
            if needle in path.read_bytes():
                return path.relative_to(root).as_posix()
        except OSError:  # vanished or unreadable: not published by this project
            continue
    return None
