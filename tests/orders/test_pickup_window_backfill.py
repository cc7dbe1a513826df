"""orders/migrations/0015_pickup_window_backfill.py: fulfillments waiting for pickup from before the
window existed get the window the rules give them (and then expire like every other one)."""

import datetime as dt
import importlib
import zoneinfo

import pytest
from django.apps import apps
from django.utils import timezone

from orders import services
from orders.models import Fulfillment, FulfillmentStatus
from orders.services.window import pickup_deadlines
from stores.models import Role
from tests.factories import LocationFactory, make_staff
from tests.orders.conftest import pickup, place

migration = importlib.import_module("orders.migrations.0015_pickup_window_backfill")


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Europe/Paris", "America/New_York", "UTC", "Not/AZone"])
@pytest.mark.parametrize(("window", "reminder"), [(7, 2), (1, 2), (3, 0), (14, 1)])
def test_the_migrations_copy_of_the_rules_agrees_with_pickup_deadlines(zone, window, reminder):
    store = LocationFactory.build(timezone=zone, pickup_window_days=window, pickup_reminder_days=reminder)
    start = dt.datetime(2026, 3, 1, 0, 30, tzinfo=dt.UTC)
    for hours in range(0, 24 * 40, 7):  # across both spring DST changes, at every hour of the day
        ready_at = start + dt.timedelta(hours=hours)
        expected = pickup_deadlines(location=store, ready_at=ready_at)
        got = migration.deadlines(
            timezone=zone, window_days=window, reminder_days=reminder, ready_at=ready_at
        )
        assert got == (expected.expires_at, expected.remind_at), ready_at


@pytest.mark.django_db
def test_backfill_sets_the_window_of_ready_fulfillments_that_have_none(net):
    tokyo = LocationFactory(
        code="BF-TOKYO", timezone="Asia/Tokyo", pickup_window_days=5, pickup_reminder_days=2
    )
    associate = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya, tokyo])
    from tests.factories import stock

    stock(tokyo, net.skus[0], 5)

    def ready(store, email):
        f = place(("TEE-0", 1), fulfillment=pickup(store), email=email).fulfillments.get()
        services.fulfillment_start(fulfillment_id=f.pk, user=associate)
        return services.fulfillment_ready(fulfillment_id=f.pk, user=associate)

    old = ready("BF-TOKYO", "old@example.com")
    ready_at = dt.datetime(2026, 1, 5, 14, 59, tzinfo=dt.UTC)  # 23:59 in Tokyo
    Fulfillment.objects.filter(pk=old.pk).update(
        ready_at=ready_at, pickup_expires_at=None, pickup_remind_at=None
    )
    no_ready_at = ready("TKY-SHIBUYA", "unknown@example.com")
    Fulfillment.objects.filter(pk=no_ready_at.pk).update(
        ready_at=None, pickup_expires_at=None, pickup_remind_at=None
    )
    current = ready("TKY-SHIBUYA", "current@example.com")
    pending = place(("TEE-1", 1), fulfillment=pickup(), email="pending@example.com").fulfillments.get()

    assert migration.backfill(apps, None) == 2

    old.refresh_from_db()
    d = pickup_deadlines(location=tokyo, ready_at=ready_at)
    assert (old.pickup_expires_at, old.pickup_remind_at) == (d.expires_at, d.remind_at)
    # Last day 10 January in Tokyo (5 January + 5 days): the window ends at its midnight there.
    assert old.pickup_expires_at == dt.datetime(2026, 1, 11, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))
    no_ready_at.refresh_from_db()
    d = pickup_deadlines(location=net.shibuya, ready_at=no_ready_at.updated_at)
    assert no_ready_at.pickup_expires_at == d.expires_at
    # Those with a window, and those not waiting for pickup, are left alone.
    assert Fulfillment.objects.get(pk=current.pk).pickup_expires_at == current.pickup_expires_at
    assert Fulfillment.objects.get(pk=pending.pk).pickup_expires_at is None
    # Run twice: nothing more to do.
    assert migration.backfill(apps, None) == 0
    # And the backfilled window expires like any other.
    assert services.pickups_expire(now=timezone.now() + dt.timedelta(days=400)) == 3
    assert Fulfillment.objects.get(pk=old.pk).status == FulfillmentStatus.CANCELLED
