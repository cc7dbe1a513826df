"""Input serializers check shape; output serializers (ModelSerializers) render the API's fields."""

from __future__ import annotations

from rest_framework import serializers

from config.api.serializers import InputSerializer
from inventory.api.fields import QuantityField
from orders.models import NoteChannel
from orders.services.codes import code_display

from ..models import (
    Refund,
    RefundLine,
    Return,
    ReturnCondition,
    ReturnLine,
    ReturnMethod,
    ReturnNote,
    ReturnReason,
)

# --- Input ---------------------------------------------------------------------------------------


class RefundCompleteIn(InputSerializer):
    reference = serializers.CharField(
        max_length=128, help_text="The payment system's reference for the money paid back"
    )


class RefundFailIn(InputSerializer):
    reason = serializers.CharField(max_length=255, help_text="Why the payment system could not pay it back")


class ReturnLineIn(InputSerializer):
    sku = serializers.CharField(max_length=64)
    quantity = QuantityField()
    reason = serializers.ChoiceField(choices=ReturnReason.choices)
    reason_text = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="Free text (required for `other`)",
    )
    exchange_for = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        default=None,
        help_text="A SKU wanted instead: on receipt the received units are exchanged for it",
    )


class ReturnCreateIn(InputSerializer):
    order = serializers.CharField(max_length=16, help_text="The order's number")
    email = serializers.CharField(
        max_length=254,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Proof: the order's email",
    )
    phone = serializers.CharField(
        max_length=32, required=False, allow_null=True, allow_blank=True, help_text="Proof: the order's phone"
    )
    receipt_code = serializers.CharField(
        max_length=32,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Proof: the receipt code on the order confirmation",
    )
    lines = ReturnLineIn(many=True, allow_empty=False, max_length=200)
    method = serializers.ChoiceField(choices=ReturnMethod.choices)
    location = serializers.CharField(
        max_length=32,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="In store: the store chosen (a desk: its store). Mail: the warehouse (default: the returns warehouse).",
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    channel = serializers.ChoiceField(
        choices=NoteChannel.choices,
        required=False,
        help_text="Who asks: web, app, phone, call_centre, chat, store, email (default web; store at a desk)",
    )


class ReturnCancelIn(InputSerializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class ReceiveLineIn(InputSerializer):
    sku = serializers.CharField(max_length=64)
    quantity = QuantityField()
    condition = serializers.ChoiceField(choices=ReturnCondition.choices)
    exchange_for = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="Exchange the received units for this SKU (reserved here, or shipped). Absent or null: "
        "what the customer asked with the return; empty: no exchange, refund them.",
    )
    exchange_unit_price = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        default=None,
        help_text="The replacement's unit price (default: what the returned units were paid); the "
        "difference is owed by the customer (amount_due) or refunded",
    )


class ReturnReceiveIn(InputSerializer):
    location = serializers.CharField(max_length=32, help_text="The store or warehouse taking it back")
    lines = ReceiveLineIn(many=True, allow_empty=False, max_length=200)


class ReturnNoteIn(InputSerializer):
    text = serializers.CharField(max_length=2000)
    channel = serializers.ChoiceField(choices=NoteChannel.choices)
    author_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


# --- Output --------------------------------------------------------------------------------------


class RefundLineOut(serializers.ModelSerializer):
    sku = serializers.CharField(source="order_line.sku.code")
    unit_price = serializers.DecimalField(source="order_line.unit_price", max_digits=12, decimal_places=2)

    class Meta:
        model = RefundLine
        fields = ["sku", "quantity", "unit_price", "amount"]


class RefundOut(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number", help_text="The order's number")
    # "return" is a keyword: declared through the class namespace. The number of the return whose
    # receipt caused the refund; null for other causes.
    locals()["return"] = serializers.CharField(source="return_ref.number", default=None, allow_null=True)
    lines = RefundLineOut(many=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "order",
            "return",
            "amount",
            "currency",
            "reason",
            "cause",
            "status",
            "reference",
            "failure_reason",
            "lines",
            "created_at",
            "updated_at",
            "completed_at",
        ]


class ReturnLineOut(serializers.ModelSerializer):
    sku = serializers.CharField(source="sku.code")
    name = serializers.CharField(source="sku.name")
    exchange_for = serializers.CharField(source="exchange_for.code", default=None, allow_null=True)
    received = serializers.IntegerField(source="received_quantity", help_text="Units taken back")
    exchange_order = serializers.CharField(
        source="exchange_order.number",
        default=None,
        allow_null=True,
        help_text="Received as an exchange: the number of the new order holding the replacement",
    )
    exchange_difference = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        allow_null=True,
        read_only=True,
        help_text="The exchange's price difference: positive, owed by the customer; negative, owed back",
    )

    class Meta:
        model = ReturnLine
        fields = [
            "sku",
            "name",
            "quantity",
            "reason",
            "reason_text",
            "exchange_for",
            "received",
            "condition",
            "refund_amount",
            "exchange_order",
            "exchange_unit_price",
            "exchange_difference",
        ]


class ReturnNoteOut(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, allow_null=True)

    class Meta:
        model = ReturnNote
        fields = ["id", "text", "channel", "author", "author_name", "created_at"]


class ReturnOut(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number", help_text="The order's number")
    code = serializers.SerializerMethodField(help_text="What the customer shows at the desk (ABCD-EFGH)")
    qr = serializers.CharField(read_only=True, help_text="The QR payload: OMSRET:<number>:<code>")
    location = serializers.CharField(
        source="expected_location.code", default=None, allow_null=True, help_text="Where it is expected"
    )
    received_at_location = serializers.CharField(
        source="received_at_location.code", default=None, allow_null=True
    )
    lines = ReturnLineOut(many=True)
    notes = ReturnNoteOut(many=True)
    refunds = serializers.SerializerMethodField()
    transfer = serializers.IntegerField(source="transfer_id", default=None, allow_null=True)
    exchange_orders = serializers.SerializerMethodField(
        help_text="The new orders holding the replacements of exchanged lines (their numbers)"
    )

    class Meta:
        model = Return
        fields = [
            "number",
            "code",
            "qr",
            "order",
            "status",
            "method",
            "location",
            "received_at_location",
            "refund_amount",
            "amount_due",
            "currency",
            "note",
            "channel",
            "lines",
            "notes",
            "refunds",
            "exchange_orders",
            "transfer",
            "created_at",
            "received_at",
            "cancelled_at",
        ]

    def get_code(self, ret) -> str:
        return code_display(ret.code)

    def get_refunds(self, ret) -> list[int]:
        return [r.pk for r in ret.refunds.all()]

    def get_exchange_orders(self, ret) -> list[str]:
        return list(
            dict.fromkeys(
                ln.exchange_order.number for ln in ret.lines.all() if ln.exchange_order_id is not None
            )
        )


class ReturnBriefOut(serializers.ModelSerializer):
    """A return in a customer's page: no lines."""

    order = serializers.CharField(source="order.number")
    location = serializers.CharField(source="expected_location.code", default=None, allow_null=True)
    received_at_location = serializers.CharField(
        source="received_at_location.code", default=None, allow_null=True
    )

    class Meta:
        model = Return
        fields = [
            "number",
            "order",
            "status",
            "method",
            "location",
            "received_at_location",
            "refund_amount",
            "currency",
            "created_at",
        ]
