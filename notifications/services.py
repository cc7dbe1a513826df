"""Writes of the notifications app: the outbox, delivery, back-in-stock and webhooks.

The delivery guarantee (what a customer can count on):
- Nothing lost: a Notification row commits with the change that causes it (same transaction).
  Its delivery task is published on commit; if the broker is down the publish error is
  logged and swallowed, and `notifications_requeue_due` (beat, every 15 s) re-publishes rows
  still pending after SWEEP_AFTER_SECONDS, retries that are due, and rows whose claim lease
  expired (a worker killed mid-send).
- Never two sends by us for one claim: `notification_claim` is one conditional UPDATE
  (pending and due, or sending with an expired lease) -> sending, with a fresh claim token,
  lease_until and attempts + 1. Only the worker whose UPDATE matched sends; a duplicate task
  message, a retried task or a second worker finds nothing to claim and returns. The outcome
  is written only by the claim-token holder.
- The one window left: a worker killed after the provider accepted a message and before the
  row was marked sent. After the lease expires the row is claimed and sent again, with the SAME
  idempotency key (email Message-ID `<notification-{id}@domain>`, SMS `Idempotency-Key`,
  webhook `webhook-id`), so a provider or receiver that deduplicates on it shows it once and
  anyone else can detect the duplicate. Exactly-once is not promised past that window; a kill
  before the provider accepted the message (the common case: the send is in flight) causes no
  duplicate at all.
- Batches (`notifications_deliver`) claim CLAIM_GROUP rows per UPDATE and record each outcome
  right after its own send; those writes skip the WAL flush wait on PostgreSQL (see
  `_relaxed_durability`: only a database crash, not a worker crash, can make them forgotten,
  and then the row is sent again with the same idempotency key).
- Failures retry with exponential backoff (RETRY_BASE_SECONDS * 2^(attempt-1), capped, +10 %
  jitter) until MAX_ATTEMPTS, then the row is `failed` with its last error (admin: resend).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import queue
import random
import secrets
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone

from config.db import insert_returning
from config.errors import InvalidInput, NotFound
from config.services import service
from inventory.hooks import Restock
from inventory.models import Sku
from inventory.selectors import available_at, stock_for_skus
from orders.models import Customer, EventType, FulfillmentStatus, Order, OrderEvent
from stores.models import Location

from . import channels
from .channels import PermanentDeliveryError, Rendered, TransientDeliveryError
from .models import (
    BackInStockSubscription,
    DeliveryChannel,
    Notification,
    NotificationEvent,
    NotificationStatus,
    RestockAlert,
    RestockAlertStatus,
    SubscriptionStatus,
    WebhookEndpoint,
    WebhookStatus,
)
from .selectors import active_webhook_endpoints_cached, forget_webhook_endpoints
from .webhooks import UnsafeUrl, check_url, event_matches, event_pattern_valid

logger = logging.getLogger(__name__)

LANGUAGES = ("en", "ja", "ko")
UNSUBSCRIBE_SALT = "notifications.back_in_stock.unsubscribe"
PUBLISH_CHUNK = 100
_EVENTS = frozenset(NotificationEvent.values)


def _conf(key: str):
    return settings.NOTIFICATIONS[key]


def _language(code: str | None) -> str:
    code = (code or "en").lower().split("-")[0]
    return code if code in LANGUAGES else "en"


def _json_default(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _jsonable(value):
    """The value as JSON would hold it: decimals and dates as text, tuples as lists, keys as text
    (one round trip through the C encoder and decoder: cheaper than walking it in Python)."""
    return json.loads(json.dumps(value, default=_json_default))


# --- Publishing to the broker (on commit; never fails the caller) ----------------------------

_broker_down_until = 0.0
BROKER_BACKOFF_SECONDS = 10.0


def _publish(task, **kwargs) -> bool:
    """Publish a task; on a broker error log it and return False (the sweeper catches up).

    After a failure, on-commit publishing is skipped for BROKER_BACKOFF_SECONDS so that requests
    do not each wait for a connect timeout while the broker is down.
    """
    global _broker_down_until
    if not settings.CELERY_TASK_ALWAYS_EAGER and time.monotonic() < _broker_down_until:
        return False
    try:
        task.delay(**kwargs)
    except Exception:
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.exception("could not publish %s %s; the outbox sweeper will retry", task.name, kwargs)
        return False
    return True


def enqueue_delivery(*, notification_id: int) -> bool:
    from .tasks import deliver_notification

    return _publish(deliver_notification, notification_id=notification_id)


def enqueue_deliveries(*, notification_ids: Sequence[int]) -> bool:
    from .tasks import deliver_notifications

    ok = True
    for i in range(0, len(notification_ids), PUBLISH_CHUNK):
        ok = (
            _publish(deliver_notifications, notification_ids=list(notification_ids[i : i + PUBLISH_CHUNK]))
            and ok
        )
    return ok


def _enqueue_on_commit(notifications: Iterable[Notification]) -> None:
    ids = [n.pk for n in notifications if n.status == NotificationStatus.PENDING]
    if ids:
        transaction.on_commit(functools.partial(_enqueue_committed, notification_ids=ids))


def _enqueue_committed(*, notification_ids: list[int]) -> None:
    """On commit: publish now (eager mode: tests, the demo) or hand the ids to this process's
    batching publisher, so that a busy web process publishes one task per batch instead of one per
    notification (a publish costs about as much CPU as two SQL statements)."""
    if settings.CELERY_TASK_ALWAYS_EAGER or _conf("PUBLISH_LINGER_SECONDS") <= 0:
        for nid in notification_ids:
            enqueue_delivery(notification_id=nid)
        return
    _publisher.put(notification_ids)


class _BatchPublisher:
    """One daemon thread per process publishes the ids handed to it, gathered for up to
    NOTIFICATIONS["PUBLISH_LINGER_SECONDS"], as `deliver_notifications` tasks (one id: the
    single-row task). Nothing is lost if the process dies with ids still queued: those rows are
    pending in the outbox and the sweeper publishes them after SWEEP_AFTER_SECONDS."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self._pid: int | None = None
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):  # a lock held by another thread at fork time stays held
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._pid = None

    def put(self, ids: list[int]) -> None:
        if self._pid != os.getpid():  # first use in this process (also after a fork)
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    threading.Thread(target=self._run, name="notifications-publisher", daemon=True).start()
                    self._pid = os.getpid()
        self._queue.put(ids)

    def _run(self) -> None:
        q = self._queue
        while True:
            ids = list(q.get())
            deadline = time.monotonic() + _conf("PUBLISH_LINGER_SECONDS")
            while len(ids) < PUBLISH_CHUNK:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                try:
                    ids += q.get(timeout=wait)
                except queue.Empty:
                    break
            try:
                if len(ids) == 1:
                    enqueue_delivery(notification_id=ids[0])
                else:
                    enqueue_deliveries(notification_ids=ids)
            except Exception:  # never let the thread die; the sweeper publishes what was missed
                logger.exception("batch publish of %d notifications failed", len(ids))


