"""Locations: the network the storefront searches ("find in store") and staff work in."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics

from config.api.permissions import IsStorefrontOrStaff
from inventory.api.schema import READ_ERRORS, errors
from inventory.selectors import location_stock, locations_with_sku, sku_get
from stores.selectors import location_get, location_search

from .serializers import (
    LocationHitSerializer,
    LocationListQuerySerializer,
    LocationSerializer,
    LocationStockQuerySerializer,
    LocationStockSerializer,
)


class LocationListApi(generics.ListAPIView):
    permission_classes = [IsStorefrontOrStaff]
    serializer_class = LocationHitSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="locations_list",
        summary="Active locations, filtered; nearest first with `near`",
        description=(
            "Active warehouses and stores. `near=LAT,LNG` adds `distance_km` and orders nearest first "
            "(ties by code); `radius_km` keeps those within that great-circle distance (bounding box "
            "on indexed columns, then haversine). `sku=CODE` adds `available` of that SKU at every "
            "location (0 where there is none); add `quantity=N` to keep only locations that can give "
            "N units now. Without `near` the order is by code."
        ),
        parameters=[LocationListQuerySerializer],
        responses={200: LocationHitSerializer(many=True), **errors(*READ_ERRORS)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = LocationListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        p = query.validated_data
        if p.get("sku"):
            return locations_with_sku(
                sku=sku_get(code=p["sku"]),
                quantity=p.get("quantity"),
                kind=p.get("kind"),
                pickup=p.get("pickup"),
                near=p.get("near"),
                radius_km=p.get("radius_km"),
            )
        return location_search(
            kind=p.get("kind"), pickup=p.get("pickup"), near=p.get("near"), radius_km=p.get("radius_km")
        )


class LocationDetailApi(generics.RetrieveAPIView):
    permission_classes = [IsStorefrontOrStaff]
    serializer_class = LocationSerializer

    @extend_schema(
        operation_id="locations_retrieve",
        summary="One location by code (also an inactive one: see `is_active`)",
        responses={200: LocationSerializer, **errors(401, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_object(self):
        return location_get(code=self.kwargs["code"])


class LocationStockApi(generics.ListAPIView):
    permission_classes = [IsStorefrontOrStaff]
    serializer_class = LocationStockSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="locations_stock_list",
        summary="What one location has: its stock levels by SKU code",
        description=(
            "Every active SKU with a stock level at the location (or only `sku=A,B,C`), with its "
            "counters and `available`. `in_stock=true` keeps those available now."
        ),
        parameters=[LocationStockQuerySerializer],
        responses={200: LocationStockSerializer(many=True), **errors(*READ_ERRORS)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = LocationStockQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        p = query.validated_data
        return location_stock(
            location=location_get(code=self.kwargs["code"]),
            sku_codes=p.get("sku"),
            search=p.get("search"),
            in_stock=p["in_stock"],
        )
