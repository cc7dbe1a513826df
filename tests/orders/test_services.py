import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from config import contacts
from config.errors import InvalidInput, InvalidTransition, NotFound, PolicyViolation
from inventory.exceptions import InsufficientStock
from inventory.models import Hold, MovementKind, StockLevel, StockMovement
from inventory.selectors import ledger_mismatches
from orders import services
from orders.exceptions import DuplicateLine, HoldMismatch, PickupNotOffered, UnknownSku, WrongPickupCode
from orders.models import (
    Customer,
    EventType,
    Fulfillment,
    FulfillmentLine,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
)
from orders.services import CustomerIn, FulfillmentIn, LineIn, PickIn
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, make_staff, stock
from tests.orders.conftest import TOKYO, lines, pickup, place, ship

pytestmark = pytest.mark.django_db


def level(loc, sku):
    return StockLevel.objects.get(location=loc, sku=sku)


def nothing_written():
    return (
        Order.objects.count() == 0
        and OrderEvent.objects.count() == 0
        and not StockLevel.objects.filter(reserved__gt=0).exists()
    )


# --- Customers ------------------------------------------------------------------------------


def test_normalise_contacts():
    assert contacts.normalise_email("  Aiko@Example.COM ") == "aiko@example.com"
    assert contacts.normalise_phone("+81 90-1234-5678") == "+819012345678"
    assert contacts.normalise_phone("090 1234 5678") == "+819012345678"  # national -> default country
    assert contacts.normalise_phone("0081 (90) 1234.5678") == "+819012345678"
    for bad in ("12", "+81abc", "not a phone"):
        with pytest.raises(InvalidInput):
            contacts.normalise_phone(bad)
    with pytest.raises(InvalidInput):
        contacts.normalise_email("nope")


def test_customer_is_one_across_channels(db):
    a = services.customer_find_or_create(email="Aiko@example.com", name="Aiko")
    b = services.customer_find_or_create(email="aiko@EXAMPLE.com", phone="090-1111-2222", name="Aiko T")
    c = services.customer_find_or_create(phone="+81 90 1111 2222")
    assert a.pk == b.pk == c.pk
    a.refresh_from_db()
    assert (a.name, a.phone, a.notify_channels) == ("Aiko T", "+819011112222", ["email"])
    assert Customer.objects.count() == 1


def test_customer_email_match_wins_and_other_phone_is_not_stolen(db):
    by_phone = services.customer_find_or_create(phone="+819000000001")
    by_email = services.customer_find_or_create(email="b@example.com")
    got = services.customer_find_or_create(email="b@example.com", phone="+819000000001")
    assert got.pk == by_email.pk
    got.refresh_from_db()
    assert got.phone is None  # the phone belongs to another customer
    assert Customer.objects.get(pk=by_phone.pk).phone == "+819000000001"


def test_customer_needs_a_contact(db):
    with pytest.raises(InvalidInput) as e:
        services.customer_find_or_create(name="nobody")
    assert e.value.details["field"] == "customer"


def test_preferences(net):
    c = services.customer_find_or_create(email="p@example.com")
    c = services.customer_update_preferences(
        customer_id=c.pk, notify_channels=["email"], language="ja", preferred_location="TKY-SHIBUYA"
    )
    c.refresh_from_db()
    assert (c.notify_channels, c.language, c.preferred_location.code) == (["email"], "ja", "TKY-SHIBUYA")
    with pytest.raises(PolicyViolation):  # no phone: no SMS
        services.customer_update_preferences(customer_id=c.pk, notify_channels=["sms"])
    with pytest.raises(InvalidInput):
        services.customer_update_preferences(customer_id=c.pk, notify_channels=["pigeon"])
    with pytest.raises(InvalidInput):
        services.customer_update_preferences(customer_id=c.pk, language="xx")
    with pytest.raises(NotFound):
        services.customer_update_preferences(customer_id=c.pk, preferred_location="NOPE")
    with pytest.raises(PolicyViolation):  # a warehouse is not a store
        services.customer_update_preferences(customer_id=c.pk, preferred_location="WH-KAWASAKI")
    c.refresh_from_db()
    assert (c.notify_channels, c.language) == (["email"], "ja")


