"""Thin views: input serializer -> one service call -> output serializer."""

from __future__ import annotations

import django_filters
from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import IsStaff, IsStorefront, IsStorefrontOrStaff, IsStorefrontOrStoreStaff
from config.idempotency import KEY_SCHEMA, idempotent

from .. import selectors, services
from ..models import Refund, RefundCause, RefundStatus, Return, ReturnMethod, ReturnStatus
from . import serializers as s
from .schema import errors

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    KEY_SCHEMA,
    OpenApiParameter.HEADER,
    required=False,
    description="Optional. The same key with the same body replays the first response; with another "
    "body it is 422; while the first request is still running it is 409.",
)


class RefundFilter(django_filters.FilterSet):
    order = django_filters.CharFilter(field_name="order__number", max_length=16, help_text="Order number")
    status = django_filters.ChoiceFilter(choices=RefundStatus.choices)
    cause = django_filters.ChoiceFilter(choices=RefundCause.choices)

    class Meta:
        model = Refund
        fields = ["order", "status", "cause"]


class RefundListApi(generics.ListAPIView):
    """Refunds of the orders the account sees, newest first."""

    permission_classes = [IsStorefrontOrStoreStaff]
    serializer_class = s.RefundOut
    filterset_class = RefundFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Refund.objects.none()
        return selectors.refund_list(user=self.request.user)


class RefundDetailApi(APIView):
    permission_classes = [IsStorefrontOrStoreStaff]

    @extend_schema(operation_id="refunds_retrieve", responses={200: s.RefundOut, **errors(401, 403, 404)})
    def get(self, request, pk):
        return Response(s.RefundOut(selectors.refund_get(refund_id=pk, user=request.user)).data)


