"""Fulfillment work at a location: claim, pick (orders/services/picking.py), pack, ship, ready,
collect (and a new pickup code), curbside arrival, cancel.

Every status change goes through `orders.transitions.transition()` (the table, the event, the
order's status). Lock order, everywhere: fulfillment rows (by pk), then stock levels (inventory's
helper, by pk), then the order row (transitions.order_status_refresh).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.errors import InvalidInput
from inventory.services import Line, stock_commit, stock_levels_lock, stock_release
from stores.models import Location
from stores.selectors import require_location_access

from .. import transitions
from ..exceptions import (
    InLocker,
    InvalidTransition,
    NotAPickup,
    NothingTaken,
    PickupCodeLocked,
    WrongPickupCode,
)
from ..models import (
    EventType,
    Fulfillment,
    FulfillmentLine,
    FulfillmentMethod,
    FulfillmentStatus,
    Order,
)
from . import ship_to_store
from .cancellation import (
    Cancellation,
    cancel_line_quantities,
    cancel_many,
    order_with_locked_fulfillments,
    refund_cancelled,
)
from .codes import code_new, code_try
from .common import acting_user, fulfillment_event, fulfillment_lines, locked_fulfillment, quantities_by_sku
from .window import iso_utc, pickup_deadlines

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
    """Handed to the carrier: the reserved stock is committed (on hand and reserved both go down).
    A warehouse's `to_store` fulfillment leaves as a transfer to the pickup store instead
    (orders.services.ship_to_store.leg_ship)."""
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
    if f.method == FulfillmentMethod.TO_STORE:
        return ship_to_store.leg_ship(
            f, carrier=carrier, tracking_number=tracking_number, user=user, channel=channel
        )
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


@transaction.atomic
def fulfillment_ready(*, fulfillment_id, user=None, channel: str = "") -> Fulfillment:
    """At the counter (pickup, curbside): the customer gets a pickup code (orders.services.codes),
    and the pickup window starts: `pickup_expires_at` and the reminder's `pickup_remind_at` from
    the store's settings (orders.services.window, docs/orders.md "Pickup window")."""
    f = locked_fulfillment(fulfillment_id, user)
    transitions.check(f, Status.READY_FOR_PICKUP)
    _picked_in_full(f)
    now = timezone.now()
    deadlines = pickup_deadlines(location=f.location, ready_at=now)
    f, _ = transitions.transition(
        f,
        Status.READY_FOR_PICKUP,
        actor=user,
        channel=channel,
        reason="ready for pickup",
        locked=True,
        updates={
            "pickup_code": code_new(),
            "pickup_code_attempts": 0,
            "ready_at": now,
            "pickup_expires_at": deadlines.expires_at,
            "pickup_remind_at": deadlines.remind_at,
        },
        data={"pickup_expires_at": iso_utc(deadlines.expires_at)},
    )
    return f


@dataclass(frozen=True)
class TakenIn:
    """Units of one SKU the customer took at a partial hand-over."""

    sku: str
    quantity: int


