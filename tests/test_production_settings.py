"""config.production: `check --deploy` is clean; bad configuration refuses to start."""

import importlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

from config.settings import DEVELOPMENT_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = secrets.token_urlsafe(50)
PRODUCTION = {"DJANGO_SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "example.com"}


def check_deploy(**env):
    """``manage.py check --deploy`` under config.production with ``env`` (None: unset)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "SECURE_")) and k != "ALLOWED_HOSTS"
    }
    environ["DJANGO_SETTINGS_MODULE"] = "config.production"
    environ.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_a_strong_key_and_allowed_hosts():
    """No warning, error or info, and none silenced."""
    result = check_deploy(**PRODUCTION)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    for section in ("WARNINGS", "ERRORS", "INFOS", "CRITICALS"):
        assert section not in output


def test_production_silences_no_check(monkeypatch):
    """Production silences no system check (the example's open topic is declared open,
    not silenced), and development reports none either."""
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
    ],
    ids=["missing", "empty", "development-key", "insecure-prefix", "short", "few-distinct"],
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
