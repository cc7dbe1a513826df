"""Test settings: the same code paths as production, only faster password hashing.

Tasks run in-process in every test (eager), even when CELERY_BROKER_URL is set: the tests that
need a real broker and a real worker are marked `redis`, read TEST_BROKER_URL and configure the
Celery app themselves; they are skipped when no broker is configured (the embedded default).
"""

from .base import *  # noqa: F403
from .base import CELERY_BROKER_URL, NOTIFICATIONS, OMS, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests revoke tokens and move stock, and expect it to show at once; the caches have their own tests.
OMS = {**OMS, "AUTH_CACHE_SECONDS": 0, "NEARBY_CACHE_SECONDS": 0}
# Statement counts are pinned on many paths: a token's last use (one write a minute) has its own tests.
OMS["TOKEN_USE_RESOLUTION_SECONDS"] = 0
# Tests create endpoints with factories and expect deliveries at once; the cache has its own tests.
NOTIFICATIONS = {**NOTIFICATIONS, "WEBHOOK_ENDPOINTS_CACHE_SECONDS": 0}

TEST_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = CELERY_BROKER_URL if TEST_BROKER_URL else "memory://"