_publisher = _BatchPublisher()


# --- The outbox ---------------------------------------------------------------------------


def customer_channels(customer: Customer) -> list[str]:
    """The customer's chosen channels that we can reach; nothing chosen means email (else SMS)."""
    wanted = [
        c for c in (customer.notify_channels or []) if c in (DeliveryChannel.EMAIL, DeliveryChannel.SMS)
    ]
    if not wanted:
        wanted = [DeliveryChannel.EMAIL] if customer.email else [DeliveryChannel.SMS]
    out = []
    for ch in dict.fromkeys(wanted):
        if (ch == DeliveryChannel.EMAIL and customer.email) or (ch == DeliveryChannel.SMS and customer.phone):
            out.append(ch)
    return out


def _write_outbox(rows: list[Notification]) -> list[Notification]:
    """Insert rows whose dedupe_key is new; return the rows for all keys (new or already there)."""
    if not rows:
        return []
    # One statement: INSERT .. ON CONFLICT (dedupe_key) DO UPDATE (a no-op) RETURNING id, so a key
    # that already has its row gets that row's id instead of a second row. Delivery claims only
    # pending rows, so enqueueing an existing row again never sends it twice.
    insert_returning(
        rows, on_conflict="ON CONFLICT (dedupe_key) DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key"
    )
    return rows


@service
def notification_enqueue(
    *,
    event: str,
    customer: Customer,
    context: dict,
    dedupe_key: str,
    order: Order | None = None,
    channels: Sequence[str] | None = None,
) -> list[Notification]:
    """Write the outbox rows for one customer-facing event, one per channel the customer chose.

    Call it inside the transaction of the change. `dedupe_key` names the cause (e.g.
    "order-event:42" or "refund:7"); the same key never makes a second row for a channel, so
    callers may call this twice safely. Delivery is enqueued when the transaction commits.
    """
    if event not in _EVENTS or event == NotificationEvent.WEBHOOK:
        raise InvalidInput(f"Unknown notification event {event!r}.", details={"field": "event"})
    now = timezone.now()
    chosen = list(channels) if channels is not None else customer_channels(customer)
    ctx = _jsonable({"customer_name": customer.name, **context})
    if order is not None:
        ctx.setdefault("order_number", order.number)
    rows = []
    for ch in chosen:
        recipient = customer.email if ch == DeliveryChannel.EMAIL else customer.phone
        if ch not in (DeliveryChannel.EMAIL, DeliveryChannel.SMS) or not recipient:
            continue
        rows.append(
            Notification(
                event=event,
                channel=ch,
                recipient=recipient,
                language=_language(customer.language),
                dedupe_key=f"{dedupe_key}:{ch}",
                context=ctx,
                customer=customer,
                order=order,
                next_attempt_at=now,
            )
        )
    written = _write_outbox(rows)
    _enqueue_on_commit(written)
    return written


