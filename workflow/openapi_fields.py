"""A text field's schema that accepts exactly the strings DRF's ``CharField`` accepts.

drf-spectacular documents a ``CharField(min_length=2, max_length=200)`` as a string of 2
to 200 characters, but the field refuses NUL characters, refuses a blank string unless
``allow_blank``, and, with ``trim_whitespace`` (the default), strips whitespace before
it checks the length: ``"\\x1cA"`` is one character to it, and ``"A" + 300 spaces``
fits in 200. So the document promised what the API refused, and the other way round.

``text_pattern`` adds a ``pattern`` that says all of it. With trimming, the lengths go
into the pattern and ``minLength``/``maxLength`` are dropped, since they would count the
untrimmed string. Whitespace is spelled out as ``str.strip`` has it (regex engines'
``\\s`` differ: ECMA's takes in U+FEFF and leaves out U+001C-U+001F). A field with a
pattern of its own (``RegexField``, ``SlugField``) is left as drf-spectacular has it.
"""

from rest_framework.fields import CharField

# The characters str.isspace() is true for, so those str.strip() removes.
SPACES = (
    "\\t-\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
SPACE = f"[{SPACES}]"
CHAR = "[^\\u0000]"  # a CharField refuses NUL (and lone surrogates, which JSON cannot carry)
VISIBLE = f"[^{SPACES}\\u0000]"
NOTHING = "(?!)"  # matches no string


def text_pattern(field, schema):
    """Constrain ``schema`` (a string's, from ``field``) to what ``field`` accepts."""
    if not isinstance(field, CharField) or schema.get("type") != "string" or "pattern" in schema:
        return
    low = max(field.min_length or 0, 1)  # "" (or all whitespace, trimmed) is blank
    high = field.max_length
    if field.trim_whitespace:
        schema.pop("minLength", None)
        schema.pop("maxLength", None)
        accepted, blank = trimmed(low, high), f"{SPACE}*"
    elif high is not None and high < low:
        accepted, blank = NOTHING, ""  # max_length=0
    else:
        accepted, blank = f"{CHAR}{{{low},{'' if high is None else high}}}", ""
        if field.allow_blank:
            schema.pop("minLength", None)
        else:
            schema["minLength"] = max(schema.get("minLength", 0), 1)
    schema["pattern"] = f"^(?:{accepted}|{blank})$" if field.allow_blank else f"^{accepted}$"


def trimmed(low, high):
    """A regex of the strings that have ``low`` to ``high`` characters once stripped."""
    if high is not None and high < low:
        return NOTHING
    if high is None and low <= 1:
        return f"{CHAR}*{VISIBLE}{CHAR}*"  # a visible character anywhere
    if high is not None and high < 2:
        core = VISIBLE
    else:
        inner = f"{CHAR}{{{max(low - 2, 0)},{'' if high is None else high - 2}}}"
        core = f"{VISIBLE}{inner}{VISIBLE}"
        if low <= 1:
            core = f"(?:{VISIBLE}|{core})"
    return f"{SPACE}*{core}{SPACE}*"
