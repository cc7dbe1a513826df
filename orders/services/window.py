"""The pickup window in the store's calendar (docs/orders.md, "Pickup window"): a fulfillment ready
on day D at a store with a window of N days may be collected until the end of day D + N in the
store's timezone (`Location.timezone`); `pickup_expires_at` is the midnight that ends that day.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from stores.models import Location


def store_zone(location: Location) -> dt.tzinfo:
    """The store's timezone (UTC when its name is unknown: never an error at the counter)."""
    try:
        return zoneinfo.ZoneInfo(location.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def window_end(*, location: Location, last_day: dt.date) -> dt.datetime:
    """The instant `last_day` ends at the store: the following midnight in its timezone."""
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=store_zone(location))


def last_day(*, location: Location, expires_at: dt.datetime) -> dt.date:
    """The store's calendar day a window ending at `expires_at` lets the customer come on, last."""
    return (expires_at.astimezone(store_zone(location)) - dt.timedelta(microseconds=1)).date()


@dataclass(frozen=True)
class Deadlines:
    expires_at: dt.datetime
    remind_at: dt.datetime | None


def pickup_deadlines(*, location: Location, ready_at: dt.datetime) -> Deadlines:
    """When a fulfillment ready at `ready_at` expires, and when its reminder is due: the store's
    `pickup_reminder_days` before the end, or none when that is not after `ready_at` (the ready
    message itself says the same) or the store sends none (0)."""
    today = ready_at.astimezone(store_zone(location)).date()
    expires_at = window_end(
        location=location, last_day=today + dt.timedelta(days=location.pickup_window_days)
    )
    return Deadlines(expires_at, remind_at_for(location=location, expires_at=expires_at, after=ready_at))


def remind_at_for(*, location: Location, expires_at: dt.datetime, after: dt.datetime) -> dt.datetime | None:
    if location.pickup_reminder_days <= 0:
        return None
    remind_at = expires_at - dt.timedelta(days=location.pickup_reminder_days)
    return remind_at if remind_at > after else None


def iso_utc(when: dt.datetime) -> str:
    """An instant as event data records it: ISO 8601 in UTC, whatever zone the value carries."""
    return when.astimezone(dt.UTC).isoformat()
