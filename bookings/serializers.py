"""Schemas of the trip-booking flow."""

from rest_framework import serializers

ITEMS = ("flight", "hotel", "car")
# The choices of the two "status" fields (named in SPECTACULAR_SETTINGS' ENUM_NAME_OVERRIDES).
BOOKING_STATUSES = ("started", "confirmed", "cancelled")
RESERVATION_STATUSES = ("reserved", "failed", "released")
CUSTOMER_MESSAGE = "Customer must be 2 to 100 characters"


def item_field():
    return serializers.CharField(min_length=1, max_length=100)


class NewBookingSerializer(serializers.Serializer):
    customer = serializers.CharField(
        min_length=2,
        max_length=100,
        error_messages={"min_length": CUSTOMER_MESSAGE, "max_length": CUSTOMER_MESSAGE},
    )
    flight = item_field()
    hotel = item_field()
    car = item_field()


class BookingSerializer(serializers.Serializer):
    bookingId = serializers.CharField()  # noqa: N815 (the contract's JSON names)
    status = serializers.ChoiceField(choices=BOOKING_STATUSES)
    customer = serializers.CharField()
    flight = serializers.CharField()
    hotel = serializers.CharField()
    car = serializers.CharField()
    createdAt = serializers.CharField()  # noqa: N815


class ReservationSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=RESERVATION_STATUSES)
    reservationId = serializers.CharField(allow_null=True)  # noqa: N815


class ReservationsSerializer(serializers.Serializer):
    flight = ReservationSerializer(allow_null=True)
    hotel = ReservationSerializer(allow_null=True)
    car = ReservationSerializer(allow_null=True)


class BookingStatusSerializer(serializers.Serializer):
    bookingId = serializers.CharField()  # noqa: N815
    status = serializers.ChoiceField(choices=BOOKING_STATUSES)
    reason = serializers.CharField(allow_null=True)
    reservations = ReservationsSerializer()


class BookingStartedSerializer(serializers.Serializer):
    """booking.started: what the three reservations need."""

    bookingId = serializers.CharField()  # noqa: N815
    flight = item_field()
    hotel = item_field()
    car = item_field()


class BookingErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
