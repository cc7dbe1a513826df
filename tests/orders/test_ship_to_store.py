"""Issue 10, ship to store: a pickup order whose store is short, filled from a warehouse.

The store reserves what it has; a warehouse reserves the rest and works a `to_store` fulfillment;
shipping it creates a transfer (in transit); receiving the transfer at the store counts the units
in reserved for the pickup fulfillment, which then joins the store's queue. Short arrivals are
re-planned or cancelled and refunded; cancellations never leak a reservation.
"""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.errors import InvalidTransition, PolicyViolation
from inventory.exceptions import InsufficientStock
from inventory.models import MovementKind, StockLevel, StockMovement, Transfer, TransferStatus
from inventory.selectors import ledger_mismatches
from inventory.services import stock_adjust, transfer_receive
from notifications.models import Notification, NotificationEvent
from notifications.services.delivery import notification_render
from orders import services
from orders.models import (
    EventType,
    Fulfillment,
    FulfillmentMethod,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
)
from returns.models import Refund
from stores.models import Location, Role
from tests.factories import LocationFactory, SkuFactory, WarehouseFactory, make_staff, stock
from tests.orders.conftest import pickup, place, placed

pytestmark = pytest.mark.django_db

URL = "/api/v1/orders/"
F = "/api/v1/fulfillments/"
TOKYO_TZ = zoneinfo.ZoneInfo("Asia/Tokyo")


def level(location, sku):
    lv = StockLevel.objects.filter(location=location, sku=sku).first()
    return (lv.on_hand, lv.reserved) if lv else (0, 0)


def tokyo_today():
    return timezone.now().astimezone(TOKYO_TZ).date()


@pytest.fixture
def s2s(net):
    """Shibuya allows ship to store (3 days); it has 3 of each SKU, the warehouse 10."""
    Location.objects.filter(pk=net.shibuya.pk).update(ship_to_store=True, transit_days=3, offers_pickup=True)
    net.shibuya.refresh_from_db()
    net.tee = net.skus[0]
    return net


def store_and_leg(order):
    fs = list(order.fulfillments.order_by("pk"))
    store_f = next(f for f in fs if f.method != FulfillmentMethod.TO_STORE)
    legs = [f for f in fs if f.method == FulfillmentMethod.TO_STORE]
    return store_f, legs


def ship_leg(leg, user=None):
    services.fulfillment_start(fulfillment_id=leg.pk, user=user)
    services.fulfillment_pack(fulfillment_id=leg.pk, user=user)
    leg = services.fulfillment_ship(
        fulfillment_id=leg.pk, carrier="Own truck", tracking_number="T1", user=user
    )
    return leg


# --- Placement ----------------------------------------------------------------------------------


def test_short_store_reserves_what_it_has_and_a_warehouse_the_rest(s2s):
    order = place(("TEE-0", 5), ("TEE-1", 1), fulfillment=pickup())
    assert order.status == OrderStatus.IN_TRANSIT_TO_STORE
    store_f, legs = store_and_leg(order)
    assert store_f.status == FulfillmentStatus.AWAITING_TRANSFER
    assert store_f.location == s2s.shibuya
    assert store_f.ready_by == tokyo_today() + dt.timedelta(days=3)
    lines = {ln.sku.code: (ln.quantity, ln.incoming_quantity) for ln in store_f.lines.all()}
    assert lines == {"TEE-0": (3, 2), "TEE-1": (1, 0)}
    (leg,) = legs
    assert (leg.location, leg.status, leg.supplies_id) == (s2s.wh, FulfillmentStatus.PENDING, store_f.pk)
    assert [(ln.sku.code, ln.quantity) for ln in leg.lines.all()] == [("TEE-0", 2)]
    assert level(s2s.shibuya, s2s.tee) == (3, 3)
    assert level(s2s.wh, s2s.tee) == (10, 2)
    routed = order.events.get(type=EventType.ROUTED)
    assert routed.reason.startswith("ship to store TKY-SHIBUYA from WH-KAWASAKI")
    assert routed.data["ship_to_store"]["incoming"] == [{"sku": "TEE-0", "quantity": 2}]
    # The customer's confirmation says when.
    confirmation = Notification.objects.get(
        order=order, event=NotificationEvent.ORDER_CONFIRMED, channel="email"
    )
    promised = (tokyo_today() + dt.timedelta(days=3)).isoformat()
    assert confirmation.context["ready_by"] == promised
    assert f"ready for pickup by {promised}" in notification_render(confirmation).body
    assert ledger_mismatches() == []


