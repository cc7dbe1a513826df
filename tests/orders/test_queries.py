"""Figure 3: the statements of an order placement do not grow with the number of lines.

Counted without SAVEPOINT/RELEASE: pytest-django's test transaction turns the service's BEGIN and
COMMIT into savepoints. In production the pickup path has none (docs/architecture.md,
"Transactions"); a ship order has one around its reservation (routing's retry), a new customer
with both an email and a phone one around its INSERT.

Placement by orders itself, PostgreSQL (returning customer, ship, one location):
  lookup 1 (SKUs and customer: orders.selectors.placement_lookup), routing 2, reservation 1 (one
  stock level: the guarded UPDATE and its ledger row as one statement) or 3 (several levels:
  SELECT FOR UPDATE + UPDATE + INSERT), order rows 1 (order, lines, fulfillments, fulfillment
  lines, events and a new customer: one statement from one jsonb parameter)
  => 5 for one line, 7 for 2..20 lines.
Pickup (the flash sale's path): lookup 1 (also the store and its stock), order rows 1, reservation
  1 (last, before COMMIT) => 3 for one line, new customer included; a sold-out attempt stops after
  the lookup plus the nearby-stock read of its 409.
Elsewhere (SQLite) the order rows are one bulk INSERT per table (5) and a new customer its own.
The notification listener (notifications app, orders.hooks) adds a constant number on top.
The POST adds authentication (one query: token, user and role; none while the token is in the
cache, OMS["AUTH_CACHE_SECONDS"], which tests set to 0) and the Idempotency-Key INSERT and UPDATE.
Not counted here: a token's first request in OMS["TOKEN_USE_RESOLUTION_SECONDS"] (off in tests)
records its last use, one INSERT .. ON CONFLICT (tests/test_auth_cache.py).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import hooks as inventory_hooks
from orders import hooks
from orders.services import customer_find_or_create
from tests.factories import SkuFactory, WarehouseFactory, stock
from tests.orders.conftest import TOKYO, place

pytestmark = pytest.mark.django_db

PG = connection.vendor == "postgresql"
# One stock level: on PostgreSQL the guarded UPDATE and its ledger INSERT are one statement
# (inventory.db.level_update_guarded_with_movement); elsewhere two.
ONE_LEVEL = 1 if PG else 2
ORDER_ROWS = 1 if PG else 5  # order, lines, fulfillments, fulfillment lines, events
SERVICE_ONE_LINE = 1 + 2 + ONE_LEVEL + ORDER_ROWS  # lookup, routing, reservation, rows
SERVICE_MANY_LINES = 1 + 2 + 3 + ORDER_ROWS
PICKUP_NEW_CUSTOMER = 1 + ORDER_ROWS + (0 if PG else 1) + ONE_LEVEL  # lookup, rows (+customer), reservation
REQUEST_OVERHEAD = 1 + 2  # token with its user and role (1); Idempotency-Key INSERT + UPDATE


def _count(ctx) -> int:
    skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
    return sum(1 for q in ctx.captured_queries if not q["sql"].startswith(skip))


@pytest.fixture
def catalog(db):
    wh = WarehouseFactory(code="WH-Q", latitude=35.53, longitude=139.70)
    skus = [SkuFactory(code=f"Q-{i:02d}") for i in range(20)]
    for s in skus:
        stock(wh, s, 1000)
    customer_find_or_create(email="a@example.com", name="Aiko")
    return skus


@pytest.fixture
def no_listeners(monkeypatch):
    monkeypatch.setattr(hooks, "_listeners", [])
    # Selling the last unit announces stock.out_of_stock (inventory.hooks): the listener's own
    # statements are not the placement's (tests/inventory/test_out_of_stock.py counts them).
    monkeypatch.setattr(inventory_hooks, "_out_of_stock_listeners", [])


def _service_count(skus, n) -> int:
    with CaptureQueriesContext(connection) as ctx:
        place(*[(s.code, 1) for s in skus[:n]])
    return _count(ctx)


def _request_count(client, skus, n) -> int:
    body = {
        "channel": "web",
        "customer": {"email": "a@example.com", "name": "Aiko"},
        "fulfillment": {"method": "ship", "address": TOKYO},
        "lines": [{"sku": s.code, "quantity": 1, "unit_price": "100"} for s in skus[:n]],
        "currency": "JPY",
    }
    with CaptureQueriesContext(connection) as ctx:
        r = client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"q-{n}")
    assert r.status_code == 201, r.content
    return _count(ctx)


def test_service_statements_exact(catalog, no_listeners):
    counts = {n: _service_count(catalog, n) for n in (1, 2, 20)}
    assert counts == {1: SERVICE_ONE_LINE, 2: SERVICE_MANY_LINES, 20: SERVICE_MANY_LINES}


def test_request_statements_exact(catalog, no_listeners, storefront):
    counts = {n: _request_count(storefront, catalog, n) for n in (1, 2, 20)}
    assert counts == {
        1: SERVICE_ONE_LINE + REQUEST_OVERHEAD,
        2: SERVICE_MANY_LINES + REQUEST_OVERHEAD,
        20: SERVICE_MANY_LINES + REQUEST_OVERHEAD,
    }


def test_listeners_add_a_constant(catalog, storefront):
    """With the notification listener on, 2 and 20 lines still cost exactly the same."""
    service = {n: _service_count(catalog, n) for n in (1, 2, 20)}
    request = {n: _request_count(storefront, catalog, n) for n in (1, 2, 20)}
    assert service[20] == service[2] == service[1] + 3 - ONE_LEVEL
    assert request[20] == request[2] == request[1] + 3 - ONE_LEVEL
    assert request[20] == service[20] + REQUEST_OVERHEAD


def test_hold_conversion_statements_do_not_grow(catalog, no_listeners):
    """Placement with a checkout hold: hold_convert (hold, its lines, the reservation, the hold's
    deletion) replaces routing; the same count for 2..20 lines."""
    from orders.services import LineIn, checkout_hold_create
    from tests.orders.conftest import ship

    counts = {}
    for n in (1, 2, 20):
        hold = checkout_hold_create(lines=[LineIn(s.code, 1) for s in catalog[:n]], fulfillment=ship())
        with CaptureQueriesContext(connection) as ctx:
            place(*[(s.code, 1) for s in catalog[:n]], hold_id=hold.pk)
        counts[n] = _count(ctx)
    # lookup 1, hold_convert (the hold, its levels' locks, its lines, the reservation, the hold's
    # deletion), the locations' codes 1, the order rows
    assert counts == ({1: 9, 2: 11, 20: 11} if PG else {1: 14, 2: 15, 20: 15})


def test_pickup_placement_statements(catalog, no_listeners):
    """The flash sale's path: a new customer buys at a pickup store; a sold-out attempt reads only."""
    from tests.factories import LocationFactory
    from tests.orders.conftest import pickup

    store = LocationFactory(code="ST-Q", offers_pickup=True)
    stock(store, catalog[0], 1)
    body = pickup("ST-Q")
    with CaptureQueriesContext(connection) as ctx:
        place((catalog[0].code, 1), fulfillment=body, email="new@example.com")
    assert _count(ctx) == PICKUP_NEW_CUSTOMER
    from inventory.exceptions import InsufficientStock

    with CaptureQueriesContext(connection) as ctx, pytest.raises(InsufficientStock) as exc:
        place((catalog[0].code, 1), fulfillment=body, email="late@example.com")
    assert exc.value.details["lines"][0]["nearby"][0]["location"] == "WH-Q"
    # the lookup (store stock included), then the nearby stock of the 409 (routing's 2 reads)
    assert _count(ctx) == 3, [q["sql"][:80] for q in ctx.captured_queries]
