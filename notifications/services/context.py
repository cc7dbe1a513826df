"""What every message is written with: its language, JSON-safe values, and a store's details."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from django.conf import settings

from stores.models import Location

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def message_language(code: str | None) -> str:
    """The language a message is written in: one of settings.LANGUAGES, English when unknown."""
    code = (code or "en").lower().split("-")[0]
    return code if code in {known for known, _ in settings.LANGUAGES} else "en"


def _json_default(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def jsonable(value):
    """The value as JSON would hold it: decimals and dates as text, tuples as lists, keys as text
    (one round trip through the C encoder and decoder: cheaper than walking it in Python)."""
    return json.loads(json.dumps(value, default=_json_default))


def _store_hours(location: Location) -> str:
    if not location.opening_hours:
        return ""
    parts = []
    for day in WEEKDAYS:
        if day in location.opening_hours:
            hours = location.opening_hours[day]
            parts.append(f"{day.title()} {hours[0]}-{hours[1]}" if hours else f"{day.title()} closed")
    return ", ".join(parts)


def store_context(location: Location | None) -> dict:
    """A store's name, code, address and opening hours for a template; {} without a store."""
    if location is None:
        return {}
    return {
        "store_name": location.name,
        "store_code": location.code,
        "store_address": location.address,
        "store_hours": _store_hours(location),
    }
