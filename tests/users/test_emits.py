"""The tutorial's topics refuse bad data at the emit, naming each subscriber that would
refuse it and the field, before anything is recorded (not as one dead letter per
subscriber later)."""

import pytest

from workflow import InvalidEmit, bus
from workflow.models import Event

pytestmark = pytest.mark.django_db

NEW_USER = {"userId": "user-1", "name": "Ann", "email": "ann@example.com"}
SENT = {"userId": "user-1", "email": "ann@example.com", "type": "welcome", "sentAt": "now"}


def without(data, field):
    return {key: value for key, value in data.items() if key != field}


@pytest.mark.parametrize(
    ("topic", "data", "refused_by", "field"),
    [
        (
            "user.registered",
            without(NEW_USER, "email"),
            "SendWelcomeEmail, SetupUserAccount",
            "email",
        ),
        (
            "user.registered",
            without(NEW_USER, "userId"),
            "SendWelcomeEmail, SetupUserAccount",
            "userId",
        ),
        ("email.sent", without(SENT, "type"), "LogNotification", "type"),
        ("email.sent", without(SENT, "email"), "LogNotification", "email"),
    ],
)
def test_a_tutorial_event_missing_a_field_is_refused_at_the_emit(
    shipped_steps, topic, data, refused_by, field
):
    """user.registered without email (or userId), email.sent without type (or email):
    InvalidEmit naming the subscribers' input and the missing field; nothing recorded."""
    with pytest.raises(InvalidEmit) as info:
        bus.emit(topic, data)
    message = str(info.value)
    assert f"The emit of {topic!r} (from outside any step) was refused" in message
    assert f"the input of {refused_by} (" in message
    assert f'says {{"{field}": ["This field is required."]}}' in message
    assert not Event.objects.exists()


@pytest.mark.parametrize(("topic", "data"), [("user.registered", NEW_USER), ("email.sent", SENT)])
def test_a_whole_tutorial_event_is_emitted(shipped_steps, topic, data):
    """The same events with every field are emitted."""
    assert bus.emit(topic, data).data == data
