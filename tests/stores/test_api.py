"""GET /api/v1/locations/ and /locations/{code}/, plus the schema, docs and health probes."""

import json

import pytest
from drf_spectacular.validation import validate_schema

from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, UserFactory, WarehouseFactory, stock

pytestmark = pytest.mark.django_db

URL = "/api/v1/locations/"

# Real places in and around Tokyo; distances from SHIBUYA (35.6595, 139.7005).
SHIBUYA = (35.6595, 139.7005)


@pytest.fixture
def network(db):
    locs = {
        "SHIBUYA": LocationFactory(code="SHIBUYA", latitude=35.6595, longitude=139.7005),
        "SHINJUKU": LocationFactory(code="SHINJUKU", latitude=35.6909, longitude=139.7003),  # ~3.5 km
        "YOKOHAMA": LocationFactory(code="YOKOHAMA", latitude=35.4437, longitude=139.6380),  # ~24.7 km
        "NOPICKUP": LocationFactory(
            code="NOPICKUP", latitude=35.6812, longitude=139.7671, offers_pickup=False
        ),
        "WH-KAWASAKI": WarehouseFactory(code="WH-KAWASAKI"),  # ~15 km
        "OSAKA": LocationFactory(code="OSAKA", latitude=34.7025, longitude=135.4959),  # ~400 km
        "CLOSED": LocationFactory(code="CLOSED", is_active=False),
    }
    return locs


def codes(response) -> list[str]:
    return [item["code"] for item in response.json()["results"]]


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- Permissions -------------------------------------------------------------------------------


def test_anonymous_is_401(anon_client, network):
    r = anon_client.get(URL)
    assert r.status_code == 401
    assert error(r)["code"] == "not_authenticated"


def test_user_without_role_is_403(network):
    from tests.conftest import _client_for

    client = _client_for(UserFactory())
    r = client.get(URL)
    assert r.status_code == 403
    assert error(r)["code"] == "forbidden"


@pytest.mark.parametrize("role", [Role.STOREFRONT, Role.ASSOCIATE, Role.WAREHOUSE, Role.MANAGER])
def test_every_role_reads_the_whole_network(api_client_for, network, role):
    client = api_client_for(role, locations=[network["SHIBUYA"]])
    r = client.get(URL)
    assert r.status_code == 200
    assert set(codes(r)) == set(network) - {"CLOSED"}


# --- List, filters, ordering ----------------------------------------------------------------------


def test_list_is_paginated_by_code_with_the_contract_fields(storefront, network):
    r = storefront.get(URL, {"page_size": 2})
    body = r.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 6
    assert body["next"]
    assert body["previous"] is None
    assert codes(r) == ["NOPICKUP", "OSAKA"]
    item = body["results"][0]
    for field in ("code", "name", "kind", "address", "latitude", "longitude", "opening_hours", "distance_km"):
        assert field in item
    assert item["offers_pickup"] is False
    assert item["ships_orders"] is True
    assert item["distance_km"] is None
    assert item["available"] is None


def test_kind_and_pickup_filters(storefront, network):
    assert codes(storefront.get(URL, {"kind": "warehouse"})) == ["WH-KAWASAKI"]
    stores_with_pickup = codes(storefront.get(URL, {"kind": "store", "pickup": "true"}))
    assert stores_with_pickup == ["OSAKA", "SHIBUYA", "SHINJUKU", "YOKOHAMA"]
    assert codes(storefront.get(URL, {"pickup": "false"})) == ["NOPICKUP", "WH-KAWASAKI"]


def test_near_orders_by_distance_and_radius_cuts(storefront, network):
    r = storefront.get(URL, {"near": "35.6595,139.7005"})
    assert codes(r)[:3] == ["SHIBUYA", "SHINJUKU", "NOPICKUP"]
    assert codes(r)[-1] == "OSAKA"
    dists = [item["distance_km"] for item in r.json()["results"]]
    assert dists == sorted(dists)
    assert dists[0] == 0
    assert dists[1] == pytest.approx(3.49, abs=0.05)

    r = storefront.get(URL, {"near": "35.6595,139.7005", "radius_km": "20"})
    assert codes(r) == ["SHIBUYA", "SHINJUKU", "NOPICKUP", "WH-KAWASAKI"]
    r = storefront.get(URL, {"near": "35.6595,139.7005", "radius_km": "30", "pickup": "true"})
    assert codes(r) == ["SHIBUYA", "SHINJUKU", "YOKOHAMA"]


