"""A text field's documented schema accepts exactly the strings the field accepts."""

import re
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from workflow.openapi_fields import SPACE, text_pattern

# Whitespace of every kind str.strip() knows, NUL, and the characters ECMA's \s adds.
ODD = "\x00\t\n\x0b\x0c\r\x1c\x1f \x85\xa0\u1680\u2000\u200a\u2028\u202f\u3000\ufeffab"

# Lone surrogates are left out: a JSON body cannot carry them (workflow.parsers refuses).
TEXT = st.characters(exclude_categories=["Cs"])


def accepts(field, value):
    try:
        field.run_validation(value)
    except serializers.ValidationError:
        return False
    return True


def documented(schema, value):
    """Whether ``value`` fits the schema's pattern, minLength and maxLength."""
    return (
        re.fullmatch(schema["pattern"], value) is not None
        and len(value) >= schema.get("minLength", 0)
        and len(value) <= schema.get("maxLength", sys.maxsize)
    )


fields = st.builds(
    lambda low, span, blank, trim: serializers.CharField(
        min_length=low,
        max_length=None if span is None else (low or 0) + span,
        allow_blank=blank,
        trim_whitespace=trim,
    ),
    low=st.none() | st.integers(0, 4),
    span=st.none() | st.integers(0, 4),
    blank=st.booleans(),
    trim=st.booleans(),
)


@settings(max_examples=2000, deadline=None, database=None)
@given(field=fields, value=st.text(st.sampled_from(ODD) | TEXT, max_size=10))
def test_the_pattern_accepts_what_the_char_field_accepts(field, value):
    """Whatever min_length, max_length, allow_blank and trim_whitespace: the documented
    string is valid exactly when the field takes it (NUL refused, blank refused unless
    allowed, lengths counted after trimming)."""
    schema = {"type": "string"}
    if field.min_length is not None:
        schema["minLength"] = field.min_length
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    text_pattern(field, schema)
    assert documented(schema, value) == accepts(field, value), schema


def test_spaces_are_those_str_strip_removes():
    """The whitespace class is str.isspace(), character for character."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert bool(re.fullmatch(SPACE, char)) == char.isspace(), hex(code)


def test_a_field_with_its_own_pattern_is_left_alone():
    """A RegexField's pattern is drf-spectacular's, not replaced."""
    schema = {"type": "string", "pattern": "^[a-z]+$"}
    text_pattern(serializers.RegexField("^[a-z]+$"), schema)
    assert schema == {"type": "string", "pattern": "^[a-z]+$"}
