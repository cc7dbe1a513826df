"""Ship to store: a pickup order whose store is short, filled from a warehouse (docs/orders.md).

    placement  the store reserves what it has; routing (ship, warehouses only, nearest the store)
               chooses where the rest comes from, reserved there in the same call (one lock order);
               the pickup fulfillment waits (`awaiting_transfer`, `ready_by`, lines' `incoming_quantity`)
               and each warehouse gets a `to_store` fulfillment that `supplies` it
    warehouse  claims, picks, packs and ships its `to_store` fulfillment like any other; shipping
               creates the Transfer (in transit) from the reserved units (`leg_ship`)
    arrival    receiving that transfer at the store, by any path (inventory.transfer_receive), asks
               `transfer_arrival`: the units are counted in reserved for the pickup fulfillment;
               when nothing is on its way any more it is `pending`, the store's queue
    short      fewer received than sent, or a warehouse short pick: the rest is re-planned (another
               warehouse, a new `to_store` fulfillment) or cancelled and refunded (`replan`)

Lock order: a transfer row, fulfillments (the pickup fulfillment before its `to_store` ones: lower
pk; transitions.lock_fulfillment locks both for a `to_store` one), stock levels (pk order), the
order row.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.errors import PolicyViolation
from inventory.exceptions import InsufficientStock
from inventory.hooks import ArrivalClaim, TransferArrival
from inventory.models import StockLevel
from inventory.services import Line, stock_levels_lock, stock_release, stock_reserve, transfer_create
from stores.models import Location, LocationKind

from .. import transitions
from ..models import (
    EventType,
    Fulfillment,
    FulfillmentLine,
    FulfillmentMethod,
    FulfillmentStatus,
    OrderEvent,
)
from ..routing import RoutingDecision, pickup_record, route
from .cancellation import cancel_line_quantities, refund_cancelled
from .common import acting_user, fulfillment_event, fulfillment_lines
from .sourcing import SkuLine, Sourcing, route_and_reserve, routing_request, short_at_store
from .window import store_zone

Status = FulfillmentStatus
TO_STORE = FulfillmentMethod.TO_STORE


def ready_by(store: Location, *, now: dt.datetime | None = None) -> dt.date:
    """The day promised: today in the store's calendar plus its transit days."""
    today = (now or timezone.now()).astimezone(store_zone(store)).date()
    return today + dt.timedelta(days=store.transit_days)


def check_allowed(store: Location, wanted: bool | None) -> None:
    """An explicit request (`fulfillment.ship_to_store: true`) at a store that does not allow it:
    422 `ship_to_store_not_offered`, before anything is written."""
    if wanted and not store.ship_to_store:
        raise PolicyViolation(
            f"{store.code} does not accept ship-to-store orders: choose a store that has the goods "
            "or one that allows ship to store.",
            code="ship_to_store_not_offered",
            details={"field": "fulfillment.ship_to_store", "location": store.code},
        )


# --- Placement ---------------------------------------------------------------------------------


def sourcing_ship_to_store(
    *,
    store: Location,
    method: str,
    lines: Sequence[SkuLine],
    available: dict[int, int],
    reference: str,
    user,
) -> Sourcing:
    """The store is short (placement's lookup said so) and allows ship to store: reserve what it has
    and route the rest to warehouses, all in one `stock_reserve` (levels locked in pk order, so it
    never deadlocks with other reservations; guarded, so it never oversells). When stock moved since
    it was read, the store's units are read again and routing runs again, once; then the store's
    409 (with nearby stock), nothing written."""
    try:
        return _reserve_split(
            store=store, method=method, lines=lines, available=available, reference=reference, user=user
        )
    except InsufficientStock:
        pass
    available = dict(
        StockLevel.objects.with_available()
        .filter(location=store, sku_id__in=[ln.sku.pk for ln in lines])
        .values_list("sku_id", "available")
    )
    try:
        return _reserve_split(
            store=store, method=method, lines=lines, available=available, reference=reference, user=user
        )
    except InsufficientStock:
        raise short_at_store(store=store, method=method, lines=lines, available=available) from None


