"""Settings for the example project.

The embedded default needs nothing but Python: SQLite (in WAL mode), django-q2's ORM
broker and an in-process channel layer. Environment variables move the same code to
other parts without code changes:

    DATABASE_URL       any URL dj-database-url reads (default: sqlite:///db.sqlite3)
    DJANGO_DEBUG       "0" turns DEBUG off (default on, for development)
    DJANGO_SECRET_KEY  the secret key (a development key is used when unset)
    ALLOWED_HOSTS      comma-separated
    WORKFLOW_WORKERS   django-q2 worker processes (default: number of cores)
    WORKFLOW_THREADS   handler threads per worker process (default 32)
    WORKFLOW_EMBEDDED_WORKERS  "0" stops runserver from starting the workers
    DATABASE_POOL_SIZE most PostgreSQL connections one process holds (default 10;
                       0: no pool, a new connection per request and per handler run)

For production, DJANGO_SETTINGS_MODULE=config.production (see that module).
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_flag("DJANGO_DEBUG", True)
# config/production.py refuses to start with this key.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-change-me-in-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    # workflow comes first: its runserver (daphne's, plus the embedded workers) and its
    # qcluster (django-q2's, plus the ticker) take precedence over the ones they extend.
    "workflow",
    "daphne",
    # The admin, with the workbench's pages in its site (workbench/sites.py).
    "workbench.apps.WorkbenchAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_q",
    "channels",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files (no CDN)
    "workbench",
    "users",
    "bookings",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool of connections in each process, shared by its threads (Django's advice
    # under ASGI, where persistent connections leak). Without it every request, handler
    # run and broker poll opens a new PostgreSQL session (a server process).
    # DATABASE_POOL_SIZE is the most one process holds at once: in a worker process
    # the claimer and the completer keep one each, and a handler holds one from its
    # first query until it stores a log line or ends (other handler threads wait for
    # one meanwhile); use 4 or more. 0: no pool.
    POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", 10))
    if POOL_SIZE:
        DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 1, "max_size": POOL_SIZE}}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once across the web server and the
    # workers; IMMEDIATE takes the write lock at BEGIN, so a transaction never fails
    # on a lock upgrade, and busy waits queue writers instead of failing them.
    # workflow.sqlite3 is Django's backend with writers served in turn (its docstring).
    DATABASES["default"]["ENGINE"] = "workflow.sqlite3"
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
    # A file (not memory) so tests can use several threads; one per test process.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"workflow-test-{os.getpid()}.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "config.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSONParser, but JSON nested too deep (or not storable) is a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": ["workflow.parsers.JSONParser"],
    # API steps are public endpoints, as in Motia; a step narrows this itself.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# OpenAPI at /api/schema/, Swagger UI at /api/docs/, ReDoc at /api/redoc/ (workflow.api_urls).
SPECTACULAR_SETTINGS = {
    # The bookings example's two "status" fields, each with its own enum.
    "ENUM_NAME_OVERRIDES": {
        "BookingStatusEnum": "bookings.serializers.BOOKING_STATUSES",
        "ReservationStatusEnum": "bookings.serializers.RESERVATION_STATUSES",
    },
    "TITLE": "Workflow steps API",
    "DESCRIPTION": "The API steps of this project; their event topics are at /api/asyncapi.json.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it would load an image from the validator's site.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# REDIS_URL (redis://host:6379/0) gives the workbench's live layer to every process
# through channels-redis; without it, an in-memory layer (one process).
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# django-q2 reads Q_CLUSTER when it is imported, so it is plain data here. The delivery
# table is the source of truth; a django-q2 job only wakes a worker for one delivery,
# so successful jobs are not stored and the broker's own retry is only a safety net.
Q_CLUSTER = {
    "name": "workflow",
    "orm": "default",
    "workers": int(os.environ.get("WORKFLOW_WORKERS", 0)) or os.cpu_count() or 2,
    # A job only hands a delivery to a handler thread (at most SLOT_WAIT seconds); a
    # job a dead cluster took is handed out again after `retry` seconds.
    "timeout": 8,
    "retry": 10,
    "poll": 0.05,
    "bulk": 5,
    "queue_limit": 16,
    "save_limit": -1,
    "ack_failures": True,
    "max_attempts": 1,
    "recycle": 1_000_000,
    "scheduler": False,
    "catch_up": False,
    "log_level": "WARNING",
    "label": "Task queue",
}
# WORKFLOW_BROKER: "orm" (the default database; nothing else to run) or "redis" (REDIS_URL).
# Either way a job only wakes a worker: a job lost with Redis is found by the sweeper.
WORKFLOW_BROKER = os.environ.get("WORKFLOW_BROKER", "orm")
if WORKFLOW_BROKER == "redis":
    if not REDIS_URL:
        raise ImproperlyConfigured("WORKFLOW_BROKER=redis needs REDIS_URL (redis://host:6379/0)")
    del Q_CLUSTER["orm"]
    Q_CLUSTER["redis"] = REDIS_URL
elif WORKFLOW_BROKER == "orm":
    Q_CLUSTER["broker_class"] = "workflow.queue.OrmBroker"  # django-q2's, with fewer writes
else:
    raise ImproperlyConfigured(f"WORKFLOW_BROKER is 'orm' or 'redis', not {WORKFLOW_BROKER!r}")

# The bookings example: seconds its ConfirmBooking join waits for the three reservations.
BOOKINGS_JOIN_TIMEOUT = float(os.environ.get("BOOKINGS_JOIN_TIMEOUT", 30))

WORKFLOW = {
    "EMBEDDED_WORKERS": env_flag("WORKFLOW_EMBEDDED_WORKERS", True),
    "THREADS": int(os.environ.get("WORKFLOW_THREADS", 32)),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "step": {"format": "%(asctime)s %(levelname)-7s %(message)s", "datefmt": "%H:%M:%S"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "step_console": {"class": "logging.StreamHandler", "formatter": "step"},
    },
    "loggers": {
        "workflow.steps": {"handlers": ["step_console"], "level": "INFO", "propagate": False},
        "workflow": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
