import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from inventory.models import Sku
from stores.models import Compartment, Location


class Channel(models.TextChoices):
    WEB = "web", "Web"
    APP = "app", "App"
    STORE = "store", "Store (point of sale, endless aisle)"
    MARKETPLACE = "marketplace", "Marketplace"
    SOCIAL = "social", "Social"
    PHONE = "phone", "Phone"


class FulfillmentMethod(models.TextChoices):
    SHIP = "ship", "Ship to an address"  # a carrier takes it to the customer
    PICKUP = "pickup", "Pick up in store"  # the customer collects at the counter
    CURBSIDE = "curbside", "Curbside pickup"  # an associate brings it out to the car
    # Not a customer's choice: a warehouse's part of a ship-to-store order, sent to the pickup store.
    TO_STORE = "to_store", "Sent to the pickup store"


# What a customer may choose (orders and their input); `to_store` is internal work.
ORDER_METHOD_CHOICES = [
    (v, label) for v, label in FulfillmentMethod.choices if v != FulfillmentMethod.TO_STORE
]


class NotificationChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class Customer(models.Model):
    """One shopper across channels: the same email or phone is the same customer."""

    email = models.EmailField(max_length=254, null=True, blank=True)  # unique: Meta
    phone = models.CharField(max_length=20, null=True, blank=True, help_text="E.164, e.g. +819012345678")
    name = models.CharField(max_length=200, blank=True)
    preferred_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )  # indexed where set (Meta): most customers have none
    language = models.CharField(max_length=8, default="en", choices=settings.LANGUAGES)
    # Channels the customer wants status updates on, e.g. ["email", "sms"].
    notify_channels = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(email__isnull=False) | Q(phone__isnull=False), name="customer_has_contact"
            ),
            # Constraints rather than unique=True: no extra LIKE-pattern index on PostgreSQL
            # (nothing searches these by prefix; every order of a new customer pays for each index).
            models.UniqueConstraint(fields=["email"], name="customer_email_unique"),
            models.UniqueConstraint(fields=["phone"], name="customer_phone_unique"),
        ]
        indexes = [
            models.Index(
                fields=["preferred_location"],
                name="customer_pref_location_idx",
                condition=Q(preferred_location__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"customer {self.pk}"


class OrderStatus(models.TextChoices):
    PLACED = "placed", "Placed"  # routed and reserved, nothing started yet
    IN_PROGRESS = "in_progress", "In progress"  # some fulfillment is being picked or packed
    PARTIALLY_SHIPPED = "partially_shipped", "Partially shipped"  # some fulfillments left, others not yet
    SHIPPED = "shipped", "Shipped"  # every live ship fulfillment left the building
    READY_FOR_PICKUP = "ready_for_pickup", "Ready for pickup"  # waiting at the counter
    # Ship to store: goods are on their way from a warehouse to the pickup store (`ready_by`).
    IN_TRANSIT_TO_STORE = "in_transit_to_store", "In transit to store"
    COMPLETED = "completed", "Completed"  # everything shipped or collected
    CANCELLED = "cancelled", "Cancelled"  # nothing left to fulfill, nothing left the building


def new_order_number() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(10))


def new_receipt_code() -> str:
    """The code on the order confirmation that works at a returns desk (orders.services.codes: 8
    characters, 39 bits). Generated in Python at placement: no query. Indexed for the desk's search
    (orders.selectors.purchases_find)."""
    from .services.codes import code_new  # the services package imports the models

    return code_new()


class Order(models.Model):
    number = models.CharField(max_length=16, default=new_order_number)  # unique: Meta
    # On the order confirmation: with the order number it proves the purchase at a returns desk or
    # online (returns.services.return_request). Not unique and not indexed: it is compared for
    # one order found by its number, never searched alone.
    receipt_code = models.CharField(max_length=12, default=new_receipt_code)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    # The contact as given on this order (normalised as Customer's): what the order shows. The
    # stored customer may know more (another email, a name) that whoever sees this order must not.
    contact_email = models.EmailField(max_length=254, null=True, blank=True)
    contact_phone = models.CharField(max_length=20, null=True, blank=True, help_text="E.164")
    contact_name = models.CharField(max_length=200, blank=True)
    # What the customer wants the store to know, as given at placement (API: `note`).
    customer_note = models.CharField(max_length=500, blank=True)
    # Derived from the fulfillments by orders.services after every transition, stored for filtering.
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PLACED)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    fulfillment_method = models.CharField(max_length=16, choices=ORDER_METHOD_CHOICES)
    pickup_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="pickup_orders"
    )
    ship_address = models.JSONField(default=dict, blank=True)
    destination_latitude = models.FloatField(null=True, blank=True)
    destination_longitude = models.FloatField(null=True, blank=True)
    # Who did it (audit): not indexed; deleting a user with history scans (deactivate instead).
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    placed_at_location = models.ForeignKey(
        Location,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The store whose till placed it (channel store)",
        db_index=False,  # indexed where set (Meta): web, app and marketplace orders have none
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(subtotal__gte=0) & Q(total__gte=0), name="order_amounts_gte_0"
            ),
            models.CheckConstraint(
                condition=~Q(fulfillment_method__in=["pickup", "curbside"])
                | Q(pickup_location__isnull=False),
                name="order_pickup_has_location",
            ),
            models.UniqueConstraint(fields=["number"], name="order_number_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="order_status_created_idx"),
            models.Index(
                fields=["placed_at_location"],
                name="order_placed_at_idx",
                condition=Q(placed_at_location__isnull=False),
            ),
            # The returns desk finds a purchase by the contact given on the order
            # (orders.selectors.purchases_find); partial: an order often has only one of the two.
            models.Index(
                fields=["contact_email"],
                name="order_contact_email_idx",
                condition=Q(contact_email__isnull=False),
            ),
            models.Index(
                fields=["contact_phone"],
                name="order_contact_phone_idx",
                condition=Q(contact_phone__isnull=False),
            ),
            # ... and by the receipt code of the order confirmation (not unique: 39 bits; a rare
            # collision shows two purchases, and the associate asks which).
            models.Index(fields=["receipt_code"], name="order_receipt_code_idx"),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    # No index of its own: orderline_one_per_sku (order, sku) starts with it.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    cancelled_quantity = models.PositiveIntegerField(
        default=0
    )  # short-picked and not re-routable, or cancelled
    # Units a Refund was requested for (returns.services.refund_request, a guarded UPDATE, the only
    # writer): a unit is refunded at most once, whichever path cancels or takes it back.
    refunded_quantity = models.PositiveIntegerField(default=0)
    # Units asked back in returns that are not cancelled (requested or received): the guarded
    # UPDATE of returns.services.return_request (`... WHERE returned_quantity + q <= delivered`) is
    # the only writer that raises it; a cancelled return or units not brought give them back.
    returned_quantity = models.PositiveIntegerField(default=0)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    line_total = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "sku"], name="orderline_one_per_sku"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orderline_quantity_gt_0"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="orderline_price_gte_0"),
            models.CheckConstraint(
                condition=Q(cancelled_quantity__lte=models.F("quantity")), name="orderline_cancel_le_qty"
            ),
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=models.F("quantity")), name="orderline_refund_le_qty"
            ),
            models.CheckConstraint(
                condition=Q(returned_quantity__lte=models.F("quantity")), name="orderline_returned_le_qty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku_id}"


class FulfillmentStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # queued at its location, nobody on it yet
    # Pickup (ship to store): waits for units a warehouse sends; cannot be worked until they arrive.
    AWAITING_TRANSFER = "awaiting_transfer", "Awaiting transfer"
    PICKING = "picking", "Picking"  # claimed by a worker who is picking it
    PACKED = "packed", "Packed"  # picked and packed, waiting for the carrier (ship)
    SHIPPED = "shipped", "Shipped"  # handed to the carrier: stock committed
    READY_FOR_PICKUP = "ready_for_pickup", "Ready for pickup"  # at the counter, customer has a pickup code
    COLLECTED = "collected", "Collected"  # handed to the customer: stock committed
    CANCELLED = "cancelled", "Cancelled"  # stopped before it left; what was reserved is released


class Fulfillment(models.Model):
    """The part of an order one location fills by one method; a state machine (orders/transitions.py)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fulfillments")
    # No index of its own: fulfillment_queue_idx (location, status, id) starts with it.
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, related_name="fulfillments", db_index=False
    )
    method = models.CharField(max_length=16, choices=FulfillmentMethod.choices)
    status = models.CharField(
        max_length=20, choices=FulfillmentStatus.choices, default=FulfillmentStatus.PENDING
    )
    # Who did it (audit): not indexed; deleting a user with history scans (deactivate instead).
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    carrier = models.CharField(max_length=64, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True)
    # orders.services.codes: 8 characters (6 digits before issue 9); never shown to staff.
    pickup_code = models.CharField(max_length=12, blank=True)
    # Refused tries of the current pickup code; at OMS["PICKUP_CODE_MAX_ATTEMPTS"] it is locked
    # until a new code is issued (which resets it).
    pickup_code_attempts = models.PositiveIntegerField(default=0)
    customer_arrived_at = models.DateTimeField(null=True, blank=True)
    arrival_note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    collected_at = models.DateTimeField(null=True, blank=True)
    # The pickup window (orders.services.pickups): set when it becomes ready for pickup; uncollected
    # at this instant (the end of the window's last day in the store's timezone) it is cancelled.
    pickup_expires_at = models.DateTimeField(null=True, blank=True)
    # When the reminder is due (null: none, e.g. a window shorter than the store's reminder days),
    # and when it was written to the outbox (set in that same transaction: sent once).
    pickup_remind_at = models.DateTimeField(null=True, blank=True)
    pickup_reminded_at = models.DateTimeField(null=True, blank=True)
    # Staff extended the window (once per fulfillment).
    pickup_extended_at = models.DateTimeField(null=True, blank=True)
    # The locker compartment it was loaded into (orders.services.lockers): set by locker_load,
    # cleared by locker_unload, kept once collected (where it was taken from). While set and not
    # collected the compartment is occupied: one such fulfillment per compartment (Meta).
    compartment = models.ForeignKey(
        Compartment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fulfillments",
        db_index=False,  # indexed where set (Meta): every order placed would pay for an index of NULLs
    )
    # Ship to store (orders.services.ship_to_store). On the store's pickup fulfillment: the day it
    # was promised ready (store calendar). On a warehouse's `to_store` fulfillment: the pickup
    # fulfillment it supplies and, once shipped, the transfer carrying the goods.
    ready_by = models.DateField(null=True, blank=True)
    supplies = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="supplied_by", db_index=False
    )  # indexed where set (Meta)
    transfer = models.ForeignKey(
        "inventory.Transfer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )  # indexed where set (Meta): the arrival of a transfer finds its fulfillment

    class Meta:
        ordering = ["id"]
        constraints = [
            # A compartment holds one order: the one loaded and not yet taken out (a cancelled one
            # still occupies it until an associate unloads it: the goods are still behind the door).
            models.UniqueConstraint(
                fields=["compartment"],
                condition=Q(compartment__isnull=False) & ~Q(status="collected"),
                name="fulfillment_one_per_compartment",
            ),
            # Only pickup orders go into lockers (curbside is brought to the car, ship leaves).
            models.CheckConstraint(
                condition=Q(compartment__isnull=True) | Q(method="pickup"),
                name="fulfillment_locker_is_pickup",
            ),
            # Only a warehouse's part of a ship-to-store order supplies another fulfillment.
            models.CheckConstraint(
                condition=Q(method="to_store", supplies__isnull=False)
                | (~Q(method="to_store") & Q(supplies__isnull=True)),
                name="fulfillment_to_store_supplies",
            ),
        ]
        indexes = [
            models.Index(
                fields=["compartment"],
                name="fulfillment_compartment_idx",
                condition=Q(compartment__isnull=False),
            ),
            # A locker's keypad: which loaded order has the typed code (orders.services.lockers).
            models.Index(
                fields=["pickup_code"],
                name="fulfillment_locker_code_idx",
                condition=Q(compartment__isnull=False, status="ready_for_pickup"),
            ),
            # The work queue: oldest pending task of a location first.
            models.Index(fields=["location", "status", "id"], name="fulfillment_queue_idx"),
            models.Index(fields=["location", "created_at"], name="fulfillment_capacity_idx"),
            # The beat tasks' candidates: only fulfillments waiting at a counter are in these.
            models.Index(
                fields=["pickup_expires_at", "id"],
                name="fulfillment_pickup_expiry_idx",
                condition=Q(status="ready_for_pickup"),
            ),
            models.Index(
                fields=["pickup_remind_at", "id"],
                name="fulfillment_pickup_remind_idx",
                condition=Q(status="ready_for_pickup", pickup_reminded_at__isnull=True),
            ),
            models.Index(
                fields=["supplies"], name="fulfillment_supplies_idx", condition=Q(supplies__isnull=False)
            ),
            models.Index(
                fields=["transfer"], name="fulfillment_transfer_idx", condition=Q(transfer__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"F{self.pk} {self.order_id}@{self.location_id} ({self.status})"


class Pickup(Fulfillment):
    """A fulfillment seen from the store counter: the associates' Pickups page (orders/admin_pickups.py).
    Same rows as Fulfillment (in store and curbside ones only, on that page)."""

    class Meta:
        proxy = True
        verbose_name = "pickup"
        verbose_name_plural = "Pickups"


class FulfillmentLine(models.Model):
    # No index of its own: fulfillmentline_one_per_sku (fulfillment, sku) starts with it.
    fulfillment = models.ForeignKey(
        Fulfillment, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="fulfillment_lines")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()  # reserved at the fulfillment's location for this line
    picked_quantity = models.PositiveIntegerField(null=True, blank=True)
    # Ship to store: units on their way from a warehouse for this line, not yet reserved here; on
    # arrival they move to `quantity` (reserved at the store).
    incoming_quantity = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["fulfillment", "sku"], name="fulfillmentline_one_per_sku"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="fulfillmentline_quantity_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku_id}"


class EventType(models.TextChoices):
    PLACED = "placed", "Order placed"
    ROUTED = "routed", "Routing decision"
    STATUS_CHANGED = "status_changed", "Order status changed"
    FULFILLMENT_STATUS_CHANGED = "fulfillment_status_changed", "Fulfillment status changed"
    CLAIMED = "claimed", "Fulfillment claimed"
    SHORT_PICK = "short_pick", "Short pick"
    REROUTED = "rerouted", "Re-routed"
    LINE_CANCELLED = "line_cancelled", "Line cancelled"
    CUSTOMER_ARRIVED = "customer_arrived", "Customer arrived"
    PICKUP_CODE_REFUSED = "pickup_code_refused", "Pickup code refused"
    PICKUP_CODE_ISSUED = "pickup_code_issued", "New pickup code issued"
    PICKUP_REMINDED = "pickup_reminded", "Pickup reminder sent"
    PICKUP_EXTENDED = "pickup_extended", "Pickup window extended"
    LOCKER_LOADED = "locker_loaded", "Loaded into a locker"
    LOCKER_UNLOADED = "locker_unloaded", "Taken out of a locker"
    NOTE_ADDED = "note_added", "Note added"
    CANCELLED = "cancelled", "Order cancelled"
    REFUND_REQUESTED = "refund_requested", "Refund requested"
    REFUND_COMPLETED = "refund_completed", "Refund completed"
    REFUND_FAILED = "refund_failed", "Refund failed"
    TRANSFER_SHIPPED = "transfer_shipped", "Sent from a warehouse to the store"
    TRANSFER_RECEIVED = "transfer_received", "Received at the store from a warehouse"
    RETURN_REQUESTED = "return_requested", "Return requested"
    RETURN_RECEIVED = "return_received", "Return received"
    RETURN_CANCELLED = "return_cancelled", "Return cancelled"
    # An exchange (returns.services.receiving): in the returned order's timeline and the new one's.
    EXCHANGE_PLACED = "exchange_placed", "Exchange order placed"
    # The exchange costs more than what came back: the customer owes the difference (Return.amount_due).
    PAYMENT_DUE = "payment_due", "Payment due from the customer"


class OrderEvent(models.Model):
    """The order's timeline: every transition and decision, who, when, from, to, why."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    fulfillment = models.ForeignKey(
        Fulfillment, null=True, blank=True, on_delete=models.CASCADE, related_name="events", db_index=False
    )  # indexed where set (Meta): order-level events (placed, routed, ...) have none
    type = models.CharField(max_length=32, choices=EventType.choices)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    # Who did it (audit): not indexed; deleting a user with history scans (deactivate instead).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    channel = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["fulfillment"], name="event_fulfillment_idx", condition=Q(fulfillment__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.type} {self.from_status}->{self.to_status}"


