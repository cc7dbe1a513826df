import datetime as dt
import uuid

import pytest
from django.utils import timezone

from inventory.models import Hold, StockLevel
from orders.models import Customer, Fulfillment, IdempotencyKey, Order, OrderEvent
from orders.tasks import purge_idempotency_keys, reclaim_expired_holds
from stores.models import Role
from tests.orders.conftest import TOKYO

pytestmark = pytest.mark.django_db

URL = "/api/v1/orders/"


def body(*pairs, method="ship", **extra):
    fulfillment = (
        {"method": method, "address": TOKYO}
        if method == "ship"
        else {"method": method, "location": "TKY-SHIBUYA"}
    )
    return {
        "channel": "web",
        "customer": {"email": "Aiko@Example.com", "phone": "090-1234-5678", "name": "Aiko"},
        "fulfillment": fulfillment,
        "lines": [{"sku": code, "quantity": q, "unit_price": "1980.00"} for code, q in pairs],
        "currency": "JPY",
    } | extra


def post(client, data, key="k-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(URL, data, format="json", **headers)


def err(resp, status, code):
    assert resp.status_code == status, resp.content
    payload = resp.json()
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"code", "message", "details"}
    assert payload["error"]["code"] == code, payload
    return payload["error"]


def nothing_written():
    return (
        Order.objects.count() == 0
        and OrderEvent.objects.count() == 0
        and not StockLevel.objects.filter(reserved__gt=0).exists()
        and IdempotencyKey.objects.count() == 0
    )


# --- Placement ----------------------------------------------------------------------------------


def test_place_order_201_shape(net, storefront):
    r = post(storefront, body(("TEE-0", 2), ("TEE-1", 1)))
    assert r.status_code == 201, r.content
    data = r.json()
    assert {"number", "status", "customer", "lines", "fulfillments", "subtotal", "total", "currency"} <= set(
        data
    )
    assert data["status"] == "placed"
    assert data["total"] == "5940.00"
    assert data["currency"] == "JPY"
    assert data["customer"]["email"] == "aiko@example.com"
    assert data["customer"]["phone"] == "+819012345678"
    [f] = data["fulfillments"]
    assert {"id", "location", "method", "status", "lines"} <= set(f)
    assert f["location"] == "WH-KAWASAKI"
    assert sorted((ln["sku"], ln["quantity"]) for ln in f["lines"]) == [("TEE-0", 2), ("TEE-1", 1)]
    # the stored order agrees with the response
    assert Order.objects.get(number=data["number"]).total == 5940


def test_idempotent_replay_is_byte_identical_and_one_order(net, storefront):
    first = post(storefront, body(("TEE-0", 1)), key="same")
    again = post(storefront, body(("TEE-0", 1)), key="same")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert StockLevel.objects.get(location=net.wh, sku=net.skus[0]).reserved == 1


def test_same_key_other_body_is_422(net, storefront):
    assert post(storefront, body(("TEE-0", 1)), key="k").status_code == 201
    err(post(storefront, body(("TEE-0", 2)), key="k"), 422, "idempotency_key_reused")
    assert Order.objects.count() == 1


def test_keys_are_scoped_per_user(net, storefront, api_client_for):
    other = api_client_for(Role.STOREFRONT)
    a = post(storefront, body(("TEE-0", 1)), key="shared")
    b = post(other, body(("TEE-0", 1)), key="shared")
    assert a.status_code == b.status_code == 201
    assert a.json()["number"] != b.json()["number"]


def test_idempotency_key_required_and_bounded(net, storefront):
    err(post(storefront, body(("TEE-0", 1)), key=None), 400, "idempotency_key_required")
    err(post(storefront, body(("TEE-0", 1)), key="x" * 256), 400, "idempotency_key_invalid")
    assert post(storefront, body(("TEE-0", 1)), key="x" * 255).status_code == 201