def test_a_store_with_nothing_gets_everything_from_the_warehouse(s2s):
    empty = LocationFactory(code="TKY-EMPTY", offers_pickup=True, ship_to_store=True, transit_days=1)
    order = place(("TEE-0", 2), fulfillment=pickup("TKY-EMPTY"))
    store_f, legs = store_and_leg(order)
    assert len(legs) == 1
    assert [(ln.quantity, ln.incoming_quantity) for ln in store_f.lines.all()] == [(0, 2)]
    assert level(empty, s2s.tee) == (0, 0)
    assert level(s2s.wh, s2s.tee) == (10, 2)


def test_routing_takes_only_warehouses(s2s):
    """Osaka (a store that ships orders) has stock, but ship to store comes from warehouses."""
    StockLevel.objects.filter(location=s2s.wh).update(on_hand=0)
    with pytest.raises(InsufficientStock) as e:
        place(("TEE-0", 5), fulfillment=pickup())
    assert e.value.details["lines"][0]["shortfall"] == 2
    assert Order.objects.count() == 0
    assert not StockLevel.objects.filter(reserved__gt=0).exists()


def test_a_store_that_has_everything_is_a_plain_pickup(s2s):
    order = place(("TEE-0", 3), fulfillment=pickup())
    (f,) = order.fulfillments.all()
    assert (order.status, f.status, f.ready_by) == (OrderStatus.PLACED, FulfillmentStatus.PENDING, None)


# --- Bad input: a clear error, nothing changed ------------------------------------------------------


def _nothing_written():
    return (
        Order.objects.count() == 0
        and OrderEvent.objects.count() == 0
        and not StockLevel.objects.filter(reserved__gt=0).exists()
    )


def test_asking_for_it_at_a_store_that_does_not_allow_it_is_422(net, storefront):
    body = {
        "channel": "web",
        "customer": {"email": "a@example.com", "name": "Aiko"},
        "fulfillment": {"method": "pickup", "location": "TKY-SHIBUYA", "ship_to_store": True},
        "lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }
    before = list(StockLevel.objects.values_list("on_hand", "reserved").order_by("pk"))
    r = storefront.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="s2s-1")
    assert r.status_code == 422, r.content
    assert r.json()["error"]["code"] == "ship_to_store_not_offered"
    assert r.json()["error"]["details"] == {"field": "fulfillment.ship_to_store", "location": "TKY-SHIBUYA"}
    assert _nothing_written()
    assert list(StockLevel.objects.values_list("on_hand", "reserved").order_by("pk")) == before


def test_short_at_a_store_that_does_not_allow_it_is_the_usual_409(net):
    with pytest.raises(InsufficientStock):
        place(("TEE-0", 5), fulfillment=pickup())
    assert _nothing_written()


def test_the_client_may_refuse_it(s2s):
    from orders.services import FulfillmentIn

    with pytest.raises(InsufficientStock):
        place(
            ("TEE-0", 5),
            fulfillment=FulfillmentIn(method="pickup", location="TKY-SHIBUYA", ship_to_store=False),
        )
    assert _nothing_written()


def test_ship_to_store_on_a_ship_order_is_400(net, storefront):
    from tests.orders.conftest import TOKYO

    body = {
        "channel": "web",
        "customer": {"email": "a@example.com"},
        "fulfillment": {"method": "ship", "address": TOKYO, "ship_to_store": True},
        "lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }
    r = storefront.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="s2s-2")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["details"]["field"] == "fulfillment.ship_to_store"
    assert _nothing_written()


