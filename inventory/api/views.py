"""SKUs, availability for every channel, and the staff stock calls.

Each view: input serializer -> selectors / one service call -> output serializer. Errors are
raised (config.errors) and rendered by the one exception handler. Who may change stock at a
location is checked by the services (given `user`); the views check only what they read.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import IsStaff, IsStorefrontOrStaff
from config.idempotency import KEY_SCHEMA, idempotent
from inventory import services
from inventory.selectors import (
    availability_for_sku,
    cart_check,
    movement_list,
    movements_by_ids,
    sku_get,
    sku_list,
    skus_by_code,
    stock_levels_at,
    transfer_get,
    transfer_list,
)
from stores.selectors import (
    location_get,
    require_any_location_access,
    require_location_access,
    user_location_ids,
)

from .schema import READ_ERRORS, WRITE_ERRORS, errors
from .serializers import (
    AdjustmentInputSerializer,
    AvailabilityCheckInputSerializer,
    AvailabilityCheckSerializer,
    AvailabilityQuerySerializer,
    AvailabilitySerializer,
    ExplainQuerySerializer,
    MovementQuerySerializer,
    MovementSerializer,
    ReceiptInputSerializer,
    SafetyStockInputSerializer,
    SkuDetailSerializer,
    SkuListQuerySerializer,
    SkuSerializer,
    StockChangeSerializer,
    TransferInputSerializer,
    TransferQuerySerializer,
    TransferReceiveInputSerializer,
    TransferSerializer,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    KEY_SCHEMA,
    OpenApiParameter.HEADER,
    required=False,
    description="Optional. The same key with the same body replays the first response; with another "
    "body it is 422; while the first request is still running it is 409.",
)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _stock_change(*, location, reference: str, movements, sku_ids) -> dict:
    return {
        "location": location.code,
        "reference": reference,
        "movements": movements_by_ids(ids=[m.pk for m in movements]),
        "stock": stock_levels_at(location=location, sku_ids=sku_ids),
    }


# --- SKUs ----------------------------------------------------------------------------------


class SkuListApi(generics.ListAPIView):
    permission_classes = [IsStorefrontOrStaff]
    serializer_class = SkuSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="skus_list",
        summary="Active SKUs, by code; `search` matches code or name (part) or barcode (exact)",
        parameters=[SkuListQuerySerializer],
        responses={200: SkuSerializer(many=True), **errors(400, 401, 403)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        p = _valid(SkuListQuerySerializer, self.request.query_params)
        return sku_list(search=p.get("search"), category=p.get("category"))


class SkuDetailApi(APIView):
    permission_classes = [IsStorefrontOrStaff]

    @extend_schema(
        operation_id="skus_retrieve",
        summary="One SKU with its network availability summary",
        responses={200: SkuDetailSerializer, **errors(401, 403, 404)},
    )
    def get(self, request, code: str):
        sku = sku_get(code=code)
        result = availability_for_sku(sku=sku, limit=0)  # the totals only
        return Response(SkuDetailSerializer(sku, context={"availability": result}).data)


# --- Availability --------------------------------------------------------------------------


class AvailabilityApi(APIView):
    permission_classes = [IsStorefrontOrStaff]

    @extend_schema(
        operation_id="availability_retrieve",
        summary="Availability of one SKU across the network",
        description=(
            "`available` = on hand - reserved - held (active checkout holds) - safety stock per "
            "location, never below 0, summed over the locations that count: active, within "
            "`radius_km` of `near`, offering pickup with `pickup=true`, shipping with `ship=true`, of "
            "`kind`. `ship_available` is the part at locations that ship orders. `low_stock` is "
            "available <= the SKU's threshold (global default settings.OMS['LOW_STOCK_THRESHOLD']). "
            "`locations` lists the first `limit` (default 50, at most 500) of the locations that "
            "count, nearest first with `near`, else most available first; `locations_total` says how "
            "many count, and the totals cover all of them. With `explain=true` every location is "
            "listed (no `limit`) with its counters and `excluded` reasons."
        ),
        parameters=[AvailabilityQuerySerializer],
        responses={200: AvailabilitySerializer, **errors(*READ_ERRORS)},
    )
    def get(self, request, sku: str):
        p = _valid(AvailabilityQuerySerializer, request.query_params)
        result = availability_for_sku(
            sku=sku_get(code=sku),
            near=p.get("near"),
            radius_km=p.get("radius_km"),
            pickup_only=p["pickup"],
            ship_only=p["ship"],
            kind=p.get("kind"),
            explain=p["explain"],
            limit=p["limit"],
        )
        return Response(AvailabilitySerializer(result).data)


class AvailabilityCheckApi(APIView):
    permission_classes = [IsStorefrontOrStaff]

    @extend_schema(
        operation_id="availability_check",
        summary="Can this cart be fulfilled this way now, and from where?",
        description=(
            "Asks the order routing engine (orders.routing.route, read only: nothing is reserved) "
            "what placing this cart would allocate. pickup/curbside: only the chosen store counts "
            "(it must be active, offer pickup and have the stock). ship: active locations that ship "
            "orders, with stock, nearest the address's coordinates when given. Lines that cannot be "
            "filled list `alternatives`: the nearest locations that have some. Each SKU appears on "
            "one line (400 `duplicate_line`). With `?explain=true` the routing decision is included."
        ),
        request=AvailabilityCheckInputSerializer,
        parameters=[ExplainQuerySerializer],
        responses={200: AvailabilityCheckSerializer, **errors(*READ_ERRORS)},
    )
    def post(self, request):
        data = _valid(AvailabilityCheckInputSerializer, request.data)
        explain = _valid(ExplainQuerySerializer, request.query_params)["explain"]
        f = data["fulfillment"]
        skus = skus_by_code(codes=[ln["sku"] for ln in data["lines"]])
        address = f.get("address") or {}
        result = cart_check(
            lines=[(skus[ln["sku"]], ln["quantity"]) for ln in data["lines"]],
            method=f["method"],
            pickup_location=location_get(code=f["location"]) if f["method"] != "ship" else None,
            destination=(address["latitude"], address["longitude"])
            if address.get("latitude") is not None
            else None,
            explain=explain,
        )
        return Response(AvailabilityCheckSerializer(result).data)


# --- Stock (staff) -------------------------------------------------------------------------

_STAFF = "Staff only (associate, warehouse, manager), at the locations they are assigned to."


class StockReceiptApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="stock_receipts_create",
        summary="Goods arrived at a location: on hand goes up",
        description=f"{_STAFF} One ledger row (receipt) per line; all lines or none.",
        request=ReceiptInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: StockChangeSerializer, **errors(400, 401, 403, 404, 409, 422)},
    )
    @idempotent()
    def post(self, request):
        data = _valid(ReceiptInputSerializer, request.data)
        location = location_get(code=data["location"])
        skus = skus_by_code(codes=[ln["sku"] for ln in data["lines"]])
        movements = services.stock_receive(
            lines=[services.Line(location.pk, skus[ln["sku"]].pk, ln["quantity"]) for ln in data["lines"]],
            reference=data["reference"],
            reason=data["reason"],
            user=request.user,
        )
        body = _stock_change(
            location=location,
            reference=data["reference"],
            movements=movements,
            sku_ids=[s.pk for s in skus.values()],
        )
        return Response(StockChangeSerializer(body).data, status=status.HTTP_201_CREATED)


class StockAdjustmentApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="stock_adjustments_create",
        summary="Correct on hand: to a counted quantity (cycle count) or by a delta",
        description=(
            f"{_STAFF} Counting below what is reserved and held (or a delta taking on hand there) "
            "is 409 `stock_conflict`: those units are promised. A count equal to the books is "
            "recorded (a ledger row with no change)."
        ),
        request=AdjustmentInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: StockChangeSerializer, **errors(400, 401, 403, 404, 409, 422)},
    )
    @idempotent()
    def post(self, request):
        data = _valid(AdjustmentInputSerializer, request.data)
        location = location_get(code=data["location"])
        sku = sku_get(code=data["sku"])
        movements = services.stock_adjust(
            location=location,
            sku=sku,
            counted_quantity=data.get("counted_quantity"),
            delta=data.get("delta"),
            reason=data["reason"],
            reference=data["reference"],
            user=request.user,
        )
        body = _stock_change(
            location=location, reference=data["reference"], movements=movements, sku_ids=[sku.pk]
        )
        return Response(StockChangeSerializer(body).data, status=status.HTTP_201_CREATED)


class SafetyStockApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="stock_safety_set",
        summary="Set the safety stock of a SKU at a location (units never offered to customers)",
        description=f"{_STAFF} Setting the current value again writes nothing (`movements` is empty).",
        request=SafetyStockInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: StockChangeSerializer, **errors(400, 401, 403, 404, 409, 422)},
    )
    @idempotent()
    def put(self, request):
        data = _valid(SafetyStockInputSerializer, request.data)
        location = location_get(code=data["location"])
        sku = sku_get(code=data["sku"])
        movements = services.stock_set_safety_stock(
            location=location,
            sku=sku,
            safety_stock=data["safety_stock"],
            reason=data["reason"],
            user=request.user,
        )
        body = _stock_change(location=location, reference="", movements=movements, sku_ids=[sku.pk])
        return Response(StockChangeSerializer(body).data)

    @extend_schema(
        operation_id="stock_safety_set_post",
        summary="Same as PUT (for clients that only POST)",
        request=SafetyStockInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: StockChangeSerializer, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request):
        return self.put(request)


class TransferListCreateApi(generics.ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = TransferSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="stock_transfers_list",
        summary="Transfers from or to the user's locations, newest first",
        parameters=[TransferQuerySerializer],
        responses={200: TransferSerializer(many=True), **errors(*READ_ERRORS)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        p = _valid(TransferQuerySerializer, self.request.query_params)
        location = None
        if p.get("location"):
            location = location_get(code=p["location"])
            require_location_access(self.request.user, location)
        return transfer_list(
            location_ids=user_location_ids(self.request.user), location=location, status=p.get("status")
        )

    @extend_schema(
        operation_id="stock_transfers_create",
        summary="Send goods to another location: out of `from_location` now, in transit until received",
        description=(
            f"{_STAFF} The user must be assigned to `from_location`. More than available there "
            "(on hand - reserved - held - safety stock) is 409 `insufficient_stock` with the shortfall "
            "per line; nothing moves."
        ),
        request=TransferInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: TransferSerializer, **errors(*WRITE_ERRORS, 422)},
    )
    @idempotent()
    def post(self, request):
        data = _valid(TransferInputSerializer, request.data)
        source = location_get(code=data["from_location"])
        destination = location_get(code=data["to_location"])
        skus = skus_by_code(codes=[ln["sku"] for ln in data["lines"]])
        transfer = services.transfer_create(
            from_location=source,
            to_location=destination,
            lines=[(skus[ln["sku"]], ln["quantity"]) for ln in data["lines"]],
            reference=data["reference"],
            user=request.user,
        )
        return Response(
            TransferSerializer(transfer_get(transfer_id=transfer.pk)).data, status=status.HTTP_201_CREATED
        )


class TransferDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="stock_transfers_retrieve",
        summary="One transfer (staff at either end)",
        responses={200: TransferSerializer, **errors(401, 403, 404)},
    )
    def get(self, request, transfer_id: int):
        transfer = transfer_get(transfer_id=transfer_id)
        require_any_location_access(request.user, [transfer.from_location, transfer.to_location])
        return Response(TransferSerializer(transfer).data)


class TransferReceiveApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="stock_transfers_receive",
        summary="The transfer arrived: on hand goes up at the destination",
        description=(
            f"{_STAFF} Staff at the destination. Receiving twice is 409 `invalid_transition`. "
            "`lines` records a short arrival (units counted in per SKU, 0 to what was sent). Units a "
            "ship-to-store order waits for are counted in reserved for it (docs/orders.md)."
        ),
        request=TransferReceiveInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: TransferSerializer, **errors(400, 401, 403, 404, 409, 422)},
    )
    @idempotent()
    def post(self, request, transfer_id: int):
        transfer = transfer_get(transfer_id=transfer_id)
        data = _valid(TransferReceiveInputSerializer, request.data or {})
        received = {ln["sku"]: ln["quantity"] for ln in data["lines"]} if "lines" in data else None
        services.transfer_receive(transfer_id=transfer.pk, user=request.user, received=received)
        return Response(TransferSerializer(transfer_get(transfer_id=transfer.pk)).data)


class MovementListApi(generics.ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = MovementSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="stock_movements_list",
        summary="The stock ledger, newest first (rows of the user's locations only)",
        parameters=[MovementQuerySerializer],
        responses={200: MovementSerializer(many=True), **errors(*READ_ERRORS)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        p = _valid(MovementQuerySerializer, self.request.query_params)
        location = None
        if p.get("location"):
            location = location_get(code=p["location"])
            require_location_access(self.request.user, location)
        return movement_list(
            sku=sku_get(code=p["sku"]) if p.get("sku") else None,
            location=location,
            location_ids=user_location_ids(self.request.user),
            kind=p.get("kind"),
            reference=p.get("reference"),
        )
