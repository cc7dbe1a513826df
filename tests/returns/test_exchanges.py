"""Exchanges (docs/returns.md, "Exchanges"): the customer brings units back and takes another SKU;
on receipt the replacement is a new order reserved at the receiving store (or shipped), linked to
the return, in the receipt's transaction; the price difference is owed either way. Every refusal
changes nothing: rows, counters, the ledger, the timeline, the outbox."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import StockLevel, StockMovement
from inventory.selectors.audit import ledger_mismatches
from inventory.services import stock_adjust
from notifications.models import Notification, NotificationEvent
from notifications.services import webhook_register
from orders.models import (
    Customer,
    EventType,
    Fulfillment,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderLine,
)
from returns.models import Refund, Return, ReturnLine, ReturnStatus
from returns.services import ReceiveLineIn, ReturnLineIn, return_receive, return_request
from stores.models import Location
from tests.factories import SkuFactory, stock
from tests.returns.conftest import delivered
from tests.returns.test_returns import EMAIL, URL, ask, error, receive, shop
from tests.returns.test_returns import state as return_state

pytestmark = pytest.mark.django_db

__all__ = ["shop"]  # the fixture, shared with test_returns


def state() -> dict:
    """test_returns' state, and the orders an exchange would place."""
    rows = return_state()
    for m in (Order, Fulfillment, Customer):
        rows[m.__name__] = list(m.objects.order_by("pk").values())
    return rows


def level(location, sku) -> tuple[int, int]:
    lv = StockLevel.objects.get(location=location, sku=sku)
    return lv.on_hand, lv.reserved


def asked_exchange(shop, exchange_for="TEE-2", sku="TEE-0"):
    r = ask(
        shop.storefront,
        shop.order,
        email=EMAIL,
        lines=[{"sku": sku, "quantity": 1, "reason": "wrong_size", "exchange_for": exchange_for}],
    )
    assert r.status_code == 201, r.content
    return Return.objects.get(number=r.json()["number"])