def test_to_store_is_not_a_method_clients_may_choose(net, storefront):
    body = {
        "channel": "web",
        "customer": {"email": "a@example.com"},
        "fulfillment": {"method": "to_store", "location": "TKY-SHIBUYA"},
        "lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }
    r = storefront.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="s2s-3")
    assert r.status_code == 400
    assert _nothing_written()


def test_transit_days_are_range_checked_by_the_database(net):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Location.objects.filter(pk=net.shibuya.pk).update(transit_days=31)


def test_the_pickup_cannot_be_worked_before_the_goods_arrive(s2s):
    associate = make_staff(role=Role.ASSOCIATE, locations=[s2s.shibuya])
    order = place(("TEE-0", 5), fulfillment=pickup())
    store_f, _ = store_and_leg(order)
    assert services.fulfillment_claim(location=s2s.shibuya, user=associate) is None
    for call in (services.fulfillment_start, services.fulfillment_ready):
        with pytest.raises(InvalidTransition):
            call(fulfillment_id=store_f.pk, user=associate)
    with pytest.raises(InvalidTransition):
        services.fulfillment_pick(fulfillment_id=store_f.pk, picks=[], user=associate)
    assert Fulfillment.objects.get(pk=store_f.pk).status == FulfillmentStatus.AWAITING_TRANSFER


# --- The whole journey through the API --------------------------------------------------------------


def test_place_ship_receive_pick_ready_collect_over_the_api(s2s, storefront, api_client_for):
    worker = api_client_for(Role.WAREHOUSE, [s2s.wh])
    assoc = api_client_for(Role.ASSOCIATE, [s2s.shibuya])
    body = {
        "channel": "web",
        "customer": {"email": "a@example.com", "name": "Aiko"},
        "fulfillment": {"method": "pickup", "location": "TKY-SHIBUYA"},
        "lines": [{"sku": "TEE-0", "quantity": 5, "unit_price": "1980.00"}],
        "currency": "JPY",
    }
    r = storefront.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="journey")
    assert r.status_code == 201, r.content
    o = r.json()
    promised = (tokyo_today() + dt.timedelta(days=3)).isoformat()
    assert (o["status"], o["ready_by"]) == ("in_transit_to_store", promised)
    store_fid, leg_id = (f["id"] for f in o["fulfillments"])
    assert o["fulfillments"][0]["status"] == "awaiting_transfer"
    assert o["fulfillments"][0]["lines"] == [
        {"sku": "TEE-0", "quantity": 3, "picked_quantity": None, "incoming_quantity": 2}
    ]
    assert o["fulfillments"][1]["method"] == "to_store"
    assert o["fulfillments"][1]["supplies"] == store_fid
    assert o["fulfillments"][1]["transfer"] is None
    assert storefront.get(f"{URL}{o['number']}/").json() == o | {"notes": []}

    # The store has nothing to do yet; readying early is a 409.
    assert assoc.post(f"{F}claim/", {"location": "TKY-SHIBUYA"}, format="json").status_code == 204
    assert assoc.post(f"{F}{store_fid}/ready/").status_code == 409

    # The warehouse works it like any other task: claim, pack, ship.
    r = worker.post(f"{F}claim/", {"location": "WH-KAWASAKI"}, format="json")
    assert r.json()["id"] == leg_id
    assert worker.post(f"{F}{leg_id}/pack/").status_code == 200
    r = worker.post(f"{F}{leg_id}/ship/", {"carrier": "Own truck", "tracking_number": "R-1"}, format="json")
    assert r.status_code == 200, r.content
    transfer = r.json()["transfer"]
    assert transfer["status"] == "in_transit"
    assert level(s2s.wh, s2s.tee) == (8, 0)
    o = storefront.get(f"{URL}{o['number']}/").json()
    assert o["status"] == "in_transit_to_store"
    assert o["fulfillments"][1]["transfer"] == transfer
    # No "shipped" message for the warehouse's part: the customer is told it is on its way to the
    # store and when it will be ready; the timeline says so too.
    assert not Notification.objects.filter(event=NotificationEvent.ORDER_SHIPPED).exists()
    on_its_way = Notification.objects.filter(event=NotificationEvent.IN_TRANSIT_TO_STORE)
    assert on_its_way.count() >= 1
    assert {n.context["ready_by"] for n in on_its_way} == {o["ready_by"]}
    assert {n.context["order_number"] for n in on_its_way} == {o["number"]}
    events = storefront.get(f"{URL}{o['number']}/events/").json()
    events = events.get("results", events)
    assert "transfer_shipped" in [e["type"] for e in events]

    # The store receives the transfer (the plain inventory endpoint): reserved for the order.
    r = assoc.post(f"/api/v1/stock/transfers/{transfer['id']}/receive/", {}, format="json")
    assert r.status_code == 200, r.content
    assert level(s2s.shibuya, s2s.tee) == (5, 5)
    o = storefront.get(f"{URL}{o['number']}/").json()
    assert o["status"] == "placed"
    assert o["fulfillments"][0]["status"] == "pending"
    assert o["fulfillments"][0]["lines"][0] | {} == {
        "sku": "TEE-0",
        "quantity": 5,
        "picked_quantity": None,
        "incoming_quantity": 0,
    }
    assert o["fulfillments"][1]["transfer"]["status"] == "received"

    # The associate picks, readies and hands over as for any pickup.
    assert assoc.post(f"{F}claim/", {"location": "TKY-SHIBUYA"}, format="json").json()["id"] == store_fid
    assert assoc.post(f"{F}{store_fid}/ready/").json()["status"] == "ready_for_pickup"
    code = storefront.get(f"{URL}{o['number']}/").json()["fulfillments"][0]["pickup_code"]
    r = assoc.post(f"{F}{store_fid}/collect/", {"pickup_code": code}, format="json")
    assert r.json()["status"] == "collected"
    assert storefront.get(f"{URL}{o['number']}/").json()["status"] == "completed"
    assert level(s2s.shibuya, s2s.tee) == (0, 0)
    assert Notification.objects.filter(event=NotificationEvent.READY_FOR_PICKUP).exists()
    assert ledger_mismatches() == []