# --- Placement ------------------------------------------------------------------------------


def test_place_ship_order_reserves_and_records_everything(net):
    order = place(("TEE-0", 2), ("TEE-1", 1))
    order = Order.objects.get(pk=order.pk)
    assert order.status == OrderStatus.PLACED
    assert order.subtotal == order.total == Decimal("5940.00")
    assert [(ln.sku.code, ln.quantity, ln.line_total) for ln in order.lines.order_by("pk")] == [
        ("TEE-0", 2, Decimal("3960.00")),
        ("TEE-1", 1, Decimal("1980.00")),
    ]
    [f] = order.fulfillments.all()
    assert f.method == "ship"
    assert f.status == "pending"
    reserved = {(fl.sku.code, fl.quantity) for fl in f.lines.all()}
    assert reserved == {("TEE-0", 2), ("TEE-1", 1)}
    assert level(f.location, net.skus[0]).reserved == 2
    types = list(order.events.values_list("type", flat=True))
    assert types == [EventType.PLACED, EventType.ROUTED]
    routed = order.events.get(type=EventType.ROUTED)
    assert routed.data["allocations"]
    assert routed.data["considered"]
    assert ledger_mismatches() == []


def test_totals_are_computed_on_the_server_with_decimals(net):
    order = services.order_place(
        channel="app",
        customer=CustomerIn(email="t@example.com"),
        fulfillment=ship(),
        lines=[LineIn("TEE-0", 3, Decimal("19.99")), LineIn("TEE-1", 1, "0.10")],
        currency="usd",
    ).order
    order.refresh_from_db()
    assert (order.currency, order.subtotal, order.total) == ("USD", Decimal("60.07"), Decimal("60.07"))


def test_place_split_across_locations_one_fulfillment_each(net):
    # 12 of TEE-0: no single location has 12 (10 + 3 + 5)
    order = place(("TEE-0", 12))
    fs = list(Order.objects.get(pk=order.pk).fulfillments.all())
    assert len(fs) == 2
    assert sum(fl.quantity for f in fs for fl in f.lines.all()) == 12
    assert sum(level(f.location, net.skus[0]).reserved for f in fs) == 12


def test_pickup_order_at_the_store(net):
    order = place(("TEE-0", 1), fulfillment=pickup())
    [f] = order.fulfillments.all()
    assert f.location.code == "TKY-SHIBUYA"
    assert f.method == "pickup"
    assert order.pickup_location == net.shibuya


def test_pickup_store_without_enough_stock_is_409_with_nearby(net):
    with pytest.raises(InsufficientStock) as e:
        place(("TEE-0", 4), fulfillment=pickup())  # Shibuya has 3
    [line] = e.value.details["lines"]
    assert (line["sku"], line["requested"], line["available"], line["shortfall"]) == ("TEE-0", 4, 3, 1)
    assert {n["location"] for n in line["nearby"]} >= {"WH-KAWASAKI", "OSA-UMEDA"}
    assert nothing_written()


def test_nothing_can_fill_is_409_and_nothing_written(net):
    with pytest.raises(InsufficientStock) as e:
        place(("TEE-0", 1), ("TEE-1", 19))  # 18 in the network
    [line] = e.value.details["lines"]
    assert line["sku"] == "TEE-1"
    assert line["shortfall"] >= 1
    assert nothing_written()
    assert Customer.objects.count() == 0


