"""Read-only refunds for people at work: the payment system completes them, nobody edits them here.

Scoped like orders: associates and managers see the refunds of orders at their locations
(orders.selectors.visible_orders), superusers and network-wide managers all of them; warehouse
staff none (docs/security.md). The order's page shows its refunds inline (RefundInline).
"""

from __future__ import annotations

from django.contrib import admin

from config.admin import ReadOnlyInline, ReadOnlyModelAdmin
from orders.models import Order
from orders.selectors import visible_orders
from stores.models import Role
from stores.selectors import user_role

from .models import Refund, RefundLine, Return, ReturnLine, ReturnNote
from .selectors import visible_returns

REFUND_ROLES = (Role.ASSOCIATE, Role.MANAGER)


def sees_refunds(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.is_superuser or user_role(user) in REFUND_ROLES))


class RefundLineInline(ReadOnlyInline):
    model = RefundLine
    fields = ("order_line", "quantity", "amount")
    readonly_fields = fields

    def sees(self, user) -> bool:
        return sees_refunds(user)


class RefundInline(ReadOnlyInline):
    """The order's refunds, on the order's page (orders.admin.OrderAdmin)."""

    model = Refund
    fields = ("id", "created_at", "amount", "currency", "cause", "status", "reference", "failure_reason")
    readonly_fields = fields
    show_change_link = True
    ordering = ("pk",)

    def sees(self, user) -> bool:
        return sees_refunds(user)


@admin.register(Refund)
class RefundAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "order", "amount", "currency", "cause", "status", "reference", "created_at")
    list_filter = ("status", "cause")
    search_fields = ("order__number", "reference")
    list_select_related = ("order",)
    inlines = [RefundLineInline]
    readonly_fields = (
        "order",
        "return_ref",
        "amount",
        "currency",
        "cause",
        "reason",
        "status",
        "reference",
        "failure_reason",
        "requested_by",
        "created_at",
        "updated_at",
        "completed_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(order__in=visible_orders(Order.objects.all(), request.user).values("pk"))

    def sees(self, user) -> bool:
        return sees_refunds(user)


# --- Returns: read-only here; the desk page (a purpose-built page) receives them -----------------

RETURN_ROLES = (Role.ASSOCIATE, Role.MANAGER, Role.WAREHOUSE)


def sees_returns(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.is_superuser or user_role(user) in RETURN_ROLES))


class ReturnLineInline(ReadOnlyInline):
    model = ReturnLine
    fields = (
        "sku",
        "quantity",
        "reason",
        "reason_text",
        "exchange_for",
        "received_quantity",
        "condition",
        "refund_amount",
    )
    readonly_fields = fields

    def sees(self, user) -> bool:
        return sees_returns(user)


class ReturnNoteInline(ReadOnlyInline):
    model = ReturnNote
    fields = ("created_at", "channel", "author", "author_name", "text")
    readonly_fields = fields

    def sees(self, user) -> bool:
        return sees_returns(user)


@admin.register(Return)
class ReturnAdmin(ReadOnlyModelAdmin):
    """Returns expected or received at the user's locations (returns.selectors.visible_returns),
    read-only: receiving and cancelling go through the services (the API, the returns desk)."""

    list_display = (
        "number",
        "order",
        "status",
        "method",
        "expected_location",
        "received_at_location",
        "refund_amount",
        "currency",
        "created_at",
    )
    list_filter = ("status", "method")
    search_fields = ("number", "order__number")
    list_select_related = ("order", "expected_location", "received_at_location")
    inlines = [ReturnLineInline, ReturnNoteInline]
    readonly_fields = (
        "number",
        "order",
        "customer",
        "status",
        "method",
        "expected_location",
        "received_at_location",
        "note",
        "channel",
        "refund_amount",
        "currency",
        "transfer",
        "created_by",
        "received_by",
        "created_at",
        "updated_at",
        "received_at",
        "cancelled_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return visible_returns(super().get_queryset(request), request.user)

    def sees(self, user) -> bool:
        return sees_returns(user)


# The associates' Returns desk is its own module.
from . import admin_desk  # noqa: E402, F401
