"""Order events -> what the customer hears (email/SMS) and what webhooks receive.

orders.hooks calls `order_events_notify` (through notifications.listeners) with the OrderEvent
rows orders has just written, inside that transaction: the outbox rows commit or roll back with
the order change itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from inventory.models import Sku
from orders.models import EventType, FulfillmentMethod, FulfillmentStatus, Order, OrderEvent
from orders.services.codes import code_display
from stores.models import Location

from ..models import Notification, NotificationEvent, WebhookEndpoint
from ..selectors import active_webhook_endpoints_cached
from .context import store_context
from .outbox import customer_notifications, outbox_write
from .webhooks import webhook_deliveries

# --- What the customer hears -------------------------------------------------------------------


def _order_context(order: Order, event: OrderEvent | None = None) -> dict:
    lines = (event.data or {}).get("lines") if event is not None else None
    if not lines:  # the PLACED event carries its lines; other callers read them
        lines = [
            {"sku": ln.sku.code, "name": ln.sku.name, "quantity": ln.quantity}
            for ln in order.lines.select_related("sku").order_by("id")
        ]
    ctx = {
        "order_number": order.number,
        "lines": lines,
        "total": order.total,
        "currency": order.currency,
        "method": order.fulfillment_method,
        # Works at a returns desk with the order number (returns.services.return_request).
        "receipt_code": code_display(order.receipt_code) if order.receipt_code else "",
        # Ship to store: the day the pickup was promised ready (the PLACED event carries it).
        "ready_by": (event.data or {}).get("ready_by") if event is not None else None,
    }
    ctx.update(store_context(order.pickup_location))
    return ctx


def _cancelled_lines_context(ev: OrderEvent) -> dict:
    """The lines of a LINE_CANCELLED event (one line or several) with their SKUs' names."""
    data = ev.data or {}
    cancelled = data.get("lines") or (
        [{"sku": data["sku"], "quantity": data.get("quantity")}] if data.get("sku") else []
    )
    names = dict(Sku.objects.filter(code__in=[c.get("sku") for c in cancelled]).values_list("code", "name"))
    lines = [
        {"sku": c.get("sku"), "name": names.get(c.get("sku"), c.get("sku")), "quantity": c.get("quantity")}
        for c in cancelled
    ]
    return {"order_number": ev.order.number, "lines": lines, "reason": ev.reason}


def _fulfillment_customer_event(ev: OrderEvent) -> tuple[str, dict] | None:
    """Shipped (carrier, tracking) and ready for pickup (code, store) are told; other moves are not."""
    fulfillment, order_number = ev.fulfillment, ev.order.number
    if fulfillment.method == FulfillmentMethod.TO_STORE:
        return None  # a warehouse's part of ship to store: the storefront hears order.in_transit_to_store
    if ev.to_status == FulfillmentStatus.SHIPPED:
        return NotificationEvent.ORDER_SHIPPED, {
            "order_number": order_number,
            "carrier": fulfillment.carrier,
            "tracking_number": fulfillment.tracking_number,
        }
    if ev.to_status == FulfillmentStatus.READY_FOR_PICKUP:
        return NotificationEvent.READY_FOR_PICKUP, _pickup_context(ev)
    return None


def _pickup_context(ev: OrderEvent, *, new_code: bool = False) -> dict:
    fulfillment = ev.fulfillment
    return {
        "order_number": ev.order.number,
        "pickup_code": code_display(fulfillment.pickup_code),
        "new_code": new_code,
        **store_context(fulfillment.location),
        **_locker_context(fulfillment),
    }


def _locker_context(fulfillment) -> dict:
    """Where in a locker the order waits ({} when it waits at the counter or was taken out)."""
    if fulfillment.compartment_id is None or fulfillment.status != FulfillmentStatus.READY_FOR_PICKUP:
        return {}
    compartment = fulfillment.compartment
    locker = compartment.pickup_point
    return {
        "locker_name": locker.name,
        "locker_code": locker.code,
        "locker_directions": locker.directions,
        "compartment": compartment.label,
    }


def _expired_context(ev: OrderEvent) -> dict:
    """A pickup cancelled by the expiry sweep (orders.services.pickups): the order, its store, the day."""
    order = ev.order
    return {
        "order_number": order.number,
        "reason": ev.reason,
        "last_day": (ev.data or {}).get("last_day"),
        "currency": order.currency,
        **store_context(order.pickup_location),
    }


