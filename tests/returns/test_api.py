"""The refunds API: its shape, filters, idempotent reports, errors, and who may do what
(docs/security.md, the refunds rows)."""

import pytest

from orders import services
from returns.models import Refund
from stores.models import Role
from tests.factories import make_staff
from tests.orders.conftest import pickup, place

pytestmark = pytest.mark.django_db

URL = "/api/v1/refunds/"


def error_code(r, status) -> str:
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


@pytest.fixture
def shop(net, api_client_for):
    """A storefront that placed a pickup order at Shibuya and a ship order from the warehouse, both
    cancelled (one refund each); another storefront's cancelled order."""

    class S:
        pass

    s = S()
    s.client = api_client_for(Role.STOREFRONT)
    s.other = api_client_for(Role.STOREFRONT)
    s.pickup = place(("TEE-0", 2), fulfillment=pickup(), email="aiko@example.com", user=s.client.user)
    s.ship = place(("TEE-1", 1), email="aiko@example.com", user=s.client.user)
    s.foreign = place(("TEE-2", 1), email="ken@example.com", user=s.other.user)
    for order in (s.pickup, s.ship, s.foreign):
        services.order_cancel(number=order.number)
    s.refund = Refund.objects.get(order=s.pickup)
    s.ship_refund = Refund.objects.get(order=s.ship)
    s.foreign_refund = Refund.objects.get(order=s.foreign)
    return s


def test_refund_detail_shape(shop):
    r = shop.client.get(f"{URL}{shop.refund.pk}/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body == {
        "id": shop.refund.pk,
        "order": shop.pickup.number,
        "return": None,
        "amount": "3960.00",
        "currency": "JPY",
        "reason": "order cancelled",
        "cause": "order_cancelled",
        "status": "requested",
        "reference": "",
        "failure_reason": "",
        "lines": [{"sku": "TEE-0", "quantity": 2, "unit_price": "1980.00", "amount": "3960.00"}],
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "completed_at": None,
    }


def test_list_filters_by_order_and_status(shop):
    r = shop.client.get(URL)
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["results"]] == [shop.ship_refund.pk, shop.refund.pk]
    r = shop.client.get(URL, {"order": shop.pickup.number})
    assert [x["id"] for x in r.json()["results"]] == [shop.refund.pk]
    shop.client.post(f"{URL}{shop.ship_refund.pk}/complete/", {"reference": "pay_1"}, format="json")
    r = shop.client.get(URL, {"status": "completed"})
    assert [x["id"] for x in r.json()["results"]] == [shop.ship_refund.pk]
    r = shop.client.get(URL, {"status": "requested", "cause": "order_cancelled"})
    assert [x["id"] for x in r.json()["results"]] == [shop.refund.pk]
    assert shop.client.get(URL, {"order": "NO-SUCH"}).json()["count"] == 0
    assert error_code(shop.client.get(URL, {"status": "paid"}), 400) == "invalid"


def test_complete_is_idempotent_and_conflicts_are_409(shop):
    url = f"{URL}{shop.refund.pk}/complete/"
    first = shop.client.post(url, {"reference": "pay_123"}, format="json")
    assert first.status_code == 200, first.content
    assert (first.json()["status"], first.json()["reference"]) == ("completed", "pay_123")
    again = shop.client.post(url, {"reference": "pay_123"}, format="json")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert error_code(shop.client.post(url, {"reference": "pay_456"}, format="json"), 409) == (
        "refund_already_completed"
    )
    fail = f"{URL}{shop.refund.pk}/fail/"
    assert error_code(shop.client.post(fail, {"reason": "declined"}, format="json"), 409) == (
        "refund_already_completed"
    )


def test_fail_is_idempotent_and_a_failed_refund_cannot_complete(shop):
    url = f"{URL}{shop.refund.pk}/fail/"
    first = shop.client.post(url, {"reason": "card expired"}, format="json")
    assert first.status_code == 200, first.content
    assert (first.json()["status"], first.json()["failure_reason"]) == ("failed", "card expired")
    assert shop.client.post(url, {"reason": "card expired"}, format="json").json() == first.json()
    assert (
        error_code(shop.client.post(url, {"reason": "other"}, format="json"), 409) == "refund_already_failed"
    )
    complete = f"{URL}{shop.refund.pk}/complete/"
    assert error_code(shop.client.post(complete, {"reference": "p"}, format="json"), 409) == (
        "refund_already_failed"
    )


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("complete", {}),
        ("complete", {"reference": ""}),
        ("complete", {"reference": "   "}),
        ("complete", {"reference": "x" * 129}),
        ("complete", {"reference": ["a"]}),
        ("complete", []),
        ("fail", {}),
        ("fail", {"reason": ""}),
        ("fail", {"reason": "x" * 256}),
        ("fail", {"reason": {"a": 1}}),
    ],
)
def test_bad_bodies_are_400_and_change_nothing(shop, action, body):
    r = shop.client.post(f"{URL}{shop.refund.pk}/{action}/", body, format="json")
    assert error_code(r, 400) == "invalid"
    assert Refund.objects.get(pk=shop.refund.pk).status == "requested"