def test_endless_aisle_records_the_till(net):
    assoc = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
    order = place(("TEE-0", 5), channel="store", user=assoc)
    order.refresh_from_db()
    assert (order.channel, order.fulfillment_method) == ("store", "ship")
    assert order.placed_at_location_id == net.shibuya.pk
    assert order.placed_by == assoc


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"fulfillment": FulfillmentIn(method="ship")}, InvalidInput, "fulfillment.address"),
        ({"fulfillment": FulfillmentIn(method="pickup")}, InvalidInput, "fulfillment.location"),
        ({"fulfillment": FulfillmentIn(method="drone", address=TOKYO)}, InvalidInput, "fulfillment.method"),
        ({"fulfillment": FulfillmentIn(method="pickup", location="NOPE")}, NotFound, "fulfillment.location"),
        (
            {"fulfillment": FulfillmentIn(method="pickup", location="WH-KAWASAKI")},
            PickupNotOffered,
            "fulfillment.location",
        ),
        ({"currency": "XYZ"}, InvalidInput, "currency"),
        ({"channel": "fax"}, InvalidInput, "channel"),
    ],
)
def test_bad_order_input_is_rejected_and_nothing_written(net, kwargs, error, field):
    args = {
        "channel": "web",
        "customer": CustomerIn(email="x@example.com"),
        "fulfillment": ship(),
        "lines": lines(("TEE-0", 1)),
        "currency": "JPY",
    } | kwargs
    with pytest.raises(error) as e, transaction.atomic():
        services.order_place(**args)
    assert e.value.details.get("field") == field
    assert nothing_written()
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(
    ("order_lines", "error"),
    [
        ([], InvalidInput),
        ([LineIn("TEE-0", 1, "1"), LineIn("TEE-0", 2, "1")], DuplicateLine),
        ([LineIn("NOPE", 1, "1")], UnknownSku),
        ([LineIn("TEE-0", 0, "1")], InvalidInput),
        ([LineIn("TEE-0", -1, "1")], InvalidInput),
        ([LineIn("TEE-0", 10**9, "1")], InvalidInput),
        ([LineIn("TEE-0", 1, "-1")], InvalidInput),
        ([LineIn("TEE-0", 1, "abc")], InvalidInput),
        ([LineIn("TEE-0", 1, "1980.5")], InvalidInput),  # JPY has no minor unit
        ([LineIn("TEE-0", 1, "1", currency="USD")], InvalidInput),  # currency mismatch
    ],
)
def test_bad_lines_are_rejected(net, order_lines, error):
    with pytest.raises(error), transaction.atomic():
        services.order_place(
            channel="web",
            customer=CustomerIn(email="x@example.com"),
            fulfillment=ship(),
            lines=order_lines,
            currency="JPY",
        )
    assert nothing_written()


def test_customer_without_contact_is_rejected(net):
    with pytest.raises(InvalidInput), transaction.atomic():
        services.order_place(
            channel="web",
            customer=CustomerIn(name="anon"),
            fulfillment=ship(),
            lines=lines(("TEE-0", 1)),
            currency="JPY",
        )
    assert nothing_written()


# --- Holds ----------------------------------------------------------------------------------


def test_hold_then_order_converts_without_a_gap(net):
    hold = services.checkout_hold_create(lines=[LineIn("TEE-0", 2)], fulfillment=pickup())
    assert hold.allocated == [{"sku": "TEE-0", "location": "TKY-SHIBUYA", "quantity": 2}]
    assert level(net.shibuya, net.skus[0]).held == 2
    # the held units are not available to anyone else
    with pytest.raises(InsufficientStock):
        place(("TEE-0", 2), fulfillment=pickup(), email="other@example.com")
    order = place(("TEE-0", 2), fulfillment=pickup(), hold_id=hold.pk)
    lvl = level(net.shibuya, net.skus[0])
    assert (lvl.held, lvl.reserved) == (0, 2)
    assert not Hold.objects.filter(pk=hold.pk).exists()
    assert order.events.get(type=EventType.ROUTED).data["source"] == "hold"
    assert ledger_mismatches() == []