class NoteChannel(models.TextChoices):
    """Where a note came from: what the customer said and through which door."""

    WEB = "web", "Web"
    APP = "app", "App"
    PHONE = "phone", "Phone"
    CALL_CENTRE = "call_centre", "Call centre"
    CHAT = "chat", "Chat"
    STORE = "store", "Store"
    EMAIL = "email", "Email"


class Note(models.Model):
    """What someone wrote about an order or a return (help desk, chat, call centre, store): the
    fields every note has. Never edited: a correction is another note."""

    text = models.TextField(max_length=2000)
    channel = models.CharField(max_length=16, choices=NoteChannel.choices)
    # The account that wrote it (audit: not indexed) and, for a shared account such as the
    # storefront's, the person it says wrote it (a help-desk agent).
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    author_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["id"]


class OrderNote(Note):
    """A note about an order; also a NOTE_ADDED event in the timeline."""

    # No index of its own: ordernote_order_idx (order, id) starts with it.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notes", db_index=False)

    class Meta(Note.Meta):
        indexes = [models.Index(fields=["order", "id"], name="ordernote_order_idx")]

    def __str__(self) -> str:
        return f"{self.order_id} {self.channel}: {self.text[:40]}"


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key and the first response given for it (config/idempotency.py).

    Written in the same transaction as the work it guards: a crash before commit leaves no row,
    so a retry runs the work again; after commit a retry gets the stored response back.
    """

    # No index of its own: idempotencykey_owner_key (owner, key) starts with it.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=255)
    # sha256 of the method, the path and the canonical JSON body: another body under the same key is a 422.
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)  # the exact bytes sent, so a replay is byte-identical
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotencykey_owner_key")]

    def __str__(self) -> str:
        return f"{self.owner_id}:{self.key}"
