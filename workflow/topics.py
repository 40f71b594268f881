"""Topic names, and the patterns an event step may subscribe with.

A topic is a name of dot-separated segments, such as ``user.registered``. An event
step subscribes to topics, or to patterns of them, where a segment is a wildcard:

- ``*`` as a segment matches exactly one segment: ``user.*`` matches
  ``user.registered``, not ``user.email.sent`` nor ``user``;
- ``**`` as a segment matches any number of segments, none included (as AMQP's ``#``):
  ``user.**`` matches ``user``, ``user.registered`` and ``user.email.sent``;
  ``**.failed`` matches ``flight.failed`` and ``trip.flight.failed``;
- ``*`` alone matches every topic (Motia's monitor), as ``**`` does.

A wildcard is a whole segment (``user*`` is refused, with the fix), and an emitted
topic is a name, never a pattern.
"""

from functools import lru_cache

EVERY = "*"
ONE = "*"
ANY = "**"


class TopicError(ValueError):
    """A topic or pattern that cannot work; the message says how to write it."""


def is_pattern(topic: str) -> bool:
    """Whether ``topic`` has a wildcard segment (``*`` alone included)."""
    return any(segment in (ONE, ANY) for segment in topic.split("."))


def is_catch_all(topic: str) -> bool:
    """``*`` or ``**``: every topic (a monitor)."""
    return topic in (EVERY, ANY)


def check_pattern(topic: str, field_name: str = "subscribes") -> None:
    """Raise ``TopicError`` for a subscription that is no topic and no pattern."""
    segments = topic.split(".")
    if "" in segments:
        raise TopicError(
            f"{field_name}: {topic!r} has an empty segment; topics are dot-separated "
            "names such as 'user.registered'"
        )
    for segment in segments:
        if "*" in segment and segment not in (ONE, ANY):
            fixed = ".".join(s if "*" not in s or s in (ONE, ANY) else ONE for s in segments)
            raise TopicError(
                f"{field_name}: {topic!r}: a wildcard is a whole segment; write "
                f"{fixed!r} (one segment) or {fixed.replace(ONE, ANY)!r} (any depth)"
            )


def check_name(topic: str, field_name: str = "emits") -> None:
    """Raise ``TopicError`` for an emitted topic that is a pattern."""
    check_pattern(topic, field_name)
    if is_pattern(topic):
        raise TopicError(
            f"{field_name}: {topic!r} is a pattern; an event is emitted on one topic, "
            "such as 'user.registered' (patterns are for subscribes)"
        )


def example(pattern: str) -> str:
    """A topic ``pattern`` matches (``pattern`` itself when it is a name)."""
    if is_catch_all(pattern):
        return "example.topic"
    return ".".join(
        "example" if segment in (ONE, ANY) else segment for segment in pattern.split(".")
    )


def matches(pattern: str, topic: str) -> bool:
    """Whether a subscription to ``pattern`` (a topic name or a pattern) takes ``topic``."""
    if pattern == topic or is_catch_all(pattern):
        return True
    return is_pattern(pattern) and _segments_match(
        tuple(pattern.split(".")), tuple(topic.split("."))
    )


@lru_cache(maxsize=4096)
def _segments_match(pattern: tuple[str, ...], topic: tuple[str, ...]) -> bool:
    if not pattern:
        return not topic
    head, rest = pattern[0], pattern[1:]
    if head == ANY:  # none, one or more of the topic's segments
        return any(_segments_match(rest, topic[skip:]) for skip in range(len(topic) + 1))
    return bool(topic) and head in (ONE, topic[0]) and _segments_match(rest, topic[1:])
