"""Refunds: money owed back to a customer, recorded once; the payment system moves it.

A `Refund` is written by `returns.services.refund_request` in the transaction of whatever causes
it (a cancelled order or fulfillment, a short pick nobody fills, an expired pickup; a received
return in the returns issue). Its lines say which order lines and how many units; each unit of an
order line is refunded at most once (`OrderLine.refunded_quantity`, docs/orders.md "Refunds").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from orders.models import Order, OrderLine


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
    RETURN_RECEIVED = "return_received", "Return received"  # the returns issue


class Refund(models.Model):
    """Money owed back on one order, in the order's currency; amounts computed from what was paid."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    # The return that caused it arrives with the returns issue (a nullable FK to its model).
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