def test_hold_mismatch_is_422_and_the_hold_survives(net):
    hold = services.checkout_hold_create(lines=[LineIn("TEE-0", 2)], fulfillment=ship())
    with pytest.raises(HoldMismatch):
        place(("TEE-0", 1), hold_id=hold.pk)
    assert Hold.objects.filter(pk=hold.pk).exists()
    assert nothing_written()


def test_unknown_or_expired_hold_is_404(net):
    with pytest.raises(NotFound):
        place(("TEE-0", 1), hold_id="00000000-0000-0000-0000-000000000000")
    hold = services.checkout_hold_create(lines=[LineIn("TEE-0", 1)], fulfillment=ship())
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    hold.lines.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    from inventory.services import holds_reclaim_expired

    assert holds_reclaim_expired() == 1
    with pytest.raises(NotFound):
        place(("TEE-0", 1), hold_id=hold.pk)
    assert nothing_written()


def test_hold_with_no_stock_is_409(net):
    with pytest.raises(InsufficientStock) as e:
        services.checkout_hold_create(lines=[LineIn("TEE-0", 50)], fulfillment=ship())
    assert e.value.details["lines"][0]["shortfall"] == 50 - 18  # 18 in the network
    assert not Hold.objects.exists()


# --- Fulfillment flows ----------------------------------------------------------------------


def _ship_order(net, qty=2):
    order = place(("TEE-0", qty), ("TEE-1", 1))
    return order, order.fulfillments.all()[0]


def test_ship_flow_commits_stock_and_derives_status(net, picker):
    order, f = _ship_order(net)
    assert f.location == net.wh
    claimed = services.fulfillment_claim(location=net.wh, user=picker)
    assert claimed.pk == f.pk
    assert claimed.status == "picking"
    assert claimed.claimed_by == picker
    assert Order.objects.get(pk=order.pk).status == OrderStatus.IN_PROGRESS
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[], user=picker)
    services.fulfillment_pack(fulfillment_id=f.pk, user=picker)
    before = level(net.wh, net.skus[0])
    services.fulfillment_ship(fulfillment_id=f.pk, carrier="Yamato", tracking_number="1234", user=picker)
    after = level(net.wh, net.skus[0])
    assert (before.on_hand - after.on_hand, before.reserved - after.reserved) == (2, 2)
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    f.refresh_from_db()
    assert (f.carrier, f.tracking_number) == ("Yamato", "1234")
    assert f.shipped_at
    kinds = list(OrderEvent.objects.filter(order=order).values_list("type", "to_status"))
    assert (EventType.STATUS_CHANGED, "shipped") in kinds
    assert ledger_mismatches() == []


def test_ship_needs_carrier_and_tracking(net, picker):
    _, f = _ship_order(net)
    for carrier, tracking in (("", "1"), ("Yamato", ""), ("Yamato", "  ")):
        with pytest.raises(InvalidInput):
            services.fulfillment_ship(
                fulfillment_id=f.pk, carrier=carrier, tracking_number=tracking, user=picker
            )


def test_out_of_order_transitions_are_409_and_change_nothing(net, picker):
    _, f = _ship_order(net)
    with pytest.raises(InvalidTransition) as e:
        services.fulfillment_ship(fulfillment_id=f.pk, carrier="Y", tracking_number="1", user=picker)
    assert e.value.details == {"fulfillment": f.pk, "from": "pending", "to": "shipped"}
    with pytest.raises(InvalidTransition):
        services.fulfillment_ready(fulfillment_id=f.pk, user=picker)  # ship work is never ready for pickup
    f.refresh_from_db()
    assert f.status == "pending"
    assert level(net.wh, net.skus[0]).reserved == 2


def test_staff_act_only_at_their_locations(net):
    _, f = _ship_order(net)
    outsider = make_staff(role=Role.WAREHOUSE, locations=[net.osaka])
    with pytest.raises(PolicyViolation.__mro__[1]):  # DomainError: Forbidden
        services.fulfillment_claim(location=net.wh, user=outsider)
    from config.errors import Forbidden

    with pytest.raises(Forbidden):
        services.fulfillment_pack(fulfillment_id=f.pk, user=outsider)


