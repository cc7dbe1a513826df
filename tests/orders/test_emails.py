"""Email addresses in orders: placement and the customer_email filter normalise as
config.contacts.normalise_email does (an IDN domain kept in its ASCII form)."""

import pytest

from orders.models import Customer, Order
from tests.orders.test_api import body, err, post
from tests.test_email_addresses import BAD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("bad", BAD)
def test_order_with_a_bad_email_is_a_400_naming_the_field(net, storefront, bad):
    r = post(storefront, body(("TEE-0", 1)) | {"customer": {"email": bad}})
    error = err(r, 400, "invalid")
    details = error["details"]
    # The service names it (with the library's reason), or the serializer's length check does.
    assert details.get("field") == "customer.email" or "email" in details["fields"]["customer"], details
    assert Order.objects.count() == 0


def test_an_idn_email_is_stored_and_returned_in_ascii_and_found_either_way(net, storefront):
    r = post(storefront, body(("TEE-0", 1)) | {"customer": {"email": "Hanako@Bücher.example"}})
    assert r.status_code == 201, r.content
    assert r.json()["customer"]["email"] == "hanako@xn--bcher-kva.example"
    assert Customer.objects.get().email == "hanako@xn--bcher-kva.example"
    # The same address typed the other way is the same customer.
    again = post(
        storefront, body(("TEE-0", 1)) | {"customer": {"email": "hanako@xn--BCHER-kva.example"}}, key="2"
    )
    assert again.json()["customer"]["id"] == r.json()["customer"]["id"]
    for typed in ("hanako@bücher.example", " HANAKO@xn--bcher-kva.example "):
        found = storefront.get("/api/v1/orders/", {"customer_email": typed}).json()
        assert found["count"] == 2, typed
    assert storefront.get(f"/api/v1/orders/{r.json()['number']}/").json()["customer"]["email"] == (
        "hanako@xn--bcher-kva.example"
    )


@pytest.mark.parametrize("bad", BAD)
def test_the_order_filter_refuses_a_bad_email_with_a_400(storefront, bad):
    error = err(storefront.get("/api/v1/orders/", {"customer_email": bad}), 400, "invalid")
    assert error["details"]["field"] == "customer_email"
