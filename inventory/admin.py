"""Admin for SKUs, stock levels, the ledger and transfers.

Counters are read-only here: every stock change goes through inventory.services
(receive, cycle count, adjust, safety stock, CSV import, transfer receive), which writes
the ledger and checks that the user may act at the location. A domain error becomes an admin
error message and nothing is written. Non-superusers see only their assigned locations
(stores.admin.LocationScopedAdmin). Availability is `StockLevel.objects.with_available()`'s.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from config.errors import DomainError
from stores.admin import LocationScopedAdmin

from .management.commands._stock_csv import CsvFileError, check_stock_csv, format_errors
from .models import Sku, StockLevel, StockMovement, Transfer, TransferLine
from .services import (
    Line,
    stock_adjust,
    stock_import,
    stock_receive,
    stock_set_safety_stock,
    transfer_receive,
)

LEDGER_ROWS = 50


def _error_text(exc: DomainError) -> str:
    """The message, plus the per-line shortfall or the offending field when the error carries one."""
    parts = [exc.message]
    for line in exc.details.get("lines", []):
        if not line.get("requested"):
            continue  # a count or adjustment: the counters shown below say more
        parts.append(
            f"{line.get('sku')} at {line.get('location')}: requested {line.get('requested')}, "
            f"available {line.get('available')}"
        )
    if exc.details.get("field"):
        parts.append(f"field: {exc.details['field']}")
    return " — ".join(parts)


@admin.register(Sku)
class SkuAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "barcode", "category", "returnable", "is_active", "low_stock_threshold")
    list_filter = ("category", "is_active", "returnable")
    search_fields = ("code", "barcode", "name")
    ordering = ("code",)

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger references SKUs; deactivate instead


class StockChangeForm(forms.Form):
    OPERATIONS = [
        ("receive", "Receive N units (goods arrived)"),
        ("count", "Cycle count: set on hand to N"),
        ("adjust", "Adjust on hand by N (negative to remove)"),
        ("safety", "Set safety stock to N"),
    ]
    operation = forms.ChoiceField(choices=OPERATIONS)
    quantity = forms.IntegerField(help_text="N")
    reason = forms.CharField(max_length=255, required=False, help_text="Required for counts and adjustments")
    reference = forms.CharField(max_length=64, required=False, help_text="e.g. delivery note number")


class StockImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with the header location,sku,quantity (UTF-8)")
    dry_run = forms.BooleanField(required=False, label="Only validate (change nothing)")


class TypeFilter(admin.SimpleListFilter):
    title = "location kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        from stores.models import LocationKind

        return LocationKind.choices

    def queryset(self, request, queryset):
        return queryset.filter(location__kind=self.value()) if self.value() else queryset


class AvailabilityFilter(admin.SimpleListFilter):
    title = "availability"
    parameter_name = "availability"

    def lookups(self, request, model_admin):
        return [("out", "Nothing available"), ("in", "Some available"), ("reserved", "Has reservations")]

    def queryset(self, request, queryset):
        if self.value() == "out":
            return queryset.filter(available__lte=0)
        if self.value() == "in":
            return queryset.filter(available__gt=0)
        if self.value() == "reserved":
            return queryset.filter(reserved__gt=0)
        return queryset


class ScopedLocationFilter(admin.RelatedFieldListFilter):
    """The location filter lists only the locations the user may see."""

    def field_choices(self, field, request, model_admin):
        ids = model_admin.scoped_location_ids(request)
        qs = field.related_model.objects.order_by("code")
        if ids is not None:
            qs = qs.filter(pk__in=ids)
        return [(loc.pk, str(loc)) for loc in qs]


@admin.register(StockLevel)
class StockLevelAdmin(LocationScopedAdmin):
    list_display = ("sku", "location", "on_hand", "reserved", "held", "safety_stock", "available")
    list_filter = (("location", ScopedLocationFilter), TypeFilter, AvailabilityFilter, "sku__category")
    search_fields = ("sku__code", "sku__barcode", "sku__name", "location__code")
    list_select_related = ("sku", "location")
    ordering = ("location__code", "sku__code")
    readonly_fields = ("sku", "location", "on_hand", "reserved", "held", "safety_stock", "available")
    fields = readonly_fields
    change_form_template = "admin/inventory/stocklevel/change_form.html"
    change_list_template = "admin/inventory/stocklevel/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).with_available()

    @admin.display(description="available", ordering="available")
    def available(self, obj):
        return obj.available

    def has_add_permission(self, request):
        return False  # stock levels appear through receipts, counts and imports

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        urls = [
            path("import/", self.admin_site.admin_view(self.import_view), name="inventory_stocklevel_import"),
            path(
                "<int:pk>/change-stock/",
                self.admin_site.admin_view(self.change_stock_view),
                name="inventory_stocklevel_change_stock",
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import_stock": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            # The counters are read-only: the form below (through the services) is how stock changes.
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        level = self.get_object(request, object_id)
        if level is not None:
            extra_context["ledger"] = list(
                StockMovement.objects.filter(sku_id=level.sku_id, location_id=level.location_id)
                .select_related("user")
                .order_by("-id")[:LEDGER_ROWS]
            )
            extra_context["ledger_limit"] = LEDGER_ROWS
            extra_context["ledger_url"] = (
                reverse("admin:inventory_stockmovement_changelist")
                + f"?sku__id__exact={level.sku_id}&location__id__exact={level.location_id}"
            )
            if self.has_change_permission(request, level):
                extra_context["stock_form"] = StockChangeForm()
                extra_context["stock_form_url"] = reverse(
                    "admin:inventory_stocklevel_change_stock", args=[level.pk]
                )
        return super().change_view(request, object_id, form_url, extra_context)

    def change_stock_view(self, request, pk: int):
        """POST only: one stock operation on one level through the services."""
        level = get_object_or_404(self.get_queryset(request).select_related("sku", "location"), pk=pk)
        if request.method != "POST" or not self.has_change_permission(request, level):
            raise PermissionDenied
        back = HttpResponseRedirect(reverse("admin:inventory_stocklevel_change", args=[level.pk]))
        form = StockChangeForm(request.POST)
        if not form.is_valid():
            for field, errs in form.errors.items():
                messages.error(request, f"{field}: {' '.join(errs)}")
            return back
        op = form.cleaned_data["operation"]
        n = form.cleaned_data["quantity"]
        reason = form.cleaned_data["reason"].strip()
        reference = form.cleaned_data["reference"].strip()
        user = request.user
        try:
            if op == "receive":
                stock_receive(
                    lines=[Line(level.location_id, level.sku_id, n)],
                    reference=reference,
                    user=user,
                    reason=reason or "received in admin",
                )
                done = f"Received {n} x {level.sku.code} at {level.location.code}."
            elif op == "count":
                stock_adjust(
                    location=level.location,
                    sku=level.sku,
                    counted_quantity=n,
                    reason=reason or "cycle count",
                    user=user,
                    reference=reference,
                )
                done = f"Counted {level.sku.code} at {level.location.code}: on hand is now {n}."
            elif op == "adjust":
                stock_adjust(
                    location=level.location,
                    sku=level.sku,
                    delta=n,
                    reason=reason,
                    user=user,
                    reference=reference,
                )
                done = f"Adjusted {level.sku.code} at {level.location.code} by {n:+d}."
            else:
                stock_set_safety_stock(
                    location=level.location, sku=level.sku, safety_stock=n, user=user, reason=reason
                )
                done = f"Safety stock of {level.sku.code} at {level.location.code} set to {n}."
        except DomainError as exc:
            level.refresh_from_db()
            messages.error(
                request,
                f"Nothing was changed: {_error_text(exc)} (now: on hand {level.on_hand}, reserved "
                f"{level.reserved}, held {level.held}, safety stock {level.safety_stock})",
            )
            return back
        messages.success(request, done)
        return back

    def import_view(self, request):
        """Upload a CSV; validate every row; apply only when all are valid (the import_stock service)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import stock from CSV",
            "errors": [],
        }
        if request.method == "POST":
            form = StockImportForm(request.POST, request.FILES)
            if form.is_valid():
                self._import(request, form, context)
                if context.get("done"):
                    return HttpResponseRedirect(reverse("admin:inventory_stocklevel_changelist"))
        else:
            form = StockImportForm()
        context["form"] = form
        return TemplateResponse(request, "admin/inventory/stocklevel/import.html", context)

    def _import(self, request, form, context) -> None:
        upload = form.cleaned_data["file"]
        try:
            rows, errors = check_stock_csv(upload.read(), user=request.user)
        except CsvFileError as exc:
            context["errors"] = [str(exc)]
            return
        if errors:
            context["errors"] = format_errors(errors)
            return
        if form.cleaned_data["dry_run"]:
            messages.info(request, f"All {len(rows)} rows are valid; nothing was changed (dry run).")
            return
        try:
            applied = stock_import(rows=rows, user=request.user, reference=f"admin {upload.name}"[:64])
        except DomainError as exc:
            context["errors"] = format_errors(exc.details.get("errors") or []) or [exc.message]
            return
        messages.success(request, f"Imported {applied} rows from {upload.name}.")
        context["done"] = True