def test_a_failed_request_is_not_stored_and_can_be_retried(net, storefront):
    err(post(storefront, body(("TEE-0", 50)), key="retry"), 409, "insufficient_stock")
    assert nothing_written()
    from tests.factories import stock

    stock(net.wh, net.skus[0], 50)
    assert post(storefront, body(("TEE-0", 50)), key="retry").status_code == 201


def test_pickup_reservation_lost_after_the_response_is_stored_rolls_everything_back(
    net, storefront, monkeypatch
):
    """The pickup reservation is the idempotency layer's last step (ThenBeforeCommit): it runs
    after the 201 is stored. When another buyer took the units since the lookup (here from an
    order-event listener in the same transaction), the answer is the 409, nothing stays (not even
    the stored response), and the same key can be retried."""
    from inventory.services import Line, stock_reserve
    from orders import hooks

    def someone_else_takes_them(events):
        if events[0].type == "placed":
            stock_reserve(lines=[Line(net.shibuya.pk, net.skus[0].pk, 3)], reference="someone else")

    monkeypatch.setattr(hooks, "_listeners", [*hooks._listeners, someone_else_takes_them])
    lost = err(post(storefront, body(("TEE-0", 3), method="pickup"), key="lost"), 409, "insufficient_stock")
    assert lost["details"]["lines"][0]["nearby"]  # the same 409 as a sold-out lookup
    assert nothing_written()
    monkeypatch.setattr(
        hooks, "_listeners", [h for h in hooks._listeners if h is not someone_else_takes_them]
    )
    assert post(storefront, body(("TEE-0", 3), method="pickup"), key="lost").status_code == 201
    assert StockLevel.objects.get(location=net.shibuya, sku=net.skus[0]).reserved == 3


def test_a_view_deferring_its_last_step_needs_a_required_key(rf):
    """Without an Idempotency-Key there is no transaction left to run the last step in: refused."""
    from django.core.exceptions import ImproperlyConfigured
    from rest_framework.response import Response

    from config.idempotency import ThenBeforeCommit, idempotent

    class View:
        @idempotent()
        def post(self, request):
            return ThenBeforeCommit(Response({}), lambda: None)

    request = rf.post("/x/")
    request.user = type("Anon", (), {"is_authenticated": False})()
    with pytest.raises(ImproperlyConfigured):
        View().post(request)


def test_in_flight_key_is_409(net, storefront):
    """A key row without a stored response is a request still running (PostgreSQL sees this through
    the advisory lock; the row state is what the replay path checks)."""
    IdempotencyKey.objects.create(
        owner=storefront.user, key="busy", fingerprint="x", created_at=timezone.now()
    )
    err(post(storefront, body(("TEE-0", 1)), key="busy"), 409, "idempotency_in_progress")


