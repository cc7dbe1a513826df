"""The fulfillment state machine and the order status derived from it.

    pending -> picking -> packed -> shipped                    (ship)
    pending -> picking -> ready_for_pickup -> collected        (pickup, curbside)
    awaiting_transfer -> pending                               (pickup, curbside: ship to store)
    pending -> picking -> packed -> shipped                    (to_store: a warehouse sends it)
    cancelled from any state before the goods leave the building (shipped, collected are final)

A `to_store` fulfillment is a warehouse's part of a ship-to-store order (orders.services.
ship_to_store): work for the warehouse, not something the customer receives, so the order's status
is derived from the customer's fulfillments only.

`transition()` is the one way a fulfillment changes status: it locks the row, checks the table
(and the method), saves, writes the OrderEvent and recomputes the order's status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from .exceptions import InvalidTransition
from .hooks import emit
from .models import (
    EventType,
    Fulfillment,
    FulfillmentMethod,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderStatus,
)

Status = FulfillmentStatus

FULFILLMENT_TRANSITIONS: dict[str, set[str]] = {
    Status.AWAITING_TRANSFER: {Status.PENDING, Status.CANCELLED},
    Status.PENDING: {Status.PICKING, Status.CANCELLED},
    Status.PICKING: {Status.PACKED, Status.READY_FOR_PICKUP, Status.CANCELLED},
    Status.PACKED: {Status.SHIPPED, Status.CANCELLED},
    Status.READY_FOR_PICKUP: {Status.COLLECTED, Status.CANCELLED},
    Status.SHIPPED: set(),
    Status.COLLECTED: set(),
    Status.CANCELLED: set(),
}

# Statuses that only one method reaches.
_SHIP_ONLY = {Status.PACKED, Status.SHIPPED}
_PICKUP_ONLY = {Status.READY_FOR_PICKUP, Status.COLLECTED, Status.AWAITING_TRANSFER}

LEFT_THE_BUILDING = frozenset({Status.SHIPPED, Status.COLLECTED})  # for the customer (not `to_store`)
FINAL = frozenset({Status.SHIPPED, Status.COLLECTED, Status.CANCELLED})


def allowed(*, method: str, from_status: str, to_status: str) -> bool:
    if to_status not in FULFILLMENT_TRANSITIONS.get(from_status, set()):
        return False
    if method in (FulfillmentMethod.SHIP, FulfillmentMethod.TO_STORE):
        return to_status not in _PICKUP_ONLY
    return to_status not in _SHIP_ONLY


def check(fulfillment: Fulfillment, to_status: str) -> None:
    if not allowed(method=fulfillment.method, from_status=fulfillment.status, to_status=to_status):
        raise InvalidTransition(
            f"A {fulfillment.method} fulfillment cannot go from {fulfillment.status} to {to_status}.",
            details={"fulfillment": fulfillment.pk, "from": fulfillment.status, "to": to_status},
        )


def order_status_from(statuses: Iterable[tuple[str, str]]) -> str:
    """The order's status from its fulfillments' (method, status) pairs. Never set by hand.
    A warehouse's `to_store` part counts through the pickup fulfillment it supplies, not itself."""
    live = [(m, s) for m, s in statuses if s != Status.CANCELLED and m != FulfillmentMethod.TO_STORE]
    if not live:
        return OrderStatus.CANCELLED
    done = [s for _, s in live if s in LEFT_THE_BUILDING]
    if len(done) == len(live):
        return (
            OrderStatus.SHIPPED
            if all(m == FulfillmentMethod.SHIP for m, _ in live)
            else OrderStatus.COMPLETED
        )
    if done:
        return OrderStatus.PARTIALLY_SHIPPED
    if all(s == Status.READY_FOR_PICKUP for _, s in live):
        return OrderStatus.READY_FOR_PICKUP
    if all(s == Status.PENDING for _, s in live):
        return OrderStatus.PLACED
    waiting = {Status.AWAITING_TRANSFER, Status.PENDING}
    if all(s in waiting for _, s in live):
        return OrderStatus.IN_TRANSIT_TO_STORE
    return OrderStatus.IN_PROGRESS


