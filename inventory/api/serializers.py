"""Input serializers (plain Serializers) and output serializers of the SKU, availability and stock API."""

from __future__ import annotations

from rest_framework import serializers

from config.errors import InvalidInput
from inventory.models import MovementKind, Sku, StockLevel, StockMovement, Transfer, TransferStatus
from inventory.selectors import AVAILABILITY_LIMIT, AVAILABILITY_MAX_LIMIT, low_stock_threshold
from orders.models import ORDER_METHOD_CHOICES
from stores.api.fields import NearField, RadiusField
from stores.models import LocationKind

from .fields import DeltaField, QuantityField

MAX_LINES = 500

# --- Input ----------------------------------------------------------------------------------


class LineInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64, help_text="SKU code.")
    quantity = QuantityField(help_text="Whole units, 1 to settings.OMS['MAX_LINE_QUANTITY'].")


class LinesField(serializers.ListSerializer):
    """1 to MAX_LINES lines, one per SKU: a repeated SKU is 400 `duplicate_line` (never merged silently)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("child", LineInputSerializer())
        kwargs.setdefault("allow_empty", False)
        kwargs.setdefault("max_length", MAX_LINES)
        super().__init__(*args, **kwargs)

    def validate(self, attrs):
        seen: set[str] = set()
        dupes = []
        for line in attrs:
            if line["sku"] in seen and line["sku"] not in dupes:
                dupes.append(line["sku"])
            seen.add(line["sku"])
        if dupes:
            raise InvalidInput(
                "Each SKU may appear on one line only; put the total quantity on one line.",
                code="duplicate_line",
                details={"field": self.field_name or "lines", "skus": dupes},
            )
        return attrs


class ReceiptInputSerializer(serializers.Serializer):
    location = serializers.CharField(max_length=32, help_text="Code of the receiving location.")
    lines = LinesField()
    reference = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", help_text="e.g. the purchase order."
    )
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class AdjustmentInputSerializer(serializers.Serializer):
    location = serializers.CharField(max_length=32)
    sku = serializers.CharField(max_length=64)
    counted_quantity = QuantityField(
        allow_zero=True, required=False, help_text="Cycle count: set on hand to this. Give this or delta."
    )
    delta = DeltaField(
        required=False,
        help_text="Change on hand by this (negative: lost or damaged; a reason starting with "
        "'damage' is recorded as damage). Give this or counted_quantity.",
    )
    reason = serializers.CharField(max_length=255, help_text="Required: why the books change.")
    reference = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def validate_reason(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A reason is required.")
        return value.strip()

    def validate(self, attrs):
        has_count, has_delta = attrs.get("counted_quantity") is not None, attrs.get("delta") is not None
        if has_count == has_delta:
            raise serializers.ValidationError(
                {"counted_quantity": ["Give exactly one of counted_quantity or delta."]}
            )
        return attrs


class TransferInputSerializer(serializers.Serializer):
    from_location = serializers.CharField(max_length=32, help_text="Code of the sending location.")
    to_location = serializers.CharField(max_length=32, help_text="Code of the receiving location.")
    lines = LinesField()
    reference = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if attrs["from_location"] == attrs["to_location"]:
            raise serializers.ValidationError({"to_location": ["A transfer needs two different locations."]})
        return attrs


class ReceivedLineInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64, help_text="SKU code.")
    quantity = QuantityField(allow_zero=True, help_text="Units counted in: 0 to what was sent.")


class TransferReceiveInputSerializer(serializers.Serializer):
    lines = LinesField(
        child=ReceivedLineInputSerializer(),
        required=False,
        help_text="A short arrival: units counted in per SKU (a SKU left out arrived in full). "
        "No body: everything arrived.",
    )


class SafetyStockInputSerializer(serializers.Serializer):
    location = serializers.CharField(max_length=32)
    sku = serializers.CharField(max_length=64)
    safety_stock = QuantityField(
        allow_zero=True, help_text="Units never offered to customers at this location."
    )
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class AddressInputSerializer(serializers.Serializer):
    line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True)
    latitude = serializers.FloatField(required=False, allow_null=True, min_value=-90, max_value=90)
    longitude = serializers.FloatField(required=False, allow_null=True, min_value=-180, max_value=180)

    def validate(self, attrs):
        lat, lng = attrs.get("latitude"), attrs.get("longitude")
        if (lat is None) != (lng is None):
            raise serializers.ValidationError({"latitude": ["Give both latitude and longitude, or neither."]})
        return attrs


class FulfillmentInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=ORDER_METHOD_CHOICES)
    location = serializers.CharField(
        max_length=32, required=False, allow_blank=True, help_text="pickup/curbside: the store's code."
    )
    address = AddressInputSerializer(required=False, help_text="ship: the destination.")

    def validate(self, attrs):
        if attrs["method"] in ("pickup", "curbside") and not attrs.get("location"):
            raise serializers.ValidationError({"location": [f"{attrs['method']} needs the store's code."]})
        return attrs


class AvailabilityCheckInputSerializer(serializers.Serializer):
    lines = LinesField()
    fulfillment = FulfillmentInputSerializer()


class AvailabilityQuerySerializer(serializers.Serializer):
    near = NearField(required=False, help_text="LAT,LNG: adds distance_km and orders nearest first.")
    radius_km = RadiusField(required=False, help_text="Only locations within this many km of `near`.")
    pickup = serializers.BooleanField(
        required=False, default=False, help_text="Only locations offering pickup."
    )
    ship = serializers.BooleanField(
        required=False, default=False, help_text="Only locations that ship orders."
    )
    kind = serializers.ChoiceField(choices=LocationKind.choices, required=False)
    explain = serializers.BooleanField(
        required=False,
        default=False,
        help_text="List every location with on_hand, reserved, held, safety_stock and why it was "
        "left out (`excluded`). `limit` does not apply.",
    )
    limit = serializers.IntegerField(
        required=False,
        default=AVAILABILITY_LIMIT,
        min_value=0,
        max_value=AVAILABILITY_MAX_LIMIT,
        help_text=f"List at most this many locations (default {AVAILABILITY_LIMIT}, at most "
        f"{AVAILABILITY_MAX_LIMIT}; 0: totals only). The totals always cover every location that "
        "counts; `locations_total` says how many there are.",
    )

    def validate(self, attrs):
        if attrs.get("radius_km") is not None and attrs.get("near") is None:
            raise serializers.ValidationError({"radius_km": ["radius_km needs near=LAT,LNG."]})
        return attrs


class ExplainQuerySerializer(serializers.Serializer):
    explain = serializers.BooleanField(
        required=False, default=False, help_text="Include the routing decision (reasons per location)."
    )


class SkuListQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False, max_length=100, help_text="Part of the code or name, or the exact barcode."
    )
    category = serializers.CharField(required=False, max_length=100)


class MovementQuerySerializer(serializers.Serializer):
    sku = serializers.CharField(required=False, max_length=64)
    location = serializers.CharField(required=False, max_length=32)
    kind = serializers.ChoiceField(choices=MovementKind.choices, required=False)
    reference = serializers.CharField(required=False, max_length=64)


class TransferQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TransferStatus.choices, required=False)
    location = serializers.CharField(
        required=False, max_length=32, help_text="Transfers from or to this location."
    )


# --- Output ---------------------------------------------------------------------------------


class SkuSerializer(serializers.ModelSerializer):
    low_stock_threshold = serializers.SerializerMethodField(
        help_text="Available at or below this is `low_stock` (the SKU's own, or the global default)."
    )

    class Meta:
        model = Sku
        fields = [
            "code",
            "name",
            "barcode",
            "category",
            "attributes",
            "returnable",
            "is_active",
            "low_stock_threshold",
        ]
        read_only_fields = fields

    def get_low_stock_threshold(self, sku: Sku) -> int:
        return low_stock_threshold(sku)


class AvailabilitySummarySerializer(serializers.Serializer):
    available = serializers.IntegerField(help_text="Units available now across the active network.")
    ship_available = serializers.IntegerField(help_text="Of which at locations that ship orders.")
    pickup_available = serializers.IntegerField(help_text="Of which at locations that offer pickup.")
    low_stock = serializers.BooleanField()
    locations_in_stock = serializers.IntegerField(help_text="Locations with at least one unit available.")


class SkuDetailSerializer(SkuSerializer):
    availability = serializers.SerializerMethodField()

    class Meta(SkuSerializer.Meta):
        fields = [*SkuSerializer.Meta.fields, "availability"]
        read_only_fields = fields

    def get_availability(self, sku: Sku) -> AvailabilitySummarySerializer:
        result = self.context["availability"]
        return {
            "available": result.available,
            "ship_available": result.ship_available,
            "pickup_available": result.pickup_available,
            "low_stock": result.low_stock,
            "locations_in_stock": result.locations_total,
        }


class AvailabilityLocationSerializer(serializers.Serializer):
    location = serializers.CharField(help_text="Location code.")
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=LocationKind.choices)
    available = serializers.IntegerField(help_text="on_hand - reserved - held - safety_stock, never below 0.")
    pickup = serializers.BooleanField(help_text="The location offers pickup and curbside.")
    ships = serializers.BooleanField(help_text="The location ships orders.")
    distance_km = serializers.FloatField(allow_null=True, help_text="From `near`; null without it.")
    on_hand = serializers.IntegerField(required=False, help_text="explain=true only.")
    reserved = serializers.IntegerField(required=False, help_text="explain=true only: promised to orders.")
    held = serializers.IntegerField(
        required=False, help_text="explain=true only: in active checkout holds (expired ones excluded)."
    )
    safety_stock = serializers.IntegerField(required=False, help_text="explain=true only.")
    excluded = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="explain=true only: why the location does not count (empty when it does): "
        '"inactive", "not a store"/"not a warehouse", "does not ship", "no pickup", "out of radius", '
        '"nothing available".',
    )


class AvailabilitySerializer(serializers.Serializer):
    """Network availability of one SKU (an inventory.selectors.SkuAvailability).

    `to_representation` passes the selector's plain rows through: this is the hottest read of
    the API, and per-field serializer machinery would cost more than the query. The declared
    fields describe the output for the schema.
    """

    sku = serializers.CharField()
    name = serializers.CharField()
    available = serializers.IntegerField(help_text="Units available at the locations that count.")
    ship_available = serializers.IntegerField(help_text="Of which at locations that ship orders.")
    in_stock = serializers.BooleanField(help_text="available > 0.")
    low_stock = serializers.BooleanField(
        help_text='available <= low_stock_threshold (also when 0): show "only N left" when in stock.'
    )
    low_stock_threshold = serializers.IntegerField()
    locations_total = serializers.IntegerField(
        help_text="How many locations count (available > 0 and matching the filters); the totals "
        "cover all of them, `locations` lists the first `limit`."
    )
    locations = AvailabilityLocationSerializer(
        many=True,
        help_text="The first `limit` (default 50) locations that count, nearest first with `near`, "
        "else most available first (ties by code). With explain=true every location, those left "
        "out last.",
    )

    def to_representation(self, result):
        available = result.available
        return {
            "sku": result.sku.code,
            "name": result.sku.name,
            "available": available,
            "ship_available": result.ship_available,
            "in_stock": available > 0,
            "low_stock": available <= result.low_stock_threshold,
            "low_stock_threshold": result.low_stock_threshold,
            "locations_total": result.locations_total,
            "locations": result.locations,  # output-ready rows from the selector
        }


class StockLevelSerializer(serializers.ModelSerializer):
    """A stock level read through `StockLevel.objects.with_available()` (inventory.selectors.stock_levels_at)."""

    sku = serializers.CharField(source="sku.code")
    location = serializers.CharField(source="location.code")
    held = serializers.IntegerField(
        help_text="In checkout holds, including expired ones not yet reclaimed (the counter)."
    )
    available = serializers.IntegerField(
        help_text="on_hand - reserved - held in live checkout holds - safety_stock, never below 0."
    )

    class Meta:
        model = StockLevel
        fields = ["sku", "location", "on_hand", "reserved", "held", "safety_stock", "available"]
        read_only_fields = fields


class MovementSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="sku.code")
    location = serializers.CharField(source="location.code")
    user = serializers.CharField(source="user.username", allow_null=True, default=None)

    class Meta:
        model = StockMovement
        fields = [
            "id",
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
            "created_at",
        ]
        read_only_fields = fields


class StockChangeSerializer(serializers.Serializer):
    """What a stock-changing staff call did: the ledger rows written and the stock levels after."""

    location = serializers.CharField()
    reference = serializers.CharField(allow_blank=True)
    movements = MovementSerializer(many=True)
    stock = StockLevelSerializer(many=True)


class TransferLineSerializer(serializers.Serializer):
    sku = serializers.CharField(source="sku.code")
    quantity = serializers.IntegerField(help_text="Units sent.")
    received_quantity = serializers.IntegerField(
        allow_null=True, help_text="Units counted in at the destination (null until received)."
    )


class TransferSerializer(serializers.ModelSerializer):
    from_location = serializers.CharField(source="from_location.code")
    to_location = serializers.CharField(source="to_location.code")
    lines = TransferLineSerializer(many=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = Transfer
        fields = [
            "id",
            "status",
            "from_location",
            "to_location",
            "reference",
            "lines",
            "created_by",
            "created_at",
            "received_at",
        ]
        read_only_fields = fields


class CheckLocationSerializer(serializers.Serializer):
    location = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Units this location would give.")
    distance_km = serializers.FloatField(allow_null=True)


class CheckAlternativeSerializer(serializers.Serializer):
    location = serializers.CharField()
    kind = serializers.ChoiceField(choices=LocationKind.choices)
    available = serializers.IntegerField()
    distance_km = serializers.FloatField(allow_null=True)
    offers_pickup = serializers.BooleanField()


class CheckLineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Requested.")
    fulfillable = serializers.BooleanField(help_text="The whole quantity can be fulfilled this way now.")
    shortfall = serializers.IntegerField(help_text="Units that cannot be fulfilled (0 when fulfillable).")
    locations = CheckLocationSerializer(many=True, help_text="Where it would come from.")
    alternatives = CheckAlternativeSerializer(
        many=True,
        required=False,
        help_text="Only when not fulfillable: nearest locations with some available (nearest the "
        "address or the chosen store).",
    )


class AvailabilityCheckSerializer(serializers.Serializer):
    fulfillable = serializers.BooleanField(help_text="Every line can be fulfilled.")
    method = serializers.CharField()
    locations = serializers.ListField(
        child=serializers.CharField(), help_text="The locations that would fulfil the cart (shipments)."
    )
    lines = CheckLineSerializer(many=True)
    routing = serializers.DictField(
        required=False, help_text="explain=true only: the routing decision (pipeline, reasons per location)."
    )
