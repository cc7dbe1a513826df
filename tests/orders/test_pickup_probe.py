"""Probing the pickup journey as a hostile user would (issue 10): each test here failed first."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from inventory.selectors import held_mismatches, ledger_mismatches
from notifications.models import Notification, NotificationEvent
from orders import services
from orders.models import (
    EventType,
    FulfillmentMethod,
    OrderEvent,
    OrderStatus,
)
from returns.models import Refund, RefundLine
from stores.models import Location, Role
from tests.access.api_probes import snapshot
from tests.factories import make_staff
from tests.orders.conftest import pickup, place

pytestmark = pytest.mark.django_db

PAGE = "/admin/orders/pickup/"


def card(f) -> str:
    return f"{PAGE}{f.pk}/change/"


def login(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def associate(net):
    return make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])


def ready(sku="TEE-0", qty=1, store="TKY-SHIBUYA"):
    f = place((sku, qty), fulfillment=pickup(store)).fulfillments.get()
    services.fulfillment_start(fulfillment_id=f.pk, user=None)
    return services.fulfillment_ready(fulfillment_id=f.pk, user=None)


# --- The Pickups card: what the associate types ---------------------------------------------------


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"step": "partial", "taken_TEE-0": "\u00b2"}, "whole number"),  # superscript two: isdigit, not int
        ({"step": "partial", "taken_TEE-0": "9" * 5000}, "TEE-0"),  # beyond int()'s digit limit
        ({"step": "extend", "days": "\u00b2", "reason": "x"}, "whole number"),
        ({"step": "extend", "days": "9" * 5000, "reason": "x"}, "days"),
    ],
)
def test_odd_numbers_typed_on_the_card_are_a_message_not_a_server_error(net, associate, form, says):
    f = ready(qty=2)
    c = login(associate)
    before = snapshot()
    r = c.post(card(f), {"pickup_code": f.pickup_code, **form}, follow=True)
    assert r.status_code == 200
    assert says in r.content.decode()
    assert snapshot() == before


# --- Expiry of a ship-to-store pickup ---------------------------------------------------------------


@pytest.fixture
def s2s(net):
    Location.objects.filter(pk=net.shibuya.pk).update(ship_to_store=True, transit_days=2)
    net.shibuya.refresh_from_db()
    return net


def test_an_expired_ship_to_store_pickup_is_cancelled_as_an_expired_pickup(s2s):
    """The warehouse's shipped part is not a live fulfillment of the customer: the order is cancelled
    whole, and the customer is told it expired (not "a line was cancelled")."""
    order = place(("TEE-0", 5), fulfillment=pickup("TKY-SHIBUYA"))
    store_f = order.fulfillments.exclude(method=FulfillmentMethod.TO_STORE).get()
    leg = order.fulfillments.get(method=FulfillmentMethod.TO_STORE)
    services.fulfillment_start(fulfillment_id=leg.pk, user=None)
    services.fulfillment_pack(fulfillment_id=leg.pk, user=None)
    leg = services.fulfillment_ship(fulfillment_id=leg.pk, carrier="Truck", tracking_number="T1", user=None)
    from inventory.services import transfer_receive

    transfer_receive(transfer_id=leg.transfer_id, user=None)
    services.fulfillment_start(fulfillment_id=store_f.pk, user=None)
    services.fulfillment_ready(fulfillment_id=store_f.pk, user=None)

    assert services.pickups_expire(now=timezone.now() + dt.timedelta(days=30)) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert OrderEvent.objects.filter(order=order, type=EventType.CANCELLED).exists()
    assert not OrderEvent.objects.filter(order=order, type=EventType.LINE_CANCELLED).exists()
    assert Notification.objects.filter(order_id=order.pk, event=NotificationEvent.PICKUP_EXPIRED).exists()
    assert Refund.objects.get(order=order).cause == "pickup_expired"
    assert sum(RefundLine.objects.filter(refund__order=order).values_list("quantity", flat=True)) == 5
    assert ledger_mismatches() == []
    assert held_mismatches() == []
