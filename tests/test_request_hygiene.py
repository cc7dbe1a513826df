"""Input no client should be able to turn into a 500."""

import io

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


def _error(r, status):
    assert r.status_code == status, r.content
    assert r["Content-Type"].startswith("application/json"), r["Content-Type"]
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_json_nested_too_deep_is_400(storefront):
    """1,000 levels of nesting used to end in RecursionError (500)."""
    deep = "[" * 1000 + "]" * 1000
    r = storefront.post(
        "/api/v1/orders/",
        data=f'{{"lines": {deep}}}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="deep",
    )
    assert _error(r, 400)["code"] == "invalid_json"


def test_a_lone_surrogate_with_an_idempotency_key_is_400(storefront):
    """The body is hashed for the Idempotency-Key before validation; "\\ud800" cannot be encoded."""
    r = storefront.post(
        "/api/v1/orders/",
        data='{"channel": "web", "customer": {"name": "\\ud800"}}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="surrogate",
    )
    assert _error(r, 400)["code"] == "invalid_json"


def test_an_unmatched_api_path_is_a_json_404(storefront):
    for path in ("/api/v1/fulfillments/abc/", "/api/v1/nope/", "/api/v2/orders/"):
        assert _error(storefront.get(path), 404)["code"] == "not_found"


def test_a_body_over_the_size_limit_is_a_json_413(storefront, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    r = storefront.post(
        "/api/v1/orders/",
        data='{"x": "' + "a" * 5000 + '"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="big",
    )
    assert _error(r, 413)["code"] == "too_large"


def test_a_database_data_error_is_400_without_the_databases_message():
    """A value the database refuses (an out-of-range number, say) is 400; PostgreSQL's own message,
    which names tables and columns, is logged, not sent (issue 9, item 9)."""
    from django.db import DataError

    from config.errors import exception_handler

    response = exception_handler(
        DataError('integer out of range for column "on_hand" of "inventory_stocklevel"'), {}
    )
    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid"
    assert "inventory_stocklevel" not in str(response.data)


def test_a_paired_surrogate_escape_is_an_ordinary_character(storefront):
    """ "\\ud83d\\ude00" is one emoji (a valid pair): the surrogate check lets it through."""
    from config.api.parsers import StrictJSONParser

    data = StrictJSONParser().parse(io.BytesIO(b'{"name": "\\ud83d\\ude00"}'))
    assert data == {"name": "\U0001f600"}
