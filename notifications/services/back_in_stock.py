"""Back in stock: shoppers subscribe to a SKU (anywhere or at one store) and are alerted when it
comes back, earliest subscriber first, in waves sized to the stock that came back.

The path of a restock: inventory.hooks calls `restock_alerts_create` inside the stock change's
transaction (a RestockAlert row per scope, `stock.back_in_stock` webhooks). After commit the
`restock_alert_batch` task runs `restock_alert_process_batch` until the wave's quota is used;
beat's `restock_alerts_advance` starts the next wave (`restock_alert_next_wave`) while the SKU is
still available, and re-kicks restocks whose batch message was lost.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.contacts import normalise_email, normalise_phone
from config.errors import InvalidInput, NotFound
from inventory.hooks import Restock
from inventory.models import Sku
from inventory.selectors import available_at, stock_for_skus
from stores.models import Location

from ..models import (
    BackInStockSubscription,
    Notification,
    NotificationEvent,
    RestockAlert,
    RestockAlertStatus,
    SubscriptionStatus,
)
from .context import message_language, store_context
from .outbox import enqueue_deliveries, publish_task
from .webhooks import stock_events_publish

UNSUBSCRIBE_SALT = "notifications.back_in_stock.unsubscribe"
NO_WAVES = 2**31 - 1  # a wave quota that alerts everyone at once


# --- Subscriptions -----------------------------------------------------------------------------


def back_in_stock_token(subscription: BackInStockSubscription) -> str:
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object({"s": subscription.pk})


def back_in_stock_unsubscribe_url(subscription: BackInStockSubscription) -> str:
    url = settings.NOTIFICATIONS["BACK_IN_STOCK_UNSUBSCRIBE_URL"]
    return url.format(token=back_in_stock_token(subscription))


def _set_status(subscription: BackInStockSubscription, status: str) -> None:
    """Move a locked subscription to `status` (active again: no longer notified)."""
    if subscription.status == status:
        return
    subscription.status = status
    fields = ["status"]
    if status == SubscriptionStatus.ACTIVE:
        subscription.notified_at = None
        fields.append("notified_at")
    subscription.save(update_fields=fields)


@transaction.atomic
def back_in_stock_subscribe(
    *,
    sku: Sku,
    location: Location | None = None,
    email: str = "",
    phone: str = "",
    language: str = "en",
) -> tuple[BackInStockSubscription, bool]:
    """Subscribe a contact to a SKU, anywhere (no location) or at one store. Idempotent.

    Returns (subscription, created). The contact is kept as config.contacts writes it (email
    lower-cased, phone in E.164, so "090-1234-5678" and "+81 90 1234 5678" are one contact). The
    same contact, SKU and scope always finds the same row (its `scope_key`, unique); a
    subscription already alerted or unsubscribed becomes active again. Locks the existing row;
    two concurrent first subscriptions meet on the unique key and the loser takes the winner's row.
    """
    email = normalise_email(email, field="email") or ""
    phone = normalise_phone(phone, field="phone") or ""
    if bool(email) == bool(phone):
        raise InvalidInput("Give either an email or a phone number.", details={"field": "email"})
    scope_key = f"{sku.pk}:{location.pk if location else '*'}:{email or phone}"
    existing = BackInStockSubscription.objects.select_for_update().filter(scope_key=scope_key).first()
    if existing is None:
        try:
            with transaction.atomic():
                subscription = BackInStockSubscription.objects.create(
                    sku=sku,
                    location=location,
                    email=email,
                    phone=phone,
                    language=message_language(language),
                    scope_key=scope_key,
                )
            return subscription, True
        except IntegrityError:
            existing = BackInStockSubscription.objects.select_for_update().get(scope_key=scope_key)
    _set_status(existing, SubscriptionStatus.ACTIVE)
    return existing, False


@transaction.atomic
def back_in_stock_unsubscribe(*, token: str) -> BackInStockSubscription:
    """Follow the signed link: the subscription stops. A bad token is a 404 (tells nothing)."""
    unknown = NotFound("Unknown or invalid unsubscribe link.", code="unknown_subscription")
    try:
        subscription_id = int(signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise unknown from None
    subscription = BackInStockSubscription.objects.select_for_update().filter(pk=subscription_id).first()
    if subscription is None:
        raise unknown
    _set_status(subscription, SubscriptionStatus.UNSUBSCRIBED)
    return subscription


# --- Restocks: who to alert --------------------------------------------------------------------


def _waiting(sku_id: int, location_id: int | None):
    return BackInStockSubscription.objects.filter(
        sku_id=sku_id, location_id=location_id, status=SubscriptionStatus.ACTIVE
    )


def _wave_quota(available: int) -> int:
    multiplier = settings.NOTIFICATIONS["BACK_IN_STOCK_WAVE_MULTIPLIER"]
    if multiplier <= 0:
        return NO_WAVES
    return max(1, multiplier * available)


def _scope_available(sku_id: int, location_id: int | None) -> int:
    if location_id is not None:
        return available_at(pairs=[(location_id, sku_id)])[(location_id, sku_id)]
    return sum(stock_for_skus(sku_ids=[sku_id]).get(sku_id, {}).values())


def enqueue_restock_batch(*, restock_alert_id: int) -> bool:
    from ..tasks import restock_alert_batch

    return publish_task(restock_alert_batch, restock_alert_id=restock_alert_id)


def _enqueue_restock_batch_on_commit(alert: RestockAlert) -> None:
    transaction.on_commit(functools.partial(enqueue_restock_batch, restock_alert_id=alert.pk))


def _start_alert(*, sku_id: int, location_id: int | None, available: int, kind: str) -> RestockAlert | None:
    """A new RestockAlert for everyone waiting at the scope now (it supersedes an unfinished one);
    None when nobody waits."""
    last = _waiting(sku_id, location_id).order_by("-id").values_list("id", flat=True).first()
    if last is None:
        return None
    RestockAlert.objects.filter(
        sku_id=sku_id,
        location_id=location_id,
        status__in=[RestockAlertStatus.SENDING, RestockAlertStatus.WAITING],
    ).update(status=RestockAlertStatus.SUPERSEDED)
    alert = RestockAlert.objects.create(
        sku_id=sku_id,
        location_id=location_id,
        available=available,
        kind=kind,
        wave_quota=_wave_quota(available),
        last_subscription_id=last,
    )
    _enqueue_restock_batch_on_commit(alert)
    return alert


def _sku_alerts(sku_id: int, restocks: list[Restock]) -> list[RestockAlert]:
    """The alerts for one SKU's restocks: each location's store subscribers, and the "anywhere"
    subscribers when the whole network had none of the SKU before (every other location at 0)."""
    alerts = [
        _start_alert(sku_id=sku_id, location_id=r.location_id, available=r.available, kind=r.kind)
        for r in restocks
    ]
    if _waiting(sku_id, None).exists():
        restocked = {r.location_id for r in restocks}
        elsewhere = stock_for_skus(sku_ids=[sku_id]).get(sku_id, {})
        if not any(n > 0 for location_id, n in elsewhere.items() if location_id not in restocked):
            alerts.append(
                _start_alert(
                    sku_id=sku_id,
                    location_id=None,
                    available=sum(r.available for r in restocks),
                    kind=restocks[0].kind,
                )
            )
    return [alert for alert in alerts if alert is not None]


@transaction.atomic
def restock_alerts_create(*, restocks: Sequence[Restock]) -> list[RestockAlert]:
    """The inventory.hooks listener: a SKU became available at a location (inside that transaction).

    Store subscribers of that location get an alert; "anywhere" subscribers only when the whole
    network had none of the SKU before (every other location at 0). Also publishes
    `stock.back_in_stock` webhooks. The alerting itself runs in batches after commit.
    """
    by_sku: dict[int, list[Restock]] = defaultdict(list)
    for r in restocks:
        by_sku[r.sku_id].append(r)
    alerts = [alert for sku_id, sku_restocks in by_sku.items() for alert in _sku_alerts(sku_id, sku_restocks)]
    stock_events_publish(event_type="stock.back_in_stock", events=restocks, dedupe_prefix="restock")
    return alerts


# --- Restocks: alerting in batches and waves ---------------------------------------------------


def _alert_context(alert: RestockAlert, subscription: BackInStockSubscription) -> dict:
    ctx = {
        "sku_code": alert.sku.code,
        "sku_name": alert.sku.name,
        "unsubscribe_url": back_in_stock_unsubscribe_url(subscription),
    }
    if alert.location_id:
        ctx.update(store_context(alert.location))
    return ctx


def _alert_subscribers(alert: RestockAlert, subscriptions: list[BackInStockSubscription], now) -> list[int]:
    """One outbox row per subscriber (dedupe key restock + subscription) and the subscribers
    marked notified, in the caller's transaction. Returns the new notification ids."""
    if not subscriptions:
        return []
    rows = Notification.objects.bulk_create(
        [
            Notification(
                event=NotificationEvent.BACK_IN_STOCK,
                channel=subscription.channel,
                recipient=subscription.contact,
                language=subscription.language,
                dedupe_key=f"bis:{alert.pk}:{subscription.pk}",
                context=_alert_context(alert, subscription),
                next_attempt_at=now,
            )
            for subscription in subscriptions
        ],
        batch_size=1000,
    )
    BackInStockSubscription.objects.filter(pk__in=[s.pk for s in subscriptions]).update(
        status=SubscriptionStatus.NOTIFIED, notified_at=now, notified_by=alert
    )
    return [row.pk for row in rows]


