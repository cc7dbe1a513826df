"""Cancelling an order, and the bookkeeping every cancellation shares (line quantities, totals,
the refund of the cancelled units)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F

from inventory.services import Line, Release, stock_release_many

from .. import transitions
from ..exceptions import InvalidTransition, UnknownOrder
from ..models import (
    EventType,
    Fulfillment,
    FulfillmentLine,
    FulfillmentMethod,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderLine,
)
from ..selectors import order_list
from .common import acting_user
from .inputs import CENT

if TYPE_CHECKING:
    from returns.models import Refund


def order_with_locked_fulfillments(number: str, user=None) -> tuple[Order, list[Fulfillment]]:
    """The order and its fulfillments, locked in pk order (the first lock of any order-wide change).

    404 when there is no such order, or when `user` (staff) may not see it: an order touching none
    of their locations (orders.selectors.order_list, the same rule as every order read)."""
    order = Order.objects.filter(number=number).first()
    if (
        order is not None
        and acting_user(user) is not None
        and not order_list(user=user).filter(pk=order.pk).exists()
    ):
        order = None
    if order is None:
        raise UnknownOrder(f"Unknown order {number!r}.", details={"order": number})
    fs = list(
        Fulfillment.objects.filter(order=order)
        .select_related("location")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
    return order, fs


@transaction.atomic
def order_cancel(
    *,
    number: str,
    user=None,
    reason: str = "",
    channel: str = "",
    data: dict | None = None,
    refund_cause: str = "order_cancelled",
) -> Order:
    """Cancel every fulfillment of the order and release what is reserved. 409 if something left.

    Each fulfillment goes to cancelled through the transition table (one event each); the order's
    own "cancelled" event (with `data`, e.g. the pickup expiry's {"cause": "pickup_expired", ...})
    and its status change are written with them. Every unit not refunded yet is refunded (one
    Refund, `refund_cause`), in this transaction. The one-order case of `cancel_many`.
    """
    order, fs = order_with_locked_fulfillments(number, user)
    # Ship to store: a warehouse's part already sent is not the customer's goods leaving; they
    # arrive at the store as ordinary stock (ship_to_store.transfer_arrival claims nothing).
    sent = [f for f in fs if f.method == FulfillmentMethod.TO_STORE and f.status == FulfillmentStatus.SHIPPED]
    fs = [f for f in fs if f not in sent]
    gone = [f for f in fs if f.status in transitions.LEFT_THE_BUILDING]
    if gone:
        raise InvalidTransition(
            "Part of the order already left the building; it cannot be cancelled.",
            details={
                "order": number,
                "from": order.status,
                "to": "cancelled",
                "fulfillments": [f.pk for f in gone],
            },
        )
    live = [f for f in fs if f.status != FulfillmentStatus.CANCELLED]
    if not live:
        raise InvalidTransition(
            "The order is already cancelled.",
            details={"order": number, "from": order.status, "to": "cancelled"},
        )
    cancel_many(
        [Cancellation(order, live, whole_order=True, reason=reason, data=data, refund_cause=refund_cause)],
        user=user,
        channel=channel,
    )
    return order


# --- Cancelling, set-based: the one implementation of order_cancel and fulfillment_cancel ---------


@dataclass
class Cancellation:
    """One order's part of `cancel_many`: the whole order (`order_cancel`) or some of its
    fulfillments (`fulfillment_cancel`)."""

    order: Order
    fulfillments: list[Fulfillment]  # live, locked by the caller (with their location)
    whole_order: bool
    reason: str = ""
    data: dict | None = None  # the order's "cancelled" event's data (whole orders)
    refund_cause: str = "order_cancelled"

    def _or(self, whole: str, part: str) -> str:
        return self.reason or (whole if self.whole_order else part)

    @property
    def release_reason(self) -> str:  # the ledger rows and the refund
        return self._or("order cancelled", "fulfillment cancelled")

    @property
    def move_reason(self) -> str:  # the fulfillments' events
        return self._or("order cancelled", "cancelled")


@dataclass
class Cancelled:
    """What `cancel_many` did for one `Cancellation`."""

    lines: list[FulfillmentLine]  # released (quantity > 0), with their SKU
    refund: Refund | None


def cancel_many(
    items: Sequence[Cancellation], *, user=None, channel: str = "", release_last: bool = False
) -> list[Cancelled]:
    """Cancel several orders' fulfillments in the caller's transaction, set-based: every reserved
    unit released by one `stock_release_many` (the levels locked once, in primary-key order; a
    ledger row per order and level), the order lines' cancelled quantities and the totals by a few
    UPDATEs, the fulfillments moved to cancelled through the table (`transitions.transition_orders`:
    one UPDATE, the orders' statuses, every event in one INSERT), then the cancelled units refunded
    (`returns.services.refunds_request`). Lock order: fulfillments (the caller's), stock levels,
    order lines, order rows. One order per item; an error raises and (with the caller's
    transaction or savepoint) writes nothing.

    For a whole order every line is cancelled, every unit not refunded yet is refunded, and the
    order's "cancelled" event (`data`) goes with its fulfillments'; otherwise the units the
    fulfillments carry are cancelled and refunded.

    `release_last`: release the stock after everything else instead of first, so that the levels
    (what placements wait for) stay locked only for the transaction's last statements, however big
    the batch. Only for whole orders all of whose live fulfillments the caller holds (the
    pickup-expiry sweep): every other writer of an order's lines or row locks one of its live
    fulfillments first, so none can hold a level while waiting for these orders' rows, and no
    deadlock is possible although the levels come after the order rows here. The caller must take
    no other level in the same transaction."""
    if release_last and not all(it.whole_order for it in items):
        raise ValueError("cancel_many: release_last is for whole orders only")
    if len({it.order.pk for it in items}) != len(items):
        raise ValueError("cancel_many: one item per order")
    actor = acting_user(user)
    fids = [f.pk for it in items for f in it.fulfillments]
    lines_of: dict[int, list[FulfillmentLine]] = defaultdict(list)
    for ln in (
        FulfillmentLine.objects.filter(fulfillment_id__in=fids, quantity__gt=0)
        .select_related("sku")
        .order_by("pk")
    ):
        lines_of[ln.fulfillment_id].append(ln)
    done = [Cancelled([ln for f in it.fulfillments for ln in lines_of[f.pk]], None) for it in items]
    location_of = {f.pk: f.location_id for it in items for f in it.fulfillments}
    releases = [
        Release(
            lines=[Line(location_of[ln.fulfillment_id], ln.sku_id, ln.quantity) for ln in d.lines],
            reference=it.order.number,
            reason=it.release_reason,
        )
        for it, d in zip(items, done, strict=True)
        if d.lines
    ]
    if releases and not release_last:
        stock_release_many(releases=releases, user=actor)
    whole = [it.order.pk for it in items if it.whole_order]
    part: dict[int, int] = defaultdict(int)  # {order line id: units} of the fulfillment cancellations
    for it, d in zip(items, done, strict=True):
        if not it.whole_order:
            for ln in d.lines:
                part[ln.order_line_id] += ln.quantity
    if whole:
        OrderLine.objects.filter(order_id__in=whole).update(cancelled_quantity=F("quantity"))
    add_cancelled_quantities(part)
    refundable: dict[int, dict[int, int]] = defaultdict(dict)  # whole orders: {order: {line: units}}
    for order_id, pk, quantity, refunded in OrderLine.objects.filter(order_id__in=whole).values_list(
        "order_id", "pk", "quantity", "refunded_quantity"
    ):
        refundable[order_id][pk] = quantity - refunded
    recompute_totals_many([it.order for it in items])
    moves = []
    for it in items:
        extra = []
        if it.whole_order:
            extra.append(
                OrderEvent(
                    order=it.order,
                    type=EventType.CANCELLED,
                    from_status=it.order.status,
                    to_status="cancelled",
                    actor=actor,
                    channel=channel,
                    reason=(it.reason or "cancelled")[:255],
                    data=it.data or {},
                )
            )
        moves.append(
            transitions.OrderMoves(
                it.order,
                it.fulfillments,
                reason=it.move_reason,
                status_reason=it.reason or "cancelled",
                extra_events=extra,
            )
        )
    transitions.transition_orders(moves, FulfillmentStatus.CANCELLED, actor=user, channel=channel)
    refunds = refund_cancelled_many(
        [
            (
                it.order,
                refundable[it.order.pk] if it.whole_order else _units(d.lines),
                it.refund_cause,
                it.release_reason,
            )
            for it, d in zip(items, done, strict=True)
        ],
        user=user,
        channel=channel,
    )
    for d, refund in zip(done, refunds, strict=True):
        d.refund = refund
    if releases and release_last:
        stock_release_many(releases=releases, user=actor)
    return done


def _units(lines: list[FulfillmentLine]) -> dict[int, int]:
    units: dict[int, int] = defaultdict(int)
    for ln in lines:
        units[ln.order_line_id] += ln.quantity
    return dict(units)


def refund_cancelled(order: Order, quantities: dict[int, int], *, cause: str, reason: str, user, channel=""):
    """Refund the units just cancelled ({order line id: units}) in the caller's transaction: the
    one call from orders into returns.services.refund_request. Called after the cancellation's
    events (the timeline reads cancelled, then refund requested); the order lines are already
    locked by the cancellation's own UPDATE, so it takes no new lock after the order row."""
    return refund_cancelled_many([(order, quantities, cause, reason)], user=user, channel=channel)[0]


def refund_cancelled_many(items: Sequence[tuple[Order, dict[int, int], str, str]], *, user, channel=""):
    """`refund_cancelled` for several orders ((order, {line: units}, cause, reason)): one
    `returns.services.refunds_request`. A Refund (or None) per item."""
    from returns.services import RefundRequest, refunds_request

    return refunds_request(
        requests=[
            RefundRequest(order=order, lines=list(quantities.items()), reason=reason, cause=cause)
            for order, quantities, cause, reason in items
        ],
        user=user,
        channel=channel,
    )


def cancel_line_quantities(order: Order, quantities: dict[int, int]) -> None:
    """Add to the lines' cancelled quantities ({order line id: units}) and bring the totals down."""
    add_cancelled_quantities(quantities)
    recompute_totals(order)


def add_cancelled_quantities(quantities: dict[int, int]) -> None:
    """cancelled_quantity += units for {order line id: units}: one UPDATE per distinct number."""
    by_units: dict[int, list[int]] = defaultdict(list)
    for line_id, units in quantities.items():
        by_units[units].append(line_id)
    for units, line_ids in by_units.items():
        OrderLine.objects.filter(pk__in=line_ids).update(cancelled_quantity=F("cancelled_quantity") + units)


def recompute_totals(order: Order) -> None:
    recompute_totals_many([order])


def recompute_totals_many(orders: Sequence[Order]) -> None:
    """Each order's subtotal and total from its lines: unit price x units not cancelled, to the
    cent. One read, one UPDATE per distinct amount."""
    subtotal = {order.pk: Decimal("0.00") for order in orders}
    for order_id, price, quantity, cancelled in OrderLine.objects.filter(
        order_id__in=list(subtotal)
    ).values_list("order_id", "unit_price", "quantity", "cancelled_quantity"):
        subtotal[order_id] += (price * (quantity - cancelled)).quantize(CENT)
    by_amount: dict[Decimal, list[int]] = defaultdict(list)
    for pk, amount in subtotal.items():
        by_amount[amount].append(pk)
    for amount, pks in by_amount.items():
        Order.objects.filter(pk__in=pks).update(subtotal=amount, total=amount)
    for order in orders:
        order.subtotal = order.total = subtotal[order.pk]