def _reserve_split(*, store, method, lines, available, reference, user) -> Sourcing:
    store_lines = [
        Line(store.pk, ln.sku.pk, min(ln.quantity, max(0, available.get(ln.sku.pk, 0)))) for ln in lines
    ]
    store_lines = [sl for sl in store_lines if sl.quantity > 0]
    at_store = {sl.sku_id: sl.quantity for sl in store_lines}
    missing = [SkuLine(ln.sku, ln.quantity - at_store.get(ln.sku.pk, 0)) for ln in lines]
    missing = [m for m in missing if m.quantity > 0]
    decision, _ = route_and_reserve(
        method=FulfillmentMethod.SHIP,
        store=None,
        near=(store.latitude, store.longitude),
        lines=missing,
        reserve=lambda legs: stock_reserve(lines=[*store_lines, *legs], reference=reference, user=user),
        only_kind=LocationKind.WAREHOUSE,
    )
    promised = ready_by(store)
    record = pickup_record(
        method=method,
        store=store,
        lines=[(ln.sku.pk, ln.sku.code, at_store[ln.sku.pk]) for ln in lines if ln.sku.pk in at_store],
    )
    record["considered"][0]["reasons"] = [
        f"the customer's chosen store for {method}",
        "short; allows ship to store: the rest comes from a warehouse",
    ]
    record["ship_to_store"] = {
        "ready_by": promised.isoformat(),
        "transit_days": store.transit_days,
        "incoming": [{"sku": m.sku.code, "quantity": m.quantity} for m in missing],
        "routing": decision.as_json(),
    }
    return Sourcing(
        store_lines,
        {store.pk: store.code, **decision.location_codes},
        record,
        incoming={m.sku.pk: m.quantity for m in missing},
        legs=[Line(a.location_id, a.sku_id, a.quantity) for a in decision.allocations],
        ready_by=promised,
    )


def legs_for(
    store_f: Fulfillment, legs: Sequence[Line], *, order_line_of: dict[int, int], location_codes: dict
) -> list[tuple[Fulfillment, list[FulfillmentLine]]]:
    """Write a pending `to_store` fulfillment per warehouse of `legs`, supplying `store_f`: the
    warehouse's work (its queue, picking, shipping). Two bulk INSERTs."""
    by_location: dict[int, list[Line]] = defaultdict(list)
    for leg in legs:
        by_location[leg.location_id].append(leg)
    fs = [
        Fulfillment(
            order_id=store_f.order_id,
            location=Location(pk=loc_id, code=location_codes.get(loc_id, "")),
            method=TO_STORE,
            supplies=store_f,
        )
        for loc_id in by_location
    ]
    Fulfillment.objects.bulk_create(fs)
    rows = []
    for f, loc_lines in zip(fs, by_location.values(), strict=True):
        f_lines = [
            FulfillmentLine(
                fulfillment=f, order_line_id=order_line_of[ln.sku_id], sku_id=ln.sku_id, quantity=ln.quantity
            )
            for ln in loc_lines
        ]
        rows.append((f, f_lines))
    FulfillmentLine.objects.bulk_create([fl for _, f_lines in rows for fl in f_lines])
    return rows


# --- The warehouse ships ------------------------------------------------------------------------