def test_purge_task_removes_old_keys(net, storefront):
    post(storefront, body(("TEE-0", 1)), key="old")
    post(storefront, body(("TEE-0", 1)), key="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - dt.timedelta(days=2))
    assert purge_idempotency_keys() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_insufficient_stock_409_with_nearby(net, storefront):
    e = err(post(storefront, body(("TEE-0", 4), method="pickup")), 409, "insufficient_stock")
    [line] = e["details"]["lines"]
    assert line["sku"] == "TEE-0"
    assert line["shortfall"] == 1
    assert [n["location"] for n in line["nearby"]]
    assert nothing_written()


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"lines": [{"sku": "NOPE", "quantity": 1, "unit_price": "1"}]}, 404, "unknown_sku"),
        ({"fulfillment": {"method": "pickup", "location": "NOPE"}}, 404, "unknown_location"),
        ({"fulfillment": {"method": "pickup", "location": "WH-KAWASAKI"}}, 422, "pickup_not_offered"),
        ({"fulfillment": {"method": "ship"}}, 400, "invalid"),
        ({"fulfillment": {"method": "ship", "address": {}}}, 400, "invalid"),
        ({"fulfillment": {"method": "teleport", "address": TOKYO}}, 400, "invalid"),
        ({"lines": []}, 400, "invalid"),
        (
            {
                "lines": [
                    {"sku": "TEE-0", "quantity": 1, "unit_price": "1"},
                    {"sku": "TEE-0", "quantity": 1, "unit_price": "1"},
                ]
            },
            400,
            "duplicate_line",
        ),
        ({"lines": [{"sku": "TEE-0", "quantity": 0, "unit_price": "1"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": -2, "unit_price": "1"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": 10**12, "unit_price": "1"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": "many", "unit_price": "1"}]}, 400, "invalid"),
        # quantities are JSON integers, as on the stock endpoints (issue 9, item 9)
        ({"lines": [{"sku": "TEE-0", "quantity": "1", "unit_price": "1"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": 2.0, "unit_price": "1"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": True, "unit_price": "1"}]}, 400, "invalid"),
        # a price is a plain decimal: no digit separators, exponents or words
        ({"lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1_000"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1e3"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "NaN"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "-1.00"}]}, 400, "invalid"),
        ({"lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1.5"}]}, 400, "currency_mismatch"),
        (
            {"lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1", "currency": "USD"}]},
            400,
            "currency_mismatch",
        ),
        ({"currency": "ZZZ"}, 400, "unknown_currency"),
        ({"channel": "carrier-pigeon"}, 400, "invalid"),
        ({"customer": {"name": "no contact"}}, 400, "invalid"),
        ({"customer": {"email": "not-an-email"}}, 400, "invalid"),
        ({"hold": "not-a-uuid"}, 400, "invalid"),
        ({"hold": str(uuid.uuid4())}, 404, "unknown_hold"),
    ],
)
def test_bad_input_is_4xx_in_the_error_shape_and_nothing_written(net, storefront, change, status, code):
    e = err(post(storefront, body(("TEE-0", 1)) | change), status, code)
    assert e["message"]
    assert nothing_written()
    assert Customer.objects.count() == 0


def test_not_json_or_not_an_object_is_400(net, storefront):
    r = storefront.post(URL, "[1, 2]", content_type="application/json", HTTP_IDEMPOTENCY_KEY="j")
    assert r.status_code == 400
    r = storefront.post(URL, "{nope", content_type="application/json", HTTP_IDEMPOTENCY_KEY="j2")
    assert r.status_code == 400
    assert nothing_written()


def test_mass_assignment_is_ignored(net, storefront):
    r = post(storefront, body(("TEE-0", 1), status="completed", total="0.01", subtotal="0.01", number="MINE"))
    assert r.status_code == 201
    data = r.json()
    assert (data["status"], data["total"]) == ("placed", "1980.00")
    assert data["number"] != "MINE"


def test_permissions_to_place(net, api_client_for, anon_client):
    warehouse = api_client_for(Role.WAREHOUSE, locations=[net.wh])
    err(post(warehouse, body(("TEE-0", 1))), 403, "forbidden")
    r = anon_client.post(URL, body(("TEE-0", 1)), format="json", HTTP_IDEMPOTENCY_KEY="a")
    assert r.status_code == 401
    assert nothing_written()


def test_endless_aisle_by_an_associate(net, api_client_for):
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    r = post(assoc, body(("TEE-0", 8), channel="store"))  # Shibuya has 3: shipped from elsewhere
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["placed_at_location"] == "TKY-SHIBUYA"
    assert data["fulfillments"][0]["location"] != "TKY-SHIBUYA"


# --- Reading ------------------------------------------------------------------------------------


