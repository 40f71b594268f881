"""Middleware of API steps: Motia's ordered ``(request, ctx, next)`` functions.

    def require_api_key(request, ctx, next):
        if request.headers.get("x-api-key") != "s3cret":
            return {"status": 401, "body": {"error": "Unauthorized"}}  # short-circuit
        return next()  # the rest of the chain, then the handler; returns its result

A middleware gets the request the handler gets (body and query already validated)
and the step's context; ``next()`` returns what the handler (or the next middleware)
returned, which a middleware may change or replace. One that does not call ``next()``
answers the request itself: the handler does not run. ``async def`` middleware get
the async context and ``await next()``.

A step's chain is: ``WORKFLOW["API_MIDDLEWARE"]`` (every API step), then
``WORKFLOW["FLOW_MIDDLEWARE"][flow]`` for each of the step's flows in order, then the
step's own ``middleware=[...]``. Settings name middleware by dotted path; a function
listed twice runs once, at its first place. The chain runs inside the handler's
transaction: a middleware's emits and state writes commit or roll back with it.
"""

import inspect
from functools import lru_cache

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import workflow_settings

SIGNATURE = ("request", "ctx", "next")
EXAMPLE = "def my_middleware(request, ctx, next): ... return next()"


def middleware_problem(fn):
    """Why ``fn`` cannot be a middleware (a sentence with the fix), or None."""
    if isinstance(fn, str):
        return (
            f"middleware entries are functions, not the string {fn!r}; import the function "
            "and list it (dotted paths go in WORKFLOW['API_MIDDLEWARE'] or 'FLOW_MIDDLEWARE')"
        )
    if not callable(fn):
        return f"middleware entries are functions `{EXAMPLE}`, not {fn!r}"
    try:
        inspect.signature(fn).bind(*SIGNATURE)
    except TypeError:
        return f"middleware {fn!r} cannot be called as mw(request, ctx, next); write `{EXAMPLE}`"
    except ValueError:  # no signature to read (some builtins): trust it
        pass
    return None


def classes_problem(value, field_name, example):
    """Why ``value`` is not a list of DRF policy classes (a sentence with the fix), or None."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return f"{field_name} must be a list of classes, e.g. {field_name}=[{example}]"
    for item in value:
        if isinstance(item, str) or not callable(item):
            hint = "" if isinstance(item, str) else " (the class itself, not an instance)"
            return f"{field_name} entries are classes{hint}, e.g. [{example}]; not {item!r}"
    return None


@lru_cache(maxsize=256)
def _imported(entry):
    try:
        return import_string(entry)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"WORKFLOW middleware {entry!r} cannot be imported: {exc}"
        ) from None


def resolve(entries, setting):
    """The functions a middleware setting names (dotted paths, or functions)."""
    if isinstance(entries, str) or not isinstance(entries, list | tuple):
        raise ImproperlyConfigured(
            f"WORKFLOW[{setting}] must be a list of dotted paths, e.g. ['myapp.middleware.cors']"
        )
    functions = []
    for entry in entries:
        fn = _imported(entry) if isinstance(entry, str) else entry
        problem = middleware_problem(fn)
        if problem:
            raise ImproperlyConfigured(f"WORKFLOW[{setting}]: {problem}")
        functions.append(fn)
    return functions


def flow_setting():
    by_flow = workflow_settings.FLOW_MIDDLEWARE
    if not isinstance(by_flow, dict):
        raise ImproperlyConfigured(
            "WORKFLOW['FLOW_MIDDLEWARE'] maps flow names to lists of dotted paths, "
            "e.g. {'user-registration': ['myapp.middleware.audit']}"
        )
    return by_flow


def check_settings():
    """Resolve every middleware setting; ImproperlyConfigured names the first fault."""
    resolve(workflow_settings.API_MIDDLEWARE, "'API_MIDDLEWARE'")
    for flow, entries in flow_setting().items():
        resolve(entries, f"'FLOW_MIDDLEWARE'][{flow!r}")


def chain_for(config):
    """The middleware of an API step, in order: global, its flows', its own."""
    functions = resolve(workflow_settings.API_MIDDLEWARE, "'API_MIDDLEWARE'")
    by_flow = flow_setting()
    for flow in config.flows:
        functions += resolve(by_flow.get(flow, ()), f"'FLOW_MIDDLEWARE'][{flow!r}")
    functions += list(config.middleware)
    unique = []
    for fn in functions:
        if fn not in unique:
            unique.append(fn)
    return unique