def leg_ship(f: Fulfillment, *, carrier: str, tracking_number: str, user, channel: str) -> Fulfillment:
    """A warehouse ships its `to_store` fulfillment (locked, with the one it supplies): the reserved
    units leave as a Transfer to the store (in transit; on hand and reserved go down together),
    linked to the fulfillment; the pickup fulfillment's timeline (and the storefront's webhook
    `order.in_transit_to_store`) says so."""
    store_f = Fulfillment.objects.select_related("location").get(pk=f.supplies_id)
    lines = [ln for ln in fulfillment_lines(f) if ln.quantity > 0]
    transfer = transfer_create(
        from_location=f.location,
        to_location=store_f.location,
        lines=[(ln.sku, ln.quantity) for ln in lines],
        user=acting_user(user),
        reference=f.order.number,
        from_reserved=True,
    )
    shipped = fulfillment_event(
        store_f,
        EventType.TRANSFER_SHIPPED,
        user=user,
        channel=channel,
        reason=f"sent from {f.location.code} to {store_f.location.code}, ready by {store_f.ready_by}",
        data={
            "transfer": transfer.pk,
            "from_location": f.location.code,
            "ready_by": store_f.ready_by.isoformat() if store_f.ready_by else None,
            "lines": [{"sku": ln.sku.code, "quantity": ln.quantity} for ln in lines],
        },
    )
    f, _ = transitions.transition(
        f,
        Status.SHIPPED,
        actor=user,
        channel=channel,
        reason=f"sent to {store_f.location.code} (transfer {transfer.pk})",
        locked=True,
        updates={
            "carrier": carrier,
            "tracking_number": tracking_number,
            "shipped_at": timezone.now(),
            "transfer": transfer,
        },
        data={"transfer": transfer.pk, "carrier": carrier, "tracking_number": tracking_number},
        extra_events=[shipped],
    )
    return f


# --- The store receives ------------------------------------------------------------------------


def transfer_arrival(arrival: TransferArrival) -> ArrivalClaim | None:
    """inventory.hooks listener: a transfer is being received. When it carries a `to_store`
    fulfillment's units for a pickup fulfillment still waiting, claim them (counted in reserved)
    and, once counted, move them onto the pickup fulfillment; what did not arrive is re-planned or
    cancelled and refunded (`replan`). A cancelled pickup: not claimed, the goods are ordinary stock.

    Before the stock changes: the pickup fulfillment is locked (after the transfer row), and the
    levels the re-plan will reserve at are locked together with the store's, in pk order."""
    leg = (
        Fulfillment.objects.filter(transfer_id=arrival.transfer_id, method=TO_STORE)
        .select_related("location")
        .first()
    )
    if leg is None:
        return None
    store_f = transitions.lock_fulfillment(leg.supplies_id)
    if store_f.status != Status.AWAITING_TRANSFER:
        return None
    reserve = {sku: min(arrival.received.get(sku, 0), q) for sku, q in arrival.sent.items()}
    missing = {sku: q - reserve[sku] for sku, q in arrival.sent.items() if q > reserve[sku]}
    lines = {ln.sku_id: ln for ln in fulfillment_lines(store_f)}
    decision = _route_missing(store_f, {lines[s]: q for s, q in missing.items()}) if missing else None
    stock_levels_lock(
        lines=[
            *(Line(store_f.location_id, sku, 1) for sku in arrival.sent),
            *(Line(a.location_id, a.sku_id, a.quantity) for a in (decision.allocations if decision else [])),
        ]
    )

    def then() -> None:
        user = arrival.user
        for sku, q in reserve.items():  # what did not arrive comes off `incoming` in `replan`
            FulfillmentLine.objects.filter(pk=lines[sku].pk).update(
                quantity=F("quantity") + q, incoming_quantity=F("incoming_quantity") - q
            )
        received = fulfillment_event(
            store_f,
            EventType.TRANSFER_RECEIVED,
            user=user,
            reason=f"transfer {arrival.transfer_id} from {leg.location.code} received"
            + (
                ", short: " + ", ".join(f"{lines[s].sku.code} {q}" for s, q in missing.items())
                if missing
                else ""
            ),
            data={
                "transfer": arrival.transfer_id,
                "from_location": leg.location.code,
                "received": [{"sku": lines[s].sku.code, "quantity": q} for s, q in reserve.items()],
                "missing": [{"sku": lines[s].sku.code, "quantity": q} for s, q in missing.items()],
            },
        )
        transitions.record_events([received])
        if missing:
            replan(
                store_f,
                {lines[s]: q for s, q in missing.items()},
                decision=decision,
                user=user,
                cause="short_transfer",
                why=f"not received from {leg.location.code} (transfer {arrival.transfer_id})",
            )
        else:
            settle(store_f, user=user)

    return ArrivalClaim(reserve={s: q for s, q in reserve.items() if q > 0}, then=then)