class RefundCompleteApi(APIView):
    permission_classes = [IsStorefront]

    @extend_schema(
        operation_id="refunds_complete",
        summary="The payment system paid the refund back (idempotent per reference)",
        request=s.RefundCompleteIn,
        responses={200: s.RefundOut, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, pk):
        data = s.RefundCompleteIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.refund_complete(
            refund_id=pk, reference=data.validated_data["reference"], user=request.user, channel="api"
        )
        return Response(s.RefundOut(selectors.refund_get(refund_id=pk, user=request.user)).data)


class RefundFailApi(APIView):
    permission_classes = [IsStorefront]

    @extend_schema(
        operation_id="refunds_fail",
        summary="The payment system could not pay the refund back (idempotent per reason)",
        request=s.RefundFailIn,
        responses={200: s.RefundOut, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, pk):
        data = s.RefundFailIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.refund_fail(
            refund_id=pk, reason=data.validated_data["reason"], user=request.user, channel="api"
        )
        return Response(s.RefundOut(selectors.refund_get(refund_id=pk, user=request.user)).data)


# --- Returns -------------------------------------------------------------------------------------


class ReturnFilter(django_filters.FilterSet):
    order = django_filters.CharFilter(field_name="order__number", max_length=16, help_text="Order number")
    status = django_filters.ChoiceFilter(choices=ReturnStatus.choices)
    method = django_filters.ChoiceFilter(choices=ReturnMethod.choices)
    location = django_filters.CharFilter(
        method="at_location", max_length=32, help_text="Expected or received at this location (code)"
    )

    class Meta:
        model = Return
        fields = ["order", "status", "method", "location"]

    def at_location(self, qs, name, value):
        return qs.filter(Q(expected_location__code=value) | Q(received_at_location__code=value))


class ReturnListCreateApi(generics.ListAPIView):
    """Returns the account sees (returns.selectors.visible_returns), newest first; and asking for one."""

    serializer_class = s.ReturnOut
    filterset_class = ReturnFilter

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsStorefrontOrStoreStaff()]
        return [IsStorefrontOrStaff()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Return.objects.none()
        return selectors.return_list(user=self.request.user)

    @extend_schema(
        operation_id="returns_create",
        summary="Ask for a return",
        description=(
            "The storefront for its customers proves the purchase with the order's `email`, `phone` or "
            "`receipt_code` (a wrong one is 404 `unknown_order`, saying nothing about which); a store's desk "
            "(associates, managers) asks for the order in front of it, at one of its stores (`location`). "
            "Refused lines are 422 naming the rule (`code`: not_on_order, not_returnable, not_delivered, "
            "return_window_closed, more_than_returnable) and the line (`details.field`, every line in "
            "`details.violations`). The customer is told what to bring and where."
        ),
        request=s.ReturnCreateIn,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.ReturnOut, **errors(400, 401, 403, 404, 409, 422)},
    )
    @idempotent()
    def post(self, request):
        data = s.ReturnCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        ret = services.return_request(
            order_number=v["order"],
            lines=[
                services.ReturnLineIn(
                    sku=ln["sku"],
                    quantity=ln["quantity"],
                    reason=ln["reason"],
                    reason_text=ln.get("reason_text") or "",
                    exchange_for=ln.get("exchange_for") or None,
                )
                for ln in v["lines"]
            ],
            method=v["method"],
            email=v.get("email") or None,
            phone=v.get("phone") or None,
            receipt_code=v.get("receipt_code") or None,
            location=v.get("location") or None,
            note=v.get("note") or "",
            user=request.user,
            channel=v.get("channel") or "",
        )
        return Response(s.ReturnOut(selectors.returns_of_order(ret.order).get(pk=ret.pk)).data, status=201)


class ReturnDetailApi(APIView):
    permission_classes = [IsStorefrontOrStaff]

    @extend_schema(
        operation_id="returns_retrieve",
        parameters=[
            OpenApiParameter(
                "code",
                str,
                OpenApiParameter.QUERY,
                required=False,
                description="The return's code (from the customer's QR): opens a return asked for at "
                "another store, for associates and managers at a desk.",
            )
        ],
        responses={200: s.ReturnOut, **errors(400, 401, 403, 404)},
    )
    def get(self, request, number):
        code = request.query_params.get("code") or None
        return Response(s.ReturnOut(selectors.return_get(number=number, user=request.user, code=code)).data)


class ReturnCancelApi(APIView):
    permission_classes = [IsStorefrontOrStoreStaff]

    @extend_schema(
        operation_id="returns_cancel",
        summary="Withdraw a return before anything was received (409 after)",
        request=s.ReturnCancelIn,
        responses={200: s.ReturnOut, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, number):
        data = s.ReturnCancelIn(data=request.data)
        data.is_valid(raise_exception=True)
        ret = services.return_cancel(
            number=number, user=request.user, reason=data.validated_data.get("reason") or "", channel="api"
        )
        return Response(s.ReturnOut(selectors.returns_of_order(ret.order).get(pk=ret.pk)).data)


class ReturnReceiveApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="returns_receive",
        summary="Take a return back at a store or a warehouse, once; the refund is issued, exchanges placed",
        description=(
            "resellable: back into this location's stock at once; damaged / defective: written off; "
            "send_to_warehouse: a transfer to the returns warehouse. Any store that accepts returns takes any "
            "return; a warehouse that accepts returns takes mail returns (422 `location_not_accepting_returns`). "
            "Received twice or cancelled: 409 `invalid_transition`. A line not on the return or more than was "
            "asked: 422 (`not_on_return`, `more_than_requested`). A line with `exchange_for` (or asked with one) "
            "is exchanged: the replacement is a new order of the customer, reserved at this store as a pickup "
            "or shipped to the order's address when the store has none; no refund for those units, the price "
            "difference is `amount_due` (owed by the customer, `return.payment_due`) or a refund "
            "(`exchange_difference`). Nobody has the replacement: 409 `exchange_unavailable` naming the line, "
            "nothing received; an unknown SKU 404 `unknown_sku`, one no longer sold 422 `sku_inactive`."
        ),
        request=s.ReturnReceiveIn,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: s.ReturnOut, **errors(400, 401, 403, 404, 409, 422)},
    )
    @idempotent()
    def post(self, request, number):
        data = s.ReturnReceiveIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        ret = services.return_receive(
            number=number,
            location=v["location"],
            lines=[
                services.ReceiveLineIn(
                    sku=ln["sku"],
                    quantity=ln["quantity"],
                    condition=ln["condition"],
                    exchange_for=ln.get("exchange_for"),
                    exchange_unit_price=ln.get("exchange_unit_price"),
                )
                for ln in v["lines"]
            ],
            user=request.user,
            channel="api",
        )
        return Response(s.ReturnOut(selectors.returns_of_order(ret.order).get(pk=ret.pk)).data)


class ReturnNotesApi(APIView):
    permission_classes = [IsStorefrontOrStaff]

    @extend_schema(
        operation_id="returns_notes_create",
        summary="Add a note to a return (help desk, chat, call centre, store)",
        request=s.ReturnNoteIn,
        responses={201: s.ReturnNoteOut, **errors(400, 401, 403, 404)},
    )
    def post(self, request, number):
        data = s.ReturnNoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        note = services.return_note_add(
            number=number,
            text=v["text"],
            channel=v["channel"],
            user=request.user,
            author_name=v.get("author_name") or "",
        )
        return Response(s.ReturnNoteOut(note).data, status=201)