# --- Short arrivals ----------------------------------------------------------------------------


def test_a_short_transfer_is_replanned_from_a_warehouse(s2s):
    order = place(("TEE-0", 5), fulfillment=pickup())
    store_f, (leg,) = store_and_leg(order)
    leg = ship_leg(leg)
    transfer_receive(transfer_id=leg.transfer_id, received={"TEE-0": 1})
    assert Transfer.objects.get(pk=leg.transfer_id).lines.get().received_quantity == 1
    store_f.refresh_from_db()
    assert store_f.status == FulfillmentStatus.AWAITING_TRANSFER
    assert [(ln.quantity, ln.incoming_quantity) for ln in store_f.lines.all()] == [(4, 1)]
    assert level(s2s.shibuya, s2s.tee) == (4, 4)
    _, legs = store_and_leg(order)
    new = [x for x in legs if x.status == FulfillmentStatus.PENDING]
    assert len(new) == 1
    assert [ln.quantity for ln in new[0].lines.all()] == [1]
    assert level(s2s.wh, s2s.tee) == (8, 1)
    rerouted = order.events.get(type=EventType.REROUTED)
    assert "not received from WH-KAWASAKI" in rerouted.reason
    received = order.events.get(type=EventType.TRANSFER_RECEIVED)
    assert received.data["missing"] == [{"sku": "TEE-0", "quantity": 1}]
    assert not Refund.objects.exists()
    # The second transfer arrives in full: the store's queue.
    new_leg = ship_leg(new[0])
    transfer_receive(transfer_id=new_leg.transfer_id)
    store_f.refresh_from_db()
    assert store_f.status == FulfillmentStatus.PENDING
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PLACED
    assert level(s2s.shibuya, s2s.tee) == (5, 5)
    assert ledger_mismatches() == []