def settle(store_f: Fulfillment, *, user, channel: str = "") -> None:
    """Nothing is on its way to the (locked) pickup fulfillment any more: it joins the store's
    queue (`pending`), or, with nothing left to hand over, is cancelled."""
    lines = fulfillment_lines(store_f)
    if store_f.status != Status.AWAITING_TRANSFER or any(ln.incoming_quantity for ln in lines):
        return
    if any(ln.quantity for ln in lines):
        transitions.transition(
            store_f,
            Status.PENDING,
            actor=user,
            channel=channel,
            reason="arrived from the warehouse",
            locked=True,
        )
    else:
        transitions.transition(
            store_f, Status.CANCELLED, actor=user, channel=channel, reason="nothing arrived", locked=True
        )


def _route_missing(
    store_f: Fulfillment, missing: dict[FulfillmentLine, int], exclude=frozenset()
) -> RoutingDecision:
    return route(
        routing_request(
            method=FulfillmentMethod.SHIP,
            store=None,
            near=(store_f.location.latitude, store_f.location.longitude),
            lines=[SkuLine(ln.sku, q) for ln, q in missing.items()],
            exclude=exclude,
            only_kind=LocationKind.WAREHOUSE,
        )
    )


def replan(
    store_f: Fulfillment,
    missing: dict[FulfillmentLine, int],
    *,
    user,
    cause: str,
    why: str,
    channel: str = "",
    decision: RoutingDecision | None = None,
    exclude=frozenset(),
) -> None:
    """Units the (locked) pickup fulfillment waited for will not come from where they were coming
    ({its line: units}): take them off `incoming_quantity`, reserve them at another warehouse
    (routing; a new `to_store` fulfillment, a `rerouted` event, a later `ready_by`) or, when none has
    them, cancel them on the order line and refund them (`line_cancelled` event, Refund `cause`).
    Then `settle`. In the caller's transaction."""
    for ln, q in missing.items():
        FulfillmentLine.objects.filter(pk=ln.pk).update(incoming_quantity=F("incoming_quantity") - q)
    if decision is None:
        decision = _route_missing(store_f, missing, exclude)
    order = store_f.order
    found: dict[int, int] = {}
    events: list[OrderEvent] = []
    if decision.allocations:
        try:
            with transaction.atomic():
                stock_reserve(
                    lines=[Line(a.location_id, a.sku_id, a.quantity) for a in decision.allocations],
                    reference=order.number,
                    user=acting_user(user),
                )
        except InsufficientStock:
            pass
        else:
            found = _add_legs(store_f, decision, missing, user=user, channel=channel, why=why, events=events)
    unfilled = {ln: q - found.get(ln.sku_id, 0) for ln, q in missing.items() if q > found.get(ln.sku_id, 0)}
    if unfilled:
        cancel_line_quantities(order, {ln.order_line_id: q for ln, q in unfilled.items()})
        events.append(
            fulfillment_event(
                store_f,
                EventType.LINE_CANCELLED,
                user=user,
                channel=channel,
                reason=f"{why}; no warehouse has it",
                data={"lines": [{"sku": ln.sku.code, "quantity": q} for ln, q in unfilled.items()]},
            )
        )
    transitions.record_events(events)
    settle(store_f, user=user, channel=channel)
    if unfilled:
        refund_cancelled(
            order,
            {ln.order_line_id: q for ln, q in unfilled.items()},
            cause=cause,
            reason=f"{why}; no warehouse has it",
            user=user,
            channel=channel,
        )


