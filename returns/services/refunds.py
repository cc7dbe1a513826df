"""Refunds: written once by whatever causes them; the payment system reports back.

    refund_request   money owed back for units of an order's lines (called inside the causing
                     transaction: orders' cancellations and short picks, the pickup-expiry sweep
                     through them, received returns)
    refund_complete  the payment system paid it back (idempotent per reference)
    refund_fail      the payment system could not (idempotent per reason)

Each writes a timeline event (orders.transitions.record_events), which the notifications app
turns into the `refund.*` webhook (and, for a completed refund, the customer's message) in the
same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone

from config.errors import InvalidInput
from orders import transitions
from orders.models import EventType, Order, OrderEvent, OrderLine
from orders.services.inputs import CENT, CURRENCY_MINOR_UNITS

from ..exceptions import (
    AlreadyRefunded,
    RefundAlreadyCompleted,
    RefundAlreadyFailed,
    RefundLineInvalid,
)
from ..models import Refund, RefundLine, RefundStatus
from ..selectors import refund_locked


def _actor(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def currency_quantum(currency: str) -> Decimal:
    """The smallest amount of `currency` (1 for JPY, 0.01 for EUR)."""
    return Decimal(1).scaleb(-CURRENCY_MINOR_UNITS.get(currency, 2))


def line_amounts(*, currency: str, lines: Sequence[tuple[OrderLine, int]]) -> list[Decimal]:
    """What was paid for `quantity` units of each line: unit price x quantity, in the currency's
    minor units (half up), written with two decimals.

    Orders carry no order-level discount (`Order.total` is always `subtotal`, the sum of the lines),
    so nothing is shared out. When one arrives, share it here pro rata to these amounts and put the
    rounding remainder on the last line, so that the refund's lines add up to its amount exactly.
    """
    quantum = currency_quantum(currency)
    # Rounded to the currency, written with two decimals like every amount ("1980.00" JPY).
    return [(ln.unit_price * q).quantize(quantum, rounding=ROUND_HALF_UP).quantize(CENT) for ln, q in lines]


@transaction.atomic
def refund_request(
    *,
    order: Order,
    lines: Sequence[tuple[OrderLine | int, int]],
    reason: str,
    cause: str,
    user=None,
    channel: str = "",
    return_ref=None,
) -> Refund | None:
    """Record that the units in `lines` ([(order line or its id, quantity)]) are owed back.

    Call it inside the transaction that cancels or takes back those units. The order lines are
    locked (SELECT ... FOR UPDATE, pk order) and their `refunded_quantity` goes up in ONE guarded
    UPDATE (`... WHERE refunded_quantity + q <= quantity` per line): two paths refunding the same
    units serialise on the rows and the second finds the guard false, 409 `already_refunded`, and
    its whole transaction rolls back. The same statements whatever the number of lines (a 20-line
    return costs what a 1-line one does). Lines with quantity 0 are skipped; None when nothing is
    left (no row, no event). `return_ref`: the Return whose receipt caused it.

    Writes the Refund, its lines and the REFUND_REQUESTED timeline event (-> `refund.requested`).
    """
    wanted: dict[int, int] = {}
    for i, (line, quantity) in enumerate(lines):
        line_id = line.pk if isinstance(line, OrderLine) else line
        if not isinstance(quantity, int) or quantity < 0:
            raise RefundLineInvalid(
                "A refund line's quantity is a whole number, 0 or more.",
                details={"field": f"lines[{i}].quantity", "quantity": quantity},
            )
        if quantity:
            wanted[line_id] = wanted.get(line_id, 0) + quantity
    if not wanted:
        return None
    order_lines = list(
        OrderLine.objects.filter(order_id=order.pk, pk__in=list(wanted))
        .select_related("sku")
        .select_for_update(of=("self",))
        .order_by("pk")  # the rows' lock order
    )
    unknown = sorted(set(wanted) - {ln.pk for ln in order_lines})
    if unknown:
        raise RefundLineInvalid(
            f"Order {order.number} has no line {unknown[0]}.",
            details={"order": order.number, "lines": unknown},
        )
    for ln in order_lines:
        if ln.refunded_quantity + wanted[ln.pk] > ln.quantity:
            raise _already_refunded(order, ln, wanted[ln.pk], ln.quantity - ln.refunded_quantity)
    guard = Q()
    for ln in order_lines:
        guard |= Q(pk=ln.pk, refunded_quantity__lte=F("quantity") - wanted[ln.pk])
    done = OrderLine.objects.filter(guard).update(
        refunded_quantity=F("refunded_quantity")
        + Case(
            *(When(pk=ln.pk, then=Value(wanted[ln.pk])) for ln in order_lines),
            default=Value(0),
            output_field=IntegerField(),
        )
    )
    if done != len(order_lines):  # only where the database takes no row locks (SQLite): re-read
        for ln in order_lines:
            ln.refresh_from_db(fields=["quantity", "refunded_quantity"])
        ln = next(ln for ln in order_lines if ln.refunded_quantity + wanted[ln.pk] > ln.quantity)
        raise _already_refunded(order, ln, wanted[ln.pk], ln.quantity - ln.refunded_quantity)
    pairs = [(ln, wanted[ln.pk]) for ln in order_lines]
    amounts = line_amounts(currency=order.currency, lines=pairs)
    refund = Refund.objects.create(
        order=order,
        amount=sum(amounts, Decimal("0.00")),
        currency=order.currency,
        reason=(reason or "")[:255],
        cause=cause,
        requested_by=_actor(user),
        return_ref=return_ref,
    )
    RefundLine.objects.bulk_create(
        [
            RefundLine(refund=refund, order_line=ln, quantity=q, amount=amount)
            for (ln, q), amount in zip(pairs, amounts, strict=True)
        ]
    )
    _event(
        refund,
        EventType.REFUND_REQUESTED,
        user=user,
        channel=channel,
        reason=refund.reason or "refund requested",
        data={
            "cause": cause,
            **({"return": return_ref.number} if return_ref is not None else {}),
            "lines": [
                {"sku": ln.sku.code, "quantity": q, "amount": str(amount)}
                for (ln, q), amount in zip(pairs, amounts, strict=True)
            ],
        },
    )
    return refund


@transaction.atomic
def refund_complete(*, refund_id, reference: str, user=None, channel: str = "") -> Refund:
    """The payment system paid the refund back under `reference`.

    Idempotent: completing it again with the same reference changes nothing and returns it; another
    reference, or a failed refund, is 409. Locks the refund row; 404 when `user` may not see its
    order (orders.selectors.visible_orders).
    """
    reference = (reference or "").strip()
    if not reference or len(reference) > 128:
        raise InvalidInput("reference is 1 to 128 characters.", details={"field": "reference"})
    refund = refund_locked(refund_id=refund_id, user=user)
    if refund.status == RefundStatus.COMPLETED:
        if refund.reference == reference:
            return refund
        raise RefundAlreadyCompleted(
            "The refund was already completed with another reference.",
            details={"refund": refund.pk, "status": refund.status, "reference": refund.reference},
        )
    if refund.status == RefundStatus.FAILED:
        raise RefundAlreadyFailed(
            "The refund failed; it cannot be completed.",
            details={"refund": refund.pk, "status": refund.status},
        )
    refund.status, refund.reference, refund.completed_at = RefundStatus.COMPLETED, reference, timezone.now()
    refund.save(update_fields=["status", "reference", "completed_at", "updated_at"])
    _event(
        refund,
        EventType.REFUND_COMPLETED,
        user=user,
        channel=channel,
        reason=f"refund completed ({reference})"[:255],
        data={"reference": reference},
    )
    return refund


@transaction.atomic
def refund_fail(*, refund_id, reason: str, user=None, channel: str = "") -> Refund:
    """The payment system could not pay the refund back.

    Idempotent: failing it again with the same reason changes nothing and returns it; another
    reason, or a completed refund, is 409. The units stay refunded (`refunded_quantity`): the money
    is still owed, and paying it by other means is the payment team's (docs/orders.md, "Refunds").
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > 255:
        raise InvalidInput("reason is 1 to 255 characters.", details={"field": "reason"})
    refund = refund_locked(refund_id=refund_id, user=user)
    if refund.status == RefundStatus.FAILED:
        if refund.failure_reason == reason:
            return refund
        raise RefundAlreadyFailed(
            "The refund already failed for another reason.",
            details={"refund": refund.pk, "status": refund.status, "reason": refund.failure_reason},
        )
    if refund.status == RefundStatus.COMPLETED:
        raise RefundAlreadyCompleted(
            "The refund was completed; it cannot fail.",
            details={"refund": refund.pk, "status": refund.status, "reference": refund.reference},
        )
    refund.status, refund.failure_reason = RefundStatus.FAILED, reason
    refund.save(update_fields=["status", "failure_reason", "updated_at"])
    _event(refund, EventType.REFUND_FAILED, user=user, channel=channel, reason=reason, data={})
    return refund


def _already_refunded(order: Order, ln: OrderLine, q: int, refundable: int) -> AlreadyRefunded:
    return AlreadyRefunded(
        f"{ln.sku.code}: {q} more units cannot be refunded on order {order.number}.",
        details={"order": order.number, "sku": ln.sku.code, "requested": q, "refundable": max(refundable, 0)},
    )


def _event(refund: Refund, type_: str, *, user, channel: str, reason: str, data: dict) -> None:
    transitions.record_events(
        [
            OrderEvent(
                order=refund.order,
                type=type_,
                actor=_actor(user),
                channel=channel,
                reason=reason[:255],
                data={
                    "refund": refund.pk,
                    "amount": str(refund.amount),
                    "currency": refund.currency,
                    "status": refund.status,
                    **data,
                },
            )
        ]
    )
