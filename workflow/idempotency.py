"""Idempotency keys for API steps, as Stripe has them.

A client that may retry a request (after a timeout or a dropped connection) sends an
``Idempotency-Key`` header. The first request with a key runs the step, and its response
is stored under (step, key) in the handler's own transaction: the response, the
handler's writes and its emits commit together or not at all. A repeat gets the stored
response again, marked ``Idempotent-Replayed: true``, and the handler does not run. A
repeat with another method, path or body is refused (422); the record tells them apart
by a fingerprint, an HMAC of the request, so it never holds the body (which may carry a
password).

Of two concurrent first requests, the one whose insert hits the unique (step, key)
constraint rolls its whole transaction back and answers with the winner's response.
Only responses below 500 are stored, so a failed request may be retried with its key;
a record older than ``WORKFLOW["IDEMPOTENCY_TTL"]`` seconds is ignored and replaced.
A response the handler builds itself (an ``HttpResponse`` rather than ``{"status": ...,
"body": ...}``) is not stored: its request runs again on a retry.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from .conf import workflow_settings
from .models import IdempotentResponse

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
FINGERPRINT_SALT = "workflow.idempotency.fingerprint"


class KeyTaken(Exception):
    """A concurrent request with the same key stored its response first."""


@dataclass(frozen=True)
class Claim:
    """One request's use of an idempotency key on one step."""

    step_name: str
    key: str
    fingerprint: str

    def stored(self):
        """The unexpired record stored under this key, or None."""
        return self._records().filter(created_at__gte=expiry()).first()

    def store(self, response, trace_id):
        """Record ``response`` in the caller's transaction; KeyTaken if a concurrent
        request with the key recorded its own first (the caller must then roll back)."""
        if not isinstance(response, Response) or response.status_code >= 500:
            return
        self._records().filter(created_at__lt=expiry()).delete()
        try:
            with transaction.atomic():  # a savepoint: the failed insert is undone alone
                IdempotentResponse.objects.create(
                    step_name=self.step_name,
                    key=self.key,
                    fingerprint=self.fingerprint,
                    status_code=response.status_code,
                    body=json.loads(json.dumps(response.data, cls=JSONEncoder)),
                    headers={k: v for k, v in response.items() if k != "Content-Type"},
                    trace_id=trace_id,
                )
        except IntegrityError:
            raise KeyTaken(
                f"{HEADER} {self.key!r} was used by a concurrent request to "
                f"{self.step_name}, which committed first; this request was rolled back"
            ) from None

    def answer(self, record):
        """The response to a repeat: the stored one, or 422 if the request differs."""
        if record.fingerprint != self.fingerprint:
            message = (
                f"This {HEADER} was already used with a different request (method, path "
                "or body); send a new key for a new request."
            )
            return Response({"error": message}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        headers = {**record.headers, REPLAYED_HEADER: "true"}
        return Response(record.body, status=record.status_code, headers=headers)

    def _records(self):
        return IdempotentResponse.objects.filter(step_name=self.step_name, key=self.key)


def claim(step, request):
    """The request's claim on its ``Idempotency-Key`` for ``step``; None without one.

    A key that is empty, longer than 255 characters or not printable ASCII is a 400.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise exceptions.ValidationError(
            {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."]}
        )
    return Claim(step.name, key, fingerprint(request))


def fingerprint(request):
    """An HMAC (sha256, hex) of the method, path and canonical JSON of the body."""
    body = request.data if request.body else None
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=JSONEncoder)
    message = f"{request.method} {request.path}\n{canonical}"
    return salted_hmac(FINGERPRINT_SALT, message, algorithm="sha256").hexdigest()


def expiry():
    """Records created before this moment are ignored."""
    return timezone.now() - timedelta(seconds=workflow_settings.IDEMPOTENCY_TTL)
