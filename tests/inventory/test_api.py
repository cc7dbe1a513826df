"""SKUs and availability for every channel: /skus/, /availability/{sku}/, /availability/check/."""

import datetime as dt

import pytest
from django.utils import timezone

from inventory.models import Hold, HoldLine, StockLevel, StockMovement
from inventory.services import Line, hold_create, stock_reserve
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, UserFactory, WarehouseFactory, stock

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def post(client, url, body):
    return client.post(url, body, format="json")


def snapshot() -> tuple:
    """Everything a stock call could write."""
    return (
        sorted(
            StockLevel.objects.values_list(
                "location_id", "sku_id", "on_hand", "reserved", "held", "safety_stock"
            )
        ),
        StockMovement.objects.count(),
        Hold.objects.count(),
    )


@pytest.fixture
def net(db):
    return {
        "SHIBUYA": LocationFactory(code="SHIBUYA", latitude=35.6595, longitude=139.7005),
        "SHINJUKU": LocationFactory(code="SHINJUKU", latitude=35.6909, longitude=139.7003),
        "YOKOHAMA": LocationFactory(code="YOKOHAMA", latitude=35.4437, longitude=139.6380),
        "SHOWROOM": LocationFactory(
            code="SHOWROOM", latitude=35.6700, longitude=139.7020, ships_orders=False
        ),
        "WH": WarehouseFactory(code="WH", latitude=35.5309, longitude=139.7030),
        "CLOSED": LocationFactory(code="CLOSED", is_active=False),
    }


# --- SKUs --------------------------------------------------------------------------------------------


def test_sku_list_search_and_category(storefront):
    SkuFactory(code="TEE-BLK-M", name="Black tee M", barcode="4512345678901", category="apparel")
    SkuFactory(code="TEE-WHT-M", name="White tee M", category="apparel")
    SkuFactory(code="MUG", name="Mug", category="home")
    SkuFactory(code="OLD-TEE", name="Old tee", is_active=False)
    r = storefront.get("/api/v1/skus/")
    body = r.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [s["code"] for s in body["results"]] == ["MUG", "TEE-BLK-M", "TEE-WHT-M"]
    assert body["results"][0]["low_stock_threshold"] == 3  # the global default
    assert [s["code"] for s in storefront.get("/api/v1/skus/", {"search": "tee"}).json()["results"]] == [
        "TEE-BLK-M",
        "TEE-WHT-M",
    ]
    found = storefront.get("/api/v1/skus/", {"search": "4512345678901"}).json()["results"]
    assert [s["code"] for s in found] == ["TEE-BLK-M"]
    assert [s["code"] for s in storefront.get("/api/v1/skus/", {"category": "home"}).json()["results"]] == [
        "MUG"
    ]


def test_sku_detail_has_a_network_summary(storefront, net):
    sku = SkuFactory(code="TEE", low_stock_threshold=10)
    stock(net["SHIBUYA"], sku, 4)
    stock(net["SHOWROOM"], sku, 2)
    stock(net["CLOSED"], sku, 100)
    r = storefront.get("/api/v1/skus/TEE/")
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == "TEE"
    assert body["low_stock_threshold"] == 10
    assert body["availability"] == {
        "available": 6,
        "ship_available": 4,
        "pickup_available": 6,
        "low_stock": True,
        "locations_in_stock": 2,
    }


def test_sku_detail_unknown_is_404_and_permissions(storefront, anon_client):
    r = storefront.get("/api/v1/skus/NOPE/")
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_sku"
    assert anon_client.get("/api/v1/skus/").status_code == 401


# --- Availability of one SKU ----------------------------------------------------------------------------


