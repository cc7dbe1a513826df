"""Never a 500: arbitrary JSON bodies and query strings against the stock and availability endpoints."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.selectors import ledger_mismatches
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, stock

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["A", "B", "TEE", "MUG", "NOPE", "", "1", "-1", "0", "35.6,139.7"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
line = st.fixed_dictionaries({}, optional={"sku": json_values, "quantity": json_values})
lines = st.lists(line, max_size=3) | json_values


def body_of(*keys):
    optional = {k: (lines if k == "lines" else json_values) for k in keys}
    return st.fixed_dictionaries({}, optional=optional) | json_values


POSTS = {
    "/api/v1/stock/receipts/": body_of("location", "lines", "reference", "reason"),
    "/api/v1/stock/adjustments/": body_of("location", "sku", "counted_quantity", "delta", "reason"),
    "/api/v1/stock/safety/": body_of("location", "sku", "safety_stock"),
    "/api/v1/stock/transfers/": body_of("from_location", "to_location", "lines", "reference"),
    "/api/v1/availability/check/": st.fixed_dictionaries(
        {},
        optional={
            "lines": lines,
            "fulfillment": st.fixed_dictionaries(
                {},
                optional={
                    "method": st.sampled_from(["ship", "pickup", "curbside", "x"]) | json_values,
                    "location": json_values,
                    "address": st.fixed_dictionaries(
                        {}, optional={"latitude": json_values, "longitude": json_values}
                    )
                    | json_values,
                },
            ),
        },
    ),
}

OK = {200, 201, 400, 403, 404, 409, 422}


@pytest.fixture
def world(api_client_for):
    a, b = LocationFactory(code="A"), LocationFactory(code="B")
    tee, mug = SkuFactory(code="TEE"), SkuFactory(code="MUG")
    stock(a, tee, 5)
    stock(b, mug, 5)
    return api_client_for(Role.MANAGER, locations=[a, b])


@pytest.mark.parametrize("url", list(POSTS))
def test_any_body_is_answered_without_a_500(world, url):
    @FUZZ
    @given(body=POSTS[url])
    def run(body):
        r = world.post(url, body, format="json")
        assert r.status_code in OK, (body, r.status_code, r.content[:300])
        assert "error" in r.json() or r.status_code < 300

    run()
    assert ledger_mismatches() == []


query_value = st.text(max_size=12) | st.sampled_from(
    ["35.6,139.7", "91,0", "nan,1", "1e308", "true", "0", "-5", "TEE"]
)


@pytest.mark.parametrize(
    ("url", "keys"),
    [
        ("/api/v1/availability/TEE/", ["near", "radius_km", "explain", "pickup", "ship", "kind"]),
        (
            "/api/v1/locations/",
            ["near", "radius_km", "kind", "pickup", "sku", "quantity", "page", "page_size"],
        ),
        ("/api/v1/skus/", ["search", "category", "page"]),
        ("/api/v1/stock/movements/", ["sku", "location", "kind", "reference", "page"]),
    ],
)
def test_any_query_string_is_answered_without_a_500(world, url, keys):
    @FUZZ
    @given(params=st.dictionaries(st.sampled_from(keys), query_value, max_size=len(keys)))
    def run(params):
        r = world.get(url, params)
        assert r.status_code in OK, (params, r.status_code, r.content[:300])

    run()


def test_nan_and_infinity_literals_are_400(world):
    for raw in (
        '{"location": "A", "lines": [{"sku": "TEE", "quantity": NaN}]}',
        '{"location": "A", "lines": [{"sku": "TEE", "quantity": Infinity}]}',
    ):
        r = world.generic("POST", "/api/v1/stock/receipts/", raw, content_type="application/json")
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "parse_error"
