"""An API step's ``response_schema`` enforced: the body it answers is checked against
the schema of its status code, as the client will read it (rendered to JSON, strictly
typed: see ``strict``).

What a body that breaks it does is ``WORKFLOW["RESPONSE_SCHEMA_ERRORS"]``:

- ``"raise"``: ``ResponseSchemaError``, naming the step, the status and the fields, so
  the call answers 500 and its transaction rolls back (development and tests);
- ``"log"``: the response goes out unchanged, and the step logs the warning
  ``MESSAGE`` with the status and the fields; the line is stored with the call's trace,
  so it shows in the workbench's logs and traces, and the admin's Log entries count
  them (search for the message).

Unset (None), it is ``"raise"`` with ``DEBUG`` on and under pytest with the framework's
plugin (``workflow.testing``), else ``"log"``.
"""

import json

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer

from .conf import workflow_settings
from .errors import ResponseSchemaError
from .schemas import schema_name, validate

MESSAGE = "Response breaks its response_schema"
MODES = ("raise", "log")


def check_response(step, status_code, body, ctx):
    """Check ``body``, answered with ``status_code``, against ``step``'s response_schema:
    raise ``ResponseSchemaError`` or log the warning (see the module)."""
    schema = step.config.response_schema.get(status_code)
    if schema is None:
        return
    try:
        sent = json.loads(JSONRenderer().render(body) or "null")
    except (TypeError, ValueError):
        return  # not JSON at all: rendering the response fails, as it says
    try:
        validate(schema, sent)
    except ValidationError as exc:
        errors = exc.detail
    else:
        return
    if mode() == "raise":
        raise ResponseSchemaError(
            f"API step {step.name} answered {status_code} with a body that breaks its "
            f"response_schema[{status_code}] ({schema_name(schema)}): {json.dumps(errors)}; "
            f"fix the body its handler returns ({step.file}) or the schema"
        )
    ctx.logger.warn(MESSAGE, status=status_code, schema=schema_name(schema), errors=errors)


def mode():
    """``"raise"`` or ``"log"``, from ``WORKFLOW["RESPONSE_SCHEMA_ERRORS"]``."""
    value = workflow_settings.RESPONSE_SCHEMA_ERRORS
    if value is None:
        return "raise" if settings.DEBUG else "log"
    if value not in MODES:
        raise ImproperlyConfigured(
            f'WORKFLOW["RESPONSE_SCHEMA_ERRORS"] is "raise", "log" or None (from DEBUG), '
            f"not {value!r}"
        )
    return value
