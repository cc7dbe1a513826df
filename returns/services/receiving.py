"""The goods come back: `return_receive`, at a store's desk or at a warehouse (returns by mail)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from inventory.services import FORWARD, RESTOCK, WRITE_OFF, ReturnedUnits, stock_return_receive
from stores.models import LocationKind
from stores.selectors import location_get, require_location_access

from .. import transitions
from ..exceptions import ReturnRefused
from ..models import RefundCause, Return, ReturnCondition, ReturnLine, ReturnStatus
from ..selectors import return_locked
from .policy import ReceiveLineIn, acting, check_receive_input, require_takes_returns, returns_warehouse
from .refunds import line_amounts, refund_request
from .requests import give_back

DISPOSITION = {
    ReturnCondition.RESELLABLE: RESTOCK,
    ReturnCondition.DAMAGED: WRITE_OFF,
    ReturnCondition.DEFECTIVE: WRITE_OFF,
    ReturnCondition.SEND_TO_WAREHOUSE: FORWARD,
}


@transaction.atomic
def return_receive(
    *, number: str, location: str, lines: Sequence[ReceiveLineIn], user=None, channel: str = ""
) -> Return:
    """Take a return back at `location` (a location code), once. Each step refuses with nothing
    written:

    1. the input (400); the location (404), the user assigned there (403), and it takes this
       return: a store that accepts returns takes any return (buy online, return in any store), a
       warehouse that accepts returns only mail returns (422 `location_not_accepting_returns`);
    2. the return by its exact number, locked (404; the number is what the customer shows, and any
       store may take it back); still `requested` (409 `invalid_transition`: received twice,
       cancelled). Two associates receiving it at once queue on this lock: the second finds it
       received, 409, and stock moved once;
    3. the lines: on the return (422 `not_on_return`), at most what was asked (422
       `more_than_requested`); `send_to_warehouse` not at a warehouse (422);
    4. the stock (inventory.services.stock_return_receive): resellable units back on this
       location's shelf (`return_restock`), damaged and defective ones written off (`return_restock`
       then `damage`, net zero), `send_to_warehouse` ones on a transfer to the returns warehouse;
    5. the refund of what came back, per line from what was paid (`line_amounts`), through
       `refund_request` (cause return_received, `refund.requested`), linked to the return;
       units asked for but not brought are given back to the order lines (they may be returned later);
    6. the lines' received quantities, conditions and amounts (one UPDATE), and the return
       `received` with RETURN_RECEIVED in the timeline (the customer's message, `return.received`).

    A fixed number of statements whatever the number of lines (tests/returns: 1 and 20 lines).
    """
    check_receive_input(lines)
    who = acting(user)
    place = location_get(code=location or "")
    if who is not None:
        require_location_access(who, place)
    ret = return_locked(number=number)
    require_takes_returns(place, method=ret.method)
    transitions.check(ret, ReturnStatus.RECEIVED)

    return_lines = {
        ln.sku.code: ln
        for ln in ReturnLine.objects.filter(ret=ret).select_related("sku", "order_line").order_by("pk")
    }
    _check_lines(ret, lines, return_lines)
    if (
        any(ln.condition == ReturnCondition.SEND_TO_WAREHOUSE for ln in lines)
        and place.kind == LocationKind.WAREHOUSE
    ):
        raise ReturnRefused(
            f"{place.code} is a warehouse: receive the units as resellable, damaged or defective.",
            code="already_at_warehouse",
            details={"location": place.code, "field": "lines"},
        )
    forward_to = None
    if any(ln.condition == ReturnCondition.SEND_TO_WAREHOUSE for ln in lines):
        forward_to = returns_warehouse(near=(place.latitude, place.longitude))

    counted = stock_return_receive(
        location=place,
        units=[
            ReturnedUnits(return_lines[ln.sku].sku_id, ln.quantity, DISPOSITION[ln.condition]) for ln in lines
        ],
        reference=ret.number,
        user=who,
        forward_to=forward_to,
    )

    received = {ln.sku: ln for ln in lines}
    pairs = [(return_lines[ln.sku].order_line, ln.quantity) for ln in lines]
    refund = refund_request(
        order=ret.order,
        lines=pairs,
        reason=f"return {ret.number}",
        cause=RefundCause.RETURN_RECEIVED,
        user=who,
        channel=channel,
        return_ref=ret,
    )
    give_back(
        ret,
        [
            (rl.order_line_id, rl.quantity - (received[code].quantity if code in received else 0))
            for code, rl in return_lines.items()
        ],
    )

    amounts = dict(
        zip([ln.sku for ln in lines], line_amounts(currency=ret.currency, lines=pairs), strict=True)
    )
    for code, rl in return_lines.items():
        got = received.get(code)
        rl.received_quantity = got.quantity if got else 0
        rl.condition = got.condition if got else None
        rl.refund_amount = amounts.get(code, Decimal("0.00"))
    ReturnLine.objects.bulk_update(
        list(return_lines.values()), ["received_quantity", "condition", "refund_amount"]
    )

    total = refund.amount if refund is not None else Decimal("0.00")
    transitions.transition(
        ret,
        ReturnStatus.RECEIVED,
        user=user,
        channel=channel,
        reason=f"return {ret.number} received at {place.code}",
        updates={
            "received_at_location": place,
            "received_at": timezone.now(),
            "received_by": who,
            "refund_amount": total,
            "transfer": counted.transfer,
        },
        data={
            "location": place.code,
            "refund": refund.pk if refund is not None else None,
            "refund_amount": str(total),
            "currency": ret.currency,
            "transfer": counted.transfer.pk if counted.transfer is not None else None,
            "lines": [{"sku": ln.sku, "quantity": ln.quantity, "condition": ln.condition} for ln in lines],
        },
    )
    return ret


def _check_lines(ret: Return, lines: Sequence[ReceiveLineIn], return_lines: dict[str, ReturnLine]) -> None:
    violations = []
    for i, ln in enumerate(lines):
        base = {"line": i, "field": f"lines[{i}]", "sku": ln.sku}
        rl = return_lines.get(ln.sku)
        if rl is None:
            violations.append({**base, "rule": "not_on_return"})
        elif ln.quantity > rl.quantity:
            violations.append(
                {**base, "rule": "more_than_requested", "requested": rl.quantity, "received": ln.quantity}
            )
    if violations:
        first = violations[0]
        text = (
            f"{first['sku']} is not on return {ret.number}"
            if first["rule"] == "not_on_return"
            else f"{first['sku']}: return {ret.number} asked for {first['requested']}"
        )
        raise ReturnRefused(
            f"{text} (lines[{first['line']}]).",
            code=first["rule"],
            details={**first, "violations": violations},
        )