@service
def webhook_publish(
    *, event_type: str, data: dict, dedupe_key: str, endpoints: Sequence[WebhookEndpoint] | None = None
) -> list[Notification]:
    """One delivery row per active endpoint subscribed to `event_type`, enqueued on commit.

    `endpoints`: the active endpoints when the caller already read them (one read for a batch).
    """
    if endpoints is None:
        endpoints = active_webhook_endpoints_cached()
    now = timezone.now()
    payload = _jsonable(data)
    rows = [
        Notification(
            event=NotificationEvent.WEBHOOK,
            channel=DeliveryChannel.WEBHOOK,
            recipient=ep.url,
            webhook_endpoint=ep,
            webhook_event=event_type,
            dedupe_key=f"{dedupe_key}:webhook:{ep.pk}",
            context={"data": payload},
            next_attempt_at=now,
        )
        for ep in endpoints
        if event_matches(ep.events, event_type)
    ]
    written = _write_outbox(rows)
    _enqueue_on_commit(written)
    return written


# --- Rendering ----------------------------------------------------------------------------


def notification_render(notification: Notification) -> Rendered:
    """Render the event's template for the channel in the notification's language (English fallback)."""
    lang = _language(notification.language)
    names = [
        f"notifications/{notification.event}/{notification.channel}.{lang}.txt",
        f"notifications/{notification.event}/{notification.channel}.en.txt",
    ]
    try:
        text = render_to_string(names, notification.context or {}).strip()
    except TemplateDoesNotExist as exc:
        raise PermanentDeliveryError(f"no template for {notification.event}/{notification.channel}") from exc
    if notification.channel == DeliveryChannel.EMAIL:
        subject, _, body = text.partition("\n")
        return Rendered(subject=subject.strip(), body=body.strip() + "\n")
    return Rendered(subject="", body=text)


# --- Delivery -----------------------------------------------------------------------------


def notifications_claim(*, notification_ids: Sequence[int]) -> list[Notification]:
    """Claim rows for sending: one conditional UPDATE, so each row is won by one worker only.

    Claimable: pending and due, or sending with an expired lease (its worker died). Claimed rows
    get this call's claim token, lease_until = now + LEASE_SECONDS and attempts + 1. Returns the
    rows this call won (possibly none: claimed elsewhere, not due yet, already sent or failed).
    """
    now = timezone.now()
    token = uuid.uuid4()
    claimed = (
        Notification.objects.filter(pk__in=list(notification_ids))
        .filter(
            Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=NotificationStatus.SENDING, lease_until__lt=now)
        )
        .update(
            status=NotificationStatus.SENDING,
            claim_token=token,
            lease_until=now + dt.timedelta(seconds=_conf("LEASE_SECONDS")),
            attempts=F("attempts") + 1,
        )
    )
    if not claimed:
        return []
    return list(
        Notification.objects.select_related("webhook_endpoint").filter(claim_token=token).order_by("id")
    )


def notification_claim(*, notification_id: int) -> Notification | None:
    claimed = notifications_claim(notification_ids=[notification_id])
    return claimed[0] if claimed else None


def _backoff(attempts: int) -> dt.timedelta:
    base = _conf("RETRY_BASE_SECONDS") * (2 ** max(0, attempts - 1))
    seconds = min(base, _conf("RETRY_MAX_SECONDS"))
    return dt.timedelta(seconds=seconds * (1 + random.random() * 0.1))


def _finish(n: Notification, **fields) -> bool:
    """Write the outcome only if we still hold the claim."""
    done = Notification.objects.filter(pk=n.pk, claim_token=n.claim_token).update(
        claim_token=None, lease_until=None, **fields
    )
    if not done:
        logger.warning("notification %s: lost the claim before recording the outcome", n.pk)
    return bool(done)


def _mark_failure(n: Notification, error: str, *, permanent: bool) -> str:
    now = timezone.now()
    if permanent or n.attempts >= _conf("MAX_ATTEMPTS"):
        _finish(n, status=NotificationStatus.FAILED, last_error=error[:2000])
        outcome = NotificationStatus.FAILED
    else:
        _finish(
            n,
            status=NotificationStatus.PENDING,
            last_error=error[:2000],
            next_attempt_at=now + _backoff(n.attempts),
        )
        outcome = "retry"
    if n.channel == DeliveryChannel.WEBHOOK and n.webhook_endpoint_id and not permanent:
        _webhook_failed(endpoint_id=n.webhook_endpoint_id)
    return outcome


