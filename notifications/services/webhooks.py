"""Storefront webhooks: endpoints (register, delete, resume, pause after failures) and publishing
an event to every endpoint subscribed to it (one outbox row per endpoint).

The event catalogue and the SSRF guard are in notifications/webhooks.py; the signed POST is
channels.webhook_send, called by delivery.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.errors import InvalidInput
from inventory.models import Sku
from stores.models import Location

from ..models import (
    DeliveryChannel,
    Notification,
    NotificationEvent,
    NotificationStatus,
    WebhookEndpoint,
    WebhookStatus,
)
from ..selectors import active_webhook_endpoints_cached, forget_webhook_endpoints
from ..webhooks import UnsafeUrl, check_url, event_matches, event_pattern_valid
from .context import jsonable
from .outbox import outbox_write

# --- Publishing --------------------------------------------------------------------------------


def webhook_deliveries(
    *, event_type: str, data: dict, dedupe_key: str, endpoints: Sequence[WebhookEndpoint]
) -> list[Notification]:
    """The unsaved outbox rows of one event: one per endpoint in `endpoints` subscribed to it."""
    now = timezone.now()
    payload = jsonable(data)
    return [
        Notification(
            event=NotificationEvent.WEBHOOK,
            channel=DeliveryChannel.WEBHOOK,
            recipient=endpoint.url,
            webhook_endpoint=endpoint,
            webhook_event=event_type,
            dedupe_key=f"{dedupe_key}:webhook:{endpoint.pk}",
            context={"data": payload},
            next_attempt_at=now,
        )
        for endpoint in endpoints
        if event_matches(endpoint.events, event_type)
    ]


@transaction.atomic
def webhook_publish(
    *, event_type: str, data: dict, dedupe_key: str, endpoints: Sequence[WebhookEndpoint] | None = None
) -> list[Notification]:
    """One delivery row per active endpoint subscribed to `event_type`, enqueued on commit.

    `endpoints`: the active endpoints when the caller already read them (one read for a batch).
    The same `dedupe_key` never makes a second row for an endpoint.
    """
    if endpoints is None:
        endpoints = active_webhook_endpoints_cached()
    return outbox_write(
        webhook_deliveries(event_type=event_type, data=data, dedupe_key=dedupe_key, endpoints=endpoints)
    )


# --- Endpoints ---------------------------------------------------------------------------------


def _validate_events(events) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise InvalidInput("events must be a non-empty list of event types.", details={"field": "events"})
    unknown = [e for e in events if not event_pattern_valid(e)]
    if unknown:
        raise InvalidInput(
            f"Unknown event type(s): {', '.join(unknown)}.", details={"field": "events", "unknown": unknown}
        )
    return list(dict.fromkeys(events))


@transaction.atomic
def webhook_register(*, owner, url: str, events: list[str]) -> WebhookEndpoint:
    """Register an endpoint; its secret (`whsec_` + base64 of 32 random bytes) is returned once by the API."""
    try:
        check_url(url)
    except UnsafeUrl as exc:
        raise InvalidInput(str(exc), code="unsafe_url", details={"field": "url"}) from None
    events = _validate_events(events)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    endpoint = WebhookEndpoint.objects.create(owner=owner, url=url, events=events, secret=secret)
    transaction.on_commit(forget_webhook_endpoints)
    return endpoint


@transaction.atomic
def webhook_delete(*, endpoint: WebhookEndpoint) -> None:
    """Stop deliveries; the endpoint and its delivery history stay for the admin."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_deleted=True)
    transaction.on_commit(forget_webhook_endpoints)
    Notification.objects.filter(webhook_endpoint=endpoint, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.FAILED, last_error="endpoint deleted"
    )


@transaction.atomic
def webhook_resume(*, endpoint_ids: Sequence[int]) -> int:
    """Admin: a paused endpoint receives again (failure count reset). Failed deliveries stay failed."""
    transaction.on_commit(forget_webhook_endpoints)
    return WebhookEndpoint.objects.filter(
        pk__in=list(endpoint_ids), status=WebhookStatus.PAUSED, is_deleted=False
    ).update(status=WebhookStatus.ACTIVE, consecutive_failures=0, paused_at=None)


@transaction.atomic
def webhook_endpoint_failed(*, endpoint_id: int) -> None:
    """A delivery to the endpoint failed (and will be retried): count it; at
    NOTIFICATIONS["WEBHOOK_PAUSE_AFTER_FAILURES"] consecutive failures the endpoint is paused."""
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
    WebhookEndpoint.objects.filter(
        pk=endpoint_id,
        status=WebhookStatus.ACTIVE,
        consecutive_failures__gte=settings.NOTIFICATIONS["WEBHOOK_PAUSE_AFTER_FAILURES"],
    ).update(status=WebhookStatus.PAUSED, paused_at=timezone.now())
    transaction.on_commit(forget_webhook_endpoints)


def webhook_endpoint_succeeded(endpoint: WebhookEndpoint) -> None:
    """A delivery went through: the run of consecutive failures is over."""
    if endpoint.consecutive_failures:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)


def stock_events_publish(*, event_type: str, events: Sequence, dedupe_prefix: str) -> list[Notification]:
    """`stock.back_in_stock` or `stock.out_of_stock` webhooks, one per inventory.hooks event
    (`Restock`, `OutOfStock`): {sku, location, available, cause}.

    Runs inside the stock change's transaction (on the flash sale's path when it sells the last
    unit): without a subscriber to `event_type` it reads only the (cached) endpoint list.
    """
    endpoints = [ep for ep in active_webhook_endpoints_cached() if event_matches(ep.events, event_type)]
    if not endpoints:
        return []
    skus = dict(Sku.objects.filter(pk__in={e.sku_id for e in events}).values_list("pk", "code"))
    locations = dict(
        Location.objects.filter(pk__in={e.location_id for e in events}).values_list("pk", "code")
    )
    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
    written: list[Notification] = []
    for e in events:
        written += webhook_publish(
            event_type=event_type,
            data={
                "sku": skus.get(e.sku_id),
                "location": locations.get(e.location_id),
                "available": getattr(e, "available", 0),
                "cause": e.kind,
            },
            dedupe_key=f"{dedupe_prefix}:{e.sku_id}:{e.location_id}:{stamp}",
            endpoints=endpoints,
        )
    return written


def out_of_stock_publish(*, events: Sequence) -> list[Notification]:
    """The inventory.hooks out-of-stock listener: `stock.out_of_stock` webhooks."""
    return stock_events_publish(event_type="stock.out_of_stock", events=events, dedupe_prefix="out_of_stock")