def test_availability_shape_and_arithmetic(storefront, net):
    sku = SkuFactory(code="TEE", low_stock_threshold=2)
    stock(net["SHIBUYA"], sku, 10, safety_stock=2)
    stock_reserve(lines=[Line(net["SHIBUYA"].pk, sku.pk, 3)], reference="O-1")
    hold_create(lines=[Line(net["SHIBUYA"].pk, sku.pk, 1)])
    stock(net["WH"], sku, 20)
    stock(net["SHOWROOM"], sku, 5)
    stock(net["YOKOHAMA"], sku, 1, safety_stock=1)  # nothing available
    stock(net["CLOSED"], sku, 9)

    r = storefront.get("/api/v1/availability/TEE/")
    assert r.status_code == 200
    body = r.json()
    assert body["sku"] == "TEE"
    assert body["available"] == 4 + 20 + 5  # SHIBUYA: 10 - 3 reserved - 1 held - 2 safety
    assert body["ship_available"] == 24  # SHOWROOM does not ship
    assert body["in_stock"] is True
    assert body["low_stock"] is False
    assert [(loc["location"], loc["available"]) for loc in body["locations"]] == [
        ("WH", 20),
        ("SHOWROOM", 5),
        ("SHIBUYA", 4),
    ]
    loc = body["locations"][2]
    assert loc == {
        "location": "SHIBUYA",
        "name": net["SHIBUYA"].name,
        "kind": "store",
        "available": 4,
        "pickup": True,
        "ships": True,
        "distance_km": None,
    }


def test_available_is_never_below_zero(storefront, net):
    sku = SkuFactory(code="TEE")
    stock(net["SHIBUYA"], sku, 2, safety_stock=5)
    body = storefront.get("/api/v1/availability/TEE/", {"explain": "true"}).json()
    assert body["available"] == 0
    assert (body["in_stock"], body["low_stock"]) == (False, True)
    shibuya = next(loc for loc in body["locations"] if loc["location"] == "SHIBUYA")
    assert shibuya["available"] == 0
    assert shibuya["excluded"] == ["nothing available"]


def test_low_stock_uses_the_sku_threshold_then_the_global_default(storefront, net, settings):
    settings.OMS = {**settings.OMS, "LOW_STOCK_THRESHOLD": 5}
    default = SkuFactory(code="A")
    own = SkuFactory(code="B", low_stock_threshold=1)
    stock(net["SHIBUYA"], default, 5)
    stock(net["SHIBUYA"], own, 5)
    assert storefront.get("/api/v1/availability/A/").json()["low_stock"] is True  # 5 <= 5
    assert storefront.get("/api/v1/availability/A/").json()["low_stock_threshold"] == 5
    assert storefront.get("/api/v1/availability/B/").json()["low_stock"] is False
    stock(net["SHINJUKU"], default, 1)
    assert storefront.get("/api/v1/availability/A/").json()["low_stock"] is False  # 6 > 5


def test_expired_holds_stop_counting_at_once(storefront, net):
    sku = SkuFactory(code="TEE")
    stock(net["SHIBUYA"], sku, 3)
    hold = hold_create(lines=[Line(net["SHIBUYA"].pk, sku.pk, 2)])
    assert storefront.get("/api/v1/availability/TEE/").json()["available"] == 1
    past = timezone.now() - dt.timedelta(seconds=1)
    Hold.objects.filter(pk=hold.pk).update(expires_at=past)
    HoldLine.objects.filter(hold=hold).update(expires_at=past)
    body = storefront.get("/api/v1/availability/TEE/", {"explain": "true"}).json()
    assert body["available"] == 3
    assert body["locations"][0]["held"] == 0


def test_near_radius_pickup_ship_and_kind(storefront, net):
    sku = SkuFactory(code="TEE")
    for code in ("SHIBUYA", "SHINJUKU", "YOKOHAMA", "SHOWROOM", "WH"):
        stock(net[code], sku, 2)
    near = "35.6595,139.7005"

    body = storefront.get("/api/v1/availability/TEE/", {"near": near}).json()
    assert [loc["location"] for loc in body["locations"]] == [
        "SHIBUYA",
        "SHOWROOM",
        "SHINJUKU",
        "WH",
        "YOKOHAMA",
    ]
    assert body["locations"][2]["distance_km"] == pytest.approx(3.49, abs=0.05)

    body = storefront.get("/api/v1/availability/TEE/", {"near": near, "radius_km": "5"}).json()
    assert [loc["location"] for loc in body["locations"]] == ["SHIBUYA", "SHOWROOM", "SHINJUKU"]
    assert body["available"] == 6
    assert body["ship_available"] == 4

    body = storefront.get("/api/v1/availability/TEE/", {"pickup": "true"}).json()
    assert {loc["location"] for loc in body["locations"]} == {"SHIBUYA", "SHINJUKU", "YOKOHAMA", "SHOWROOM"}
    body = storefront.get("/api/v1/availability/TEE/", {"ship": "true"}).json()
    assert "SHOWROOM" not in {loc["location"] for loc in body["locations"]}
    assert body["available"] == 8
    body = storefront.get("/api/v1/availability/TEE/", {"kind": "warehouse"}).json()
    assert [loc["location"] for loc in body["locations"]] == ["WH"]