@admin.register(StockMovement)
class StockMovementAdmin(LocationScopedAdmin):
    """The ledger: read-only."""

    list_display = (
        "id",
        "created_at",
        "kind",
        "sku",
        "location",
        "quantity",
        "on_hand_delta",
        "reserved_delta",
        "held_delta",
        "safety_stock_delta",
        "reference_type",
        "reference",
        "user",
        "reason",
    )
    list_filter = ("kind", ("location", ScopedLocationFilter), "reference_type", "created_at")
    search_fields = ("sku__code", "sku__barcode", "location__code", "reference", "reason")
    list_select_related = ("sku", "location", "user")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TransferLineInline(admin.TabularInline):
    model = TransferLine
    extra = 0
    readonly_fields = ("sku", "quantity")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Transfer)
class TransferAdmin(LocationScopedAdmin):
    location_lookups = ("from_location_id", "to_location_id")
    list_display = ("id", "from_location", "to_location", "status", "reference", "created_at", "received_at")
    list_filter = ("status", ("to_location", ScopedLocationFilter), ("from_location", ScopedLocationFilter))
    search_fields = ("reference", "from_location__code", "to_location__code", "lines__sku__code")
    list_select_related = ("from_location", "to_location")
    readonly_fields = (
        "from_location",
        "to_location",
        "status",
        "reference",
        "created_by",
        "created_at",
        "received_at",
    )
    inlines = (TransferLineInline,)
    actions = ("receive_transfers",)

    def has_add_permission(self, request):
        return False  # transfers are created through the API (transfer_create checks stock)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Receive selected transfers (goods arrived at the destination)")
    def receive_transfers(self, request, queryset):
        done = 0
        for transfer in queryset:
            try:
                transfer_receive(transfer_id=transfer.pk, user=request.user)
                done += 1
            except DomainError as exc:
                messages.error(request, f"Transfer {transfer.pk}: {_error_text(exc)}")
        if done:
            messages.success(request, f"Received {done} transfer(s).")
