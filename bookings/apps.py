from django.apps import AppConfig


class BookingsConfig(AppConfig):
    """The second example: the tutorial's saga, a trip booked in three parts."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "bookings"
    verbose_name = "Bookings (example saga)"
