"""Settings read from the environment, in one place.

The embedded default needs nothing: a SQLite file next to manage.py and Celery
tasks run in-process (CELERY_BROKER_URL unset). Production sets DATABASE_URL,
CELERY_BROKER_URL, SECRET_KEY, ALLOWED_HOSTS and uses config.settings.production.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="dev-insecure-only-for-the-embedded-default-0123456789abcdef")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "stores",
    "inventory",
    "orders",
    "returns",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RejectNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# bench/ serves the app plus its framework-floor view with ROOT_URLCONF=bench.urls.
ROOT_URLCONF = env("ROOT_URLCONF", default="config.urls")
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Persistent connections: a new PostgreSQL connection costs ~4 ms of CPU here.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Parameters bound by the server, and statements prepared once per connection after they ran
    # DB_PREPARE_THRESHOLD times: PostgreSQL then skips parsing and planning, which was more than
    # half of its CPU per order placement (docs/benchmarks.md). Behind a PgBouncer in transaction
    # mode older than 1.21 (no prepared statement support), set DB_SERVER_SIDE_BINDING=false.
    if env.bool("DB_SERVER_SIDE_BINDING", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": env.int("DB_PREPARE_THRESHOLD", default=2)}
        )
else:
    # IMMEDIATE: a write transaction takes SQLite's write lock at BEGIN, so the embedded default
    # serialises stock changes instead of failing them with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE) exist on PostgreSQL only; SQLite simply does without them.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "Japanese"), ("ko", "Korean")]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The demo's pictures of SKUs (load_demo), served like the admin's own files.
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]

# The embedded default keeps its cache in the process (one process). With CACHE_URL (a Redis URL;
# production defaults it to the broker's Redis) every process shares one cache: the API token cache,
# the authentication failure counters and DRF's throttles live there (docs/operations.md, "Caches").
CACHE_URL = env("CACHE_URL", default="")
if CACHE_URL:
    # Django's RedisCache, reusing its redis-py client objects (config/cache.py)
    CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.exception_handler",
    # docs/security.md, "Throttling": what is limited, per what, and why not the storefront's hot paths.
    "DEFAULT_THROTTLE_CLASSES": ["config.api.throttling.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="60/minute"),  # per client address
        "customer_lookup": env("THROTTLE_CUSTOMER_LOOKUP", default="120/minute"),  # per staff account
        "customer_lookup_storefront": env("THROTTLE_CUSTOMER_LOOKUP_STOREFRONT", default="3000/minute"),
        "subscribe": env("THROTTLE_SUBSCRIBE", default="3000/minute"),  # per account
        "subscribe_contact": env("THROTTLE_SUBSCRIBE_CONTACT", default="10/hour"),  # per email or phone
    },
    # Proxies in front of the app that append to X-Forwarded-For (the load balancer: 1). 0: the
    # client address is REMOTE_ADDR. Never unset (None): DRF would then trust the whole header.
    # Also the address the authentication failure counters count per (config/auth_failures.py).
    "NUM_PROXIES": env.int("THROTTLE_NUM_PROXIES", default=0),
    "COERCE_DECIMAL_TO_STRING": True,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

# knox's token model (its setting; stores.TokenUse points at it).
KNOX_TOKEN_MODEL = "knox.AuthToken"
REST_KNOX = {
    "TOKEN_TTL": None,  # service accounts (the storefront) keep their token until it is revoked
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Omnichannel OMS API",
    "DESCRIPTION": "One inventory pool across warehouses and stores; orders from every channel.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "GET_LIB_DOC_EXCLUDES": "config.api.schema.lib_doc_excludes",
    # One schema enum per choice set that several serializers share a field name for.
    "ENUM_NAME_OVERRIDES": {
        "LocationKindEnum": "stores.models.LocationKind",
        "MovementKindEnum": "inventory.models.MovementKind",
        "TransferStatusEnum": "inventory.models.TransferStatus",
        "FulfillmentMethodEnum": "orders.models.FulfillmentMethod",
        "OrderStatusEnum": "orders.models.OrderStatus",
        "FulfillmentStatusEnum": "orders.models.FulfillmentStatus",
        "SubscriptionStatusEnum": "notifications.models.SubscriptionStatus",
        "WebhookStatusEnum": "notifications.models.WebhookStatus",
        "OrderChannelEnum": "orders.models.Channel",
        "NoteChannelEnum": "orders.models.NoteChannel",
        # What a customer may choose (no `to_store`): its own name beside FulfillmentMethodEnum.
        "OrderMethodEnum": "orders.models.ORDER_METHOD_CHOICES",
        "ReturnStatusEnum": "returns.models.ReturnStatus",
        "ReturnMethodEnum": "returns.models.ReturnMethod",
        "ReturnReasonEnum": "returns.models.ReturnReason",
        "ReturnConditionEnum": "returns.models.ReturnCondition",
    },
}

# --- Celery -------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
# Unset broker: the embedded default, tasks run in-process when they are enqueued.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "max_retries": 2, "socket_connect_timeout": 2}
# Publishing must not hang a request when the broker is down: the outbox sweeper catches up.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {}  # each app adds its periodic tasks in its own tasks module

# --- Domain settings ------------------------------------------------------------------
OMS = {
    "LOW_STOCK_THRESHOLD": env.int("OMS_LOW_STOCK_THRESHOLD", default=3),
    "MAX_LINE_QUANTITY": env.int("OMS_MAX_LINE_QUANTITY", default=100_000),
    "MAX_RADIUS_KM": env.int("OMS_MAX_RADIUS_KM", default=500),
    "HOLD_TTL": timedelta(minutes=env.int("OMS_HOLD_TTL_MINUTES", default=10)),
    "HOLD_MAX_TTL": timedelta(minutes=env.int("OMS_HOLD_MAX_TTL_MINUTES", default=60)),
    # A hold's whole life, extensions included, from its creation: extending past it is refused.
    "HOLD_MAX_SECONDS": env.int("OMS_HOLD_MAX_SECONDS", default=3600),
    "IDEMPOTENCY_TTL": timedelta(hours=24),
    # How long a verified API token (with its user and role) stays in Django's cache
    # (config/api/authentication.py). Revoking the token, or changing its user or role through the
    # ORM (services, admin, manage.py), removes it at once in every process; this bounds only
    # changes made around the ORM (raw SQL, QuerySet.update). 0: the database on every call.
    "AUTH_CACHE_SECONDS": env.float("OMS_AUTH_CACHE_SECONDS", default=5.0),
    # The cache (CACHES alias) of the token entries and the failure counters below.
    "AUTH_CACHE_ALIAS": env("OMS_AUTH_CACHE_ALIAS", default="default"),
    # Failed token authentications from one client address before its token requests get 429,
    # counted per fixed window of this many seconds in the shared cache. 0: no limit.
    "AUTH_FAILURE_LIMIT": env.int("OMS_AUTH_FAILURE_LIMIT", default=20),
    "AUTH_FAILURE_WINDOW_SECONDS": env.int("OMS_AUTH_FAILURE_WINDOW_SECONDS", default=300),
    # Failed admin logins per username and client address before that pair is refused for the rest
    # of the window (same counters, own window). 0: no limit.
    "ADMIN_LOGIN_FAILURE_LIMIT": env.int("OMS_ADMIN_LOGIN_FAILURE_LIMIT", default=5),
    "ADMIN_LOGIN_FAILURE_WINDOW_SECONDS": env.int("OMS_ADMIN_LOGIN_FAILURE_WINDOW_SECONDS", default=900),
    # A token's last use is written at most this often (the admin's "last use" column). 0: never.
    "TOKEN_USE_RESOLUTION_SECONDS": env.int("OMS_TOKEN_USE_RESOLUTION_SECONDS", default=60),
    # How old the nearby-stock suggestions of a sold-out pickup's 409 may be (each process keeps
    # the last answer per SKUs and store this long; a sell-out asks the same question thousands of
    # times). 0: read every time.
    "NEARBY_CACHE_SECONDS": env.float("OMS_NEARBY_CACHE_SECONDS", default=1.0),
    # The region a phone number without a country code is read in (config/contacts.py), ISO 3166
    # two letters: "090 1234 5678" with "JP" is +819012345678.
    "PHONE_REGION": env.str("OMS_PHONE_REGION", default="JP"),
    # Wrong pickup codes a fulfillment takes before every code is refused (429 too_many_attempts)
    # until staff issue a new one (orders.services.pickup_code_reissue). Counted in the database.
    "PICKUP_CODE_MAX_ATTEMPTS": env.int("OMS_PICKUP_CODE_MAX_ATTEMPTS", default=5),
    # A locker's keypad (POST /lockers/{code}/open/ without a compartment): codes that match no
    # order in that locker, per locker and fixed window of this many seconds in the shared cache,
    # before every such code is refused (429 keypad_locked) for the rest of the window. A code
    # naming its compartment is limited per compartment instead (PICKUP_CODE_MAX_ATTEMPTS).
    "LOCKER_KEYPAD_FAILURE_LIMIT": env.int("OMS_LOCKER_KEYPAD_FAILURE_LIMIT", default=10),
    "LOCKER_KEYPAD_FAILURE_WINDOW_SECONDS": env.int("OMS_LOCKER_KEYPAD_FAILURE_WINDOW_SECONDS", default=900),
    # The most days staff may extend a pickup window by (once per fulfillment).
    "PICKUP_EXTENSION_MAX_DAYS": env.int("OMS_PICKUP_EXTENSION_MAX_DAYS", default=7),
    # The promise to a pickup customer: ready this many minutes after the order is placed. A pickup
    # still to pick after that is "overdue" on the store's Pickups page.
    "PICKUP_READY_WITHIN_MINUTES": env.int("OMS_PICKUP_READY_WITHIN_MINUTES", default=120),
    # Fulfillments per transaction of the pickup expiry sweep (cancelled set-based): the batch locks
    # the stock levels it releases for its last statements only (ledger rows, commit), so a
    # placement of those SKUs at those stores waits at most that long (docs/benchmarks.md, "Pickup
    # expiry": 50 keeps it well under 100 ms).
    "PICKUP_EXPIRY_BATCH_SIZE": env.int("OMS_PICKUP_EXPIRY_BATCH_SIZE", default=50),
    # Fulfillments per transaction of the pickup reminder task (locks only those fulfillments).
    "PICKUP_REMINDER_BATCH_SIZE": env.int("OMS_PICKUP_REMINDER_BATCH_SIZE", default=100),
    # Returns (docs/returns.md): days from collection or shipping within which a line may be
    # returned, and per SKU category ({"underwear": 0, "electronics": 14}; JSON in the environment).
    "RETURN_WINDOW_DAYS": env.int("OMS_RETURN_WINDOW_DAYS", default=30),
    "RETURN_WINDOW_DAYS_BY_CATEGORY": env.json("OMS_RETURN_WINDOW_DAYS_BY_CATEGORY", default={}),
    # The warehouse (location code) that mail returns go to and stores send returned goods they
    # cannot sell on to ("send to warehouse"); empty: the nearest warehouse that accepts returns.
    "RETURNS_WAREHOUSE": env.str("OMS_RETURNS_WAREHOUSE", default=""),
    # How many of the nearest stores that accept returns the customer's return message lists.
    "RETURN_STORES_IN_MESSAGE": env.int("OMS_RETURN_STORES_IN_MESSAGE", default=3),
    # Routing policy, applied in order (orders/routing/base.py). Also available: StoresBeforeWarehouses
    # (clear store stock first), WarehousesBeforeStores, MostStockFirst; bare class names are accepted.
    "ROUTING_PIPELINE": env.list(
        "OMS_ROUTING_PIPELINE",
        default=[
            "orders.routing.strategies.SingleLocationFirst",
            "orders.routing.strategies.FewestShipments",
            "orders.routing.strategies.NearestToDestination",
            "orders.routing.strategies.LocationPriority",
        ],
    ),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="orders@example.com")

# --- Notifications (outbox, SMS provider, storefront webhooks, back-in-stock) -------------
NOTIFICATIONS = {
    # "console" logs the SMS (the demo); "http" posts to SMS_API_BASE_URL (a Twilio-style JSON API).
    "SMS_PROVIDER": env("SMS_PROVIDER", default="console"),
    "SMS_API_BASE_URL": env("SMS_API_BASE_URL", default=""),
    "SMS_API_TOKEN": env("SMS_API_TOKEN", default=""),
    "SMS_FROM": env("SMS_FROM", default="OMS"),
    "SMS_TIMEOUT_SECONDS": env.float("SMS_TIMEOUT_SECONDS", default=10.0),
    "MAX_ATTEMPTS": env.int("NOTIFY_MAX_ATTEMPTS", default=8),
    "RETRY_BASE_SECONDS": env.int("NOTIFY_RETRY_BASE_SECONDS", default=30),
    "RETRY_MAX_SECONDS": env.int("NOTIFY_RETRY_MAX_SECONDS", default=3600),
    # A row claimed longer ago than this (worker killed mid-send) may be claimed again.
    "LEASE_SECONDS": env.int("NOTIFY_LEASE_SECONDS", default=300),
    # The sweeper re-enqueues pending rows older than this (the on-commit message was lost).
    "SWEEP_AFTER_SECONDS": env.int("NOTIFY_SWEEP_AFTER_SECONDS", default=60),
    "MESSAGE_ID_DOMAIN": env("NOTIFY_MESSAGE_ID_DOMAIN", default="oms.example.com"),
    "WEBHOOK_TIMEOUT_SECONDS": env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0),
    "WEBHOOK_PAUSE_AFTER_FAILURES": env.int("WEBHOOK_PAUSE_AFTER_FAILURES", default=10),
    # Tests and local demos only: lets http://127.0.0.1 endpoints through the SSRF guard.
    "WEBHOOK_ALLOW_LOOPBACK": env.bool("WEBHOOK_ALLOW_LOOPBACK", default=False),
    # Back in stock: alert at most MULTIPLIER x available subscribers per wave, earliest first.
    "BACK_IN_STOCK_WAVE_MULTIPLIER": env.int("BACK_IN_STOCK_WAVE_MULTIPLIER", default=3),
    "BACK_IN_STOCK_WAVE_DELAY_SECONDS": env.int("BACK_IN_STOCK_WAVE_DELAY_SECONDS", default=900),
    "BACK_IN_STOCK_BATCH_SIZE": env.int("BACK_IN_STOCK_BATCH_SIZE", default=1000),
    "BACK_IN_STOCK_UNSUBSCRIBE_URL": env(
        "BACK_IN_STOCK_UNSUBSCRIBE_URL", default="https://shop.example.com/back-in-stock/unsubscribe/{token}"
    ),
    # How long a process reuses its list of active webhook endpoints before reading it again (every
    # order event needs it). Changes made through the services apply at once in their own process;
    # a paused or deleted endpoint is re-checked when each delivery is sent. 0: read every time.
    "WEBHOOK_ENDPOINTS_CACHE_SECONDS": env.float("WEBHOOK_ENDPOINTS_CACHE_SECONDS", default=5.0),
    # A web process publishes delivery tasks from one background thread, gathering the ids of
    # notifications committed within this many seconds into one task. 0: one publish per commit.
    "PUBLISH_LINGER_SECONDS": env.float("NOTIFY_PUBLISH_LINGER_SECONDS", default=0.05),
}
CELERY_BEAT_SCHEDULE["notifications-sweep"] = {
    "task": "notifications.tasks.notifications_sweep",
    "schedule": env.int("NOTIFY_SWEEP_INTERVAL_SECONDS", default=15),
}
CELERY_BEAT_SCHEDULE["notifications-restock-waves"] = {
    "task": "notifications.tasks.restock_alerts_advance",
    "schedule": 60,
}
CELERY_BEAT_SCHEDULE["orders-reclaim-expired-holds"] = {
    "task": "orders.tasks.reclaim_expired_holds",
    "schedule": env.int("OMS_HOLD_SWEEP_INTERVAL_SECONDS", default=30),
}
CELERY_BEAT_SCHEDULE["orders-pickup-reminders"] = {
    "task": "orders.tasks.send_pickup_reminders",
    "schedule": env.int("OMS_PICKUP_REMINDER_INTERVAL_SECONDS", default=300),
}
CELERY_BEAT_SCHEDULE["orders-expire-pickups"] = {
    "task": "orders.tasks.expire_pickups",
    "schedule": env.int("OMS_PICKUP_EXPIRY_INTERVAL_SECONDS", default=300),
}
CELERY_BEAT_SCHEDULE["orders-purge-idempotency-keys"] = {
    "task": "orders.tasks.purge_idempotency_keys",
    "schedule": 3600,
}
