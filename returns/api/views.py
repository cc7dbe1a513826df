"""Thin views: input serializer -> one service call -> output serializer."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import IsStorefront, IsStorefrontOrStoreStaff

from .. import selectors, services
from ..models import Refund, RefundCause, RefundStatus
from . import serializers as s
from .schema import errors


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