def test_pickup_flow_with_code(net, associate):
    order = place(("TEE-0", 1), fulfillment=pickup())
    f = order.fulfillments.all()[0]
    services.fulfillment_claim(location=net.shibuya, user=associate)
    f = services.fulfillment_ready(fulfillment_id=f.pk, user=associate)
    assert len(f.pickup_code) == 8
    assert Order.objects.get(pk=order.pk).status == OrderStatus.READY_FOR_PICKUP
    wrong = "22222222" if f.pickup_code != "22222222" else "33333333"
    with pytest.raises(WrongPickupCode):
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=wrong, user=associate)
    assert Fulfillment.objects.get(pk=f.pk).status == "ready_for_pickup"
    assert level(net.shibuya, net.skus[0]).on_hand == 3
    services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code, user=associate)
    lvl = level(net.shibuya, net.skus[0])
    assert (lvl.on_hand, lvl.reserved) == (2, 0)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.COMPLETED
    with pytest.raises(InvalidTransition):  # collect twice
        services.fulfillment_collect(fulfillment_id=f.pk, pickup_code=f.pickup_code, user=associate)


def test_curbside_arrival(net, associate):
    order = place(("TEE-0", 1), fulfillment=pickup(method="curbside"))
    services.order_customer_arrived(number=order.number, note="blue car, bay 3")
    f = Fulfillment.objects.get(order=order)
    assert f.customer_arrived_at
    assert f.arrival_note == "blue car, bay 3"
    assert OrderEvent.objects.filter(order=order, type=EventType.CUSTOMER_ARRIVED).count() == 1
    shipped = place(("TEE-1", 1), email="s@example.com")
    with pytest.raises(PolicyViolation):
        services.order_customer_arrived(number=shipped.number, note="")


def test_short_pick_reroutes_the_missing_units(net, picker):
    order = place(("TEE-0", 4), ("TEE-1", 1))  # the warehouse fills both
    f = order.fulfillments.all()[0]
    assert f.location == net.wh
    wh_before = level(net.wh, net.skus[0])
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[PickIn("TEE-0", 1)], user=picker)
    wh_after = level(net.wh, net.skus[0])
    # 3 not found: reservation released and on hand counted down by 3
    assert (wh_before.on_hand - wh_after.on_hand, wh_before.reserved - wh_after.reserved) == (3, 3)
    count = StockMovement.objects.get(kind=MovementKind.CYCLE_COUNT, location=net.wh)
    assert count.on_hand_delta == -3
    assert count.reference == order.number
    fs = list(Fulfillment.objects.filter(order=order).order_by("pk"))
    assert len(fs) == 2
    new = fs[1]
    assert new.location != net.wh
    assert new.status == "pending"
    assert [(fl.sku.code, fl.quantity) for fl in new.lines.all()] == [("TEE-0", 3)]
    assert level(new.location, net.skus[0]).reserved == 3
    assert FulfillmentLine.objects.get(fulfillment=f, sku=net.skus[0]).quantity == 1
    types = set(OrderEvent.objects.filter(order=order).values_list("type", flat=True))
    assert {EventType.SHORT_PICK, EventType.REROUTED} <= types
    assert OrderLine.objects.get(order=order, sku=net.skus[0]).cancelled_quantity == 0
    assert ledger_mismatches() == []


def test_short_pick_with_nowhere_else_cancels_the_line(net):
    store_staff = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
    order = place(("TEE-0", 2), ("TEE-1", 1), fulfillment=pickup())  # pickup: only Shibuya may fill it
    f = order.fulfillments.all()[0]
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[PickIn("TEE-0", 1)], user=store_staff)
    line = OrderLine.objects.get(order=order, sku=net.skus[0])
    assert line.cancelled_quantity == 1
    order.refresh_from_db()
    assert order.total == Decimal("3960.00")  # 1 x TEE-0 + 1 x TEE-1
    ev = OrderEvent.objects.get(order=order, type=EventType.LINE_CANCELLED)
    assert ev.data["lines"] == [{"sku": "TEE-0", "quantity": 1}]
    lvl = level(net.shibuya, net.skus[0])
    assert (lvl.on_hand, lvl.reserved) == (2, 1)
    assert Fulfillment.objects.filter(order=order).count() == 1
    assert ledger_mismatches() == []


