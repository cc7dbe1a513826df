"""`stock.out_of_stock`: announced by inventory.hooks when availability at a location reaches zero,
published by notifications to the webhook subscribers, at no statement on the hot path."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory import hooks
from inventory.exceptions import InsufficientStock
from inventory.models import HoldLine, MovementKind
from inventory.services import (
    Line,
    hold_create,
    stock_adjust,
    stock_commit,
    stock_reserve,
    stock_set_safety_stock,
    transfer_create,
)
from notifications.models import Notification, WebhookEndpoint
from stores.models import Role
from tests.factories import SkuFactory, make_staff, stock

pytestmark = pytest.mark.django_db

# One stock level: on PostgreSQL the guarded UPDATE and its ledger INSERT are one statement.
ONE_LEVEL = 1 if connection.vendor == "postgresql" else 2


@pytest.fixture
def subscriber(db):
    return WebhookEndpoint.objects.create(
        owner=make_staff(role=Role.STOREFRONT),
        url="https://hooks.shop.example/oms",
        events=["stock.out_of_stock"],
        secret="whsec_test",
    )


@pytest.fixture
def heard():
    """What inventory.hooks announces, as (sku_id, location_id, kind)."""
    events = []

    def listener(batch):
        events.extend((e.sku_id, e.location_id, e.kind) for e in batch)

    hooks.on_out_of_stock(listener)
    yield events
    hooks._out_of_stock_listeners.remove(listener)


def webhooks() -> list[dict]:
    return [
        n.context["data"]
        for n in Notification.objects.filter(channel="webhook", webhook_event="stock.out_of_stock")
    ]


def _statements(ctx) -> int:
    skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
    return sum(1 for q in ctx.captured_queries if not q["sql"].startswith(skip))


def test_reserving_the_last_unit_sends_one_webhook(subscriber, store, sku):
    stock(store, sku, 2)
    stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
    assert webhooks() == []  # one left
    stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-2")
    assert webhooks() == [{"sku": sku.code, "location": store.code, "available": 0, "cause": "reservation"}]
    (row,) = Notification.objects.filter(webhook_event="stock.out_of_stock")
    assert row.webhook_endpoint == subscriber


def test_reserving_not_the_last_unit_sends_none(subscriber, store, sku):
    stock(store, sku, 5)
    stock_reserve(lines=[Line(store.pk, sku.pk, 4)], reference="O-1")
    stock_commit(lines=[Line(store.pk, sku.pk, 4)], reference="O-1")  # availability unchanged
    assert webhooks() == []


def test_a_one_unit_reservation_costs_the_same_statements(subscriber, store, sku):
    """With the listener registered and a subscriber: the reservation of a unit that is not the last
    runs exactly the guarded change; the last one adds only the webhook's own work."""
    stock(store, sku, 2)
    with CaptureQueriesContext(connection) as ctx:
        stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
    assert _statements(ctx) == ONE_LEVEL, [q["sql"][:80] for q in ctx.captured_queries]
    with CaptureQueriesContext(connection) as ctx:
        stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-2")
    # + the endpoints (cached in production), the SKU's and the location's codes, the outbox row
    assert _statements(ctx) == ONE_LEVEL + 4, [q["sql"][:80] for q in ctx.captured_queries]


def test_without_a_subscriber_nothing_is_written(store, sku):
    stock(store, sku, 1)
    stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
    assert not Notification.objects.exists()


def test_a_rolled_back_reservation_announces_nothing(subscriber, store, sku):
    stock(store, sku, 1)

    def order_failing_after_its_reservation():
        with transaction.atomic():
            stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
            raise RuntimeError("the order failed after its reservation")

    with pytest.raises(RuntimeError):
        order_failing_after_its_reservation()
    assert webhooks() == []


def test_expired_holds_still_on_the_counter_do_not_make_it_out_of_stock(heard, store, sku):
    """The guarded UPDATE returns the availability with live holds only: 3 on hand, 2 in an expired
    hold, reserving 1 leaves 2 available, not 0."""
    stock(store, sku, 3)
    hold = hold_create(lines=[Line(store.pk, sku.pk, 2)])
    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
    assert heard == []


def test_every_kind_of_change_that_empties_a_level_is_announced(heard, store, warehouse, sku):
    other = SkuFactory()
    stock(store, sku, 1)
    hold_create(lines=[Line(store.pk, sku.pk, 1)])  # single level
    stock(store, other, 2)
    stock(warehouse, sku, 3)
    stock(warehouse, other, 3)
    # several levels (the locking path): only the one that reaches zero
    stock_reserve(lines=[Line(warehouse.pk, sku.pk, 3), Line(warehouse.pk, other.pk, 1)], reference="O-1")
    stock_set_safety_stock(location=store, sku=other, safety_stock=2)
    stock_adjust(location=warehouse, sku=other, delta=-2, reason="damaged")
    gone = SkuFactory(code="GONE")
    stock(store, gone, 1)
    transfer_create(from_location=store, to_location=warehouse, lines=[(gone, 1)])
    assert heard == [
        (sku.pk, store.pk, MovementKind.HOLD),
        (sku.pk, warehouse.pk, MovementKind.RESERVATION),
        (other.pk, store.pk, MovementKind.SAFETY_STOCK),
        (other.pk, warehouse.pk, MovementKind.DAMAGE),
        (gone.pk, store.pk, MovementKind.TRANSFER_OUT),
    ]


def test_a_refused_change_announces_nothing(heard, store, sku):
    stock(store, sku, 1)
    with pytest.raises(InsufficientStock):
        stock_reserve(lines=[Line(store.pk, sku.pk, 2)], reference="O-1")
    assert heard == []


def test_the_locking_path_counts_expired_holds_as_everyone_does(heard, store, sku):
    """Several levels take the locking path: an expired hold still on the counter is available
    there too (inventory.db.available_sql), so a change leaving units is not "out of stock", and
    one taking the last live unit is."""
    other = SkuFactory()
    stock(store, sku, 5)
    stock(store, other, 5)
    hold = hold_create(lines=[Line(store.pk, sku.pk, 2)])
    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    stock_reserve(lines=[Line(store.pk, sku.pk, 3), Line(store.pk, other.pk, 1)], reference="O-1")
    assert heard == []  # 2 live units left at the store: what the availability API shows
    stock_reserve(lines=[Line(store.pk, sku.pk, 2), Line(store.pk, other.pk, 1)], reference="O-2")
    assert heard == [(sku.pk, store.pk, MovementKind.RESERVATION)]