def fulfillment_collect(
    *,
    fulfillment_id,
    pickup_code: str,
    lines: Sequence[TakenIn] | None = None,
    user=None,
    channel: str = "",
) -> Fulfillment:
    """Handed to the customer who showed the right code: the stock is committed.

    `lines`, for a partial hand-over, is what the customer took; a SKU of the fulfillment not in
    them was not taken. Checked before the code (400, not counted as a try, nothing written): each
    SKU once, on the fulfillment, 0 to what its line carries, and something taken. With the right
    code, in the one transaction: the units not taken are released at the store (ledger rows;
    every channel sees them at once), cancelled on the fulfillment and order lines (totals follow),
    the taken units committed, the fulfillment collected (its event's `data` has `taken` and
    `not_taken`), and the units not taken refunded (cause "partial_handover"). Taking everything
    is a plain collect.

    A wrong code is 422 `wrong_pickup_code`; after OMS["PICKUP_CODE_MAX_ATTEMPTS"] of them every
    code, the right one too, is 429 `too_many_attempts` until `pickup_code_reissue`. Each refusal is
    counted on the fulfillment and is an event in the timeline. So this is not one atomic function:
    one transaction collects, or commits the refusal's count and event, and the error is raised
    after it, so that the refusal stays counted although the request fails. (Inside a caller's
    transaction the block is a savepoint: that caller must commit for the count to stay.)
    """
    with transaction.atomic():
        f = locked_fulfillment(fulfillment_id, user)
        transitions.check(f, Status.COLLECTED)
        if f.compartment_id is not None:
            raise InLocker(
                "This order waits in a locker: take it out first (POST /fulfillments/{id}/unload/), then "
                "hand it over.",
                details={"fulfillment": f.pk, "compartment": str(f.compartment)},
            )
        not_taken = _not_taken(f, lines) if lines is not None else {}
        refused = pickup_code_check(f, typed=pickup_code, user=user, channel=channel)
        if refused is None:
            f = _collect(f, not_taken, user=user, channel=channel)
    if refused is not None:
        raise refused
    return f


def _not_taken(f: Fulfillment, taken: Sequence[TakenIn]) -> dict[FulfillmentLine, int]:
    """{fulfillment line: units the customer left}, `taken` checked against the lines (400)."""
    lines = fulfillment_lines(f)
    units = quantities_by_sku(lines, taken, verb="Handed over")
    if not any(units.values()):
        raise NothingTaken(
            "Nothing was handed over: cancel the fulfillment instead.", details={"field": "lines"}
        )
    left = {ln: ln.quantity - units.get(ln.sku.code, 0) for ln in lines}
    return {ln: q for ln, q in left.items() if q > 0}


def _collect(
    f: Fulfillment,
    not_taken: dict[FulfillmentLine, int],
    *,
    user,
    channel: str,
    reason: str = "collected",
    data: dict | None = None,
) -> Fulfillment:
    """Collect the locked fulfillment; release, cancel and refund `not_taken` (a partial hand-over).
    `reason` and `data` describe the hand-over in the event (a locker's: which compartment).

    Lock order: the release and the commit touch different subsets of the store's levels, so all
    of them are locked first, in primary-key order; then the order lines, then the order row."""
    data = dict(data or {})
    if not_taken:
        stock_levels_lock(lines=[Line(f.location_id, ln.sku_id, ln.quantity) for ln in fulfillment_lines(f)])
        stock_release(
            lines=[Line(f.location_id, ln.sku_id, q) for ln, q in not_taken.items()],
            reference=f.order.number,
            user=acting_user(user),
            reason="not taken at a partial hand-over",
        )
        for ln, q in not_taken.items():
            ln.quantity -= q
        FulfillmentLine.objects.bulk_update(list(not_taken), ["quantity"])
    _commit_stock(f, user=user, reason=reason)
    if not_taken:
        cancel_line_quantities(f.order, {ln.order_line_id: q for ln, q in not_taken.items()})
        data |= {
            "taken": [
                {"sku": ln.sku.code, "quantity": ln.quantity} for ln in fulfillment_lines(f) if ln.quantity
            ],
            "not_taken": [{"sku": ln.sku.code, "quantity": q} for ln, q in not_taken.items()],
        }
        reason = "collected in part: " + ", ".join(
            f"{ln.sku.code} {q} not taken" for ln, q in not_taken.items()
        )
    f, _ = transitions.transition(
        f,
        Status.COLLECTED,
        actor=user,
        channel=channel,
        reason=reason,
        locked=True,
        updates={"collected_at": timezone.now()},
        data=data,
    )
    if not_taken:
        refund_cancelled(
            f.order,
            {ln.order_line_id: q for ln, q in not_taken.items()},
            cause="partial_handover",
            reason="not taken at a partial hand-over",
            user=user,
            channel=channel,
        )
    return f


