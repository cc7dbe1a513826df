"""Who sees which orders and customers (docs/security.md): the storefront the customers it
serves, staff their locations, network managers and admins everything."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from orders.models import Customer, Order
from stores.models import Role
from tests.factories import make_staff
from tests.orders.conftest import TOKYO, place

pytestmark = pytest.mark.django_db

URL = "/api/v1/orders/"
C = "/api/v1/customers/"


def order_body(customer: dict, *, channel="web", method="ship", sku="TEE-0") -> dict:
    fulfillment = (
        {"method": method, "address": TOKYO}
        if method == "ship"
        else {"method": method, "location": "TKY-SHIBUYA"}
    )
    return {
        "channel": channel,
        "customer": customer,
        "fulfillment": fulfillment,
        "lines": [{"sku": sku, "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }


_keys = iter(range(10**6))


def post(client, data) -> dict:
    r = client.post(URL, data, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{next(_keys)}")
    assert r.status_code == 201, r.content
    return r.json()


def error_code(r, status) -> str:
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


@pytest.fixture
def shops(net, api_client_for):
    """Two storefront accounts, each with its own customer; a till order for Aiko at Shibuya."""

    class S:
        pass

    s = S()
    s.a = api_client_for(Role.STOREFRONT)
    s.b = api_client_for(Role.STOREFRONT)
    s.aiko_web = post(
        s.a, order_body({"email": "aiko@example.com", "phone": "090-1234-5678", "name": "Aiko"})
    )
    s.ken_web = post(s.b, order_body({"email": "ken@example.com", "name": "Ken"}))
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    s.aiko_till = post(assoc, order_body({"phone": "090-1234-5678"}, channel="store", method="pickup"))
    s.aiko = s.aiko_web["customer"]["id"]
    s.ken = s.ken_web["customer"]["id"]
    return s


# --- Orders: the storefront ---------------------------------------------------------------------


def test_storefront_lists_only_the_orders_of_customers_it_serves(shops):
    assert {o["number"] for o in shops.a.get(URL).json()["results"]} == {
        shops.aiko_web["number"],
        shops.aiko_till["number"],  # placed by an associate: still Aiko's, and A serves Aiko
    }
    assert [o["number"] for o in shops.b.get(URL).json()["results"]] == [shops.ken_web["number"]]


def test_storefront_gets_404_for_orders_of_customers_it_does_not_serve(shops):
    for number in (shops.aiko_web["number"], shops.aiko_till["number"]):
        assert error_code(shops.b.get(f"{URL}{number}/"), 404) == "unknown_order"
        assert error_code(shops.b.get(f"{URL}{number}/events/"), 404) == "unknown_order"
        assert error_code(shops.b.post(f"{URL}{number}/arrived/", {}, format="json"), 404) == "unknown_order"
        assert error_code(shops.b.post(f"{URL}{number}/cancel/", {}, format="json"), 404) == "unknown_order"
    assert Order.objects.get(number=shops.aiko_web["number"]).status == "placed"
    assert shops.a.get(f"{URL}{shops.aiko_till['number']}/").status_code == 200
    assert shops.a.get(f"{URL}{shops.aiko_till['number']}/events/").status_code == 200


def test_storefront_cancels_a_served_customers_order(shops):
    r = shops.a.post(f"{URL}{shops.aiko_till['number']}/cancel/", {"reason": "changed mind"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "cancelled"


def test_orders_nobody_placed_are_invisible_to_the_storefront(net, storefront):
    order = place(("TEE-0", 1), email="system@example.com")  # a system caller: placed_by is None
    assert error_code(storefront.get(f"{URL}{order.number}/"), 404) == "unknown_order"
    assert storefront.get(URL).json()["count"] == 0
    assert error_code(storefront.get(f"{C}{order.customer_id}/"), 404) == "unknown_customer"


def test_storefront_filter_by_email_finds_a_served_customers_till_orders(shops):
    got = shops.a.get(URL, {"customer_email": "AIKO@example.com"}).json()["results"]
    assert {o["number"] for o in got} == {shops.aiko_web["number"], shops.aiko_till["number"]}
    assert shops.b.get(URL, {"customer_email": "aiko@example.com"}).json()["count"] == 0


def test_associate_filter_by_email_matches_only_what_the_order_was_placed_with(net, shops, api_client_for):
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    assert assoc.get(URL, {"customer_email": "aiko@example.com"}).json()["count"] == 0  # placed by phone
    got = assoc.get(URL, {"customer_phone": "090-1234-5678"}).json()["results"]
    assert [o["number"] for o in got] == [shops.aiko_till["number"]]


def _detail_queries(client, number) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(f"{URL}{number}/").status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_storefront_order_detail_is_one_query_with_a_semi_join(shops, api_client_for):
    network = api_client_for(Role.MANAGER, network_wide=True)
    number = shops.aiko_till["number"]
    by_storefront = _detail_queries(shops.a, number)
    by_network = _detail_queries(network, number)
    # token, the order (+ the served-customer EXISTS), its lines, fulfillments, fulfillment lines
    assert len(by_storefront) == len(by_network) == 5
    order_sql = next(q for q in by_storefront if 'FROM "orders_order"' in q and "orders_orderline" not in q)
    assert "EXISTS" in order_sql


# --- Orders: staff --------------------------------------------------------------------------------


def test_network_manager_sees_every_order_scoped_manager_their_locations(net, shops, api_client_for):
    network = api_client_for(Role.MANAGER, network_wide=True)
    assert network.get(URL).json()["count"] == 3
    osaka = api_client_for(Role.MANAGER, locations=[net.osaka])
    assert osaka.get(URL).json()["count"] == 0
    assert error_code(osaka.get(f"{URL}{shops.aiko_till['number']}/"), 404) == "unknown_order"
    nowhere = api_client_for(Role.MANAGER)
    assert nowhere.get(URL).json()["count"] == 0
    r = network.post(f"{URL}{shops.ken_web['number']}/cancel/", {}, format="json")
    assert r.json()["status"] == "cancelled"


# --- Customers ------------------------------------------------------------------------------------


def test_customer_detail_per_role(net, shops, api_client_for):
    assert shops.a.get(f"{C}{shops.aiko}/").status_code == 200
    assert error_code(shops.a.get(f"{C}{shops.ken}/"), 404) == "unknown_customer"
    assert error_code(shops.b.get(f"{C}{shops.aiko}/"), 404) == "unknown_customer"
    for role, locations in ((Role.ASSOCIATE, [net.shibuya]), (Role.WAREHOUSE, [net.wh])):
        assert (
            error_code(api_client_for(role, locations=locations).get(f"{C}{shops.aiko}/"), 403) == "forbidden"
        )
    network = api_client_for(Role.MANAGER, network_wide=True)
    assert network.get(f"{C}{shops.ken}/").status_code == 200
    nowhere = api_client_for(Role.MANAGER)
    assert error_code(nowhere.get(f"{C}{shops.aiko}/"), 404) == "unknown_customer"


def test_storefront_sees_all_of_a_served_customers_orders(shops):
    got = shops.a.get(f"{C}{shops.aiko}/").json()
    assert {o["number"] for o in got["orders"]} == {shops.aiko_web["number"], shops.aiko_till["number"]}


def test_scoped_manager_sees_customers_with_an_order_at_their_locations_and_only_those_orders(
    net, shops, api_client_for
):
    shibuya = api_client_for(Role.MANAGER, locations=[net.shibuya])
    got = shibuya.get(f"{C}{shops.aiko}/").json()
    assert [o["number"] for o in got["orders"]] == [shops.aiko_till["number"]]  # not the web order (WH)
    assert error_code(shibuya.get(f"{C}{shops.ken}/"), 404) == "unknown_customer"
    wh = api_client_for(Role.MANAGER, locations=[net.wh])
    assert {o["number"] for o in wh.get(f"{C}{shops.aiko}/").json()["orders"]} == {shops.aiko_web["number"]}
    network = api_client_for(Role.MANAGER, network_wide=True)
    assert len(network.get(f"{C}{shops.aiko}/").json()["orders"]) == 2


def test_preferences_follow_the_same_rule_and_refusals_change_nothing(net, shops, api_client_for):
    url = f"{C}{shops.aiko}/preferences/"
    patch = {"language": "ja"}
    assert error_code(shops.b.patch(url, patch, format="json"), 404) == "unknown_customer"
    osaka = api_client_for(Role.MANAGER, locations=[net.osaka])
    assert error_code(osaka.patch(url, patch, format="json"), 404) == "unknown_customer"
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    assert error_code(assoc.patch(url, patch, format="json"), 403) == "forbidden"
    assert Customer.objects.get(pk=shops.aiko).language == "en"
    shibuya = api_client_for(Role.MANAGER, locations=[net.shibuya])
    r = shibuya.patch(url, patch, format="json")
    assert r.status_code == 200, r.content
    assert [o["number"] for o in r.json()["orders"]] == [shops.aiko_till["number"]]
    assert shops.a.patch(url, {"language": "en"}, format="json").status_code == 200
    network = api_client_for(Role.MANAGER, network_wide=True)
    assert network.patch(f"{C}{shops.ken}/preferences/", patch, format="json").status_code == 200
    assert Customer.objects.get(pk=shops.ken).language == "ja"


# --- The customer admin ---------------------------------------------------------------------------


def _admin(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


CL = "/admin/orders/customer/"


def test_customer_admin_scoped_like_the_api(net, shops):
    shibuya = _admin(make_staff(role=Role.MANAGER, locations=[net.shibuya]))
    r = shibuya.get(CL)
    assert r.status_code == 200
    assert [c.pk for c in r.context["cl"].result_list] == [shops.aiko]
    assert shibuya.get(f"{CL}{shops.aiko}/change/").status_code == 200
    assert shibuya.get(f"{CL}{shops.ken}/change/").status_code in (302, 403, 404)

    network = _admin(make_staff(role=Role.MANAGER, network_wide=True))
    assert {c.pk for c in network.get(CL).context["cl"].result_list} == {shops.aiko, shops.ken}
    assert network.get(f"{CL}{shops.ken}/change/").status_code == 200

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    superuser = Client()
    superuser.force_login(root)
    assert superuser.get(CL).context["cl"].result_count == 2


@pytest.mark.parametrize("role", [Role.ASSOCIATE, Role.WAREHOUSE])
def test_customer_admin_is_closed_to_associates_and_warehouse_staff(net, shops, role):
    client = _admin(make_staff(role=role, locations=[net.shibuya if role == Role.ASSOCIATE else net.wh]))
    assert client.get(CL).status_code == 403
    assert client.get(f"{CL}{shops.aiko}/change/").status_code in (302, 403)
    assert "/admin/orders/customer/" not in client.get("/admin/").content.decode()


# --- Placing orders: staff place till orders at their stores ----------------------------------------


def _till(customer_email="walkin@example.com", **extra) -> dict:
    return order_body({"email": customer_email}, channel="store") | extra


def test_staff_place_till_orders_only(net, api_client_for):
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    network = api_client_for(Role.MANAGER, network_wide=True)
    for client in (assoc, network):
        r = client.post(
            URL, order_body({"email": "w@example.com"}), format="json", HTTP_IDEMPOTENCY_KEY="web"
        )
        assert error_code(r, 403) == "till_orders_only"
    assert not Order.objects.exists()
    wh = api_client_for(Role.WAREHOUSE, locations=[net.wh])
    assert error_code(wh.post(URL, _till(), format="json", HTTP_IDEMPOTENCY_KEY="wh"), 403) == "forbidden"
    assert not Order.objects.exists()


def test_till_orders_at_own_stores_only_network_manager_anywhere(net, api_client_for):
    scoped = api_client_for(Role.MANAGER, locations=[net.shibuya])
    r = scoped.post(URL, _till(placed_at="OSA-UMEDA"), format="json", HTTP_IDEMPOTENCY_KEY="x")
    assert error_code(r, 403) == "location_forbidden"
    assert not Order.objects.exists()
    assert post(scoped, _till(placed_at="TKY-SHIBUYA"))["placed_at_location"] == "TKY-SHIBUYA"
    nowhere = api_client_for(Role.MANAGER)
    r = nowhere.post(URL, _till(placed_at="TKY-SHIBUYA"), format="json", HTTP_IDEMPOTENCY_KEY="y")
    assert error_code(r, 403) == "location_forbidden"
    network = api_client_for(Role.MANAGER, network_wide=True)
    assert post(network, _till(placed_at="OSA-UMEDA"))["placed_at_location"] == "OSA-UMEDA"
    assert Order.objects.count() == 2


def test_a_superuser_may_place_any_channel(net):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    assert post(client, order_body({"email": "r@example.com"}))["channel"] == "web"


def test_the_service_refuses_warehouse_staff_too(net):
    from config.errors import Forbidden
    from orders.services import CustomerIn, FulfillmentIn, LineIn, order_place

    picker = make_staff(role=Role.WAREHOUSE, locations=[net.wh])
    with pytest.raises(Forbidden) as exc:
        order_place(
            channel="store",
            customer=CustomerIn(email="w@example.com"),
            fulfillment=FulfillmentIn(method="ship", address=TOKYO),
            lines=[LineIn(sku="TEE-0", quantity=1, unit_price=Decimal("100"))],
            currency="JPY",
            user=picker,
            placed_at="TKY-SHIBUYA",
        )
    assert exc.value.code == "till_orders_only"
