"""Input no client should be able to turn into a 500."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/orders/AB%00C/",
        "/api/v1/skus/%00/",
        "/api/v1/orders/?customer_email=a%00b",
        "/api/v1/availability/x%00/",
        "/api/v1/locations/?sku=A%00",
        "/admin/inventory/sku/?q=%00",
    ],
)
def test_nul_bytes_in_url_are_400(storefront, url):
    r = storefront.get(url)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid"


def test_nul_byte_in_a_json_string_is_400_not_500(storefront):
    r = storefront.post("/api/v1/back-in-stock/", {"sku": "A\x00B", "email": "x@example.com"}, format="json")
    assert r.status_code == 400
    assert "error" in r.json()