def test_malformed_json_is_400(shop):
    r = shop.client.post(
        f"{URL}{shop.refund.pk}/complete/", data="{not json", content_type="application/json"
    )
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("pk", [999999, 2**63, 2**70])
def test_unknown_refund_is_404(shop, pk):
    assert error_code(shop.client.get(f"{URL}{pk}/"), 404) in ("unknown_refund", "not_found")
    r = shop.client.post(f"{URL}{pk}/complete/", {"reference": "p"}, format="json")
    assert error_code(r, 404) in ("unknown_refund", "not_found")
    r = shop.client.post(f"{URL}{pk}/fail/", {"reason": "r"}, format="json")
    assert error_code(r, 404) in ("unknown_refund", "not_found")


def test_a_path_that_is_no_id_is_404(shop):
    assert shop.client.get(f"{URL}abc/").status_code == 404


# --- Who (docs/security.md) ------------------------------------------------------------------------


def test_the_storefront_sees_and_reports_only_refunds_of_customers_it_serves(shop):
    ids = [x["id"] for x in shop.other.get(URL).json()["results"]]
    assert ids == [shop.foreign_refund.pk]
    assert error_code(shop.other.get(f"{URL}{shop.refund.pk}/"), 404) == "unknown_refund"
    r = shop.other.post(f"{URL}{shop.refund.pk}/complete/", {"reference": "p"}, format="json")
    assert error_code(r, 404) == "unknown_refund"
    r = shop.other.post(f"{URL}{shop.foreign_refund.pk}/complete/", {"reference": "p"}, format="json")
    assert r.status_code == 200


def test_associates_read_refunds_at_their_locations_and_report_none(shop, net, api_client_for):
    here = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    assert [x["id"] for x in here.get(URL).json()["results"]] == [shop.refund.pk]
    assert here.get(f"{URL}{shop.refund.pk}/").status_code == 200
    assert error_code(here.get(f"{URL}{shop.ship_refund.pk}/"), 404) == "unknown_refund"
    r = here.post(f"{URL}{shop.refund.pk}/complete/", {"reference": "p"}, format="json")
    assert error_code(r, 403) == "forbidden"
    r = here.post(f"{URL}{shop.refund.pk}/fail/", {"reason": "r"}, format="json")
    assert error_code(r, 403) == "forbidden"


def test_warehouse_staff_see_no_refunds(shop, net, api_client_for):
    wh = api_client_for(Role.WAREHOUSE, locations=[net.wh])
    assert error_code(wh.get(URL), 403) == "forbidden"
    assert error_code(wh.get(f"{URL}{shop.ship_refund.pk}/"), 403) == "forbidden"
    r = wh.post(f"{URL}{shop.ship_refund.pk}/complete/", {"reference": "p"}, format="json")
    assert error_code(r, 403) == "forbidden"


def test_managers_read_and_report_refunds_at_their_locations(shop, net, api_client_for):
    mgr = api_client_for(Role.MANAGER, locations=[net.wh])
    assert [x["id"] for x in mgr.get(URL).json()["results"]] == [shop.foreign_refund.pk, shop.ship_refund.pk]
    r = mgr.post(f"{URL}{shop.ship_refund.pk}/complete/", {"reference": "till-7"}, format="json")
    assert r.status_code == 200
    r = mgr.post(f"{URL}{shop.refund.pk}/complete/", {"reference": "till-7"}, format="json")
    assert error_code(r, 404) == "unknown_refund"


def test_network_managers_and_admins_see_and_report_every_refund(shop, api_client_for):
    from rest_framework.test import APIClient

    network = api_client_for(Role.MANAGER, network_wide=True)
    assert network.get(URL).json()["count"] == 3
    assert network.post(f"{URL}{shop.refund.pk}/fail/", {"reason": "r"}, format="json").status_code == 200
    admin = APIClient()
    admin.force_authenticate(make_staff(role=Role.MANAGER, is_superuser=True, is_staff=True))
    assert admin.get(URL).json()["count"] == 3
    r = admin.post(f"{URL}{shop.ship_refund.pk}/complete/", {"reference": "p"}, format="json")
    assert r.status_code == 200


def test_anonymous_is_401(shop, anon_client):
    assert error_code(anon_client.get(URL), 401) == "not_authenticated"
    r = anon_client.post(f"{URL}{shop.refund.pk}/complete/", {"reference": "p"}, format="json")
    assert error_code(r, 401) == "not_authenticated"


def test_the_schema_describes_the_refunds_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert set(paths["/api/v1/refunds/"]) == {"get"}
    complete = paths["/api/v1/refunds/{id}/complete/"]["post"]
    assert {"200", "400", "401", "403", "404", "409"} <= set(complete["responses"])
    refund = schema["components"]["schemas"]["RefundOut"]
    assert {"id", "order", "return", "amount", "currency", "reason", "status", "lines"} <= set(
        refund["properties"]
    )
    assert refund["properties"]["return"]["nullable"] is True
    params = {p["name"] for p in paths["/api/v1/refunds/"]["get"]["parameters"]}
    assert {"order", "status", "page"} <= params


def test_the_list_reads_in_a_fixed_number_of_queries(shop, django_assert_max_num_queries):
    for _ in range(3):
        extra = place(("TEE-0", 1), email="aiko@example.com", user=shop.client.user)
        services.order_cancel(number=extra.number)
    with django_assert_max_num_queries(8):  # token, role, count, page, lines (+ SKUs)
        r = shop.client.get(URL)
    assert r.json()["count"] == 5
