"""The staff stock calls: receipts, adjustments, safety stock, transfers, the ledger.

Every failure is checked to leave the database as it was.
"""

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from inventory.models import MovementKind, StockLevel, StockMovement, Transfer, TransferStatus
from inventory.selectors import ledger_mismatches
from inventory.services import Line, stock_reserve
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, UserFactory, WarehouseFactory, stock

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def post(client, url, body, **extra):
    return client.post(url, body, format="json", **extra)


def snapshot() -> tuple:
    return (
        sorted(
            StockLevel.objects.values_list(
                "location_id", "sku_id", "on_hand", "reserved", "held", "safety_stock"
            )
        ),
        StockMovement.objects.count(),
        sorted(Transfer.objects.values_list("id", "status")),
    )


def level(loc, sku) -> tuple[int, int, int]:
    lvl = StockLevel.objects.get(location=loc, sku=sku)
    return lvl.on_hand, lvl.reserved, lvl.safety_stock


@pytest.fixture
def a(db):
    return LocationFactory(code="STORE-A")


@pytest.fixture
def b(db):
    return LocationFactory(code="STORE-B", latitude=35.69, longitude=139.70)


@pytest.fixture
def wh(db):
    return WarehouseFactory(code="WH-1")


@pytest.fixture
def tee(db):
    return SkuFactory(code="TEE")


@pytest.fixture
def mug(db):
    return SkuFactory(code="MUG")


@pytest.fixture
def associate(api_client_for, a):
    return api_client_for(Role.ASSOCIATE, locations=[a])


@pytest.fixture
def superuser_client(db):
    user = UserFactory(is_superuser=True, is_staff=True)
    client = APIClient()
    _, token = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


# --- Who may call (every stock endpoint) -----------------------------------------------------------------