def test_sku_adds_available_everywhere_and_quantity_keeps_those_that_can_give_it(storefront, network):
    sku = SkuFactory(code="TEE")
    network["SHIBUYA"].opening_hours = {"mon": ["10:00", "20:00"], "sun": None}
    network["SHIBUYA"].save()
    stock(network["SHIBUYA"], sku, 5, safety_stock=1)  # 4 available
    stock(network["SHINJUKU"], sku, 1)
    stock(network["YOKOHAMA"], sku, 9)
    stock(network["CLOSED"], sku, 50)

    r = storefront.get(URL, {"sku": "TEE"})
    available = {item["code"]: item["available"] for item in r.json()["results"]}
    assert available == {
        "NOPICKUP": 0,
        "OSAKA": 0,
        "SHIBUYA": 4,
        "SHINJUKU": 1,
        "WH-KAWASAKI": 0,
        "YOKOHAMA": 9,
    }

    r = storefront.get(URL, {"sku": "TEE", "quantity": "2", "near": "35.6595,139.7005"})
    assert [(i["code"], i["available"]) for i in r.json()["results"]] == [("SHIBUYA", 4), ("YOKOHAMA", 9)]
    shibuya = r.json()["results"][0]
    assert shibuya["opening_hours"] == {"mon": ["10:00", "20:00"], "sun": None}
    assert (shibuya["offers_pickup"], shibuya["is_active"], shibuya["address"]) == (
        True,
        True,
        network["SHIBUYA"].address,
    )

    r = storefront.get(URL, {"sku": "TEE", "quantity": "1", "near": "35.6595,139.7005", "radius_km": "10"})
    assert codes(r) == ["SHIBUYA", "SHINJUKU"]
    assert r.json()["results"][1]["distance_km"] == pytest.approx(3.49, abs=0.05)

    r = storefront.get(URL, {"sku": "TEE", "quantity": "1", "kind": "warehouse"})
    assert codes(r) == []


def test_sku_search_counts_active_holds_only_and_pages_nearest_first(storefront, network):
    import datetime as dt

    from django.utils import timezone

    from inventory.models import HoldLine
    from inventory.services import Line, hold_create

    sku = SkuFactory(code="TEE")
    extra = [
        LocationFactory(code=f"EXTRA-{i:02d}", latitude=35.7 + i / 1000, longitude=139.9) for i in range(12)
    ]
    for loc in extra:
        stock(loc, sku, 3)
    hold_create(lines=[Line(extra[0].pk, sku.pk, 2)])  # active: 1 left
    hold = hold_create(lines=[Line(extra[1].pk, sku.pk, 3)])
    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    params = {"sku": "TEE", "near": "35.7,139.9", "radius_km": "2", "page_size": 5}
    pages = [storefront.get(URL, {**params, "page": n}).json() for n in (1, 2, 3)]
    assert [p["count"] for p in pages] == [12, 12, 12]
    items = [item for p in pages for item in p["results"]]
    assert [i["code"] for i in items] == [loc.code for loc in extra]  # 111 m apart, nearest first
    assert [i["available"] for i in items] == [1, 3] + [3] * 10  # the expired hold stops counting at once
    assert [i["distance_km"] for i in items] == sorted(i["distance_km"] for i in items)
    assert items[7]["opening_hours"] == extra[7].opening_hours
    assert (items[7]["ships_orders"], items[7]["is_active"]) == (extra[7].ships_orders, True)


def test_sku_search_query_count_does_not_grow_with_the_network(
    storefront, network, django_assert_max_num_queries
):
    sku = SkuFactory(code="TEE")
    for i in range(30):
        stock(LocationFactory(code=f"EXTRA-{i}"), sku, i + 1)
    # token with user and role (1) + SKU (1) + stock joined with locations (1); no count (a list)
    with django_assert_max_num_queries(3):
        r = storefront.get(
            URL, {"sku": "TEE", "near": "35.6595,139.7005", "radius_km": "50", "page_size": 100}
        )
    assert r.json()["count"] == 35  # the 36 active locations but OSAKA


