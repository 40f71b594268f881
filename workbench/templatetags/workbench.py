import json

from django import template
from django.core.serializers.json import DjangoJSONEncoder

register = template.Library()


@register.filter
def pretty_json(value):
    """JSON for reading, indented; the template escapes it like any other text."""
    return json.dumps(value, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder)