def test_explain_lists_every_location_with_counters_and_reasons(storefront, net):
    sku = SkuFactory(code="TEE")
    stock(net["SHIBUYA"], sku, 6, safety_stock=1)
    stock_reserve(lines=[Line(net["SHIBUYA"].pk, sku.pk, 2)], reference="O-1")
    hold_create(lines=[Line(net["SHIBUYA"].pk, sku.pk, 1)])
    stock(net["YOKOHAMA"], sku, 5)  # out of radius
    stock(net["SHOWROOM"], sku, 5)  # does not ship
    stock(net["WH"], sku, 5)  # no pickup, out of radius
    stock(net["CLOSED"], sku, 5)  # inactive
    # SHINJUKU never had the SKU: still listed, nothing available
    r = storefront.get(
        "/api/v1/availability/TEE/",
        {"near": "35.6595,139.7005", "radius_km": "10", "pickup": "true", "ship": "true", "explain": "true"},
    )
    body = r.json()
    by_code = {loc["location"]: loc for loc in body["locations"]}
    assert set(by_code) == set(net)
    assert by_code["SHIBUYA"] == {
        "location": "SHIBUYA",
        "name": net["SHIBUYA"].name,
        "kind": "store",
        "available": 2,
        "pickup": True,
        "ships": True,
        "distance_km": 0.0,
        "on_hand": 6,
        "reserved": 2,
        "held": 1,
        "safety_stock": 1,
        "excluded": [],
    }
    assert by_code["YOKOHAMA"]["excluded"] == ["out of radius"]
    assert by_code["SHOWROOM"]["excluded"] == ["does not ship"]
    assert by_code["WH"]["excluded"] == ["no pickup", "out of radius"]
    assert "inactive" in by_code["CLOSED"]["excluded"]
    assert by_code["SHINJUKU"]["excluded"] == ["nothing available"]
    assert by_code["SHINJUKU"]["on_hand"] == 0
    assert body["locations"][0]["location"] == "SHIBUYA"  # included first
    assert body["available"] == 2


def test_without_explain_there_are_no_counters(storefront, net):
    sku = SkuFactory(code="TEE")
    stock(net["SHIBUYA"], sku, 3)
    loc = storefront.get("/api/v1/availability/TEE/").json()["locations"][0]
    assert "on_hand" not in loc
    assert "excluded" not in loc


def test_availability_query_count_is_flat(storefront, net, django_assert_max_num_queries):
    sku = SkuFactory(code="TEE")
    for i in range(40):
        loc = LocationFactory(code=f"X-{i:02d}", latitude=35.6 + i / 1000, longitude=139.7)
        stock(loc, sku, 3)
        if i % 2:
            hold_create(lines=[Line(loc.pk, sku.pk, 1)])
    # token with user and role (1), SKU (1), stock joined with locations (1), expired holds (1,
    # only because units are held)
    with django_assert_max_num_queries(4):
        r = storefront.get("/api/v1/availability/TEE/", {"near": "35.6595,139.7005", "radius_km": "25"})
    assert len(r.json()["locations"]) == 40
    with django_assert_max_num_queries(4):
        r = storefront.get("/api/v1/availability/TEE/", {"explain": "true"})
    assert len(r.json()["locations"]) == 46


