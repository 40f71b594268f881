"""The JSON parser of API steps: a bad body is a 400, never a 500.

DRF's ``JSONParser`` turns malformed JSON into a 400, but a body nested deeply enough
(``[[[[...]]]]``, well under the 1 MB body limit) makes the stdlib decoder raise
``RecursionError``, which DRF does not catch: the request fails with a 500. This
parser answers that with a 400, and also refuses, with a 400 naming the reason,
JSON that parses but could not be stored or emitted by a step: nesting deeper than
``max_depth``, numbers too large for a float (``1e400``) and unpaired surrogates
(``"\\ud800"``), which are not Unicode text and which PostgreSQL's ``jsonb`` rejects.

Its 400 has the shape of every other 400 of an API step, messages by field (OpenAPI's
``FieldErrors``): the reason is under DRF's ``NON_FIELD_ERRORS_KEY``, as for a body
that is JSON but not an object, ``{"non_field_errors": ["JSON parse error - ..."]}``.
"""

import math
import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings

SURROGATE = re.compile("[\ud800-\udfff]")


class JSONParser(parsers.JSONParser):
    # serde_json's default; a request body has no business being deeper.
    max_depth = 128

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise refused(self.too_deep()) from None
        except ParseError as error:  # DRF's, {"detail": ...}: malformed JSON
            raise refused(str(error.detail)) from None
        self.check(data)
        return data

    def too_deep(self):
        return f"JSON parse error - nested deeper than {self.max_depth} levels"

    def check(self, data):
        """Raise ParseError unless ``data`` is JSON a step can store and emit."""
        stack = [(data, 0)]  # iterative: the depth check must not recurse itself
        while stack:
            value, depth = stack.pop()
            if isinstance(value, dict | list):
                if depth >= self.max_depth:
                    raise refused(self.too_deep())
                if isinstance(value, dict):
                    stack.extend((key, depth) for key in value)
                    value = value.values()
                stack.extend((item, depth + 1) for item in value)
            elif isinstance(value, str):
                if SURROGATE.search(value):
                    raise refused("JSON parse error - unpaired surrogate in a string")
            elif isinstance(value, float) and not math.isfinite(value):
                raise refused("JSON parse error - number out of range")


def refused(message):
    """A 400 naming ``message`` as what concerns no one field of the body."""
    return ParseError({api_settings.NON_FIELD_ERRORS_KEY: [message]})
