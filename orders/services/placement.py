"""Order placement and checkout holds: `order_place` reads as the steps of placing an order.

    1. order_request      check the input (orders/services/inputs.py; no database)
    2. placement_lookup   ONE statement: the pickup store, the SKUs, the customer, the store's stock
    3. source the stock   from a checkout hold, at the chosen pickup store, or by routing
    4. write the rows     the order, its lines, fulfillments, fulfillment lines and events
    5. emit the events    listeners (notifications' outbox) write in this transaction
    6. reserve at store   pickup only: the guarded reservation, last, so the stock row every buyer of
                          a flash sale queues on is locked for as short a time as possible

All in one transaction: the whole order with its stock reserved, or nothing.
docs/architecture.md walks both paths (pickup and ship) with the file of each step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, transaction

from config.errors import Forbidden, InvalidInput, PolicyViolation
from inventory.exceptions import InsufficientStock
from inventory.models import Sku
from inventory.services import hold_create, stock_reserve
from stores.models import Location, Role
from stores.selectors import require_location_access, user_location_ids, user_role

from ..db import PlacementLookup, insert_order_rows, placement_lookup
from ..exceptions import PickupNotOffered, UnknownLocation, UnknownSku
from ..hooks import emit
from ..models import (
    Channel,
    Customer,
    EventType,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    new_order_number,
)
from .common import acting_user
from .customers import customer_insert, customer_matching
from .inputs import (
    CENT,
    CustomerIn,
    Destination,
    FulfillmentIn,
    LineIn,
    OrderRequest,
    destination_of,
    line_index,
    order_request,
)
from .ship_to_store import check_allowed, legs_for, sourcing_ship_to_store
from .sourcing import (
    SkuLine,
    Sourcing,
    check_store_stock,
    reserve_at_store,
    reserve_from_hold,
    route_and_reserve,
    sourcing_of,
)


class PlacedFulfillment(NamedTuple):
    fulfillment: Fulfillment
    lines: list[FulfillmentLine]


@dataclass(frozen=True)
class PlacedOrder:
    """A new order with the rows written for it (the 201 body is built from these, no re-read)."""

    order: Order
    lines: list[OrderLine]
    fulfillments: list[PlacedFulfillment]
    events: list[OrderEvent]
    # Pickup placed with `reserve_at_store_later`: the reservation still to run
    # (order_reserve_at_store), before the caller's transaction commits.
    store_reservation: StoreReservation | None = None


@dataclass(frozen=True)
class StoreReservation:
    """The guarded reservation a pickup order still needs at its store (placement's last step)."""

    store: Location
    method: str
    lines: list[SkuLine]
    reference: str  # the order number
    user: object


@transaction.atomic(savepoint=False)
def order_place(
    *,
    channel: str,
    customer: CustomerIn,
    fulfillment: FulfillmentIn,
    lines: Sequence[LineIn],
    currency: str,
    hold_id=None,
    user=None,
    placed_at: str | None = None,
    reserve_at_store_later: bool = False,
    note: str | None = "",
) -> PlacedOrder:
    """Place an order from any channel (module docstring: the steps). 400/404/409/422 as each
    step says; with `hold_id` the hold's units become the order's reservations.

    It joins a caller's transaction (the API's Idempotency-Key one) without a savepoint: a
    savepoint around placement costs the flash sale 7-10 % (docs/benchmarks.md, "Savepoints on
    the hot path"). So when it raises there, Django marks the caller's transaction for rollback; a
    caller that catches its error and carries on calls it inside its own `transaction.atomic()`.

    `reserve_at_store_later`: for a pickup at a store, return with the reservation (step 6) not
    yet taken, as `PlacedOrder.store_reservation`; the caller MUST run `order_reserve_at_store`
    before its transaction commits. The API does, after storing its response
    (config.idempotency.ThenBeforeCommit), so the stock row is locked only until COMMIT.
    """
    request = order_request(
        channel=channel,
        customer=customer,
        fulfillment=fulfillment,
        lines=lines,
        currency=currency,
        note=note,
    )
    lookup = placement_lookup(
        store_code=request.destination.store_code,
        sku_codes=list(request.line_index),
        email=request.customer.email,
        phone=request.customer.phone,
        with_store_stock=hold_id is None,
    )
    store = pickup_store(request.destination, lookup)
    sku_lines = known_skus(request.lines, request.line_index, lookup.skus)
    till = till_store(channel=channel, user=user, placed_at=placed_at)
    number = new_order_number()
    who = acting_user(user)

    method = request.destination.method
    if hold_id is not None:
        sourcing = reserve_from_hold(
            hold_id=hold_id, method=method, lines=sku_lines, store=store, reference=number, user=who
        )
    elif store is not None:
        sourcing = store_sourcing(
            request.destination, store=store, lines=sku_lines, lookup=lookup, reference=number, user=who
        )
    else:
        decision, _ = route_and_reserve(
            method=method,
            store=None,
            near=request.destination.coordinates,
            lines=sku_lines,
            reserve=lambda stock_lines: stock_reserve(lines=stock_lines, reference=number, user=who),
        )
        sourcing = sourcing_of(decision)

    # Staff at the till link the order to the customer's history but never change the customer.
    update_customer = who is None or user_role(who) == Role.STOREFRONT
    buyer = customer_matching(lookup.customers, request.customer, update=update_customer)
    placed = write_order(
        request,
        number=number,
        customer=buyer,
        store=store,
        till=till,
        user=who,
        lines=sku_lines,
        sourcing=sourcing,
        update_customer=update_customer,
    )
    if sourcing.legs:
        placed = _with_legs(placed, sourcing)
    emit(placed.events)
    if not sourcing.store_reservation_pending:
        return placed
    reservation = StoreReservation(store, method, sku_lines, number, who)
    if reserve_at_store_later:
        return replace(placed, store_reservation=reservation)
    order_reserve_at_store(reservation=reservation)
    return placed


def order_reserve_at_store(*, reservation: StoreReservation) -> None:
    """Placement's last step for a pickup: the guarded reservation at the store (409 when another
    buyer took the units since the lookup; the caller's transaction then rolls back as a whole).
    Runs in the caller's transaction: inside `order_place`, or after it (`reserve_at_store_later`)."""
    reserve_at_store(
        store=reservation.store,
        method=reservation.method,
        lines=reservation.lines,
        reference=reservation.reference,
        user=reservation.user,
    )


@transaction.atomic
def checkout_hold_create(*, lines: Sequence[LineIn], fulfillment: FulfillmentIn, user=None):
    """Hold the cart's stock where routing would take it from (inventory.services.hold_create).

    Returns the hold, with `allocated`: [{sku, location, quantity}]. 409 insufficient_stock as for orders.
    """
    destination = destination_of(fulfillment)
    index = line_index(lines)
    lookup = placement_lookup(
        store_code=destination.store_code, sku_codes=list(index), email=None, phone=None
    )
    store = pickup_store(destination, lookup)
    sku_lines = known_skus(lines, index, lookup.skus)
    decision, hold = route_and_reserve(
        method=destination.method,
        store=store,
        near=destination.coordinates,
        lines=sku_lines,
        reserve=lambda stock_lines: hold_create(lines=stock_lines, user=user, request={"reference": ""}),
    )
    codes = {ln.sku.pk: ln.sku.code for ln in sku_lines}
    hold.request = {
        "method": destination.method,
        "location": store.code if store else None,
        "lines": {codes[a.sku_id]: a.quantity for a in decision.allocations},
    }
    hold.save(update_fields=["request"])
    hold.allocated = [
        {
            "sku": codes[a.sku_id],
            "location": decision.location_codes.get(a.location_id),
            "quantity": a.quantity,
        }
        for a in decision.allocations
    ]
    return hold


# --- Steps -----------------------------------------------------------------------------------


def store_sourcing(
    destination: Destination,
    *,
    store: Location,
    lines: list[SkuLine],
    lookup: PlacementLookup,
    reference,
    user,
) -> Sourcing:
    """The chosen store's stock; when it is short and ship to store is allowed and not refused by
    the client (`destination.ship_to_store`), the rest from a warehouse (orders.services.
    ship_to_store). Asked for at a store that does not allow it: 422, whatever the stock."""
    check_allowed(store, destination.ship_to_store)
    try:
        return check_store_stock(
            store=store, method=destination.method, lines=lines, available=lookup.store_available
        )
    except InsufficientStock:
        if not store.ship_to_store or destination.ship_to_store is False:
            raise
    return sourcing_ship_to_store(
        store=store,
        method=destination.method,
        lines=lines,
        available=lookup.store_available,
        reference=reference,
        user=user,
    )


def _with_legs(placed: PlacedOrder, sourcing: Sourcing) -> PlacedOrder:
    """Ship to store: the warehouses' `to_store` fulfillments, supplying the pickup fulfillment."""
    store_f = placed.fulfillments[0].fulfillment
    legs = legs_for(
        store_f,
        sourcing.legs,
        order_line_of={ol.sku_id: ol.pk for ol in placed.lines},
        location_codes=sourcing.location_codes,
    )
    return replace(placed, fulfillments=[*placed.fulfillments, *(PlacedFulfillment(f, fl) for f, fl in legs)])


def pickup_store(destination: Destination, lookup: PlacementLookup) -> Location | None:
    """The looked-up pickup store (pickup and curbside): it must exist, be active and offer pickup."""
    if not destination.is_pickup:
        return None
    store, code = lookup.store, destination.store_code
    if store is None:
        raise UnknownLocation(
            f"Unknown location {code!r}.", details={"field": "fulfillment.location", "location": code}
        )
    if not (store.is_active and store.offers_pickup):
        raise PickupNotOffered(
            f"{store.code} does not offer {destination.method}.",
            details={"field": "fulfillment.location", "location": store.code},
        )
    return store


def known_skus(lines: Sequence[LineIn], index: dict[str, int], skus: dict[str, Sku]) -> list[SkuLine]:
    """Each line with its SKU: 404 for codes nobody knows, 422 for SKUs no longer sold."""
    missing = [code for code in index if code not in skus]
    if missing:
        raise UnknownSku(
            "Unknown SKU(s).", details={"skus": missing, "field": f"lines[{index[missing[0]]}].sku"}
        )
    inactive = [code for code in index if not skus[code].is_active]
    if inactive:
        raise PolicyViolation(
            "SKU(s) no longer sold.", code="sku_inactive", details={"skus": inactive, "field": "lines"}
        )
    return [SkuLine(skus[ln.sku], ln.quantity) for ln in lines]


def till_store(*, channel: str, user, placed_at: str | None) -> Location | None:
    """The till's store for orders an associate or a manager places (channel store). None for
    other channels, which staff may not use: an order by staff is a till order at one of their
    stores (docs/security.md; 403 `till_orders_only`, and warehouse staff place no orders)."""
    if acting_user(user) is None:
        return None
    role = user_role(user)
    staff = not user.is_superuser and role in (Role.ASSOCIATE, Role.MANAGER, Role.WAREHOUSE)
    if staff and (role == Role.WAREHOUSE or channel != Channel.STORE):
        raise Forbidden(
            "Staff place orders at the till only: channel store, at one of their stores (placed_at).",
            code="till_orders_only",
            details={"field": "channel"},
        )
    if channel != Channel.STORE:
        return None
    if placed_at:
        loc = Location.objects.filter(code=placed_at).first()
        if loc is None:
            raise UnknownLocation(f"Unknown location {placed_at!r}.", details={"field": "placed_at"})
        if role != Role.STOREFRONT:
            require_location_access(user, loc)
        return loc
    if role in (Role.ASSOCIATE, Role.MANAGER):
        ids = user_location_ids(user) or set()
        if len(ids) == 1:
            return Location.objects.get(pk=next(iter(ids)))
        raise InvalidInput(
            "Say which store the order is placed at (placed_at).", details={"field": "placed_at"}
        )
    return None


def write_order(
    request: OrderRequest,
    *,
    number: str,
    customer: Customer,
    store: Location | None,
    till: Location | None,
    user,
    lines: list[SkuLine],
    sourcing: Sourcing,
    update_customer: bool = True,
) -> PlacedOrder:
    """Build the order's rows from the request and the sourcing, and INSERT them (orders.db on
    PostgreSQL: one statement; elsewhere one bulk INSERT per table). The order records its contact
    as given (`contact_*`); `update_customer=False`: a customer created concurrently since the
    lookup is taken as it is, not renamed."""
    totals = [
        (price * ln.quantity).quantize(CENT) for ln, price in zip(lines, request.unit_prices, strict=True)
    ]
    subtotal = sum(totals, Decimal("0.00"))
    ship_to = request.destination.coordinates if store is None else None
    order = Order(
        number=number,
        channel=request.channel,
        customer=customer,
        contact_email=request.customer.email,
        contact_phone=request.customer.phone,
        contact_name=request.customer.name,
        customer_note=request.note,
        currency=request.currency,
        subtotal=subtotal,
        total=subtotal,
        fulfillment_method=request.destination.method,
        pickup_location=store,
        ship_address=request.destination.address,
        destination_latitude=ship_to[0] if ship_to else None,
        destination_longitude=ship_to[1] if ship_to else None,
        placed_by=user,
        placed_at_location=till,
    )
    order_lines = [
        OrderLine(order=order, sku=ln.sku, quantity=ln.quantity, unit_price=price, line_total=total)
        for ln, price, total in zip(lines, request.unit_prices, totals, strict=True)
    ]
    if sourcing.incoming:
        order.status = OrderStatus.IN_TRANSIT_TO_STORE
    fulfillments = _fulfillments(order, store, order_lines, sourcing)
    events = _placement_events(order, request, lines, sourcing, user=user)
    _insert(order, order_lines, fulfillments, events, update_customer=update_customer)
    return PlacedOrder(order, order_lines, fulfillments, events)


def _fulfillments(order, store, order_lines: list[OrderLine], sourcing: Sourcing) -> list[PlacedFulfillment]:
    """One fulfillment per location the units come from, with a line per SKU taken there. Ship to
    store: the store's one, awaiting the transfer, with every line (`incoming_quantity`)."""
    line_by_sku = {ol.sku_id: ol for ol in order_lines}
    if sourcing.incoming:
        at_store = {a.sku_id: a.quantity for a in sourcing.allocations}
        f = Fulfillment(
            order=order,
            location=store,
            method=order.fulfillment_method,
            status=FulfillmentStatus.AWAITING_TRANSFER,
            ready_by=sourcing.ready_by,
        )
        f_lines = [
            FulfillmentLine(
                fulfillment=f,
                order_line=ol,
                sku=ol.sku,
                quantity=at_store.get(ol.sku_id, 0),
                incoming_quantity=sourcing.incoming.get(ol.sku_id, 0),
            )
            for ol in order_lines
        ]
        return [PlacedFulfillment(f, f_lines)]
    by_location: dict[int, list] = defaultdict(list)
    for a in sourcing.allocations:
        by_location[a.location_id].append(a)
    placed = []
    for location_id, allocations in by_location.items():
        location = store or Location(pk=location_id, code=sourcing.location_codes.get(location_id, ""))
        f = Fulfillment(order=order, location=location, method=order.fulfillment_method)
        f_lines = [
            FulfillmentLine(
                fulfillment=f,
                order_line=line_by_sku[a.sku_id],
                sku=line_by_sku[a.sku_id].sku,
                quantity=a.quantity,
            )
            for a in allocations
        ]
        placed.append(PlacedFulfillment(f, f_lines))
    return placed


def _placement_events(
    order, request: OrderRequest, lines: list[SkuLine], sourcing: Sourcing, *, user
) -> list[OrderEvent]:
    placed = OrderEvent(
        order=order,
        type=EventType.PLACED,
        to_status=order.status,
        actor=user,
        channel=request.channel,
        reason=f"{request.channel} order, {request.destination.method}",
        data={
            "lines": [{"sku": ln.sku.code, "name": ln.sku.name, "quantity": ln.quantity} for ln in lines],
            "total": str(order.subtotal),
            "currency": request.currency,
            **({"ready_by": sourcing.ready_by.isoformat()} if sourcing.ready_by else {}),
        },
    )
    locations = list(dict.fromkeys(a["location"] for a in sourcing.record.get("allocations", [])))
    source = "from hold " if sourcing.record.get("source") == "hold" else ""
    reason = f"routed {source}to {', '.join(locations)}"
    if sourcing.legs:
        warehouses = dict.fromkeys(sourcing.location_codes[leg.location_id] for leg in sourcing.legs)
        reason = f"ship to store {order.pickup_location.code} from {', '.join(warehouses)}, ready by {sourcing.ready_by}"
    routed = OrderEvent(
        order=order,
        type=EventType.ROUTED,
        actor=user,
        channel=request.channel,
        reason=reason[:255],
        data=sourcing.record,
    )
    return [placed, routed]


def _insert(
    order: Order, order_lines, fulfillments: list[PlacedFulfillment], events, *, update_customer: bool
) -> None:
    """INSERT the rows; every object gets its pk and its parents' ids.

    A new customer with both an email and a phone is saved on its own first: a concurrent first
    order may clash on either unique constraint, and the one-statement INSERT's ON CONFLICT names
    one. Elsewhere than PostgreSQL: one bulk INSERT per table.
    """
    new_customer = order.customer if order.customer.pk is None else None
    if new_customer is not None and (
        connection.vendor != "postgresql" or (new_customer.email and new_customer.phone)
    ):
        order.customer = customer_insert(new_customer, update=update_customer)
        new_customer = None
    f_rows = [pf.fulfillment for pf in fulfillments]
    fl_rows = [fl for pf in fulfillments for fl in pf.lines]
    tables = (("o", [order]), ("l", order_lines), ("f", f_rows), ("fl", fl_rows), ("e", events))
    if connection.vendor != "postgresql":
        for _, rows in tables:
            type(rows[0]).objects.bulk_create(rows)
        return
    ids = insert_order_rows(
        new_customer=new_customer,
        rename_customer=update_customer,
        order=order,
        lines=order_lines,
        fulfillments=f_rows,
        fulfillment_lines=fl_rows,
        events=events,
    )
    if new_customer is not None:
        new_customer.pk = ids["c"][0]
        order.customer = new_customer  # through the descriptor: sets customer_id
    for alias, rows in tables:
        for row, pk in zip(rows, ids[alias], strict=True):
            row.pk = pk
    for row in [*order_lines, *f_rows, *events]:
        row.order = order  # through the descriptor: sets order_id and keeps the cached object
    for fl in fl_rows:
        fl.fulfillment, fl.order_line = fl.fulfillment, fl.order_line