def test_short_pick_of_everything_cancels_the_fulfillment(net):
    store_staff = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
    order = place(("TEE-0", 1), fulfillment=pickup())
    f = order.fulfillments.all()[0]
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[PickIn("TEE-0", 0)], user=store_staff)
    f.refresh_from_db()
    order.refresh_from_db()
    assert f.status == "cancelled"
    assert order.status == OrderStatus.CANCELLED
    assert order.total == 0


def test_pick_rejects_bad_lines(net, picker):
    _, f = _ship_order(net)
    for picks in (
        [PickIn("TEE-2", 1)],
        [PickIn("TEE-0", 3)],
        [PickIn("TEE-0", 1), PickIn("TEE-0", 1)],
        [PickIn("TEE-0", -1)],
    ):
        with pytest.raises(InvalidInput):
            services.fulfillment_pick(fulfillment_id=f.pk, picks=picks, user=picker)
    assert Fulfillment.objects.get(pk=f.pk).status == "pending"
    services.fulfillment_pick(fulfillment_id=f.pk, picks=[], user=picker)
    with pytest.raises(InvalidTransition):
        services.fulfillment_pick(fulfillment_id=f.pk, picks=[], user=picker)


def test_cancel_order_releases_everything(net):
    order = place(("TEE-0", 12))  # split over two locations
    services.order_cancel(number=order.number, reason="changed my mind")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.total == 0
    assert not StockLevel.objects.filter(reserved__gt=0).exists()
    assert set(Fulfillment.objects.filter(order=order).values_list("status", flat=True)) == {"cancelled"}
    assert OrderEvent.objects.filter(order=order, type=EventType.CANCELLED).count() == 1
    with pytest.raises(InvalidTransition):
        services.order_cancel(number=order.number)
    assert ledger_mismatches() == []


def test_cancel_order_moves_each_fulfillment_through_the_transition_table(net, monkeypatch):
    """order_cancel changes statuses only through orders.transitions (issue 8): the table is
    consulted for every live fulfillment, and each gets its status-change event."""
    from orders import transitions

    checked = []
    real_check = transitions.check

    def recording_check(fulfillment, to_status):
        checked.append((fulfillment.pk, fulfillment.status, to_status))
        real_check(fulfillment, to_status)

    monkeypatch.setattr(transitions, "check", recording_check)
    order = place(("TEE-0", 12))  # split over two locations
    live = sorted(Fulfillment.objects.filter(order=order).values_list("pk", flat=True))
    services.order_cancel(number=order.number, reason="changed my mind")
    assert sorted(checked) == [(pk, "pending", "cancelled") for pk in live]
    changes = OrderEvent.objects.filter(
        order=order, type=EventType.FULFILLMENT_STATUS_CHANGED, to_status="cancelled"
    )
    assert sorted(changes.values_list("fulfillment_id", flat=True)) == live


def test_cancel_after_something_left_is_409(net, picker):
    order, f = _ship_order(net)
    services.fulfillment_claim(location=net.wh, user=picker)
    services.fulfillment_pack(fulfillment_id=f.pk, user=picker)
    services.fulfillment_ship(fulfillment_id=f.pk, carrier="Y", tracking_number="9", user=picker)
    with pytest.raises(InvalidTransition):
        services.order_cancel(number=order.number)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED


