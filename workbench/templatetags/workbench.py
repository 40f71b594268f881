import json

from django import template
from django.core.serializers.json import DjangoJSONEncoder

register = template.Library()


@register.filter
def field_pairs(fields):
    """A log line's fields as ``(key, value)``, the value as the console prints it:
    a string as it is, anything else as JSON."""
    return [
        (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for key, value in (fields or {}).items()
    ]


@register.filter
def pretty_json(value):
    """JSON for reading, indented; the template escapes it like any other text."""
    return json.dumps(value, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder)
