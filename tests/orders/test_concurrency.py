"""Races on PostgreSQL: real threads, real connections, real row locks."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from inventory.exceptions import InsufficientStock
from inventory.models import StockLevel
from inventory.selectors import ledger_mismatches
from orders import services
from orders.models import Customer, Fulfillment, IdempotencyKey, Order
from stores.models import Role
from tests.factories import SkuFactory, WarehouseFactory, make_staff, stock
from tests.orders.conftest import TOKYO, place

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_threads(n, fn):
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait()
            return fn(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


def test_flash_sale_last_ten_units_exactly_ten_orders():
    wh = WarehouseFactory(code="WH-FLASH", latitude=35.53, longitude=139.70)
    sku = SkuFactory(code="FLASH")
    stock(wh, sku, 10)

    def buy(i):
        try:
            place(("FLASH", 1), email="same@example.com")  # one customer row, 32 racing inserts
            return "ok"
        except InsufficientStock:
            return "409"

    results = run_threads(32, buy)
    assert results.count("ok") == 10
    assert results.count("409") == 22
    assert Order.objects.count() == 10
    lvl = StockLevel.objects.get(location=wh, sku=sku)
    assert (lvl.on_hand, lvl.reserved) == (10, 10)
    assert Customer.objects.count() == 1
    assert ledger_mismatches() == []


def test_pickup_flash_sale_one_new_customer_exactly_ten_orders():
    """The flash sale's path: the stock check in the lookup, the order's rows (and a new customer,
    the same for every thread) in one statement, the reservation last before COMMIT."""
    from tests.factories import LocationFactory
    from tests.orders.conftest import pickup

    store = LocationFactory(code="ST-FLASH", offers_pickup=True)
    sku = SkuFactory(code="FLASH-PICKUP")
    stock(store, sku, 10)

    def buy(i):
        try:
            place(("FLASH-PICKUP", 1), fulfillment=pickup("ST-FLASH"), email="first-time@example.com")
            return "ok"
        except InsufficientStock as exc:
            return "409" if exc.details["lines"][0]["sku"] == "FLASH-PICKUP" else "409?"

    results = run_threads(32, buy)
    assert results.count("ok") == 10
    assert results.count("409") == 22
    lvl = StockLevel.objects.get(location=store, sku=sku)
    assert (lvl.on_hand, lvl.reserved) == (10, 10)
    assert Customer.objects.filter(email="first-time@example.com").count() == 1
    assert Order.objects.filter(customer__email="first-time@example.com").count() == 10
    assert Fulfillment.objects.filter(location=store).count() == 10
    assert ledger_mismatches() == []


def test_first_orders_sharing_a_phone_with_other_emails_all_succeed():
    """New customers with an email and a phone: a concurrent first order may clash on either unique
    constraint; each order succeeds and lands on one of the customers, never a 409 or a 500."""
    from orders.services import CustomerIn, LineIn, order_place
    from tests.factories import LocationFactory
    from tests.orders.conftest import pickup

    store = LocationFactory(code="ST-PHONE", offers_pickup=True)
    sku = SkuFactory(code="PHONE-SKU")
    stock(store, sku, 100)

    def buy(i):
        order = order_place(
            channel="app",
            customer=CustomerIn(email=f"person-{i}@example.com", phone="090-5555-0000", name=f"P{i}"),
            fulfillment=pickup("ST-PHONE"),
            lines=[LineIn(sku="PHONE-SKU", quantity=1, unit_price="100")],
            currency="JPY",
        ).order
        return order.customer_id

    customer_ids = run_threads(8, buy)
    assert Order.objects.filter(fulfillments__location=store).count() == 8
    assert Customer.objects.filter(phone="+819055550000").count() == 1
    assert set(customer_ids) <= set(Customer.objects.values_list("pk", flat=True))
    assert ledger_mismatches() == []


def test_claim_race_no_task_twice():
    wh = WarehouseFactory(code="WH-CLAIM", latitude=35.53, longitude=139.70)
    sku = SkuFactory(code="CLAIM")
    stock(wh, sku, 50)
    for i in range(50):
        place(("CLAIM", 1), email=f"c{i}@example.com")
    workers = [make_staff(role=Role.WAREHOUSE, locations=[wh]) for _ in range(16)]

    def claim_all(i):
        got = []
        while (f := services.fulfillment_claim(location=wh, user=workers[i])) is not None:
            got.append(f.pk)
        return got

    claimed = [pk for got in run_threads(16, claim_all) for pk in got]
    assert len(claimed) == 50
    assert len(set(claimed)) == 50
    assert not Fulfillment.objects.filter(status="pending").exists()
    assert Fulfillment.objects.filter(claimed_by__isnull=False).count() == 50


def test_concurrent_duplicates_of_one_idempotency_key_make_one_order():
    wh = WarehouseFactory(code="WH-IDEM", latitude=35.53, longitude=139.70)
    sku = SkuFactory(code="IDEM")
    stock(wh, sku, 100)
    user = make_staff(role=Role.STOREFRONT)
    _, token = AuthToken.objects.create(user=user)
    body = {
        "channel": "web",
        "customer": {"email": "dup@example.com"},
        "fulfillment": {"method": "ship", "address": TOKYO},
        "lines": [{"sku": "IDEM", "quantity": 1, "unit_price": "100"}],
        "currency": "JPY",
    }

    def send(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        r = client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="dup-key")
        return r.status_code, r.content

    results = run_threads(12, send)
    statuses = [s for s, _ in results]
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1
    assert Order.objects.count() == 1
    assert len({c for s, c in results if s == 201}) == 1  # every 201 is the same bytes
    for s, c in results:
        if s == 409:
            assert b"idempotency_in_progress" in c
    assert IdempotencyKey.objects.count() == 1
    assert StockLevel.objects.get(location=wh, sku=sku).reserved == 1


def test_a_duplicate_while_the_first_is_running_is_409_then_replays():
    """Deterministic: the first request is held inside its transaction while the duplicate arrives."""
    from rest_framework.response import Response

    from config.idempotency import IdempotencyInProgress, IdempotencyKeyReused, idempotent_run

    user = make_staff(role=Role.STOREFRONT)
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow_work():
        calls.append("first")
        started.set()
        release.wait(10)
        return Response({"ok": True}, status=201)

    def first():
        try:
            return idempotent_run(owner_id=user.pk, key="slow", fp="fp-1", work=slow_work)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(first)
        assert started.wait(10)
        with pytest.raises(IdempotencyInProgress):
            idempotent_run(owner_id=user.pk, key="slow", fp="fp-1", work=lambda: calls.append("dup"))
        release.set()
        original = future.result(timeout=10)
    assert original.status_code == 201
    replay = idempotent_run(owner_id=user.pk, key="slow", fp="fp-1", work=lambda: calls.append("dup"))
    assert (replay.status_code, replay.content) == (201, original.content)
    with pytest.raises(IdempotencyKeyReused):
        idempotent_run(owner_id=user.pk, key="slow", fp="fp-2", work=lambda: calls.append("dup"))
    assert calls == ["first"]


def test_racing_holds_and_ship_orders_leave_no_orphan_hold_rows():
    """A lost routing race retries; the failed attempt must leave nothing behind (issue 8).

    48 threads race checkout holds and ship orders for the last units of three SKUs at three
    warehouses (2 units per level). Routing reads the stock, another thread takes it, the
    reservation fails and routing runs again. Each attempt runs in its own savepoint, so afterwards
    every level's `held` equals the units of its hold lines, every hold row carries units, the
    holds that exist are exactly those that succeeded, and the ledger agrees with the counters.
    """
    from django.db.models import Sum

    from inventory.models import Hold, HoldLine
    from tests.orders.conftest import ship

    warehouses = [
        WarehouseFactory(code=f"WH-RACE-{i}", latitude=35.5 + i / 10, longitude=139.7) for i in range(3)
    ]
    skus = [SkuFactory(code=f"RACE-{j}") for j in range(3)]
    for wh in warehouses:
        for sku in skus:
            stock(wh, sku, 2)

    def act(i):
        codes = [skus[i % 3].code] + ([skus[(i + 1) % 3].code] if i % 4 == 0 else [])
        try:
            if i % 2:
                services.checkout_hold_create(
                    lines=[services.LineIn(code, 1) for code in codes], fulfillment=ship(TOKYO)
                )
                return "hold"
            place(*[(code, 1) for code in codes], email=f"race-{i}@example.com")
            return "order"
        except InsufficientStock:
            return "409"

    results = run_threads(48, act)
    assert results.count("409") > 0  # the units ran out: the race happened
    for level in StockLevel.objects.all():
        units = HoldLine.objects.filter(location=level.location, sku=level.sku).aggregate(n=Sum("quantity"))[
            "n"
        ]
        assert level.held == (units or 0), f"{level}: held {level.held}, hold lines {units}"
    assert not Hold.objects.filter(lines__isnull=True).exists()
    assert Hold.objects.count() == results.count("hold")
    assert Order.objects.count() == results.count("order")
    assert ledger_mismatches() == []
    from inventory.selectors import held_mismatches, holds_without_units

    assert held_mismatches() == []  # what inventory_audit checks in production
    assert holds_without_units() == []