def _webhook_failed(*, endpoint_id: int) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
    WebhookEndpoint.objects.filter(
        pk=endpoint_id,
        status=WebhookStatus.ACTIVE,
        consecutive_failures__gte=_conf("WEBHOOK_PAUSE_AFTER_FAILURES"),
    ).update(status=WebhookStatus.PAUSED, paused_at=timezone.now())
    transaction.on_commit(forget_webhook_endpoints)


def _send(n: Notification, *, email_connection=None) -> str:
    if n.channel == DeliveryChannel.WEBHOOK:
        ep = n.webhook_endpoint
        if ep is None or ep.is_deleted or ep.status != WebhookStatus.ACTIVE:
            raise PermanentDeliveryError("the webhook endpoint is paused or deleted")
        body = channels.webhook_body(
            event_type=n.webhook_event, data=n.context.get("data", {}), created_at=n.created_at
        )
        status_code = channels.webhook_send(url=ep.url, secret=ep.secret, msg_id=f"msg_{n.pk}", body=body)
        if ep.consecutive_failures:
            WebhookEndpoint.objects.filter(pk=ep.pk).update(consecutive_failures=0)
        return str(status_code)
    rendered = notification_render(n)
    if n.channel == DeliveryChannel.EMAIL:
        return channels.email_send(
            notification_id=n.pk, to=n.recipient, rendered=rendered, connection=email_connection
        )
    if n.channel == DeliveryChannel.SMS:
        return channels.sms_provider().send(to=n.recipient, body=rendered.body, idempotency_key=n.message_id)
    raise PermanentDeliveryError(f"unknown channel {n.channel!r}")


def _deliver_claimed(n: Notification, *, email_connection=None) -> str:
    if n.attempts > _conf("MAX_ATTEMPTS"):
        # Reclaimed after its workers kept dying mid-send: stop the loop.
        _finish(
            n, status=NotificationStatus.FAILED, last_error="gave up: the worker died during every attempt"
        )
        return NotificationStatus.FAILED
    try:
        provider_id = _send(n, email_connection=email_connection)
    except PermanentDeliveryError as exc:
        logger.warning("notification %s failed for good: %s", n.pk, exc)
        return _mark_failure(n, str(exc), permanent=True)
    except TransientDeliveryError as exc:
        logger.info("notification %s will be retried: %s", n.pk, exc)
        return _mark_failure(n, str(exc), permanent=False)
    except Exception as exc:
        logger.exception("notification %s: unexpected error", n.pk)
        return _mark_failure(n, f"{exc.__class__.__name__}: {exc}", permanent=False)
    _finish(
        n,
        status=NotificationStatus.SENT,
        sent_at=timezone.now(),
        provider_message_id=provider_id[:200],
        last_error="",
    )
    return NotificationStatus.SENT


def notification_deliver(*, notification_id: int, email_connection=None) -> str:
    """Claim, send, record. Safe to run any number of times: returns "skipped" when not claimable.

    Not one transaction on purpose: no row lock is held while the provider is called. Returns
    "sent", "retry", "failed" or "skipped".
    """
    n = notification_claim(notification_id=notification_id)
    if n is None:
        return "skipped"
    return _deliver_claimed(n, email_connection=email_connection)


CLAIM_GROUP = 20
# Stop claiming after this long in one task (CELERY_TASK_SOFT_TIME_LIMIT is 90 s).
DELIVERY_BUDGET_SECONDS = 45.0


