"""Checkout holds belong to the account that made them; a hold lives at most
OMS["HOLD_MAX_SECONDS"] from its creation (docs/security.md)."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from config.errors import NotFound
from inventory.models import Hold, HoldLine, StockLevel
from inventory.services import hold_convert, hold_extend, hold_release
from orders.models import IdempotencyKey, Order
from stores.models import Role

pytestmark = pytest.mark.django_db

H = "/api/v1/holds/"
PICKUP = {"method": "pickup", "location": "TKY-SHIBUYA"}


def make_hold(client, quantity=2) -> dict:
    r = client.post(
        H, {"lines": [{"sku": "TEE-0", "quantity": quantity}], "fulfillment": PICKUP}, format="json"
    )
    assert r.status_code == 201, r.content
    return r.json()


def error_code(r, status) -> str:
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


def state(net) -> tuple:
    level = StockLevel.objects.get(location=net.shibuya, sku=net.skus[0])
    return (
        level.held,
        level.reserved,
        sorted(Hold.objects.values_list("pk", "expires_at")),
        sorted(HoldLine.objects.values_list("pk", "quantity", "expires_at")),
        Order.objects.count(),
    )


@pytest.fixture
def others(net, api_client_for):
    """Accounts other than the hold's creator that may otherwise use holds."""
    return [
        api_client_for(Role.STOREFRONT),
        api_client_for(Role.ASSOCIATE, locations=[net.shibuya]),
        api_client_for(Role.MANAGER, locations=[net.shibuya]),
        api_client_for(Role.MANAGER, network_wide=True),
    ]


@pytest.fixture
def root_client(db):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_creator_gets_its_hold(net, storefront):
    hold = make_hold(storefront)
    r = storefront.get(f"{H}{hold['id']}/")
    assert r.status_code == 200, r.content
    assert r.json() == hold


def test_others_get_404_for_a_hold_and_change_nothing(net, storefront, others):
    hold = make_hold(storefront)
    before = state(net)
    for client in others:
        assert error_code(client.get(f"{H}{hold['id']}/"), 404) == "unknown_hold"
        assert error_code(client.post(f"{H}{hold['id']}/extend/", {}, format="json"), 404) == "unknown_hold"
        assert error_code(client.delete(f"{H}{hold['id']}/"), 404) == "unknown_hold"
    assert state(net) == before
    assert storefront.delete(f"{H}{hold['id']}/").status_code == 204
    assert StockLevel.objects.get(location=net.shibuya, sku=net.skus[0]).held == 0


def test_a_superuser_may_act_on_any_hold(net, storefront, root_client):
    hold = make_hold(storefront)
    assert root_client.get(f"{H}{hold['id']}/").status_code == 200
    assert root_client.post(f"{H}{hold['id']}/extend/", {}, format="json").status_code == 200
    assert root_client.delete(f"{H}{hold['id']}/").status_code == 204
    assert not Hold.objects.exists()


def test_warehouse_staff_and_anonymous_callers_are_refused(net, storefront, api_client_for, anon_client):
    hold = make_hold(storefront)
    wh = api_client_for(Role.WAREHOUSE, locations=[net.wh])
    assert error_code(wh.get(f"{H}{hold['id']}/"), 403) == "forbidden"
    assert error_code(
        wh.post(H, {"lines": [{"sku": "TEE-0", "quantity": 1}], "fulfillment": PICKUP}, format="json"), 403
    )
    assert error_code(anon_client.get(f"{H}{hold['id']}/"), 401) == "not_authenticated"
    assert error_code(storefront.get(f"{H}not-a-uuid/"), 404) == "unknown_hold"


def test_an_order_with_another_accounts_hold_is_404_and_reserves_nothing(net, storefront, others):
    hold = make_hold(storefront)
    before = state(net)
    for i, client in enumerate(others[:3]):  # storefront, associate (till), manager (till)
        body = {
            "channel": "web" if i == 0 else "store",
            "customer": {"email": "thief@example.com"},
            "fulfillment": PICKUP,
            "lines": [{"sku": "TEE-0", "quantity": 2, "unit_price": "1980.00"}],
            "currency": "JPY",
            "hold": hold["id"],
        }
        r = client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"steal-{i}")
        assert error_code(r, 404) == "unknown_hold"
    assert state(net) == before
    assert not IdempotencyKey.objects.exists()
    # The owner still can.
    body = {
        "channel": "web",
        "customer": {"email": "owner@example.com"},
        "fulfillment": PICKUP,
        "lines": [{"sku": "TEE-0", "quantity": 2, "unit_price": "1980.00"}],
        "currency": "JPY",
        "hold": hold["id"],
    }
    r = storefront.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="mine")
    assert r.status_code == 201, r.content
    assert not Hold.objects.exists()


def test_services_check_the_owner_too(net, storefront, api_client_for):
    hold = make_hold(storefront)
    other = api_client_for(Role.STOREFRONT).user
    for call in (
        lambda: hold_extend(hold_id=hold["id"], user=other),
        lambda: hold_release(hold_id=hold["id"], user=other),
        lambda: hold_convert(hold_id=hold["id"], reference="X", user=other),
    ):
        with pytest.raises(NotFound) as exc:
            call()
        assert exc.value.code == "unknown_hold"
    assert Hold.objects.filter(pk=hold["id"]).exists()
    hold_extend(hold_id=hold["id"], user=None)  # a system caller (task, command)


def test_extending_past_the_holds_lifetime_is_422_and_changes_nothing(net, storefront, settings):
    settings.OMS = {**settings.OMS, "HOLD_MAX_SECONDS": 900}
    hold = make_hold(storefront)
    url = f"{H}{hold['id']}/extend/"
    assert storefront.post(url, {"ttl_seconds": 600}, format="json").status_code == 200
    before = state(net)
    r = storefront.post(url, {"ttl_seconds": 1000}, format="json")
    assert error_code(r, 422) == "hold_lifetime_exceeded"
    details = r.json()["error"]["details"]
    assert details["max_seconds"] == 900
    assert details["hold"] == hold["id"]
    assert state(net) == before


def test_an_old_hold_cannot_be_extended_even_by_the_default_ttl(net, storefront):
    hold = make_hold(storefront)
    Hold.objects.filter(pk=hold["id"]).update(
        created_at=Hold.objects.get(pk=hold["id"]).created_at - dt.timedelta(minutes=55)
    )
    before = state(net)
    r = storefront.post(f"{H}{hold['id']}/extend/", {}, format="json")  # the default 10 minutes
    assert error_code(r, 422) == "hold_lifetime_exceeded"
    assert state(net) == before
    assert storefront.post(f"{H}{hold['id']}/extend/", {"ttl_seconds": 60}, format="json").status_code == 200