def test_availability_lists_the_first_limit_locations_and_totals_cover_all(storefront, net):
    sku = SkuFactory(code="TEE", low_stock_threshold=0)
    locs = [
        LocationFactory(code=f"X-{i:02d}", latitude=35.6 + i / 100, longitude=139.7, ships_orders=i % 2 == 0)
        for i in range(60)
    ]
    for i, loc in enumerate(locs):
        stock(loc, sku, 1 + i % 7)
    hold_create(lines=[Line(locs[6].pk, sku.pk, 7)])  # 7 - 7 held, does not count
    stock(net["CLOSED"], sku, 1000)  # inactive: never counts
    expected = sorted(
        ((1 + i % 7, loc.code) for i, loc in enumerate(locs) if i != 6), key=lambda p: (-p[0], p[1])
    )
    total = sum(n for n, _ in expected)
    ship_total = sum(1 + i % 7 for i in range(0, 60, 2) if i != 6)

    body = storefront.get("/api/v1/availability/TEE/").json()  # default: 50 listed
    assert (body["available"], body["ship_available"], body["locations_total"]) == (total, ship_total, 59)
    assert [(loc["available"], loc["location"]) for loc in body["locations"]] == expected[:50]

    body = storefront.get("/api/v1/availability/TEE/", {"limit": "3"}).json()
    assert (body["available"], body["ship_available"], body["locations_total"]) == (total, ship_total, 59)
    assert [(loc["available"], loc["location"]) for loc in body["locations"]] == expected[:3]

    body = storefront.get("/api/v1/availability/TEE/", {"limit": "0"}).json()
    assert (body["available"], body["locations_total"], body["locations"]) == (total, 59, [])

    body = storefront.get("/api/v1/availability/TEE/", {"limit": "500"}).json()
    assert len(body["locations"]) == body["locations_total"] == 59

    # with near: the nearest first, totals still over every location within the radius
    body = storefront.get(
        "/api/v1/availability/TEE/", {"near": "35.6,139.7", "radius_km": "30", "limit": "2"}
    ).json()
    within = [(i, loc) for i, loc in enumerate(locs) if i != 6 and i <= 26]  # 0.01 deg lat = 1.11 km
    assert body["locations_total"] == len(within)
    assert body["available"] == sum(1 + i % 7 for i, _ in within)
    assert [loc["location"] for loc in body["locations"]] == ["X-00", "X-01"]

    # explain lists every location whatever the limit
    body = storefront.get("/api/v1/availability/TEE/", {"explain": "true", "limit": "1"}).json()
    assert body["locations_total"] == 59
    assert len(body["locations"]) > 60


