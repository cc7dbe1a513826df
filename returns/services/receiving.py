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
from .exchanges import (
    exchange_balance,
    exchange_events,
    exchange_levels_lock,
    exchanges_place,
    exchanges_wanted,
)
from .policy import ReceiveLineIn, acting, check_receive_input, require_takes_returns, returns_warehouse
from .refunds import line_amounts, refund_difference, refund_request
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
    5. exchanges (returns/services/exchanges.py; checked with step 3, before anything is written):
       the replacements as new orders of the customer, reserved at this store as a pickup or
       shipped (409 `exchange_unavailable` naming the line when nobody has them: the whole receipt
       rolls back); the price difference netted: `amount_due` (the customer owes it, PAYMENT_DUE ->
       `return.payment_due`) or a refund of it (cause `exchange_difference`);
    6. the refund of what came back and is not exchanged, per line from what was paid
       (`line_amounts`), through `refund_request` (cause return_received, `refund.requested`),
       linked to the return; units asked for but not brought are given back to the order lines
       (they may be returned later);
    7. the lines' received quantities, conditions, amounts and exchanges (one UPDATE), and the
       return `received` with RETURN_RECEIVED in the timeline (the customer's message,
       `return.received`), EXCHANGE_PLACED in both orders' timelines.

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
        for ln in ReturnLine.objects.filter(ret=ret)
        .select_related("sku", "order_line", "exchange_for")
        .order_by("pk")
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
    exchanges = exchanges_wanted(ret, lines, return_lines)
    exchanged = {e.line.sku.code: e for e in exchanges}
    forward_to = None
    if any(ln.condition == ReturnCondition.SEND_TO_WAREHOUSE for ln in lines):
        forward_to = returns_warehouse(near=(place.latitude, place.longitude))

    # Exchanges lock this location's levels of the returned and the replacement SKUs first, in
    # primary-key order (one global lock order: a receipt returning A for B and one returning B for
    # A never deadlock); then the replacements are placed before the order lines are locked
    # (stock, then order lines: a cancellation's order).
    exchange_levels_lock(place, exchanges, returned=[return_lines[ln.sku].sku_id for ln in lines])
    counted = stock_return_receive(
        location=place,
        units=[
            ReturnedUnits(return_lines[ln.sku].sku_id, ln.quantity, DISPOSITION[ln.condition]) for ln in lines
        ],
        reference=ret.number,
        user=who,
        forward_to=forward_to,
    )

    placed = exchanges_place(ret, place=place, exchanges=exchanges, user=who, channel=channel)

    received = {ln.sku: ln for ln in lines}
    refunded = [ln for ln in lines if ln.sku not in exchanged]
    pairs = [(return_lines[ln.sku].order_line, ln.quantity) for ln in refunded]
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

    balance = exchange_balance(ret, exchanges)
    amount_due = max(balance, Decimal("0.00"))
    difference = (
        refund_difference(
            order=ret.order,
            amount=-balance,
            reason=f"return {ret.number}: exchanged for less",
            return_ref=ret,
            user=who,
            channel=channel,
        )
        if balance < 0
        else None
    )
    order_of = {e.line.sku.code: p.order for p in placed for e in p.exchanges}

    amounts = dict(
        zip([ln.sku for ln in refunded], line_amounts(currency=ret.currency, lines=pairs), strict=True)
    )
    for code, rl in return_lines.items():
        got = received.get(code)
        rl.received_quantity = got.quantity if got else 0
        rl.condition = got.condition if got else None
        rl.refund_amount = amounts.get(code, Decimal("0.00"))
        ex = exchanged.get(code)
        if got is not None and got.exchange_for is not None:
            rl.exchange_for = ex.sku if ex else None  # set, changed or withdrawn at the desk
        if ex is not None:
            rl.exchange_order = order_of[code]
            rl.exchange_unit_price = ex.unit_price
            rl.exchange_difference = ex.difference(ret.currency)
    ReturnLine.objects.bulk_update(
        list(return_lines.values()),
        [
            "received_quantity",
            "condition",
            "refund_amount",
            "exchange_for",
            "exchange_order",
            "exchange_unit_price",
            "exchange_difference",
        ],
    )

    total = (refund.amount if refund is not None else Decimal("0.00")) + (
        difference.amount if difference is not None else Decimal("0.00")
    )
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
            "amount_due": amount_due,
            "transfer": counted.transfer,
        },
        data={
            "location": place.code,
            "refund": refund.pk if refund is not None else None,
            "refund_amount": str(total),
            "currency": ret.currency,
            "transfer": counted.transfer.pk if counted.transfer is not None else None,
            "lines": [
                {
                    "sku": ln.sku,
                    "quantity": ln.quantity,
                    "condition": ln.condition,
                    **({"exchange_for": exchanged[ln.sku].sku.code} if ln.sku in exchanged else {}),
                }
                for ln in lines
            ],
            **(
                {
                    "exchange_orders": [p.order.number for p in placed],
                    "amount_due": str(amount_due),
                    "difference_refund": difference.pk if difference is not None else None,
                }
                if placed
                else {}
            ),
        },
        extra_events=exchange_events(
            ret, placed, place=place, user=user, channel=channel, amount_due=amount_due
        ),
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
