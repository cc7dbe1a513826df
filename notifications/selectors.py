"""Reads of the notifications app."""

from __future__ import annotations

from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from config.errors import NotFound
from stores.models import Role
from stores.selectors import user_role

from .models import Notification, NotificationStatus, WebhookEndpoint, WebhookStatus


def webhook_endpoints_for(user) -> QuerySet[WebhookEndpoint]:
    """Endpoints a user may see: their own; managers and superusers see every one."""
    qs = WebhookEndpoint.objects.filter(is_deleted=False).order_by("id")
    if user.is_superuser or user_role(user) == Role.MANAGER:
        return qs
    return qs.filter(owner=user)


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
