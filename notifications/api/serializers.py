from rest_framework import serializers

from config.api.fields import EmailAddressField
from config.contacts import normalise_phone
from config.errors import InvalidInput

from ..models import BackInStockSubscription, WebhookEndpoint
from ..webhooks import WEBHOOK_EVENTS


class BackInStockInput(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    email = EmailAddressField(required=False)
    phone = serializers.CharField(max_length=24, required=False)
    location = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    language = serializers.ChoiceField(choices=["en", "ja", "ko"], required=False, default="en")

    def validate_phone(self, value: str) -> str:
        try:
            return normalise_phone(value, field="phone") or ""
        except InvalidInput:
            raise serializers.ValidationError(
                "Not a phone number: give it with its country code (+819012345678) or as a national "
                "number (090-1234-5678)."
            ) from None

    def validate(self, attrs):
        if bool(attrs.get("email")) == bool(attrs.get("phone")):
            raise serializers.ValidationError({"email": "Give either an email or a phone number (not both)."})
        return attrs


class BackInStockOutput(serializers.ModelSerializer):
    sku = serializers.CharField(source="sku.code")
    location = serializers.CharField(source="location.code", allow_null=True, default=None)
    unsubscribe_token = serializers.SerializerMethodField()

    class Meta:
        model = BackInStockSubscription
        fields = [
            "id",
            "sku",
            "location",
            "email",
            "phone",
            "language",
            "status",
            "created_at",
            "unsubscribe_token",
        ]

    def get_unsubscribe_token(self, obj) -> str:
        from ..services import back_in_stock_token

        return back_in_stock_token(obj)


class WebhookInput(serializers.Serializer):
    url = serializers.URLField(max_length=400)
    events = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=False, max_length=len(WEBHOOK_EVENTS) + 10
    )


class WebhookOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "status", "consecutive_failures", "created_at"]


class WebhookCreatedOutput(WebhookOutput):
    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret"]