def _return_context(ev: OrderEvent) -> dict:
    """A return's message: its number, the code and QR payload the customer shows, what to bring and
    where (the stores or the warehouse the event names), or where it was received and the refund."""
    from returns.models import Return  # returns builds on orders; notifications reads both

    data = ev.data or {}
    ret = Return.objects.filter(pk=data.get("return_id")).only("number", "code").first()
    ctx = {
        "order_number": ev.order.number,
        "return_number": data.get("return"),
        "method": data.get("method"),
        "lines": data.get("lines", []),
        "stores": data.get("stores", []),
        "warehouse": data.get("warehouse"),
        "refund_amount": data.get("refund_amount"),
        "currency": data.get("currency"),
    }
    if ret is not None and ev.type == EventType.RETURN_REQUESTED:
        ctx.update(return_code=code_display(ret.code), qr=ret.qr)
    if ev.type == EventType.RETURN_RECEIVED and data.get("location"):
        ctx.update(store_context(Location.objects.filter(code=data["location"]).first()))
    return ctx


def _customer_event(ev: OrderEvent) -> tuple[str, dict] | None:
    """Map an OrderEvent to the customer-facing event and its template context, or None."""
    if ev.type == EventType.PLACED:
        return NotificationEvent.ORDER_CONFIRMED, _order_context(ev.order, ev)
    if ev.type == EventType.CANCELLED and (ev.data or {}).get("cause") == "pickup_expired":
        return NotificationEvent.PICKUP_EXPIRED, _expired_context(ev)
    if ev.type == EventType.CANCELLED:
        return NotificationEvent.ORDER_CANCELLED, {"order_number": ev.order.number, "reason": ev.reason}
    if ev.type == EventType.LINE_CANCELLED:
        return NotificationEvent.LINE_CANCELLED, _cancelled_lines_context(ev)
    if ev.type == EventType.FULFILLMENT_STATUS_CHANGED and ev.fulfillment_id:
        return _fulfillment_customer_event(ev)
    if ev.type == EventType.REFUND_COMPLETED:
        data = ev.data or {}
        return NotificationEvent.REFUND_ISSUED, {
            "order_number": ev.order.number,
            "amount": data.get("amount"),
            "currency": data.get("currency"),
        }
    if ev.type == EventType.RETURN_REQUESTED:
        return NotificationEvent.RETURN_REQUESTED, _return_context(ev)
    if ev.type == EventType.RETURN_RECEIVED:
        return NotificationEvent.RETURN_RECEIVED, _return_context(ev)
    if ev.type == EventType.PICKUP_REMINDED and ev.fulfillment_id:
        return NotificationEvent.PICKUP_REMINDER, {
            **_pickup_context(ev),
            "expires_at": (ev.data or {}).get("last_day"),
        }
    if ev.type == EventType.PICKUP_EXTENDED and ev.fulfillment_id:
        # Staff extended the window (the customer called): the new last day; not the staff's reason.
        data = ev.data or {}
        return NotificationEvent.PICKUP_EXTENDED, {
            **_pickup_context(ev),
            "expires_at": data.get("last_day"),
            "previous_last_day": data.get("previous_last_day"),
        }
    if ev.type == EventType.PICKUP_CODE_ISSUED and ev.fulfillment_id:
        # Staff issued a new code (the old one stopped working): the ready message, with the new code
        # (the locker's when the order is in one).
        context = _pickup_context(ev, new_code=True)
        event = (
            NotificationEvent.LOCKER_READY if "compartment" in context else NotificationEvent.READY_FOR_PICKUP
        )
        return event, context
    if ev.type == EventType.TRANSFER_SHIPPED and ev.fulfillment_id:
        # Ship to store: the warehouse sent the goods the store lacked (orders.services.ship_to_store).
        return NotificationEvent.IN_TRANSIT_TO_STORE, {
            "order_number": ev.order.number,
            "ready_by": (ev.data or {}).get("ready_by"),
            **store_context(ev.fulfillment.location),
        }
    if ev.type == EventType.LOCKER_LOADED and ev.fulfillment_id:
        # Loaded into a locker (orders.services.lockers): where, which door, and the new code.
        return NotificationEvent.LOCKER_READY, _pickup_context(ev)
    return None


# --- What webhooks receive ---------------------------------------------------------------------


# The refund's events carry {"refund", "amount", "currency", "status"} and, for a request, its
# "cause" and "lines" (returns.services), for a completion its "reference".
_REFUND_WEBHOOKS = {
    EventType.REFUND_REQUESTED: "refund.requested",
    EventType.REFUND_COMPLETED: "refund.completed",
    EventType.REFUND_FAILED: "refund.failed",
}


# Ship to store (orders.services.ship_to_store), about the pickup fulfillment: a warehouse sent
# the goods, the store received them (`missing`: a short arrival), a re-plan promised a new day.
_SHIP_TO_STORE_WEBHOOKS = {
    EventType.TRANSFER_SHIPPED: "order.in_transit_to_store",
    EventType.TRANSFER_RECEIVED: "order.arrived_at_store",
    EventType.REROUTED: "order.ship_to_store_replanned",
}