def order_status_refresh(
    order: Order, *, actor=None, channel: str = "", reason: str = ""
) -> list[OrderEvent]:
    """Recompute and store the order's status; an OrderEvent (unsaved) when it changed.

    Locks the order row first, so that two fulfillments of one order changing at once are
    summarised one after the other (the second sees the first's committed status). The order
    row is always the last lock a transition takes: fulfillments, then stock, then the order.
    """
    return orders_status_refresh([(order, reason)], actor=actor, channel=channel)[order.pk]


def orders_status_refresh(
    orders: Sequence[tuple[Order, str]], *, actor=None, channel: str = ""
) -> dict[int, list[OrderEvent]]:
    """`order_status_refresh` for several orders ((order, reason) pairs): their rows locked in
    primary-key order, their fulfillments' statuses read once, one UPDATE per new status. Per order
    pk, its STATUS_CHANGED event (unsaved) or nothing; each `order.status` is set."""
    pks = sorted({order.pk for order, _ in orders})
    old = dict(
        Order.objects.select_for_update().filter(pk__in=pks).order_by("pk").values_list("pk", "status")
    )
    statuses: dict[int, list[tuple[str, str]]] = {pk: [] for pk in pks}
    for order_id, method, status in Fulfillment.objects.filter(order_id__in=pks).values_list(
        "order_id", "method", "status"
    ):
        statuses[order_id].append((method, status))
    events: dict[int, list[OrderEvent]] = {pk: [] for pk in pks}
    changed: dict[str, list[int]] = {}
    for order, reason in orders:
        new = order_status_from(statuses[order.pk])
        order.status = new
        if new == old.get(order.pk) or events[order.pk]:
            continue
        changed.setdefault(new, []).append(order.pk)
        events[order.pk].append(
            OrderEvent(
                order=order,
                type=EventType.STATUS_CHANGED,
                from_status=old.get(order.pk) or "",
                to_status=new,
                actor=actor if actor is not None and actor.is_authenticated else None,
                channel=channel,
                reason=reason[:255],
            )
        )
    now = timezone.now()
    for new, order_pks in changed.items():
        Order.objects.filter(pk__in=order_pks).update(status=new, updated_at=now)
    return events


def lock_fulfillment(fulfillment_id: int) -> Fulfillment:
    from .exceptions import UnknownFulfillment

    """The fulfillment, locked. A warehouse's `to_store` one is locked together with the pickup
    fulfillment it supplies, in pk order (that one first), in the same statement: every writer that
    holds both (a cancellation, a short pick re-planned) takes them in that order."""
    try:
        rows = list(
            Fulfillment.objects.select_for_update(of=("self",))
            .select_related("order", "location")
            .filter(
                Q(pk=fulfillment_id)
                | Q(pk__in=Fulfillment.objects.filter(pk=fulfillment_id).values("supplies_id"))
            )
            .order_by("pk")
        )
    except (ValueError, TypeError):
        rows = []
    found = [f for f in rows if str(f.pk) == str(fulfillment_id)]
    if not found:
        raise UnknownFulfillment(
            f"Unknown fulfillment {fulfillment_id}.", details={"fulfillment": fulfillment_id}
        ) from None
    return found[0]


def transition(
    fulfillment: Fulfillment | int,
    to_status: str,
    *,
    actor=None,
    channel: str = "",
    reason: str = "",
    updates: dict | None = None,
    data: dict | None = None,
    locked: bool = False,
    refresh: bool = True,
    extra_events: Iterable[OrderEvent] = (),
) -> tuple[Fulfillment, list[OrderEvent]]:
    """Move one fulfillment along the table. Locks the row (unless the caller did), checks, saves,
    writes the events (the fulfillment's, `extra_events`, then the order's status change if there
    was one) and emits them to orders.hooks listeners, all in the caller's transaction.
    """
    if not locked:
        fulfillment = lock_fulfillment(fulfillment if isinstance(fulfillment, int) else fulfillment.pk)
    assert isinstance(fulfillment, Fulfillment)
    event = _move(
        fulfillment,
        to_status,
        order=fulfillment.order,
        actor=actor,
        channel=channel,
        reason=reason,
        updates=updates,
        data=data,
    )
    events = _record(
        fulfillment.order,
        [event, *extra_events],
        refresh=refresh,
        actor=actor,
        channel=channel,
        reason=reason,
    )
    return fulfillment, events