def test_read_filter_and_scope(net, storefront, api_client_for):
    a = post(storefront, body(("TEE-0", 1)), key="1").json()
    b = post(
        storefront,
        body(("TEE-1", 1), method="pickup", channel="app") | {"customer": {"email": "b@example.com"}},
        key="2",
    ).json()
    assert storefront.get(URL).json()["count"] == 2
    assert [
        o["number"] for o in storefront.get(URL, {"customer_email": "AIKO@example.com"}).json()["results"]
    ] == [a["number"]]
    assert [o["number"] for o in storefront.get(URL, {"channel": "app"}).json()["results"]] == [b["number"]]
    assert storefront.get(URL, {"status": "placed"}).json()["count"] == 2
    assert storefront.get(URL, {"status": "bogus"}).status_code == 400
    shibuya = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    assert [o["number"] for o in shibuya.get(URL).json()["results"]] == [b["number"]]
    assert shibuya.get(f"{URL}{a['number']}/").status_code == 404
    assert storefront.get(f"{URL}{a['number']}/").json()["number"] == a["number"]
    events = storefront.get(f"{URL}{a['number']}/events/").json()["results"]
    assert [e["type"] for e in events] == ["placed", "routed"]
    assert events[1]["data"]["allocations"][0]["location"] == "WH-KAWASAKI"
    err(storefront.get(f"{URL}NOPE/"), 404, "unknown_order")


def test_cancel_and_arrived(net, storefront):
    o = post(storefront, body(("TEE-0", 1))).json()
    r = storefront.post(f"{URL}{o['number']}/cancel/", {"reason": "changed mind"}, format="json")
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    err(storefront.post(f"{URL}{o['number']}/cancel/", {}, format="json"), 409, "invalid_transition")
    err(storefront.post(f"{URL}{o['number']}/arrived/", {"note": "x"}, format="json"), 422, "not_a_pickup")
    c = post(storefront, body(("TEE-1", 1), method="curbside"), key="c").json()
    r = storefront.post(f"{URL}{c['number']}/arrived/", {"note": "red car"}, format="json")
    assert r.status_code == 200
    assert r.json()["fulfillments"][0]["arrival_note"] == "red car"


# --- Fulfillment work ---------------------------------------------------------------------------

F = "/api/v1/fulfillments/"


def test_warehouse_flow_over_the_api(net, storefront, api_client_for):
    o = post(storefront, body(("TEE-0", 2))).json()
    fid = o["fulfillments"][0]["id"]
    worker = api_client_for(Role.WAREHOUSE, locations=[net.wh])
    outsider = api_client_for(Role.WAREHOUSE, locations=[net.osaka])
    assert [
        f["id"] for f in worker.get(F, {"location": "WH-KAWASAKI", "status": "pending"}).json()["results"]
    ] == [fid]
    assert outsider.get(F).json()["count"] == 0
    err(outsider.post(f"{F}claim/", {"location": "WH-KAWASAKI"}, format="json"), 403, "location_forbidden")
    err(worker.post(f"{F}claim/", {"location": "NOPE"}, format="json"), 404, "unknown_location")
    err(
        worker.post(f"{F}{fid}/ship/", {"carrier": "Y", "tracking_number": "1"}, format="json"),
        409,
        "invalid_transition",
    )
    r = worker.post(f"{F}claim/", {"location": "WH-KAWASAKI"}, format="json")
    assert r.status_code == 200
    assert (r.json()["id"], r.json()["status"]) == (fid, "picking")
    assert worker.post(f"{F}claim/", {"location": "WH-KAWASAKI"}, format="json").status_code == 204
    assert outsider.post(f"{F}{fid}/pack/").status_code == 404
    assert (
        worker.post(
            f"{F}{fid}/pick/", {"lines": [{"sku": "TEE-0", "quantity": 2}]}, format="json"
        ).status_code
        == 200
    )
    assert worker.post(f"{F}{fid}/pack/").json()["status"] == "packed"
    err(worker.post(f"{F}{fid}/ship/", {"carrier": "Yamato"}, format="json"), 400, "invalid")
    r = worker.post(f"{F}{fid}/ship/", {"carrier": "Yamato", "tracking_number": "TRK1"}, format="json")
    assert r.json()["status"] == "shipped"
    err(
        worker.post(f"{F}{fid}/ship/", {"carrier": "Yamato", "tracking_number": "TRK1"}, format="json"),
        409,
        "invalid_transition",
    )
    assert storefront.get(f"{URL}{o['number']}/").json()["status"] == "shipped"
    timeline = storefront.get(f"{URL}{o['number']}/events/").json()["results"]
    moves = [
        (e["from_status"], e["to_status"], e["channel"], e["actor"])
        for e in timeline
        if e["fulfillment"] == fid
    ]
    assert moves == [
        ("pending", "picking", "api", worker.user.username),
        ("picking", "packed", "api", worker.user.username),
        ("packed", "shipped", "api", worker.user.username),
    ]
    err(storefront.post(f"{URL}{o['number']}/cancel/", {}, format="json"), 409, "invalid_transition")
    assert storefront.get(F).status_code == 403  # the storefront does not work queues