STOCK_CALLS = [
    ("post", "/api/v1/stock/receipts/", {"location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 1}]}),
    (
        "post",
        "/api/v1/stock/adjustments/",
        {"location": "STORE-A", "sku": "TEE", "delta": 1, "reason": "found"},
    ),
    ("put", "/api/v1/stock/safety/", {"location": "STORE-A", "sku": "TEE", "safety_stock": 1}),
    (
        "post",
        "/api/v1/stock/transfers/",
        {"from_location": "STORE-A", "to_location": "STORE-B", "lines": [{"sku": "TEE", "quantity": 1}]},
    ),
    ("get", "/api/v1/stock/transfers/", None),
    ("get", "/api/v1/stock/movements/", None),
]


@pytest.mark.parametrize(("method", "url", "body"), STOCK_CALLS)
def test_anonymous_is_401_and_storefront_403(anon_client, storefront, a, b, tee, method, url, body):
    stock(a, tee, 5)
    before = snapshot()
    r = getattr(anon_client, method)(url, body, format="json")
    assert r.status_code == 401
    assert error(r)["code"] == "not_authenticated"
    r = getattr(storefront, method)(url, body, format="json")
    assert r.status_code == 403
    assert error(r)["code"] == "forbidden"
    assert snapshot() == before


@pytest.mark.parametrize(("method", "url", "body"), [c for c in STOCK_CALLS if c[0] != "get"])
def test_staff_of_another_location_is_403_location_forbidden(api_client_for, a, b, tee, method, url, body):
    stock(a, tee, 5)
    client = api_client_for(Role.MANAGER, locations=[b])
    before = snapshot()
    r = getattr(client, method)(url, body, format="json")
    assert r.status_code == 403
    assert error(r) == {
        "code": "location_forbidden",
        "message": "You are not assigned to location STORE-A.",
        "details": {"location": "STORE-A"},
    }
    assert snapshot() == before


# --- Receipts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ASSOCIATE, Role.WAREHOUSE, Role.MANAGER])
def test_receipt_adds_on_hand_and_ledger(api_client_for, a, tee, mug, role):
    client = api_client_for(role, locations=[a])
    stock(a, tee, 2)
    r = post(
        client,
        "/api/v1/stock/receipts/",
        {
            "location": "STORE-A",
            "reference": "PO-7",
            "lines": [{"sku": "TEE", "quantity": 3}, {"sku": "MUG", "quantity": 4}],
        },
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["location"] == "STORE-A"
    assert body["reference"] == "PO-7"
    assert [(m["kind"], m["sku"], m["on_hand_delta"], m["user"]) for m in body["movements"]] == [
        ("receipt", "TEE", 3, client.user.username),
        ("receipt", "MUG", 4, client.user.username),
    ]
    assert body["stock"] == [
        {
            "sku": "MUG",
            "location": "STORE-A",
            "on_hand": 4,
            "reserved": 0,
            "held": 0,
            "safety_stock": 0,
            "available": 4,
        },
        {
            "sku": "TEE",
            "location": "STORE-A",
            "on_hand": 5,
            "reserved": 0,
            "held": 0,
            "safety_stock": 0,
            "available": 5,
        },
    ]
    assert level(a, tee) == (5, 0, 0)
    assert ledger_mismatches() == []


def test_superuser_acts_anywhere(superuser_client, a, tee):
    r = post(
        superuser_client,
        "/api/v1/stock/receipts/",
        {"location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 1}]},
    )
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        (None, "lines"),
        ("TEE", "lines"),
        ([{"sku": "TEE", "quantity": 0}], "quantity"),
        ([{"sku": "TEE", "quantity": -1}], "quantity"),
        ([{"sku": "TEE", "quantity": 2.5}], "quantity"),
        ([{"sku": "TEE", "quantity": 2.0}], "quantity"),
        ([{"sku": "TEE", "quantity": "2"}], "quantity"),
        ([{"sku": "TEE", "quantity": True}], "quantity"),
        ([{"sku": "TEE", "quantity": None}], "quantity"),
        ([{"sku": "TEE", "quantity": 100_001}], "quantity"),
        ([{"sku": "TEE", "quantity": 10**30}], "quantity"),
        ([{"sku": "", "quantity": 1}], "sku"),
        ([{"quantity": 1}], "sku"),
    ],
)
def test_receipt_bad_lines_are_400_with_the_field_and_write_nothing(associate, a, tee, lines, field):
    stock(a, tee, 1)
    before = snapshot()
    body = {"location": "STORE-A", "lines": lines}
    if lines is None:
        del body["lines"]
    r = post(associate, "/api/v1/stock/receipts/", body)
    assert r.status_code == 400
    err = error(r)
    assert err["code"] == "invalid"
    fields = err["details"]["fields"]
    assert "lines" in fields
    if field != "lines":
        assert field in fields["lines"]["0"]  # errors of list items are keyed by index
    assert snapshot() == before


def test_receipt_limit_follows_the_setting(associate, a, tee, settings):
    settings.OMS = {**settings.OMS, "MAX_LINE_QUANTITY": 10}
    r = post(
        associate,
        "/api/v1/stock/receipts/",
        {"location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 11}]},
    )
    assert r.status_code == 400
    r = post(
        associate,
        "/api/v1/stock/receipts/",
        {"location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 10}]},
    )
    assert r.status_code == 201


def test_receipt_duplicate_sku_is_400_duplicate_line(associate, a, tee):
    before = snapshot()
    r = post(
        associate,
        "/api/v1/stock/receipts/",
        {"location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 1}, {"sku": "TEE", "quantity": 2}]},
    )
    assert r.status_code == 400
    assert error(r)["code"] == "duplicate_line"
    assert error(r)["details"] == {"field": "lines", "skus": ["TEE"]}
    assert snapshot() == before


def test_receipt_unknown_sku_or_location_is_404_and_nothing_is_written(associate, a, tee):
    before = snapshot()
    r = post(
        associate,
        "/api/v1/stock/receipts/",
        {"location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 1}, {"sku": "NOPE", "quantity": 1}]},
    )
    assert r.status_code == 404
    assert error(r) == {"code": "unknown_sku", "message": "Unknown SKU(s).", "details": {"skus": ["NOPE"]}}
    r = post(
        associate,
        "/api/v1/stock/receipts/",
        {"location": "NOWHERE", "lines": [{"sku": "TEE", "quantity": 1}]},
    )
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_location"
    assert snapshot() == before


def test_receipt_with_idempotency_key_replays(associate, a, tee):
    body = {"location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 3}]}
    first = post(associate, "/api/v1/stock/receipts/", body, HTTP_IDEMPOTENCY_KEY="rcpt-1")
    again = post(associate, "/api/v1/stock/receipts/", body, HTTP_IDEMPOTENCY_KEY="rcpt-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert level(a, tee) == (3, 0, 0)
    other = post(
        associate, "/api/v1/stock/receipts/", {**body, "reference": "x"}, HTTP_IDEMPOTENCY_KEY="rcpt-1"
    )
    assert other.status_code == 422
    assert error(other)["code"] == "idempotency_key_reused"
    assert level(a, tee) == (3, 0, 0)


# --- Adjustments ----------------------------------------------------------------------------------------


def test_adjust_to_a_count_and_by_a_delta(associate, a, tee):
    stock(a, tee, 10)
    r = post(
        associate,
        "/api/v1/stock/adjustments/",
        {"location": "STORE-A", "sku": "TEE", "counted_quantity": 7, "reason": "cycle count"},
    )
    assert r.status_code == 201
    assert [(m["kind"], m["on_hand_delta"]) for m in r.json()["movements"]] == [("cycle_count", -3)]
    assert r.json()["stock"][0]["on_hand"] == 7
    r = post(
        associate,
        "/api/v1/stock/adjustments/",
        {"location": "STORE-A", "sku": "TEE", "delta": -2, "reason": "damaged in store"},
    )
    assert r.json()["movements"][0]["kind"] == "damage"
    r = post(
        associate,
        "/api/v1/stock/adjustments/",
        {"location": "STORE-A", "sku": "TEE", "delta": 4, "reason": "found in back room"},
    )
    assert r.json()["movements"][0]["kind"] == "adjustment"
    assert level(a, tee) == (9, 0, 0)
    r = post(
        associate,
        "/api/v1/stock/adjustments/",
        {"location": "STORE-A", "sku": "TEE", "counted_quantity": 9, "reason": "recount"},
    )
    assert r.status_code == 201
    assert r.json()["movements"][0]["on_hand_delta"] == 0  # a count that confirms the books is recorded
    assert ledger_mismatches() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x"}, "counted_quantity"),
        ({"counted_quantity": 1, "delta": 1, "reason": "x"}, "counted_quantity"),
        ({"counted_quantity": -1, "reason": "x"}, "counted_quantity"),
        ({"counted_quantity": 1.5, "reason": "x"}, "counted_quantity"),
        ({"counted_quantity": 100_001, "reason": "x"}, "counted_quantity"),
        ({"delta": 0, "reason": "x"}, "delta"),
        ({"delta": False, "reason": "x"}, "delta"),
        ({"delta": "3", "reason": "x"}, "delta"),
        ({"delta": -100_001, "reason": "x"}, "delta"),
        ({"delta": 1}, "reason"),
        ({"delta": 1, "reason": "   "}, "reason"),
    ],
)
def test_adjust_bad_input_is_400(associate, a, tee, body, field):
    stock(a, tee, 3)
    before = snapshot()
    r = post(associate, "/api/v1/stock/adjustments/", {"location": "STORE-A", "sku": "TEE", **body})
    assert r.status_code == 400
    assert field in error(r)["details"]["fields"]
    assert snapshot() == before


def test_adjust_below_what_is_promised_is_409(associate, a, tee):
    stock(a, tee, 5)
    stock_reserve(lines=[Line(a.pk, tee.pk, 4)], reference="O-1")
    before = snapshot()
    r = post(
        associate,
        "/api/v1/stock/adjustments/",
        {"location": "STORE-A", "sku": "TEE", "counted_quantity": 3, "reason": "count"},
    )
    assert r.status_code == 409
    err = error(r)
    assert err["code"] == "stock_conflict"
    assert err["details"]["field"] == "counted_quantity"
    r = post(
        associate,
        "/api/v1/stock/adjustments/",
        {"location": "STORE-A", "sku": "TEE", "delta": -2, "reason": "lost"},
    )
    assert r.status_code == 409
    assert snapshot() == before


def test_adjust_unknown_sku_is_404(associate, a):
    r = post(
        associate,
        "/api/v1/stock/adjustments/",
        {"location": "STORE-A", "sku": "NOPE", "delta": 1, "reason": "x"},
    )
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_sku"


# --- Safety stock ---------------------------------------------------------------------------------------


def test_safety_stock_is_set_and_counts_against_availability(associate, storefront, a, tee):
    stock(a, tee, 5)
    r = associate.put(
        "/api/v1/stock/safety/", {"location": "STORE-A", "sku": "TEE", "safety_stock": 2}, format="json"
    )
    assert r.status_code == 200
    assert r.json()["stock"][0]["safety_stock"] == 2
    assert [m["kind"] for m in r.json()["movements"]] == ["safety_stock"]
    assert storefront.get("/api/v1/availability/TEE/").json()["available"] == 3
    r = post(associate, "/api/v1/stock/safety/", {"location": "STORE-A", "sku": "TEE", "safety_stock": 2})
    assert r.status_code == 200
    assert r.json()["movements"] == []  # unchanged: nothing written
    r = associate.put(
        "/api/v1/stock/safety/", {"location": "STORE-A", "sku": "TEE", "safety_stock": -1}, format="json"
    )
    assert r.status_code == 400
    assert "safety_stock" in error(r)["details"]["fields"]
    assert ledger_mismatches() == []


# --- Transfers ------------------------------------------------------------------------------------------


def test_transfer_out_in_transit_then_received_at_the_destination(api_client_for, a, b, tee, mug):
    stock(a, tee, 5)
    stock(a, mug, 2)
    sender = api_client_for(Role.ASSOCIATE, locations=[a])
    receiver = api_client_for(Role.ASSOCIATE, locations=[b])
    r = post(
        sender,
        "/api/v1/stock/transfers/",
        {
            "from_location": "STORE-A",
            "to_location": "STORE-B",
            "reference": "T-1",
            "lines": [{"sku": "TEE", "quantity": 3}, {"sku": "MUG", "quantity": 2}],
        },
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "in_transit"
    assert (body["from_location"], body["to_location"], body["reference"]) == ("STORE-A", "STORE-B", "T-1")
    assert body["lines"] == [
        {"sku": "MUG", "quantity": 2, "received_quantity": None},
        {"sku": "TEE", "quantity": 3, "received_quantity": None},
    ]
    assert body["received_at"] is None
    assert level(a, tee) == (2, 0, 0)
    tid = body["id"]

    # the sender may not receive it; the receiver sees it and receives it
    r = post(sender, f"/api/v1/stock/transfers/{tid}/receive/", {})
    assert r.status_code == 403
    assert error(r)["code"] == "location_forbidden"
    assert receiver.get(f"/api/v1/stock/transfers/{tid}/").json()["status"] == "in_transit"
    assert [t["id"] for t in receiver.get("/api/v1/stock/transfers/").json()["results"]] == [tid]
    r = post(receiver, f"/api/v1/stock/transfers/{tid}/receive/", {})
    assert r.status_code == 200
    assert r.json()["status"] == "received"
    assert r.json()["received_at"]
    assert [ln["received_quantity"] for ln in r.json()["lines"]] == [2, 3]
    assert level(b, tee) == (3, 0, 0)
    assert Transfer.objects.get(pk=tid).status == TransferStatus.RECEIVED

    before = snapshot()
    r = post(receiver, f"/api/v1/stock/transfers/{tid}/receive/", {})
    assert r.status_code == 409
    assert error(r)["code"] == "invalid_transition"
    assert snapshot() == before
    assert ledger_mismatches() == []


def _overdraw(associate, a, tee, mug):
    stock(a, tee, 5, safety_stock=1)
    stock(a, mug, 9)
    stock_reserve(lines=[Line(a.pk, tee.pk, 2)], reference="O-1")
    before = snapshot()
    r = post(
        associate,
        "/api/v1/stock/transfers/",
        {
            "from_location": "STORE-A",
            "to_location": "STORE-B",
            "lines": [{"sku": "MUG", "quantity": 1}, {"sku": "TEE", "quantity": 3}],
        },
    )
    assert snapshot() == before  # MUG did not move either
    return r


def test_transfer_more_than_available_is_409_and_moves_nothing(associate, a, b, tee, mug):
    r = _overdraw(associate, a, tee, mug)
    assert r.status_code == 409
    err = error(r)
    assert err["code"] == "insufficient_stock"
    assert [(ln["sku"], ln["location"], ln["available"]) for ln in err["details"]["lines"]] == [
        ("TEE", "STORE-A", 2)
    ]


def test_transfer_409_carries_the_shortfall_per_line(associate, a, b, tee, mug):
    r = _overdraw(associate, a, tee, mug)
    assert error(r)["details"]["lines"] == [
        {"sku": "TEE", "location": "STORE-A", "requested": 3, "available": 2, "shortfall": 1}
    ]


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (
            {"from_location": "STORE-A", "to_location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 1}]},
            "invalid",
            400,
        ),
        ({"from_location": "STORE-A", "to_location": "STORE-B", "lines": []}, "invalid", 400),
        (
            {"from_location": "STORE-A", "to_location": "STORE-B", "lines": [{"sku": "TEE", "quantity": 0}]},
            "invalid",
            400,
        ),
        (
            {
                "from_location": "STORE-A",
                "to_location": "STORE-B",
                "lines": [{"sku": "TEE", "quantity": 1}, {"sku": "TEE", "quantity": 1}],
            },
            "duplicate_line",
            400,
        ),
        (
            {"from_location": "STORE-A", "to_location": "NOWHERE", "lines": [{"sku": "TEE", "quantity": 1}]},
            "unknown_location",
            404,
        ),
        (
            {"from_location": "STORE-A", "to_location": "STORE-B", "lines": [{"sku": "NOPE", "quantity": 1}]},
            "unknown_sku",
            404,
        ),
        (
            {"from_location": "STORE-B", "to_location": "STORE-A", "lines": [{"sku": "TEE", "quantity": 1}]},
            "location_forbidden",
            403,
        ),
    ],
)
def test_transfer_bad_requests_write_nothing(associate, a, b, tee, body, code, status):
    stock(a, tee, 5)
    stock(b, tee, 5)
    before = snapshot()
    r = post(associate, "/api/v1/stock/transfers/", body)
    assert r.status_code == status
    assert error(r)["code"] == code
    assert snapshot() == before


def test_transfer_detail_and_receive_unknown_or_elsewhere(api_client_for, associate, a, b, wh, tee):
    stock(b, tee, 5)
    t = Transfer.objects.get(
        pk=post(
            api_client_for(Role.MANAGER, locations=[b]),
            "/api/v1/stock/transfers/",
            {"from_location": "STORE-B", "to_location": "WH-1", "lines": [{"sku": "TEE", "quantity": 1}]},
        ).json()["id"]
    )
    r = associate.get(f"/api/v1/stock/transfers/{t.pk}/")  # associate works at STORE-A only
    assert r.status_code == 403
    assert error(r)["code"] == "location_forbidden"
    assert associate.get("/api/v1/stock/transfers/").json()["results"] == []
    r = associate.get(f"/api/v1/stock/transfers/{t.pk + 1000}/")
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_transfer"
    r = post(associate, "/api/v1/stock/transfers/99999999999999999999/receive/", {})
    assert r.status_code == 404
    r = associate.get("/api/v1/stock/transfers/", {"status": "lost"})
    assert r.status_code == 400


# --- The ledger -----------------------------------------------------------------------------------------


def test_movements_are_scoped_to_the_users_locations(api_client_for, superuser_client, a, b, tee, mug):
    stock(a, tee, 5)
    stock(a, mug, 1)
    stock(b, tee, 7)
    staff_a = api_client_for(Role.ASSOCIATE, locations=[a])
    r = staff_a.get("/api/v1/stock/movements/")
    body = r.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert {m["location"] for m in body["results"]} == {"STORE-A"}
    assert body["results"][0]["id"] > body["results"][1]["id"]  # newest first
    assert [m["sku"] for m in staff_a.get("/api/v1/stock/movements/", {"sku": "TEE"}).json()["results"]] == [
        "TEE"
    ]
    assert staff_a.get("/api/v1/stock/movements/", {"kind": "receipt"}).json()["count"] == 2
    assert staff_a.get("/api/v1/stock/movements/", {"reference": "test"}).json()["count"] == 2

    r = staff_a.get("/api/v1/stock/movements/", {"location": "STORE-B"})
    assert r.status_code == 403
    assert error(r)["code"] == "location_forbidden"
    assert superuser_client.get("/api/v1/stock/movements/").json()["count"] == 3
    assert superuser_client.get("/api/v1/stock/movements/", {"location": "STORE-B"}).json()["count"] == 1

    assert staff_a.get("/api/v1/stock/movements/", {"sku": "NOPE"}).status_code == 404
    assert (
        error(staff_a.get("/api/v1/stock/movements/", {"location": "NOWHERE"}))["code"] == "unknown_location"
    )
    r = staff_a.get("/api/v1/stock/movements/", {"kind": "stolen"})
    assert r.status_code == 400
    assert "kind" in error(r)["details"]["fields"]


def test_movements_page_has_a_flat_query_count(api_client_for, a, tee, django_assert_max_num_queries):
    for sku in SkuFactory.create_batch(30):
        stock(a, sku, 2)
    staff = api_client_for(Role.MANAGER, locations=[a])
    # token with user and role (1) + assignments (1) + count (1) + page with SKU, location, user (1)
    with django_assert_max_num_queries(4):
        r = staff.get("/api/v1/stock/movements/", {"page_size": 50})
    assert len(r.json()["results"]) == 30
    assert {m["kind"] for m in r.json()["results"]} == {MovementKind.RECEIPT}


def test_nul_characters_are_a_4xx_never_a_500(associate, a, tee):
    for url in (
        "/api/v1/stock/movements/?location=%00",
        "/api/v1/stock/movements/?sku=%00",
        "/api/v1/stock/transfers/?location=%00",
    ):
        assert associate.get(url).status_code in (400, 404), url
    r = post(
        associate,
        "/api/v1/stock/receipts/",
        {"location": "STORE-A\x00", "lines": [{"sku": "TEE\x00", "quantity": 1}]},
    )
    assert r.status_code == 400
