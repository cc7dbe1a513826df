"""Refunds: written once by whatever causes them; the payment system reports back.

    refund_request   money owed back for units of an order's lines (called inside the causing
                     transaction: orders' cancellations and short picks, received returns)
    refunds_request  the same for several orders at once (the pickup-expiry sweep's batch)
    refund_complete  the payment system paid it back (idempotent per reference)
    refund_fail      the payment system could not (idempotent per reason)

Each writes a timeline event (orders.transitions.record_events), which the notifications app
turns into the `refund.*` webhook (and, for a completed refund, the customer's message) in the
same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import F
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
from ..models import Refund, RefundCause, RefundLine, RefundStatus
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
    locked in primary-key order and each line's `refunded_quantity` may only reach its `quantity`
    (checked under the lock, and again by the UPDATE's guard `refunded_quantity + q <= quantity`):
    two paths refunding the same units serialise on the rows and the second is 409
    `already_refunded`, and its whole transaction rolls back. Lines with quantity 0 are skipped;
    None when nothing is left (no row, no event). `return_ref`: the Return whose receipt caused it.
    The same statements whatever the number of lines (a 20-line return costs what a 1-line one does).

    Writes the Refund, its lines and the REFUND_REQUESTED timeline event (-> `refund.requested`).
    The one-order case of `refunds_request`.
    """
    (refund,) = refunds_request(
        requests=[RefundRequest(order=order, lines=lines, reason=reason, cause=cause, return_ref=return_ref)],
        user=user,
        channel=channel,
    )
    return refund


@dataclass(frozen=True)
class RefundRequest:
    """The units of one order owed back ([(order line or its id, quantity)]) and why."""

    order: Order
    lines: Sequence[tuple[OrderLine | int, int]]
    reason: str
    cause: str
    return_ref: object = None  # the Return whose receipt caused it (returns.models.Return)


def _wanted(lines: Sequence[tuple[OrderLine | int, int]]) -> dict[int, int]:
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
    return wanted


@transaction.atomic
def refunds_request(
    *, requests: Sequence[RefundRequest], user=None, channel: str = ""
) -> list[Refund | None]:
    """`refund_request` for several orders at once (the pickup-expiry sweep's batch), with the same
    rules: every order line named locked once, in primary-key order, and checked; one UPDATE of
    their `refunded_quantity`; the Refunds, their lines and their REFUND_REQUESTED events each
    written by one INSERT. One result per request, in order (None: nothing to refund). Any error
    (an unknown line, units already refunded) raises and writes nothing."""
    wanted = [_wanted(r.lines) for r in requests]
    line_ids = sorted({pk for w in wanted for pk in w})
    if not line_ids:
        return [None] * len(requests)
    locked = {
        ln.pk: ln
        for ln in OrderLine.objects.filter(pk__in=line_ids)
        .select_related("sku")
        .select_for_update(of=("self",))
        .order_by("pk")  # the rows' lock order
    }
    total: dict[int, int] = {}
    for r, w in zip(requests, wanted, strict=True):
        unknown = sorted(pk for pk in w if pk not in locked or locked[pk].order_id != r.order.pk)
        if unknown:
            raise RefundLineInvalid(
                f"Order {r.order.number} has no line {unknown[0]}.",
                details={"order": r.order.number, "lines": unknown},
            )
        for pk, q in w.items():
            total[pk] = total.get(pk, 0) + q
    for pk, q in total.items():
        ln = locked[pk]
        if ln.refunded_quantity + q > ln.quantity:
            order = next(r.order for r in requests if r.order.pk == ln.order_id)
            raise AlreadyRefunded(
                f"{ln.sku.code}: {q} more units cannot be refunded on order {order.number}.",
                details={
                    "order": order.number,
                    "sku": ln.sku.code,
                    "requested": q,
                    "refundable": ln.quantity - ln.refunded_quantity,
                },
            )
    _add_refunded(total)
    refunds: list[Refund | None] = []
    pairs_of: list[list[tuple[OrderLine, int]]] = []
    amounts_of: list[list[Decimal]] = []
    for r, w in zip(requests, wanted, strict=True):
        if not w:
            refunds.append(None)
            continue
        pairs = [(locked[pk], w[pk]) for pk in sorted(w)]
        amounts = line_amounts(currency=r.order.currency, lines=pairs)
        pairs_of.append(pairs)
        amounts_of.append(amounts)
        refunds.append(
            Refund(
                order=r.order,
                amount=sum(amounts, Decimal("0.00")),
                currency=r.order.currency,
                reason=(r.reason or "")[:255],
                cause=r.cause,
                requested_by=_actor(user),
                return_ref=r.return_ref,
            )
        )
    written = Refund.objects.bulk_create([refund for refund in refunds if refund is not None])
    RefundLine.objects.bulk_create(
        [
            RefundLine(refund=refund, order_line=ln, quantity=q, amount=amount)
            for refund, pairs, amounts in zip(written, pairs_of, amounts_of, strict=True)
            for (ln, q), amount in zip(pairs, amounts, strict=True)
        ]
    )
    transitions.record_events(
        [
            _refund_event(
                refund,
                EventType.REFUND_REQUESTED,
                user=user,
                channel=channel,
                reason=refund.reason or "refund requested",
                data={
                    "cause": refund.cause,
                    "lines": [
                        {"sku": ln.sku.code, "quantity": q, "amount": str(amount)}
                        for (ln, q), amount in zip(pairs, amounts, strict=True)
                    ],
                },
            )
            for refund, pairs, amounts in zip(written, pairs_of, amounts_of, strict=True)
        ]
    )
    return refunds


@transaction.atomic
def refund_difference(
    *, order: Order, amount: Decimal, reason: str, return_ref, user=None, channel: str = ""
) -> Refund:
    """Money owed back that is no unit's price: an exchange for something cheaper (cause
    `exchange_difference`). No refund lines and no `refunded_quantity`: the units were exchanged,
    not refunded. The Refund and its REFUND_REQUESTED event (-> `refund.requested`)."""
    refund = Refund.objects.create(
        order=order,
        amount=amount,
        currency=order.currency,
        reason=(reason or "")[:255],
        cause=RefundCause.EXCHANGE_DIFFERENCE,
        requested_by=_actor(user),
        return_ref=return_ref,
    )
    _event(
        refund,
        EventType.REFUND_REQUESTED,
        user=user,
        channel=channel,
        reason=refund.reason or "refund requested",
        data={"cause": refund.cause, "lines": []},
    )
    return refund


def _add_refunded(quantities: dict[int, int]) -> None:
    """refunded_quantity += q for {order line id: q} (rows locked by the caller), one UPDATE per
    distinct q, each guarded by `refunded_quantity + q <= quantity` (the CHECK's rule, again)."""
    by_quantity: dict[int, list[int]] = {}
    for pk, q in quantities.items():
        by_quantity.setdefault(q, []).append(pk)
    for q, pks in by_quantity.items():
        done = OrderLine.objects.filter(pk__in=pks, refunded_quantity__lte=F("quantity") - q).update(
            refunded_quantity=F("refunded_quantity") + q
        )
        if done != len(pks):  # only where the database does not lock (SQLite without IMMEDIATE)
            raise AlreadyRefunded("Order lines changed while they were refunded; try again.")


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
        [_refund_event(refund, type_, user=user, channel=channel, reason=reason, data=data)]
    )


def _refund_event(refund: Refund, type_: str, *, user, channel: str, reason: str, data: dict) -> OrderEvent:
    return OrderEvent(
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