def _advance_alert(alert: RestockAlert, *, alerted: int, batch_full: bool, now) -> None:
    """After a batch: done when nobody is left; the wave over (the next after
    BACK_IN_STOCK_WAVE_DELAY_SECONDS) when its quota is used; else the next batch is enqueued."""
    alert.alerted += alerted
    alert.wave_quota -= alerted
    more = (
        batch_full
        and _waiting(alert.sku_id, alert.location_id).filter(id__lte=alert.last_subscription_id).exists()
    )
    if not more:
        alert.status = RestockAlertStatus.DONE
    elif alert.wave_quota == 0:
        alert.status = RestockAlertStatus.WAITING
        delay = settings.NOTIFICATIONS["BACK_IN_STOCK_WAVE_DELAY_SECONDS"]
        alert.next_wave_at = now + dt.timedelta(seconds=delay)
    else:
        _enqueue_restock_batch_on_commit(alert)
    alert.save(update_fields=["alerted", "wave_quota", "status", "next_wave_at", "updated_at"])


@transaction.atomic
def restock_alert_process_batch(*, restock_alert_id: int) -> list[int]:
    """Queue alerts for the next batch of waiting subscribers of a restock, earliest first.

    Locks the RestockAlert row (one batch at a time per restock), then the batch's subscriptions.
    Each subscriber is marked notified and gets one outbox row in the same transaction (dedupe key
    restock+subscription), so a batch task run twice alerts nobody twice. When the wave quota is
    used up and people are still waiting, the next wave is due after
    BACK_IN_STOCK_WAVE_DELAY_SECONDS (beat). Returns the new notification ids (their delivery is
    enqueued on commit).
    """
    alert = (
        RestockAlert.objects.select_for_update(of=("self",))
        .select_related("sku", "location")
        .filter(pk=restock_alert_id)
        .first()
    )
    if alert is None or alert.status != RestockAlertStatus.SENDING:
        return []
    size = min(settings.NOTIFICATIONS["BACK_IN_STOCK_BATCH_SIZE"], alert.wave_quota)
    subscriptions = list(
        _waiting(alert.sku_id, alert.location_id)
        .filter(id__lte=alert.last_subscription_id)
        .select_for_update()
        .order_by("id")[:size]
    )
    now = timezone.now()
    ids = _alert_subscribers(alert, subscriptions, now)
    _advance_alert(alert, alerted=len(subscriptions), batch_full=len(subscriptions) == size, now=now)
    if ids:
        transaction.on_commit(functools.partial(enqueue_deliveries, notification_ids=ids))
    return ids


