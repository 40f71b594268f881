"""The WORKFLOW settings, read lazily in one place (like DRF's ``api_settings``).

    from workflow.conf import workflow_settings
    workflow_settings.MAX_BODY_SIZE

Nothing reads Django settings at import time; a ``setting_changed`` signal (as sent by
``override_settings``) drops the cache.
"""

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS = {
    # runserver starts a django-q2 cluster beside the web server.
    "EMBEDDED_WORKERS": True,
    # Handler threads in each django-q2 worker process: handlers that wait on I/O are
    # not limited to one per core.
    "THREADS": 32,
    # How long a wake-up job waits for a free handler thread before handing the
    # delivery back to the sweeper (keeps a busy worker from hoarding work).
    "SLOT_WAIT": 1.0,
    # On shutdown, seconds running handlers get to finish before their deliveries are
    # handed back for another worker.
    "SHUTDOWN_GRACE": 2.5,
    # Seconds a running delivery stays hidden from other workers without news from its
    # worker, which renews this lease every third of it while the handler runs: how
    # soon the work of a worker that died or froze runs elsewhere. A step's
    # infrastructure={"queue": {"visibility_timeout": s}} sets its own.
    "LEASE": 10,
    # Seconds an attempt may run before it is recorded as failed, "timed out after N s",
    # and retried by its queue policy (Motia's default); a step's
    # infrastructure={"handler": {"timeout": s}} sets its own.
    "HANDLER_TIMEOUT": 30,
    # How deep in its trace an emit may be (each emit of a handler is one deeper than
    # the event it handles): a cycle of steps stops here, its emit failing.
    "MAX_DEPTH": 64,
    # How many events one trace may hold once its emits are 2 or more deep: a cycle
    # whose steps each emit several events (2**64 within MAX_DEPTH) stops here.
    "MAX_TRACE_EVENTS": 10_000,
    # The ticker (cron and sweeper) runs this often, in seconds.
    "TICK_INTERVAL": 0.25,
    # A pending delivery whose wake-up job was sent this long ago without a run is
    # presumed lost and sent again.
    "REENQUEUE_AFTER": 10,
    # API steps: request bodies larger than this get 413.
    "MAX_BODY_SIZE": 1024 * 1024,
    # API steps: a response stored for an Idempotency-Key is replayed for this many
    # seconds; an older one is ignored and replaced on the key's next use.
    "IDEMPOTENCY_TTL": 24 * 3600,
    # API steps: what a body that breaks the step's response_schema does: "raise" (the
    # call answers 500 naming the step, status and fields) or "log" (a warning stored
    # with the trace; the response goes out). None: "raise" with DEBUG on, else "log";
    # the framework's pytest plugin (workflow.testing) makes it "raise" in tests.
    "RESPONSE_SCHEMA_ERRORS": None,
    # API steps: middleware for every API step, then for the steps of a flow, as dotted
    # paths to `(request, ctx, next)` functions; they run before the step's own.
    "API_MIDDLEWARE": (),
    "FLOW_MIDDLEWARE": {},
    # Log field names containing one of these (case-insensitive) are redacted.
    "REDACT_KEYS": (
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
        "credit_card",
    ),
    # Step logs are stored in the database (for the workbench) as well as sent to
    # Python logging (logger "workflow.steps").
    "PERSIST_LOGS": True,
    # Per-step queue policy defaults; a step overrides them in
    # infrastructure={"queue": {...}}.
    "QUEUE": {
        "type": "standard",
        "max_retries": 3,
        # None: LEASE.
        "visibility_timeout": None,
        "delay_seconds": 0,
        "backoff": {"initial": 1.0, "factor": 2.0, "max": 300.0, "jitter": True},
    },
    # The admin may delete events, deliveries, runs, log lines and state (with the
    # model's delete permission): off, what the runtime recorded stays as it was.
    "ADMIN_DELETE": False,
    # Seconds between two checks of a workbench websocket's user (still active, staff,
    # logged in, with the feed's permissions); it closes when one fails.
    "WORKBENCH_RECHECK": 5,
    # Apps whose steps are not loaded (e.g. a disabled example), by app label.
    "EXCLUDE_APPS": (),
}


class WorkflowSettings:
    def __init__(self, defaults=None):
        self.defaults = defaults or DEFAULTS
        self._cached = set()

    @property
    def user_settings(self):
        if not hasattr(self, "_user_settings"):
            self._user_settings = getattr(settings, "WORKFLOW", {})
        return self._user_settings

    def __getattr__(self, attr):
        if attr not in self.defaults:
            raise AttributeError(f"Invalid WORKFLOW setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if attr == "QUEUE":
            value = {**self.defaults["QUEUE"], **value}
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def reload(self):
        for attr in self._cached:
            delattr(self, attr)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            delattr(self, "_user_settings")


workflow_settings = WorkflowSettings(DEFAULTS)


@receiver(setting_changed)
def reload_workflow_settings(*, setting, **kwargs):
    if setting == "WORKFLOW":
        workflow_settings.reload()