def test_cancel_one_fulfillment_of_two_partial_status(net, picker):
    order = place(("TEE-0", 12))
    fs = list(Fulfillment.objects.filter(order=order).order_by("pk"))
    wh = next(f for f in fs if f.location_id == net.wh.pk)
    other = next(f for f in fs if f.location_id != net.wh.pk)
    services.fulfillment_claim(location=net.wh, user=picker)
    services.fulfillment_pack(fulfillment_id=wh.pk, user=picker)
    services.fulfillment_ship(fulfillment_id=wh.pk, carrier="Y", tracking_number="1", user=picker)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PARTIALLY_SHIPPED
    services.fulfillment_cancel(fulfillment_id=other.pk, reason="damaged")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert (
        OrderLine.objects.get(order=order).cancelled_quantity
        == FulfillmentLine.objects.get(fulfillment=other).quantity
    )
    assert level(other.location, net.skus[0]).reserved == 0


def test_claim_oldest_first_and_none_when_empty(net, picker):
    first = place(("TEE-0", 1)).fulfillments.all()[0]
    second = place(("TEE-1", 1), email="b@example.com").fulfillments.all()[0]
    assert services.fulfillment_claim(location=net.wh, user=picker).pk == first.pk
    assert services.fulfillment_claim(location=net.wh, user=picker).pk == second.pk
    assert services.fulfillment_claim(location=net.wh, user=picker) is None


def test_events_reach_the_hook_in_the_transaction(net):
    from orders import hooks

    heard = []
    listener = hooks.on_order_events(lambda events: heard.extend(e.type for e in events))
    try:
        place(("TEE-0", 1))
    finally:
        hooks._listeners.remove(listener)
    assert heard == [EventType.PLACED, EventType.ROUTED]


def test_inactive_sku_is_refused(net):
    s = SkuFactory(code="OLD", is_active=False)
    stock(net.wh, s, 5)
    with pytest.raises(PolicyViolation):
        place(("OLD", 1))
    assert nothing_written()


def test_pickup_at_inactive_store_is_422(net):
    closed = LocationFactory(code="CLOSED", is_active=False)
    with pytest.raises(PickupNotOffered):
        place(("TEE-0", 1), fulfillment=pickup("CLOSED"))
    assert closed.pk


def test_short_pick_reroute_joins_a_pending_fulfillment_at_the_same_location(net, picker):
    stock(net.shibuya, net.skus[0], 5)  # Shibuya: 8
    order = place(("TEE-0", 12))  # warehouse 10 + Shibuya 2
    wh = Fulfillment.objects.get(order=order, location=net.wh)
    shibuya = Fulfillment.objects.get(order=order, location=net.shibuya)
    services.fulfillment_pick(fulfillment_id=wh.pk, picks=[PickIn("TEE-0", 7)], user=picker)
    assert Fulfillment.objects.filter(order=order).count() == 2  # no third fulfillment
    assert FulfillmentLine.objects.get(fulfillment=shibuya).quantity == 5
    assert level(net.shibuya, net.skus[0]).reserved == 5
    assert OrderEvent.objects.filter(order=order, type=EventType.REROUTED, fulfillment=shibuya).count() == 1
    assert ledger_mismatches() == []


def test_order_wide_changes_check_who_may_act_in_the_service(net, associate):
    """Called directly (as an admin action or a task would), order_cancel and order_customer_arrived
    refuse staff whose locations the order does not touch: 404 like every order read, nothing changed."""
    from orders.exceptions import UnknownOrder

    order = place(("TEE-0", 1))  # shipped from the warehouse: nothing at the associate's store
    with pytest.raises(UnknownOrder), transaction.atomic():
        services.order_cancel(number=order.number, user=associate)
    curbside = place(("TEE-1", 1), fulfillment=pickup("OSA-UMEDA", method="curbside"), email="c@example.com")
    with pytest.raises(UnknownOrder), transaction.atomic():
        services.order_customer_arrived(number=curbside.number, user=associate)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PLACED
    assert not Fulfillment.objects.filter(order=curbside, customer_arrived_at__isnull=False).exists()
    services.order_cancel(number=order.number)  # the system (no user) may
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
