"""The notification outbox, back-in-stock subscriptions and storefront webhooks.

A `Notification` is one message to one recipient on one channel (email, SMS or a webhook
endpoint). It is written in the transaction of the change that causes it and delivered by a
Celery task enqueued on commit; a beat sweeper re-enqueues whatever the broker lost. Its
`dedupe_key` is unique, so the same event never makes two rows for the same recipient/channel.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from inventory.models import Sku
from orders.models import Customer, Order
from stores.models import Location


class NotificationEvent(models.TextChoices):
    ORDER_CONFIRMED = "order_confirmed", "Order confirmed"  # the order was placed and routed
    ORDER_SHIPPED = "order_shipped", "Shipped"  # a fulfillment left with a carrier (carrier, tracking)
    READY_FOR_PICKUP = "ready_for_pickup", "Ready for pickup"  # at the counter: code, store, hours
    LOCKER_READY = "locker_ready", "Ready in a locker"  # loaded into a locker: locker, compartment, code
    PICKUP_REMINDER = "pickup_reminder", "Pickup reminder"  # still waiting at the counter
    PICKUP_EXTENDED = "pickup_extended", "Pickup window extended"  # staff gave the customer more days
    # Ship to store: a warehouse sent what the store lacked; the day it will be ready.
    IN_TRANSIT_TO_STORE = "in_transit_to_store", "On its way to the pickup store"
    PICKUP_EXPIRED = "pickup_expired", "Pickup expired"  # not collected in time, cancelled
    ORDER_CANCELLED = "order_cancelled", "Order cancelled"  # the whole order was cancelled
    LINE_CANCELLED = "line_cancelled", "Line cancelled"  # part of the order could not be fulfilled
    RETURN_REQUESTED = "return_requested", "Return requested"  # what to bring (code, QR) and where
    RETURN_RECEIVED = "return_received", "Return received"  # a store or the warehouse took it back
    REFUND_ISSUED = "refund_issued", "Refund issued"  # money is on its way back
    BACK_IN_STOCK = "back_in_stock", "Back in stock"  # a SKU a shopper waited for is available again
    WEBHOOK = "webhook", "Webhook event"  # a storefront webhook delivery (see webhook_event)


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WEBHOOK = "webhook", "Webhook"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting to be sent (first try or a retry at next_attempt_at)
    SENDING = "sending", "Sending"  # claimed by a worker until lease_until; reclaimable after it
    SENT = "sent", "Sent"  # the provider accepted it
    FAILED = "failed", "Failed"  # gave up (attempts exhausted or permanent error); resend from the admin


class Notification(models.Model):
    """One message to one recipient on one channel: the outbox row."""

    event = models.CharField(max_length=32, choices=NotificationEvent.choices)
    channel = models.CharField(max_length=16, choices=DeliveryChannel.choices)
    recipient = models.CharField(max_length=400, help_text="Email address, E.164 phone or webhook URL")
    language = models.CharField(max_length=8, default="en")
    dedupe_key = models.CharField(max_length=200)  # unique: Meta (no LIKE-pattern index)
    context = models.JSONField(default=dict, blank=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    webhook_endpoint = models.ForeignKey(
        "WebhookEndpoint",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,  # partial index in Meta: customer notifications (no endpoint) skip it
    )
    webhook_event = models.CharField(max_length=64, blank=True, help_text="e.g. order.placed")
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)  # claims so far (a claim = one send attempt)
    next_attempt_at = models.DateTimeField(help_text="Not retried before this")
    claim_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    kicked_at = models.DateTimeField(null=True, blank=True, help_text="Last re-enqueued by the sweeper")
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The sweeper's scan: undelivered rows by due time (sent/failed rows are not in it).
            models.Index(
                fields=["next_attempt_at"],
                name="notification_due_idx",
                condition=Q(status__in=["pending", "sending"]),
            ),
            models.Index(fields=["status", "channel"], name="notification_status_idx"),
            models.Index(
                fields=["webhook_endpoint"],
                name="notification_endpoint_idx",
                condition=Q(webhook_endpoint__isnull=False),
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["dedupe_key"], name="notification_dedupe_key_unique")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event} {self.channel} -> {self.recipient} ({self.status})"

    @property
    def message_id(self) -> str:
        """Stable per notification across retries: the provider's idempotency key and the email Message-ID."""
        return f"notification-{self.pk}"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"  # waiting for the SKU to come back
    NOTIFIED = "notified", "Notified"  # alerted for a restock; subscribing again re-activates
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"  # followed the signed link


class BackInStockSubscription(models.Model):
    """A shopper waiting for a SKU, anywhere (location null) or at one store."""

    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="+")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=20, blank=True)
    language = models.CharField(max_length=8, default="en")
    # sku:location-or-*:contact, unique: the same request finds the same subscription.
    scope_key = models.CharField(max_length=320, unique=True)
    status = models.CharField(
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    notified_by = models.ForeignKey(
        "RestockAlert", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(email="") & ~Q(phone="")) | (~Q(email="") & Q(phone="")),
                name="bis_email_xor_phone",
            )
        ]
        indexes = [
            # Earliest waiting subscribers of a SKU first.
            models.Index(
                fields=["sku", "location", "id"],
                name="bis_waiting_idx",
                condition=Q(status="active"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.email or self.phone} waits for {self.sku_id}@{self.location_id or '*'}"

    @property
    def channel(self) -> str:
        return DeliveryChannel.EMAIL if self.email else DeliveryChannel.SMS

    @property
    def contact(self) -> str:
        return self.email or self.phone


class RestockAlertStatus(models.TextChoices):
    SENDING = "sending", "Sending"  # the current wave is being queued in batches
    WAITING = "waiting", "Waiting for the next wave"  # wave done, subscribers left; next at next_wave_at
    DONE = "done", "Done"  # everyone alerted, or it sold out again before the next wave
    SUPERSEDED = "superseded", "Superseded"  # a newer restock of the same SKU and scope took over


class RestockAlert(models.Model):
    """A SKU came back at a scope (one location, or anywhere when location is null): who to alert."""

    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="+")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    available = models.PositiveIntegerField(help_text="Available at the scope when it came back")
    kind = models.CharField(max_length=20, help_text="The stock movement that caused it")
    status = models.CharField(
        max_length=16, choices=RestockAlertStatus.choices, default=RestockAlertStatus.SENDING
    )
    wave = models.PositiveIntegerField(default=1)
    wave_quota = models.PositiveIntegerField(help_text="Subscribers still to alert in this wave")
    alerted = models.PositiveIntegerField(default=0)
    # Subscribers who joined after the restock wait for the next one: alert ids <= this only.
    last_subscription_id = models.BigIntegerField(default=0)
    next_wave_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "next_wave_at"], name="restock_alert_due_idx")]

    def __str__(self) -> str:
        return f"Restock {self.pk} {self.sku_id}@{self.location_id or '*'} wave {self.wave} ({self.status})"


class WebhookStatus(models.TextChoices):
    ACTIVE = "active", "Active"  # receives deliveries
    PAUSED = "paused", "Paused"  # too many consecutive failures; resume from the admin


class WebhookEndpoint(models.Model):
    """A storefront URL subscribed to event types (`order.*`, `stock.back_in_stock`, ...)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=400)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=100, help_text="whsec_<base64>, shown once at registration")
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.ACTIVE)
    consecutive_failures = models.PositiveIntegerField(default=0)
    paused_at = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Webhook {self.pk} {self.url} ({self.status})"
