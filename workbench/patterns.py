"""Strings that match a regular expression: example values for fields that carry one
(``RegexField``, ``SlugField``, any ``RegexValidator``).

Python's own parser reads the pattern (``re._parser``; its public name ``sre_parse`` is
deprecated since 3.11). ``matches()`` walks the parsed pattern and builds, for a few
repeat counts, its plainest string: the first branch of an alternation, the first of
``PREFERRED`` a character class accepts. Look-arounds are not followed, so a string
may not match after all: callers check each one (the field validates it).
"""

import re
import string
from re import _constants as c
from re import _parser as parser

PREFERRED = string.ascii_lowercase + string.digits + string.ascii_uppercase + "_-.@ "
STRETCHES = (1, 0, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256)
REPEATS = (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT)
CATEGORIES = {
    c.CATEGORY_DIGIT: re.compile(r"\d"),
    c.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    c.CATEGORY_SPACE: re.compile(r"\s"),
    c.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    c.CATEGORY_WORD: re.compile(r"\w"),
    c.CATEGORY_NOT_WORD: re.compile(r"\W"),
}


def matches(pattern):
    """Distinct strings built from ``pattern`` (a string or a compiled pattern), each
    repeat taken once, not at all, then more and more times up to 256."""
    if isinstance(pattern, re.Pattern):
        pattern, flags = pattern.pattern, pattern.flags
    else:
        flags = 0
    if isinstance(pattern, bytes):
        return
    parsed = parser.parse(pattern, flags)
    seen = set()
    for stretch in STRETCHES:
        text = build(parsed, stretch, {})
        if text not in seen:
            seen.add(text)
            yield text


def build(parsed, stretch, groups):
    """The plainest string of ``parsed``, each repeat ``stretch`` times (within its
    bounds); ``groups`` collects what each numbered group matched, for back-references."""
    return "".join(piece(op, av, stretch, groups) for op, av in parsed)


def piece(op, av, stretch, groups):
    if op is c.LITERAL:
        return chr(av)
    if op is c.NOT_LITERAL:
        return next(ch for ch in PREFERRED if ord(ch) != av)
    if op is c.ANY:
        return PREFERRED[0]
    if op is c.IN:
        return in_class(av)
    if op is c.BRANCH:
        return build(av[1][0], stretch, groups)
    if op is c.SUBPATTERN:
        group, _, _, inner = av
        text = build(inner, stretch, groups)
        if group:
            groups[group] = text
        return text
    if op is c.ATOMIC_GROUP:
        return build(av, stretch, groups)
    if op in REPEATS:
        low, high, inner = av
        return "".join(build(inner, stretch, groups) for _ in range(min(max(low, stretch), high)))
    if op is c.GROUPREF:
        return groups.get(av, "")
    if op is c.GROUPREF_EXISTS:
        group, yes, no = av
        return build(yes if group in groups else (no or []), stretch, groups)
    return ""  # anchors and look-arounds take no characters


def in_class(items):
    """The first preferred character the class ``items`` (``[...]``, ``\\d`` ...) takes;
    else the first character it names."""
    for ch in PREFERRED:
        if accepts(items, ch):
            return ch
    for op, av in items:
        if op is c.LITERAL:
            return chr(av)
        if op is c.RANGE:
            return chr(av[0])
    return ""


def accepts(items, ch):
    negate, found = False, False
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            found |= ord(ch) == av
        elif op is c.RANGE:
            found |= av[0] <= ord(ch) <= av[1]
        elif op is c.CATEGORY and av in CATEGORIES:
            found |= bool(CATEGORIES[av].fullmatch(ch))
    return found != negate
