"""Fixtures for the orders tests: a small network with stock, and a helper that places orders."""

from decimal import Decimal

import pytest
from django.db import transaction

from orders.services import CustomerIn, FulfillmentIn, LineIn, order_place
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, WarehouseFactory, make_staff, stock

TOKYO = {
    "line1": "1-1 Marunouchi",
    "city": "Tokyo",
    "postal_code": "100-0005",
    "country": "JP",
    "latitude": 35.531,
    "longitude": 139.701,
}


@pytest.fixture
def net(db):
    """A warehouse near Tokyo, a pickup store in Shibuya, a store in Osaka; 3 SKUs."""

    class Net:
        pass

    n = Net()
    n.wh = WarehouseFactory(code="WH-KAWASAKI", latitude=35.53, longitude=139.70)
    n.shibuya = LocationFactory(code="TKY-SHIBUYA", latitude=35.6595, longitude=139.7005)
    n.osaka = LocationFactory(code="OSA-UMEDA", latitude=34.7025, longitude=135.4959)
    n.skus = [SkuFactory(code=f"TEE-{i}") for i in range(3)]
    for s in n.skus:
        stock(n.wh, s, 10)
        stock(n.shibuya, s, 3)
        stock(n.osaka, s, 5)
    return n


def ship(address=None):
    return FulfillmentIn(method="ship", address=address or TOKYO)


def pickup(code="TKY-SHIBUYA", method="pickup"):
    return FulfillmentIn(method=method, location=code)


def lines(*pairs, price="1980.00"):
    return [LineIn(sku=code, quantity=q, unit_price=Decimal(price)) for code, q in pairs]


def place(*pairs, **kw):
    """Place an order (tests.orders.conftest.placed) and return the Order."""
    return placed(*pairs, **kw).order


def placed(*pairs, fulfillment=None, email="a@example.com", channel="web", currency="JPY", **kw):
    """Place an order; the PlacedOrder (the order and the rows written for it).

    In its own savepoint: order_place joins the caller's transaction without one, and tests go on
    using theirs after a refused order."""
    with transaction.atomic():
        return order_place(
            channel=channel,
            customer=CustomerIn(email=email, name="Aiko"),
            fulfillment=fulfillment or ship(),
            lines=lines(*pairs),
            currency=currency,
            **kw,
        )


@pytest.fixture
def picker(net):
    return make_staff(role=Role.WAREHOUSE, locations=[net.wh])


@pytest.fixture
def associate(net):
    return make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
