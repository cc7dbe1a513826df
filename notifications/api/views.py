from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from config.api.permissions import IsStorefront, IsStorefrontOrNetworkManager
from inventory.selectors import sku_get
from stores.selectors import location_get

from .. import selectors, services
from ..models import WebhookEndpoint
from .serializers import (
    BackInStockInput,
    BackInStockOutput,
    WebhookCreatedOutput,
    WebhookInput,
    WebhookOutput,
)


class BackInStockSubscribeApi(APIView):
    """Subscribe an email or phone to a SKU, anywhere or at one store. 201 new, 200 already there."""

    permission_classes = [IsStorefront]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "subscribe"

    @extend_schema(request=BackInStockInput, responses={200: BackInStockOutput, 201: BackInStockOutput})
    def post(self, request):
        data = BackInStockInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        sku = sku_get(code=v["sku"])
        location = location_get(code=v["location"]) if v.get("location") else None
        sub, created = services.back_in_stock_subscribe(
            sku=sku,
            location=location,
            email=v.get("email", ""),
            phone=v.get("phone", ""),
            language=v["language"],
        )
        return Response(
            BackInStockOutput(sub).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class BackInStockUnsubscribeApi(APIView):
    """The signed link from an alert: the token is the credential, no login needed."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, token: str):
        services.back_in_stock_unsubscribe(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookListCreateApi(generics.ListAPIView):
    """GET: your endpoints (no secrets). POST {"url", "events"}: register; the secret is shown once.
    The storefront and network-wide managers, each their own endpoints; superusers all."""

    permission_classes = [IsStorefrontOrNetworkManager]
    serializer_class = WebhookOutput

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return selectors.webhook_endpoints_for(self.request.user)

    @extend_schema(request=WebhookInput, responses={201: WebhookCreatedOutput})
    def post(self, request):
        data = WebhookInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_register(owner=request.user, **data.validated_data)
        return Response(WebhookCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    permission_classes = [IsStorefrontOrNetworkManager]

    @extend_schema(responses=WebhookOutput)
    def get(self, request, pk: int):
        return Response(WebhookOutput(selectors.webhook_endpoint_get(user=request.user, endpoint_id=pk)).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        services.webhook_delete(endpoint=selectors.webhook_endpoint_get(user=request.user, endpoint_id=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
