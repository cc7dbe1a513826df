"""The outbox: notification rows written with the change that causes them, published on commit.

A row commits or rolls back with its cause (same transaction). Its delivery task is published
when that transaction commits; if the broker is down the error is logged and swallowed, and the
sweeper (`delivery.notifications_requeue_due`, beat every 15 s) publishes what is still pending.
A busy web process publishes through one background thread per process (`_BatchPublisher`), one
task per batch of ids instead of one per notification.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import InvalidInput
from orders.models import Customer, Order

from ..db import outbox_insert
from ..models import DeliveryChannel, Notification, NotificationEvent, NotificationStatus
from .context import jsonable, message_language

logger = logging.getLogger(__name__)

PUBLISH_CHUNK = 100  # ids per `deliver_notifications` task
BROKER_BACKOFF_SECONDS = 10.0
_CUSTOMER_EVENTS = frozenset(NotificationEvent.values) - {NotificationEvent.WEBHOOK}
_CUSTOMER_CHANNELS = (DeliveryChannel.EMAIL, DeliveryChannel.SMS)

# Until when on-commit publishing is skipped after a broker error (time.monotonic()).
_broker_down_until = 0.0


# --- Publishing to the broker (never fails the caller) ------------------------------------------


def publish_task(task, **kwargs) -> bool:
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
    from ..tasks import deliver_notification

    return publish_task(deliver_notification, notification_id=notification_id)


def enqueue_deliveries(*, notification_ids: Sequence[int]) -> bool:
    """Publish `deliver_notifications` tasks of at most PUBLISH_CHUNK ids; False if any failed."""
    from ..tasks import deliver_notifications

    published = True
    for i in range(0, len(notification_ids), PUBLISH_CHUNK):
        chunk = list(notification_ids[i : i + PUBLISH_CHUNK])
        published = publish_task(deliver_notifications, notification_ids=chunk) and published
    return published


def _enqueue_on_commit(notifications: Iterable[Notification]) -> None:
    ids = [n.pk for n in notifications if n.status == NotificationStatus.PENDING]
    if ids:
        transaction.on_commit(functools.partial(_enqueue_committed, notification_ids=ids))


def _enqueue_committed(*, notification_ids: list[int]) -> None:
    """On commit: publish now (eager mode: tests, the demo) or hand the ids to this process's
    batching publisher, so that a busy web process publishes one task per batch instead of one per
    notification (a publish costs about as much CPU as two SQL statements)."""
    if settings.CELERY_TASK_ALWAYS_EAGER or settings.NOTIFICATIONS["PUBLISH_LINGER_SECONDS"] <= 0:
        for notification_id in notification_ids:
            enqueue_delivery(notification_id=notification_id)
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
                    threading.Thread(
                        target=self._run, args=(self._queue,), name="notifications-publisher", daemon=True
                    ).start()
                    self._pid = os.getpid()
        self._queue.put(ids)

    @staticmethod
    def _gather(ids_queue: queue.SimpleQueue[list[int]], first: list[int]) -> list[int]:
        """`first` and whatever else arrives within the linger time, up to PUBLISH_CHUNK ids."""
        ids = list(first)
        deadline = time.monotonic() + settings.NOTIFICATIONS["PUBLISH_LINGER_SECONDS"]
        while len(ids) < PUBLISH_CHUNK:
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            try:
                ids += ids_queue.get(timeout=wait)
            except queue.Empty:
                break
        return ids

    def _run(self, ids_queue: queue.SimpleQueue[list[int]]) -> None:
        """The thread: its own queue (a thread started before a fork keeps the parent's)."""
        while True:
            ids = self._gather(ids_queue, ids_queue.get())
            try:
                if len(ids) == 1:
                    enqueue_delivery(notification_id=ids[0])
                else:
                    enqueue_deliveries(notification_ids=ids)
            except Exception:  # never let the thread die; the sweeper publishes what was missed
                logger.exception("batch publish of %d notifications failed", len(ids))


_publisher = _BatchPublisher()


# --- Writing rows ----------------------------------------------------------------------------


def outbox_write(rows: list[Notification]) -> list[Notification]:
    """Insert the rows whose dedupe_key is new and publish the pending ones when the transaction
    commits. Returns the rows, each with the id of its key's row (new or already there).

    Runs in the caller's transaction and adds no savepoint. Delivery claims only pending rows, so
    publishing an existing row again never sends it twice.
    """
    if not rows:
        return []
    outbox_insert(rows)
    _enqueue_on_commit(rows)
    return rows


def customer_channels(customer: Customer) -> list[str]:
    """The customer's chosen channels that we can reach; nothing chosen means email (else SMS)."""
    wanted = [c for c in (customer.notify_channels or []) if c in _CUSTOMER_CHANNELS]
    if not wanted:
        wanted = [DeliveryChannel.EMAIL] if customer.email else [DeliveryChannel.SMS]
    reachable = {DeliveryChannel.EMAIL: bool(customer.email), DeliveryChannel.SMS: bool(customer.phone)}
    return [channel for channel in dict.fromkeys(wanted) if reachable[channel]]


def customer_notifications(
    *,
    event: str,
    customer: Customer,
    context: dict,
    dedupe_key: str,
    order: Order | None = None,
    channels: Sequence[str] | None = None,
) -> list[Notification]:
    """The unsaved outbox rows for one customer-facing event: one per channel (the customer's
    choice unless `channels` is given) that the customer can be reached on. No database access."""
    if event not in _CUSTOMER_EVENTS:
        raise InvalidInput(f"Unknown notification event {event!r}.", details={"field": "event"})
    now = timezone.now()
    chosen = list(channels) if channels is not None else customer_channels(customer)
    ctx = jsonable({"customer_name": customer.name, **context})
    if order is not None:
        ctx.setdefault("order_number", order.number)
    rows = []
    for channel in chosen:
        recipient = customer.email if channel == DeliveryChannel.EMAIL else customer.phone
        if channel not in _CUSTOMER_CHANNELS or not recipient:
            continue
        rows.append(
            Notification(
                event=event,
                channel=channel,
                recipient=recipient,
                language=message_language(customer.language),
                dedupe_key=f"{dedupe_key}:{channel}",
                context=ctx,
                customer=customer,
                order=order,
                next_attempt_at=now,
            )
        )
    return rows


@transaction.atomic
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
    return outbox_write(
        customer_notifications(
            event=event,
            customer=customer,
            context=context,
            dedupe_key=dedupe_key,
            order=order,
            channels=channels,
        )
    )
