"""Return races on PostgreSQL: real threads, real connections, real row locks."""

import pytest
from django.contrib.auth import get_user_model

from inventory.models import StockLevel, StockMovement
from orders.models import OrderLine
from returns.exceptions import ReturnRefused
from returns.models import Refund, Return, ReturnStatus
from returns.services import ReceiveLineIn, ReturnLineIn, return_receive, return_request
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, WarehouseFactory, make_staff, stock
from tests.orders.conftest import TOKYO
from tests.orders.test_concurrency import run_threads
from tests.returns.conftest import delivered

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bought():
    """A shipped order of 2 x RET-A and 1 x RET-B; two associates at the Shibuya store."""
    wh = WarehouseFactory(code="WH-RACE", latitude=TOKYO["latitude"], longitude=TOKYO["longitude"])
    store = LocationFactory(code="TKY-SHIBUYA")
    for code in ("RET-A", "RET-B"):
        sku = SkuFactory(code=code)
        stock(wh, sku, 10)
        stock(store, sku, 1)
    order = delivered(("RET-A", 2), ("RET-B", 1))
    return order, store, [make_staff(role=Role.ASSOCIATE, locations=[store]) for _ in range(2)]


def test_two_associates_receiving_the_same_return_one_wins(bought):
    """Both press "receive" at once: the return's row lock lets one through; the other finds it
    received (409); the stock moved once, one refund."""
    order, store, associates = bought
    ret = return_request(
        order_number=order.number,
        lines=[ReturnLineIn("RET-A", 2, "wrong_size"), ReturnLineIn("RET-B", 1, "damaged")],
        method="in_store",
    )
    on_hand = StockLevel.objects.get(location=store, sku__code="RET-A").on_hand

    def take_back(i):
        from config.errors import InvalidTransition

        user = get_user_model().objects.get(pk=associates[i].pk)
        try:
            return_receive(
                number=ret.number,
                location=store.code,
                lines=[ReceiveLineIn("RET-A", 2, "resellable"), ReceiveLineIn("RET-B", 1, "damaged")],
                user=user,
            )
            return "ok"
        except InvalidTransition:
            return "409"

    assert sorted(run_threads(2, take_back)) == ["409", "ok"]
    assert Return.objects.get(pk=ret.pk).status == ReturnStatus.RECEIVED
    assert StockLevel.objects.get(location=store, sku__code="RET-A").on_hand == on_hand + 2
    assert StockMovement.objects.filter(reference=ret.number).count() == 3  # restock A; restock + damage B
    assert Refund.objects.filter(return_ref=ret).count() == 1


def test_racing_requests_for_the_last_units(bought):
    """Eight requests for both units of RET-A at once: the order line's lock and guard let one through."""
    order, _, _ = bought

    def ask(i):
        try:
            return_request(
                order_number=order.number, lines=[ReturnLineIn("RET-A", 2, "wrong_size")], method="in_store"
            )
            return "ok"
        except ReturnRefused:
            return "422"

    assert sorted(run_threads(8, ask)) == ["422"] * 7 + ["ok"]
    assert OrderLine.objects.get(order=order, sku__code="RET-A").returned_quantity == 2
    assert Return.objects.count() == 1
