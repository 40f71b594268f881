"""The RegisterUser step written as a plain DRF view: the baseline of bench/api_overhead.py,
and the web half of bench/cpu.py's floor (with ``bench.probe.tasks`` as its background).

The same validation (RegisterUserSerializer, with its Argon2 hash), the same business
writes in one transaction (the account and the user's state entry, through the same
service), the same two log lines, and the same background work sent after the commit
(one django-q2 job per subscriber of user.registered, carrying the user). What it does
not do is what the framework adds: the event and delivery rows, the run and trace, the
stored log lines, the trace id header.
"""

import logging

from django.db import transaction
from django_q.tasks import async_task
from rest_framework.response import Response
from rest_framework.views import APIView

from users import services
from users.serializers import RegisterUserSerializer
from workflow.state import StateStore

logger = logging.getLogger("workflow.steps")  # printed like the step's lines


class PlainRegisterView(APIView):
    def post(self, request):
        serializer = RegisterUserSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        name, email = body["name"], body["email"]
        logger.info("[PlainRegister] Registering new user name=%s email=%s", name, email)
        with transaction.atomic():
            try:
                user = services.register_user(StateStore(), name, email, body["password_hash"])
            except services.EmailTaken:
                return Response({"error": "Email already registered"}, status=409)
            event = {"userId": user["userId"], "name": name, "email": email}
            transaction.on_commit(lambda: enqueue(event))
        logger.info("[PlainRegister] User registered successfully userId=%s", user["userId"])
        return Response(user, status=201)


def enqueue(event):
    for task in ("bench.probe.tasks.welcome", "bench.probe.tasks.setup"):
        async_task(task, event)