def test_a_short_transfer_nobody_can_fill_is_cancelled_and_refunded(s2s):
    stock_adjust(location=s2s.wh, sku=s2s.tee, counted_quantity=2, reason="count")
    order = place(("TEE-0", 5), ("TEE-1", 1), fulfillment=pickup())
    store_f, (leg,) = store_and_leg(order)
    leg = ship_leg(leg)
    transfer_receive(transfer_id=leg.transfer_id, received={"TEE-0": 0})
    store_f.refresh_from_db()
    assert store_f.status == FulfillmentStatus.PENDING  # what arrived and what the store had
    assert [(ln.sku.code, ln.quantity, ln.incoming_quantity) for ln in store_f.lines.order_by("pk")] == [
        ("TEE-0", 3, 0),
        ("TEE-1", 1, 0),
    ]
    line = OrderLine.objects.get(order=order, sku=s2s.tee)
    assert (line.cancelled_quantity, line.refunded_quantity) == (2, 2)
    refund = Refund.objects.get(order=order)
    assert (refund.cause, refund.amount) == ("short_transfer", Decimal("3960.00"))
    order.refresh_from_db()
    assert order.total == Decimal("1980.00") * 4
    types = list(order.events.values_list("type", flat=True))
    assert types.index(EventType.LINE_CANCELLED) < types.index(EventType.REFUND_REQUESTED)
    assert Notification.objects.filter(order=order, event=NotificationEvent.LINE_CANCELLED).exists()
    assert level(s2s.shibuya, s2s.tee) == (3, 3)
    assert ledger_mismatches() == []


def test_nothing_left_after_a_short_transfer_cancels_the_pickup(s2s):
    empty = LocationFactory(code="TKY-EMPTY", offers_pickup=True, ship_to_store=True)
    stock_adjust(location=s2s.wh, sku=s2s.tee, counted_quantity=2, reason="count")
    order = place(("TEE-0", 2), fulfillment=pickup("TKY-EMPTY"))
    _, (leg,) = store_and_leg(order)
    leg = ship_leg(leg)
    transfer_receive(transfer_id=leg.transfer_id, received={"TEE-0": 0})
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert Refund.objects.get(order=order).cause == "short_transfer"
    assert level(empty, s2s.tee) == (0, 0)
    assert ledger_mismatches() == []


def test_receiving_more_than_sent_or_an_unknown_sku_is_400_and_changes_nothing(s2s):
    from config.errors import InvalidInput

    order = place(("TEE-0", 5), fulfillment=pickup())
    _, (leg,) = store_and_leg(order)
    leg = ship_leg(leg)
    for received in ({"TEE-0": 3}, {"TEE-9": 1}):
        with pytest.raises(InvalidInput):
            transfer_receive(transfer_id=leg.transfer_id, received=received)
    assert Transfer.objects.get(pk=leg.transfer_id).status == TransferStatus.IN_TRANSIT
    assert level(s2s.shibuya, s2s.tee) == (3, 3)


def test_a_short_pick_at_the_warehouse_is_replanned_elsewhere(s2s):
    other = WarehouseFactory(code="WH-CHIBA", latitude=35.6, longitude=140.1)
    stock(other, s2s.tee, 5)
    order = place(("TEE-0", 5), fulfillment=pickup())
    store_f, (leg,) = store_and_leg(order)
    services.fulfillment_pick(fulfillment_id=leg.pk, picks=[services.PickIn("TEE-0", 1)])
    _, legs = store_and_leg(order)
    new = [x for x in legs if x.location == other]
    assert len(new) == 1
    assert [ln.quantity for ln in new[0].lines.all()] == [1]
    assert level(s2s.wh, s2s.tee) == (9, 1)  # one counted off, one still reserved for the order
    assert level(other, s2s.tee) == (5, 1)
    assert [(ln.quantity, ln.incoming_quantity) for ln in store_f.lines.all()] == [(3, 2)]
    assert ledger_mismatches() == []


# --- Cancelling while in transit ----------------------------------------------------------------