def _add_legs(store_f, decision: RoutingDecision, missing, *, user, channel, why, events) -> dict[int, int]:
    """New `to_store` fulfillments for what `decision` reserved; {sku_id: units found}."""
    line_of = {ln.sku_id: ln for ln in missing}
    legs = [Line(a.location_id, a.sku_id, a.quantity) for a in decision.allocations]
    legs_for(
        store_f,
        legs,
        order_line_of={s: ln.order_line_id for s, ln in line_of.items()},
        location_codes=decision.location_codes,
    )
    found: dict[int, int] = defaultdict(int)
    for leg in legs:
        found[leg.sku_id] += leg.quantity
        FulfillmentLine.objects.filter(pk=line_of[leg.sku_id].pk).update(
            incoming_quantity=F("incoming_quantity") + leg.quantity
        )
    promised = max(ready_by(store_f.location), store_f.ready_by or dt.date.min)
    if promised != store_f.ready_by:
        store_f.ready_by = promised
        store_f.save(update_fields=["ready_by", "updated_at"])
    codes = ", ".join(decision.location_codes.get(i, str(i)) for i in decision.location_ids)
    events.append(
        fulfillment_event(
            store_f,
            EventType.REROUTED,
            user=user,
            channel=channel,
            reason=f"{why}; sent again from {codes}, ready by {promised}"[:255],
            data={
                "ready_by": promised.isoformat(),
                "decision": decision.as_json(),
                "lines": [{"sku": line_of[s].sku.code, "quantity": q} for s, q in found.items()],
            },
        )
    )
    return found


# --- Cancelling ---------------------------------------------------------------------------------


def live_legs(store_f: Fulfillment) -> list[Fulfillment]:
    """The `to_store` fulfillments still at their warehouse for `store_f` (locked, pk order: after
    `store_f`, which the caller holds)."""
    return list(
        Fulfillment.objects.filter(
            supplies=store_f, status__in=[Status.PENDING, Status.PICKING, Status.PACKED]
        )
        .select_related("location", "order")
        .select_for_update(of=("self",))
        .order_by("pk")
    )


def leg_cancel(leg: Fulfillment, *, user, reason: str = "", channel: str = "") -> Fulfillment:
    """A warehouse cannot send its (locked) `to_store` fulfillment: its reservation is released and
    what the pickup fulfillment waited for from it is re-planned elsewhere, or cancelled and refunded."""
    store_f = transitions.lock_fulfillment(leg.supplies_id)  # already held: locked with `leg`
    lines = [ln for ln in fulfillment_lines(leg) if ln.quantity > 0]
    if lines:
        stock_release(
            lines=[Line(leg.location_id, ln.sku_id, ln.quantity) for ln in lines],
            reference=leg.order.number,
            user=acting_user(user),
            reason=reason or "cannot be sent to the store",
        )
    leg, _ = transitions.transition(
        leg, Status.CANCELLED, actor=user, channel=channel, reason=reason or "cancelled", locked=True
    )
    if lines and store_f.status == Status.AWAITING_TRANSFER:
        store_lines = {ln.sku_id: ln for ln in fulfillment_lines(store_f)}
        replan(
            store_f,
            {store_lines[ln.sku_id]: ln.quantity for ln in lines},
            user=user,
            channel=channel,
            cause="fulfillment_cancelled",
            why=f"{leg.location.code} cannot send it" + (f" ({reason})" if reason else ""),
            exclude={leg.location_id},
        )
    return leg


def leg_short_pick(leg: Fulfillment, missing: dict[int, int], *, user, channel: str = "") -> None:
    """A short pick at the warehouse of a (locked) `to_store` fulfillment ({sku_id: units not on
    the shelf}, already released and counted off): re-plan them for the pickup fulfillment, another
    warehouse than this one, or cancel and refund them (cause "short_pick")."""
    store_f = transitions.lock_fulfillment(leg.supplies_id)  # already held: locked with `leg`
    if store_f.status != Status.AWAITING_TRANSFER:
        return
    store_lines = {ln.sku_id: ln for ln in fulfillment_lines(store_f)}
    replan(
        store_f,
        {store_lines[sku]: q for sku, q in missing.items()},
        user=user,
        channel=channel,
        cause="short_pick",
        why=f"short pick at {leg.location.code}",
        exclude={leg.location_id},
    )
