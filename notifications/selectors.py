"""Reads of the notifications app."""

from __future__ import annotations

import time

from django.conf import settings
from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from config.errors import NotFound

from .models import Notification, NotificationStatus, WebhookEndpoint, WebhookStatus


def webhook_endpoints_for(user) -> QuerySet[WebhookEndpoint]:
    """Endpoints a user may see and delete: their own; superusers every one (docs/security.md:
    a network-wide manager's are theirs, the storefront's are the storefront's)."""
    qs = WebhookEndpoint.objects.filter(is_deleted=False).order_by("id")
    if user.is_superuser:
        return qs
    return qs.filter(owner_id=user.pk)


def webhook_endpoint_get(*, user, endpoint_id: int) -> WebhookEndpoint:
    """Someone else's endpoint is a 404, not a 403: its existence is not disclosed."""
    endpoint = webhook_endpoints_for(user).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(f"Unknown webhook {endpoint_id}.", code="unknown_webhook")
    return endpoint


def notifications_for_order(*, order_id: int) -> QuerySet[Notification]:
    return Notification.objects.filter(order_id=order_id).order_by("id")


def outbox_lag_seconds() -> float:
    """Age of the oldest undelivered notification that is due (0 when none): the outbox health gauge."""
    now = timezone.now()
    oldest = Notification.objects.filter(
        Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now) | Q(status=NotificationStatus.SENDING)
    ).aggregate(m=Min("created_at"))["m"]
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def active_webhook_endpoints() -> list[WebhookEndpoint]:
    """Endpoints that receive deliveries now (not paused, not deleted)."""
    return list(WebhookEndpoint.objects.filter(status=WebhookStatus.ACTIVE, is_deleted=False))


_endpoints_cache: tuple[float, list[WebhookEndpoint]] | None = None


def active_webhook_endpoints_cached() -> list[WebhookEndpoint]:
    """active_webhook_endpoints(), reused for NOTIFICATIONS["WEBHOOK_ENDPOINTS_CACHE_SECONDS"].

    For the hot path that needs the list for every order event. A delivery re-checks its endpoint
    before sending, so a stale list never sends to a paused or deleted endpoint; a new endpoint
    starts receiving within the cache time (at once in the process that created it).
    """
    global _endpoints_cache
    ttl = settings.NOTIFICATIONS.get("WEBHOOK_ENDPOINTS_CACHE_SECONDS", 0)
    now = time.monotonic()
    if ttl > 0 and _endpoints_cache is not None and now - _endpoints_cache[0] < ttl:
        return _endpoints_cache[1]
    endpoints = active_webhook_endpoints()
    _endpoints_cache = (now, endpoints) if ttl > 0 else None
    return endpoints


def forget_webhook_endpoints() -> None:
    """Drop this process's cached endpoint list (after a change through the services)."""
    global _endpoints_cache
    _endpoints_cache = None
