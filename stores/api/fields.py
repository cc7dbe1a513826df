"""Query-parameter fields for geography: `near=LAT,LNG` and `radius_km=R`."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.errors import InvalidInput
from inventory.selectors import parse_near, parse_radius


@extend_schema_field(
    {"type": "string", "pattern": r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?$", "example": "35.6595,139.7005"}
)
class NearField(serializers.Field):
    """`LAT,LNG` in decimal degrees -> (lat, lng). Out of range, NaN or anything else is a 400."""

    default_error_messages = {"invalid": "Give LAT,LNG in decimal degrees, e.g. 35.6595,139.7005."}

    def to_internal_value(self, data) -> tuple[float, float] | None:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            return parse_near(data.strip(), field_name=self.field_name)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value):
        return f"{value[0]},{value[1]}"


class RadiusField(serializers.Field):
    """Kilometres, above 0 and at most settings.OMS["MAX_RADIUS_KM"]."""

    def to_internal_value(self, data) -> float | None:
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            raise serializers.ValidationError("radius_km must be a number.")
        try:
            return parse_radius(str(data).strip())
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value):
        return value


class RadiusFieldSchema(OpenApiSerializerFieldExtension):
    """Kilometres: above 0, at most OMS["MAX_RADIUS_KM"] (read when the schema is built)."""

    target_class = RadiusField

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "number",
            "format": "double",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": settings.OMS["MAX_RADIUS_KM"],
        }


def radius_help() -> str:
    return f"Kilometres around `near`, above 0 and at most {settings.OMS['MAX_RADIUS_KM']}."
