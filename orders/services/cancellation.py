"""Cancelling an order, and the bookkeeping every cancellation shares (line quantities, totals,
the refund of the cancelled units)."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import F

from inventory.services import Line, stock_release

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

    Each fulfillment goes to cancelled through `transitions.transition_all` (the table, one event
    each); the order's own "cancelled" event (with `data`, e.g. the pickup expiry's
    {"cause": "pickup_expired", ...}) and its status change are written with them. Every unit not
    refunded yet is refunded (one Refund, `refund_cause`: the pickup-expiry sweep passes
    "pickup_expired"), in this transaction.
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
    location_of = {f.pk: f.location_id for f in live}
    reserved = list(FulfillmentLine.objects.filter(fulfillment_id__in=list(location_of), quantity__gt=0))
    if reserved:
        stock_release(
            lines=[Line(location_of[ln.fulfillment_id], ln.sku_id, ln.quantity) for ln in reserved],
            reference=number,
            user=acting_user(user),
            reason=reason or "order cancelled",
        )
    OrderLine.objects.filter(order=order).update(cancelled_quantity=F("quantity"))
    unrefunded = {
        pk: quantity - refunded
        for pk, quantity, refunded in OrderLine.objects.filter(order=order).values_list(
            "pk", "quantity", "refunded_quantity"
        )
    }
    recompute_totals(order)
    cancelled = OrderEvent(
        order=order,
        type=EventType.CANCELLED,
        from_status=order.status,
        to_status="cancelled",
        actor=acting_user(user),
        channel=channel,
        reason=(reason or "cancelled")[:255],
        data=data or {},
    )
    transitions.transition_all(
        live,
        FulfillmentStatus.CANCELLED,
        order=order,
        actor=user,
        channel=channel,
        reason=reason or "order cancelled",
        status_reason=reason or "cancelled",
        extra_events=[cancelled],
    )
    refund_cancelled(
        order, unrefunded, cause=refund_cause, reason=reason or "order cancelled", user=user, channel=channel
    )
    return order


def refund_cancelled(order: Order, quantities: dict[int, int], *, cause: str, reason: str, user, channel=""):
    """Refund the units just cancelled ({order line id: units}) in the caller's transaction: the
    one call from orders into returns.services.refund_request. Called after the cancellation's
    events (the timeline reads cancelled, then refund requested); the order lines are already
    locked by the cancellation's own UPDATE, so it takes no new lock after the order row."""
    from returns.services import refund_request

    return refund_request(
        order=order, lines=list(quantities.items()), reason=reason, cause=cause, user=user, channel=channel
    )


def cancel_line_quantities(order: Order, quantities: dict[int, int]) -> None:
    """Add to the lines' cancelled quantities ({order line id: units}) and bring the totals down."""
    for line_id, quantity in quantities.items():
        OrderLine.objects.filter(pk=line_id).update(cancelled_quantity=F("cancelled_quantity") + quantity)
    recompute_totals(order)


def recompute_totals(order: Order) -> None:
    subtotal = Decimal("0.00")
    for price, quantity, cancelled in OrderLine.objects.filter(order_id=order.pk).values_list(
        "unit_price", "quantity", "cancelled_quantity"
    ):
        subtotal += (price * (quantity - cancelled)).quantize(CENT)
    Order.objects.filter(pk=order.pk).update(subtotal=subtotal, total=subtotal)
    order.subtotal = order.total = subtotal
