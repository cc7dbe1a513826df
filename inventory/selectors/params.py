"""The `near` and `radius_km` query parameters of the location-aware reads."""

from __future__ import annotations

from django.conf import settings

from config.errors import InvalidInput


def parse_near(value: str | None, *, field_name: str = "near") -> tuple[float, float] | None:
    """'LAT,LNG' as (lat, lng), or None when absent; 400 when malformed or out of range."""
    if value in (None, ""):
        return None
    try:
        lat_s, lng_s = value.split(",")
        lat, lng = float(lat_s), float(lng_s)
    except (ValueError, AttributeError):
        raise InvalidInput(f"{field_name} must be 'LAT,LNG'.", details={"field": field_name}) from None
    if not (-90 <= lat <= 90) or not (-180 <= lng <= 180) or lat != lat or lng != lng:
        raise InvalidInput(f"{field_name} is out of range.", details={"field": field_name})
    return lat, lng


def parse_radius(value: str | None, *, default: float | None = None) -> float | None:
    """A radius in km, above 0 and at most settings.OMS['MAX_RADIUS_KM']; `default` when absent."""
    if value in (None, ""):
        return default
    try:
        r = float(value)
    except ValueError:
        raise InvalidInput("radius_km must be a number.", details={"field": "radius_km"}) from None
    limit = settings.OMS["MAX_RADIUS_KM"]
    if not (0 < r <= limit):
        raise InvalidInput(f"radius_km must be above 0 and at most {limit}.", details={"field": "radius_km"})
    return r
