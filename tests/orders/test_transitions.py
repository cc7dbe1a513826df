"""Walk every (from, to) pair of the fulfillment table for both methods."""

import itertools

import pytest

from config.errors import InvalidTransition
from inventory.models import StockLevel
from orders import transitions
from orders.models import Fulfillment, FulfillmentStatus, OrderEvent, OrderStatus
from orders.transitions import FULFILLMENT_TRANSITIONS, order_status_from
from tests.orders.conftest import pickup, place

pytestmark = pytest.mark.django_db

STATUSES = list(FulfillmentStatus.values)


def _expected(method, a, b):
    if b not in FULFILLMENT_TRANSITIONS[a]:
        return False
    if method in ("ship", "to_store"):
        return b not in ("ready_for_pickup", "collected", "awaiting_transfer")
    return b not in ("packed", "shipped")


@pytest.mark.parametrize(("a", "b"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair_of_a_to_store_fulfillment(a, b):
    """A warehouse's part of ship to store follows the ship path; it never awaits a transfer."""
    assert transitions.allowed(method="to_store", from_status=a, to_status=b) == _expected("to_store", a, b)


@pytest.mark.parametrize(
    ("method", "a", "b"), list(itertools.product(["ship", "pickup"], STATUSES, STATUSES))
)
def test_every_pair(net, method, a, b):
    order = place(("TEE-0", 1), fulfillment=pickup() if method == "pickup" else None)
    f = order.fulfillments.all()[0]
    Fulfillment.objects.filter(pk=f.pk).update(status=a)
    events_before = OrderEvent.objects.count()
    stock_before = list(StockLevel.objects.values_list("on_hand", "reserved").order_by("pk"))
    if _expected(method, a, b):
        _f2, events = transitions.transition(f.pk, b, reason="walk")
        assert Fulfillment.objects.get(pk=f.pk).status == b
        assert events[0].from_status == a
        assert events[0].to_status == b
        assert events[0].pk
    else:
        with pytest.raises(InvalidTransition) as e:
            transitions.transition(f.pk, b, reason="walk")
        assert e.value.details["from"] == a
        assert e.value.details["to"] == b
        assert Fulfillment.objects.get(pk=f.pk).status == a
        assert OrderEvent.objects.count() == events_before
    assert list(StockLevel.objects.values_list("on_hand", "reserved").order_by("pk")) == stock_before


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([("ship", "pending")], OrderStatus.PLACED),
        ([("ship", "pending"), ("ship", "picking")], OrderStatus.IN_PROGRESS),
        ([("ship", "shipped"), ("ship", "packed")], OrderStatus.PARTIALLY_SHIPPED),
        ([("ship", "shipped"), ("ship", "cancelled")], OrderStatus.SHIPPED),
        ([("pickup", "ready_for_pickup")], OrderStatus.READY_FOR_PICKUP),
        ([("pickup", "collected")], OrderStatus.COMPLETED),
        ([("ship", "shipped"), ("pickup", "collected")], OrderStatus.COMPLETED),
        ([("ship", "cancelled")], OrderStatus.CANCELLED),
        ([], OrderStatus.CANCELLED),
        # Ship to store: the warehouse's to_store part never counts; the pickup's does.
        ([("pickup", "awaiting_transfer"), ("to_store", "pending")], OrderStatus.IN_TRANSIT_TO_STORE),
        ([("pickup", "awaiting_transfer"), ("to_store", "shipped")], OrderStatus.IN_TRANSIT_TO_STORE),
        ([("pickup", "awaiting_transfer"), ("pickup", "pending")], OrderStatus.IN_TRANSIT_TO_STORE),
        ([("pickup", "pending"), ("to_store", "shipped")], OrderStatus.PLACED),
        ([("pickup", "cancelled"), ("to_store", "shipped")], OrderStatus.CANCELLED),
        ([("pickup", "collected"), ("to_store", "shipped")], OrderStatus.COMPLETED),
    ],
)
def test_order_status_is_derived(statuses, expected):
    assert order_status_from(statuses) == expected