def test_availability_unknown_sku_bad_params_and_permissions(storefront, anon_client, net):
    SkuFactory(code="TEE")
    r = storefront.get("/api/v1/availability/NOPE/")
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_sku"
    for params, field in [
        ({"near": "999,0"}, "near"),
        ({"near": "nan,nan"}, "near"),
        ({"near": "35.6"}, "near"),
        ({"near": "35.6,139.7", "radius_km": "0"}, "radius_km"),
        ({"near": "35.6,139.7", "radius_km": "100000"}, "radius_km"),
        ({"radius_km": "5"}, "radius_km"),
        ({"explain": "sure"}, "explain"),
        ({"kind": "shop"}, "kind"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ]:
        r = storefront.get("/api/v1/availability/TEE/", params)
        assert r.status_code == 400, params
        assert field in error(r)["details"]["fields"], params
    assert anon_client.get("/api/v1/availability/TEE/").status_code == 401
    from tests.conftest import _client_for

    assert _client_for(UserFactory()).get("/api/v1/availability/TEE/").status_code == 403


@pytest.mark.parametrize("role", [Role.ASSOCIATE, Role.WAREHOUSE, Role.MANAGER])
def test_staff_see_network_availability(api_client_for, net, role):
    sku = SkuFactory(code="TEE")
    stock(net["YOKOHAMA"], sku, 2)
    client = api_client_for(role, locations=[net["SHIBUYA"]])
    assert client.get("/api/v1/availability/TEE/").json()["available"] == 2


# --- Cart check ------------------------------------------------------------------------------------


CHECK = "/api/v1/availability/check/"


def pickup(location="SHIBUYA", method="pickup"):
    return {"method": method, "location": location}


def ship(lat=35.6595, lng=139.7005):
    return {"method": "ship", "address": {"line1": "1-1", "city": "Tokyo", "latitude": lat, "longitude": lng}}


@pytest.fixture
def cart(net):
    tee, mug = SkuFactory(code="TEE"), SkuFactory(code="MUG")
    stock(net["SHIBUYA"], tee, 2)
    stock(net["SHINJUKU"], mug, 5)
    stock(net["WH"], tee, 10)
    stock(net["WH"], mug, 1)
    return tee, mug


@pytest.mark.parametrize("method", ["pickup", "curbside"])
def test_check_pickup_at_a_store_with_stock(storefront, cart, method):
    r = post(
        storefront, CHECK, {"lines": [{"sku": "TEE", "quantity": 2}], "fulfillment": pickup(method=method)}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["fulfillable"] is True
    assert body["method"] == method
    assert body["locations"] == ["SHIBUYA"]
    assert body["lines"] == [
        {
            "sku": "TEE",
            "quantity": 2,
            "fulfillable": True,
            "shortfall": 0,
            "locations": [{"location": "SHIBUYA", "quantity": 2, "distance_km": None}],
        }
    ]


def test_check_pickup_short_lists_alternatives_nearest_the_store(storefront, cart):
    before = snapshot()
    r = post(
        storefront,
        CHECK,
        {"lines": [{"sku": "TEE", "quantity": 3}, {"sku": "MUG", "quantity": 1}], "fulfillment": pickup()},
    )
    body = r.json()
    assert r.status_code == 200
    assert body["fulfillable"] is False
    tee, mug = body["lines"]
    assert (tee["fulfillable"], tee["shortfall"]) == (False, 1)
    assert tee["locations"] == [{"location": "SHIBUYA", "quantity": 2, "distance_km": None}]
    assert [a["location"] for a in tee["alternatives"]] == ["SHIBUYA", "WH"]
    assert (mug["fulfillable"], mug["shortfall"], mug["locations"]) == (False, 1, [])
    assert [a["location"] for a in mug["alternatives"]] == ["SHINJUKU", "WH"]  # nearest the store first
    assert snapshot() == before  # a check reserves nothing


def test_check_pickup_at_a_store_without_pickup_is_not_fulfillable(storefront, cart, net):
    stock(net["SHOWROOM"], cart[0], 5)
    net["SHOWROOM"].offers_pickup = False
    net["SHOWROOM"].save()
    r = post(storefront, CHECK, {"lines": [{"sku": "TEE", "quantity": 1}], "fulfillment": pickup("SHOWROOM")})
    assert r.json()["fulfillable"] is False
    r = post(
        storefront,
        CHECK + "?explain=true",
        {"lines": [{"sku": "TEE", "quantity": 1}], "fulfillment": pickup("SHOWROOM")},
    )
    assert "does not offer pickup" in r.json()["routing"]["considered"][0]["reasons"]


def test_check_ship_routes_to_locations_that_ship(storefront, cart):
    r = post(
        storefront,
        CHECK,
        {"lines": [{"sku": "TEE", "quantity": 5}, {"sku": "MUG", "quantity": 1}], "fulfillment": ship()},
    )
    body = r.json()
    assert body["fulfillable"] is True
    assert body["locations"] == ["WH"]  # the one location that has the whole cart
    assert [ln["locations"][0]["location"] for ln in body["lines"]] == ["WH", "WH"]
    r = post(storefront, CHECK, {"lines": [{"sku": "TEE", "quantity": 13}], "fulfillment": ship()})
    line = r.json()["lines"][0]
    assert (r.json()["fulfillable"], line["shortfall"]) == (False, 1)
    assert sum(loc["quantity"] for loc in line["locations"]) == 12


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": [], "fulfillment": {"method": "ship"}}, "lines"),
        ({"fulfillment": {"method": "ship"}}, "lines"),
        ({"lines": [{"sku": "TEE", "quantity": 0}], "fulfillment": {"method": "ship"}}, "lines"),
        ({"lines": [{"sku": "TEE", "quantity": -2}], "fulfillment": {"method": "ship"}}, "lines"),
        ({"lines": [{"sku": "TEE", "quantity": 1.5}], "fulfillment": {"method": "ship"}}, "lines"),
        ({"lines": [{"sku": "TEE", "quantity": "2"}], "fulfillment": {"method": "ship"}}, "lines"),
        ({"lines": [{"sku": "TEE", "quantity": True}], "fulfillment": {"method": "ship"}}, "lines"),
        ({"lines": [{"sku": "TEE", "quantity": 100_001}], "fulfillment": {"method": "ship"}}, "lines"),
        ({"lines": [{"sku": "TEE"}], "fulfillment": {"method": "ship"}}, "lines"),
        ({"lines": [{"sku": "TEE", "quantity": 1}]}, "fulfillment"),
        ({"lines": [{"sku": "TEE", "quantity": 1}], "fulfillment": {"method": "drone"}}, "fulfillment"),
        ({"lines": [{"sku": "TEE", "quantity": 1}], "fulfillment": {"method": "pickup"}}, "fulfillment"),
        (
            {
                "lines": [{"sku": "TEE", "quantity": 1}],
                "fulfillment": {"method": "ship", "address": {"latitude": 1}},
            },
            "fulfillment",
        ),
        (
            {
                "lines": [{"sku": "TEE", "quantity": 1}],
                "fulfillment": {"method": "ship", "address": {"latitude": 95, "longitude": 0}},
            },
            "fulfillment",
        ),
        ("not an object", "non_field_errors"),
    ],
)
def test_check_bad_input_is_400_with_the_field(storefront, cart, body, field):
    r = post(storefront, CHECK, body)
    assert r.status_code == 400
    assert field in error(r)["details"]["fields"]