@contextlib.contextmanager
def _relaxed_durability():
    """PostgreSQL: commit the claim/outcome writes without waiting for the WAL flush.

    A worker crash loses nothing (a commit is visible at once); only a database crash within
    ~wal_writer_delay can forget a claim or a "sent" mark, and then that row is sent again with
    the same idempotency key. It saves a disk flush per email, which is most of the cost here.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute("SET synchronous_commit TO DEFAULT")


def notifications_deliver(*, notification_ids: Sequence[int]) -> dict[str, int]:
    """Deliver a batch with one email connection: claim CLAIM_GROUP rows per UPDATE, send, record each.

    Each row's outcome is recorded right after its own send, so a worker killed mid-batch
    leaves at most the one in-flight message unrecorded; the rest of its claimed group wait
    for their lease to expire and are then sent by someone else (late, not twice).
    """
    counts: dict[str, int] = defaultdict(int)
    conn = channels.email_connection()
    try:
        conn.open()
    except Exception:
        conn = None
    ids = list(notification_ids)
    budget = time.monotonic() + DELIVERY_BUDGET_SECONDS
    try:
        with _relaxed_durability():
            for i in range(0, len(ids), CLAIM_GROUP):
                if time.monotonic() > budget:
                    # Slow provider: hand the rest to a new task well before the task time limit.
                    enqueue_deliveries(notification_ids=ids[i:])
                    counts["handed_on"] += len(ids) - i
                    break
                group = ids[i : i + CLAIM_GROUP]
                claimed = notifications_claim(notification_ids=group)
                counts["skipped"] += len(group) - len(claimed)
                for n in claimed:
                    counts[_deliver_claimed(n, email_connection=conn)] += 1
    finally:
        if conn is not None:
            conn.close()
    return {k: v for k, v in counts.items() if v}


def notifications_requeue_due(*, limit: int = 5000) -> int:
    """The outbox sweeper (beat): re-publish what the broker lost or what is due for a retry.

    Picks pending rows that are due and either older than SWEEP_AFTER_SECONDS (their on-commit
    message may have been lost) or waiting for a retry, and sending rows whose lease expired.
    A row is re-published at most once per SWEEP_AFTER_SECONDS (kicked_at). Returns how many
    were published; stops at the first broker error.
    """
    now = timezone.now()
    grace = now - dt.timedelta(seconds=_conf("SWEEP_AFTER_SECONDS"))
    ids = list(
        Notification.objects.filter(
            (
                Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
                & (Q(attempts__gt=0) | Q(created_at__lte=grace))
            )
            | Q(status=NotificationStatus.SENDING, lease_until__lt=now)
        )
        .filter(Q(kicked_at__isnull=True) | Q(kicked_at__lte=grace))
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    from .tasks import deliver_notifications

    published = 0
    for i in range(0, len(ids), PUBLISH_CHUNK):
        chunk = ids[i : i + PUBLISH_CHUNK]
        try:
            deliver_notifications.delay(notification_ids=chunk)
        except Exception:
            logger.exception("sweeper: broker unavailable, %s rows wait for the next run", len(ids) - i)
            break
        Notification.objects.filter(pk__in=chunk).update(kicked_at=now)
        published += len(chunk)
    return published


@service
def notification_resend(*, notification_ids: Sequence[int]) -> int:
    """Admin: put failed (or stuck pending) rows back in the queue from attempt 0. Sent rows are left alone."""
    ids = list(
        Notification.objects.filter(
            pk__in=list(notification_ids), status__in=[NotificationStatus.FAILED, NotificationStatus.PENDING]
        ).values_list("id", flat=True)
    )
    Notification.objects.filter(pk__in=ids).update(
        status=NotificationStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        claim_token=None,
        lease_until=None,
        kicked_at=None,
    )
    for nid in ids:
        transaction.on_commit(functools.partial(enqueue_delivery, notification_id=nid))
    return len(ids)


# --- Order events -> customer notifications and webhooks ------------------------------------


def _store_hours(location: Location | None) -> str:
    if location is None or not location.opening_hours:
        return ""
    parts = []
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        if day in location.opening_hours:
            hours = location.opening_hours[day]
            parts.append(f"{day.title()} {hours[0]}-{hours[1]}" if hours else f"{day.title()} closed")
    return ", ".join(parts)


def _store_context(location: Location | None) -> dict:
    if location is None:
        return {}
    return {
        "store_name": location.name,
        "store_code": location.code,
        "store_address": location.address,
        "store_hours": _store_hours(location),
    }


def _order_context(order: Order, event: OrderEvent | None = None) -> dict:
    lines = (event.data or {}).get("lines") if event is not None else None
    if not lines:  # the PLACED event carries its lines; other callers read them
        lines = [
            {"sku": ln.sku.code, "name": ln.sku.name, "quantity": ln.quantity}
            for ln in order.lines.select_related("sku").order_by("id")
        ]
    ctx = {
        "order_number": order.number,
        "lines": lines,
        "total": order.total,
        "currency": order.currency,
        "method": order.fulfillment_method,
    }
    ctx.update(_store_context(order.pickup_location))
    return ctx


def _customer_event(ev: OrderEvent) -> tuple[str, dict] | None:
    """Map an OrderEvent to the customer-facing event and its template context, or None."""
    order = ev.order
    if ev.type == EventType.PLACED:
        return NotificationEvent.ORDER_CONFIRMED, _order_context(order, ev)
    if ev.type == EventType.CANCELLED:
        return NotificationEvent.ORDER_CANCELLED, {"order_number": order.number, "reason": ev.reason}
    if ev.type == EventType.LINE_CANCELLED:
        data = ev.data or {}
        raw = data.get("lines") or (
            [{"sku": data["sku"], "quantity": data.get("quantity")}] if data.get("sku") else []
        )
        names = dict(Sku.objects.filter(code__in=[r.get("sku") for r in raw]).values_list("code", "name"))
        lines = [
            {
                "sku": r.get("sku"),
                "name": names.get(r.get("sku"), r.get("sku")),
                "quantity": r.get("quantity"),
            }
            for r in raw
        ]
        return NotificationEvent.LINE_CANCELLED, {
            "order_number": order.number,
            "lines": lines,
            "reason": ev.reason,
        }
    if ev.type == EventType.FULFILLMENT_STATUS_CHANGED and ev.fulfillment_id:
        f = ev.fulfillment
        if ev.to_status == FulfillmentStatus.SHIPPED:
            return NotificationEvent.ORDER_SHIPPED, {
                "order_number": order.number,
                "carrier": f.carrier,
                "tracking_number": f.tracking_number,
            }
        if ev.to_status == FulfillmentStatus.READY_FOR_PICKUP:
            return NotificationEvent.READY_FOR_PICKUP, {
                "order_number": order.number,
                "pickup_code": f.pickup_code,
                **_store_context(f.location),
            }
    return None


def _webhook_event(ev: OrderEvent) -> tuple[str, dict] | None:
    order = ev.order
    base = {"order": order.number, "status": order.status, "event_id": ev.pk}
    if ev.type == EventType.PLACED:
        return "order.placed", {
            **base,
            "total": order.total,
            "currency": order.currency,
            "channel": order.channel,
        }
    if ev.type == EventType.CANCELLED:
        return "order.cancelled", {**base, "reason": ev.reason}
    if ev.type == EventType.LINE_CANCELLED:
        return "order.line_cancelled", {**base, "reason": ev.reason, **(ev.data or {})}
    if ev.type == EventType.STATUS_CHANGED:
        return "order.status_changed", {**base, "from": ev.from_status, "to": ev.to_status}
    if ev.type == EventType.FULFILLMENT_STATUS_CHANGED and ev.fulfillment_id:
        f = ev.fulfillment
        data = {
            **base,
            "fulfillment": f.pk,
            "location": f.location.code,
            "from": ev.from_status,
            "to": ev.to_status,
        }
        if ev.to_status == FulfillmentStatus.SHIPPED:
            data.update(carrier=f.carrier, tracking_number=f.tracking_number)
        return f"fulfillment.{ev.to_status}", data
    return None


def order_events_notify(*, events: Sequence[OrderEvent]) -> list[Notification]:
    """The orders.hooks listener: runs inside the transaction that wrote the events."""
    written: list[Notification] = []
    endpoints: list[WebhookEndpoint] | None = None  # read once for the whole batch, when needed
    for ev in events:
        mapped = _customer_event(ev)
        if mapped is not None:
            event, context = mapped
            written += notification_enqueue(
                event=event,
                customer=ev.order.customer,
                context=context,
                dedupe_key=f"order-event:{ev.pk}",
                order=ev.order,
            )
        if endpoints is None:
            endpoints = active_webhook_endpoints_cached()
        if endpoints:
            hook = _webhook_event(ev)
            if hook is not None:
                written += webhook_publish(
                    event_type=hook[0], data=hook[1], dedupe_key=f"order-event:{ev.pk}", endpoints=endpoints
                )
    return written


# --- Back in stock ------------------------------------------------------------------------


def _normalize_phone(phone: str) -> str:
    return "".join(ch for ch in phone if ch not in " -()")


def back_in_stock_token(subscription: BackInStockSubscription) -> str:
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object({"s": subscription.pk})


def back_in_stock_unsubscribe_url(subscription: BackInStockSubscription) -> str:
    return _conf("BACK_IN_STOCK_UNSUBSCRIBE_URL").format(token=back_in_stock_token(subscription))


@service
def back_in_stock_subscribe(
    *,
    sku: Sku,
    location: Location | None = None,
    email: str = "",
    phone: str = "",
    language: str = "en",
) -> tuple[BackInStockSubscription, bool]:
    """Subscribe a contact to a SKU, anywhere (no location) or at one store. Idempotent.

    Returns (subscription, created). The same contact, SKU and scope always finds the same
    row; a subscription already alerted or unsubscribed becomes active again.
    """
    email = (email or "").strip().lower()
    phone = _normalize_phone((phone or "").strip())
    if bool(email) == bool(phone):
        raise InvalidInput("Give either an email or a phone number.", details={"field": "email"})
    contact = email or phone
    scope_key = f"{sku.pk}:{location.pk if location else '*'}:{contact}"
    existing = BackInStockSubscription.objects.select_for_update().filter(scope_key=scope_key).first()
    if existing is None:
        try:
            with transaction.atomic():
                sub = BackInStockSubscription.objects.create(
                    sku=sku,
                    location=location,
                    email=email,
                    phone=phone,
                    language=_language(language),
                    scope_key=scope_key,
                )
            return sub, True
        except IntegrityError:
            existing = BackInStockSubscription.objects.select_for_update().get(scope_key=scope_key)
    if existing.status != SubscriptionStatus.ACTIVE:
        existing.status = SubscriptionStatus.ACTIVE
        existing.notified_at = None
        existing.save(update_fields=["status", "notified_at"])
    return existing, False


@service
def back_in_stock_unsubscribe(*, token: str) -> BackInStockSubscription:
    """Follow the signed link: the subscription stops. A bad token is a 404 (tells nothing)."""
    try:
        payload = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
        sub_id = int(payload["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise NotFound("Unknown or invalid unsubscribe link.", code="unknown_subscription") from None
    sub = BackInStockSubscription.objects.select_for_update().filter(pk=sub_id).first()
    if sub is None:
        raise NotFound("Unknown or invalid unsubscribe link.", code="unknown_subscription")
    if sub.status != SubscriptionStatus.UNSUBSCRIBED:
        sub.status = SubscriptionStatus.UNSUBSCRIBED
        sub.save(update_fields=["status"])
    return sub


def _waiting(sku_id: int, location_id: int | None):
    return BackInStockSubscription.objects.filter(
        sku_id=sku_id, location_id=location_id, status=SubscriptionStatus.ACTIVE
    )


def _wave_quota(available: int) -> int:
    multiplier = _conf("BACK_IN_STOCK_WAVE_MULTIPLIER")
    if multiplier <= 0:
        return 2**31 - 1  # no waves: everyone at once
    return max(1, multiplier * available)


def _scope_available(sku_id: int, location_id: int | None) -> int:
    if location_id is not None:
        return available_at(pairs=[(location_id, sku_id)])[(location_id, sku_id)]
    return sum(stock_for_skus(sku_ids=[sku_id]).get(sku_id, {}).values())


def _start_alert(*, sku_id: int, location_id: int | None, available: int, kind: str) -> RestockAlert | None:
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
    transaction.on_commit(functools.partial(enqueue_restock_batch, restock_alert_id=alert.pk))
    return alert


@service
def restock_alerts_create(*, restocks: Sequence[Restock]) -> list[RestockAlert]:
    """The inventory.hooks listener: a SKU became available at a location (inside that transaction).

    Store subscribers of that location get an alert; "anywhere" subscribers only when the whole
    network had none of the SKU before (every other location at 0). Also publishes
    `stock.back_in_stock` webhooks. The alerting itself runs in batches after commit.
    """
    alerts: list[RestockAlert] = []
    by_sku: dict[int, list[Restock]] = defaultdict(list)
    for r in restocks:
        by_sku[r.sku_id].append(r)
    for sku_id, rs in by_sku.items():
        for r in rs:
            alert = _start_alert(sku_id=sku_id, location_id=r.location_id, available=r.available, kind=r.kind)
            if alert:
                alerts.append(alert)
        if _waiting(sku_id, None).exists():
            restocked = {r.location_id for r in rs}
            elsewhere = stock_for_skus(sku_ids=[sku_id]).get(sku_id, {})
            if not any(n > 0 for loc, n in elsewhere.items() if loc not in restocked):
                alert = _start_alert(
                    sku_id=sku_id, location_id=None, available=sum(r.available for r in rs), kind=rs[0].kind
                )
                if alert:
                    alerts.append(alert)
    if WebhookEndpoint.objects.filter(status=WebhookStatus.ACTIVE, is_deleted=False).exists():
        skus = dict(Sku.objects.filter(pk__in=list(by_sku)).values_list("pk", "code"))
        locations = dict(
            Location.objects.filter(pk__in={r.location_id for r in restocks}).values_list("pk", "code")
        )
        stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
        for r in restocks:
            webhook_publish(
                event_type="stock.back_in_stock",
                data={
                    "sku": skus.get(r.sku_id),
                    "location": locations.get(r.location_id),
                    "available": r.available,
                    "cause": r.kind,
                },
                dedupe_key=f"restock:{r.sku_id}:{r.location_id}:{stamp}",
            )
    return alerts


def enqueue_restock_batch(*, restock_alert_id: int) -> bool:
    from .tasks import restock_alert_batch

    return _publish(restock_alert_batch, restock_alert_id=restock_alert_id)


def _alert_context(alert: RestockAlert, sku: Sku, sub: BackInStockSubscription) -> dict:
    ctx = {"sku_code": sku.code, "sku_name": sku.name, "unsubscribe_url": back_in_stock_unsubscribe_url(sub)}
    if alert.location_id:
        ctx.update(_store_context(alert.location))
    return ctx


@service
def restock_alert_process_batch(*, restock_alert_id: int) -> list[int]:
    """Queue alerts for the next batch of waiting subscribers of a restock, earliest first.

    Locks the RestockAlert row (one batch at a time per restock). Each subscriber is marked
    notified and gets one outbox row in the same transaction (dedupe key restock+subscription),
    so a batch task run twice alerts nobody twice. When the wave quota is used up and people
    are still waiting, the next wave is due after BACK_IN_STOCK_WAVE_DELAY_SECONDS (beat).
    Returns the new notification ids (their delivery is enqueued on commit).
    """
    alert = (
        RestockAlert.objects.select_for_update(of=("self",))
        .select_related("sku", "location")
        .filter(pk=restock_alert_id)
        .first()
    )
    if alert is None or alert.status != RestockAlertStatus.SENDING:
        return []
    size = min(_conf("BACK_IN_STOCK_BATCH_SIZE"), alert.wave_quota)
    subs = list(
        _waiting(alert.sku_id, alert.location_id)
        .filter(id__lte=alert.last_subscription_id)
        .select_for_update()
        .order_by("id")[:size]
    )
    now = timezone.now()
    if subs:
        rows = Notification.objects.bulk_create(
            [
                Notification(
                    event=NotificationEvent.BACK_IN_STOCK,
                    channel=sub.channel,
                    recipient=sub.contact,
                    language=sub.language,
                    dedupe_key=f"bis:{alert.pk}:{sub.pk}",
                    context=_alert_context(alert, alert.sku, sub),
                    next_attempt_at=now,
                )
                for sub in subs
            ],
            batch_size=1000,
        )
        BackInStockSubscription.objects.filter(pk__in=[s.pk for s in subs]).update(
            status=SubscriptionStatus.NOTIFIED, notified_at=now, notified_by=alert
        )
        ids = [r.pk for r in rows]
    else:
        ids = []
    alert.alerted += len(subs)
    alert.wave_quota -= len(subs)
    more = (
        len(subs) == size
        and _waiting(alert.sku_id, alert.location_id).filter(id__lte=alert.last_subscription_id).exists()
    )
    if not more:
        alert.status = RestockAlertStatus.DONE
    elif alert.wave_quota == 0:
        alert.status = RestockAlertStatus.WAITING
        alert.next_wave_at = now + dt.timedelta(seconds=_conf("BACK_IN_STOCK_WAVE_DELAY_SECONDS"))
    else:
        transaction.on_commit(functools.partial(enqueue_restock_batch, restock_alert_id=alert.pk))
    alert.save(update_fields=["alerted", "wave_quota", "status", "next_wave_at", "updated_at"])
    if ids:
        transaction.on_commit(functools.partial(enqueue_deliveries, notification_ids=ids))
    return ids


@service
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
    transaction.on_commit(functools.partial(enqueue_restock_batch, restock_alert_id=alert.pk))
    return alert


def restock_alerts_advance(*, stale_after: dt.timedelta = dt.timedelta(minutes=5)) -> int:
    """Beat: start waves that are due, and re-kick restocks whose batch message was lost."""
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


# --- Webhook endpoints --------------------------------------------------------------------


def _validate_events(events) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise InvalidInput("events must be a non-empty list of event types.", details={"field": "events"})
    bad = [e for e in events if not event_pattern_valid(e)]
    if bad:
        raise InvalidInput(
            f"Unknown event type(s): {', '.join(bad)}.", details={"field": "events", "unknown": bad}
        )
    return list(dict.fromkeys(events))


@service
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


@service
def webhook_delete(*, endpoint: WebhookEndpoint) -> None:
    """Stop deliveries; the endpoint and its delivery history stay for the admin."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_deleted=True)
    transaction.on_commit(forget_webhook_endpoints)
    Notification.objects.filter(webhook_endpoint=endpoint, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.FAILED, last_error="endpoint deleted"
    )


@service
def webhook_resume(*, endpoint_ids: Sequence[int]) -> int:
    """Admin: a paused endpoint receives again (failure count reset). Failed deliveries stay failed."""
    transaction.on_commit(forget_webhook_endpoints)
    return WebhookEndpoint.objects.filter(
        pk__in=list(endpoint_ids), status=WebhookStatus.PAUSED, is_deleted=False
    ).update(status=WebhookStatus.ACTIVE, consecutive_failures=0, paused_at=None)
