"""Availability is defined once: `StockLevel.objects.with_available()` (querysets) and
`inventory.db.available_sql` (raw reads) agree, and every reader gives the same number, expired
holds not yet reclaimed included."""

import datetime as dt

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from inventory import db
from inventory.models import HoldLine, StockLevel
from inventory.selectors import (
    availability_for_sku,
    available_at,
    location_stock,
    locations_with_sku,
    stock_for_skus,
    stock_levels_at,
)
from inventory.services import Line, hold_create, stock_reserve
from orders.db import placement_lookup
from orders.routing.data import load_candidates
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, UserFactory, stock

pytestmark = pytest.mark.django_db


def expire(hold) -> None:
    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))


@pytest.fixture
def shelf(store, sku):
    """7 on hand, 1 reserved, 2 in a live hold, 3 in an expired hold not yet reclaimed: 4 available
    (the counters alone leave 1)."""
    stock(store, sku, 7)
    stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
    hold_create(lines=[Line(store.pk, sku.pk, 2)])
    expire(hold_create(lines=[Line(store.pk, sku.pk, 3)]))
    level = StockLevel.objects.get(location=store, sku=sku)
    assert (level.on_hand, level.reserved, level.held, level.raw_available) == (7, 1, 5, 1)
    return level


def test_the_queryset_method_and_the_sql_fragment_agree(store, warehouse, sku):
    other, third = SkuFactory(), SkuFactory()
    stock(store, sku, 5, safety_stock=2)  # nothing held: 3
    stock(warehouse, sku, 4)
    hold_create(lines=[Line(warehouse.pk, sku.pk, 1)])  # a live hold: 3
    stock(store, other, 6)
    expire(hold_create(lines=[Line(store.pk, other.pk, 4)]))  # an expired hold: 6
    stock(warehouse, other, 2, safety_stock=2)
    StockLevel.objects.create(location=warehouse, sku=third)  # empty: 0
    # Safety stock above what is left (a raise after a reservation): shown 0, signed -1.
    stock(store, third, 2)
    stock_reserve(lines=[Line(store.pk, third.pk, 2)], reference="O-2")
    StockLevel.objects.filter(location=store, sku=third).update(safety_stock=1)

    annotated = {lvl.pk: (lvl.active_held, lvl.available) for lvl in StockLevel.objects.with_available()}
    table = connection.ops.quote_name(StockLevel._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id, {db.active_held_sql('s')}, {db.available_sql('s')}, {db.available_sql('s', clamp=False)} "
            f"FROM {table} s",
            [db.now_param()] * 3,
        )
        raw = {pk: (held, available, signed) for pk, held, available, signed in cursor.fetchall()}
    assert {pk: (held, available) for pk, (held, available, _) in raw.items()} == annotated
    by_key = {(lvl.location_id, lvl.sku_id): lvl.pk for lvl in StockLevel.objects.all()}
    expected = {
        (store.pk, sku.pk): (0, 3, 3),
        (warehouse.pk, sku.pk): (1, 3, 3),
        (store.pk, other.pk): (0, 6, 6),
        (warehouse.pk, other.pk): (0, 0, 0),
        (warehouse.pk, third.pk): (0, 0, 0),
        (store.pk, third.pk): (0, 0, -1),
    }
    assert {key: raw[pk] for key, pk in by_key.items()} == expected


def test_every_reader_gives_the_same_number(shelf, store, sku):
    key = (store.pk, sku.pk)
    assert availability_for_sku(sku=sku).available == 4
    (listed,) = availability_for_sku(sku=sku, explain=True).locations
    assert (listed["available"], listed["held"]) == (4, 2)
    assert [(ls.location.code, ls.available) for ls in locations_with_sku(sku=sku)] == [(store.code, 4)]
    assert [ls.location.code for ls in locations_with_sku(sku=sku, quantity=4)] == [store.code]
    assert available_at(pairs=[key]) == {key: 4}
    assert stock_for_skus(sku_ids=[sku.pk]) == {sku.pk: {store.pk: 4}}
    (level,) = location_stock(location=store, in_stock=True)
    assert (level.active_held, level.available) == (2, 4)
    (level,) = stock_levels_at(location=store, sku_ids=[sku.pk])
    assert level.available == 4
    candidates, _ = load_candidates(sku_ids=[sku.pk])
    assert candidates[store.pk].stock == {sku.pk: 4}
    lookup = placement_lookup(
        store_code=store.code, sku_codes=[sku.code], email=None, phone=None, with_store_stock=True
    )
    assert lookup.store_available == {sku.pk: 4}


def test_the_admin_shows_and_filters_the_same_number(shelf, store):
    admin = site._registry[StockLevel]
    request = RequestFactory().get("/")
    request.user = UserFactory(is_superuser=True, is_staff=True)
    (level,) = admin.get_queryset(request)
    assert admin.available(level) == 4
    other = LocationFactory()
    StockLevel.objects.create(location=other, sku=shelf.sku)
    available_filter = admin.get_list_filter(request)[2]
    assert available_filter.parameter_name == "availability"
    assert [
        lvl.pk
        for lvl in available_filter(request, {"availability": ["in"]}, StockLevel, admin).queryset(
            request, admin.get_queryset(request)
        )
    ] == [shelf.pk]


def test_the_stock_levels_of_a_staff_call_do_not_count_expired_holds(api_client_for, shelf, store, sku):
    """The receipt's `stock` once counted the expired hold's units too (available 3 instead of 6)."""
    client = api_client_for(Role.ASSOCIATE, locations=[store])
    r = client.post(
        "/api/v1/stock/receipts/",
        {"location": store.code, "lines": [{"sku": sku.code, "quantity": 2}]},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["stock"] == [
        {
            "sku": sku.code,
            "location": store.code,
            "on_hand": 9,
            "reserved": 1,
            "held": 5,
            "safety_stock": 0,
            "available": 6,
        }
    ]
