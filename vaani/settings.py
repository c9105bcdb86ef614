"""Vaani settings: the only settings module, read from the environment.

With no variables set the project runs embedded (SQLite, local-memory cache,
in-memory channel layer, eager Celery, console SMS, offline voice providers).
Production mode is chosen by setting ``DATABASE_URL`` and ``REDIS_URL``; see
README.md for every variable.
"""

import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from vaani.env import env, env_bool, env_float, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("VAANI_VAR_DIR", str(BASE_DIR / "var")))

VERSION = "2.0.0"

# --- Core ------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
TESTING = "pytest" in sys.modules
# One-off management commands (migrate, makemigrations, check...) sign nothing that
# outlives them, so they may run without a secret; anything that serves may not.
_ONE_OFF_COMMAND = Path(sys.argv[0]).name == "manage.py" and sys.argv[1:2] != ["runserver"]
SECRET_KEY = env("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "insecure-key-only-for-debug-and-tests"
    elif _ONE_OFF_COMMAND:
        SECRET_KEY = secrets.token_urlsafe(50)
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Proxies whose X-Forwarded-* headers are believed (Twilio signature checks rebuild
# the public URL from them). Empty: the request's own host and scheme are used.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served by us, no CDN
    "channels",
    "accounts",
    "clinic",
    "voice",
    "billing",
    "audit",
    "notifications",
    "webhooks",
]

MIDDLEWARE = [
    "vaani.common.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "vaani.common.middleware.ClinicTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "vaani.urls"
WSGI_APPLICATION = "vaani.wsgi.application"
ASGI_APPLICATION = "vaani.asgi.application"
AUTH_USER_MODEL = "accounts.User"
# Paths of the API have no trailing slash (the contract); never redirect to add one.
APPEND_SLASH = False

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

# --- Database ----------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", "")
if DATABASE_URL:
    # Under Daphne (ASGI) every request's sync code runs in a thread of its own, so
    # per-thread persistent connections (CONN_MAX_AGE) are never re-used: each request
    # opened a new PostgreSQL connection. A process-wide pool hands them across threads.
    DATABASE_POOL = env_bool("DATABASE_POOL", True) and DATABASE_URL.startswith("postgres")
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=0 if DATABASE_POOL else 60)
    }
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT_SECONDS", 5
    )
    # Server-side parameter binding lets psycopg prepare the statements a connection runs
    # again and again (from the DATABASE_PREPARE_THRESHOLD-th run): PostgreSQL then skips
    # parsing and planning them.  Behind a transaction-pooling PgBouncer, set
    # DATABASE_PREPARE_THRESHOLD=0 (no prepared statements).
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = env_bool(
        "DATABASE_SERVER_SIDE_BINDING", True
    )
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
        env_int("DATABASE_PREPARE_THRESHOLD", 5) or None
    )
    if DATABASE_POOL:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 20),
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 30.0),
        }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", str(VAR_DIR / "vaani.sqlite3")),
            # IMMEDIATE takes the write lock when a transaction begins, so the
            # booking check-then-insert is serialized across threads and processes.
            # WAL: readers never wait for the writer (a booking mid-commit no longer
            # stalls every other call's and request's reads), and with synchronous=NORMAL
            # a commit is one append to the log, not three fsyncs of a rollback journal;
            # a power cut may lose the last commits, never the file's consistency.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
            "TEST": {"NAME": env("SQLITE_TEST_PATH", str(VAR_DIR / "test.sqlite3"))},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

# --- Redis: cache, rate limits, channel layer, Celery -----------------------------
REDIS_URL = env("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "vaani"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # A hung Redis must not hang requests (health reports it instead).
                "SOCKET_CONNECT_TIMEOUT": env_float("REDIS_CONNECT_TIMEOUT_SECONDS", 2.0),
                "SOCKET_TIMEOUT": env_float("REDIS_TIMEOUT_SECONDS", 2.0),
            },
        }
    }
    if TESTING and env("PYTEST_XDIST_WORKER", ""):
        # Parallel test workers share one Redis but not one database: user 5 of one
        # worker is not user 5 of another, so their cached entries must not meet.
        CACHES["default"]["KEY_PREFIX"] += "-" + env("PYTEST_XDIST_WORKER", "")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env("CHANNEL_PREFIX", "vaani:asgi")},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# "memory://localhost/", not "memory://": kombu warns of a missing hostname on every send.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "memory://localhost/")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every countdown and retry backoff must stay below this, or Redis redelivers the