def test_cancelling_before_the_warehouse_ships_releases_both_reservations(s2s):
    order = place(("TEE-0", 5), fulfillment=pickup())
    services.order_cancel(number=order.number, reason="changed my mind")
    assert level(s2s.shibuya, s2s.tee) == (3, 0)
    assert level(s2s.wh, s2s.tee) == (10, 0)
    assert set(order.fulfillments.values_list("status", flat=True)) == {FulfillmentStatus.CANCELLED}
    assert Refund.objects.get(order=order).amount == Decimal("1980.00") * 5
    assert ledger_mismatches() == []


def test_cancelling_after_the_warehouse_shipped_the_goods_arrive_as_stock(s2s):
    order = place(("TEE-0", 5), fulfillment=pickup())
    store_f, (leg,) = store_and_leg(order)
    leg = ship_leg(leg)
    services.order_cancel(number=order.number, reason="changed my mind")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert level(s2s.shibuya, s2s.tee) == (3, 0)
    assert Fulfillment.objects.get(pk=leg.pk).status == FulfillmentStatus.SHIPPED
    transfer_receive(transfer_id=leg.transfer_id)
    assert level(s2s.shibuya, s2s.tee) == (5, 0)  # ordinary stock, available to everyone
    assert Fulfillment.objects.get(pk=store_f.pk).status == FulfillmentStatus.CANCELLED
    assert (
        StockMovement.objects.filter(kind=MovementKind.TRANSFER_IN, reference=str(leg.transfer_id)).count()
        == 1
    )
    assert ledger_mismatches() == []


def test_cancelling_the_pickup_fulfillment_cancels_the_warehouse_part(s2s):
    order = place(("TEE-0", 5), fulfillment=pickup())
    store_f, (leg,) = store_and_leg(order)
    services.fulfillment_cancel(fulfillment_id=store_f.pk, reason="store closed")
    assert Fulfillment.objects.get(pk=leg.pk).status == FulfillmentStatus.CANCELLED
    assert level(s2s.shibuya, s2s.tee) == (3, 0)
    assert level(s2s.wh, s2s.tee) == (10, 0)
    assert OrderLine.objects.get(order=order).cancelled_quantity == 5
    assert Refund.objects.get(order=order).amount == Decimal("1980.00") * 5
    assert ledger_mismatches() == []


def test_a_warehouse_that_cannot_send_it_is_replanned_or_refunded(s2s):
    order = place(("TEE-0", 5), fulfillment=pickup())
    store_f, (leg,) = store_and_leg(order)
    services.fulfillment_cancel(fulfillment_id=leg.pk, reason="damaged")
    # Nobody else has it (Kawasaki is excluded, Osaka is a store): cancelled and refunded; the
    # pickup goes ahead with what the store has.
    store_f.refresh_from_db()
    assert store_f.status == FulfillmentStatus.PENDING
    assert level(s2s.wh, s2s.tee) == (10, 0)
    assert Refund.objects.get(order=order).cause == "fulfillment_cancelled"
    assert OrderLine.objects.get(order=order).cancelled_quantity == 2
    assert ledger_mismatches() == []


# --- The flash sale's path is untouched -----------------------------------------------------------


def test_a_pickup_the_store_can_fill_costs_the_same_statements_at_a_ship_to_store_store(db, monkeypatch):
    """tests/orders/test_queries.py pins the flash sale's statements; a store allowing ship to
    store costs the same when it has the stock."""
    from orders import hooks
    from tests.orders.test_queries import PICKUP_NEW_CUSTOMER, _count

    monkeypatch.setattr(hooks, "_listeners", [])
    from inventory import hooks as inventory_hooks

    monkeypatch.setattr(inventory_hooks, "_out_of_stock_listeners", [])
    sku = SkuFactory(code="Q-S2S")
    store = LocationFactory(code="ST-S2S", offers_pickup=True, ship_to_store=True)
    stock(store, sku, 1)
    with CaptureQueriesContext(connection) as ctx:
        placed(("Q-S2S", 1), fulfillment=pickup("ST-S2S"), email="new@example.com")
    assert _count(ctx) == PICKUP_NEW_CUSTOMER, [q["sql"][:80] for q in ctx.captured_queries]


def test_policy_error_class_is_the_422():
    assert PolicyViolation.http_status == 422
