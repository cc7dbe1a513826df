"""Picking: what was found on the shelf, and what happens to what was not (a short pick).

A short pick releases the missing units' reservation, counts them off on hand (a cycle-count
movement), and re-routes them to other locations; what nobody has is cancelled on the order line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from inventory.exceptions import InsufficientStock
from inventory.models import MovementKind
from inventory.services import Line, stock_adjust, stock_release, stock_reserve

from .. import transitions
from ..exceptions import InvalidTransition
from ..hooks import emit
from ..models import EventType, Fulfillment, FulfillmentLine, FulfillmentMethod, FulfillmentStatus, OrderEvent
from ..routing import RoutingDecision, route
from . import ship_to_store
from .cancellation import cancel_line_quantities, refund_cancelled
from .common import acting_user, fulfillment_event, fulfillment_lines, locked_fulfillment, quantities_by_sku
from .fulfillment import start_picking
from .inputs import PICKUP_METHODS
from .sourcing import SkuLine, routing_request

Status = FulfillmentStatus


@dataclass(frozen=True)
class PickIn:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Shortfall:
    """Units of one fulfillment line that were not on the shelf."""

    line: FulfillmentLine
    missing: int


@transaction.atomic
def fulfillment_pick(*, fulfillment_id, picks: Sequence[PickIn], user=None, channel: str = "") -> Fulfillment:
    """Record what was found on the shelf. Lines not mentioned are picked in full.

    A quantity below the ordered one is a short pick: the missing units' reservation is released,
    on hand is counted down by the missing quantity (a cycle-count movement: we know those units
    are not there; units on the shelf for other orders were not counted, so no absolute count is
    set), and the missing quantity is re-routed to other locations (new fulfillments, reserved
    there) or, when nothing can fill it, cancelled on the order line (LINE_CANCELLED event) and
    refunded (one Refund, cause "short_pick").
    """
    f = locked_fulfillment(fulfillment_id, user)
    if f.status not in (Status.PENDING, Status.PICKING):
        raise InvalidTransition(
            f"Fulfillment {f.pk} is {f.status}; only pending or picking work can be picked.",
            details={"fulfillment": f.pk, "from": f.status, "to": "picked"},
        )
    lines = fulfillment_lines(f)
    if any(ln.picked_quantity is not None for ln in lines):
        raise InvalidTransition(
            f"Fulfillment {f.pk} was already picked.",
            code="already_picked",
            details={"fulfillment": f.pk, "from": f.status, "to": "picked"},
        )
    picked = quantities_by_sku(lines, picks, verb="Picked")
    f = start_picking(f, user, channel)
    short = []
    for ln in lines:
        on_shelf = picked.get(ln.sku.code, ln.quantity)
        if on_shelf < ln.quantity:
            short.append(Shortfall(ln, ln.quantity - on_shelf))
        ln.picked_quantity = ln.quantity = on_shelf
    FulfillmentLine.objects.bulk_update(lines, ["picked_quantity", "quantity"])
    if short:
        _short_pick(f, short, user=user, channel=channel)
    if all(ln.quantity == 0 for ln in lines):
        transitions.transition(
            f, Status.CANCELLED, actor=user, channel=channel, reason="nothing found on the shelf", locked=True
        )
    return f


def _short_pick(f: Fulfillment, short: list[Shortfall], *, user, channel: str = "") -> None:
    """Release and count off the missing units, re-route them, cancel what nobody has."""
    reference = f.order.number
    stock_release(
        lines=[Line(f.location_id, s.line.sku_id, s.missing) for s in short],
        reference=reference,
        user=acting_user(user),
        reason="short pick",
    )
    for s in short:
        stock_adjust(
            location=f.location,
            sku=s.line.sku,
            delta=-s.missing,
            kind=MovementKind.CYCLE_COUNT,
            reason=f"short pick: {s.missing} not found",
            reference=reference,
            reference_type="order",
            user=acting_user(user),
        )
    events = [
        fulfillment_event(
            f,
            EventType.SHORT_PICK,
            user=user,
            channel=channel,
            reason=", ".join(f"{s.line.sku.code} {s.missing} missing" for s in short),
            data={
                "location": f.location.code,
                "lines": [{"sku": s.line.sku.code, "missing": s.missing} for s in short],
            },
        )
    ]
    if f.method == FulfillmentMethod.TO_STORE:  # ship to store: re-planned for the pickup store
        OrderEvent.objects.bulk_create(events)
        emit(events)
        ship_to_store.leg_short_pick(f, {s.line.sku_id: s.missing for s in short}, user=user, channel=channel)
        return
    filled = _reroute(f, short, user=user, channel=channel, events=events)
    unfilled = {
        s.line: s.missing - filled.get(s.line.sku_id, 0)
        for s in short
        if s.missing > filled.get(s.line.sku_id, 0)
    }
    if unfilled:
        cancel_line_quantities(f.order, {ln.order_line_id: q for ln, q in unfilled.items()})
        events.append(
            fulfillment_event(
                f,
                EventType.LINE_CANCELLED,
                user=user,
                channel=channel,
                reason="not available anywhere after a short pick",
                data={"lines": [{"sku": ln.sku.code, "quantity": q} for ln, q in unfilled.items()]},
            )
        )
    OrderEvent.objects.bulk_create(events)
    emit(events)
    if unfilled:
        refund_cancelled(
            f.order,
            {ln.order_line_id: q for ln, q in unfilled.items()},
            cause="short_pick",
            reason="not available anywhere after a short pick",
            user=user,
            channel=channel,
        )


def _reroute(f: Fulfillment, short: list[Shortfall], *, user, channel, events: list) -> dict[int, int]:
    """Route the missing units to other locations and reserve them there; {sku_id: units found}.

    The attempt runs in a savepoint: when the stock moved since routing read it, nothing of it
    stays and the units count as not found.
    """
    order = f.order
    store = order.pickup_location if f.method in PICKUP_METHODS else None
    near = (
        (order.destination_latitude, order.destination_longitude)
        if order.destination_latitude is not None
        else None
    )
    decision = route(
        routing_request(
            method=f.method,
            store=store,
            near=near,
            lines=[SkuLine(s.line.sku, s.missing) for s in short],
            exclude={f.location_id},
        )
    )
    if not decision.allocations:
        return {}
    try:
        with transaction.atomic():
            return _reserve_rerouted(
                f, decision, {s.line.sku_id: s.line for s in short}, user=user, channel=channel, events=events
            )
    except InsufficientStock:
        return {}


def _reserve_rerouted(
    f: Fulfillment,
    decision: RoutingDecision,
    line_of: dict[int, FulfillmentLine],
    *,
    user,
    channel,
    events: list,
) -> dict[int, int]:
    """Reserve the re-routed units and put them in a pending fulfillment at each new location.

    Pending fulfillments of the order at those locations are locked before the stock (lock order).
    """
    order = f.order
    filled: dict[int, int] = defaultdict(int)
    by_location: dict[int, list] = defaultdict(list)
    for a in decision.allocations:
        by_location[a.location_id].append(a)
        filled[a.sku_id] += a.quantity
    existing = {
        x.location_id: x
        for x in Fulfillment.objects.filter(
            order=order, method=f.method, status=Status.PENDING, location_id__in=list(by_location)
        )
        .select_for_update(of=("self",))
        .order_by("pk")
    }
    stock_reserve(
        lines=[Line(a.location_id, a.sku_id, a.quantity) for a in decision.allocations],
        reference=order.number,
        user=acting_user(user),
    )
    for location_id, allocations in by_location.items():
        target = existing.get(location_id) or Fulfillment.objects.create(
            order=order, location_id=location_id, method=f.method
        )
        present = {fl.sku_id: fl for fl in FulfillmentLine.objects.filter(fulfillment=target)}
        for a in allocations:
            if a.sku_id in present:
                FulfillmentLine.objects.filter(pk=present[a.sku_id].pk).update(
                    quantity=F("quantity") + a.quantity
                )
            else:
                FulfillmentLine.objects.create(
                    fulfillment=target,
                    order_line_id=line_of[a.sku_id].order_line_id,
                    sku_id=a.sku_id,
                    quantity=a.quantity,
                )
        destination = decision.location_codes.get(location_id, location_id)
        events.append(
            fulfillment_event(
                target,
                EventType.REROUTED,
                user=user,
                channel=channel,
                reason=f"short pick at {f.location.code} re-routed to {destination}",
                data={
                    "from_location": f.location.code,
                    "decision": decision.as_json(),
                    "lines": [
                        {"sku": line_of[a.sku_id].sku.code, "quantity": a.quantity} for a in allocations
                    ],
                },
            )
        )
    return filled