def pickup_code_check(
    f: Fulfillment, *, typed: str, user=None, channel: str = "", data: dict | None = None
) -> WrongPickupCode | PickupCodeLocked | None:
    """None when `typed` is the (locked) fulfillment's pickup code and it may still be tried.

    `data` goes into the refusal's event (a locker's: which locker and compartment). Otherwise the refusal is counted (`codes.code_try`) and written to the timeline
    (PICKUP_CODE_REFUSED: who, when, attempt n), in the caller's transaction, and the error to
    raise once that transaction has committed is returned. The lockers' "open" reuses it."""
    limit = settings.OMS["PICKUP_CODE_MAX_ATTEMPTS"]
    refusal = code_try(
        f, typed=typed, code_field="pickup_code", attempts_field="pickup_code_attempts", limit=limit
    )
    if refusal is None:
        return None
    now_locked = refusal.attempt >= limit
    if refusal.locked:
        reason = f"pickup code refused: locked after {limit} wrong codes (attempt {refusal.attempt})"
    else:
        reason = f"pickup code refused (attempt {refusal.attempt} of {limit})"
    transitions.record_events(
        [
            fulfillment_event(
                f,
                EventType.PICKUP_CODE_REFUSED,
                user=user,
                channel=channel,
                reason=reason,
                data={
                    "location": f.location.code,
                    "attempt": refusal.attempt,
                    "max_attempts": limit,
                    "locked": now_locked,
                    **(data or {}),
                },
            )
        ]
    )
    if refusal.locked:
        return PickupCodeLocked(
            f"Too many wrong pickup codes ({limit}): no code is accepted until a new pickup code is "
            "issued (it is sent to the customer).",
            details={"field": "pickup_code", "attempt": refusal.attempt, "max_attempts": limit},
        )
    last = (
        " That was the last try: issue a new pickup code (it is sent to the customer)." if now_locked else ""
    )
    return WrongPickupCode(
        f"The pickup code does not match.{last}",
        details={"field": "pickup_code", "attempt": refusal.attempt, "attempts_left": refusal.attempts_left},
    )


@transaction.atomic
def pickup_code_reissue(*, fulfillment_id, user=None, channel: str = "", reason: str = "") -> Fulfillment:
    """A new pickup code for a fulfillment waiting at the counter; the count of wrong codes restarts.

    The way out of 429 `too_many_attempts`, and for a customer who lost the message. The old code
    stops working at once; the new one goes to the customer (the PICKUP_CODE_ISSUED event's
    notification, and the storefront's order), never to the staff who asked for it.
    """
    f = locked_fulfillment(fulfillment_id, user)
    if f.status != Status.READY_FOR_PICKUP:
        raise InvalidTransition(
            f"Only a fulfillment ready for pickup has a pickup code (this one is {f.status}).",
            details={"fulfillment": f.pk, "from": f.status, "to": EventType.PICKUP_CODE_ISSUED.value},
        )
    refused_before = f.pickup_code_attempts
    f.pickup_code, f.pickup_code_attempts = code_new(), 0
    f.save(update_fields=["pickup_code", "pickup_code_attempts", "updated_at"])
    transitions.record_events(
        [
            fulfillment_event(
                f,
                EventType.PICKUP_CODE_ISSUED,
                user=user,
                channel=channel,
                reason=reason or "new pickup code",
                data={"location": f.location.code, "refused_before": refused_before},
            )
        ]
    )
    return f


