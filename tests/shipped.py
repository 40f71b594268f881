"""The steps this project ships: the tutorial's user-registration flow and its
email-verification chain, in users/steps/ (verification/), and the bookings example's trip-booking
flow, in bookings/steps/.

Tests about the shipped project (its flow's graph, ``manage.py check`` and
``check --deploy`` being clean, the landing page) look at these steps, each loaded from
its module by name, not at whatever the project's registry holds: a step a reader adds
(the tutorial's "Add a step") is theirs, and a real warning about it is not a fault of
the shipped project. The ``shipped_steps`` fixture (tests/conftest.py) puts them in the
registry for a test.

``python -m tests.shipped COMMAND [OPTIONS]`` runs a management command as ``manage.py``
does, with the registry holding the shipped steps only (for a command that must run in a
process of its own, such as ``check --deploy`` under other settings).
"""

import os
import sys

import django
from django.core.management import execute_from_command_line

from workflow.registry import Registry, registry

SHIPPED_STEPS = {
    "RegisterUser": "users/steps/register_user_step.py",
    "SendWelcomeEmail": "users/steps/send_welcome_email_step.py",
    "SetupUserAccount": "users/steps/setup_account_step.py",
    "LogNotification": "users/steps/log_notification_step.py",
    "GetUserStatus": "users/steps/get_user_status_step.py",
    "VerifyEmail": "users/steps/verification/verify_email_step.py",
    "ActivateAccount": "users/steps/verification/activate_account_step.py",
    "SendActivationNotice": "users/steps/verification/send_activation_notice_step.py",
    "GetVerification": "users/steps/verification/get_verification_step.py",
    "CreateBooking": "bookings/steps/create_booking_step.py",
    "GetBooking": "bookings/steps/get_booking_step.py",
    "ReserveFlight": "bookings/steps/reserve_flight_step.py",
    "ReserveHotel": "bookings/steps/reserve_hotel_step.py",
    "ReserveCar": "bookings/steps/reserve_car_step.py",
    "ConfirmBooking": "bookings/steps/confirm_booking_step.py",
    "UpdateBooking": "bookings/steps/update_booking_step.py",
    "ReleaseReservation": "bookings/steps/release_reservation_step.py",
}


def shipped_registry():
    """A registry of the shipped steps only; a module that cannot be loaded is kept as a
    problem, as autodiscover keeps it (so ``check`` reports it)."""
    shipped = Registry()
    for file in SHIPPED_STEPS.values():
        shipped.load_module(file.removesuffix(".py").replace("/", "."))
    return shipped


def use_shipped_steps(target):
    """Make ``target`` (the project's registry, in place) hold the shipped steps only."""
    target.__dict__.update(shipped_registry().__dict__)


def main(argv):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()  # discovers every step of the project
    use_shipped_steps(registry)
    execute_from_command_line(["manage.py", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
