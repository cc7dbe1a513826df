"""Strict integer fields for quantities: JSON integers only (no booleans, floats or strings in bodies)."""

from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

_DIGITS = re.compile(r"^[+-]?\d{1,18}$")


class QuantityField(serializers.IntegerField):
    """A whole number of units, 1 (or 0 with `allow_zero`) to settings.OMS["MAX_LINE_QUANTITY"].

    In a JSON body only a JSON integer is accepted: `true`, `2.0`, `"2"` are 400s. In a query
    string (`from_query=True`) the text must be digits.
    """

    default_error_messages = {
        "invalid": "A whole number is required.",
        "max_value": "Ensure this value is less than or equal to {max_value}.",
    }

    def __init__(self, *, allow_zero: bool = False, from_query: bool = False, **kwargs):
        self.allow_zero = allow_zero
        self.from_query = from_query
        kwargs.setdefault("min_value", 0 if allow_zero else 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        if self.from_query and isinstance(data, str) and _DIGITS.match(data.strip()):
            data = int(data.strip())
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        value = super().to_internal_value(data)
        limit = settings.OMS["MAX_LINE_QUANTITY"]
        if value > limit:
            self.fail("max_value", max_value=limit)
        return value


class DeltaField(serializers.IntegerField):
    """A signed, non-zero whole number of units, at most settings.OMS["MAX_LINE_QUANTITY"] either way."""

    default_error_messages = {"invalid": "A whole number is required.", "zero": "delta must not be 0."}

    def to_internal_value(self, data) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if data == 0:
            self.fail("zero")
        limit = settings.OMS["MAX_LINE_QUANTITY"]
        if abs(data) > limit:
            raise serializers.ValidationError(f"Ensure the absolute value is at most {limit}.")
        return super().to_internal_value(data)


class QuantityFieldSchema(OpenApiSerializerFieldExtension):
    """The schema declares the bounds the field enforces (the upper one read from the settings when
    the schema is built): an integer from 1 (0 with allow_zero) to OMS["MAX_LINE_QUANTITY"]."""

    target_class = QuantityField

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "integer",
            "minimum": 0 if self.target.allow_zero else 1,
            "maximum": settings.OMS["MAX_LINE_QUANTITY"],
        }


class DeltaFieldSchema(OpenApiSerializerFieldExtension):
    """A non-zero integer within +-OMS["MAX_LINE_QUANTITY"]."""

    target_class = DeltaField

    def map_serializer_field(self, auto_schema, direction):
        limit = settings.OMS["MAX_LINE_QUANTITY"]
        return {"type": "integer", "minimum": -limit, "maximum": limit, "not": {"enum": [0]}}