@transaction.atomic
def fulfillment_cancel(
    *,
    fulfillment_id,
    user=None,
    reason: str = "",
    channel: str = "",
    refund_cause: str = "fulfillment_cancelled",
) -> Fulfillment:
    """Stop a fulfillment before it leaves: release what it still has reserved, cancel those units
    and refund them (one Refund, `refund_cause`: the pickup-expiry sweep passes "pickup_expired").
    The one-fulfillment case of `cancellation.cancel_many`; a warehouse's ship-to-store part goes
    through `ship_to_store.leg_cancel`, and a store's pickup still waiting for its transfer takes
    the unsent parts with it (below)."""
    f = locked_fulfillment(fulfillment_id, user)
    transitions.check(f, Status.CANCELLED)
    if f.method == FulfillmentMethod.TO_STORE:
        return ship_to_store.leg_cancel(f, user=user, reason=reason, channel=channel)
    if f.status != Status.AWAITING_TRANSFER:
        cancel_many(
            [Cancellation(f.order, [f], whole_order=False, reason=reason, refund_cause=refund_cause)],
            user=user,
            channel=channel,
        )
        return f
    # Ship to store, goods on their way: the warehouses' parts not yet sent go with it (what is
    # already on its way arrives at the store as ordinary stock), and the units they carried are
    # cancelled and refunded too.
    legs = ship_to_store.live_legs(f)
    all_lines = fulfillment_lines(f)
    lines = [ln for ln in all_lines if ln.quantity > 0]
    releases = [Line(f.location_id, ln.sku_id, ln.quantity) for ln in lines]
    releases += [
        Line(leg.location_id, ln.sku_id, ln.quantity)
        for leg in legs
        for ln in fulfillment_lines(leg)
        if ln.quantity
    ]
    cancelled = {ln.order_line_id: ln.quantity + ln.incoming_quantity for ln in all_lines}
    cancelled = {pk: q for pk, q in cancelled.items() if q > 0}
    if releases:
        stock_release(
            lines=releases,
            reference=f.order.number,
            user=acting_user(user),
            reason=reason or "fulfillment cancelled",
        )
    if cancelled:
        cancel_line_quantities(f.order, cancelled)
    if legs:
        transitions.transition_all(
            legs, Status.CANCELLED, order=f.order, actor=user, channel=channel, reason=reason or "cancelled"
        )
    f, _ = transitions.transition(
        f, Status.CANCELLED, actor=user, channel=channel, reason=reason or "cancelled", locked=True
    )
    if cancelled:
        refund_cancelled(
            f.order,
            cancelled,
            cause=refund_cause,
            reason=reason or "fulfillment cancelled",
            user=user,
            channel=channel,
        )
    return f


@transaction.atomic
def order_customer_arrived(*, number: str, note: str = "", user=None, channel: str = "") -> Order:
    """The customer is here to collect: in the car park (curbside) or at the counter (in store;
    the app's check-in or the associate's "Customer is here"). The store's Pickups page puts
    arrivals first, longest waiting first: a second arrival keeps the first one's time (and its
    note, unless a new one is given). 422 `not_a_pickup` for a shipped order, 409 when nothing waits."""
    order, fs = order_with_locked_fulfillments(number, user)
    if order.fulfillment_method not in (FulfillmentMethod.CURBSIDE, FulfillmentMethod.PICKUP):
        raise NotAPickup(
            "Only pickup orders (in store or curbside) can report an arrival.", details={"order": number}
        )
    note = (note or "").strip()
    if len(note) > 255:
        raise InvalidInput("note is at most 255 characters.", details={"field": "note"})
    waiting = [f for f in fs if f.status not in transitions.FINAL and f.method != FulfillmentMethod.TO_STORE]
    if not waiting:
        raise InvalidTransition(
            "Nothing of this order is waiting to be handed over.",
            details={"order": number, "from": order.status, "to": "customer_arrived"},
        )
    # Said twice (the app retries, the car moves): the customer keeps their place in the queue (the
    # first arrival's time) and the note they gave unless they give a new one.
    Fulfillment.objects.filter(pk__in=[f.pk for f in waiting]).update(
        customer_arrived_at=Coalesce(F("customer_arrived_at"), Value(timezone.now())),
        arrival_note=note or F("arrival_note"),
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
    transitions.record_events(events)
    return order
