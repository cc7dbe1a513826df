"""What `.ci/schemathesis` found the served schema getting wrong, pinned in the normal suite."""

import urllib.parse

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield f"{method.upper()} {path}", op


def test_every_operation_declares_the_framework_errors_it_can_give(schema):
    """Before: paginated lists answered `?page=0` with an undeclared 404, GET /orders/?channel=bogus
    an undeclared 400, DELETE /webhooks/{id}/ an undeclared 404, POST /webhooks/ an undeclared
    400, POST /stock/transfers/{id}/receive/ (no body) a bad Idempotency-Key with an undeclared
    400 (config.api.schema.AutoSchema)."""
    public = {"DELETE /api/v1/back-in-stock/{token}/"}  # the signed link is the credential
    for name, op in operations(schema):
        codes = set(op["responses"])
        if name not in public:
            assert {"401", "403"} <= codes, name
        if "{" in name or "page" in {p["name"] for p in op.get("parameters", [])}:
            assert "404" in codes, name
        if op.get("requestBody") or any(p["in"] in ("query", "header") for p in op.get("parameters", [])):
            assert "400" in codes, name
        for code, response in op["responses"].items():
            if code >= "400":
                content = response["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/ErrorResponse"}, (name, code)


def test_back_in_stock_declares_unknown_sku_and_throttling(schema):
    """Before: POST /back-in-stock/ documented only 200 and 201; an unknown SKU is 404 and the
    subscribe throttle 429."""
    op = schema["paths"]["/api/v1/back-in-stock/"]["post"]
    assert {"200", "201", "400", "401", "403", "404", "429"} <= set(op["responses"])


def test_emails_are_declared_format_email(schema):
    components = schema["components"]["schemas"]
    customer_email = components["CustomerInRequest"]["properties"]["email"]  # or blank, or null
    assert customer_email["oneOf"][0]["format"] == "email"
    assert customer_email["nullable"] is True
    assert components["OrderContactOut"]["properties"]["email"]["format"] == "email"
    assert components["CustomerOut"]["properties"]["email"]["oneOf"][0]["format"] == "email"
    assert components["BackInStockInputRequest"]["properties"]["email"]["format"] == "email"
    [param] = [
        p for p in schema["paths"]["/api/v1/orders/"]["get"]["parameters"] if p["name"] == "customer_email"
    ]
    assert param["schema"]["format"] == "email"


def test_input_serializers_do_not_lend_their_plumbing_docstring_to_the_schema(schema):
    """Before: every InputSerializer's component (OrderCreateInRequest, CustomerInRequest, ...) was
    described by InputSerializer's own docstring, about DRF field copying."""
    for name, component in schema["components"]["schemas"].items():
        assert "deep-copies" not in component.get("description", ""), name


def test_the_longest_sku_list_fits_the_request_line_gunicorn_accepts():
    """Before: `?sku=` took 2,000 characters of anything; 2,000 non-ASCII characters (or a long
    list of codes) made a request line over gunicorn's default 4,094 bytes: an HTML 414."""
    from config import gunicorn

    worst = "/api/v1/locations/YOK-MINATOMIRAI/stock/?" + urllib.parse.urlencode(
        {"sku": "," * 2000, "search": "\N{GRINNING FACE}" * 100, "in_stock": "false", "page": 10**6}
    )
    assert len(f"GET {worst} HTTP/1.1") <= gunicorn.limit_request_line


@pytest.mark.parametrize(
    ("sku", "status"),
    [("TEE-0, TEE-1", 200), ("TEE-0,,TEE-1", 200), ("TEE\N{GRINNING FACE}", 400), ("A;B", 400)],
)
def test_the_sku_list_takes_only_codes(storefront, store, sku, status):
    r = storefront.get(f"/api/v1/locations/{store.code}/stock/", {"sku": sku})
    assert r.status_code == status, r.content


@pytest.mark.parametrize(
    ("command", "body"),
    [
        ("pick", "PickInRequest"),
        ("ship", "ShipInRequest"),
        ("collect", "CollectInRequest"),
        ("cancel", "ReasonInRequest"),
    ],
)
def test_fulfillment_commands_declare_their_request_bodies(schema, command, body):
    """Before: the base class's `request=None` documented no body, so a generated client could not
    send the carrier, the pickup code or the picked lines."""
    op = schema["paths"][f"/api/v1/fulfillments/{{id}}/{command}/"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{body}"
    }


def test_the_schema_declares_the_bounds_the_api_enforces(schema, settings):
    """Before: generated valid-by-the-schema values were refused: empty line lists, quantities over
    OMS["MAX_LINE_QUANTITY"], radius_km of 0 or over the maximum, page=0, blank Idempotency-Keys."""
    c = schema["components"]["schemas"]
    for component in (
        "HoldCreateInRequest",
        "OrderCreateInRequest",
        "ReceiptInputRequest",
        "TransferInputRequest",
    ):
        assert c[component]["properties"]["lines"]["minItems"] == 1, component
    assert c["WebhookInputRequest"]["properties"]["events"]["minItems"] == 1
    assert c["LineInputRequest"]["properties"]["quantity"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": settings.OMS["MAX_LINE_QUANTITY"],
        "description": c["LineInputRequest"]["properties"]["quantity"]["description"],
    }
    assert c["SafetyStockInputRequest"]["properties"]["safety_stock"]["minimum"] == 0
    assert c["AdjustmentInputRequest"]["properties"]["delta"]["not"] == {"enum": [0]}
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/locations/"]["get"]["parameters"]}
    assert params["radius_km"]["exclusiveMinimum"] is True
    assert params["radius_km"]["maximum"] == settings.OMS["MAX_RADIUS_KM"]
    assert params["page"]["minimum"] == 1
    [key] = [
        p for p in schema["paths"]["/api/v1/orders/"]["post"]["parameters"] if p["name"] == "Idempotency-Key"
    ]
    assert key["schema"]["minLength"] == 1
    assert key["schema"]["maxLength"] == 255
