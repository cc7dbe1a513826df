"""Small helpers every orders service shares."""

from __future__ import annotations

from collections.abc import Sequence

from config.errors import InvalidInput
from inventory.services import validate_quantity
from stores.selectors import require_location_access

from .. import transitions
from ..exceptions import DuplicateLine
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


def quantities_by_sku(lines: list[FulfillmentLine], requested: Sequence, *, verb: str) -> dict[str, int]:
    """{SKU code: units} from `requested` (items with `sku` and `quantity`: what was picked, what
    was handed over), each checked against the fulfillment's `lines`: a SKU once, on the
    fulfillment, 0 to what the line carries (400, `details.field` naming the offending item)."""
    by_code = {ln.sku.code: ln for ln in lines}
    out: dict[str, int] = {}
    for i, r in enumerate(requested):
        if r.sku in out:
            raise DuplicateLine(f"SKU {r.sku} appears twice.", details={"field": f"lines[{i}].sku"})
        if r.sku not in by_code:
            raise InvalidInput(
                f"SKU {r.sku} is not in this fulfillment.", details={"field": f"lines[{i}].sku", "sku": r.sku}
            )
        validate_quantity(r.quantity, field=f"lines[{i}].quantity", allow_zero=True)
        if r.quantity > by_code[r.sku].quantity:
            raise InvalidInput(
                f"{verb} more {r.sku} than ordered ({by_code[r.sku].quantity}).",
                details={"field": f"lines[{i}].quantity", "ordered": by_code[r.sku].quantity},
            )
        out[r.sku] = r.quantity
    return out
