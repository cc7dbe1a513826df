"""The return's state machine, and the one way a return changes status.

    requested -> received     (return_receive: goods taken back at a location, once)
    requested -> cancelled    (return_cancel: before anything was received)

A return is received once: lines the customer did not bring keep `received_quantity` below
`quantity` (what was not brought is given back to the order line, docs/returns.md). Every move,
the request itself included, is an OrderEvent in the order's timeline (RETURN_REQUESTED,
RETURN_RECEIVED, RETURN_CANCELLED), emitted to orders.hooks listeners (the customer's message and
the `return.*` webhooks) in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.errors import InvalidTransition
from orders import transitions as order_transitions
from orders.models import EventType, OrderEvent

from .models import Return, ReturnStatus

Status = ReturnStatus

RETURN_TRANSITIONS: dict[str, set[str]] = {
    Status.REQUESTED: {Status.RECEIVED, Status.CANCELLED},
    Status.RECEIVED: set(),
    Status.CANCELLED: set(),
}

EVENT_OF = {
    Status.REQUESTED: EventType.RETURN_REQUESTED,
    Status.RECEIVED: EventType.RETURN_RECEIVED,
    Status.CANCELLED: EventType.RETURN_CANCELLED,
}


def allowed(from_status: str, to_status: str) -> bool:
    return to_status in RETURN_TRANSITIONS.get(from_status, set())


def check(ret: Return, to_status: str) -> None:
    if not allowed(ret.status, to_status):
        raise InvalidTransition(
            f"Return {ret.number} is {ret.status}; it cannot become {to_status}.",
            details={"return": ret.number, "from": ret.status, "to": to_status},
        )


def _actor(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def return_event(
    ret: Return, *, from_status: str, to_status: str, user, channel: str, reason: str, data: dict
) -> OrderEvent:
    return OrderEvent(
        order_id=ret.order_id,
        type=EVENT_OF[to_status],
        from_status=from_status,
        to_status=to_status,
        actor=_actor(user),
        channel=(channel or "")[:16],
        reason=(reason or "")[:255],
        data={"return": ret.number, "return_id": ret.pk, "method": ret.method, **data},
    )


def record_created(ret: Return, *, user, channel: str, reason: str, data: dict) -> list[OrderEvent]:
    """The RETURN_REQUESTED event of a return just written."""
    event = return_event(
        ret, from_status="", to_status=Status.REQUESTED, user=user, channel=channel, reason=reason, data=data
    )
    event.order = ret.order
    return order_transitions.record_events([event])


def transition(
    ret: Return,
    to_status: str,
    *,
    user=None,
    channel: str = "",
    reason: str = "",
    updates: dict | None = None,
    data: dict | None = None,
    extra_events: Iterable[OrderEvent] = (),
) -> list[OrderEvent]:
    """Move a return the caller holds locked (returns.selectors.return_locked) along the table:
    check (409 `invalid_transition`), save the status and `updates`, write and emit the event."""
    check(ret, to_status)
    old = ret.status
    ret.status = to_status
    fields = ["status", "updated_at"]
    for name, value in (updates or {}).items():
        setattr(ret, name, value)
        fields.append(name)
    ret.save(update_fields=fields)
    event = return_event(
        ret, from_status=old, to_status=to_status, user=user, channel=channel, reason=reason, data=data or {}
    )
    event.order = ret.order
    return order_transitions.record_events([event, *extra_events])