def transition_all(
    fulfillments: Iterable[Fulfillment],
    to_status: str,
    *,
    order: Order,
    actor=None,
    channel: str = "",
    reason: str = "",
    status_reason: str | None = None,
    extra_events: Iterable[OrderEvent] = (),
) -> list[OrderEvent]:
    """`transition()` for several fulfillments of one order, already locked by the caller: each is
    checked against the table and saved, then every event (theirs, `extra_events`, the order's
    status change, with `status_reason` if given) is written and emitted as one batch, after the
    order's status is recomputed."""
    return transition_orders(
        [
            OrderMoves(
                order,
                list(fulfillments),
                reason=reason,
                status_reason=reason if status_reason is None else status_reason,
                extra_events=list(extra_events),
            )
        ],
        to_status,
        actor=actor,
        channel=channel,
    )


@dataclass
class OrderMoves:
    """Fulfillments of one order moving to the same status (`transition_orders`)."""

    order: Order
    fulfillments: list[Fulfillment]
    reason: str = ""
    status_reason: str = ""
    extra_events: list[OrderEvent] = field(default_factory=list)  # after theirs, before the status change


def transition_orders(
    moves: Sequence[OrderMoves], to_status: str, *, actor=None, channel: str = ""
) -> list[OrderEvent]:
    """`transition_all` for several orders at once (the pickup-expiry sweep's batch): every
    fulfillment (already locked by the caller) checked against the table, all saved by one UPDATE,
    the orders' statuses recomputed together (`orders_status_refresh`), and the events written and
    emitted as one batch, each order's in the order `transition_all` writes them: its fulfillments',
    its `extra_events`, its status change."""
    for m in moves:
        for f in m.fulfillments:
            check(f, to_status)
    now = timezone.now()
    pks = [f.pk for m in moves for f in m.fulfillments]
    if pks:
        Fulfillment.objects.filter(pk__in=pks).update(status=to_status, updated_at=now)
    events_by_order = []
    for m in moves:
        own = []
        for f in m.fulfillments:
            old = f.status
            f.status, f.updated_at = to_status, now
            own.append(
                _event(f, old, to_status, order=m.order, actor=actor, channel=channel, reason=m.reason)
            )
        events_by_order.append(own + list(m.extra_events))
    refreshed = orders_status_refresh(
        [(m.order, m.status_reason) for m in moves], actor=actor, channel=channel
    )
    events = []
    for m, own in zip(moves, events_by_order, strict=True):
        events += own + refreshed.pop(m.order.pk, [])
    return record_events(events)


def _move(
    f: Fulfillment, to_status: str, *, order: Order, actor, channel, reason, updates=None, data=None
) -> OrderEvent:
    """Check the table, save the new status (and `updates`), and return the unsaved event."""
    check(f, to_status)
    old = f.status
    f.status = to_status
    fields = ["status", "updated_at"]
    for name, value in (updates or {}).items():
        setattr(f, name, value)
        fields.append(name)
    f.save(update_fields=fields)
    return _event(f, old, to_status, order=order, actor=actor, channel=channel, reason=reason, data=data)


def _event(
    f: Fulfillment, old: str, to_status: str, *, order: Order, actor, channel, reason, data=None
) -> OrderEvent:
    """The unsaved FULFILLMENT_STATUS_CHANGED event of one move."""
    return OrderEvent(
        order=order,
        fulfillment=f,
        type=EventType.FULFILLMENT_STATUS_CHANGED,
        from_status=old,
        to_status=to_status,
        actor=actor if actor is not None and actor.is_authenticated else None,
        channel=channel,
        reason=reason[:255],
        data={"location": f.location.code, "method": f.method, **(data or {})},
    )


def _record(
    order: Order, events: list[OrderEvent], *, refresh: bool, actor, channel, reason
) -> list[OrderEvent]:
    if refresh:
        events += order_status_refresh(order, actor=actor, channel=channel, reason=reason)
    return record_events(events)


def record_events(events: list[OrderEvent]) -> list[OrderEvent]:
    """Write timeline events (unsaved OrderEvents) and emit them to orders.hooks listeners, in the
    caller's transaction. `transition()` writes status changes through it; services use it for the
    events that change no status (a curbside arrival, a refused pickup code, a new code)."""
    OrderEvent.objects.bulk_create(events)
    emit(events)
    return events
