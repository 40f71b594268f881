"""Schemas of the user-registration flow (the tutorial's zod schemas, as serializers)."""

from django.contrib.auth.hashers import make_password
from rest_framework import serializers

from .models import Account

NAME_MESSAGE = "Name must be at least 2 characters"
EMAIL_MESSAGE = "Invalid email address"
PASSWORD_MESSAGE = "Password must be at least 8 characters"


class RegisterUserSerializer(serializers.Serializer):
    name = serializers.CharField(
        min_length=2,
        max_length=200,
        error_messages={"min_length": NAME_MESSAGE, "blank": NAME_MESSAGE},
    )
    email = serializers.EmailField(
        max_length=254, error_messages={"invalid": EMAIL_MESSAGE, "blank": EMAIL_MESSAGE}
    )
    password = serializers.CharField(
        min_length=8,
        max_length=1024,
        write_only=True,
        trim_whitespace=False,
        error_messages={"min_length": PASSWORD_MESSAGE, "blank": PASSWORD_MESSAGE},
    )

    def validate_email(self, value):
        # The account stores the address lower-cased, which can be longer ("İ" lower-cases
        # to two characters): it must still fit the column, or PostgreSQL fails the insert.
        if len(value.lower()) > Account._meta.get_field("email").max_length:
            raise serializers.ValidationError(EMAIL_MESSAGE)
        return value

    def validate(self, attrs):
        # The plain password goes no further than this: the handler gets its hash.
        attrs["password_hash"] = make_password(attrs.pop("password"))
        return attrs


class UserSerializer(serializers.Serializer):
    userId = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()
    status = serializers.CharField()
    createdAt = serializers.CharField()


class UserStatusSerializer(UserSerializer):
    emailSent = serializers.BooleanField()
    accountSetup = serializers.BooleanField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()


class NewUserSerializer(serializers.Serializer):
    """The ``user.registered`` event."""

    userId = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()


class EmailSentSerializer(serializers.Serializer):
    """The ``email.sent`` event."""

    userId = serializers.CharField()
    email = serializers.CharField()
    type = serializers.CharField()
    sentAt = serializers.CharField()


class VerificationSerializer(serializers.Serializer):
    """A user's email verification, as the email-verification flow records it."""

    userId = serializers.CharField()
    emailVerified = serializers.BooleanField()
    verifiedAt = serializers.CharField(allow_null=True)
    activated = serializers.BooleanField()
    activatedAt = serializers.CharField(allow_null=True)
    noticeSent = serializers.BooleanField()


class EmailVerifiedSerializer(serializers.Serializer):
    """The ``email.verified`` and ``account.activated`` events."""

    userId = serializers.CharField()
    email = serializers.CharField()