# A return's moves (returns/transitions.py); their data carries the return's number, method,
# location, lines and (received) the refund.
_RETURN_WEBHOOKS = {
    EventType.RETURN_REQUESTED: "return.requested",
    EventType.RETURN_RECEIVED: "return.received",
    EventType.RETURN_CANCELLED: "return.cancelled",
}


def _webhook_event(ev: OrderEvent) -> tuple[str, dict] | None:
    """Map an OrderEvent to its webhook event type and payload, or None."""
    order = ev.order
    base = {"order": order.number, "status": order.status, "event_id": ev.pk}
    if ev.type in _RETURN_WEBHOOKS:
        data = {k: v for k, v in (ev.data or {}).items() if k not in ("return_id", "stores", "warehouse")}
        return _RETURN_WEBHOOKS[ev.type], {**base, "reason": ev.reason, **data}
    # An exchange (returns.services.exchanges), told once, from the returned order's timeline (the
    # new order's own event is its `order.placed`); the difference the customer owes, to charge.
    if ev.type == EventType.EXCHANGE_PLACED and "exchange_order" in (ev.data or {}):
        return "return.exchanged", {**base, "reason": ev.reason, **ev.data}
    if ev.type == EventType.PAYMENT_DUE:
        return "return.payment_due", {**base, "reason": ev.reason, **(ev.data or {})}
    if ev.type == EventType.PLACED:
        return "order.placed", {
            **base,
            "total": order.total,
            "currency": order.currency,
            "channel": order.channel,
        }
    if ev.type == EventType.CANCELLED:
        return "order.cancelled", {**base, "reason": ev.reason}
    if ev.type == EventType.LINE_CANCELLED:
        return "order.line_cancelled", {**base, "reason": ev.reason, **(ev.data or {})}
    if ev.type in _REFUND_WEBHOOKS:
        return _REFUND_WEBHOOKS[ev.type], {**base, **(ev.data or {})}
    if ev.type == EventType.STATUS_CHANGED:
        return "order.status_changed", {**base, "from": ev.from_status, "to": ev.to_status}
    if ev.type in _SHIP_TO_STORE_WEBHOOKS and (
        ev.type != EventType.REROUTED or "ready_by" in (ev.data or {})
    ):
        return _SHIP_TO_STORE_WEBHOOKS[ev.type], {
            **base,
            "fulfillment": ev.fulfillment_id,
            "reason": ev.reason,
            **{k: v for k, v in (ev.data or {}).items() if k != "decision"},
        }
    if ev.type == EventType.FULFILLMENT_STATUS_CHANGED and ev.fulfillment_id:
        fulfillment = ev.fulfillment
        if fulfillment.method == FulfillmentMethod.TO_STORE:
            return None  # warehouse work, told through the ship-to-store events above
        data = {
            **base,
            "fulfillment": fulfillment.pk,
            "location": fulfillment.location.code,
            "from": ev.from_status,
            "to": ev.to_status,
        }
        if ev.to_status == FulfillmentStatus.SHIPPED:
            data.update(carrier=fulfillment.carrier, tracking_number=fulfillment.tracking_number)
        return f"fulfillment.{ev.to_status}", data
    return None


# --- The listener ------------------------------------------------------------------------------


@transaction.atomic(savepoint=False)
def order_events_notify(*, events: Sequence[OrderEvent]) -> list[Notification]:
    """The orders.hooks listener: runs inside the transaction that wrote the events.

    Per event: the customer's outbox rows and, when any endpoint is active, the webhook rows; all
    the batch's rows are written by one INSERT (a batch of events is one order's change, or the
    pickup-expiry sweep's batch of orders). The active endpoints are read once for the whole batch
    (and cached per process, selectors.active_webhook_endpoints_cached). No savepoint: it runs on
    the flash sale's path (docs/benchmarks.md, "Savepoints on the hot path"); its errors doom the
    caller's transaction.
    """
    rows: list[Notification] = []
    endpoints: list[WebhookEndpoint] | None = None
    for ev in events:
        told = _customer_event(ev)
        if told is not None:
            event, context = told
            rows += customer_notifications(
                event=event,
                customer=ev.order.customer,
                context=context,
                dedupe_key=f"order-event:{ev.pk}",
                order=ev.order,
            )
        if endpoints is None:
            endpoints = active_webhook_endpoints_cached()
        hook = _webhook_event(ev) if endpoints else None
        if hook is not None:
            event_type, data = hook
            rows += webhook_deliveries(
                event_type=event_type, data=data, dedupe_key=f"order-event:{ev.pk}", endpoints=endpoints
            )
    # One row per dedupe key in the statement (ON CONFLICT may not touch a row twice in one INSERT).
    first: dict[str, Notification] = {}
    for n in rows:
        first.setdefault(n.dedupe_key, n)
    return outbox_write(list(first.values()))
