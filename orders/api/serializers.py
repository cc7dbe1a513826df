"""Input serializers check shape; output serializers (ModelSerializers) render the API's fields."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.fields import EmailTextField
from config.api.serializers import InputSerializer
from inventory.api.fields import QuantityField

if TYPE_CHECKING:
    from ..services import PlacedOrder

from returns.api.serializers import ReturnBriefOut  # the customer page lists returns

from ..models import (
    ORDER_METHOD_CHOICES,
    Channel,
    Customer,
    Fulfillment,
    FulfillmentLine,
    NoteChannel,
    Order,
    OrderEvent,
    OrderLine,
    OrderNote,
)

# --- Input ---------------------------------------------------------------------------------------


class CustomerIn(InputSerializer):
    email = EmailTextField(required=False, allow_null=True, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class FulfillmentIn(InputSerializer):
    method = serializers.ChoiceField(choices=ORDER_METHOD_CHOICES)
    location = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    address = serializers.DictField(required=False, allow_null=True)
    ship_to_store = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Pickup and curbside, when the store is short. Absent or null: the missing units "
        "come from a warehouse if the store allows ship to store (the order is then "
        "`in_transit_to_store` with `ready_by`). true: required (422 `ship_to_store_not_offered` at a "
        "store that does not allow it). false: only the store's own stock (409 when short).",
    )


_PLAIN_DECIMAL = re.compile(r"\d{1,12}(\.\d{1,12})?")


class PriceField(serializers.DecimalField):
    """An amount: a JSON number, or a string of digits with an optional decimal part ("1980",
    "19.80"). Python's Decimal also reads "1_000", "1e3" or "Infinity"; a price never looks so."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, str) and not _PLAIN_DECIMAL.fullmatch(data.strip())):
            self.fail("invalid")
        return super().to_internal_value(data)


class LineIn(InputSerializer):
    sku = serializers.CharField(max_length=64)
    quantity = QuantityField()  # a JSON integer, as on the stock endpoints


class PricedLineIn(LineIn):
    unit_price = PriceField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, required=False)


