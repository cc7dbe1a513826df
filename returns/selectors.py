"""Reads of refunds, scoped to who is asking: the refunds of the orders they see
(orders.selectors.visible_orders, the one rule)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from orders.models import Order
from orders.selectors import visible_orders

from .exceptions import UnknownRefund
from .models import Refund, RefundLine


def _visible(qs: QuerySet[Refund], user) -> QuerySet[Refund]:
    """Refunds of the orders `user` may see; every refund for the system (no user)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return qs
    return qs.filter(order__in=visible_orders(Order.objects.all(), user).values("pk"))


def refund_list(*, user) -> QuerySet[Refund]:
    """The refunds `user` may see, newest first, with their order and lines (and SKUs)."""
    qs = Refund.objects.select_related("order").prefetch_related(
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