@pytest.fixture
def hooks(shop, loopback_webhooks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # drops the cached endpoint list
        webhook_register(
            owner=shop.storefront.user, url="http://127.0.0.1:9/x", events=["return.*", "refund.*"]
        )


def webhooks(event: str) -> list[dict]:
    return [
        n.context["data"]
        for n in Notification.objects.filter(event=NotificationEvent.WEBHOOK, webhook_event=event).order_by(
            "pk"
        )
    ]


# --- Happy paths ---------------------------------------------------------------------------------


def test_exchange_at_the_store_is_reserved_here_linked_and_nothing_refunded(shop, hooks):
    """Another size, asked online, received at Shibuya's desk: the replacement is a new order of the
    same customer, a pickup reserved at Shibuya (placed at its till by the associate), linked to the
    return; both timelines say so; at the same price no money moves."""
    net = shop.net
    tee0, tee2 = net.skus[0], net.skus[2]
    ret = asked_exchange(shop)
    tee0_before, tee2_before = level(net.shibuya, tee0), level(net.shibuya, tee2)

    r = receive(
        shop.desk, ret.number, "TKY-SHIBUYA", [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "received"
    assert (body["refund_amount"], body["amount_due"], body["refunds"]) == ("0.00", "0.00", [])
    (number,) = body["exchange_orders"]
    line = body["lines"][0]
    assert (
        line["exchange_for"],
        line["exchange_order"],
        line["exchange_unit_price"],
        line["exchange_difference"],
    ) == (
        "TEE-2",
        number,
        "1980.00",
        "0.00",
    )

    new = Order.objects.get(number=number)
    assert new.customer_id == ret.customer_id == shop.order.customer_id
    assert (new.channel, new.fulfillment_method, new.pickup_location_id, new.currency) == (
        "store",
        "pickup",
        net.shibuya.pk,
        "JPY",
    )
    assert (new.placed_by_id, new.placed_at_location_id) == (shop.desk.user.pk, net.shibuya.pk)
    assert (new.contact_email, new.total) == (EMAIL, Decimal("1980.00"))
    assert [(ln.sku.code, ln.quantity, ln.unit_price) for ln in new.lines.all()] == [
        ("TEE-2", 1, Decimal("1980.00"))
    ]
    (f,) = new.fulfillments.all()
    assert (f.location_id, f.method, f.status) == (net.shibuya.pk, "pickup", FulfillmentStatus.PENDING)
    # Stock: the returned unit back on the shelf, the replacement reserved here.
    assert level(net.shibuya, tee0) == (tee0_before[0] + 1, tee0_before[1])
    assert level(net.shibuya, tee2) == (tee2_before[0], tee2_before[1] + 1)
    assert ledger_mismatches() == []
    # No money back for exchanged units at the same price; the units stay "returned", not refunded.
    assert not Refund.objects.exists()
    ol = OrderLine.objects.get(order=shop.order, sku=tee0)
    assert (ol.returned_quantity, ol.refunded_quantity) == (1, 0)
    # Both timelines; the webhook names the new order.
    assert (
        OrderEvent.objects.filter(order=shop.order, type=EventType.EXCHANGE_PLACED)
        .get()
        .data["exchange_order"]
        == number
    )
    mine = OrderEvent.objects.filter(order=new, type=EventType.EXCHANGE_PLACED).get()
    assert (mine.data["return"], mine.data["replaces_order"], mine.actor_id) == (
        ret.number,
        shop.order.number,
        shop.desk.user.pk,
    )
    assert [e.type for e in OrderEvent.objects.filter(order=new).order_by("pk")][:2] == ["placed", "routed"]
    (exchanged,) = webhooks("return.exchanged")
    assert (exchanged["return"], exchanged["exchange_order"], exchanged["method"]) == (
        ret.number,
        number,
        "pickup",
    )
    assert webhooks("return.received")[0]["exchange_orders"] == [number]
    assert webhooks("return.payment_due") == []
    # The customer is told of the new order (its confirmation, with its pickup store).
    assert Notification.objects.filter(order=new, event=NotificationEvent.ORDER_CONFIRMED).exists()
    # The associate sees the new order (their store's pickup) and the return's detail shows it.
    assert shop.desk.get(f"/api/v1/orders/{number}/").status_code == 200
    assert shop.storefront.get(f"{URL}{ret.number}/").json()["exchange_orders"] == [number]


def test_shipped_to_the_customer_when_the_store_has_none(shop):
    """Shibuya has no TEE-2: the replacement ships to the order's address from the warehouse; the
    exchange was decided at the desk (not asked with the return)."""
    net = shop.net
    tee2 = net.skus[2]
    stock_adjust(location=net.shibuya, sku=tee2, counted_quantity=0, reason="count")
    r = ask(shop.storefront, shop.order, email=EMAIL)  # no exchange asked
    ret = Return.objects.get(number=r.json()["number"])
    r = receive(
        shop.desk,
        ret.number,
        "TKY-SHIBUYA",
        [{"sku": "TEE-0", "quantity": 1, "condition": "damaged", "exchange_for": "TEE-2"}],
    )
    assert r.status_code == 200, r.content
    (number,) = r.json()["exchange_orders"]
    new = Order.objects.get(number=number)
    assert (new.fulfillment_method, new.pickup_location_id, new.ship_address) == (
        "ship",
        None,
        shop.order.ship_address,
    )
    (f,) = new.fulfillments.all()
    assert (f.location_id, f.method) == (net.wh.pk, "ship")
    assert ReturnLine.objects.get(ret=ret).exchange_for_id == tee2.pk
    assert level(net.wh, tee2)[1] == 1
    assert not Refund.objects.exists()
    assert ledger_mismatches() == []


def test_the_customer_owes_the_difference(shop, hooks):
    """A dearer replacement: no refund, `amount_due` on the return, PAYMENT_DUE in the timeline and
    `return.payment_due` for the payment system to charge."""
    ret = asked_exchange(shop)
    r = receive(
        shop.desk,
        ret.number,
        "TKY-SHIBUYA",
        [{"sku": "TEE-0", "quantity": 1, "condition": "resellable", "exchange_unit_price": "2500"}],
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["amount_due"], body["refund_amount"]) == ("520.00", "0.00")
    assert body["lines"][0]["exchange_difference"] == "520.00"
    new = Order.objects.get(number=body["exchange_orders"][0])
    assert new.lines.get().unit_price == Decimal("2500.00")
    assert not Refund.objects.exists()
    due = OrderEvent.objects.get(order=shop.order, type=EventType.PAYMENT_DUE)
    assert (due.data["amount"], due.data["currency"]) == ("520.00", "JPY")
    (hook,) = webhooks("return.payment_due")
    assert (hook["return"], hook["amount"], hook["exchange_orders"]) == (ret.number, "520.00", [new.number])


def test_a_cheaper_replacement_refunds_the_difference_and_other_lines_as_before(shop, hooks):
    """TEE-0 exchanged for a cheaper TEE-2 (480 back, cause exchange_difference, no refund lines);
    TEE-1 brought back without exchange: refunded per line as any return."""
    r = ask(
        shop.storefront,
        shop.order,
        email=EMAIL,
        lines=[
            {"sku": "TEE-0", "quantity": 2, "reason": "wrong_size", "exchange_for": "TEE-2"},
            {"sku": "TEE-1", "quantity": 1, "reason": "changed_mind"},
        ],
    )
    ret = Return.objects.get(number=r.json()["number"])
    r = receive(
        shop.desk,
        ret.number,
        "TKY-SHIBUYA",
        [
            {"sku": "TEE-0", "quantity": 2, "condition": "resellable", "exchange_unit_price": "1740"},
            {"sku": "TEE-1", "quantity": 1, "condition": "resellable"},
        ],
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["refund_amount"], body["amount_due"]) == ("2460.00", "0.00")  # 1980 + 2 x 240
    assert [(ln["sku"], ln["refund_amount"], ln["exchange_difference"]) for ln in body["lines"]] == [
        ("TEE-0", "0.00", "-480.00"),
        ("TEE-1", "1980.00", None),
    ]
    units, difference = Refund.objects.filter(return_ref=ret).order_by("pk")
    assert (units.cause, units.amount, units.lines.count()) == ("return_received", Decimal("1980.00"), 1)
    assert (difference.cause, difference.amount, difference.lines.count()) == (
        "exchange_difference",
        Decimal("480.00"),
        0,
    )
    assert sorted(body["refunds"]) == sorted([units.pk, difference.pk])
    assert [h["cause"] for h in webhooks("refund.requested")] == ["return_received", "exchange_difference"]
    assert OrderLine.objects.get(order=shop.order, sku__code="TEE-0").refunded_quantity == 0
    assert OrderLine.objects.get(order=shop.order, sku__code="TEE-1").refunded_quantity == 1
    assert Order.objects.get(number=body["exchange_orders"][0]).lines.get().quantity == 2


def test_mail_return_at_the_warehouse_ships_the_replacement(shop):
    """Received by mail at the warehouse: the replacement ships (placed by the system on the order's
    channel: warehouse staff place no till orders)."""
    r = ask(
        shop.storefront,
        shop.order,
        email=EMAIL,
        method="mail",
        lines=[{"sku": "TEE-0", "quantity": 1, "reason": "wrong_size", "exchange_for": "TEE-2"}],
    )
    assert r.status_code == 201, r.content
    ret = Return.objects.get(number=r.json()["number"])
    r = receive(
        shop.picker, ret.number, "WH-KAWASAKI", [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
    )
    assert r.status_code == 200, r.content
    new = Order.objects.get(number=r.json()["exchange_orders"][0])
    assert (new.channel, new.fulfillment_method, new.placed_by_id) == ("web", "ship", None)
    assert ledger_mismatches() == []


# --- Refusals: nothing changed -------------------------------------------------------------------


def test_an_exchange_for_a_sku_nobody_has_changes_nothing(shop, hooks):
    net = shop.net
    tee2 = net.skus[2]
    ret = asked_exchange(shop)
    for loc in (net.shibuya, net.osaka, net.wh):
        stock_adjust(location=loc, sku=tee2, counted_quantity=0, reason="count")
    before = state()
    e = error(
        receive(
            shop.desk, ret.number, "TKY-SHIBUYA", [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
        ),
        409,
    )
    assert e["code"] == "exchange_unavailable"
    assert (e["details"]["field"], e["details"]["exchange_for"], e["details"]["sku"]) == (
        "lines[0].exchange_for",
        "TEE-2",
        "TEE-0",
    )
    assert "TEE-2" in e["message"]
    assert "lines[0]" in e["message"]
    assert state() == before
    assert Return.objects.get(pk=ret.pk).status == ReturnStatus.REQUESTED


def test_no_address_to_ship_to_changes_nothing(net, api_client_for):
    """Bought as a pickup at Osaka (no address), exchanged at Shibuya which has none: 409."""
    from stores.models import Role
    from tests.orders.conftest import pickup

    desk = api_client_for(Role.ASSOCIATE, locations=[net.shibuya])
    order = delivered(("TEE-0", 1), fulfillment=pickup("OSA-UMEDA"))
    ret = return_request(
        order_number=order.number,
        lines=[ReturnLineIn("TEE-0", 1, "wrong_size", exchange_for="TEE-2")],
        method="in_store",
    )
    stock_adjust(location=net.shibuya, sku=net.skus[2], counted_quantity=0, reason="count")
    before = state()
    e = error(
        receive(
            desk, ret.number, "TKY-SHIBUYA", [{"sku": "TEE-0", "quantity": 1, "condition": "resellable"}]
        ),
        409,
    )
    assert (e["code"], e["details"]["field"]) == ("exchange_unavailable", "lines[0].exchange_for")
    assert "no address" in e["message"]
    assert state() == before


@pytest.mark.parametrize(
    ("extra", "status", "code", "field"),
    [
        ({"exchange_for": "NOPE-9"}, 404, "unknown_sku", "lines[1].exchange_for"),
        ({"exchange_for": "OLD-1"}, 422, "sku_inactive", "lines[1].exchange_for"),
        (
            {"exchange_for": "TEE-2", "exchange_unit_price": "-1"},
            400,
            "invalid",
            "lines[1].exchange_unit_price",
        ),
        (
            {"exchange_for": "TEE-2", "exchange_unit_price": "10.5"},
            400,
            "invalid",
            "lines[1].exchange_unit_price",
        ),
        ({"exchange_for": "TEE-0"}, 400, "invalid", "lines[1].exchange_for"),  # TEE-0 replaces line 0 already
    ],
)
def test_bad_exchanges_change_nothing(shop, hooks, extra, status, code, field):
    SkuFactory(code="OLD-1", is_active=False)
    r = ask(
        shop.storefront,
        shop.order,
        email=EMAIL,
        lines=[
            {"sku": "TEE-0", "quantity": 1, "reason": "wrong_size", "exchange_for": "TEE-0"},
            {"sku": "TEE-1", "quantity": 1, "reason": "wrong_size"},
        ],
    )
    ret = Return.objects.get(number=r.json()["number"])
    before = state()
    e = error(
        receive(
            shop.desk,
            ret.number,
            "TKY-SHIBUYA",
            [
                {"sku": "TEE-0", "quantity": 1, "condition": "resellable"},
                {"sku": "TEE-1", "quantity": 1, "condition": "resellable", **extra},
            ],
        ),
        status,
    )
    assert e["code"] == code
    if field.endswith("exchange_unit_price") and "fields" in e["details"]:  # the serializer's shape
        assert "exchange_unit_price" in str(e["details"]["fields"]["lines"])
    else:
        assert e["details"]["field"] == field
    assert state() == before


# --- The desk ------------------------------------------------------------------------------------


def test_the_desk_exchanges_and_links_the_pickup(shop):
    from tests.returns.test_desk_page import card, login

    ret = asked_exchange(shop)
    desk = login(shop.desk.user)
    page = desk.get(card(ret, ret.code)).content.decode()
    assert 'name="exchange_TEE-0" value="TEE-2"' in page
    r = desk.post(
        card(ret, ret.code),
        {
            "step": "receive",
            "store": "TKY-SHIBUYA",
            "qty_TEE-0": "1",
            "condition_TEE-0": "resellable",
            "exchange_TEE-0": "TEE-1",  # another size than asked
            "code": ret.code,
        },
    )
    assert r.status_code == 302
    line = ReturnLine.objects.select_related("exchange_order", "exchange_for").get(ret=ret)
    assert line.exchange_for.code == "TEE-1"
    f = line.exchange_order.fulfillments.get()
    page = desk.get(card(ret)).content.decode()
    assert f"data-exchange-order>{line.exchange_order.number}<" in page
    assert f"/admin/orders/pickup/{f.pk}/change/" in page
    assert desk.get(f"/admin/orders/pickup/{f.pk}/change/").status_code == 200


def test_the_desk_empties_the_box_for_a_refund(shop):
    from tests.returns.test_desk_page import card, login

    ret = asked_exchange(shop)
    desk = login(shop.desk.user)
    desk.post(
        card(ret, ret.code),
        {
            "code": ret.code,
            "step": "receive",
            "store": "TKY-SHIBUYA",
            "qty_TEE-0": "1",
            "condition_TEE-0": "resellable",
            "exchange_TEE-0": "",
        },
    )
    ret.refresh_from_db()
    assert (ret.status, ret.refund_amount) == (ReturnStatus.RECEIVED, Decimal("1980.00"))
    line = ReturnLine.objects.get(ret=ret)
    assert (line.exchange_for_id, line.exchange_order_id) == (None, None)


# --- Figures ---------------------------------------------------------------------------------------


def test_receiving_20_exchanges_takes_the_queries_of_1(net, associate):
    """An exchange adds a fixed number of statements to the receipt: one pickup order however many
    lines it replaces (placement's lookup, bulk INSERTs, the locking reservation). From 2 lines: a
    one-line order's reservation is inventory's single guarded statement, several lines its
    locking path (one SELECT ... FOR UPDATE more), as for any order placed."""
    counts = []
    for n in (2, 20):
        skus = [SkuFactory(code=f"X{n}-{i:02d}") for i in range(n)]
        wanted = [SkuFactory(code=f"Y{n}-{i:02d}") for i in range(n)]
        for s, w in zip(skus, wanted, strict=True):
            stock(net.wh, s, 5)
            stock(net.shibuya, s, 1)
            stock(net.shibuya, w, 2)
        order = delivered(*[(s.code, 2) for s in skus], email=f"x{n}@example.com")
        ret = return_request(
            order_number=order.number,
            lines=[
                ReturnLineIn(s.code, 1, "wrong_size", exchange_for=w.code)
                for s, w in zip(skus, wanted, strict=True)
            ],
            method="in_store",
        )
        user = type(associate).objects.get(pk=associate.pk)
        with CaptureQueriesContext(connection) as ctx:
            return_receive(
                number=ret.number,
                location=net.shibuya.code,
                lines=[ReceiveLineIn(s.code, 1, "resellable") for s in skus],
                user=user,
            )
        counts.append(len(ctx.captured_queries))
        ret.refresh_from_db()
        assert ret.status == ReturnStatus.RECEIVED
        assert (
            Order.objects.get(pk=ReturnLine.objects.filter(ret=ret).first().exchange_order_id).lines.count()
            == n
        )
    assert counts[0] == counts[1], counts
    assert ledger_mismatches() == []


def test_webhooks_and_ledger_rows_of_an_exchange(shop):
    ret = asked_exchange(shop)
    return_receive(number=ret.number, location="TKY-SHIBUYA", lines=[ReceiveLineIn("TEE-0", 1, "resellable")])
    new = ReturnLine.objects.get(ret=ret).exchange_order
    kinds = sorted(
        StockMovement.objects.filter(reference__in=[ret.number, new.number]).values_list("sku__code", "kind")
    )
    assert kinds == [("TEE-0", "return_restock"), ("TEE-2", "reservation")]
    assert Location.objects.get(code="TKY-SHIBUYA").pk == new.pickup_location_id


# --- PostgreSQL: two exchanges racing for the last replacement -----------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_exchanges_racing_for_the_last_unit_one_wins_the_other_rolls_back():
    """Two customers at Shibuya's desk exchange for the last RACE-X, which nobody else has: the
    locked levels let one through (reserved here); the other is 409 `exchange_unavailable` and its
    whole receipt rolls back: return still requested, its units not restocked, no order, no refund."""
    from django.contrib.auth import get_user_model

    from returns.exceptions import ExchangeUnavailable
    from stores.models import Role
    from tests.factories import LocationFactory, WarehouseFactory, make_staff
    from tests.orders.conftest import TOKYO
    from tests.orders.test_concurrency import run_threads

    wh = WarehouseFactory(code="WH-RACE", latitude=TOKYO["latitude"], longitude=TOKYO["longitude"])
    store = LocationFactory(code="TKY-SHIBUYA")
    race_a, race_x = SkuFactory(code="RACE-A"), SkuFactory(code="RACE-X")
    stock(wh, race_a, 10)
    stock(store, race_x, 1)
    rets = []
    for i in range(2):
        order = delivered(("RACE-A", 1), email=f"r{i}@example.com")
        rets.append(
            return_request(
                order_number=order.number,
                lines=[ReturnLineIn("RACE-A", 1, "wrong_size", exchange_for="RACE-X")],
                method="in_store",
            )
        )
    associates = [make_staff(role=Role.ASSOCIATE, locations=[store]) for _ in range(2)]
    orders_before = Order.objects.count()

    def take_back(i):
        user = get_user_model().objects.get(pk=associates[i].pk)
        try:
            return_receive(
                number=rets[i].number,
                location=store.code,
                lines=[ReceiveLineIn("RACE-A", 1, "resellable")],
                user=user,
            )
            return "ok"
        except ExchangeUnavailable:
            return "409"

    assert sorted(run_threads(2, take_back)) == ["409", "ok"]
    statuses = {r.number: Return.objects.get(pk=r.pk).status for r in rets}
    assert sorted(statuses.values()) == [ReturnStatus.RECEIVED, ReturnStatus.REQUESTED]
    loser = next(r for r in rets if statuses[r.number] == ReturnStatus.REQUESTED)
    assert not StockMovement.objects.filter(reference=loser.number).exists()
    assert ReturnLine.objects.get(ret=loser).exchange_order_id is None
    assert Order.objects.count() == orders_before + 1
    assert level(store, race_x) == (1, 1)
    assert level(store, race_a)[0] == 1  # the winner's unit only
    assert not Refund.objects.exists()
    assert ledger_mismatches() == []
