"""Thin views: input serializer -> one service call -> output serializer."""

from __future__ import annotations

import datetime as dt
import functools
import uuid

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import IsStaff, IsStorefront, IsStorefrontOrStaff
from config.contacts import normalise_phone
from config.errors import InvalidInput, NotFound
from config.idempotency import ThenBeforeCommit, idempotent
from inventory.selectors import hold_get
from inventory.services import hold_extend, hold_release
from stores.models import Role
from stores.selectors import location_get, user_role

from .. import selectors, services
from ..models import (
    Channel,
    Fulfillment,
    FulfillmentMethod,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderStatus,
)
from . import serializers as s
from .schema import IDEMPOTENCY_KEY_REQUIRED, errors


class CanPlaceOrders(BasePermission):
    """The storefront for any customer; associates and managers at the till (endless aisle)."""

    message = "This needs one of the roles: storefront, associate, manager."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return IsStorefrontOrStaff().has_permission(request, view)
        return user.is_superuser or user_role(user) in (Role.STOREFRONT, Role.ASSOCIATE, Role.MANAGER)


class CanHold(BasePermission):
    """Checkout holds, every method: the storefront, associates and managers (not warehouse staff).
    Which holds: their own (inventory.selectors.holds_of)."""

    message = "This needs one of the roles: storefront, associate, manager."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_superuser or user_role(user) in (Role.STOREFRONT, Role.ASSOCIATE, Role.MANAGER)


def _show_code(user) -> bool:
    return user.is_superuser or user_role(user) == Role.STOREFRONT


def _fulfillment_in(data: dict) -> services.FulfillmentIn:
    return services.FulfillmentIn(
        method=data["method"], location=data.get("location") or None, address=data.get("address")
    )


class OrderFilter(django_filters.FilterSet):
    customer_email = django_filters.CharFilter(method="filter_email")
    customer_phone = django_filters.CharFilter(method="filter_phone")
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    method = django_filters.ChoiceFilter(field_name="fulfillment_method", choices=FulfillmentMethod.choices)

    class Meta:
        model = Order
        fields = ["status", "channel"]

    def filter_email(self, qs, name, value):
        return selectors.order_filter_contact(qs, user=self.request.user, email=value.strip().lower())

    def filter_phone(self, qs, name, value):
        try:
            phone = normalise_phone(value)
        except InvalidInput:
            return qs.none()
        return selectors.order_filter_contact(qs, user=self.request.user, phone=phone)


class OrderListCreateApi(generics.ListAPIView):
    permission_classes = [CanPlaceOrders]
    serializer_class = s.OrderOut
    filterset_class = OrderFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        return selectors.order_list(user=self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "show_pickup_code": _show_code(self.request.user)}

    @extend_schema(
        operation_id="orders_create",
        summary="Place an order from any channel",
        description=(
            "Routes the lines to locations, reserves the stock and records the order, its fulfillments and the "
            "routing decision in one transaction. Totals are computed by the server. With `hold`, the checkout "
            "hold becomes the order's reservations (its lines must be the order's lines). Storefront for any "
            "customer; associates and managers at the till (channel `store`, `placed_at`)."
        ),
        request=s.OrderCreateIn,
        parameters=[IDEMPOTENCY_KEY_REQUIRED],
        responses={201: s.OrderOut, **errors(400, 401, 403, 404, 409, 422)},
    )
    @idempotent(required=True)
    def post(self, request):
        data = s.OrderCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        placed = services.order_place(
            channel=v["channel"],
            customer=services.CustomerIn(**v["customer"]),
            fulfillment=_fulfillment_in(v["fulfillment"]),
            lines=[
                services.LineIn(
                    sku=ln["sku"],
                    quantity=ln["quantity"],
                    unit_price=ln["unit_price"],
                    currency=ln.get("currency"),
                )
                for ln in v["lines"]
            ],
            currency=v["currency"],
            hold_id=v.get("hold"),
            user=request.user,
            placed_at=v.get("placed_at") or None,
            reserve_at_store_later=True,
        )
        response = Response(
            s.order_created_body(placed, show_pickup_code=_show_code(request.user)), status=201
        )
        if placed.store_reservation is None:
            return response
        # The pickup reservation runs after the response is stored, just before COMMIT.
        return ThenBeforeCommit(
            response, functools.partial(services.order_reserve_at_store, reservation=placed.store_reservation)
        )


class OrderDetailApi(APIView):
    permission_classes = [IsStorefrontOrStaff]

    @extend_schema(operation_id="orders_retrieve", responses={200: s.OrderOut, **errors(401, 403, 404)})
    def get(self, request, number):
        order = selectors.order_get(number=number, user=request.user)
        return Response(s.OrderOut(order, context={"show_pickup_code": _show_code(request.user)}).data)


