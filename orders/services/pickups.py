"""The pickup window: how long a ready order waits at the counter, the reminder before it ends, one
extension by staff, and the sweep that cancels what nobody collected (docs/orders.md, "Pickup
window").

The window is counted in the store's calendar: a fulfillment ready on day D at a store with a
window of N days may be collected until the end of day D + N in the store's timezone
(`Location.timezone`); `pickup_expires_at` is the midnight that ends that day. A customer told
"collect by Monday 7 December" can come at closing time on Monday; a window ending at the hour
the goods were put on the shelf would be a rule nobody at the counter could tell them.

Both beat tasks take their candidates with SELECT ... FOR UPDATE SKIP LOCKED in small batches,
each batch its own transaction: two workers (or a worker and a late duplicate of the task) never
take the same fulfillment, and rows a clerk is handing over at that moment are skipped until the
next run instead of waited for.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from config.errors import Conflict, DomainError, InvalidInput
from inventory.services import Line, stock_levels_lock

from .. import transitions
from ..exceptions import InvalidTransition
from ..models import EventType, Fulfillment, FulfillmentLine, FulfillmentMethod, FulfillmentStatus, OrderEvent
from .cancellation import Cancellation, cancel_many
from .common import fulfillment_event, locked_fulfillment
from .window import iso_utc, last_day, remind_at_for, window_end

log = logging.getLogger(__name__)

Status = FulfillmentStatus
SYSTEM_CHANNEL = "system"  # events the beat tasks write (no actor)
EXPIRED_CAUSE = "pickup_expired"  # the cancellation's data["cause"] (notifications tell it as such) and the refund's cause


class AlreadyExtended(Conflict):
    code = "already_extended"


# --- Extension ---------------------------------------------------------------------------------


@transaction.atomic
def fulfillment_extend_pickup(
    *, fulfillment_id, days: int, reason: str, user=None, channel: str = ""
) -> Fulfillment:
    """Push the pickup window of a fulfillment ready for pickup back by `days` store days, once.

    Staff of its store (`locked_fulfillment`: 403 elsewhere). 400: `days` outside
    1..OMS["PICKUP_EXTENSION_MAX_DAYS"], no reason; 409 `invalid_transition` when it is not ready
    for pickup, 409 `already_extended` the second time. A PICKUP_EXTENDED event (who, why, from,
    to) goes in the timeline. The reminder, if not sent yet, moves with the end; one already sent
    is not sent again."""
    limit = settings.OMS["PICKUP_EXTENSION_MAX_DAYS"]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= limit:
        raise InvalidInput(
            f"days must be a whole number from 1 to {limit}.", details={"field": "days", "max": limit}
        )
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidInput("reason is required.", details={"field": "reason"})
    if len(reason) > 255:
        raise InvalidInput("reason is at most 255 characters.", details={"field": "reason"})
    f = locked_fulfillment(fulfillment_id, user)
    if f.status != Status.READY_FOR_PICKUP or f.pickup_expires_at is None:
        raise InvalidTransition(
            f"Only a fulfillment waiting for pickup has a window to extend (this one is {f.status}).",
            details={"fulfillment": f.pk, "from": f.status, "to": EventType.PICKUP_EXTENDED.value},
        )
    if f.pickup_extended_at is not None:
        raise AlreadyExtended(
            "The pickup window of this fulfillment was already extended; it can be extended once.",
            details={"fulfillment": f.pk, "extended_at": iso_utc(f.pickup_extended_at)},
        )
    now = timezone.now()
    old = f.pickup_expires_at
    old_day = last_day(location=f.location, expires_at=old)
    f.pickup_expires_at = window_end(location=f.location, last_day=old_day + dt.timedelta(days=days))
    f.pickup_extended_at = now
    fields = ["pickup_expires_at", "pickup_extended_at", "updated_at"]
    if f.pickup_reminded_at is None:
        f.pickup_remind_at = remind_at_for(location=f.location, expires_at=f.pickup_expires_at, after=now)
        fields.append("pickup_remind_at")
    f.save(update_fields=fields)
    new_day = last_day(location=f.location, expires_at=f.pickup_expires_at)
    transitions.record_events(
        [
            fulfillment_event(
                f,
                EventType.PICKUP_EXTENDED,
                user=user,
                channel=channel,
                reason=reason,
                data={
                    "location": f.location.code,
                    "days": days,
                    "from": iso_utc(old),
                    "to": iso_utc(f.pickup_expires_at),
                    "last_day": new_day.isoformat(),
                    "previous_last_day": old_day.isoformat(),
                },
            )
        ]
    )
    return f


# --- The beat tasks ----------------------------------------------------------------------------


def _candidates(qs, size: int, order: tuple[str, ...], related: tuple[str, ...] = ("order", "location")):
    qs = qs.order_by(*order)
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs.select_related(*related)[:size])


def pickup_reminders_send(*, now: dt.datetime | None = None, batch_size: int | None = None) -> int:
    """Remind the customers whose reminder is due; how many were reminded.

    Batches of `batch_size` (OMS["PICKUP_REMINDER_BATCH_SIZE"]), each its own transaction: the
    candidates locked with SKIP LOCKED, `pickup_reminded_at` set and a PICKUP_REMINDED event
    written (the notifications listener writes the outbox row) in that transaction. A fulfillment
    is reminded once: a second run, or a second worker, no longer finds it."""
    now = now or timezone.now()
    size = batch_size or settings.OMS["PICKUP_REMINDER_BATCH_SIZE"]
    total = 0
    while True:
        claimed = _remind_batch(now=now, size=size)
        total += claimed
        if claimed < size:
            return total


@transaction.atomic
def _remind_batch(*, now: dt.datetime, size: int) -> int:
    batch = _candidates(
        Fulfillment.objects.filter(
            status=Status.READY_FOR_PICKUP,
            pickup_reminded_at__isnull=True,
            pickup_remind_at__lte=now,
            pickup_expires_at__gt=now,
        ),
        size,
        ("pickup_remind_at", "pk"),
    )
    if not batch:
        return 0
    Fulfillment.objects.filter(pk__in=[f.pk for f in batch]).update(pickup_reminded_at=now, updated_at=now)
    events = []
    for f in batch:
        f.pickup_reminded_at = now
        day = last_day(location=f.location, expires_at=f.pickup_expires_at)
        events.append(
            fulfillment_event(
                f,
                EventType.PICKUP_REMINDED,
                user=None,
                channel=SYSTEM_CHANNEL,
                reason=f"pickup reminder: collect by {day.isoformat()}",
                data={
                    "location": f.location.code,
                    "expires_at": iso_utc(f.pickup_expires_at),
                    "last_day": day.isoformat(),
                },
            )
        )
    transitions.record_events(events)
    return len(batch)


def pickups_expire(
    *, now: dt.datetime | None = None, batch_size: int | None = None, time_budget: float | None = 60.0
) -> int:
    """Cancel the fulfillments still waiting for pickup after their window; how many were cancelled.

    Batches of `batch_size` (OMS["PICKUP_EXPIRY_BATCH_SIZE"]), each its own transaction: the
    candidates are locked with SKIP LOCKED (never waiting on, nor locking, a fulfillment it will not
    change), then cancelled through `cancellation.cancel_many`, which applies per order exactly what
    the per-order services do:

    - the order's only live fulfillment (the usual case): the whole order, as `order_cancel` (the
      customer is told "not collected in time", notifications' pickup_expired message). These are
      cancelled together, set-based, and their stock released last (`release_last`): the levels,
      which concurrent placements wait for, stay locked only for the batch's last statements;
    - otherwise (the order has another live fulfillment) the fulfillment alone, as
      `fulfillment_cancel`, plus a LINE_CANCELLED event naming its lines (the customer is told
      which lines were cancelled), in its own transaction after the batch's (`_expire_alone`),
      taking its locks in the usual order (stock levels before the order's rows).

    Either releases the reservation at once (availability everywhere, back-in-stock alerts) and
    refunds the cancelled units (cause "pickup_expired"). If a batch fails (a domain error), its
    fulfillments are cancelled one at a time instead, each in a savepoint; one that fails is logged,
    left as it is, and not tried again in this run. After `time_budget` seconds it stops between
    batches (within Celery's time limit; the next run goes on)."""
    now = now or timezone.now()
    size = batch_size or settings.OMS["PICKUP_EXPIRY_BATCH_SIZE"]
    stop = time.monotonic() + time_budget if time_budget else None
    total, failed = 0, set()
    while True:
        claimed, cancelled, alone = _expire_batch(now=now, size=size, failed=failed)
        total += cancelled
        for fulfillment_id in alone:
            total += _expire_alone(fulfillment_id=fulfillment_id, now=now, failed=failed)
        if claimed < size or (stop is not None and time.monotonic() > stop):
            return total


# Loaded with each candidate: what the cancellation, its events and the customer's message read.
_EXPIRY_RELATED = ("order", "order__customer", "order__pickup_location", "location")


def _overdue(now: dt.datetime, failed: set[int]):
    # Not an order in a locker: its goods are behind a door until an associate takes them out
    # (orders.services.lockers.locker_unload); the next run then cancels it.
    return Fulfillment.objects.filter(
        status=Status.READY_FOR_PICKUP, pickup_expires_at__lte=now, compartment__isnull=True
    ).exclude(pk__in=failed)


@transaction.atomic
def _expire_batch(*, now: dt.datetime, size: int, failed: set[int]) -> tuple[int, int, list[int]]:
    """One batch: (candidates claimed, cancelled, the ids left for `_expire_alone`)."""
    batch = _candidates(_overdue(now, failed), size, ("pickup_expires_at", "pk"), _EXPIRY_RELATED)
    if not batch:
        return 0, 0, []
    # A warehouse's `to_store` part (ship to store) is not the customer's: the order is whole
    # without it (cancel_many leaves a sent one alone, as order_cancel does).
    live = dict(
        Fulfillment.objects.filter(order_id__in={f.order_id for f in batch})
        .exclude(status=Status.CANCELLED)
        .exclude(method=FulfillmentMethod.TO_STORE)
        .values("order_id")
        .annotate(n=Count("pk"))
        .values_list("order_id", "n")
    )
    whole = [f for f in batch if live[f.order_id] == 1]
    alone = [f.pk for f in batch if live[f.order_id] > 1]
    if not whole:
        return len(batch), 0, alone
    try:
        with transaction.atomic():
            _expire(whole, now=now, release_last=True)
        return len(batch), len(whole), alone
    except DomainError as exc:
        log.warning("pickup expiry: batch of %d failed (%s); cancelling one at a time", len(whole), exc)
    # The savepoint rolled back what the set changed (in memory too: read the rows again). One at a
    # time, each takes its levels in the usual order; all of them are taken first, in primary-key
    # order, so that the batch as a whole cannot deadlock with a placement.
    whole = _reload(whole)
    _lock_levels(whole)
    cancelled = 0
    for f in whole:
        try:
            with transaction.atomic():
                _expire([f], now=now)
            cancelled += 1
        except DomainError as exc:
            failed.add(f.pk)
            log.warning("pickup expiry: fulfillment %s not cancelled: %s", f.pk, exc)
    return len(batch), cancelled, alone


@transaction.atomic
def _expire_alone(*, fulfillment_id: int, now: dt.datetime, failed: set[int]) -> int:
    """Cancel one overdue fulfillment in its own transaction (1), or nothing (0) when another
    worker holds or took it meanwhile, or it fails (then logged and added to `failed`)."""
    fs = _candidates(_overdue(now, failed).filter(pk=fulfillment_id), 1, ("pk",), _EXPIRY_RELATED)
    if not fs:
        return 0
    try:
        with transaction.atomic():
            _expire(fs, now=now)
    except DomainError as exc:
        failed.add(fulfillment_id)
        log.warning("pickup expiry: fulfillment %s not cancelled: %s", fulfillment_id, exc)
        return 0
    return 1


def _reload(fs: list[Fulfillment]) -> list[Fulfillment]:
    """The fulfillments as the database has them (still locked by this transaction), in order."""
    fresh = Fulfillment.objects.select_related(*_EXPIRY_RELATED).in_bulk([f.pk for f in fs])
    return [fresh[f.pk] for f in fs]


def _lock_levels(fs: list[Fulfillment]) -> None:
    location_of = {f.pk: f.location_id for f in fs}
    reserved = FulfillmentLine.objects.filter(fulfillment_id__in=list(location_of), quantity__gt=0)
    stock_levels_lock(
        lines=[
            Line(location_of[fl.fulfillment_id], fl.sku_id, fl.quantity)
            for fl in reserved.only("fulfillment_id", "sku_id", "quantity")
        ]
    )


def _expire(fs: list[Fulfillment], *, now: dt.datetime, release_last: bool = False) -> None:
    """Cancel the overdue fulfillments `fs` (locked, ready for pickup, one per order) in the caller's
    transaction: each whole order whose only live fulfillment it is, otherwise the fulfillment
    alone with a LINE_CANCELLED event (`pickups_expire`). One `cancel_many` for all of them; the
    refunds come from it too, with cause "pickup_expired" and the reason below (the Refund's
    reason, the refund_requested event's data.cause)."""
    with_others = set(
        Fulfillment.objects.filter(order_id__in={f.order_id for f in fs})
        .exclude(pk__in=[f.pk for f in fs])
        .exclude(status=Status.CANCELLED)
        .exclude(method=FulfillmentMethod.TO_STORE)
        .values_list("order_id", flat=True)
    )
    items = []
    for f in fs:
        day = last_day(location=f.location, expires_at=f.pickup_expires_at)
        whole = f.order_id not in with_others
        items.append(
            Cancellation(
                f.order,
                [f],
                whole_order=whole,
                reason=f"not collected: pickup window ended {day.isoformat()}",
                data={
                    "cause": EXPIRED_CAUSE,
                    "fulfillment": f.pk,
                    "location": f.location.code,
                    "expires_at": iso_utc(f.pickup_expires_at),
                    "last_day": day.isoformat(),
                    "extended": f.pickup_extended_at is not None,
                },
                refund_cause=EXPIRED_CAUSE,
            )
        )
    done = cancel_many(items, user=None, channel=SYSTEM_CHANNEL, release_last=release_last)
    transitions.record_events(
        [
            OrderEvent(
                order=it.order,
                fulfillment=it.fulfillments[0],
                type=EventType.LINE_CANCELLED,
                channel=SYSTEM_CHANNEL,
                reason=it.reason,
                data={**it.data, "lines": [{"sku": ln.sku.code, "quantity": ln.quantity} for ln in d.lines]},
            )
            for it, d in zip(items, done, strict=True)
            if not it.whole_order
        ]
    )
