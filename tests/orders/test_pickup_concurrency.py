"""Issue 10: the pickup sweeps on PostgreSQL with real threads and row locks. Two expiry sweeps at
once cancel each overdue order exactly once (one cancellation event, one release, one message
each); two reminder runs remind each customer once; a sweep never waits on a fulfillment someone
else holds, nor blocks an order placement for longer than its batch."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from inventory.models import MovementKind, StockLevel, StockMovement
from inventory.selectors import ledger_mismatches
from notifications.models import Notification, NotificationEvent
from orders import services
from orders.models import EventType, Fulfillment, FulfillmentStatus, OrderEvent
from returns.models import Refund, RefundCause
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, make_staff, stock
from tests.orders.conftest import pickup, place
from tests.orders.test_concurrency import run_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _ready_pickups(n: int, *, store_code="ST-SWEEP", skus=3):
    store = LocationFactory(code=store_code, offers_pickup=True)
    codes = [f"SW-{i}" for i in range(skus)]
    for code in codes:
        stock(store, SkuFactory(code=code), n)
    associate = make_staff(role=Role.ASSOCIATE, locations=[store])
    fs = []
    for i in range(n):
        f = place(
            (codes[i % skus], 1), fulfillment=pickup(store_code), email=f"c{i}@example.com"
        ).fulfillments.get()
        services.fulfillment_start(fulfillment_id=f.pk, user=associate)
        fs.append(services.fulfillment_ready(fulfillment_id=f.pk, user=associate))
    return store, fs


def test_two_sweeps_at_once_cancel_each_overdue_order_exactly_once():
    store, fs = _ready_pickups(24)
    overdue = fs[:20]
    Fulfillment.objects.filter(pk__in=[f.pk for f in overdue]).update(
        pickup_expires_at=timezone.now() - dt.timedelta(minutes=5)
    )
    counts = run_threads(2, lambda i: services.pickups_expire(batch_size=3))
    assert sum(counts) == 20
    cancelled = set(
        Fulfillment.objects.filter(status=FulfillmentStatus.CANCELLED).values_list("pk", flat=True)
    )
    assert cancelled == {f.pk for f in overdue}
    for f in overdue:
        assert OrderEvent.objects.filter(order_id=f.order_id, type=EventType.CANCELLED).count() == 1
        assert (
            Notification.objects.filter(order_id=f.order_id, event=NotificationEvent.PICKUP_EXPIRED).count()
            == 1
        )
    numbers = [f.order.number for f in overdue]
    assert StockMovement.objects.filter(kind=MovementKind.RELEASE, reference__in=numbers).count() == 20
    assert sum(StockLevel.objects.filter(location=store).values_list("reserved", flat=True)) == 4
    assert ledger_mismatches() == []


def test_two_reminder_runs_at_once_remind_each_customer_once():
    _, fs = _ready_pickups(12, store_code="ST-REMIND")
    Fulfillment.objects.filter(pk__in=[f.pk for f in fs]).update(pickup_remind_at=timezone.now())
    counts = run_threads(2, lambda i: services.pickup_reminders_send(batch_size=2))
    assert sum(counts) == 12
    assert Notification.objects.filter(event=NotificationEvent.PICKUP_REMINDER).count() == 12
    assert OrderEvent.objects.filter(type=EventType.PICKUP_REMINDED).count() == 12


def test_the_sweep_skips_a_fulfillment_someone_holds_and_takes_it_next_time():
    _, fs = _ready_pickups(3, store_code="ST-HELD")
    Fulfillment.objects.filter(pk__in=[f.pk for f in fs]).update(
        pickup_expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    held, release = threading.Event(), threading.Event()

    def clerk():
        try:
            with transaction.atomic():
                Fulfillment.objects.select_for_update().get(pk=fs[0].pk)  # at the counter right now
                held.set()
                release.wait(10)
        finally:
            connection.close()

    t = threading.Thread(target=clerk)
    t.start()
    held.wait(10)
    started = time.monotonic()
    try:
        assert services.pickups_expire() == 2  # the held one is skipped, not waited for
        assert time.monotonic() - started < 5
    finally:
        release.set()
        t.join()
    assert Fulfillment.objects.get(pk=fs[0].pk).status == FulfillmentStatus.READY_FOR_PICKUP
    assert services.pickups_expire() == 1


def test_two_sweeps_at_once_with_split_orders_cancel_and_refund_each_exactly_once():
    store, fs = _ready_pickups(30, store_code="ST-SPLIT")
    other = LocationFactory(code="ST-SPLIT-2", offers_pickup=True)
    split = fs[:6]  # each with another live fulfillment: only the expired one goes, alone
    for f in split:
        Fulfillment.objects.create(order_id=f.order_id, location=other, method="pickup")
    Fulfillment.objects.filter(pk__in=[f.pk for f in fs]).update(
        pickup_expires_at=timezone.now() - dt.timedelta(minutes=5)
    )
    counts = run_threads(2, lambda i: services.pickups_expire(batch_size=7))
    assert sum(counts) == 30
    assert set(
        Fulfillment.objects.filter(location=store, status=FulfillmentStatus.CANCELLED).values_list(
            "pk", flat=True
        )
    ) == {f.pk for f in fs}
    for f in fs:
        whole = f not in split
        assert Refund.objects.filter(order_id=f.order_id, cause=RefundCause.PICKUP_EXPIRED).count() == 1
        assert OrderEvent.objects.filter(order_id=f.order_id, type=EventType.CANCELLED).count() == int(whole)
        assert OrderEvent.objects.filter(order_id=f.order_id, type=EventType.LINE_CANCELLED).count() == int(
            not whole
        )
        event = NotificationEvent.PICKUP_EXPIRED if whole else NotificationEvent.LINE_CANCELLED
        assert Notification.objects.filter(order_id=f.order_id, event=event).count() == 1
    numbers = [f.order.number for f in fs]
    assert StockMovement.objects.filter(kind=MovementKind.RELEASE, reference__in=numbers).count() == 30
    assert sum(StockLevel.objects.filter(location=store).values_list("reserved", flat=True)) == 0
    assert ledger_mismatches() == []


def test_placements_at_the_store_go_on_while_the_sweep_runs():
    """Placements of the very SKUs the sweep releases, at that store, never wait long on its
    batches (lock_timeout on their connection: one that waited longer would fail)."""
    _, fs = _ready_pickups(120, store_code="ST-LIVE", skus=2)
    Fulfillment.objects.filter(pk__in=[f.pk for f in fs]).update(
        pickup_expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    latencies: list[float] = []
    errors: list[Exception] = []
    done = threading.Event()

    def shopper():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '500ms'")
            i = 0
            while not done.is_set() and i < 400:
                started = time.monotonic()
                try:
                    place((f"SW-{i % 2}", 1), fulfillment=pickup("ST-LIVE"), email=f"live{i}@example.com")
                except Exception as exc:  # a lock timeout: what this test is about
                    errors.append(exc)
                latencies.append(time.monotonic() - started)
                i += 1
        finally:
            connection.close()

    t = threading.Thread(target=shopper)
    t.start()
    try:
        assert services.pickups_expire() == 120  # the default batch size (50): three batches
    finally:
        done.set()
        t.join()
    assert latencies
    assert errors == []
    assert max(latencies) < 2.0  # no placement queued behind the whole sweep
    assert ledger_mismatches() == []
