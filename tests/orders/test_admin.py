"""The admin pages warehouse staff and associates use, clicked through as they would."""

import pytest
from django.test import Client

from orders.models import Fulfillment, Order
from stores.models import Role
from tests.factories import make_staff
from tests.orders.conftest import pickup, place

pytestmark = pytest.mark.django_db

QUEUE = "/admin/orders/fulfillment/"


def login(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    c = Client()
    c.force_login(user)
    return c


def act(client, action, ids, **form):
    return client.post(
        QUEUE, {"action": action, "_selected_action": [str(i) for i in ids], "index": 0, **form}, follow=True
    )


def test_queue_shows_only_my_locations_oldest_first(net):
    a = place(("TEE-0", 1)).fulfillments.all()[0]  # warehouse
    b = place(("TEE-1", 1), email="b@example.com").fulfillments.all()[0]
    c = place(("TEE-2", 1), fulfillment=pickup(), email="c@example.com").fulfillments.all()[0]  # Shibuya
    client = login(make_staff(role=Role.WAREHOUSE, locations=[net.wh]))
    r = client.get(QUEUE)
    assert r.status_code == 200
    ids = [f.pk for f in r.context["cl"].result_list]
    assert ids == [a.pk, b.pk]
    assert c.pk not in ids
    assert client.get(f"{QUEUE}{c.pk}/change/").status_code in (302, 404)  # not mine


def test_ship_steps_through_actions(net):
    f = place(("TEE-0", 1)).fulfillments.all()[0]
    client = login(make_staff(role=Role.WAREHOUSE, locations=[net.wh]))
    act(client, "claim", [f.pk])
    act(client, "pick_all", [f.pk])
    act(client, "pack", [f.pk])
    r = act(client, "ship", [f.pk])  # no tracking number: refused, nothing changes
    assert "tracking_number is required" in r.content.decode() or "carrier is required" in r.content.decode()
    assert Fulfillment.objects.get(pk=f.pk).status == "packed"
    act(client, "ship", [f.pk], carrier="Yamato", tracking_number="TRK-9")
    f.refresh_from_db()
    assert (f.status, f.carrier, f.tracking_number) == ("shipped", "Yamato", "TRK-9")
    assert Order.objects.get(pk=f.order_id).status == "shipped"


def test_pickup_collect_with_code_and_wrong_code(net):
    f = place(("TEE-0", 1), fulfillment=pickup()).fulfillments.all()[0]
    client = login(make_staff(role=Role.ASSOCIATE, locations=[net.shibuya]))
    act(client, "claim", [f.pk])
    act(client, "ready", [f.pk])
    f.refresh_from_db()
    assert f.status == "ready_for_pickup"
    wrong = "22222222" if f.pickup_code != "22222222" else "33333333"
    r = act(client, "collect", [f.pk], pickup_code=wrong)
    assert "pickup code does not match" in r.content.decode()
    assert Fulfillment.objects.get(pk=f.pk).status == "ready_for_pickup"
    act(client, "collect", [f.pk], pickup_code=f.pickup_code)
    assert Fulfillment.objects.get(pk=f.pk).status == "collected"


def test_cancel_action(net):
    f = place(("TEE-0", 1)).fulfillments.all()[0]
    client = login(make_staff(role=Role.WAREHOUSE, locations=[net.wh]))
    act(client, "cancel", [f.pk], reason="damaged box")
    f.refresh_from_db()
    assert f.status == "cancelled"
    assert f.events.last().reason == "damaged box"


def test_order_page_shows_timeline_and_routing_reasons_and_search(net):
    order = place(("TEE-0", 1))
    client = login(make_staff(role=Role.WAREHOUSE, locations=[net.wh]))
    r = client.get(f"/admin/orders/order/{order.pk}/change/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "routed to WH-KAWASAKI" in html
    assert "WH-KAWASAKI" in html
    r = client.get("/admin/orders/order/", {"q": "a@example.com"})
    assert [o.pk for o in r.context["cl"].result_list] == [order.pk]
    r = client.get("/admin/orders/order/", {"q": order.number})
    assert [o.pk for o in r.context["cl"].result_list] == [order.pk]
    # an associate of another store does not see it
    other = login(make_staff(role=Role.ASSOCIATE, locations=[net.osaka]))
    assert other.get("/admin/orders/order/").context["cl"].result_count == 0


def test_the_pickup_code_is_not_searchable_nor_shown(net):
    order = place(("TEE-0", 1), fulfillment=pickup())
    f = order.fulfillments.all()[0]
    client = login(make_staff(role=Role.ASSOCIATE, locations=[net.shibuya]))
    act(client, "claim", [f.pk])
    act(client, "ready", [f.pk])
    f.refresh_from_db()
    assert client.get(QUEUE, {"q": f.pickup_code}).context["cl"].result_count == 0
    orders = client.get("/admin/orders/order/", {"q": f.pickup_code})
    assert orders.context["cl"].result_count == 0
    assert client.get(QUEUE, {"q": order.number}).context["cl"].result_count == 1  # still by number
    for page in (
        client.get(QUEUE),
        client.get(f"{QUEUE}{f.pk}/change/"),
        client.get(f"/admin/orders/order/{order.pk}/change/"),
    ):
        assert page.status_code == 200
        assert f.pickup_code not in page.content.decode()
