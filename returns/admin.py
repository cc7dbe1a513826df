"""Read-only refunds for people at work: the payment system completes them, nobody edits them here.

Scoped like orders: associates and managers see the refunds of orders at their locations
(orders.selectors.visible_orders), superusers and network-wide managers all of them; warehouse
staff none (docs/security.md). The order's page shows its refunds inline (RefundInline).
"""

from __future__ import annotations

from django.contrib import admin

from orders.models import Order
from orders.selectors import visible_orders
from stores.models import Role
from stores.selectors import user_role

from .models import Refund, RefundLine

REFUND_ROLES = (Role.ASSOCIATE, Role.MANAGER)


def sees_refunds(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.is_superuser or user_role(user) in REFUND_ROLES))


class RefundLineInline(admin.TabularInline):
    model = RefundLine
    fields = ("order_line", "quantity", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return sees_refunds(request.user)


class RefundInline(admin.TabularInline):
    """The order's refunds, on the order's page (orders.admin.OrderAdmin)."""

    model = Refund
    fields = ("id", "created_at", "amount", "currency", "cause", "status", "reference", "failure_reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("pk",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return sees_refunds(request.user)


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ("id", "order", "amount", "currency", "cause", "status", "reference", "created_at")
    list_filter = ("status", "cause")
    search_fields = ("order__number", "reference")
    list_select_related = ("order",)
    inlines = [RefundLineInline]
    readonly_fields = (
        "order",
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

    def has_module_permission(self, request):
        return sees_refunds(request.user)

    def has_view_permission(self, request, obj=None):
        return sees_refunds(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
