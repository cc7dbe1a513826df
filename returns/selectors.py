"""Reads of refunds and returns, scoped to who is asking.

Refunds: the refunds of the orders they see (orders.selectors.visible_orders, the one rule).
Returns (`visible_returns`, docs/security.md "Returns"): the storefront's customers' returns;
staff's returns expected or received at their locations; and at the desk any store's staff open a
return by its exact number and code (the customer's QR), whichever store it was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet

from orders.models import Fulfillment, FulfillmentMethod, Order, OrderEvent, OrderNote
from orders.selectors import is_storefront, order_events, order_notes, visible_orders
from orders.services.codes import code_matches, code_normalise
from stores.models import Location, LocationKind, Role
from stores.selectors import user_is_network_wide, user_location_ids, user_role

from .exceptions import UnknownRefund, UnknownReturn
from .models import Refund, RefundLine, Return, ReturnLine, ReturnNote, ReturnStatus


def _visible(qs: QuerySet[Refund], user) -> QuerySet[Refund]:
    """Refunds of the orders `user` may see; every refund for the system (no user)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return qs
    return qs.filter(order__in=visible_orders(Order.objects.all(), user).values("pk"))


def refund_list(*, user) -> QuerySet[Refund]:
    """The refunds `user` may see, newest first, with their order and lines (and SKUs)."""
    qs = Refund.objects.select_related("order", "return_ref").prefetch_related(
        Prefetch("lines", queryset=RefundLine.objects.select_related("order_line__sku").order_by("pk"))
    )
    return _visible(qs, user).order_by("-id")


def refund_get(*, refund_id, user) -> Refund:
    """The refund when `user` may see its order; 404 `unknown_refund` otherwise."""
    refund = refund_list(user=user).filter(pk=refund_id).first() if _is_id(refund_id) else None
    if refund is None:
        raise UnknownRefund(f"Unknown refund {refund_id}.", details={"refund": refund_id})
    return refund


def refund_locked(*, refund_id, user) -> Refund:
    """The refund, locked (SELECT ... FOR UPDATE), when `user` may see its order; 404 otherwise."""
    qs = _visible(Refund.objects.select_related("order"), user).select_for_update(of=("self",))
    refund = qs.filter(pk=refund_id).first() if _is_id(refund_id) else None
    if refund is None:
        raise UnknownRefund(f"Unknown refund {refund_id}.", details={"refund": refund_id})
    return refund


def _is_id(value) -> bool:
    try:
        return 0 < int(value) < 2**63
    except (TypeError, ValueError):
        return False


# --- Returns -------------------------------------------------------------------------------------

# Store staff who work a returns desk: they may open any store's return with its number and code.
DESK_ROLES = (Role.ASSOCIATE, Role.MANAGER)


def visible_returns(qs: QuerySet[Return], user) -> QuerySet[Return]:
    """The one rule of which returns `user` may see (docs/security.md, "Returns").

    No user (the system), superusers and network-wide managers: every return. The storefront: the
    returns of the orders it sees (its customers'). Staff: the returns expected or received at
    their locations (none without a location).
    """
    if user is None or not getattr(user, "is_authenticated", False) or user_is_network_wide(user):
        return qs
    if is_storefront(user):
        return qs.filter(order__in=visible_orders(Order.objects.all(), user).values("pk"))
    ids = user_location_ids(user) or set()
    return qs.filter(Q(expected_location_id__in=ids) | Q(received_at_location_id__in=ids))


def _return_qs() -> QuerySet[Return]:
    return Return.objects.select_related(
        "order", "customer", "expected_location", "received_at_location", "created_by", "received_by"
    ).prefetch_related(
        Prefetch(
            "lines",
            queryset=ReturnLine.objects.select_related("sku", "exchange_for", "exchange_order").order_by(
                "pk"
            ),
        ),
        Prefetch("notes", queryset=ReturnNote.objects.select_related("author").order_by("pk")),
        Prefetch("refunds", queryset=Refund.objects.order_by("pk")),
    )


def return_list(*, user) -> QuerySet[Return]:
    """The returns `user` may see (`visible_returns`), newest first, with lines, notes and refunds."""
    return visible_returns(_return_qs(), user).order_by("-id")


def return_get(*, number: str, user, code: str | None = None) -> Return:
    """The return when `user` may see it; 404 `unknown_return` otherwise (also for a wrong code).

    `code` (the return's code, as typed or scanned from the QR) opens a return for desk staff
    (associates, managers) whatever store it was asked for: the customer in front of them proves
    it, as the pickup code does at the counter. The storefront and warehouse staff gain nothing
    from a code."""
    number = (number or "").strip().upper()
    ret = return_list(user=user).filter(number=number).first()
    if ret is None and code and _desk_staff(user):
        ret = _return_qs().filter(number=number).first()
        if ret is not None and not code_matches(code, ret.code):
            ret = None
    if ret is None:
        raise UnknownReturn(f"Unknown return {number!r}.", details={"return": number})
    return ret


def _desk_staff(user) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return user.is_superuser or user_role(user) in DESK_ROLES


