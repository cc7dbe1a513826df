from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Case, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from stores.models import Location


def validate_image_url(value: str) -> None:
    """An absolute http(s) address, or a path on this site ("/static/demo/skus/bag.svg")."""
    if value.startswith("/") and not value.startswith("//"):
        return
    URLValidator(schemes=["http", "https"])(value)


class Sku(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    barcode = models.CharField(max_length=32, unique=True, null=True, blank=True)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    returnable = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    # "Only N left" below this; null falls back to settings.OMS["LOW_STOCK_THRESHOLD"].
    low_stock_threshold = models.PositiveIntegerField(null=True, blank=True)
    # Shown at the counter beside each line to hand over (the Pickups page).
    image_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_image_url],
        help_text="A picture of the item: an https:// address, or a path on this site such as /static/....",
    )

    class Meta:
        ordering = ["code"]
        verbose_name = "SKU"

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class StockLevelQuerySet(models.QuerySet):
    def with_available(self) -> StockLevelQuerySet:
        """Annotate every level with `active_held` and `available`: THE definition of availability.

        active_held = held minus the units of its expired hold lines not yet reclaimed
        available   = on_hand - reserved - active_held - safety_stock, never below zero

        An expired hold stops counting here at once, before the sweep gives its units back.
        `inventory.db.available_sql` is the same formula as an SQL fragment, for the raw reads;
        tests/inventory/test_availability.py proves that both agree.
        """
        expired_units = (
            HoldLine.objects.filter(
                sku_id=OuterRef("sku_id"), location_id=OuterRef("location_id"), expires_at__lte=timezone.now()
            )
            .order_by()
            .values("sku_id")
            .annotate(units=Sum("quantity"))
            .values("units")
        )
        active_held = Case(
            # Most levels hold nothing: no hold line lookup for them.
            When(held=0, then=Value(0)),
            default=F("held") - Coalesce(Subquery(expired_units), Value(0)),
            output_field=models.IntegerField(),
        )
        return self.annotate(active_held=active_held).annotate(
            available=Greatest(Value(0), F("on_hand") - F("reserved") - F("active_held") - F("safety_stock"))
        )


class StockLevel(models.Model):
    """Stock of one SKU at one location.

    available = on_hand - reserved - held(active) - safety_stock, shown never below zero:
    `StockLevel.objects.with_available()` (querysets) and `inventory.db.available_sql` (raw reads).
    Changed only by inventory.services, which writes a StockMovement for every change.
    """

    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="stock_levels")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock_levels")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)  # promised to placed orders, leaves with the goods
    held = models.IntegerField(default=0)  # checkout holds, including expired ones not yet reclaimed
    safety_stock = models.IntegerField(default=0)

    objects = StockLevelQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sku", "location"], name="stocklevel_sku_location_uniq"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stocklevel_on_hand_gte_0"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stocklevel_reserved_gte_0"),
            models.CheckConstraint(condition=Q(held__gte=0), name="stocklevel_held_gte_0"),
            models.CheckConstraint(condition=Q(safety_stock__gte=0), name="stocklevel_safety_gte_0"),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand") - F("held")),
                name="stocklevel_reserved_held_le_on_hand",
            ),
        ]
        indexes = [
            # Network availability of one SKU as an index-only scan (PostgreSQL; ignored elsewhere).
            models.Index(
                fields=["sku"],
                include=["location", "on_hand", "reserved", "held", "safety_stock"],
                name="stocklevel_sku_cover_idx",
            ),
            models.Index(fields=["location", "sku"], name="stocklevel_location_sku_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sku_id}@{self.location_id}: {self.on_hand}/{self.reserved}/{self.held}"

    @property
    def raw_available(self) -> int:
        """What the counters alone leave (expired holds still counted): the writers' guard, not
        what customers see (that is `available`, from `StockLevel.objects.with_available()`)."""
        return self.on_hand - self.reserved - self.held - self.safety_stock


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", "Receipt"  # goods arrived from a supplier
    ADJUSTMENT = "adjustment", "Adjustment"  # manual correction by a delta
    CYCLE_COUNT = "cycle_count", "Cycle count"  # set to a counted quantity
    RESERVATION = "reservation", "Reservation"  # promised to an order
    RELEASE = "release", "Release"  # a reservation given back (cancel, reroute)
    COMMIT = "commit", "Commit (sold)"  # goods left the building
    TRANSFER_OUT = "transfer_out", "Transfer out"  # left for another location, now in transit
    TRANSFER_IN = "transfer_in", "Transfer in"  # arrived from another location
    RETURN_RESTOCK = "return_restock", "Return restock"  # resellable return back on the shelf
    DAMAGE = "damage", "Damage"  # written off
    HOLD = "hold", "Checkout hold"  # held for a shopper in checkout
    HOLD_RELEASE = "hold_release", "Hold released"  # abandoned, expired or converted
    SAFETY_STOCK = "safety_stock", "Safety stock change"  # buffer changed (on hand untouched)


class StockMovement(models.Model):
    """Append-only ledger. For every stock level, the sums of the deltas equal its counters."""

    # sku: no index of its own, movement_sku_loc_idx (sku, location, id) starts with it.
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", db_index=False)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=MovementKind.choices)
    quantity = models.IntegerField(help_text="Units moved (always positive; the deltas carry the sign)")
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    held_delta = models.IntegerField(default=0)
    safety_stock_delta = models.IntegerField(default=0)
    reference_type = models.CharField(max_length=20, blank=True)
    reference = models.CharField(max_length=64, blank=True)  # indexed: Meta (no LIKE-pattern index)
    # Who did it (audit): not indexed; deleting a user with history scans (deactivate instead).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["sku", "location", "id"], name="movement_sku_loc_idx"),
            models.Index(fields=["reference"], name="movement_reference_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} {self.sku_id}@{self.location_id}"


class TransferStatus(models.TextChoices):
    IN_TRANSIT = "in_transit", "In transit"  # left the source, not yet at the destination
    RECEIVED = "received", "Received"  # counted in at the destination


class Transfer(models.Model):
    from_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="transfers_out")
    to_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="transfers_in")
    status = models.CharField(
        max_length=16, choices=TransferStatus.choices, default=TransferStatus.IN_TRANSIT
    )
    reference = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(from_location=F("to_location")), name="transfer_distinct_locations"
            )
        ]

    def __str__(self) -> str:
        return f"Transfer {self.pk} {self.from_location_id}->{self.to_location_id} ({self.status})"


class TransferLine(models.Model):
    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()  # sent
    received_quantity = models.PositiveIntegerField(null=True, blank=True)  # counted in (null: not yet)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transfer", "sku"], name="transferline_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="transferline_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(received_quantity__lte=F("quantity")), name="transferline_received_le_sent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku_id}"


class Hold(models.Model):
    """Stock held for a shopper in checkout. Counts against availability until it expires."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # What the storefront sent (lines and fulfillment), so an order placed with it can be compared.
    request = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"Hold {self.pk} until {self.expires_at:%H:%M:%S}"


class HoldLine(models.Model):
    hold = models.ForeignKey(Hold, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT)
    location = models.ForeignKey(Location, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()
    expires_at = models.DateTimeField()  # copy of the hold's, so availability reads need no join

    class Meta:
        indexes = [models.Index(fields=["sku", "expires_at"], name="holdline_sku_expiry_idx")]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="holdline_quantity_gt_0")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku_id}@{self.location_id}"