def test_pickup_flow_over_the_api(net, storefront, api_client_for):
    o = post(storefront, body(("TEE-0", 1), method="pickup")).json()
    fid = o["fulfillments"][0]["id"]
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    assoc.post(f"{F}claim/", {"location": "TKY-SHIBUYA"}, format="json")
    assert assoc.post(f"{F}{fid}/ready/").json()["status"] == "ready_for_pickup"
    code = storefront.get(f"{URL}{o['number']}/").json()["fulfillments"][0]["pickup_code"]
    assert len(code) == 8
    assert "pickup_code" not in assoc.get(f"{URL}{o['number']}/").json()["fulfillments"][0]
    wrong = "22222222" if code != "22222222" else "33333333"
    err(assoc.post(f"{F}{fid}/collect/", {"pickup_code": wrong}, format="json"), 422, "wrong_pickup_code")
    assert Fulfillment.objects.get(pk=fid).status == "ready_for_pickup"
    assert (
        assoc.post(f"{F}{fid}/collect/", {"pickup_code": code}, format="json").json()["status"] == "collected"
    )
    err(assoc.post(f"{F}{fid}/collect/", {"pickup_code": code}, format="json"), 409, "invalid_transition")
    assert storefront.get(f"{URL}{o['number']}/").json()["status"] == "completed"


def test_short_pick_over_the_api(net, storefront, api_client_for):
    o = post(storefront, body(("TEE-0", 4))).json()
    fid = o["fulfillments"][0]["id"]
    worker = api_client_for(Role.WAREHOUSE, locations=[net.wh])
    err(
        worker.post(f"{F}{fid}/pick/", {"lines": [{"sku": "TEE-0", "quantity": 5}]}, format="json"),
        400,
        "invalid",
    )
    err(
        worker.post(f"{F}{fid}/pick/", {"lines": [{"sku": "TEE-0", "quantity": -1}]}, format="json"),
        400,
        "invalid",
    )
    r = worker.post(f"{F}{fid}/pick/", {"lines": [{"sku": "TEE-0", "quantity": 1}]}, format="json")
    assert r.status_code == 200
    order = storefront.get(f"{URL}{o['number']}/").json()
    assert len(order["fulfillments"]) == 2
    assert order["fulfillments"][1]["lines"] == [
        {"sku": "TEE-0", "quantity": 3, "picked_quantity": None, "incoming_quantity": 0}
    ]
    types = [e["type"] for e in storefront.get(f"{URL}{o['number']}/events/").json()["results"]]
    assert "short_pick" in types
    assert "rerouted" in types


def test_fulfillment_cancel_over_the_api(net, storefront, api_client_for):
    o = post(storefront, body(("TEE-0", 1))).json()
    fid = o["fulfillments"][0]["id"]
    worker = api_client_for(Role.WAREHOUSE, locations=[net.wh])
    assert (
        worker.post(f"{F}{fid}/cancel/", {"reason": "damaged"}, format="json").json()["status"] == "cancelled"
    )
    assert storefront.get(f"{URL}{o['number']}/").json()["status"] == "cancelled"
    assert StockLevel.objects.get(location=net.wh, sku=net.skus[0]).reserved == 0


# --- Holds --------------------------------------------------------------------------------------

H = "/api/v1/holds/"


