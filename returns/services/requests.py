"""Asking for a return, and withdrawing it.

return_request   the customer online (through the storefront, with a proof of purchase), the
                 help desk for them (the same account), or a store's desk for the order in front
                 of it: the rules, the units set aside on the order lines, a number and a code,
                 and the customer told what to bring and where
return_cancel    before anything was received: the units are given back to the order lines
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone

from config.errors import Conflict, InvalidInput
from inventory.models import Sku
from orders.models import OrderLine
from orders.services.codes import code_new

from .. import transitions
from ..exceptions import UnknownReturn
from ..models import Return, ReturnLine, ReturnStatus
from ..selectors import return_locked, visible_returns
from .policy import (
    ReturnLineIn,
    acting,
    asker_kind,
    check_request_input,
    delivered_units,
    expected_location,
    line_violations,
    nearest_return_stores,
    order_for_return,
    refused,
)
from .refunds import line_amounts

_CODE_TRIES = 3


@transaction.atomic
def return_request(
    *,
    order_number: str,
    lines: Sequence[ReturnLineIn],
    method: str,
    email: str | None = None,
    phone: str | None = None,
    receipt_code: str | None = None,
    location: str | None = None,
    note: str = "",
    user=None,
    channel: str = "",
) -> Return:
    """Ask to bring back units of one order. The steps, each refusing with nothing written:

    1. the input (400); who asks (warehouse staff: 403);
    2. the order by its exact number; the storefront proves it with the order's email, phone or
       receipt code and sees only its customers' orders (404 `unknown_order` either way, saying
       nothing about which); a desk needs no proof (the order in front of it);
    3. where it goes (docs/returns.md): a store that takes returns (a desk's own, 403 otherwise), a
       warehouse for mail (the returns warehouse by default); 422 `location_not_accepting_returns`;
    4. the lines: on the order (422 `not_on_order`), returnable, delivered, inside the window, at
       most what is left (422 naming the rule and the line, `details.violations` every line);
    5. the order lines locked (pk order) and their `returned_quantity` raised in one guarded
       UPDATE, so two requests for the last unit cannot both pass;
    6. the return, its lines (with what they would refund: `line_amounts`), a number and a code
       (unique among open returns) and the RETURN_REQUESTED event, which tells the customer what to
       bring and where (the nearest stores that take returns) and fires `return.requested`.
    """
    note = check_request_input(lines=lines, method=method, note=note)
    kind = asker_kind(user)
    order = order_for_return(
        number=order_number, kind=kind, user=user, email=email, phone=phone, receipt_code=receipt_code
    )
    where = expected_location(kind=kind, user=user, method=method, code=location, order=order)
    exchange = _exchange_skus(lines)

    order_lines = {
        ol.sku.code: ol
        for ol in OrderLine.objects.filter(order=order, sku__code__in=[ln.sku for ln in lines])
        .select_related("sku")
        .select_for_update(of=("self",))
        .order_by("pk")
    }
    missing = [
        {"line": i, "field": f"lines[{i}].sku", "sku": ln.sku, "rule": "not_on_order"}
        for i, ln in enumerate(lines)
        if ln.sku not in order_lines
    ]
    if missing:
        raise refused(missing)
    violations = line_violations(
        lines=lines, order_lines=order_lines, delivered=delivered_units(list(order_lines.values()))
    )
    if violations:
        raise refused(violations)
    _set_aside(order, [(order_lines[ln.sku], ln.quantity) for ln in lines])

    amounts = line_amounts(
        currency=order.currency, lines=[(order_lines[ln.sku], ln.quantity) for ln in lines]
    )
    ret = _create(
        order=order,
        method=method,
        where=where,
        note=note,
        user=user,
        channel=channel or ("store" if kind == "desk" else "web"),
        amount=sum(amounts, Decimal("0.00")),
    )
    ReturnLine.objects.bulk_create(
        [
            ReturnLine(
                ret=ret,
                order_line=order_lines[ln.sku],
                sku=order_lines[ln.sku].sku,
                quantity=ln.quantity,
                reason=ln.reason,
                reason_text=(ln.reason_text or "").strip(),
                exchange_for=exchange.get(ln.exchange_for) if ln.exchange_for else None,
                refund_amount=amount,
            )
            for ln, amount in zip(lines, amounts, strict=True)
        ]
    )
    transitions.record_created(
        ret,
        user=user,
        channel=ret.channel,
        reason=f"return {ret.number} requested ({method})",
        data={
            "location": where.code if where else None,
            "refund_amount": str(ret.refund_amount),
            "currency": ret.currency,
            "lines": [
                {
                    "sku": ln.sku,
                    "name": order_lines[ln.sku].sku.name,
                    "quantity": ln.quantity,
                    "reason": ln.reason,
                }
                for ln in lines
            ],
            # What the customer is told: where to bring it (none for mail: the warehouse's address).
            "stores": nearest_return_stores(order=order, first=where) if method == "in_store" else [],
            **(
                {"warehouse": {"code": where.code, "name": where.name, "address": where.address}}
                if method == "mail" and where
                else {}
            ),
        },
    )
    return ret


def _exchange_skus(lines: Sequence[ReturnLineIn]) -> dict[str, Sku]:
    """The SKUs asked for in exchange (stored on the line; the exchange itself is a later step)."""
    codes = {ln.exchange_for for ln in lines if ln.exchange_for}
    if not codes:
        return {}
    found = {s.code: s for s in Sku.objects.filter(code__in=codes, is_active=True)}
    for i, ln in enumerate(lines):
        if ln.exchange_for and ln.exchange_for not in found:
            raise InvalidInput(
                f"Unknown SKU {ln.exchange_for!r} to exchange for.",
                details={"field": f"lines[{i}].exchange_for", "sku": ln.exchange_for},
            )
    return found


def _set_aside(order, pairs: list[tuple[OrderLine, int]]) -> None:
    """Raise `returned_quantity` of the locked order lines in one guarded UPDATE (each line: at
    most its quantity; the policy already held it to what was delivered, under the same locks)."""
    guard = Q()
    for ol, q in pairs:
        guard |= Q(pk=ol.pk, returned_quantity__lte=F("quantity") - q)
    done = OrderLine.objects.filter(guard).update(
        returned_quantity=F("returned_quantity")
        + Case(
            *(When(pk=ol.pk, then=Value(q)) for ol, q in pairs), default=Value(0), output_field=IntegerField()
        )
    )
    if done != len(pairs):  # only where the database takes no row locks (SQLite)
        raise Conflict(
            "The order changed while the return was asked for; try again.", details={"order": order.number}
        )


def _create(*, order, method, where, note, user, channel, amount) -> Return:
    """The Return row, with a code no open return has (a clash, about 1 in 10^11, draws again)."""
    for attempt in range(_CODE_TRIES):
        try:
            with transaction.atomic():
                return Return.objects.create(
                    code=code_new(),
                    order=order,
                    customer=order.customer,
                    method=method,
                    expected_location=where,
                    note=note,
                    channel=(channel or "")[:16],
                    currency=order.currency,
                    refund_amount=amount,
                    created_by=acting(user),
                )
        except IntegrityError:
            if attempt == _CODE_TRIES - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def return_cancel(*, number: str, user=None, reason: str = "", channel: str = "") -> Return:
    """Withdraw a return before anything was received (409 `invalid_transition` after; a second
    cancel too). Who: whoever sees it (returns.selectors.visible_returns; 404 otherwise), except
    warehouse staff (403 at the API). The units it set aside are given back to the order lines in one
    UPDATE; RETURN_CANCELLED goes in the timeline. Locks the return, then the order lines."""
    ret = return_locked(number=number)
    if acting(user) is not None and not visible_returns(Return.objects.filter(pk=ret.pk), user).exists():
        raise UnknownReturn(f"Unknown return {ret.number!r}.", details={"return": ret.number})
    transitions.check(ret, ReturnStatus.CANCELLED)
    lines = list(ReturnLine.objects.filter(ret=ret).select_related("sku").order_by("order_line_id"))
    give_back(ret, [(ln.order_line_id, ln.quantity) for ln in lines])
    transitions.transition(
        ret,
        ReturnStatus.CANCELLED,
        user=user,
        channel=channel,
        reason=(reason or "").strip()[:255] or f"return {ret.number} cancelled",
        updates={"cancelled_at": timezone.now()},
        data={"lines": [{"sku": ln.sku.code, "quantity": ln.quantity} for ln in lines]},
    )
    return ret


def give_back(ret: Return, pairs: list[tuple[int, int]]) -> None:
    """Lower `returned_quantity` of these order lines (id, units) in one guarded UPDATE: units a
    return no longer brings back (cancelled, or not brought at the desk)."""
    pairs = [(line_id, q) for line_id, q in pairs if q > 0]
    if not pairs:
        return
    list(
        OrderLine.objects.filter(pk__in=[p for p, _ in pairs])
        .select_for_update()
        .order_by("pk")
        .values_list("pk")
    )
    guard = Q()
    for line_id, q in pairs:
        guard |= Q(pk=line_id, returned_quantity__gte=q)
    done = OrderLine.objects.filter(guard).update(
        returned_quantity=F("returned_quantity")
        - Case(*(When(pk=p, then=Value(q)) for p, q in pairs), default=Value(0), output_field=IntegerField())
    )
    if done != len(pairs):
        raise Conflict("The order lines do not hold this return's units.", details={"return": ret.number})
