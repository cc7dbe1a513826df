"""Returns and refunds.

A `Return` is a customer's request to bring back units of one order (returns.services.
return_request), received once at a store or a warehouse (return_receive) or cancelled before that
(return_cancel); docs/returns.md has the rules. Its lines say which order lines, how many units,
why, and once received how many came back and in which condition.

Refunds: money owed back to a customer, recorded once; the payment system moves it.

A `Refund` is written by `returns.services.refund_request` in the transaction of whatever causes
it (a cancelled order or fulfillment, a short pick nobody fills, an expired pickup; a received
return in the returns issue). Its lines say which order lines and how many units; each unit of an
order line is refunded at most once (`OrderLine.refunded_quantity`, docs/orders.md "Refunds").
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from inventory.models import Sku
from orders.models import Customer, Note, Order, OrderLine
from stores.models import Location


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"  # written; the payment system has not reported back yet
    COMPLETED = "completed", "Completed"  # the payment system paid it back (its `reference`)
    FAILED = "failed", "Failed"  # the payment system could not pay it back (`failure_reason`)


class RefundCause(models.TextChoices):
    ORDER_CANCELLED = "order_cancelled", "Order cancelled"  # the whole order (what was left of it)
    FULFILLMENT_CANCELLED = "fulfillment_cancelled", "Fulfillment cancelled"  # one fulfillment's units
    SHORT_PICK = "short_pick", "Short pick nobody could fill"  # not on the shelf, not re-routable
    PICKUP_EXPIRED = "pickup_expired", "Pickup not collected in time"  # the pickup-expiry sweep
    PARTIAL_HANDOVER = "partial_handover", "Partial hand-over"  # the customer took fewer units
    SHORT_TRANSFER = "short_transfer", "Short transfer nobody could fill"  # ship to store: lost on the way
    RETURN_RECEIVED = "return_received", "Return received"  # a return's units came back (return_ref)
    # An exchange for something cheaper: the difference, no units (return_ref; no refund lines).
    EXCHANGE_DIFFERENCE = "exchange_difference", "Exchange for something cheaper"


class Refund(models.Model):
    """Money owed back on one order, in the order's currency; amounts computed from what was paid."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    # The return whose receipt caused it (cause return_received); null for every other cause.
    # ("return" is a Python keyword: the API shows it as "return", the return's number.)
    return_ref = models.ForeignKey(
        "Return",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refunds",
        db_index=False,  # indexed where set (Meta): most refunds have none
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=255, blank=True)
    cause = models.CharField(max_length=24, choices=RefundCause.choices)
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.REQUESTED)
    reference = models.CharField(max_length=128, blank=True, help_text="The payment system's reference")
    failure_reason = models.CharField(max_length=255, blank=True)
    # Who did it (audit): not indexed; deleting a user with history scans (deactivate instead).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="refund_amount_gte_0"),
            models.CheckConstraint(
                condition=~Q(status="completed") | ~Q(reference=""), name="refund_completed_has_reference"
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(failure_reason=""), name="refund_failed_has_reason"
            ),
        ]
        indexes = [
            # The payment system's queue: what is still owed, oldest first.
            models.Index(fields=["status", "created_at"], name="refund_status_created_idx"),
            models.Index(
                fields=["return_ref"], name="refund_return_idx", condition=Q(return_ref__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"R{self.pk} {self.amount} {self.currency} ({self.status})"


class RefundLine(models.Model):
    # No index of its own: refundline_one_per_line (refund, order_line) starts with it.
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines", db_index=False)
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["refund", "order_line"], name="refundline_one_per_line"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="refundline_quantity_gt_0"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="refundline_amount_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x line {self.order_line_id}"


# --- Returns -------------------------------------------------------------------------------------


def new_return_number() -> str:
    """ "R" and 9 characters of the order numbers' alphabet (45 bits): unguessable, like them."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "R" + "".join(secrets.choice(alphabet) for _ in range(9))


class ReturnStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"  # asked for; the goods have not come back yet
    RECEIVED = "received", "Received"  # taken back at a location (some lines may have come back short)
    CANCELLED = "cancelled", "Cancelled"  # withdrawn before anything was received


class ReturnMethod(models.TextChoices):
    IN_STORE = "in_store", "In store"  # brought to any store that accepts returns
    MAIL = "mail", "By mail"  # sent to a warehouse that accepts returns


class ReturnReason(models.TextChoices):
    WRONG_SIZE = "wrong_size", "Wrong size"
    NOT_AS_DESCRIBED = "not_as_described", "Not as described"
    DAMAGED = "damaged", "Arrived damaged"
    DEFECTIVE = "defective", "Defective"
    CHANGED_MIND = "changed_mind", "Changed my mind"
    OTHER = "other", "Other (see the text)"


class ReturnCondition(models.TextChoices):
    RESELLABLE = "resellable", "Resellable"  # back into the receiving location's stock at once
    DAMAGED = "damaged", "Damaged"  # written off (ledger: return_restock then damage, net zero)
    DEFECTIVE = "defective", "Defective"  # written off like damaged, kept apart for the supplier
    SEND_TO_WAREHOUSE = "send_to_warehouse", "Send to the warehouse"  # a transfer to the returns warehouse


class Return(models.Model):
    """A request to bring back units of one order; a small state machine (returns/transitions.py)."""

    number = models.CharField(max_length=16, default=new_return_number)  # unique: Meta
    # What the customer shows at the desk with the number (orders.services.codes); unique among
    # returns still expected (Meta), so it can find one on its own.
    code = models.CharField(max_length=12)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="returns")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="returns")
    status = models.CharField(max_length=16, choices=ReturnStatus.choices, default=ReturnStatus.REQUESTED)
    method = models.CharField(max_length=16, choices=ReturnMethod.choices)
    # Where it is expected: the store the customer chose (in store; null: any store that takes
    # returns), the warehouse it is mailed to (mail). Indexed where set (Meta).
    expected_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    received_at_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    note = models.CharField(max_length=500, blank=True)  # what the customer said when asking
    channel = models.CharField(max_length=16, blank=True)  # who asked: web, app, phone, store ...
    currency = models.CharField(max_length=3)
    # Requested: what the lines would refund if every unit came back; received: what was refunded
    # (the units' refund and, for an exchange for something cheaper, the difference).
    refund_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # Received with exchanges that cost more than what came back: what the customer owes (the
    # `return.payment_due` webhook asks the storefront or payment system to charge it).
    amount_due = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # Who did it (audit): not indexed; deleting a user with history scans (deactivate instead).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    received_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The transfer that carries its `send_to_warehouse` units to the returns warehouse, if any.
    transfer = models.ForeignKey(
        "inventory.Transfer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="return_number_unique"),
            models.UniqueConstraint(
                fields=["code"], condition=Q(status="requested"), name="return_open_code_unique"
            ),
            models.CheckConstraint(condition=Q(refund_amount__gte=0), name="return_refund_amount_gte_0"),
            models.CheckConstraint(condition=Q(amount_due__gte=0), name="return_amount_due_gte_0"),
            models.CheckConstraint(
                condition=~Q(status="received")
                | Q(received_at_location__isnull=False, received_at__isnull=False),
                name="return_received_has_location",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expected_location", "status"],
                name="return_expected_idx",
                condition=Q(expected_location__isnull=False),
            ),
            models.Index(
                fields=["received_at_location"],
                name="return_received_at_idx",
                condition=Q(received_at_location__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def qr(self) -> str:
        """The QR payload the customer shows: scanned at the desk it opens this return."""
        return f"OMSRET:{self.number}:{self.code}"


class DeskReturn(Return):
    """A return seen from a store's returns desk: the associates' Returns desk page
    (returns/admin_desk.py). The same rows as Return."""

    class Meta:
        proxy = True
        verbose_name = "return at the desk"
        verbose_name_plural = "Returns desk"


class ReturnLine(models.Model):
    # No index of its own: returnline_one_per_order_line (ret, order_line) starts with it.
    ret = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="lines", db_index=False)
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="return_lines")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()  # asked back
    reason = models.CharField(max_length=24, choices=ReturnReason.choices)
    reason_text = models.CharField(max_length=500, blank=True)
    # The customer would like this SKU instead: asked with the return, set or changed at the desk;
    # once received, what the received units were exchanged for (docs/returns.md, "Exchanges").
    exchange_for = models.ForeignKey(
        Sku, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # Received as an exchange: the new order holding the replacement (reserved at the receiving
    # store, or shipped), its unit price, and the difference per line (+ the customer owes it, -
    # it is refunded; the return nets them: Return.amount_due or an `exchange_difference` refund).
    exchange_order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exchange_for_lines",
        db_index=False,
    )
    exchange_unit_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    exchange_difference = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    received_quantity = models.PositiveIntegerField(default=0)
    condition = models.CharField(max_length=24, choices=ReturnCondition.choices, null=True, blank=True)
    # What these units were paid (returns.services.line_amounts): requested, then refunded.
    refund_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["ret", "order_line"], name="returnline_one_per_order_line"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="returnline_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(received_quantity__lte=models.F("quantity")), name="returnline_received_le_qty"
            ),
            models.CheckConstraint(
                condition=Q(received_quantity=0) | Q(condition__isnull=False),
                name="returnline_received_has_condition",
            ),
            models.CheckConstraint(condition=Q(refund_amount__gte=0), name="returnline_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(exchange_order__isnull=True)
                | Q(exchange_for__isnull=False, exchange_unit_price__gte=0, received_quantity__gt=0),
                name="returnline_exchange_complete",
            ),
        ]
        indexes = [
            # Which return an order replaces goods of (the order's page, the exchange's timeline).
            models.Index(
                fields=["exchange_order"],
                name="returnline_exchange_idx",
                condition=Q(exchange_order__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku_id}"


class ReturnNote(Note):
    """A note about a return (orders.models.Note): also a NOTE_ADDED event in the order's timeline."""

    # No index of its own: returnnote_return_idx (ret, id) starts with it.
    ret = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="notes", db_index=False)

    class Meta(Note.Meta):
        indexes = [models.Index(fields=["ret", "id"], name="returnnote_return_idx")]

    def __str__(self) -> str:
        return f"{self.ret_id} {self.channel}: {self.text[:40]}"
