"""Fulfillment work at a location: claim, pick (orders/services/picking.py), pack, ship, ready,
collect, curbside arrival, cancel.

Every status change goes through `orders.transitions.transition()` (the table, the event, the
order's status). Lock order, everywhere: fulfillment rows (by pk), then stock levels (inventory's
helper, by pk), then the order row (transitions.order_status_refresh).
"""

from __future__ import annotations

import secrets

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.errors import InvalidInput
from inventory.services import Line, stock_commit, stock_release
from stores.models import Location
from stores.selectors import require_location_access

from .. import transitions
from ..exceptions import InvalidTransition, NotCurbside, WrongPickupCode
from ..hooks import emit
from ..models import (
    EventType,
    Fulfillment,
    FulfillmentLine,
    FulfillmentMethod,
    FulfillmentStatus,
    Order,
    OrderEvent,
)
from .cancellation import cancel_line_quantities, order_with_locked_fulfillments
from .common import acting_user, fulfillment_event, fulfillment_lines, locked_fulfillment

Status = FulfillmentStatus


@transaction.atomic
def fulfillment_claim(*, location: Location, user, channel: str = "") -> Fulfillment | None:
    """Hand the oldest pending task of `location` to `user`, or None when the queue is empty.

    SELECT ... FOR UPDATE SKIP LOCKED: any number of workers claiming at once get different tasks.
    """
    if acting_user(user) is not None:
        require_location_access(user, location)
    qs = Fulfillment.objects.filter(location=location, status=Status.PENDING).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    f = qs.select_related("order", "location").first()
    if f is None:
        return None
    return start_picking(f, user, channel, reason="claimed")


def start_picking(f: Fulfillment, user, channel: str = "", *, reason: str = "picking started") -> Fulfillment:
    """A pending fulfillment (already locked) goes to picking, claimed by `user`."""
    if f.status == Status.PENDING:
        f, _ = transitions.transition(
            f,
            Status.PICKING,
            actor=user,
            channel=channel,
            reason=reason,
            locked=True,
            updates={"claimed_by": acting_user(user), "claimed_at": timezone.now()},
        )
    return f


@transaction.atomic
def fulfillment_start(*, fulfillment_id, user=None, channel: str = "") -> Fulfillment:
    """Claim one particular pending fulfillment (the admin's "claim" on a chosen row)."""
    f = locked_fulfillment(fulfillment_id, user)
    transitions.check(f, Status.PICKING)
    return start_picking(f, user, channel)


@transaction.atomic
def fulfillment_pack(*, fulfillment_id, user=None, channel: str = "") -> Fulfillment:
    """Picked and packed (ship). Lines without a recorded pick count as picked in full."""
    f = locked_fulfillment(fulfillment_id, user)
    transitions.check(f, Status.PACKED)
    _picked_in_full(f)
    f, _ = transitions.transition(f, Status.PACKED, actor=user, channel=channel, reason="packed", locked=True)
    return f


def _picked_in_full(f: Fulfillment) -> None:
    FulfillmentLine.objects.filter(fulfillment=f, picked_quantity__isnull=True).update(
        picked_quantity=F("quantity")
    )


def _commit_stock(f: Fulfillment, *, user, reason: str) -> None:
    """The goods leave: on hand and reserved both go down by what the fulfillment still carries."""
    lines = [Line(f.location_id, ln.sku_id, ln.quantity) for ln in fulfillment_lines(f) if ln.quantity > 0]
    if lines:
        stock_commit(lines=lines, reference=f.order.number, user=acting_user(user), reason=reason)


@transaction.atomic
def fulfillment_ship(
    *, fulfillment_id, carrier: str, tracking_number: str, user=None, channel: str = ""
) -> Fulfillment:
    """Handed to the carrier: the reserved stock is committed (on hand and reserved both go down)."""
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    if not carrier:
        raise InvalidInput("carrier is required.", details={"field": "carrier"})
    if not tracking_number:
        raise InvalidInput("tracking_number is required.", details={"field": "tracking_number"})
    if len(carrier) > 64 or len(tracking_number) > 64:
        raise InvalidInput(
            "carrier and tracking_number are at most 64 characters.", details={"field": "tracking_number"}
        )
    f = locked_fulfillment(fulfillment_id, user)
    transitions.check(f, Status.SHIPPED)
    _commit_stock(f, user=user, reason=f"shipped {carrier} {tracking_number}")
    f, _ = transitions.transition(
        f,
        Status.SHIPPED,
        actor=user,
        channel=channel,
        reason=f"shipped with {carrier}",
        locked=True,
        updates={"carrier": carrier, "tracking_number": tracking_number, "shipped_at": timezone.now()},
        data={"carrier": carrier, "tracking_number": tracking_number},
    )
    return f


