"""Input serializers check shape; output serializers (ModelSerializers) render the API's fields."""

from __future__ import annotations

from rest_framework import serializers

from config.api.serializers import InputSerializer

from ..models import Refund, RefundLine

# --- Input ---------------------------------------------------------------------------------------


class RefundCompleteIn(InputSerializer):
    reference = serializers.CharField(
        max_length=128, help_text="The payment system's reference for the money paid back"
    )


class RefundFailIn(InputSerializer):
    reason = serializers.CharField(max_length=255, help_text="Why the payment system could not pay it back")


# --- Output --------------------------------------------------------------------------------------


class RefundLineOut(serializers.ModelSerializer):
    sku = serializers.CharField(source="order_line.sku.code")
    unit_price = serializers.DecimalField(source="order_line.unit_price", max_digits=12, decimal_places=2)

    class Meta:
        model = RefundLine
        fields = ["sku", "quantity", "unit_price", "amount"]


class RefundOut(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number", help_text="The order's number")
    # "return" is a keyword: declared through the class namespace. The return that caused the
    # refund (its number): the returns issue fills it; null until then.
    locals()["return"] = serializers.SerializerMethodField(method_name="get_return")
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

    def get_return(self, refund) -> str | None:
        return None
