"""Request rates (DRF throttles), counted in Django's default cache: Redis in production, shared by
every process; local memory in the embedded default, so there each process counts for itself.
When the cache cannot be reached, requests are let through uncounted (and a warning logged).
What is limited, per what, and why the storefront's hot paths are not: docs/security.md, "Throttling".

Rates are REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (config/settings/base.py, THROTTLE_* in the
environment), read on every request. A refused request is 429 `throttled` with `Retry-After`
(config/errors.py).
"""

from __future__ import annotations

import hashlib
import logging
import math

from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

# Project modules are imported where used: DRF imports this module while rest_framework.views is
# still loading (DEFAULT_THROTTLE_CLASSES), and config.errors imports rest_framework.views.


class WindowThrottle(throttling.SimpleRateThrottle):
    """At most N requests per key in each fixed window of the rate's period ("60/minute": the
    minute), counted with `cache.add` + `cache.incr`.

    DRF's own throttles store each key's list of timestamps and write it back: requests arriving
    together read the same list and overwrite each other's entry (they are not all counted), and
    a "3000/minute" list is 3000 floats read and written per request. An increment is one atomic
    operation on a small integer. The price of fixed windows: up to 2N requests across a window's
    boundary. Refused requests count too (a client that keeps trying stays refused until the
    window ends).
    """

    def get_rate(self) -> str | None:
        # Read per request, not at import (DRF binds THROTTLE_RATES once): overrides apply.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate for scope {self.scope!r}.") from None

    def use_scope(self, scope: str) -> None:
        self.scope = scope
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.key = f"{key}:{window}"
        self.retry_after = (window + 1) * self.duration - now
        try:
            count = self._count()
        except Exception:
            # The cache is down: serve the request uncounted rather than fail it (a throttle is a
            # second line of defence; the API staying up is the first job).
            logger.warning(
                "throttle %s: the cache is unavailable, request not counted", self.scope, exc_info=True
            )
            return True
        return count <= self.num_requests

    def _count(self) -> int:
        # Kept two windows, so it never expires under a request of its own window (incr would fail).
        self.cache.add(self.key, 0, timeout=2 * self.duration)
        try:
            return self.cache.incr(self.key)
        except ValueError:  # evicted in between
            self.cache.set(self.key, 1, timeout=2 * self.duration)
            return 1

    def wait(self) -> float:
        return math.ceil(self.retry_after)


class AnonThrottle(WindowThrottle):
    """Every request without an account (DELETE /back-in-stock/{token}/, the schema and docs), per
    client address: REMOTE_ADDR, or with REST_FRAMEWORK["NUM_PROXIES"] = n the address the n-th
    proxy from the right put in X-Forwarded-For (a client cannot choose it). Authenticated requests
    are not counted here: no cache access on the storefront's paths."""

    scope = "anon"

    def get_cache_key(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _is_storefront(user) -> bool:
    from stores.models import Role
    from stores.selectors import user_role

    return not user.is_superuser and user_role(user) == Role.STOREFRONT


class _PerAccount(WindowThrottle):
    def get_cache_key(self, request, view) -> str | None:
        user = request.user
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class CustomerLookupThrottle(_PerAccount):
    """Requests that name one customer (GET /customers/{id}/, PATCH .../preferences/, which answers
    with the customer), per account, so that no account walks the customer base. The storefront's
    one service account speaks for every shopper: it has its own, higher, rate
    (`customer_lookup_storefront`); people (staff, managers) have `customer_lookup`."""

    scope = "customer_lookup"

    def applies(self, request) -> bool:
        return True

    def allow_request(self, request, view) -> bool:
        if not self.applies(request):
            return True
        if request.user and request.user.is_authenticated and _is_storefront(request.user):
            self.use_scope("customer_lookup_storefront")
        return super().allow_request(request, view)


class CustomerSearchThrottle(CustomerLookupThrottle):
    """GET /orders/?customer_email= or ?customer_phone=: a customer looked up by contact, counted
    with the other customer lookups. The plain list and POST /orders/ are not counted."""

    def applies(self, request) -> bool:
        return request.method in ("GET", "HEAD") and any(
            request.query_params.get(p) for p in ("customer_email", "customer_phone")
        )


class SubscribeThrottle(_PerAccount):
    """POST /back-in-stock/, per account (the storefront's: every shopper's "notify me")."""

    scope = "subscribe"


class SubscribeContactThrottle(WindowThrottle):
    """POST /back-in-stock/, per email or phone subscribed, whichever account sends it: nobody
    signs an address up for alerts by the dozen (each restock would message it). The key is a hash
    of the normalised contact: no address in the cache."""

    scope = "subscribe_contact"

    def get_cache_key(self, request, view) -> str | None:
        from config.contacts import normalise_email, normalise_phone
        from config.errors import InvalidInput

        data = request.data if isinstance(request.data, dict) else {}
        try:
            # As the subscription stores it: an address typed two ways is one contact here too.
            contact = normalise_email(str(data.get("email") or "")) or ""
            if not contact and data.get("phone"):
                contact = normalise_phone(str(data["phone"])) or ""
        except InvalidInput:
            return None  # the view answers 400
        if not contact:
            return None
        digest = hashlib.sha256(contact.encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}