class OrderEventsApi(generics.ListAPIView):
    permission_classes = [IsStorefrontOrStaff]
    serializer_class = s.OrderEventOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return OrderEvent.objects.none()
        order = selectors.order_get(number=self.kwargs["number"], user=self.request.user)
        return selectors.order_events(order=order)


class OrderCancelApi(APIView):
    permission_classes = [IsStorefront]

    @extend_schema(
        operation_id="orders_cancel",
        summary="Cancel the order; what is still reserved is released",
        request=s.ReasonIn,
        responses={200: s.OrderOut, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, number):
        data = s.ReasonIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.order_cancel(
            number=number, user=request.user, reason=data.validated_data["reason"], channel="api"
        )
        order = selectors.order_get(number=number, user=request.user)
        return Response(s.OrderOut(order, context={"show_pickup_code": _show_code(request.user)}).data)


class OrderArrivedApi(APIView):
    permission_classes = [IsStorefrontOrStaff]

    @extend_schema(
        operation_id="orders_arrived",
        summary="Curbside: the customer is here",
        request=s.ArrivedIn,
        responses={200: s.OrderOut, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request, number):
        data = s.ArrivedIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.order_customer_arrived(
            number=number, note=data.validated_data["note"], user=request.user, channel="api"
        )
        order = selectors.order_get(number=number, user=request.user)
        return Response(s.OrderOut(order, context={"show_pickup_code": _show_code(request.user)}).data)


# --- Fulfillments -------------------------------------------------------------------------------


class FulfillmentFilter(django_filters.FilterSet):
    location = django_filters.CharFilter(field_name="location__code")
    status = django_filters.ChoiceFilter(choices=FulfillmentStatus.choices)
    method = django_filters.ChoiceFilter(choices=FulfillmentMethod.choices)

    class Meta:
        model = Fulfillment
        fields = ["status", "method"]


class FulfillmentListApi(generics.ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = s.StaffFulfillmentOut
    filterset_class = FulfillmentFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Fulfillment.objects.none()
        return selectors.fulfillment_list(user=self.request.user)


class FulfillmentDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="fulfillments_retrieve", responses={200: s.StaffFulfillmentOut, **errors(401, 403, 404)}
    )
    def get(self, request, pk):
        return Response(
            s.StaffFulfillmentOut(selectors.fulfillment_get(fulfillment_id=pk, user=request.user)).data
        )


class FulfillmentClaimApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="fulfillments_claim",
        summary="The next pending task of a location, to this worker only",
        request=s.ClaimIn,
        responses={200: s.StaffFulfillmentOut, 204: None, **errors(400, 401, 403, 404)},
    )
    def post(self, request):
        data = s.ClaimIn(data=request.data)
        data.is_valid(raise_exception=True)
        location = location_get(code=data.validated_data["location"])
        f = services.fulfillment_claim(location=location, user=request.user, channel="api")
        if f is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(
            s.StaffFulfillmentOut(selectors.fulfillment_get(fulfillment_id=f.pk, user=request.user)).data
        )


class _FulfillmentCommand(APIView):
    permission_classes = [IsStaff]
    input_serializer: type | None = None

    def run(self, request, pk, data):  # pragma: no cover - overridden
        raise NotImplementedError

    @extend_schema(
        request=None, responses={200: s.StaffFulfillmentOut, **errors(400, 401, 403, 404, 409, 422)}
    )
    def post(self, request, pk):
        data = {}
        if self.input_serializer is not None:
            ser = self.input_serializer(data=request.data)
            ser.is_valid(raise_exception=True)
            data = ser.validated_data
        selectors.fulfillment_get(fulfillment_id=pk, user=request.user)  # 404 outside the user's locations
        self.run(request, int(pk), data)
        return Response(
            s.StaffFulfillmentOut(selectors.fulfillment_get(fulfillment_id=pk, user=request.user)).data
        )


@extend_schema(request=s.PickIn)
class FulfillmentPickApi(_FulfillmentCommand):
    input_serializer = s.PickIn

    def run(self, request, pk, data):
        services.fulfillment_pick(
            fulfillment_id=pk,
            picks=[services.PickIn(sku=ln["sku"], quantity=ln["quantity"]) for ln in data["lines"]],
            user=request.user,
            channel="api",
        )


class FulfillmentPackApi(_FulfillmentCommand):
    def run(self, request, pk, data):
        services.fulfillment_pack(fulfillment_id=pk, user=request.user, channel="api")


@extend_schema(request=s.ShipIn)
class FulfillmentShipApi(_FulfillmentCommand):
    input_serializer = s.ShipIn

    def run(self, request, pk, data):
        services.fulfillment_ship(
            fulfillment_id=pk,
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
            user=request.user,
            channel="api",
        )


class FulfillmentReadyApi(_FulfillmentCommand):
    def run(self, request, pk, data):
        services.fulfillment_ready(fulfillment_id=pk, user=request.user, channel="api")


@extend_schema(request=s.CollectIn)
class FulfillmentCollectApi(_FulfillmentCommand):
    input_serializer = s.CollectIn

    def run(self, request, pk, data):
        services.fulfillment_collect(
            fulfillment_id=pk, pickup_code=data["pickup_code"], user=request.user, channel="api"
        )


@extend_schema(request=s.ReasonIn)
class FulfillmentCancelApi(_FulfillmentCommand):
    input_serializer = s.ReasonIn

    def run(self, request, pk, data):
        services.fulfillment_cancel(
            fulfillment_id=pk, user=request.user, reason=data["reason"], channel="api"
        )


# --- Checkout holds ------------------------------------------------------------------------------


def _hold_out(hold) -> dict:
    return {
        "id": str(hold.pk),
        "expires_at": hold.expires_at.isoformat().replace("+00:00", "Z"),
        "lines": hold.allocated,
    }


def _hold_lines(hold) -> list[dict]:
    return [
        {"sku": hl.sku.code, "location": hl.location.code, "quantity": hl.quantity}
        for hl in hold.lines.select_related("sku", "location").order_by("pk")
    ]


class HoldCreateApi(APIView):
    permission_classes = [CanHold]

    @extend_schema(
        operation_id="holds_create",
        summary="Hold the cart's stock during checkout",
        request=s.HoldCreateIn,
        responses={201: s.HoldOut, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request):
        data = s.HoldCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        hold = services.checkout_hold_create(
            lines=[services.LineIn(sku=ln["sku"], quantity=ln["quantity"]) for ln in v["lines"]],
            fulfillment=_fulfillment_in(v["fulfillment"]),
            user=request.user,
        )
        return Response(_hold_out(hold), status=status.HTTP_201_CREATED)


def _hold_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(
            "Unknown or expired hold.", code="unknown_hold", details={"hold": str(value)}
        ) from None


class HoldExtendApi(APIView):
    permission_classes = [CanHold]

    @extend_schema(
        operation_id="holds_extend",
        summary="Push a hold's expiry back (the creator's own hold; at most OMS HOLD_MAX_SECONDS from creation)",
        request=s.HoldExtendIn,
        responses={200: s.HoldOut, **errors(400, 401, 403, 404, 422)},
    )
    def post(self, request, hold_id):
        data = s.HoldExtendIn(data=request.data)
        data.is_valid(raise_exception=True)
        ttl = data.validated_data.get("ttl_seconds")
        hold = hold_extend(
            hold_id=_hold_id(hold_id), ttl=dt.timedelta(seconds=ttl) if ttl else None, user=request.user
        )
        hold.allocated = _hold_lines(hold)
        return Response(_hold_out(hold))


class HoldDetailApi(APIView):
    permission_classes = [CanHold]

    @extend_schema(operation_id="holds_retrieve", responses={200: s.HoldOut, **errors(401, 403, 404)})
    def get(self, request, hold_id):
        hold = hold_get(hold_id=_hold_id(hold_id), user=request.user)
        hold.allocated = _hold_lines(hold)
        return Response(_hold_out(hold))

    @extend_schema(operation_id="holds_release", responses={204: None, **errors(401, 403, 404)})
    def delete(self, request, hold_id):
        hold_release(hold_id=_hold_id(hold_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Customers -----------------------------------------------------------------------------------


class CustomerDetailApi(APIView):
    permission_classes = [IsStorefront]

    @extend_schema(operation_id="customers_retrieve", responses={200: s.CustomerOut, **errors(401, 403, 404)})
    def get(self, request, pk):
        customer = selectors.customer_get(customer_id=pk, user=request.user)
        orders = selectors.customer_orders(customer=customer, user=request.user)
        return Response(s.CustomerOut(customer, context={"orders": orders}).data)


class CustomerPreferencesApi(APIView):
    permission_classes = [IsStorefront]

    @extend_schema(
        operation_id="customers_preferences",
        request=s.PreferencesIn,
        responses={200: s.CustomerOut, **errors(400, 401, 403, 404, 422)},
    )
    def patch(self, request, pk):
        data = s.PreferencesIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        selectors.customer_get(customer_id=pk, user=request.user)
        services.customer_update_preferences(
            customer_id=int(pk),
            notify_channels=v.get("notify_channels"),
            language=v.get("language"),
            preferred_location=v.get("preferred_location"),
            clear_preferred_location="preferred_location" in v and v["preferred_location"] is None,
        )
        customer = selectors.customer_get(customer_id=pk, user=request.user)
        return Response(
            s.CustomerOut(
                customer, context={"orders": selectors.customer_orders(customer=customer, user=request.user)}
            ).data
        )