@transaction.atomic
def restock_alert_next_wave(*, restock_alert_id: int) -> RestockAlert | None:
    """Start the next wave if the SKU is still available at the scope; else the restock is done."""
    alert = RestockAlert.objects.select_for_update().filter(pk=restock_alert_id).first()
    if alert is None or alert.status != RestockAlertStatus.WAITING:
        return alert
    available = _scope_available(alert.sku_id, alert.location_id)
    if available <= 0:
        # Sold out again: whoever is still waiting hears about the next restock.
        alert.status = RestockAlertStatus.DONE
        alert.save(update_fields=["status", "updated_at"])
        return alert
    alert.wave += 1
    alert.wave_quota = _wave_quota(available)
    alert.status = RestockAlertStatus.SENDING
    alert.next_wave_at = None
    alert.save(update_fields=["wave", "wave_quota", "status", "next_wave_at", "updated_at"])
    _enqueue_restock_batch_on_commit(alert)
    return alert


def restock_alerts_advance(*, stale_after: dt.timedelta = dt.timedelta(minutes=5)) -> int:
    """Beat: start waves that are due, and re-kick restocks whose batch message was lost.

    Each wave starts in its own transaction (`restock_alert_next_wave`). Returns how many started.
    """
    now = timezone.now()
    started = 0
    for alert_id in RestockAlert.objects.filter(
        status=RestockAlertStatus.WAITING, next_wave_at__lte=now
    ).values_list("id", flat=True)[:500]:
        restock_alert_next_wave(restock_alert_id=alert_id)
        started += 1
    for alert_id in RestockAlert.objects.filter(
        status=RestockAlertStatus.SENDING, updated_at__lte=now - stale_after
    ).values_list("id", flat=True)[:500]:
        enqueue_restock_batch(restock_alert_id=alert_id)
    return started