def return_locked(*, number: str) -> Return:
    """The return by its exact number, locked (SELECT ... FOR UPDATE), with its order; 404
    otherwise. Who may act on it is the caller's check (the services)."""
    number = (number or "").strip().upper()
    ret = (
        Return.objects.select_for_update(of=("self",))
        .select_related("order", "customer", "expected_location")
        .filter(number=number)
        .first()
    )
    if ret is None:
        raise UnknownReturn(f"Unknown return {number!r}.", details={"return": number})
    return ret


def returns_of_order(order: Order) -> QuerySet[Return]:
    """Every return of an order the caller already may see (the desk, the customer's page), oldest
    first, with lines, notes and refunds: not scoped again."""
    return _return_qs().filter(order=order).order_by("pk")


def customer_returns(*, customer, user, limit: int = 50) -> list[Return]:
    """The customer's returns `user` may see (GET /customers/{id}/), newest first."""
    qs = visible_returns(Return.objects.filter(customer=customer), user)
    return list(
        qs.select_related("order", "expected_location", "received_at_location").order_by("-id")[:limit]
    )


@dataclass(frozen=True)
class ReturnCard:
    """What the desk shows about one return, read in a fixed number of queries: its lines, its
    notes and the order's (oldest first, with who wrote them and on which channel), the order's
    timeline, the customer's other returns and other orders (every channel: number, channel,
    status, date and pickup store only)."""

    ret: Return
    lines: list[ReturnLine]
    notes: list[ReturnNote]
    order_notes: list[OrderNote]
    events: list[OrderEvent]
    other_returns: list[Return]
    # Received with exchanges: each new order with its fulfillments (the pickup at the receiving
    # store is the one the associate hands over on the Pickups page).
    exchanges: tuple[ExchangeCard, ...] = ()
    other_orders: tuple[Order, ...] = ()


@dataclass(frozen=True)
class ExchangeCard:
    order: Order
    pickup: Fulfillment | None  # the pickup at the store that received the return, if any
    fulfillments: list[Fulfillment]


def return_card(ret: Return, *, other_limit: int = 20) -> ReturnCard:
    """The card of a return the caller may act on (already scoped): seven queries whatever its
    size, eight with exchanges (their orders' fulfillments)."""
    order = ret.order
    lines = list(
        ReturnLine.objects.filter(ret=ret)
        .select_related("sku", "order_line", "exchange_for", "exchange_order")
        .order_by("pk")
    )
    orders = {ln.exchange_order_id: ln.exchange_order for ln in lines if ln.exchange_order_id is not None}
    by_order: dict[int, list[Fulfillment]] = {pk: [] for pk in orders}
    if orders:
        for f in Fulfillment.objects.filter(order_id__in=orders).select_related("location").order_by("pk"):
            by_order[f.order_id].append(f)
    exchanges = tuple(
        ExchangeCard(
            order=o,
            pickup=next(
                (
                    f
                    for f in by_order[pk]
                    if f.location_id == ret.received_at_location_id
                    and f.method in (FulfillmentMethod.PICKUP, FulfillmentMethod.CURBSIDE)
                ),
                None,
            ),
            fulfillments=by_order[pk],
        )
        for pk, o in orders.items()
    )
    return ReturnCard(
        ret=ret,
        lines=lines,
        notes=list(ReturnNote.objects.filter(ret=ret).select_related("author").order_by("pk")),
        order_notes=list(order_notes(order=order)),
        events=list(order_events(order=order)),
        other_returns=list(
            Return.objects.filter(customer_id=ret.customer_id)
            .exclude(pk=ret.pk)
            .select_related("order", "expected_location", "received_at_location")
            .order_by("-pk")[:other_limit]
        ),
        exchanges=exchanges,
        other_orders=tuple(
            Order.objects.filter(customer_id=ret.customer_id)
            .exclude(pk=order.pk)
            .select_related("pickup_location")
            .order_by("-pk")[:other_limit]
        ),
    )


# --- The returns desk (the associates' page, returns/admin_desk.py) -----------------------------

QR_PREFIX = "OMSRET:"


def desk_stores(*, user) -> QuerySet[Location]:
    """The stores taking returns whose desk `user` works: stores that accept returns at the user's
    locations (every one for superusers and network-wide managers)."""
    qs = Location.objects.filter(kind=LocationKind.STORE, accepts_returns=True, is_active=True).order_by(
        "code"
    )
    ids = user_location_ids(user)
    return qs if ids is None else qs.filter(pk__in=ids)


def desk_return_by_code(*, text: str, user) -> Return | None:
    """The return a customer shows: its QR payload ("OMSRET:<number>:<code>"), or its code alone
    (unique among open returns), opened for desk staff whatever store it was asked for (the code
    proves it, as `return_get` says). None when nothing matches or `user` is not desk staff."""
    text = (text or "").strip()
    if not _desk_staff(user) or not text:
        return None
    if text.upper().startswith(QR_PREFIX):
        number, _, code = text[len(QR_PREFIX) :].partition(":")
        try:
            return return_get(number=number, code=code, user=user)
        except UnknownReturn:
            return None
    code = code_normalise(text)
    if not 6 <= len(code) <= 12 or not code.isalnum():
        return None
    return _return_qs().filter(code=code, status=ReturnStatus.REQUESTED).first()
