"""Thin views: input serializer -> one service call -> output serializer."""

from __future__ import annotations

import datetime as dt
import functools
import uuid

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import IsStaff, IsStorefront, IsStorefrontOrStaff
from config.api.throttling import CustomerLookupThrottle, CustomerSearchThrottle
from config.contacts import normalise_email, normalise_phone
from config.errors import InvalidInput, NotFound
from config.idempotency import ThenBeforeCommit, idempotent
from inventory.selectors import hold_get
from inventory.services import hold_extend, hold_release
from stores.models import PickupPoint, Role
from stores.selectors import location_get, user_role

from .. import selectors, services
from ..models import (
    ORDER_METHOD_CHOICES,
    Channel,
    Fulfillment,
    FulfillmentMethod,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderNote,
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


class IsStoreStaff(BasePermission):
    """Store work that is not the warehouse's: associates and managers (at their stores: services)."""

    message = "This needs one of the roles: associate, manager."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_superuser or user_role(user) in (Role.ASSOCIATE, Role.MANAGER)


class IsLockerController(BasePermission):
    """A locker's controller (role locker, a device; at its stores: the service) and superusers."""

    message = "This needs the role: locker."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_superuser or user_role(user) == Role.LOCKER


def _show_code(user) -> bool:
    """Only the storefront, which tells the customer; never staff, superusers included (whoever
    hands the goods over must be shown the code, not read it: docs/security.md)."""
    return not user.is_superuser and user_role(user) == Role.STOREFRONT


def _fulfillment_in(data: dict) -> services.FulfillmentIn:
    return services.FulfillmentIn(
        method=data["method"],
        location=data.get("location") or None,
        address=data.get("address"),
        ship_to_store=data.get("ship_to_store"),
    )


class OrderFilter(django_filters.FilterSet):
    customer_email = django_filters.CharFilter(method="filter_email")
    customer_phone = django_filters.CharFilter(method="filter_phone")
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    method = django_filters.ChoiceFilter(field_name="fulfillment_method", choices=ORDER_METHOD_CHOICES)

    class Meta:
        model = Order
        fields = ["status", "channel"]

    @extend_schema_field(OpenApiTypes.EMAIL)
    def filter_email(self, qs, name, value):
        # Normalised as placement stored it (an IDN domain in its ASCII form); a bad address is a 400.
        email = normalise_email(value, field="customer_email")
        return selectors.order_filter_contact(qs, user=self.request.user, email=email) if email else qs

    def filter_phone(self, qs, name, value):
        try:
            phone = normalise_phone(value)
        except InvalidInput:
            return qs.none()
        return selectors.order_filter_contact(qs, user=self.request.user, phone=phone)


class OrderListCreateApi(generics.ListAPIView):
    permission_classes = [CanPlaceOrders]
    throttle_classes = [CustomerSearchThrottle]  # only GET with customer_email/customer_phone
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
            note=v.get("note") or "",
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


class OrderNotesApi(generics.ListAPIView):
    """Notes about an order: the help desk and the call centre (through the storefront, for the
    customers it serves) and the staff of the order's locations (docs/security.md)."""

    permission_classes = [IsStorefrontOrStaff]
    serializer_class = s.OrderNoteOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return OrderNote.objects.none()
        order = selectors.order_get(number=self.kwargs["number"], user=self.request.user)
        return selectors.order_notes(order=order)

    @extend_schema(
        operation_id="orders_notes_create",
        summary="Add a note to the order (what the customer said, and where)",
        description=(
            "`text` (1-2000 characters), `channel` (web, app, phone, call_centre, chat, store, email), optional "
            "`author_name` (the person, when the account is shared). Listed on the order (`notes`) and in its "
            "timeline (`note_added`)."
        ),
        request=s.OrderNoteIn,
        responses={201: s.OrderNoteOut, **errors(400, 401, 403, 404)},
    )
    def post(self, request, number):
        data = s.OrderNoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        note = services.order_note_add(
            number=number,
            text=v["text"],
            channel=v["channel"],
            author_name=v.get("author_name", ""),
            user=request.user,
        )
        return Response(s.OrderNoteOut(note).data, status=status.HTTP_201_CREATED)


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

    # The request body is each command's `input_serializer`, declared on its class (request=None
    # here documented no body for pick, ship, collect and cancel: issue 9).
    @extend_schema(responses={200: s.StaffFulfillmentOut, **errors(400, 401, 403, 404, 409, 422)})
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


@extend_schema(request=None)
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


@extend_schema(request=None)
class FulfillmentReadyApi(_FulfillmentCommand):
    def run(self, request, pk, data):
        services.fulfillment_ready(fulfillment_id=pk, user=request.user, channel="api")


class FulfillmentCollectApi(_FulfillmentCommand):
    input_serializer = s.CollectIn

    @extend_schema(
        request=s.CollectIn,
        summary="Handed over to the customer who showed the pickup code",
        description=(
            "The code is read case-insensitively, spaces and hyphens ignored. A wrong code is 422 "
            "`wrong_pickup_code` (`details.attempts_left`); after `OMS_PICKUP_CODE_MAX_ATTEMPTS` (5) wrong codes "
            "every code is 429 `too_many_attempts` until `POST /fulfillments/{id}/new-pickup-code/`. Each "
            "refused code is a `pickup_code_refused` event in the order's timeline.\n\n"
            "`lines` (optional) is for a partial hand-over: what the customer took, a SKU of the fulfillment "
            "left out was not taken. The units not taken are released to the store's stock, cancelled and "
            "refunded (cause `partial_handover`), in the same transaction. `lines` is checked before the code "
            "(400, not counted as a wrong code): each SKU once and on the fulfillment, 0 to the units it "
            "carries, and something taken (all zero: 400 `nothing_taken`; cancel instead)."
        ),
        responses={200: s.StaffFulfillmentOut, **errors(400, 401, 403, 404, 409, 422, 429)},
    )
    def post(self, request, pk):
        return super().post(request, pk)

    def run(self, request, pk, data):
        taken = data.get("lines")
        services.fulfillment_collect(
            fulfillment_id=pk,
            pickup_code=data["pickup_code"],
            lines=None
            if taken is None
            else [services.TakenIn(sku=t["sku"], quantity=t["quantity"]) for t in taken],
            user=request.user,
            channel="api",
        )


@extend_schema(
    request=s.ReasonIn,
    summary="A new pickup code, sent to the customer; the count of wrong codes restarts",
    description=(
        "For a fulfillment ready for pickup (else 409): the old code stops working, the customer is sent the "
        "new one (and the storefront reads it on the order); it is never in this response."
    ),
)
class FulfillmentNewPickupCodeApi(_FulfillmentCommand):
    input_serializer = s.ReasonIn

    def run(self, request, pk, data):
        services.pickup_code_reissue(
            fulfillment_id=pk, user=request.user, reason=data["reason"], channel="api"
        )


@extend_schema(
    request=s.ExtendIn,
    summary="Extend the pickup window by `days` (once per fulfillment)",
    description=(
        "For a fulfillment ready for pickup (else 409 `invalid_transition`), by the staff of its store. `days` "
        "from 1 to `OMS_PICKUP_EXTENSION_MAX_DAYS` (7), `reason` required (400). A second extension is 409 "
        "`already_extended`. The new end is in `pickup_expires_at`; a `pickup_extended` event is in the timeline."
    ),
)
class FulfillmentExtendApi(_FulfillmentCommand):
    input_serializer = s.ExtendIn

    def run(self, request, pk, data):
        services.fulfillment_extend_pickup(
            fulfillment_id=pk, days=data["days"], reason=data["reason"], user=request.user, channel="api"
        )


@extend_schema(request=s.ReasonIn)
class FulfillmentCancelApi(_FulfillmentCommand):
    input_serializer = s.ReasonIn

    def run(self, request, pk, data):
        services.fulfillment_cancel(
            fulfillment_id=pk, user=request.user, reason=data["reason"], channel="api"
        )


# --- Lockers ------------------------------------------------------------------------------------


@extend_schema(
    request=s.LockerLoadIn,
    summary="Load a ready pickup into a free compartment of its store's locker",
    description=(
        "By the store's associates and managers. The order must be a pickup (422 `locker_pickup_only`), ready "
        "for pickup (409 `invalid_transition`) and in no compartment yet (409 `already_in_locker`); the locker "
        "its store's (404 `unknown_locker`, 422 `locker_at_another_store`), the compartment free (409 "
        "`compartment_occupied`) and in service (409 `out_of_service`). The customer is sent the locker, the "
        "compartment and a new code (the counter's code stops working); `locker_loaded` is in the timeline."
    ),
)
class FulfillmentLockerApi(_FulfillmentCommand):
    permission_classes = [IsStoreStaff]
    input_serializer = s.LockerLoadIn

    def run(self, request, pk, data):
        services.locker_load(
            fulfillment_id=pk,
            locker=data["locker"],
            compartment=data["compartment"],
            user=request.user,
            channel="api",
        )


@extend_schema(
    request=s.ReasonIn,
    summary="Take an order out of its locker compartment (back at the counter)",
    description=(
        "The compartment is free; a ready order waits at the counter again, where its code still works (an "
        "order whose window ended is then cancelled by the expiry sweep). 409 `not_in_locker`."
    ),
)
class FulfillmentUnloadApi(_FulfillmentCommand):
    permission_classes = [IsStoreStaff]
    input_serializer = s.ReasonIn

    def run(self, request, pk, data):
        services.locker_unload(fulfillment_id=pk, user=request.user, reason=data["reason"], channel="api")


class LockerListApi(generics.ListAPIView):
    permission_classes = [IsStoreStaff]
    serializer_class = s.LockerOut
    filter_backends = []  # `store` is read here: the views are built from a selector's list

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PickupPoint.objects.none()
        code = self.request.query_params.get("store")
        store = location_get(code=code) if code else None
        return selectors.locker_list(user=self.request.user, store=store)

    @extend_schema(
        operation_id="lockers_list",
        summary="The locker banks at the user's stores, each compartment with its state",
        parameters=[OpenApiParameter("store", str, description="Only this store's lockers (its code).")],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class LockerOpenApi(APIView):
    permission_classes = [IsLockerController]

    @extend_schema(
        operation_id="lockers_open",
        request=s.LockerOpenIn,
        summary="The locker's controller: the right code opens the compartment, the order is collected",
        description=(
            "For the controller of a locker at its store (role `locker`). The answer names the compartment to "
            "open. Refused, nothing written: 404 `unknown_locker` / `unknown_compartment`, 403 another store's "
            "locker, 409 `compartment_empty`, 409 `already_collected` (the code opened its door already: "
            "`details.compartment`; a controller retrying after a lost answer), 422 `wrong_locker` (the code "
            "is for an order in another locker), 409 `out_of_service`. Counted: with `compartment`, a wrong code "
            "is 422 `wrong_pickup_code` and after 5 every code is 429 `compartment_locked` until an associate "
            "issues a new code; without, a code matching nothing here is 422 `wrong_pickup_code` counted for the "
            "locker's keypad, and after `OMS_LOCKER_KEYPAD_FAILURE_LIMIT` (10) in a window every code without a "
            "compartment is 429 `keypad_locked` (`details.retry_after_seconds`)."
        ),
        responses={200: s.LockerOpenOut, **errors(400, 401, 403, 404, 409, 422, 429)},
    )
    def post(self, request, code):
        data = s.LockerOpenIn(data=request.data)
        data.is_valid(raise_exception=True)
        opened = services.locker_open(
            locker=code,
            pickup_code=data.validated_data["pickup_code"],
            compartment=data.validated_data.get("compartment") or None,
            user=request.user,
            channel="locker",
        )
        return Response(s.LockerOpenOut(opened).data)


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


def _returns_of(customer, user) -> dict:
    """The customer's returns the account sees (returns.selectors), for the customer's page."""
    from returns.selectors import customer_returns  # returns builds on orders

    return {"returns": customer_returns(customer=customer, user=user)}


class CustomerDetailApi(APIView):
    permission_classes = [IsStorefront]
    throttle_classes = [CustomerLookupThrottle]

    @extend_schema(
        operation_id="customers_retrieve", responses={200: s.CustomerOut, **errors(401, 403, 404, 429)}
    )
    def get(self, request, pk):
        customer = selectors.customer_get(customer_id=pk, user=request.user)
        orders = selectors.customer_orders(customer=customer, user=request.user)
        return Response(
            s.CustomerOut(customer, context={"orders": orders, **_returns_of(customer, request.user)}).data
        )


class CustomerPreferencesApi(APIView):
    permission_classes = [IsStorefront]
    throttle_classes = [CustomerLookupThrottle]  # it answers with the whole customer

    @extend_schema(
        operation_id="customers_preferences",
        request=s.PreferencesIn,
        responses={200: s.CustomerOut, **errors(400, 401, 403, 404, 422, 429)},
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
                customer,
                context={
                    "orders": selectors.customer_orders(customer=customer, user=request.user),
                    **_returns_of(customer, request.user),
                },
            ).data
        )
