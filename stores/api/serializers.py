from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from inventory.api.fields import QuantityField
from inventory.models import StockLevel
from inventory.selectors import low_stock_threshold
from stores.models import Location, LocationKind

from .fields import NearField, RadiusField


class LocationListQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=LocationKind.choices, required=False, help_text="store or warehouse"
    )
    pickup = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: only locations offering pickup."
    )
    near = NearField(required=False, help_text="LAT,LNG: adds distance_km and orders nearest first.")
    radius_km = RadiusField(
        required=False, help_text="Only locations within this many km of `near` (needs `near`)."
    )
    sku = serializers.CharField(
        required=False, max_length=64, help_text="SKU code: adds `available` of that SKU to every location."
    )
    quantity = QuantityField(
        required=False,
        from_query=True,
        help_text="With `sku`: only locations that can give this many units now.",
    )

    def validate(self, attrs):
        if attrs.get("radius_km") is not None and attrs.get("near") is None:
            raise serializers.ValidationError({"radius_km": ["radius_km needs near=LAT,LNG."]})
        if attrs.get("quantity") is not None and not attrs.get("sku"):
            raise serializers.ValidationError({"quantity": ["quantity needs sku=CODE."]})
        return attrs


class LocationSerializer(serializers.ModelSerializer):
    """A location. Its fields are plain values (text, numbers, flags, the opening-hours object), so
    `to_representation` copies them directly: lists of up to 200 locations per page, where
    per-field serializer machinery costs ~20 us a location."""

    class Meta:
        model = Location
        fields = [
            "code",
            "name",
            "kind",
            "address",
            "city",
            "postal_code",
            "country",
            "latitude",
            "longitude",
            "timezone",
            "opening_hours",
            "phone",
            "ships_orders",
            "offers_pickup",
            "pickup_window_days",
            "pickup_reminder_days",
            "ship_to_store",
            "transit_days",
            "accepts_returns",
            "is_active",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "opening_hours": {
                "help_text": 'Per weekday ("mon".."sun"): ["HH:MM", "HH:MM"] opening and closing '
                "time in the location's timezone, or null when closed."
            }
        }

    def to_representation(self, location: Location) -> dict:
        return {name: getattr(location, name) for name in LocationSerializer.Meta.fields}


class LocationHitSerializer(LocationSerializer):
    """A location in a search result (a stores.selectors.LocationHit): the location's fields plus
    its distance and availability when asked for."""

    distance_km = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Great-circle km from `near`; null without `near`."
    )
    available = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Units of `sku` available now (on hand - reserved - held - safety stock, never "
        "below 0); null without `sku`.",
    )

    class Meta(LocationSerializer.Meta):
        fields = [*LocationSerializer.Meta.fields, "distance_km", "available"]
        read_only_fields = fields

    def to_representation(self, hit):
        data = LocationSerializer.to_representation(self, hit.location)
        data["distance_km"] = hit.distance_km
        data["available"] = hit.available
        return data


class LocationStockQuerySerializer(serializers.Serializer):
    sku = serializers.CharField(
        required=False,
        max_length=2000,
        # SKU codes are slugs: ASCII, so the longest list fits a request line (config/gunicorn.py).
        validators=[
            RegexValidator(
                r"^[-A-Za-z0-9_, ]*$", "Give SKU codes (letters, digits, - and _), comma-separated."
            )
        ],
        help_text="Comma-separated SKU codes (at most 100): only these.",
    )
    search = serializers.CharField(
        required=False, max_length=100, help_text="Part of the SKU code or name, or the exact barcode."
    )
    in_stock = serializers.BooleanField(required=False, default=False, help_text="Only SKUs available now.")

    def validate_sku(self, value: str) -> list[str]:
        codes = [c.strip() for c in value.split(",") if c.strip()]
        if not codes or len(codes) > 100:
            raise serializers.ValidationError("Give 1 to 100 comma-separated SKU codes.")
        return codes


class LocationStockSerializer(serializers.ModelSerializer):
    """A SKU's stock at the location (a StockLevel from inventory.selectors.location_stock, with `available`)."""

    sku = serializers.CharField(source="sku.code")
    name = serializers.CharField(source="sku.name")
    held = serializers.IntegerField(source="active_held", help_text="In active checkout holds.")
    available = serializers.IntegerField(help_text="on_hand - reserved - held - safety_stock, never below 0.")
    low_stock = serializers.SerializerMethodField(help_text="available <= the SKU's low-stock threshold.")

    class Meta:
        model = StockLevel
        fields = ["sku", "name", "on_hand", "reserved", "held", "safety_stock", "available", "low_stock"]
        read_only_fields = fields

    def get_low_stock(self, level: StockLevel) -> bool:
        return level.available <= low_stock_threshold(level.sku)
