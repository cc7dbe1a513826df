"""Figure 3: the statements of an order placement do not grow with the number of lines.

Counted without SAVEPOINT/RELEASE (pytest-django's test transaction turns the service's BEGIN and
COMMIT into savepoints; in production they are not statements the ORM logs).

Placement by orders itself (returning customer, ship, one location):
  SKUs 1, customer 1, routing 2, reservation 1 on PostgreSQL / 2 elsewhere (one stock level: the
  guarded UPDATE and the ledger INSERT, as one statement on PostgreSQL) or 3 (several levels:
  SELECT FOR UPDATE + UPDATE + INSERT, inventory.services), order 1, lines 1, fulfillments 1,
  fulfillment lines 1, events 1  => 10 (PostgreSQL) / 11 for one line, 12 for 2..20 lines.
The notification listener (notifications app, orders.hooks) adds a constant number on top.
The POST adds authentication (one query: token, user and role) and the Idempotency-Key INSERT and UPDATE.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import hooks
from orders.services import customer_find_or_create
from tests.factories import SkuFactory, WarehouseFactory, stock
from tests.orders.conftest import TOKYO, place

pytestmark = pytest.mark.django_db

# One stock level: on PostgreSQL the guarded UPDATE and its ledger INSERT are one statement
# (inventory.services._single_change_sql); elsewhere two.
ONE_LEVEL = 1 if connection.vendor == "postgresql" else 2
SERVICE_ONE_LINE = 9 + ONE_LEVEL
SERVICE_MANY_LINES = 12
REQUEST_OVERHEAD = 1 + 2  # token with its user and role (1); Idempotency-Key INSERT + UPDATE


def _count(ctx) -> int:
    return sum(1 for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT")))


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
    deletion) replaces routing; 15 statements for 2..20 lines."""
    from orders.services import LineIn, checkout_hold_create
    from tests.orders.conftest import ship

    counts = {}
    for n in (1, 2, 20):
        hold = checkout_hold_create(lines=[LineIn(s.code, 1) for s in catalog[:n]], fulfillment=ship())
        with CaptureQueriesContext(connection) as ctx:
            place(*[(s.code, 1) for s in catalog[:n]], hold_id=hold.pk)
        counts[n] = _count(ctx)
    assert counts == {1: 12 + ONE_LEVEL, 2: 15, 20: 15}