def test_hold_lifecycle(net, storefront):
    r = storefront.post(
        H,
        {
            "lines": [{"sku": "TEE-0", "quantity": 2}],
            "fulfillment": {"method": "pickup", "location": "TKY-SHIBUYA"},
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    hold = r.json()
    assert set(hold) == {"id", "expires_at", "lines"}
    assert hold["lines"] == [{"sku": "TEE-0", "location": "TKY-SHIBUYA", "quantity": 2}]
    r = storefront.post(f"{H}{hold['id']}/extend/", {}, format="json")
    assert r.status_code == 200
    assert r.json()["expires_at"] >= hold["expires_at"]
    err(storefront.post(f"{H}{hold['id']}/extend/", {"ttl_seconds": 10**6}, format="json"), 400, "invalid")
    o = post(storefront, body(("TEE-0", 2), method="pickup", hold=hold["id"])).json()
    assert o["status"] == "placed"
    err(storefront.delete(f"{H}{hold['id']}/"), 404, "unknown_hold")


def test_hold_release_and_409(net, storefront):
    r = storefront.post(
        H,
        {"lines": [{"sku": "TEE-0", "quantity": 1}], "fulfillment": {"method": "ship", "address": TOKYO}},
        format="json",
    )
    assert storefront.delete(f"{H}{r.json()['id']}/").status_code == 204
    assert not Hold.objects.exists()
    assert StockLevel.objects.get(location=net.wh, sku=net.skus[0]).held == 0
    e = err(
        storefront.post(
            H,
            {
                "lines": [{"sku": "TEE-0", "quantity": 99}],
                "fulfillment": {"method": "ship", "address": TOKYO},
            },
            format="json",
        ),
        409,
        "insufficient_stock",
    )
    assert e["details"]["lines"][0]["nearby"]
    err(
        storefront.post(H, {"lines": [], "fulfillment": {"method": "ship", "address": TOKYO}}, format="json"),
        400,
        "invalid",
    )
    err(storefront.post(f"{H}not-a-uuid/extend/", {}, format="json"), 404, "unknown_hold")


def test_reclaim_task(net, storefront):
    r = storefront.post(
        H,
        {"lines": [{"sku": "TEE-0", "quantity": 1}], "fulfillment": {"method": "ship", "address": TOKYO}},
        format="json",
    )
    hold = Hold.objects.get(pk=r.json()["id"])
    past = timezone.now() - dt.timedelta(seconds=1)
    Hold.objects.filter(pk=hold.pk).update(expires_at=past)
    hold.lines.update(expires_at=past)
    assert reclaim_expired_holds() == 1
    assert not Hold.objects.exists()


# --- Customers ----------------------------------------------------------------------------------


def test_customer_detail_and_preferences(net, storefront, api_client_for):
    o = post(storefront, body(("TEE-0", 1))).json()
    cid = o["customer"]["id"]
    c = storefront.get(f"/api/v1/customers/{cid}/").json()
    assert c["email"] == "aiko@example.com"
    assert [x["number"] for x in c["orders"]] == [o["number"]]
    assert c["notify_channels"] == ["email"]
    r = storefront.patch(
        f"/api/v1/customers/{cid}/preferences/",
        {"notify_channels": ["email", "sms"], "language": "ja", "preferred_location": "TKY-SHIBUYA"},
        format="json",
    )
    assert r.status_code == 200
    assert (r.json()["language"], r.json()["preferred_location"]["code"]) == ("ja", "TKY-SHIBUYA")
    err(
        storefront.patch(f"/api/v1/customers/{cid}/preferences/", {"language": "xx"}, format="json"),
        400,
        "invalid",
    )
    err(
        storefront.patch(
            f"/api/v1/customers/{cid}/preferences/", {"notify_channels": ["fax"]}, format="json"
        ),
        400,
        "invalid",
    )
    err(
        storefront.patch(
            f"/api/v1/customers/{cid}/preferences/", {"preferred_location": "NOPE"}, format="json"
        ),
        404,
        "unknown_location",
    )
    err(storefront.get("/api/v1/customers/999999/"), 404, "unknown_customer")
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    assert assoc.get(f"/api/v1/customers/{cid}/").status_code == 403
    # A scoped manager reads customers with an order at their locations (this one ships from WH).
    manager = api_client_for(Role.MANAGER, locations=[net.shibuya])
    err(manager.get(f"/api/v1/customers/{cid}/"), 404, "unknown_customer")
    manager = api_client_for(Role.MANAGER, locations=[net.wh])
    assert manager.get(f"/api/v1/customers/{cid}/").status_code == 200


def test_managers_act_at_their_locations_superuser_everywhere(net, storefront, api_client_for):
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    o = post(storefront, body(("TEE-0", 1))).json()  # at the warehouse
    osaka_manager = api_client_for(Role.MANAGER, locations=[net.osaka])
    err(osaka_manager.post(f"{URL}{o['number']}/cancel/", {}, format="json"), 404, "unknown_order")
    assert osaka_manager.post(f"{F}{o['fulfillments'][0]['id']}/pack/").status_code == 404
    wh_manager = api_client_for(Role.MANAGER, locations=[net.wh])
    assert wh_manager.get(f"{URL}{o['number']}/").status_code == 200
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456!")
    admin_client = APIClient()
    admin_client.force_authenticate(root)
    assert admin_client.get(F).json()["count"] == 1
    assert admin_client.post(f"{F}claim/", {"location": "WH-KAWASAKI"}, format="json").status_code == 200
    r = admin_client.post(f"{URL}{o['number']}/cancel/", {"reason": "ops"}, format="json")
    assert r.json()["status"] == "cancelled"


def test_phone_only_customer_from_the_till_is_the_same_customer(net, storefront, api_client_for):
    web = post(storefront, body(("TEE-0", 1))).json()
    assoc = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    till = body(("TEE-1", 1), method="pickup", channel="store") | {"customer": {"phone": "+81 90 1234 5678"}}
    r = post(assoc, till, key="till-1")
    assert r.status_code == 201, r.content
    assert r.json()["customer"]["id"] == web["customer"]["id"]
    c = storefront.get(f"/api/v1/customers/{web['customer']['id']}/").json()
    assert {x["channel"] for x in c["orders"]} == {"web", "store"}


def test_a_huge_hold_ttl_is_400_not_500(net, storefront):
    """ttl_seconds beyond what a duration can hold used to raise OverflowError (500)."""
    hold = storefront.post(
        "/api/v1/holds/",
        {
            "lines": [{"sku": "TEE-0", "quantity": 1}],
            "fulfillment": {"method": "pickup", "location": "TKY-SHIBUYA"},
        },
        format="json",
    )
    assert hold.status_code == 201, hold.content
    for ttl in (10**20, 10**8 + 1):
        r = storefront.post(f"/api/v1/holds/{hold.json()['id']}/extend/", {"ttl_seconds": ttl}, format="json")
        err(r, 400, "invalid")
    r = storefront.post(f"/api/v1/holds/{hold.json()['id']}/extend/", {"ttl_seconds": 10**8}, format="json")
    err(r, 400, "invalid")  # a duration, but longer than OMS["HOLD_MAX_TTL"]: the service refuses it


def test_the_schema_declares_the_fields_that_can_be_null(storefront):
    """OrderOut.pickup_location and placed_at_location, OrderEventOut.fulfillment and
    StaffFulfillmentOut.claimed_by come back null; the schema says so (issue 9, item 6)."""
    from drf_spectacular.generators import SchemaGenerator

    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    for component, field in (
        ("OrderOut", "pickup_location"),
        ("OrderOut", "placed_at_location"),
        ("OrderEventOut", "fulfillment"),
        ("StaffFulfillmentOut", "claimed_by"),
    ):
        assert schemas[component]["properties"][field].get("nullable") is True, (component, field)
