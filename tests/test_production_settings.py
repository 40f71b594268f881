"""config.production: `check --deploy` is clean; bad configuration refuses to start."""

import importlib
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core import checks

from config.published import DOCUMENTED_EXAMPLE_KEY, file_publishing
from config.settings import DEVELOPMENT_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = secrets.token_urlsafe(50)
# Strong, but published: it is in this file.
KEY_IN_THIS_FILE = "published-in-a-test-file-9f3Kq2Lm8Xw4Rt7Vb1Np6Zs0Hd5Jc"
PRODUCTION = {"DJANGO_SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "example.com"}
MANAGE_PY = ["manage.py"]
# manage.py with the registry holding the shipped steps only: a step a reader adds may
# have warnings of its own, which are not the production settings' (tests/shipped.py).
SHIPPED = ["-m", "tests.shipped"]


def check_deploy(program=MANAGE_PY, **env):
    """``program check --deploy`` under config.production with ``env`` (None: unset)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "SECURE_")) and k != "ALLOWED_HOSTS"
    }
    environ["DJANGO_SETTINGS_MODULE"] = "config.production"
    environ.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, *program, "check", "--deploy"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_a_strong_key_and_allowed_hosts():
    """No warning, error or info, and none silenced, on the shipped project."""
    result = check_deploy(SHIPPED, **PRODUCTION)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    for section in ("WARNINGS", "ERRORS", "INFOS", "CRITICALS"):
        assert section not in output


def test_production_silences_no_check(monkeypatch, shipped_steps):
    """Production silences no system check (the example's open topic is declared open,
    not silenced), and development reports none either on the shipped project."""
    monkeypatch.setenv("DJANGO_SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("ALLOWED_HOSTS", "example.com")
    monkeypatch.delitem(sys.modules, "config.production", raising=False)
    production = importlib.import_module("config.production")
    assert getattr(production, "SILENCED_SYSTEM_CHECKS", []) == []
    assert production.DEBUG is False
    assert checks.run_checks() == []


@pytest.mark.parametrize(
    "key, message",
    [
        (None, "DJANGO_SECRET_KEY is not set"),
        ("", "DJANGO_SECRET_KEY is not set"),
        (DEVELOPMENT_SECRET_KEY, "DJANGO_SECRET_KEY is the development key"),
        ("django-insecure-" + STRONG_KEY, "DJANGO_SECRET_KEY starts with 'django-insecure-'"),
        ("x" * 20, "DJANGO_SECRET_KEY is too weak"),  # short
        ("abcd" * 20, "DJANGO_SECRET_KEY is too weak"),  # 80 characters, 4 distinct
        (
            KEY_IN_THIS_FILE,
            "DJANGO_SECRET_KEY appears in tests/test_production_settings.py, a file of this "
            "project",
        ),
    ],
    ids=[
        "missing",
        "empty",
        "development-key",
        "insecure-prefix",
        "short",
        "few-distinct",
        "in-a-project-file",
    ],
)
def test_a_missing_or_weak_secret_key_refuses_to_start(key, message):
    result = check_deploy(**{**PRODUCTION, "DJANGO_SECRET_KEY": key})
    assert result.returncode != 0
    assert "ImproperlyConfigured: config.production refuses to start: " + message in result.stderr


@pytest.mark.parametrize("hosts", [None, "", " , "], ids=["missing", "empty", "blank"])
def test_missing_allowed_hosts_refuses_to_start(hosts):
    result = check_deploy(**{**PRODUCTION, "ALLOWED_HOSTS": hosts})
    assert result.returncode != 0
    assert "config.production refuses to start: ALLOWED_HOSTS is not set" in result.stderr


def test_the_example_key_of_the_deployment_guide_refuses_to_start():
    """The key docs/deployment.md exports is refused by name, even where the docs are
    not deployed (it is kept in config/published.py), saying to set a key of one's own."""
    [documented] = re.findall(r"export DJANGO_SECRET_KEY='([^']+)'", read_docs("deployment.md"))
    assert documented == DOCUMENTED_EXAMPLE_KEY
    result = check_deploy(**{**PRODUCTION, "DJANGO_SECRET_KEY": documented})
    assert result.returncode != 0
    assert (
        "config.production refuses to start: DJANGO_SECRET_KEY is the example key from "
        "docs/deployment.md. Set a random key of your own" in result.stderr
    )
    assert documented not in result.stderr  # the message never repeats a key


def read_docs(name):
    return (ROOT / "docs" / name).read_text()


@pytest.fixture
def project(tmp_path):
    """A project folder with the key 'K' * 60 where given by ``publish(path)``."""

    def publish(*paths):
        for relative in paths:
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"SECRET_KEY = '{'K' * 60}'\n")
        return tmp_path

    return publish


@pytest.mark.parametrize(
    "path",
    [
        "settings.py",
        "docs/deploy.md",
        "notes.txt",
        "pyproject.toml",
        "setup.cfg",
        "tox.ini",
        "deploy/compose.yml",
        "deploy/k8s.yaml",
        "fixtures/keys.json",
        ".env.example",
        ".env.production",
    ],
)
def test_a_key_in_a_text_file_of_the_project_is_found(project, path):
    """Each kind of text file is read, in the project's root and in its folders."""
    assert file_publishing("K" * 60, project(path)) == path


@pytest.mark.parametrize(
    "path",
    [
        ".venv/lib/site.py",
        ".git/config.ini",
        "node_modules/pkg/package.json",
        "staticfiles/admin/readme.txt",
        "test-artifacts/log.txt",
        "env3/pyvenv.cfg",  # a virtualenv under any name: its folder is skipped
        ".env",  # where a deployment may keep its real key
        "db.sqlite3",
        "picture.png",
    ],
)
def test_a_key_outside_the_projects_own_text_is_not_looked_for(project, path):
    """Virtualenvs, .git, node_modules, collected static files, test artifacts, the
    .env file and files that are not text are skipped."""
    root = project(path)
    if path.endswith("pyvenv.cfg"):
        project("env3/lib/site.py")
    assert file_publishing("K" * 60, root) is None
    assert file_publishing("K" * 60, project("README.md")) == "README.md"


def test_looking_for_a_key_in_the_project_is_fast():
    """All of the project's text files are read in well under a second (a few ms here)."""
    started = time.perf_counter()
    assert file_publishing(secrets.token_urlsafe(50), ROOT) is None
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "hosts, named",
    [
        ("*", "'*', which accepts any Host header"),
        ("example.com,*", "'*', which accepts any Host header"),
        (".com", "'.com', a wildcard of a whole top-level domain"),
        (".", "'.', a wildcard of a whole top-level domain"),
        ("*.example.com", "'*.example.com', but Django reads '*' only alone"),
    ],
)
def test_allowed_hosts_of_any_host_refuse_to_start(hosts, named):
    result = check_deploy(**{**PRODUCTION, "ALLOWED_HOSTS": hosts})
    assert result.returncode != 0
    assert f"config.production refuses to start: ALLOWED_HOSTS contains {named}" in result.stderr
    assert "Set it to the host names this site is served at" in result.stderr
