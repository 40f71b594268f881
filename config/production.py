"""Production settings: ``DJANGO_SETTINGS_MODULE=config.production``.

The development settings with DEBUG off, HTTPS enforced (HSTS, secure cookies, redirect
to https) and no development fallbacks: the process refuses to start, naming what is
wrong, without a strong ``DJANGO_SECRET_KEY`` of its own or with no ``ALLOWED_HOSTS``
(or one that accepts any host). ``manage.py check --deploy`` passes with these settings.

    DJANGO_SECRET_KEY          required: 50+ characters, 5+ distinct, not django-insecure-...,
                               not the example of docs/deployment.md, in no file of the
                               project (config/published.py)
                               (e.g. python -c "import secrets; print(secrets.token_urlsafe(50))")
    ALLOWED_HOSTS              required: comma-separated host names; no "*"
    DJANGO_SECURE_SSL_REDIRECT "0" when a TLS-terminating proxy already redirects to https
    DJANGO_SECURE_PROXY_SSL_HEADER  "1" to trust the proxy's X-Forwarded-Proto: https (only
                               behind a proxy that sets it and strips it from clients)
    DJANGO_SECURE_HSTS_SECONDS HSTS max-age (default one year; start lower when first enabling)

Everything else (DATABASE_URL, WORKFLOW_*) is read as in config/settings.py.
"""

import os

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from config.published import DOCUMENTED_EXAMPLE_KEY, file_publishing
from config.settings import *  # noqa: F403
from config.settings import BASE_DIR, DEVELOPMENT_SECRET_KEY, env_flag


def production_secret_key():
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    generate = 'python -c "import secrets; print(secrets.token_urlsafe(50))"'
    if not key:
        problem = "DJANGO_SECRET_KEY is not set"
    elif key == DEVELOPMENT_SECRET_KEY:
        problem = "DJANGO_SECRET_KEY is the development key from config/settings.py"
    elif key == DOCUMENTED_EXAMPLE_KEY:
        problem = "DJANGO_SECRET_KEY is the example key from docs/deployment.md"
    elif key.startswith(SECRET_KEY_INSECURE_PREFIX):
        problem = f"DJANGO_SECRET_KEY starts with {SECRET_KEY_INSECURE_PREFIX!r}"
    elif len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        problem = (
            f"DJANGO_SECRET_KEY is too weak: it needs at least {SECRET_KEY_MIN_LENGTH} "
            f"characters, {SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them distinct"
        )
    elif published := file_publishing(key, BASE_DIR):
        problem = (
            f"DJANGO_SECRET_KEY appears in {published}, a file of this project: whoever "
            "reads the code knows it"
        )
    else:
        return key
    raise ImproperlyConfigured(
        f"config.production refuses to start: {problem}. Set a random key of your own, "
        f"e.g. from {generate}, and keep it in the environment, out of the project's files"
    )


def production_allowed_hosts():
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    if not hosts:
        raise ImproperlyConfigured(
            "config.production refuses to start: ALLOWED_HOSTS is not set. Set it to the "
            "comma-separated host names this site is served at, e.g. ALLOWED_HOSTS=example.com"
        )
    if problem := next(filter(None, map(wildcard_problem, hosts)), None):
        raise ImproperlyConfigured(
            f"config.production refuses to start: ALLOWED_HOSTS contains {problem}. Set it "
            "to the host names this site is served at, e.g. ALLOWED_HOSTS=example.com "
            "(.example.com for the domain and its subdomains)"
        )
    return hosts


def wildcard_problem(pattern):
    """What is wrong with a host pattern that is a wildcard of everything, or None."""
    if pattern == "*":
        return "'*', which accepts any Host header (and any origin on the workbench's websocket)"
    if pattern.startswith(".") and "." not in pattern[1:]:
        return f"{pattern!r}, a wildcard of a whole top-level domain"
    if "*" in pattern:
        return f"{pattern!r}, but Django reads '*' only alone, where it accepts any host"
    return None


DEBUG = False
SECRET_KEY = production_secret_key()
ALLOWED_HOSTS = production_allowed_hosts()

SECURE_SSL_REDIRECT = env_flag("DJANGO_SECURE_SSL_REDIRECT", True)
if env_flag("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
