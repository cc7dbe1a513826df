"""Small helpers every orders service shares."""

from __future__ import annotations

from stores.selectors import require_location_access

from .. import transitions
from ..models import Fulfillment, FulfillmentLine, OrderEvent


def acting_user(user):
    """The user to record as the actor: None for the system and for anonymous callers."""
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def locked_fulfillment(fulfillment_id, user) -> Fulfillment:
    """The fulfillment, locked (SELECT ... FOR UPDATE); 403 when `user` may not act at its location."""
    f = transitions.lock_fulfillment(fulfillment_id)
    if acting_user(user) is not None:
        require_location_access(user, f.location)
    return f


def fulfillment_lines(f: Fulfillment) -> list[FulfillmentLine]:
    return list(FulfillmentLine.objects.filter(fulfillment=f).select_related("sku").order_by("pk"))


def fulfillment_event(f: Fulfillment, type_: str, *, user, channel="", reason="", data=None) -> OrderEvent:
    """An unsaved timeline event about one fulfillment (not a status change: transitions writes those)."""
    return OrderEvent(
        order_id=f.order_id,
        fulfillment=f,
        type=type_,
        actor=acting_user(user),
        channel=channel,
        reason=reason[:255],
        data=data or {},
    )