# task while it is still waiting (a duplicate send).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # Due reminders, lost send tasks, interrupted sends (notifications/services.py).
    "notifications-dispatch-due-messages": {
        "task": "notifications.tasks.dispatch_due_messages",
        "schedule": timedelta(seconds=env_int("SMS_DISPATCH_INTERVAL_SECONDS", 120)),
        "options": {"expires": 110},
    },
    # Webhook retries whose wait is too long for a countdown, and deliveries whose task was lost.
    "webhooks-sweep": {
        "task": "webhooks.sweep",
        "schedule": timedelta(seconds=60),
        "options": {"expires": 55},
    },
}

# --- Auth ------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing is not what the tests examine; the real hasher costs ~0.5 s per user.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ACCESS_TOKEN_LIFETIME_SECONDS = env_int("ACCESS_TOKEN_LIFETIME_SECONDS", 3600)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=ACCESS_TOKEN_LIFETIME_SECONDS),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("REFRESH_TOKEN_LIFETIME_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env("JWT_SIGNING_KEY", SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "user_id",
}

# --- REST framework -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.RevocableJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["vaani.common.permissions.IsClinicMember"],
    "DEFAULT_RENDERER_CLASSES": ["vaani.common.renderers.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["vaani.common.renderers.RequestJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["vaani.common.throttling.CategoryRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "vaani.common.pagination.PagePagination",
    "DEFAULT_SCHEMA_CLASS": "vaani.common.schema.EnvelopeAutoSchema",
    "EXCEPTION_HANDLER": "vaani.common.exceptions.api_exception_handler",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Requests per minute for each category of §11 of the API reference. The counters
# live in the cache, so every server process shares them when Redis is configured.
RATE_LIMITS = {
    "auth": env_int("RATE_LIMIT_AUTH", 5),
    "api": env_int("RATE_LIMIT_API", 60),
    "admin": env_int("RATE_LIMIT_ADMIN", 120),
    "public": env_int("RATE_LIMIT_PUBLIC", 30),
}
RATE_LIMIT_WINDOW_SECONDS = 60

SPECTACULAR_SETTINGS = {
    "TITLE": "Vaani API",
    "DESCRIPTION": "The clinic front desk: appointments, patients, doctors, calls.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "AppointmentStatusEnum": "clinic.models.AppointmentStatus",
        "LanguageEnum": "clinic.models.Language",
        "CallStatusEnum": "voice.models.CallStatus",
        "HealthStatusEnum": ["healthy", "degraded", "unhealthy"],
        "HealthComponentStatusEnum": ["healthy", "unhealthy", "not_configured"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "voice.openapi.add_webhook_paths",
    ],
}

# --- Internationalization ----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_CLINIC_TIME_ZONE = "Asia/Kolkata"

# --- Static files ------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed files need collectstatic; development and tests skip it.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- Security (production: DEBUG off) -------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Health checks and Twilio reach the app over plain HTTP behind the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/admin/health$", r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# SECURE_SSL_REDIRECT is a deployment choice (TLS usually ends at the proxy).
# HSTS preloading cannot be undone quickly, so it is an explicit opt-in (SECURE_HSTS_PRELOAD).
SILENCED_SYSTEM_CHECKS = [
    *(["security.W008"] if not SECURE_SSL_REDIRECT else []),
    *(["security.W021"] if not SECURE_HSTS_PRELOAD else []),
]

# --- Outside services ------------------------------------------------------------------
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", "")
# Local development only: skipping Twilio's signature check is ignored unless DEBUG is on.
TWILIO_SKIP_SIGNATURE_CHECK = env_bool("TWILIO_SKIP_SIGNATURE_CHECK", False) and DEBUG
DEEPGRAM_API_KEY = env("DEEPGRAM_API_KEY", "")
CARTESIA_API_KEY = env("CARTESIA_API_KEY", "")
# Endpoints default to the providers' own; on-premise proxies and the benchmarks' local
# fakes set them.
DEEPGRAM_URL = env("DEEPGRAM_URL", "")
CARTESIA_URL = env("CARTESIA_URL", "")
CARTESIA_VOICE_ID = env("CARTESIA_VOICE_ID", "")
# Voice pipeline providers (voice/pipeline/providers.py). Cloud ones need their keys.
VOICE_STT_PROVIDER = env("VOICE_STT_PROVIDER", "deepgram" if DEEPGRAM_API_KEY else "pocketsphinx")
VOICE_TTS_PROVIDER = env("VOICE_TTS_PROVIDER", "cartesia" if CARTESIA_API_KEY else "espeak")
VOICE_VAD_PROVIDER = env("VOICE_VAD_PROVIDER", "silero")
# Offline providers that take over when a cloud one fails (circuit breaker).
VOICE_STT_FALLBACK = env("VOICE_STT_FALLBACK", "pocketsphinx")
VOICE_TTS_FALLBACK = env("VOICE_TTS_FALLBACK", "espeak")
# Serve every call through Twilio's <Gather> instead of the media stream.
VOICE_FORCE_GATHER = env_bool("VOICE_FORCE_GATHER", False)
# An OpenAI-compatible model for the dialog (voice/agent/llm.py); rules without it.
LLM_BASE_URL = env("LLM_BASE_URL", "")
LLM_MODEL = env("LLM_MODEL", "")
LLM_API_KEY = env("LLM_API_KEY", "")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 8.0)
LLM_TURN_BUDGET_SECONDS = env_float("LLM_TURN_BUDGET_SECONDS", 12.0)
# Seconds of silence before the agent asks whether the caller is still there.
VOICE_IDLE_TIMEOUT_SECONDS = env_float("VOICE_IDLE_TIMEOUT_SECONDS", 8.0)
# Send the §9.2 session_state/transcript events on the Twilio socket too (they always
# go to the clinic's channel group for the front-desk UI).
VOICE_STREAM_CUSTOM_EVENTS = env_bool("VOICE_STREAM_CUSTOM_EVENTS", True)
# Outgoing webhooks (webhooks/). Receivers must be on public addresses; these hosts,
# addresses or networks may be private (on-premise receivers; tests allow 127.0.0.1).
WEBHOOK_ALLOW_PRIVATE_HOSTS = env_list("WEBHOOK_ALLOW_PRIVATE_HOSTS", [])
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0)
# A delivery is retried (backoff and jitter) this long before it is marked failed; an
# endpoint failing this long is disabled and its clinic's owners/admins are e-mailed.
WEBHOOK_RETRY_HOURS = env_float("WEBHOOK_RETRY_HOURS", 24)
WEBHOOK_DISABLE_AFTER_HOURS = env_float("WEBHOOK_DISABLE_AFTER_HOURS", 24)
# Retry waits: the n-th failed try waits between half and all of
# min(WEBHOOK_RETRY_MAX_DELAY_SECONDS, WEBHOOK_RETRY_BASE_SECONDS * 2**(n-1)); the sweeper
# leaves a due delivery to its own countdown task for WEBHOOK_SWEEP_GRACE_SECONDS.
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 30.0)
WEBHOOK_RETRY_MAX_DELAY_SECONDS = env_float("WEBHOOK_RETRY_MAX_DELAY_SECONDS", 3600.0)
WEBHOOK_SWEEP_GRACE_SECONDS = env_float("WEBHOOK_SWEEP_GRACE_SECONDS", 30.0)
# E-mail to staff (a disabled webhook...): printed to the console unless a backend is set.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Vaani <no-reply@localhost>")
# Messages to patients (notifications/): "console" logs them, "twilio" sends them.
SMS_BACKEND = env("SMS_BACKEND", "console")
# The sender: a number or a Messaging Service SID (MG...); a clinic may set its own.
TWILIO_MESSAGING_FROM = env("TWILIO_MESSAGING_FROM", "")
TWILIO_WHATSAPP_FROM = env("TWILIO_WHATSAPP_FROM", "")
SMS_STATUS_CALLBACK_URL = env(
    "SMS_STATUS_CALLBACK_URL", f"{PUBLIC_BASE_URL}/api/v1/sms/status" if PUBLIC_BASE_URL else ""
)
SMS_RESCHEDULE_URL = env("SMS_RESCHEDULE_URL", f"{PUBLIC_BASE_URL}/reschedule").rstrip("/")
# A send claimed this long ago and not finished: its worker died. Beat takes it back; a
# send that had reached the provider's API is looked up there before any re-send.
# Must stay well above the provider call's timeout (15 s).
SMS_SENDING_STALE_SECONDS = env_int("SMS_SENDING_STALE_SECONDS", 900)

# --- Logging ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