def new_pickup_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


@transaction.atomic
def fulfillment_ready(*, fulfillment_id, user=None, channel: str = "") -> Fulfillment:
    """At the counter (pickup, curbside): the customer gets a 6-digit pickup code."""
    f = locked_fulfillment(fulfillment_id, user)
    transitions.check(f, Status.READY_FOR_PICKUP)
    _picked_in_full(f)
    f, _ = transitions.transition(
        f,
        Status.READY_FOR_PICKUP,
        actor=user,
        channel=channel,
        reason="ready for pickup",
        locked=True,
        updates={"pickup_code": new_pickup_code(), "ready_at": timezone.now()},
    )
    return f


@transaction.atomic
def fulfillment_collect(*, fulfillment_id, pickup_code: str, user=None, channel: str = "") -> Fulfillment:
    """Handed to the customer who showed the right code: the stock is committed."""
    f = locked_fulfillment(fulfillment_id, user)
    transitions.check(f, Status.COLLECTED)
    code = str(pickup_code or "").strip()
    if not f.pickup_code or not secrets.compare_digest(code.encode(), f.pickup_code.encode()):
        raise WrongPickupCode("The pickup code does not match.", details={"field": "pickup_code"})
    _commit_stock(f, user=user, reason="collected")
    f, _ = transitions.transition(
        f,
        Status.COLLECTED,
        actor=user,
        channel=channel,
        reason="collected",
        locked=True,
        updates={"collected_at": timezone.now()},
    )
    return f


@transaction.atomic
def fulfillment_cancel(*, fulfillment_id, user=None, reason: str = "", channel: str = "") -> Fulfillment:
    """Stop a fulfillment before it leaves: release what it still has reserved, cancel those units."""
    f = locked_fulfillment(fulfillment_id, user)
    transitions.check(f, Status.CANCELLED)
    lines = [ln for ln in fulfillment_lines(f) if ln.quantity > 0]
    if lines:
        stock_release(
            lines=[Line(f.location_id, ln.sku_id, ln.quantity) for ln in lines],
            reference=f.order.number,
            user=acting_user(user),
            reason=reason or "fulfillment cancelled",
        )
        cancel_line_quantities(f.order, {ln.order_line_id: ln.quantity for ln in lines})
    f, _ = transitions.transition(
        f, Status.CANCELLED, actor=user, channel=channel, reason=reason or "cancelled", locked=True
    )
    return f


@transaction.atomic
def order_customer_arrived(*, number: str, note: str = "", user=None, channel: str = "") -> Order:
    """Curbside: the customer is in the car park. 422 for other methods, 409 when nothing waits."""
    order, fs = order_with_locked_fulfillments(number, user)
    if order.fulfillment_method != FulfillmentMethod.CURBSIDE:
        raise NotCurbside("Only curbside orders can report an arrival.", details={"order": number})
    note = (note or "").strip()
    if len(note) > 255:
        raise InvalidInput("note is at most 255 characters.", details={"field": "note"})
    waiting = [f for f in fs if f.status not in transitions.FINAL]
    if not waiting:
        raise InvalidTransition(
            "Nothing of this order is waiting to be handed over.",
            details={"order": number, "from": order.status, "to": "customer_arrived"},
        )
    Fulfillment.objects.filter(pk__in=[f.pk for f in waiting]).update(
        customer_arrived_at=timezone.now(), arrival_note=note
    )
    events = [
        fulfillment_event(
            f,
            EventType.CUSTOMER_ARRIVED,
            user=user,
            channel=channel,
            reason=note or "customer arrived",
            data={"location": f.location.code, "note": note},
        )
        for f in waiting
    ]
    OrderEvent.objects.bulk_create(events)
    emit(events)
    return order
