"""Admin for people at work: the fulfillment queue of one's own locations and read-only orders.

Every button calls the same service as the API (orders.services); nothing is edited by hand.
Staff (associate, warehouse, manager) see only their locations; superusers see everything.
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils.html import format_html, format_html_join

from config.admin import ReadOnlyInline, ReadOnlyModelAdmin
from config.errors import DomainError, InvalidInput
from returns.admin import RefundInline
from stores.models import Role
from stores.selectors import user_location_ids, user_role

from . import services
from .models import (
    Customer,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderLine,
    OrderNote,
)
from .selectors import sees_customers, visible_customers

STAFF_ROLES = (Role.ASSOCIATE, Role.WAREHOUSE, Role.MANAGER)


def _is_staff(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.is_superuser or user_role(user) in STAFF_ROLES))


def _scoped(qs, user, *fields: str):
    ids = user_location_ids(user)
    if ids is None:
        return qs
    cond = Q()
    for f in fields:
        cond |= Q(**{f"{f}__in": ids})
    # A subquery rather than DISTINCT: a join over several location fields may repeat rows, and
    # DISTINCT cannot be combined with the queue's ORDER BY expression under server-side binding.
    return qs.filter(pk__in=qs.model._default_manager.filter(cond).values("pk"))


class _ReadOnlyInline(ReadOnlyInline):
    def sees(self, user) -> bool:
        return _is_staff(user)


# --- The fulfillment queue --------------------------------------------------------------------


class FulfillmentActionForm(ActionForm):
    carrier = forms.CharField(required=False, max_length=64, label="Carrier")
    tracking_number = forms.CharField(required=False, max_length=64, label="Tracking no.")
    # As typed: case, spaces and hyphens do not matter (orders.services.codes.code_normalise).
    pickup_code = forms.CharField(required=False, max_length=32, label="Pickup code")
    # Collect only, for a partial hand-over: what the customer took, e.g. "TEE-0 1, TEE-1 0".
    taken = forms.CharField(required=False, max_length=1000, label="Taken (partial: SKU qty, ...)")
    reason = forms.CharField(required=False, max_length=255, label="Reason")


class FulfillmentLineInline(_ReadOnlyInline):
    model = FulfillmentLine
    fields = ("sku", "quantity", "picked_quantity")
    readonly_fields = fields


def _taken(text: str) -> list[services.TakenIn] | None:
    """The admin's "taken" box ("TEE-0 1, TEE-1 0"; "=" or ":" also separate) as collect's lines;
    None when empty (a full hand-over). Only the shape is read here: the service checks the rest."""
    if not text.strip():
        return None
    lines = []
    for item in re.split(r"[,;\n]+", text):
        if not item.strip():
            continue
        parts = re.split(r"[\s=:]+", item.strip())
        if len(parts) != 2 or not re.fullmatch(r"-?\d{1,9}", parts[1]):
            raise InvalidInput(
                f'Taken: write each item as SKU and units, e.g. "TEE-0 1" (not {item.strip()!r}).',
                details={"field": "taken"},
            )
        lines.append(services.TakenIn(sku=parts[0], quantity=int(parts[1])))
    return lines


def _run(modeladmin, request, queryset, verb: str, call) -> None:
    done, failed = 0, []
    for f in queryset.order_by("pk"):
        try:
            call(f)
            done += 1
        except DomainError as e:
            failed.append(f"F{f.pk}: {e.message}")
    if done:
        modeladmin.message_user(request, f"{verb}: {done} fulfillment(s).", messages.SUCCESS)
    for msg in failed:
        modeladmin.message_user(request, msg, messages.ERROR)


@admin.register(Fulfillment)
class FulfillmentAdmin(admin.ModelAdmin):
    """The work queue: live tasks first, oldest first; one action per step."""

    action_form = FulfillmentActionForm
    list_display = ("id", "order_number", "location", "method", "status", "claimed_by", "created_at", "items")
    list_filter = ("status", "method", "location")
    # Never the pickup code (whoever hands the goods over must be shown it, not find it), and the
    # contact as given on the order, never the stored customer's (docs/security.md).
    search_fields = ("order__number", "order__contact_email", "order__contact_phone")
    list_select_related = ("order", "location", "claimed_by")
    inlines = [FulfillmentLineInline]
    readonly_fields = (
        "order",
        "location",
        "method",
        "status",
        "claimed_by",
        "claimed_at",
        "carrier",
        "tracking_number",
        "customer_arrived_at",
        "arrival_note",
        "shipped_at",
        "ready_at",
        "collected_at",
        "created_at",
        "pickup_code_attempts",
        "order_note",
        "pickup_expires_at",
        "pickup_remind_at",
        "pickup_reminded_at",
        "pickup_extended_at",
        "compartment",  # loaded and unloaded through orders.services.lockers only
    )
    exclude = ("pickup_code",)  # the customer brings it; staff type it in to hand over
    actions = ["claim", "pick_all", "pack", "ship", "ready", "collect", "new_pickup_code", "cancel"]

    def get_queryset(self, request):
        return _scoped(super().get_queryset(request), request.user, "location_id")

    @admin.display(description="Customer's note")
    def order_note(self, f):
        return f.order.customer_note

    def get_ordering(self, request):
        live = [
            FulfillmentStatus.PENDING,
            FulfillmentStatus.PICKING,
            FulfillmentStatus.PACKED,
            FulfillmentStatus.READY_FOR_PICKUP,
        ]
        work_first = Case(When(status__in=live, then=Value(0)), default=Value(1), output_field=IntegerField())
        return (work_first.asc(), "pk")

    @admin.display(description="Order", ordering="order__number")
    def order_number(self, f):
        return f.order.number

    @admin.display(description="Items")
    def items(self, f):
        return ", ".join(
            f"{ln.quantity}x{ln.sku.code}" for ln in f.lines.select_related("sku").order_by("pk")
        )

    def has_module_permission(self, request):
        return _is_staff(request.user)

    def has_view_permission(self, request, obj=None):
        return _is_staff(request.user)

    def has_change_permission(self, request, obj=None):
        return _is_staff(request.user)  # actions only: every field is read-only

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _form(self, request, name: str) -> str:
        return (request.POST.get(name) or "").strip()

    @admin.action(description="Claim (start picking)")
    def claim(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            "Claimed",
            lambda f: services.fulfillment_start(fulfillment_id=f.pk, user=request.user, channel="admin"),
        )

    @admin.action(description="Pick all (everything found)")
    def pick_all(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            "Picked",
            lambda f: services.fulfillment_pick(
                fulfillment_id=f.pk, picks=[], user=request.user, channel="admin"
            ),
        )

    @admin.action(description="Pack")
    def pack(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            "Packed",
            lambda f: services.fulfillment_pack(fulfillment_id=f.pk, user=request.user, channel="admin"),
        )

    @admin.action(description="Ship (fill in carrier and tracking no.)")
    def ship(self, request, queryset):
        carrier, tracking = self._form(request, "carrier"), self._form(request, "tracking_number")
        _run(
            self,
            request,
            queryset,
            "Shipped",
            lambda f: services.fulfillment_ship(
                fulfillment_id=f.pk,
                carrier=carrier,
                tracking_number=tracking,
                user=request.user,
                channel="admin",
            ),
        )

    @admin.action(description="Ready for pickup")
    def ready(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            "Ready",
            lambda f: services.fulfillment_ready(fulfillment_id=f.pk, user=request.user, channel="admin"),
        )

    @admin.action(description="Collect (fill in the customer's pickup code; what was taken if not all)")
    def collect(self, request, queryset):
        if queryset.count() != 1:
            # A code belongs to one fulfillment: tried on others it would count as wrong there.
            self.message_user(
                request, "Collect one fulfillment at a time: its own pickup code.", messages.ERROR
            )
            return
        code = self._form(request, "pickup_code")
        try:
            taken = _taken(self._form(request, "taken"))
        except InvalidInput as e:
            self.message_user(request, e.message, messages.ERROR)
            return
        _run(
            self,
            request,
            queryset,
            "Collected" if taken is None else "Collected in part (the rest released and refunded)",
            lambda f: services.fulfillment_collect(
                fulfillment_id=f.pk, pickup_code=code, lines=taken, user=request.user, channel="admin"
            ),
        )

    @admin.action(description="New pickup code (sent to the customer; after too many wrong codes)")
    def new_pickup_code(self, request, queryset):
        reason = self._form(request, "reason")
        _run(
            self,
            request,
            queryset,
            "New pickup code sent to the customer",
            lambda f: services.pickup_code_reissue(
                fulfillment_id=f.pk, user=request.user, reason=reason, channel="admin"
            ),
        )

    @admin.action(description="Cancel (fill in a reason)")
    def cancel(self, request, queryset):
        reason = self._form(request, "reason") or "cancelled in the admin"
        _run(
            self,
            request,
            queryset,
            "Cancelled",
            lambda f: services.fulfillment_cancel(
                fulfillment_id=f.pk, user=request.user, reason=reason, channel="admin"
            ),
        )


# --- Orders (read-only) -----------------------------------------------------------------------


class OrderLineInline(_ReadOnlyInline):
    model = OrderLine
    fields = ("sku", "quantity", "cancelled_quantity", "refunded_quantity", "unit_price", "line_total")
    readonly_fields = fields


class FulfillmentInline(_ReadOnlyInline):
    model = Fulfillment
    fields = (
        "id",
        "location",
        "method",
        "status",
        "claimed_by",
        "carrier",
        "tracking_number",
        "customer_arrived_at",
    )
    readonly_fields = fields
    show_change_link = True


class OrderNoteInline(_ReadOnlyInline):
    model = OrderNote
    fields = ("created_at", "channel", "author", "author_name", "text")
    readonly_fields = fields
    ordering = ("pk",)


class OrderEventInline(_ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "type", "from_status", "to_status", "actor", "channel", "reason", "decision")
    readonly_fields = fields
    ordering = ("pk",)

    @admin.display(description="Routing decision")
    def decision(self, ev):
        data = ev.data or {}
        if "allocations" not in data:
            return ""
        allocations = format_html_join(
            ", ", "{}x{} @ {}", ((a["quantity"], a["sku"], a["location"]) for a in data["allocations"])
        )
        considered = format_html_join(
            "",
            "<li>{} {}: {}</li>",
            (
                ("✔" if c.get("chosen") else "✘", c.get("location"), "; ".join(c.get("reasons", [])))
                for c in data.get("considered", [])
            ),
        )
        return format_html("{}<ul>{}</ul>", allocations, considered)


@admin.register(Order)
class OrderAdmin(ReadOnlyModelAdmin):
    list_display = (
        "number",
        "status",
        "channel",
        "contact",
        "fulfillment_method",
        "total",
        "currency",
        "created_at",
    )
    list_filter = ("status", "channel", "fulfillment_method")
    # The contact as given on the order, never the stored customer's; never the pickup code.
    search_fields = ("number", "contact_email", "contact_phone")
    list_select_related = ("customer",)
    inlines = [OrderLineInline, FulfillmentInline, RefundInline, OrderNoteInline, OrderEventInline]
    readonly_fields = (
        "number",
        "status",
        "channel",
        "customer_number",
        "contact_name",
        "contact_email",
        "contact_phone",
        "customer_note",
        "currency",
        "subtotal",
        "total",
        "fulfillment_method",
        "pickup_location",
        "ship_address",
        "placed_by",
        "placed_at_location",
        "created_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return _scoped(
            qs, request.user, "fulfillments__location_id", "pickup_location_id", "placed_at_location_id"
        )

    @admin.display(description="Customer")
    def contact(self, order):
        """The contact as given on this order (not the stored customer's name or other contact)."""
        return " ".join(x for x in (order.contact_name, order.contact_email, order.contact_phone) if x) or "-"

    @admin.display(description="Customer no.")
    def customer_number(self, order):
        return order.customer_id

    def sees(self, user) -> bool:
        return _is_staff(user)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    """Whole customers, read-only: a manager sees the customers with an order at their locations,
    a network-wide manager or a superuser everyone; associates and warehouse staff no one
    (orders.selectors.sees_customers / visible_customers, the API's rule)."""

    list_display = ("id", "name", "email", "phone", "language", "preferred_location", "created_at")
    search_fields = ("email", "phone", "name")
    readonly_fields = (
        "email",
        "phone",
        "name",
        "language",
        "notify_channels",
        "preferred_location",
        "created_at",
    )

    def get_queryset(self, request):
        return visible_customers(super().get_queryset(request), request.user)

    def _allowed(self, request) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and sees_customers(user))

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        if not self._allowed(request):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The associates' Pickups page (the store counter) is its own module.
from . import admin_pickups  # noqa: E402, F401
