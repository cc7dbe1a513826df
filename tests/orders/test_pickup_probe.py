"""Probing the pickup journey as a hostile user would (issue 10): each test here failed first."""

import pytest
from django.test import Client

from orders import services
from stores.models import Role
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