# --- Bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "near",
    [
        "abc",
        "35.6",
        "35.6,139.7,1",
        "91,0",
        "-90.5,0",
        "0,181",
        "0,-180.01",
        "nan,0",
        "0,nan",
        "inf,0",
        "35.6;139.7",
    ],
)
def test_malformed_near_is_400_with_the_field(storefront, network, near):
    r = storefront.get(URL, {"near": near})
    assert r.status_code == 400
    err = error(r)
    assert err["code"] == "invalid"
    assert "near" in err["details"]["fields"]


@pytest.mark.parametrize("radius", ["0", "-1", "abc", "501", "nan", "inf", "1e999"])
def test_bad_radius_is_400_with_the_field(storefront, network, radius):
    r = storefront.get(URL, {"near": "35.6595,139.7005", "radius_km": radius})
    assert r.status_code == 400
    assert "radius_km" in error(r)["details"]["fields"]


def test_radius_limit_follows_the_setting(storefront, network, settings):
    settings.OMS = {**settings.OMS, "MAX_RADIUS_KM": 10}
    assert storefront.get(URL, {"near": "35.6595,139.7005", "radius_km": "10"}).status_code == 200
    assert storefront.get(URL, {"near": "35.6595,139.7005", "radius_km": "10.5"}).status_code == 400


def test_radius_without_near_and_quantity_without_sku_are_400(storefront, network):
    r = storefront.get(URL, {"radius_km": "5"})
    assert r.status_code == 400
    assert "radius_km" in error(r)["details"]["fields"]
    r = storefront.get(URL, {"quantity": "5"})
    assert r.status_code == 400
    assert "quantity" in error(r)["details"]["fields"]


@pytest.mark.parametrize("quantity", ["0", "-1", "1.5", "abc", "true", "100001", "99999999999999999999999"])
def test_bad_quantity_is_400_with_the_field(storefront, network, quantity):
    SkuFactory(code="TEE")
    r = storefront.get(URL, {"sku": "TEE", "quantity": quantity})
    assert r.status_code == 400
    assert "quantity" in error(r)["details"]["fields"]


@pytest.mark.parametrize(("param", "value"), [("kind", "shop"), ("pickup", "maybe")])
def test_bad_kind_or_pickup_is_400(storefront, network, param, value):
    r = storefront.get(URL, {param: value})
    assert r.status_code == 400
    assert param in error(r)["details"]["fields"]


def test_unknown_sku_is_404(storefront, network):
    r = storefront.get(URL, {"sku": "NOPE"})
    assert r.status_code == 404
    assert error(r) == {"code": "unknown_sku", "message": "Unknown SKU 'NOPE'.", "details": {"sku": "NOPE"}}


# --- Detail ------------------------------------------------------------------------------------------


def test_detail_by_code(storefront, network):
    r = storefront.get(URL + "SHINJUKU/")
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == "SHINJUKU"
    assert body["latitude"] == pytest.approx(35.6909)
    assert body["is_active"] is True
    assert storefront.get(URL + "CLOSED/").json()["is_active"] is False


def test_detail_unknown_is_404_and_anonymous_401(storefront, anon_client, network):
    r = storefront.get(URL + "NOWHERE/")
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_location"
    assert anon_client.get(URL + "SHIBUYA/").status_code == 401


# --- Schema, docs, health -----------------------------------------------------------------------------


def test_schema_renders_valid_openapi_with_our_paths_and_errors(anon_client):
    r = anon_client.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    schema = json.loads(r.content)
    validate_schema(schema)
    paths = schema["paths"]
    for path in (
        "/api/v1/locations/",
        "/api/v1/locations/{code}/",
        "/api/v1/locations/{code}/stock/",
        "/api/v1/skus/",
        "/api/v1/skus/{code}/",
        "/api/v1/availability/{sku}/",
        "/api/v1/availability/check/",
        "/api/v1/stock/receipts/",
        "/api/v1/stock/adjustments/",
        "/api/v1/stock/safety/",
        "/api/v1/stock/transfers/",
        "/api/v1/stock/transfers/{transfer_id}/",
        "/api/v1/stock/transfers/{transfer_id}/receive/",
        "/api/v1/stock/movements/",
    ):
        assert path in paths, path
    availability = paths["/api/v1/availability/{sku}/"]["get"]
    assert {"200", "400", "401", "403", "404"} <= set(availability["responses"])
    params = {p["name"] for p in availability["parameters"]}
    assert {"near", "radius_km", "explain", "pickup"} <= params
    receipt = paths["/api/v1/stock/receipts/"]["post"]
    assert {"201", "400", "401", "403", "404", "409"} <= set(receipt["responses"])
    assert "Idempotency-Key" in {p["name"] for p in receipt["parameters"]}
    assert "locations" in schema["components"]["schemas"]["Availability"]["properties"]


