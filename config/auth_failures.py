"""Failed authentications counted in Django's cache (shared by every process in production).

A `FailureWindow` counts failures per subject (a client address; a username and address) in fixed
windows of `seconds`, aligned to the clock: a subject with `limit` failures in the current window
is locked until the window ends. A burst straddling two windows can get up to 2 x limit attempts;
the counters are cheap (one key per subject and window, expiring with it) and need no cleanup.

Used by the API's token authentication (config/api/authentication.py: 429 `throttled`) and the
admin login (config/admin.py). When the cache cannot be reached nothing is counted and nobody is
locked (a warning is logged), as for the DRF throttles (config/api/throttling.py): a second line
of defence, never a reason for an outage.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)
_IDENT = BaseThrottle()


def client_address(request) -> str:
    """The client's address as DRF's throttles see it: REMOTE_ADDR, or with
    REST_FRAMEWORK["NUM_PROXIES"] = n the n-th X-Forwarded-For entry from the end."""
    return _IDENT.get_ident(request)


def auth_cache():
    """The cache of the token entries and the failure counters (OMS["AUTH_CACHE_ALIAS"])."""
    return caches[settings.OMS.get("AUTH_CACHE_ALIAS", "default")]


@dataclass(frozen=True)
class FailureWindow:
    name: str
    limit: int  # 0: never locked, nothing counted
    seconds: int

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.seconds > 0

    def key(self, subject: str, *, now: float | None = None) -> str:
        window = int((time.time() if now is None else now) // self.seconds)
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"oms:fail:{self.name}:{window}:{digest}"

    def wait(self, count, *, now: float | None = None) -> int | None:
        """Seconds until the window ends if `count` (the counter's value) locks the subject, else None."""
        if not self.enabled or count is None or int(count) < self.limit:
            return None
        now = time.time() if now is None else now
        return max(1, int(self.seconds - now % self.seconds + 0.999))

    def locked(self, subject: str) -> int | None:
        """Seconds until `subject` may try again, or None when it may now."""
        if not self.enabled:
            return None
        now = time.time()
        try:
            count = auth_cache().get(self.key(subject, now=now))
        except Exception:
            logger.warning("%s failures: the cache is unavailable, not checked", self.name, exc_info=True)
            return None
        return self.wait(count, now=now)

    def fail(self, subject: str) -> None:
        """Count one failure of `subject` in the current window."""
        if not self.enabled:
            return
        cache, key = auth_cache(), self.key(subject)
        try:
            if cache.add(key, 1, timeout=self.seconds):
                return
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr: a new window
                cache.add(key, 1, timeout=self.seconds)
        except Exception:
            logger.warning("%s failures: the cache is unavailable, not counted", self.name, exc_info=True)

    def clear(self, subject: str) -> None:
        if not self.enabled:
            return
        try:
            auth_cache().delete(self.key(subject))
        except Exception:
            logger.warning("%s failures: the cache is unavailable, not cleared", self.name, exc_info=True)


def token_failures() -> FailureWindow:
    """Failed API token authentications per client address."""
    oms = settings.OMS
    return FailureWindow(
        "token", oms.get("AUTH_FAILURE_LIMIT", 0), oms.get("AUTH_FAILURE_WINDOW_SECONDS", 300)
    )


def admin_login_failures() -> FailureWindow:
    """Failed admin logins per username and client address."""
    oms = settings.OMS
    return FailureWindow(
        "admin-login",
        oms.get("ADMIN_LOGIN_FAILURE_LIMIT", 0),
        oms.get("ADMIN_LOGIN_FAILURE_WINDOW_SECONDS", 900),
    )
