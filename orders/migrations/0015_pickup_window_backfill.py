"""Give the fulfillments that were already waiting for pickup before the pickup window existed
(0009) their window: `pickup_expires_at` and `pickup_remind_at` from `ready_at` (or, if that is
missing, the last time the row changed), by the rules of orders/services/window.py
(`pickup_deadlines`). Without it they would never expire.

The rules are copied here as they are today (a migration must not import the app's code: it would
change under it); tests/orders/test_pickup_window_backfill.py checks the copy against
`pickup_deadlines`. A window that has already ended is set as it is: the next expiry sweep cancels
that order (as it would have, had the window existed), so run this before a quiet period or
extend those fulfillments first (docs/orders.md, "Pickup window").
"""

import datetime as dt
import zoneinfo

from django.db import migrations

BATCH = 1000


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def deadlines(
    *, timezone: str, window_days: int, reminder_days: int, ready_at: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None]:
    """(pickup_expires_at, pickup_remind_at) of a fulfillment ready at `ready_at` at a store with
    these settings: the midnight ending day D + window_days in the store's timezone; the reminder
    reminder_days before that, or None when that is not after `ready_at` or reminder_days is 0."""
    zone = _zone(timezone)
    today = ready_at.astimezone(zone).date()
    expires_at = dt.datetime.combine(today + dt.timedelta(days=window_days + 1), dt.time(0), tzinfo=zone)
    remind_at = None
    if reminder_days > 0:
        remind_at = expires_at - dt.timedelta(days=reminder_days)
        if remind_at <= ready_at:
            remind_at = None
    return expires_at, remind_at


def backfill(apps, schema_editor) -> int:
    """Set the window of every fulfillment ready for pickup that has none; how many were set."""
    Fulfillment = apps.get_model("orders", "Fulfillment")
    Location = apps.get_model("stores", "Location")
    stores = {
        loc.pk: loc
        for loc in Location.objects.only("pk", "timezone", "pickup_window_days", "pickup_reminder_days")
    }
    rows = (
        Fulfillment.objects.filter(status="ready_for_pickup", pickup_expires_at__isnull=True)
        .only("pk", "location_id", "ready_at", "updated_at")
        .order_by("pk")
    )
    pending, done = [], 0
    for f in rows.iterator(chunk_size=BATCH):
        store = stores[f.location_id]
        f.pickup_expires_at, f.pickup_remind_at = deadlines(
            timezone=store.timezone,
            window_days=store.pickup_window_days,
            reminder_days=store.pickup_reminder_days,
            ready_at=f.ready_at or f.updated_at,
        )
        pending.append(f)
        if len(pending) == BATCH:
            Fulfillment.objects.bulk_update(pending, ["pickup_expires_at", "pickup_remind_at"])
            done, pending = done + len(pending), []
    Fulfillment.objects.bulk_update(pending, ["pickup_expires_at", "pickup_remind_at"])
    return done + len(pending)


def forwards(apps, schema_editor) -> None:
    backfill(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0014_event_types_after_merge"),
        ("stores", "0006_ship_to_store"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