def test_docs_and_health_probes(anon_client):
    assert anon_client.get("/api/docs/").status_code == 200
    assert anon_client.get("/healthz").status_code == 200
    r = anon_client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["database"] == "ok"


# --- What one location has ----------------------------------------------------------------------------


def test_location_stock_lists_the_shelf(storefront, network, django_assert_max_num_queries):
    import datetime as dt

    from django.utils import timezone

    from inventory.models import HoldLine
    from inventory.services import Line, hold_create, stock_reserve

    tee, mug, cap = (
        SkuFactory(code="TEE"),
        SkuFactory(code="MUG", low_stock_threshold=0),
        SkuFactory(code="CAP"),
    )
    shibuya = network["SHIBUYA"]
    stock(shibuya, tee, 6, safety_stock=1)
    stock_reserve(lines=[Line(shibuya.pk, tee.pk, 2)], reference="O-1")
    hold = hold_create(lines=[Line(shibuya.pk, tee.pk, 1)])
    stock(shibuya, mug, 1)
    stock(shibuya, cap, 1)
    stock_reserve(lines=[Line(shibuya.pk, cap.pk, 1)], reference="O-2")  # nothing left
    stock(network["SHINJUKU"], tee, 9)

    # token with user and role (1) + location (1) + count (1) + page with SKUs (1) + expired holds (1)
    with django_assert_max_num_queries(5):
        r = storefront.get(URL + "SHIBUYA/stock/")
    assert r.status_code == 200
    rows = r.json()["results"]
    assert rows == [
        {
            "sku": "CAP",
            "name": cap.name,
            "on_hand": 1,
            "reserved": 1,
            "held": 0,
            "safety_stock": 0,
            "available": 0,
            "low_stock": True,
        },
        {
            "sku": "MUG",
            "name": mug.name,
            "on_hand": 1,
            "reserved": 0,
            "held": 0,
            "safety_stock": 0,
            "available": 1,
            "low_stock": False,
        },
        {
            "sku": "TEE",
            "name": tee.name,
            "on_hand": 6,
            "reserved": 2,
            "held": 1,
            "safety_stock": 1,
            "available": 2,
            "low_stock": True,
        },
    ]
    assert [
        x["sku"] for x in storefront.get(URL + "SHIBUYA/stock/", {"in_stock": "true"}).json()["results"]
    ] == ["MUG", "TEE"]
    assert [
        x["sku"] for x in storefront.get(URL + "SHIBUYA/stock/", {"sku": "TEE, CAP,NOPE"}).json()["results"]
    ] == ["CAP", "TEE"]
    assert [x["sku"] for x in storefront.get(URL + "SHIBUYA/stock/", {"search": "mu"}).json()["results"]] == [
        "MUG"
    ]

    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    tee_row = storefront.get(URL + "SHIBUYA/stock/", {"sku": "TEE"}).json()["results"][0]
    assert (tee_row["held"], tee_row["available"]) == (0, 3)  # an expired hold stops counting at once


def test_location_stock_errors(storefront, anon_client, network):
    assert error(storefront.get(URL + "NOWHERE/stock/"))["code"] == "unknown_location"
    r = storefront.get(URL + "SHIBUYA/stock/", {"sku": ","})
    assert r.status_code == 400
    assert "sku" in error(r)["details"]["fields"]
    r = storefront.get(URL + "SHIBUYA/stock/", {"in_stock": "perhaps"})
    assert r.status_code == 400
    assert anon_client.get(URL + "SHIBUYA/stock/").status_code == 401


def test_distance_from_is_haversine_from_a_fixed_point():
    from stores.selectors import distance_from, haversine_km

    km = distance_from(*SHIBUYA)
    for lat, lng in [(35.6909, 139.7003), (34.7025, 135.4959), (-33.86, 151.21), (35.6595, 139.7005)]:
        assert km(lat, lng) == pytest.approx(haversine_km(*SHIBUYA, lat, lng), abs=1e-9)
