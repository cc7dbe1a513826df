"""An order shows the contact as given on it (Order.contact_*), and staff at the till never change
the stored customer (docs/security.md, "Personal data")."""

import importlib

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client

from orders.models import Customer, Order
from orders.services import CustomerIn, order_place
from stores.models import Role
from tests.factories import make_staff
from tests.orders.conftest import TOKYO, lines, placed, ship

pytestmark = pytest.mark.django_db

URL = "/api/v1/orders/"
AIKO = {"email": "aiko@example.com", "phone": "+819012345678", "name": "Aiko Tanaka"}


def order_body(customer: dict, channel="web", key_sku="TEE-0") -> dict:
    return {
        "channel": channel,
        "customer": customer,
        "fulfillment": {"method": "ship", "address": TOKYO},
        "lines": [{"sku": key_sku, "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }


def post(client, data, key):
    r = client.post(URL, data, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 201, r.content
    return r.json()


@pytest.fixture
def aiko(net, storefront):
    """A customer the storefront created with an email, a phone and a name."""
    data = post(storefront, order_body(AIKO), "aiko-1")
    return Customer.objects.get(pk=data["customer"]["id"])


def stored(customer) -> tuple:
    c = Customer.objects.get(pk=customer.pk)
    return c.email, c.phone, c.name


def test_till_order_with_only_a_phone_shows_nothing_else_of_the_customer(net, aiko, api_client_for):
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    data = post(assoc, order_body({"phone": "090-1234-5678"}, channel="store"), "till-1")
    # The order joins the customer's history, but shows only what the till was given.
    assert data["customer"] == {"id": aiko.pk, "email": None, "phone": "+819012345678", "name": ""}
    order = Order.objects.get(number=data["number"])
    assert order.customer_id == aiko.pk
    assert (order.contact_email, order.contact_phone, order.contact_name) == (None, "+819012345678", "")
    again = assoc.get(f"{URL}{data['number']}/").json()
    assert again["customer"] == data["customer"]
    listed = assoc.get(URL).json()["results"]
    assert [o["customer"] for o in listed] == [data["customer"]]
    assert "aiko@example.com" not in assoc.get(URL).content.decode()
    assert stored(aiko) == ("aiko@example.com", "+819012345678", "Aiko Tanaka")


def test_till_order_with_the_email_and_another_name_does_not_rename_the_customer(
    net, aiko, storefront, api_client_for
):
    before = storefront.get(f"/api/v1/customers/{aiko.pk}/").json()
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    data = post(
        assoc, order_body({"email": "AIKO@example.com", "name": "Someone Else"}, channel="store"), "t"
    )
    assert data["customer"] == {
        "id": aiko.pk,
        "email": "aiko@example.com",
        "phone": None,
        "name": "Someone Else",
    }
    assert stored(aiko) == ("aiko@example.com", "+819012345678", "Aiko Tanaka")
    after = storefront.get(f"/api/v1/customers/{aiko.pk}/").json()
    assert {k: v for k, v in after.items() if k != "orders"} == {
        k: v for k, v in before.items() if k != "orders"
    }
    assert after["orders"][0]["number"] == data["number"]  # the order joined their history


def test_till_order_does_not_fill_in_a_missing_email_or_phone(net, storefront, api_client_for):
    phone_only = post(storefront, order_body({"phone": "090-5555-0000", "name": "Ken"}), "k-1")["customer"]
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    data = post(
        assoc, order_body({"phone": "09055550000", "email": "ken@example.com"}, channel="store"), "k-2"
    )
    assert data["customer"]["id"] == phone_only["id"]
    assert Customer.objects.get(pk=phone_only["id"]).email is None
    assert Customer.objects.count() == 1


def test_manager_till_order_does_not_update_the_customer_either(net, aiko, api_client_for):
    manager = api_client_for(Role.MANAGER, locations=[net.shibuya])
    data = post(manager, order_body({"email": "aiko@example.com", "name": "A. T."}, channel="store"), "m")
    assert data["customer"]["name"] == "A. T."
    assert stored(aiko)[2] == "Aiko Tanaka"


def test_storefront_orders_still_rename_and_fill_in(net, storefront):
    first = post(storefront, order_body({"email": "ken@example.com", "name": "Ken"}), "s-1")
    data = post(
        storefront, order_body({"email": "ken@example.com", "phone": "090-7777-0000", "name": "Ken S"}), "s-2"
    )
    assert data["customer"] == {
        "id": first["customer"]["id"],
        "email": "ken@example.com",
        "phone": "+819077770000",
        "name": "Ken S",
    }
    c = Customer.objects.get(pk=first["customer"]["id"])
    assert (c.email, c.phone, c.name) == ("ken@example.com", "+819077770000", "Ken S")
    # Each order keeps the contact it was placed with.
    assert storefront.get(f"{URL}{first['number']}/").json()["customer"] == first["customer"]


@pytest.mark.parametrize(("staff", "name"), [(True, "Aiko Tanaka"), (False, "Other Name")])
def test_a_customer_created_concurrently_is_renamed_only_by_the_storefront(net, monkeypatch, staff, name):
    """The lookup missed the customer (another request created them since): the INSERT's clash
    (PostgreSQL: ON CONFLICT; elsewhere: customer_insert's re-read) takes that row, renaming it
    only for a storefront order."""
    from orders.db import placement_lookup as real_lookup
    from orders.services import placement

    existing = Customer.objects.create(phone="+819012345678", name="Aiko Tanaka")
    monkeypatch.setattr(
        placement,
        "placement_lookup",
        lambda **kw: real_lookup(**{**kw, "email": None, "phone": None}),
    )
    user = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya]) if staff else None
    with transaction.atomic():
        p = order_place(
            channel="store" if staff else "web",
            customer=CustomerIn(phone="090-1234-5678", name="Other Name"),
            fulfillment=ship(),
            lines=lines(("TEE-0", 1)),
            currency="JPY",
            user=user,
        )
    assert p.order.customer_id == existing.pk
    assert Customer.objects.get(pk=existing.pk).name == name
    assert Customer.objects.count() == 1


def test_backfill_copies_the_customers_contact_onto_existing_orders(net):
    p = placed(("TEE-0", 1), email="old@example.com")
    Order.objects.filter(pk=p.order.pk).update(contact_email=None, contact_phone=None, contact_name="")
    Customer.objects.filter(pk=p.order.customer_id).update(phone="+819011112222")
    importlib.import_module("orders.migrations.0005_order_contact").contact_from_customer(apps, None)
    o = Order.objects.get(pk=p.order.pk)
    assert (o.contact_email, o.contact_phone, o.contact_name) == ("old@example.com", "+819011112222", "Aiko")


def test_order_admin_shows_and_searches_the_orders_contact_only(net, aiko, api_client_for):
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    till = post(assoc, order_body({"phone": "090-1234-5678"}, channel="store"), "adm")
    user = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    order = Order.objects.get(number=till["number"])
    html = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "+819012345678" in html
    assert "aiko@example.com" not in html
    assert "Aiko Tanaka" not in html
    changelist = client.get("/admin/orders/order/").content.decode()
    assert "Aiko Tanaka" not in changelist
    assert "aiko@example.com" not in changelist
    # Searching by the stored email finds nothing: only what the order was placed with.
    assert client.get("/admin/orders/order/", {"q": "aiko@example.com"}).context["cl"].result_count == 0
    assert client.get("/admin/orders/order/", {"q": "+819012345678"}).context["cl"].result_count == 1
