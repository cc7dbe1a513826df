"""Returns end to end through the API and the services (docs/returns.md): asking online with a proof
of purchase, at a store's desk, by mail; receiving at any store or a warehouse with each condition;
the refund; cancelling; notes; and every bad input of issue 11 refused with nothing changed."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import MovementKind, StockLevel, StockMovement, Transfer
from inventory.selectors import available_at
from inventory.selectors.audit import ledger_mismatches
from inventory.services import stock_adjust, transfer_receive
from notifications.models import Notification, NotificationEvent, RestockAlert
from notifications.services import back_in_stock_subscribe
from orders.models import EventType, Fulfillment, OrderEvent, OrderLine
from returns.models import Refund, RefundLine, Return, ReturnLine, ReturnNote, ReturnStatus
from returns.selectors import return_card
from returns.services import ReceiveLineIn, ReturnLineIn, return_receive, return_request
from stores.models import Location, Role
from tests.factories import SkuFactory, WarehouseFactory, stock
from tests.returns.conftest import delivered

pytestmark = pytest.mark.django_db

URL = "/api/v1/returns/"
EMAIL = "aiko@example.com"


def error(r, status) -> dict:
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def state() -> dict:
    """Everything a refused request must leave as it was: rows, counters, the ledger, the timeline,
    the outbox."""
    rows = {
        m.__name__: list(m.objects.order_by("pk").values())
        for m in (Return, ReturnLine, Refund, RefundLine, StockLevel, Transfer, ReturnNote)
    }
    rows["OrderLine"] = list(OrderLine.objects.order_by("pk").values())
    for m in (StockMovement, OrderEvent, Notification, RestockAlert):
        rows[m.__name__] = m.objects.count()
    return rows


@pytest.fixture
def shop(net, api_client_for):
    """The storefront's customer bought 2 x TEE-0 and 1 x TEE-1 online, shipped from the warehouse
    (so no store's associates see the order: buy online, return in store). An associate at Shibuya,
    one at Osaka (which does not take returns), warehouse staff."""

    class S:
        pass

    s = S()
    s.net = net
    s.storefront = api_client_for(Role.STOREFRONT)
    s.other_storefront = api_client_for(Role.STOREFRONT)
    s.desk = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    Location.objects.filter(pk=net.osaka.pk).update(accepts_returns=False)
    s.osaka_desk = api_client_for(Role.ASSOCIATE, locations=[net.osaka])
    Location.objects.filter(pk=net.wh.pk).update(accepts_returns=True)
    s.picker = api_client_for(Role.WAREHOUSE, locations=[net.wh])
    s.order = delivered(("TEE-0", 2), ("TEE-1", 1), email=EMAIL, user=s.storefront.user)
    return s


def ask(client, order, *, lines=None, **body):
    payload = {
        "order": order.number,
        "lines": [{"sku": "TEE-0", "quantity": 1, "reason": "wrong_size"}] if lines is None else lines,
        "method": "in_store",
        **body,
    }
    return client.post(URL, payload, format="json")


def receive(client, number, location, lines):
    return client.post(f"{URL}{number}/receive/", {"location": location, "lines": lines}, format="json")


# --- Happy paths ---------------------------------------------------------------------------------


def test_online_request_then_in_store_receipt_restocks_refunds_and_alerts(
    shop, django_capture_on_commit_callbacks
):
    """Asked online with the order's email; a help-desk note; received at Shibuya: the resellable
    unit is on Shibuya's shelf and sellable at once (and its back-in-stock subscriber is alerted),
    the damaged one written off; the refund is what was paid, linked to the return."""
    net = shop.net
    tee0, tee1 = net.skus[0], net.skus[1]
    stock_adjust(location=net.shibuya, sku=tee0, counted_quantity=0, reason="count")  # sold out there
    back_in_stock_subscribe(sku=tee0, location=net.shibuya, email="watcher@example.com")

    r = ask(
        shop.storefront,
        shop.order,
        email="Aiko@Example.com",
        lines=[
            {"sku": "TEE-0", "quantity": 1, "reason": "wrong_size"},
            {
                "sku": "TEE-1",
                "quantity": 1,
                "reason": "other",
                "reason_text": "seam split",
                "exchange_for": "TEE-2",
            },
        ],
        note="Will bring it on Saturday",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    ret = Return.objects.get(number=body["number"])
    assert body["status"] == "requested"
    assert body["code"] == f"{ret.code[:4]}-{ret.code[4:]}"
    assert body["qr"] == f"OMSRET:{ret.number}:{ret.code}"
    assert body["refund_amount"] == "3960.00"
    assert body["location"] is None  # any store
    assert [
        (ln["sku"], ln["quantity"], ln["reason"], ln["received"], ln["condition"]) for ln in body["lines"]
    ] == [
        ("TEE-0", 1, "wrong_size", 0, None),
        ("TEE-1", 1, "other", 0, None),
    ]
    assert body["lines"][1]["exchange_for"] == "TEE-2"
    assert OrderLine.objects.get(order=shop.order, sku=tee0).returned_quantity == 1
    told = Notification.objects.get(event=NotificationEvent.RETURN_REQUESTED)
    assert told.recipient == EMAIL
    assert told.context["return_code"] == body["code"]
    assert told.context["qr"] == body["qr"]
    assert [s["code"] for s in told.context["stores"]] == ["TKY-SHIBUYA"]  # Osaka does not take returns

    r = shop.storefront.post(
        f"{URL}{ret.number}/notes/",
        {"text": "Customer says the box is gone", "channel": "chat"},
        format="json",
    )
    assert r.status_code == 201, r.content

    before = available_at(pairs=[(net.shibuya.pk, tee0.pk)])[(net.shibuya.pk, tee0.pk)]
    on_hand_tee1 = StockLevel.objects.get(location=net.shibuya, sku=tee1).on_hand
    with django_capture_on_commit_callbacks(execute=False):
        r = receive(
            shop.desk,
            ret.number,
            "TKY-SHIBUYA",
            [
                {"sku": "TEE-0", "quantity": 1, "condition": "resellable"},
                # Asked as an exchange; at the desk the customer takes the money instead.
                {"sku": "TEE-1", "quantity": 1, "condition": "damaged", "exchange_for": ""},
            ],
        )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "received"
    assert body["received_at_location"] == "TKY-SHIBUYA"
    assert body["refund_amount"] == "3960.00"
    assert [(ln["sku"], ln["received"], ln["condition"]) for ln in body["lines"]] == [
        ("TEE-0", 1, "resellable"),
        ("TEE-1", 1, "damaged"),
    ]
    assert [n["text"] for n in body["notes"]] == ["Customer says the box is gone"]
    # Stock: +1 sellable for TEE-0 at Shibuya, from every channel; TEE-1's on hand unchanged.
    assert available_at(pairs=[(net.shibuya.pk, tee0.pk)])[(net.shibuya.pk, tee0.pk)] == before + 1
    assert StockLevel.objects.get(location=net.shibuya, sku=tee1).on_hand == on_hand_tee1
    kinds = sorted(
        StockMovement.objects.filter(reference=ret.number).values_list("sku__code", "kind", "on_hand_delta")
    )
    assert kinds == [
        ("TEE-0", MovementKind.RETURN_RESTOCK, 1),
        ("TEE-1", MovementKind.DAMAGE, -1),
        ("TEE-1", MovementKind.RETURN_RESTOCK, 1),
    ]
    assert ledger_mismatches() == []
    # Back in stock at that store: the subscriber's alert.
    assert RestockAlert.objects.filter(sku=tee0, location=net.shibuya).exists()
    # The refund: what was paid, linked to the return, shown by the refunds API.
    refund = Refund.objects.get(order=shop.order)
    assert (refund.amount, refund.cause, refund.return_ref_id) == (
        Decimal("3960.00"),
        "return_received",
        ret.pk,
    )
    r = shop.storefront.get(f"/api/v1/refunds/{refund.pk}/")
    assert r.json()["return"] == ret.number
    assert OrderLine.objects.get(order=shop.order, sku=tee0).refunded_quantity == 1
    # The timeline and the customer's message.
    types = list(OrderEvent.objects.filter(order=shop.order).values_list("type", flat=True))
    for t in (
        EventType.RETURN_REQUESTED,
        EventType.NOTE_ADDED,
        EventType.RETURN_RECEIVED,
        EventType.REFUND_REQUESTED,
    ):
        assert t in types
    received = Notification.objects.get(event=NotificationEvent.RETURN_RECEIVED)
    assert received.context["store_name"] == net.shibuya.name
    # The customer's page lists the return.
    r = shop.storefront.get(f"/api/v1/customers/{shop.order.customer_id}/")
    assert [x["number"] for x in r.json()["returns"]] == [ret.number]


def test_mail_return_received_at_the_warehouse(shop, settings):
    net = shop.net
    r = ask(shop.storefront, shop.order, method="mail", phone=None, email=EMAIL)
    assert r.status_code == 201, r.content
    assert r.json()["location"] == net.wh.code  # the nearest warehouse that takes returns
    number = r.json()["number"]
    told = Notification.objects.get(event=NotificationEvent.RETURN_REQUESTED)
    assert told.context["warehouse"]["code"] == net.wh.code
    assert told.context["stores"] == []
    before = StockLevel.objects.get(location=net.wh, sku=net.skus[0]).on_hand
    r = receive(
        shop.picker, number, net.wh.code, [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
    )
    assert r.status_code == 200, r.content
    assert StockLevel.objects.get(location=net.wh, sku=net.skus[0]).on_hand == before + 1
    assert Refund.objects.get(order=shop.order).amount == Decimal("1980.00")


def test_the_retailers_returns_warehouse_setting_wins(shop, settings):
    other = WarehouseFactory(code="WH-RETURNS", accepts_returns=True, latitude=34.0, longitude=135.0)
    settings.OMS = {**settings.OMS, "RETURNS_WAREHOUSE": other.code}
    r = ask(shop.storefront, shop.order, method="mail", email=EMAIL)
    assert r.json()["location"] == "WH-RETURNS"


def test_send_to_warehouse_is_a_transfer_never_sellable_at_the_store(shop):
    net = shop.net
    ret = return_request(
        order_number=shop.order.number, lines=[ReturnLineIn("TEE-0", 2, "defective")], method="in_store"
    )
    on_hand = StockLevel.objects.get(location=net.shibuya, sku=net.skus[0]).on_hand
    r = receive(
        shop.desk,
        ret.number,
        "TKY-SHIBUYA",
        [{"sku": "TEE-0", "quantity": 2, "condition": "send_to_warehouse"}],
    )
    assert r.status_code == 200, r.content
    transfer = Transfer.objects.get(pk=r.json()["transfer"])
    assert (transfer.from_location_id, transfer.to_location_id) == (net.shibuya.pk, net.wh.pk)
    assert list(transfer.lines.values_list("sku__code", "quantity")) == [("TEE-0", 2)]
    assert StockLevel.objects.get(location=net.shibuya, sku=net.skus[0]).on_hand == on_hand
    wh_before = StockLevel.objects.get(location=net.wh, sku=net.skus[0]).on_hand
    transfer_receive(transfer_id=transfer.pk)
    assert StockLevel.objects.get(location=net.wh, sku=net.skus[0]).on_hand == wh_before + 2
    assert ledger_mismatches() == []


def test_receipt_code_at_the_desk_without_a_request(shop):
    """The customer walks in with the order confirmation only: the desk starts the return for the
    order (its receipt code checked) and takes it back in the same visit."""
    order = shop.order
    r = ask(shop.desk, order, receipt_code=order.receipt_code.lower(), location="TKY-SHIBUYA")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["location"] == "TKY-SHIBUYA"
    assert Return.objects.get(number=body["number"]).channel == "store"
    r = receive(
        shop.desk, body["number"], "TKY-SHIBUYA", [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
    )
    assert r.status_code == 200, r.content
    # The storefront may use the receipt code as its proof too.
    r = ask(
        shop.storefront,
        order,
        receipt_code=order.receipt_code,
        lines=[{"sku": "TEE-1", "quantity": 1, "reason": "defective"}],
    )
    assert r.status_code == 201, r.content


def test_the_confirmation_carries_the_receipt_code(shop):
    confirmed = Notification.objects.get(event=NotificationEvent.ORDER_CONFIRMED, order=shop.order)
    order = shop.order
    assert confirmed.context["receipt_code"] == f"{order.receipt_code[:4]}-{order.receipt_code[4:]}"


def test_cancel_gives_the_units_back(shop):
    r = ask(
        shop.storefront,
        shop.order,
        email=EMAIL,
        lines=[{"sku": "TEE-0", "quantity": 2, "reason": "changed_mind"}],
    )
    number = r.json()["number"]
    assert OrderLine.objects.get(order=shop.order, sku__code="TEE-0").returned_quantity == 2
    r = shop.storefront.post(f"{URL}{number}/cancel/", {"reason": "kept it"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "cancelled"
    assert OrderLine.objects.get(order=shop.order, sku__code="TEE-0").returned_quantity == 0
    assert OrderEvent.objects.filter(order=shop.order, type=EventType.RETURN_CANCELLED).count() == 1
    before = state()
    assert (
        error(shop.storefront.post(f"{URL}{number}/cancel/", {}, format="json"), 409)["code"]
        == "invalid_transition"
    )
    r = receive(
        shop.desk, number, "TKY-SHIBUYA", [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
    )
    assert error(r, 409)["code"] == "invalid_transition"
    assert state() == before
    # The units may be asked for again.
    assert (
        ask(
            shop.storefront,
            shop.order,
            email=EMAIL,
            lines=[{"sku": "TEE-0", "quantity": 2, "reason": "changed_mind"}],
        ).status_code
        == 201
    )


def test_units_not_brought_may_be_returned_later(shop):
    ret = return_request(
        order_number=shop.order.number,
        lines=[ReturnLineIn("TEE-0", 2, "wrong_size"), ReturnLineIn("TEE-1", 1, "wrong_size")],
        method="in_store",
    )
    return_receive(number=ret.number, location="TKY-SHIBUYA", lines=[ReceiveLineIn("TEE-0", 1, "resellable")])
    lines = {ol.sku.code: ol for ol in OrderLine.objects.filter(order=shop.order).select_related("sku")}
    assert (lines["TEE-0"].returned_quantity, lines["TEE-1"].returned_quantity) == (1, 0)
    assert Return.objects.get(pk=ret.pk).refund_amount == Decimal("1980.00")
    again = return_request(
        order_number=shop.order.number,
        lines=[ReturnLineIn("TEE-0", 1, "wrong_size"), ReturnLineIn("TEE-1", 1, "wrong_size")],
        method="in_store",
    )
    assert again.status == ReturnStatus.REQUESTED


def test_notes_validation_and_the_desk_card(shop):
    ret = return_request(
        order_number=shop.order.number,
        lines=[ReturnLineIn("TEE-0", 1, "wrong_size")],
        method="in_store",
        location="TKY-SHIBUYA",
    )
    before = state()
    for body in (
        {"text": "", "channel": "chat"},
        {"text": "x", "channel": "pigeon"},
        {"text": "x" * 2001, "channel": "chat"},
    ):
        assert (
            error(shop.storefront.post(f"{URL}{ret.number}/notes/", body, format="json"), 400)["code"]
            == "invalid"
        )
    assert (
        error(
            shop.other_storefront.post(
                f"{URL}{ret.number}/notes/", {"text": "x", "channel": "chat"}, format="json"
            ),
            404,
        )["code"]
        == "unknown_return"
    )
    assert state() == before
    r = shop.desk.post(
        f"{URL}{ret.number}/notes/", {"text": "Box damaged", "channel": "store"}, format="json"
    )
    assert r.status_code == 201, r.content
    card = return_card(Return.objects.get(pk=ret.pk))
    assert [n.text for n in card.notes] == ["Box damaged"]
    assert [ln.sku.code for ln in card.lines] == ["TEE-0"]
    assert EventType.RETURN_REQUESTED in [e.type for e in card.events]


def test_the_desk_opens_another_stores_return_with_its_code(shop):
    ret = return_request(
        order_number=shop.order.number, lines=[ReturnLineIn("TEE-0", 1, "wrong_size")], method="in_store"
    )
    assert (
        error(shop.desk.get(f"{URL}{ret.number}/"), 404)["code"] == "unknown_return"
    )  # expected at no store
    assert error(shop.desk.get(f"{URL}{ret.number}/?code=WRONGCODE"), 404)["code"] == "unknown_return"
    r = shop.desk.get(f"{URL}{ret.number}/?code={ret.code[:4]}-{ret.code[4:].lower()}")
    assert r.status_code == 200
    assert r.json()["number"] == ret.number
    assert error(shop.picker.get(f"{URL}{ret.number}/?code={ret.code}"), 404)["code"] == "unknown_return"


def test_list_filters(shop):
    a = return_request(
        order_number=shop.order.number,
        lines=[ReturnLineIn("TEE-0", 1, "wrong_size")],
        method="in_store",
        location="TKY-SHIBUYA",
    )
    return_receive(number=a.number, location="TKY-SHIBUYA", lines=[ReceiveLineIn("TEE-0", 1, "resellable")])
    b = return_request(
        order_number=shop.order.number, lines=[ReturnLineIn("TEE-1", 1, "wrong_size")], method="mail"
    )
    numbers = lambda r: [x["number"] for x in r.json()["results"]]  # noqa: E731
    assert numbers(shop.storefront.get(f"{URL}?order={shop.order.number}")) == [b.number, a.number]
    assert numbers(shop.storefront.get(f"{URL}?status=received")) == [a.number]
    assert numbers(shop.storefront.get(f"{URL}?location={shop.net.wh.code}")) == [b.number]
    assert numbers(shop.desk.get(URL)) == [a.number]
    assert numbers(shop.picker.get(URL)) == [b.number]
    assert numbers(shop.other_storefront.get(URL)) == []


# --- Bad input: a clear error, nothing changed ------------------------------------------------------


@pytest.mark.parametrize(
    ("proof", "status", "code"),
    [
        ({"email": "someone@example.com"}, 404, "unknown_order"),
        ({"phone": "+819099998888"}, 404, "unknown_order"),
        ({"receipt_code": "ZZZZZZZZ"}, 404, "unknown_order"),
        ({"email": EMAIL, "receipt_code": "ZZZZZZZZ"}, 404, "unknown_order"),  # every proof given must match
        ({}, 400, "invalid"),
    ],
)
def test_wrong_proof_of_purchase(shop, proof, status, code):
    before = state()
    err = error(ask(shop.storefront, shop.order, **proof), status)
    assert err["code"] == code
    if status == 404:
        assert "email" not in err["message"].lower()
        assert "phone" not in err["message"].lower()
    assert state() == before


def test_another_storefronts_order_is_unknown_even_with_the_right_email(shop):
    before = state()
    assert error(ask(shop.other_storefront, shop.order, email=EMAIL), 404)["code"] == "unknown_order"
    assert state() == before


def _request_error(shop, lines, status=422, **kw):
    before = state()
    err = error(ask(shop.storefront, shop.order, email=EMAIL, lines=lines, **kw), status)
    assert state() == before
    return err


def test_lines_not_on_the_order(shop):
    SkuFactory(code="NOT-BOUGHT")
    err = _request_error(
        shop,
        [
            {"sku": "TEE-0", "quantity": 1, "reason": "wrong_size"},
            {"sku": "NOT-BOUGHT", "quantity": 1, "reason": "wrong_size"},
        ],
    )
    assert (err["code"], err["details"]["field"], err["details"]["sku"]) == (
        "not_on_order",
        "lines[1].sku",
        "NOT-BOUGHT",
    )


def test_more_than_bought(shop):
    err = _request_error(shop, [{"sku": "TEE-0", "quantity": 3, "reason": "wrong_size"}])
    assert err["code"] == "more_than_returnable"
    assert (err["details"]["field"], err["details"]["returnable"]) == ("lines[0]", 2)


def test_more_than_left_after_another_return(shop):
    assert (
        ask(
            shop.storefront,
            shop.order,
            email=EMAIL,
            lines=[{"sku": "TEE-0", "quantity": 2, "reason": "wrong_size"}],
        ).status_code
        == 201
    )
    err = _request_error(
        shop,
        [
            {"sku": "TEE-1", "quantity": 1, "reason": "wrong_size"},
            {"sku": "TEE-0", "quantity": 1, "reason": "wrong_size"},
        ],
    )
    assert (err["code"], err["details"]["field"], err["details"]["already_returned"]) == (
        "more_than_returnable",
        "lines[1]",
        2,
    )


def test_outside_the_window_and_the_category_override(shop, settings):
    Fulfillment.objects.filter(order=shop.order).update(shipped_at=timezone.now() - dt.timedelta(days=31))
    err = _request_error(shop, [{"sku": "TEE-0", "quantity": 1, "reason": "wrong_size"}])
    assert (err["code"], err["details"]["window_days"]) == ("return_window_closed", 30)
    assert "lines[0]" in err["message"]
    settings.OMS = {**settings.OMS, "RETURN_WINDOW_DAYS_BY_CATEGORY": {"apparel": 60}}
    assert ask(shop.storefront, shop.order, email=EMAIL).status_code == 201


def test_non_returnable_sku(shop):
    shop.net.skus[1].__class__.objects.filter(pk=shop.net.skus[1].pk).update(returnable=False)
    err = _request_error(shop, [{"sku": "TEE-1", "quantity": 1, "reason": "changed_mind"}])
    assert (err["code"], err["details"]["sku"]) == ("not_returnable", "TEE-1")
    assert [v["rule"] for v in err["details"]["violations"]] == ["not_returnable"]


def test_not_handed_over_yet(shop, net):
    from tests.orders.conftest import place

    order = place(("TEE-2", 1), email=EMAIL, user=shop.storefront.user)
    before = state()
    err = error(
        ask(
            shop.storefront,
            order,
            email=EMAIL,
            lines=[{"sku": "TEE-2", "quantity": 1, "reason": "wrong_size"}],
        ),
        422,
    )
    assert err["code"] == "not_delivered"
    assert state() == before


def test_malformed_requests(shop):
    for lines, field in (
        ([], "lines"),
        ([{"sku": "TEE-0", "quantity": 0, "reason": "wrong_size"}], "lines"),
        ([{"sku": "TEE-0", "quantity": 1, "reason": "bored"}], "lines"),
        ([{"sku": "TEE-0", "quantity": 1, "reason": "other"}], "lines[0].reason_text"),
        ([{"sku": "TEE-0", "quantity": 1, "reason": "wrong_size"}] * 2, "lines[1].sku"),
    ):
        err = _request_error(shop, lines, status=400)
        assert err["code"] == "invalid", (lines, err)
        assert field in err["message"] or field in str(err["details"]), (field, err)


def test_receiving_twice(shop):
    ret = return_request(
        order_number=shop.order.number, lines=[ReturnLineIn("TEE-0", 1, "wrong_size")], method="in_store"
    )
    line = [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
    assert receive(shop.desk, ret.number, "TKY-SHIBUYA", line).status_code == 200
    before = state()
    assert error(receive(shop.desk, ret.number, "TKY-SHIBUYA", line), 409)["code"] == "invalid_transition"
    assert state() == before


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([{"sku": "TEE-0", "quantity": 2, "condition": "resellable"}], "more_than_requested"),
        ([{"sku": "TEE-1", "quantity": 1, "condition": "resellable"}], "not_on_return"),
    ],
)
def test_receiving_what_was_not_asked(shop, lines, code):
    ret = return_request(
        order_number=shop.order.number, lines=[ReturnLineIn("TEE-0", 1, "wrong_size")], method="in_store"
    )
    before = state()
    assert error(receive(shop.desk, ret.number, "TKY-SHIBUYA", lines), 422)["code"] == code
    assert state() == before


def test_receiving_where_returns_are_not_taken(shop):
    ret = return_request(
        order_number=shop.order.number, lines=[ReturnLineIn("TEE-0", 1, "wrong_size")], method="in_store"
    )
    line = [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
    before = state()
    err = error(receive(shop.osaka_desk, ret.number, "OSA-UMEDA", line), 422)
    assert (err["code"], err["details"]["location"]) == ("location_not_accepting_returns", "OSA-UMEDA")
    # A warehouse takes mail returns only.
    assert (
        error(receive(shop.picker, ret.number, shop.net.wh.code, line), 422)["code"]
        == "location_not_accepting_returns"
    )
    assert state() == before


def test_an_associate_of_another_store(shop):
    ret = return_request(
        order_number=shop.order.number,
        lines=[ReturnLineIn("TEE-0", 1, "wrong_size")],
        method="in_store",
        location="TKY-SHIBUYA",
    )
    before = state()
    line = [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
    assert (
        error(receive(shop.osaka_desk, ret.number, "TKY-SHIBUYA", line), 403)["code"] == "location_forbidden"
    )
    assert (
        error(ask(shop.osaka_desk, shop.order, location="TKY-SHIBUYA"), 403)["code"] == "location_forbidden"
    )
    assert error(shop.osaka_desk.get(f"{URL}{ret.number}/"), 404)["code"] == "unknown_return"
    assert (
        error(shop.osaka_desk.post(f"{URL}{ret.number}/cancel/", {}, format="json"), 404)["code"]
        == "unknown_return"
    )
    assert error(
        shop.picker.post(URL, {"order": shop.order.number, "lines": [], "method": "in_store"}, format="json"),
        403,
    )
    assert state() == before


# --- Figures ---------------------------------------------------------------------------------------


def _big_order(n: int, net):
    skus = [SkuFactory(code=f"Q{n}-{i:02d}") for i in range(n)]
    for sku in skus:
        stock(net.wh, sku, 5)
        stock(
            net.shibuya, sku, 1
        )  # already sellable there: no back-in-stock alerts (per SKU: notifications')
    return delivered(*[(s.code, 3) for s in skus], email=f"q{n}@example.com"), skus


CONDITIONS = ("resellable", "damaged", "send_to_warehouse")


@pytest.mark.parametrize("conditions", [("resellable",), CONDITIONS])
def test_receiving_20_lines_takes_the_queries_of_1(net, associate, conditions):
    """The receipt of a return is a fixed number of statements: the same for 1 line as for 20
    (per condition mix: a forwarded unit adds its transfer's two INSERTs, once)."""
    Location.objects.filter(pk=net.wh.pk).update(accepts_returns=True)
    counts = []
    for n in (len(conditions), 20 if len(conditions) == 1 else 21):
        order, skus = _big_order(n, net)
        ret = return_request(
            order_number=order.number,
            lines=[ReturnLineIn(s.code, 2, "wrong_size") for s in skus],
            method="in_store",
        )
        lines = [ReceiveLineIn(s.code, 2, conditions[i % len(conditions)]) for i, s in enumerate(skus)]
        user = type(associate).objects.get(pk=associate.pk)  # as a request has it: locations not read yet
        with CaptureQueriesContext(connection) as ctx:
            return_receive(number=ret.number, location=net.shibuya.code, lines=lines, user=user)
        counts.append(len(ctx.captured_queries))
        assert Return.objects.get(pk=ret.pk).status == ReturnStatus.RECEIVED
    assert counts[0] == counts[1], counts
    assert ledger_mismatches() == []


def test_return_webhooks(shop, loopback_webhooks, django_capture_on_commit_callbacks):
    from notifications.services import webhook_register

    with django_capture_on_commit_callbacks(execute=True):  # drops the cached endpoint list
        webhook_register(owner=shop.storefront.user, url="http://127.0.0.1:9/returns", events=["return.*"])
    ret = return_request(
        order_number=shop.order.number, lines=[ReturnLineIn("TEE-0", 1, "wrong_size")], method="in_store"
    )
    return_receive(number=ret.number, location="TKY-SHIBUYA", lines=[ReceiveLineIn("TEE-0", 1, "resellable")])
    hooks = list(
        Notification.objects.filter(event=NotificationEvent.WEBHOOK)
        .order_by("pk")
        .values_list("webhook_event", flat=True)
    )
    assert hooks == ["return.requested", "return.received"]
    received = Notification.objects.get(webhook_event="return.received")
    data = received.context["data"]
    assert (data["return"], data["location"], data["order"]) == (ret.number, "TKY-SHIBUYA", shop.order.number)
    assert data["lines"] == [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