class OrderCreateIn(InputSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    customer = CustomerIn()
    fulfillment = FulfillmentIn()
    lines = serializers.ListField(child=PricedLineIn(), allow_empty=False, max_length=200)
    currency = serializers.CharField(max_length=8)
    hold = serializers.UUIDField(required=False, allow_null=True)
    placed_at = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    # What the customer wants the store to know (shown on the order and to the store's staff).
    note = serializers.CharField(max_length=500, required=False, allow_null=True, allow_blank=True)


class HoldCreateIn(serializers.Serializer):
    lines = serializers.ListField(child=LineIn(), allow_empty=False, max_length=200)
    fulfillment = FulfillmentIn()


class HoldExtendIn(serializers.Serializer):
    # The upper bound only keeps the number a duration; the service enforces OMS["HOLD_MAX_TTL"]
    # and the hold's whole lifetime, OMS["HOLD_MAX_SECONDS"] from its creation.
    ttl_seconds = serializers.IntegerField(required=False, min_value=1, max_value=10**8)


class PickLineIn(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = QuantityField(allow_zero=True)


class PickIn(serializers.Serializer):
    lines = serializers.ListField(child=PickLineIn(), required=False, default=list, max_length=200)


class ShipIn(serializers.Serializer):
    carrier = serializers.CharField(max_length=64)
    tracking_number = serializers.CharField(max_length=64)


class TakenLineIn(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = QuantityField(allow_zero=True)


class CollectIn(serializers.Serializer):
    # As typed: case, spaces and hyphens do not matter (orders.services.codes.code_normalise).
    pickup_code = serializers.CharField(max_length=32)
    lines = serializers.ListField(
        child=TakenLineIn(),
        required=False,
        max_length=200,
        help_text=(
            "Only for a partial hand-over: what the customer took. A SKU of the fulfillment left out was "
            "not taken; the units not taken are released, cancelled and refunded."
        ),
    )


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class OrderNoteIn(serializers.Serializer):
    text = serializers.CharField(max_length=2000)
    channel = serializers.ChoiceField(choices=NoteChannel.choices)
    # Who wrote it, when the account is shared (the storefront's help desk): an agent's name.
    author_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class ExtendIn(serializers.Serializer):
    # The upper bound only keeps the number small; the service enforces OMS_PICKUP_EXTENSION_MAX_DAYS.
    days = serializers.IntegerField(min_value=1, max_value=365)
    reason = serializers.CharField(max_length=255)


class ArrivedIn(serializers.Serializer):
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class ClaimIn(serializers.Serializer):
    location = serializers.CharField(max_length=32)


class LockerLoadIn(serializers.Serializer):
    locker = serializers.CharField(max_length=32, help_text="The locker bank's code, e.g. SBY-L1.")
    compartment = serializers.CharField(max_length=8, help_text="The compartment's label, e.g. A3.")


class LockerOpenIn(serializers.Serializer):
    # As typed: case, spaces and hyphens do not matter (orders.services.codes.code_normalise).
    pickup_code = serializers.CharField(max_length=32)
    compartment = serializers.CharField(
        max_length=8,
        required=False,
        allow_blank=True,
        help_text=(
            "The compartment the customer chose, when the controller asks for it: wrong codes are then "
            "counted (and locked after 5) per compartment, not on the locker's keypad."
        ),
    )


class PreferencesIn(serializers.Serializer):
    notify_channels = serializers.ListField(
        child=serializers.CharField(max_length=16), required=False, max_length=5
    )
    language = serializers.CharField(max_length=8, required=False)
    preferred_location = serializers.CharField(max_length=32, required=False, allow_null=True)


# --- Output --------------------------------------------------------------------------------------


class OrderContactOut(serializers.ModelSerializer):
    """An order's `customer`: the customer's id and the contact as given on that order, never the
    stored customer's other details (a till order placed with a phone shows only that phone)."""

    id = serializers.IntegerField(source="customer_id")
    email = serializers.EmailField(source="contact_email", allow_null=True)
    phone = serializers.CharField(source="contact_phone", allow_null=True)
    name = serializers.CharField(source="contact_name")

    class Meta:
        model = Order
        fields = ["id", "email", "phone", "name"]


class OrderLineOut(serializers.ModelSerializer):
    sku = serializers.CharField(source="sku.code")

    class Meta:
        model = OrderLine
        fields = ["sku", "quantity", "cancelled_quantity", "unit_price", "line_total"]


class FulfillmentLineOut(serializers.ModelSerializer):
    sku = serializers.CharField(source="sku.code")

    class Meta:
        model = FulfillmentLine
        fields = ["sku", "quantity", "picked_quantity", "incoming_quantity"]
        extra_kwargs = {
            "incoming_quantity": {"help_text": "Ship to store: units on their way from a warehouse."}
        }


class TransferBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="in_transit or received")


class FulfillmentOut(serializers.ModelSerializer):
    location = serializers.CharField(source="location.code")
    lines = FulfillmentLineOut(many=True)
    locker = serializers.CharField(
        source="compartment.pickup_point.code",
        default=None,
        allow_null=True,
        help_text="The locker it waits in (or was collected from); null at the counter.",
    )
    compartment = serializers.CharField(source="compartment.label", default=None, allow_null=True)
    supplies = serializers.IntegerField(
        source="supplies_id",
        allow_null=True,
        help_text="A warehouse's `to_store` fulfillment: the pickup fulfillment it sends the goods to.",
    )
    transfer = TransferBriefOut(
        allow_null=True, help_text="A `to_store` fulfillment once shipped: the transfer carrying the goods."
    )

    class Meta:
        model = Fulfillment
        fields = [
            "id",
            "location",
            "method",
            "status",
            "lines",
            "carrier",
            "tracking_number",
            "customer_arrived_at",
            "arrival_note",
            "created_at",
            "shipped_at",
            "ready_at",
            "collected_at",
            "pickup_expires_at",
            "pickup_extended_at",
            "locker",
            "compartment",
            "ready_by",
            "supplies",
            "transfer",
        ]
        extra_kwargs = {
            "ready_by": {
                "help_text": "Ship to store: the day the pickup was promised ready (store calendar)."
            }
        }


class FulfillmentWithCodeOut(FulfillmentOut):
    """For the storefront, which shows the customer the pickup code."""

    class Meta(FulfillmentOut.Meta):
        fields = [*FulfillmentOut.Meta.fields, "pickup_code"]


class StaffFulfillmentOut(FulfillmentOut):
    order = serializers.CharField(source="order.number")
    claimed_by = serializers.CharField(source="claimed_by.username", default=None, allow_null=True)
    order_note = serializers.CharField(
        source="order.customer_note", help_text="What the customer asked the store to know."
    )

    class Meta(FulfillmentOut.Meta):
        # Never the pickup code itself: staff type what the customer shows.
        fields = [
            *FulfillmentOut.Meta.fields,
            "order",
            "order_note",
            "claimed_by",
            "claimed_at",
            "pickup_code_attempts",
            "pickup_reminded_at",
        ]


class OrderNoteOut(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, allow_null=True)

    class Meta:
        model = OrderNote
        fields = ["id", "text", "channel", "author", "author_name", "created_at"]


class OrderOut(serializers.ModelSerializer):
    customer = OrderContactOut(source="*")
    note = serializers.CharField(source="customer_note", help_text="The customer's note, as placed.")
    notes = OrderNoteOut(many=True, help_text="Notes by the help desk, the call centre and the store.")
    lines = OrderLineOut(many=True)
    fulfillments = serializers.SerializerMethodField()
    pickup_location = serializers.CharField(source="pickup_location.code", default=None, allow_null=True)
    placed_at_location = serializers.CharField(
        source="placed_at_location.code", default=None, allow_null=True
    )
    ready_by = serializers.SerializerMethodField(
        help_text="Ship to store: the day the pickup was promised ready (null otherwise)."
    )

    class Meta:
        model = Order
        fields = [
            "number",
            "status",
            "channel",
            "customer",
            "currency",
            "subtotal",
            "total",
            "fulfillment_method",
            "pickup_location",
            "ship_address",
            "placed_at_location",
            "note",
            "lines",
            "fulfillments",
            "notes",
            "ready_by",
            "created_at",
        ]

    @extend_schema_field(serializers.DateField(allow_null=True))
    def get_ready_by(self, order):
        return order_ready_by(f.ready_by for f in order.fulfillments.all() if f.status != "cancelled")

    @extend_schema_field(FulfillmentWithCodeOut(many=True))
    def get_fulfillments(self, order):
        cls = FulfillmentWithCodeOut if self.context.get("show_pickup_code") else FulfillmentOut
        return cls(order.fulfillments.all(), many=True).data


_MONEY = serializers.DecimalField(max_digits=14, decimal_places=2)


def order_ready_by(days) -> str | None:
    """The order's `ready_by`: the latest promised day of its live fulfillments, ISO, or None."""
    promised = [d for d in days if d is not None]
    return max(promised).isoformat() if promised else None


def _when(value, tz):
    """What DRF's DateTimeField renders (ISO 8601 in the current time zone, UTC as "Z")."""
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def order_created_body(placed: PlacedOrder, *, show_pickup_code: bool) -> dict:
    """`OrderOut(order).data` for the order `order_place` just placed, built straight from the rows
    it wrote (no re-read, no serializer instances: a tenth of a placement's CPU, flash-sale "What
    it took"). Same keys, same formats; tests/orders/test_placement_paths.py holds the two equal."""
    tz = timezone.get_current_timezone()
    order = placed.order
    fulfillments = []
    for f, f_lines in placed.fulfillments:
        out = {
            "id": f.pk,
            "location": f.location.code,
            "method": f.method,
            "status": f.status,
            "lines": [
                {
                    "sku": fl.sku.code,
                    "quantity": fl.quantity,
                    "picked_quantity": fl.picked_quantity,
                    "incoming_quantity": fl.incoming_quantity,
                }
                for fl in f_lines
            ],
            "carrier": f.carrier,
            "tracking_number": f.tracking_number,
            "customer_arrived_at": _when(f.customer_arrived_at, tz),
            "arrival_note": f.arrival_note,
            "created_at": _when(f.created_at, tz),
            "shipped_at": _when(f.shipped_at, tz),
            "ready_at": _when(f.ready_at, tz),
            "collected_at": _when(f.collected_at, tz),
            "pickup_expires_at": _when(f.pickup_expires_at, tz),
            "pickup_extended_at": _when(f.pickup_extended_at, tz),
            "locker": None,  # a new order is in no locker
            "compartment": None,
            "ready_by": f.ready_by.isoformat() if f.ready_by else None,
            "supplies": f.supplies_id,
            "transfer": None,  # none yet: a warehouse ships later
        }
        if show_pickup_code:
            out["pickup_code"] = f.pickup_code
        fulfillments.append(out)
    return {
        "number": order.number,
        "status": order.status,
        "channel": order.channel,
        "customer": {
            "id": order.customer_id,
            "email": order.contact_email,
            "phone": order.contact_phone,
            "name": order.contact_name,
        },
        "currency": order.currency,
        "subtotal": _MONEY.to_representation(order.subtotal),
        "total": _MONEY.to_representation(order.total),
        "fulfillment_method": order.fulfillment_method,
        "pickup_location": order.pickup_location.code if order.pickup_location_id else None,
        "ship_address": order.ship_address,
        "placed_at_location": order.placed_at_location.code if order.placed_at_location_id else None,
        "note": order.customer_note,
        "lines": [
            {
                "sku": ln.sku.code,
                "quantity": ln.quantity,
                "cancelled_quantity": ln.cancelled_quantity,
                "unit_price": _MONEY.to_representation(ln.unit_price),
                "line_total": _MONEY.to_representation(ln.line_total),
            }
            for ln in placed.lines
        ],
        "fulfillments": fulfillments,
        "notes": [],
        "ready_by": order_ready_by(f.ready_by for f, _ in placed.fulfillments),
        "created_at": _when(order.created_at, tz),
    }


class OrderEventOut(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor.username",
        default=None,
        allow_null=True,
        help_text="Who did it; null for the system (beat tasks) and for events written without a user.",
    )
    fulfillment = serializers.IntegerField(source="fulfillment_id", default=None, allow_null=True)

    class Meta:
        model = OrderEvent
        fields = [
            "id",
            "type",
            "fulfillment",
            "from_status",
            "to_status",
            "actor",
            "channel",
            "reason",
            "data",
            "created_at",
        ]


class OrderBriefOut(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["number", "status", "channel", "currency", "total", "fulfillment_method", "created_at"]


class CustomerOut(serializers.ModelSerializer):
    preferred_location = serializers.SerializerMethodField()
    orders = serializers.SerializerMethodField()
    returns = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "email",
            "phone",
            "name",
            "language",
            "notify_channels",
            "preferred_location",
            "orders",
            "returns",
            "created_at",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"code": {"type": "string"}, "name": {"type": "string"}},
        }
    )
    def get_preferred_location(self, c):
        loc = c.preferred_location
        return {"code": loc.code, "name": loc.name} if loc else None

    @extend_schema_field(OrderBriefOut(many=True))
    def get_orders(self, c):
        return OrderBriefOut(self.context.get("orders", []), many=True).data

    @extend_schema_field(ReturnBriefOut(many=True))
    def get_returns(self, c):
        return ReturnBriefOut(self.context.get("returns", []), many=True).data