def test_check_duplicate_unknown_and_permissions(storefront, anon_client, cart):
    r = post(
        storefront,
        CHECK,
        {"lines": [{"sku": "TEE", "quantity": 1}, {"sku": "TEE", "quantity": 1}], "fulfillment": ship()},
    )
    assert r.status_code == 400
    assert error(r)["code"] == "duplicate_line"
    assert error(r)["details"] == {"field": "lines", "skus": ["TEE"]}
    r = post(
        storefront,
        CHECK,
        {"lines": [{"sku": "NOPE", "quantity": 1}, {"sku": "TEE", "quantity": 1}], "fulfillment": ship()},
    )
    assert r.status_code == 404
    assert error(r) == {"code": "unknown_sku", "message": "Unknown SKU(s).", "details": {"skus": ["NOPE"]}}
    r = post(storefront, CHECK, {"lines": [{"sku": "TEE", "quantity": 1}], "fulfillment": pickup("NOWHERE")})
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_location"
    assert post(anon_client, CHECK, {}).status_code == 401


def test_malformed_json_is_400(storefront):
    r = storefront.generic("POST", CHECK, "{not json", content_type="application/json")
    assert r.status_code == 400
    assert error(r)["code"] == "parse_error"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/availability/%00/",
        "/api/v1/skus/%00/",
        "/api/v1/locations/%00/",
        "/api/v1/locations/?sku=%00",
        "/api/v1/skus/?search=%00",
        "/api/v1/availability/TEE/?near=%00",
    ],
)
def test_nul_characters_are_a_4xx_never_a_500(storefront, url):
    SkuFactory(code="TEE")
    assert storefront.get(url).status_code in (400, 404)


def test_explain_with_kind_names_the_other_kind(storefront, net):
    sku = SkuFactory(code="TEE")
    stock(net["SHIBUYA"], sku, 2)
    stock(net["WH"], sku, 3)
    body = storefront.get("/api/v1/availability/TEE/", {"kind": "warehouse", "explain": "true"}).json()
    by_code = {loc["location"]: loc for loc in body["locations"]}
    assert by_code["WH"]["excluded"] == []
    assert by_code["SHIBUYA"]["excluded"] == ["not a warehouse"]
    assert body["available"] == 3
