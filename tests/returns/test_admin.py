"""The refunds in the admin: read-only, scoped like orders, shown on the order's page."""

import pytest

from orders import services
from returns.models import Refund
from stores.models import Role
from tests.factories import make_staff
from tests.orders.conftest import pickup, place
from tests.orders.test_admin import login

pytestmark = pytest.mark.django_db

REFUNDS = "/admin/returns/refund/"


@pytest.fixture
def refunds(net):
    here = place(("TEE-0", 1), fulfillment=pickup(), email="a@example.com")  # Shibuya
    there = place(("TEE-1", 1), email="b@example.com")  # the warehouse
    for order in (here, there):
        services.order_cancel(number=order.number, reason="customer cancelled")
    return Refund.objects.get(order=here), Refund.objects.get(order=there)


def test_associates_see_the_refunds_of_their_stores_read_only(net, refunds):
    here, there = refunds
    client = login(make_staff(role=Role.ASSOCIATE, locations=[net.shibuya]))
    r = client.get(REFUNDS)
    assert r.status_code == 200
    assert [x.pk for x in r.context["cl"].result_list] == [here.pk]
    page = client.get(f"{REFUNDS}{here.pk}/change/")
    assert page.status_code == 200
    assert b"1980.00" in page.content
    assert b'name="_save"' not in page.content  # nothing to save
    assert client.get(f"{REFUNDS}{there.pk}/change/").status_code in (302, 404)
    assert client.get(f"{REFUNDS}add/").status_code == 403
    assert client.post(f"{REFUNDS}{here.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Refund.objects.count() == 2


def test_the_orders_page_shows_its_refunds(net, refunds):
    here, _ = refunds
    client = login(make_staff(role=Role.MANAGER, locations=[net.shibuya]))
    page = client.get(f"/admin/orders/order/{here.order_id}/change/")
    assert page.status_code == 200
    assert b"Refunds" in page.content
    assert f"{REFUNDS}{here.pk}/change/".encode() in page.content


def test_warehouse_staff_have_no_refunds_page(net, refunds):
    client = login(make_staff(role=Role.WAREHOUSE, locations=[net.wh]))
    assert client.get(REFUNDS).status_code == 403
    page = client.get(f"/admin/orders/order/{refunds[1].order_id}/change/")
    assert page.status_code == 200
    assert f"{REFUNDS}{refunds[1].pk}/change/".encode() not in page.content


def test_superusers_see_every_refund(net, refunds):
    admin = make_staff(role=Role.MANAGER, is_superuser=True)
    r = login(admin).get(REFUNDS)
    assert sorted(x.pk for x in r.context["cl"].result_list) == sorted(x.pk for x in refunds)