class HoldLineOut(serializers.Serializer):
    sku = serializers.CharField()
    location = serializers.CharField()
    quantity = serializers.IntegerField()


class HoldOut(serializers.Serializer):
    """Documentation of the hold response ({"id", "expires_at", "lines"})."""

    id = serializers.UUIDField()
    expires_at = serializers.DateTimeField()
    lines = HoldLineOut(many=True)


# --- Lockers -------------------------------------------------------------------------------------


class LockerOpenOut(serializers.Serializer):
    locker = serializers.CharField(source="locker.code")
    compartment = serializers.CharField(source="compartment.label", help_text="The door to open.")
    fulfillment = serializers.IntegerField(source="fulfillment.pk")
    status = serializers.CharField(source="fulfillment.status", help_text="`collected`.")


class CompartmentOut(serializers.Serializer):
    label = serializers.CharField(source="compartment.label")
    size = serializers.CharField(source="compartment.size")
    state = serializers.ChoiceField(
        choices=["free", "occupied", "locked", "unload", "out_of_service"],
        help_text=(
            "free: an order may be loaded; occupied: an order waits; locked: too many wrong codes (issue a new "
            "code); unload: its window ended or it was cancelled, take it out; out_of_service."
        ),
    )
    fulfillment = serializers.IntegerField(source="fulfillment.pk", default=None, allow_null=True)
    order = serializers.CharField(source="fulfillment.order.number", default=None, allow_null=True)
    pickup_expires_at = serializers.DateTimeField(
        source="fulfillment.pickup_expires_at", default=None, allow_null=True
    )


class LockerOut(serializers.Serializer):
    code = serializers.CharField(source="locker.code")
    name = serializers.CharField(source="locker.name")
    kind = serializers.CharField(source="locker.kind")
    store = serializers.CharField(source="locker.store.code")
    directions = serializers.CharField(source="locker.directions")
    is_active = serializers.BooleanField(source="locker.is_active")
    free = serializers.SerializerMethodField()
    compartments = CompartmentOut(many=True)

    def get_free(self, view) -> int:
        return view.count("free")
