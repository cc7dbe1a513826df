"""The associates' Pickups page (orders/admin_pickups.py), clicked through as at the counter."""

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import StockLevel
from notifications.models import Notification
from orders.models import EventType, Fulfillment, FulfillmentStatus, Order, OrderEvent, OrderNote
from orders.services import (
    CustomerIn,
    fulfillment_ready,
    fulfillment_start,
    order_customer_arrived,
    order_place,
)
from returns.models import Refund
from stores.models import Role
from tests.factories import LocationFactory, make_staff, stock
from tests.orders.conftest import lines, pickup, place

pytestmark = pytest.mark.django_db

PAGE = "/admin/orders/pickup/"


def card(f) -> str:
    return f"{PAGE}{f.pk}/change/"


def login(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    c = Client()
    c.force_login(user)
    return c


def pickup_order(
    net, *pairs, method="pickup", phone="090-1234-5678", name="Aiko Tanaka", email=None, note=""
):
    placed = order_place(
        channel="web",
        customer=CustomerIn(email=email or f"{name.split()[0].lower()}@example.com", phone=phone, name=name),
        fulfillment=pickup(method=method),
        lines=lines(*pairs),
        currency="JPY",
        note=note,
    )
    return placed.order.fulfillments.exclude(method="to_store").get()


def ready(f, user):
    fulfillment_start(fulfillment_id=f.pk, user=user)
    return fulfillment_ready(fulfillment_id=f.pk, user=user)


@pytest.fixture
def associate(net):
    return make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])


@pytest.fixture
def counter(associate):
    return login(associate)


def listed(r) -> list[int]:
    return [f.pk for f in r.context["cl"].result_list]


def test_queue_counts_and_order_arrivals_first(net, associate, counter):
    to_pick = pickup_order(net, ("TEE-0", 1), phone="090-2345-0001", name="Ko One")
    ready_one = ready(pickup_order(net, ("TEE-1", 1), phone="090-2345-0002", name="Ko Two"), associate)
    curbside = pickup_order(net, ("TEE-2", 1), method="curbside", phone="090-2345-0003", name="Ko Three")
    in_person = ready(pickup_order(net, ("TEE-0", 1), phone="090-2345-0004", name="Ko Four"), associate)
    order_customer_arrived(number=in_person.order.number, user=associate)
    order_customer_arrived(number=curbside.order.number, user=associate)
    elsewhere = place(
        ("TEE-0", 1), fulfillment=pickup("OSA-UMEDA"), email="far@example.com"
    ).fulfillments.get()

    r = counter.get(PAGE)
    assert r.status_code == 200
    assert listed(r) == [curbside.pk, in_person.pk, to_pick.pk, ready_one.pk]
    assert elsewhere.pk not in listed(r)
    tiles = {name: n for name, _, n in r.context["counter_tiles"]}
    assert tiles == {
        "arrived_curbside": 1,
        "arrived_in_person": 1,
        "to_pick": 2,
        "ready": 2,
        "overdue": 0,
        "expiring_today": 0,
        "in_transit": 0,
    }
    assert listed(counter.get(PAGE, {"tile": "ready"})) == [in_person.pk, ready_one.pk]
    assert listed(counter.get(PAGE, {"tile": "arrived_curbside"})) == [curbside.pk]


def test_overdue_and_expiring_today(net, associate, counter):
    late = pickup_order(net, ("TEE-0", 1), name="Late Pick")
    Fulfillment.objects.filter(pk=late.pk).update(created_at=timezone.now() - dt.timedelta(hours=3))
    gone = ready(pickup_order(net, ("TEE-1", 1), name="Window Over"), associate)
    Fulfillment.objects.filter(pk=gone.pk).update(pickup_expires_at=timezone.now() - dt.timedelta(minutes=1))
    today = ready(pickup_order(net, ("TEE-2", 1), name="Last Day"), associate)
    Fulfillment.objects.filter(pk=today.pk).update(
        pickup_expires_at=timezone.now() + dt.timedelta(seconds=30)
    )
    fresh = ready(pickup_order(net, ("TEE-0", 1), name="Fresh"), associate)

    r = counter.get(PAGE)
    tiles = {name: n for name, _, n in r.context["counter_tiles"]}
    assert (tiles["overdue"], tiles["expiring_today"], tiles["ready"]) == (2, 1, 3)
    assert set(listed(counter.get(PAGE, {"tile": "overdue"}))) == {late.pk, gone.pk}
    assert listed(counter.get(PAGE, {"tile": "expiring_today"})) == [today.pk]
    assert fresh.pk not in listed(counter.get(PAGE, {"tile": "expiring_today"}))


@pytest.mark.parametrize(
    "typed",
    [
        "090-1234-5678",
        "09012345678",
        "+81 90 1234 5678",
        "+81-90-1234-5678",
        "\uff10\uff19\uff10\uff0d\uff11\uff12\uff13\uff14\uff0d\uff15\uff16\uff17\uff18",
    ],
)
def test_find_by_phone_the_way_customers_say_it(net, counter, typed):
    mine = pickup_order(net, ("TEE-0", 1), phone="090-1234-5678", name="Aiko Tanaka")
    other = pickup_order(net, ("TEE-1", 1), phone="090-8765-4321", name="Ren Sato")
    found = listed(counter.get(PAGE, {"q": typed}))
    assert found == [mine.pk]
    assert other.pk not in found


def test_find_by_number_email_name_and_code(net, associate, counter):
    f = ready(pickup_order(net, ("TEE-0", 1), name="Aiko Tanaka", email="aiko.t@example.com"), associate)
    other = ready(pickup_order(net, ("TEE-1", 1), name="Ren Sato", phone="090-3456-0000"), associate)
    code = f.pickup_code
    for typed in (
        f.order.number,
        f.order.number.lower(),
        "AIKO.T@example.com",
        "tanaka",
        code,
        code.lower(),
        f"{code[:4]}-{code[4:]}",
    ):
        assert listed(counter.get(PAGE, {"q": typed})) == [f.pk], typed
    assert listed(counter.get(PAGE, {"q": "nobody-here"})) == []
    assert other.pk not in listed(counter.get(PAGE, {"q": code}))


def test_another_stores_pickup_is_not_found_nor_opened(net, counter):
    far = place(("TEE-0", 1), fulfillment=pickup("OSA-UMEDA"), email="far@example.com").fulfillments.get()
    assert listed(counter.get(PAGE, {"q": far.order.number})) == []
    r = counter.get(card(far))
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/admin/")
    before = Fulfillment.objects.filter(pk=far.pk).values().get()
    r = counter.post(card(far), {"step": "start"})
    assert r.status_code == 302
    assert Fulfillment.objects.filter(pk=far.pk).values().get() == before
    assert not OrderEvent.objects.filter(fulfillment=far, type=EventType.FULFILLMENT_STATUS_CHANGED).exists()


def test_warehouse_staff_and_storefront_have_no_counter(net):
    wh = login(make_staff(role=Role.WAREHOUSE, locations=[net.wh]))
    assert wh.get(PAGE).status_code == 403


def test_card_shows_what_the_customer_said_lines_timeline_and_other_orders(net, associate, counter):
    f = pickup_order(net, ("TEE-0", 2), note="My husband will collect")
    OrderNote.objects.create(
        order=f.order, text="Called: wants gift wrap", channel="phone", author_name="Mika"
    )
    other = place(("TEE-1", 1), email="aiko@example.com")  # the same customer, shipped from the warehouse
    Order.objects.filter(pk=other.pk).update(customer=f.order.customer)
    net.skus[0].image_url = "/static/demo/skus/tee.svg"
    net.skus[0].save()
    r = counter.get(card(f))
    assert r.status_code == 200
    page = r.content.decode()
    assert "My husband will collect" in page
    assert "Called: wants gift wrap" in page
    assert 'src="/static/demo/skus/tee.svg"' in page
    assert other.number in page
    assert "Order placed" in page  # the timeline


def test_every_step_from_the_card_is_in_the_timeline(net, associate, counter):
    f = pickup_order(net, ("TEE-0", 1), ("TEE-1", 2))
    counter.post(card(f), {"step": "start"})
    f.refresh_from_db()
    assert f.status == FulfillmentStatus.PICKING
    counter.post(card(f), {"step": "ready"})
    f.refresh_from_db()
    assert f.status == FulfillmentStatus.READY_FOR_PICKUP
    assert f.pickup_code
    assert Notification.objects.filter(order_id=f.order_id).exists()  # the code went to the customer
    counter.post(card(f), {"step": "arrived"})
    f.refresh_from_db()
    assert f.customer_arrived_at is not None
    counter.post(card(f), {"step": "extend", "days": "2", "reason": "customer phoned: away this week"})
    f.refresh_from_db()
    assert f.pickup_extended_at is not None
    r = counter.post(card(f), {"step": "extend", "days": "2", "reason": "again"}, follow=True)
    assert "already extended" in r.content.decode()
    counter.post(card(f), {"step": "note", "text": "Paid attention to the gift wrap"})
    assert OrderNote.objects.filter(order_id=f.order_id, channel="store").count() == 1
    level = StockLevel.objects.get(location=net.shibuya, sku=net.skus[1])
    r = counter.post(
        card(f), {"step": "partial", "pickup_code": f.pickup_code, "taken_TEE-0": "1", "taken_TEE-1": "1"}
    )
    f.refresh_from_db()
    assert f.status == FulfillmentStatus.COLLECTED
    after = StockLevel.objects.get(pk=level.pk)
    assert (after.on_hand, after.reserved) == (level.on_hand - 1, level.reserved - 2)
    assert Refund.objects.filter(order_id=f.order_id).count() == 1
    types = list(OrderEvent.objects.filter(order_id=f.order_id).values_list("type", "channel"))
    for t in ("customer_arrived", "pickup_extended", "fulfillment_status_changed"):
        assert (t, "admin") in types, t


def test_hand_over_after_a_wrong_then_the_right_code(net, associate, counter):
    f = ready(pickup_order(net, ("TEE-0", 1)), associate)
    wrong = "22222222" if f.pickup_code != "22222222" else "33333333"
    r = counter.post(card(f), {"step": "collect", "pickup_code": wrong}, follow=True)
    assert "does not match" in r.content.decode()
    f.refresh_from_db()
    assert (f.status, f.pickup_code_attempts) == (FulfillmentStatus.READY_FOR_PICKUP, 1)
    assert OrderEvent.objects.filter(fulfillment=f, type=EventType.PICKUP_CODE_REFUSED).count() == 1
    r = counter.post(card(f), {"step": "collect", "pickup_code": f.pickup_code.lower()}, follow=True)
    assert "collected" in r.content.decode()
    f.refresh_from_db()
    assert f.status == FulfillmentStatus.COLLECTED
    # Collecting twice: refused, nothing changes.
    before = Fulfillment.objects.filter(pk=f.pk).values().get()
    r = counter.post(card(f), {"step": "collect", "pickup_code": f.pickup_code}, follow=True)
    assert r.status_code == 200
    assert "cannot go from collected" in r.content.decode()
    assert Fulfillment.objects.filter(pk=f.pk).values().get() == before


@pytest.mark.parametrize(
    ("step", "form", "says"),
    [
        ("collect", {"pickup_code": "ANY"}, "cannot go from pending"),  # not ready
        ("ready", {}, "cannot go from pending"),  # not picked yet
        ("extend", {"days": "2", "reason": "x"}, "Only a fulfillment waiting for pickup"),
        ("extend", {"days": "two", "reason": "x"}, "whole number"),
        ("bogus", {}, "not available"),
        ("note", {"text": "  "}, "text is required"),
    ],
)
def test_refused_steps_change_nothing(net, counter, step, form, says):
    f = pickup_order(net, ("TEE-0", 1))
    before = Fulfillment.objects.filter(pk=f.pk).values().get()
    events = OrderEvent.objects.count()
    r = counter.post(card(f), {"step": step, **form}, follow=True)
    assert r.status_code == 200
    assert says.lower() in r.content.decode().lower()
    assert Fulfillment.objects.filter(pk=f.pk).values().get() == before
    assert OrderEvent.objects.count() == events
    assert not OrderNote.objects.exists()


def test_partial_hand_over_of_more_than_ordered_is_refused(net, associate, counter):
    f = ready(pickup_order(net, ("TEE-0", 1)), associate)
    before = Fulfillment.objects.filter(pk=f.pk).values().get()
    r = counter.post(
        card(f), {"step": "partial", "pickup_code": f.pickup_code, "taken_TEE-0": "5"}, follow=True
    )
    assert "TEE-0" in r.content.decode()
    assert Fulfillment.objects.filter(pk=f.pk).values().get() == before


def test_two_stores_one_associate_choose_a_store(net):
    both = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya, net.osaka])
    c = login(both)
    a = pickup_order(net, ("TEE-0", 1))
    b = place(("TEE-0", 1), fulfillment=pickup("OSA-UMEDA"), email="far@example.com").fulfillments.get()
    assert set(listed(c.get(PAGE))) == {a.pk, b.pk}
    r = c.get(PAGE, {"store": "OSA-UMEDA"})
    assert listed(r) == [b.pk]
    assert r.context["title"] == f"Pickups at {net.osaka.name}"
    assert {n for _, _, n in r.context["counter_tiles"]} == {0, 1}


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200
    return len(ctx.captured_queries)


def test_the_number_of_queries_does_not_grow_with_the_orders_shown(net, associate, counter):
    for s in net.skus:
        stock(net.shibuya, s, 100)
    pickup_order(net, ("TEE-0", 1), ("TEE-1", 1))
    f = ready(pickup_order(net, ("TEE-2", 1), phone="090-2345-0009"), associate)
    few_list, few_card = _queries(counter, PAGE), _queries(counter, card(f))
    for i in range(30):
        g = pickup_order(net, ("TEE-0", 1), ("TEE-1", 1), ("TEE-2", 1), phone=f"090-1000-{i:04d}")
        if i % 2:
            ready(g, associate)
    # The same customer's other open orders on the card: more of them, no more queries.
    Order.objects.filter(contact_phone__startswith="+8190100").update(customer=f.order.customer)
    assert _queries(counter, PAGE) == few_list
    assert _queries(counter, card(f)) == few_card


def test_store_timezone_decides_expiring_today(net, associate):
    """ "Today" is the store's day: a window ending before the store's own midnight expires today."""
    honolulu = LocationFactory(code="HNL-1", timezone="Pacific/Honolulu", latitude=21.3, longitude=-157.8)
    for s in net.skus:
        stock(honolulu, s, 5)
    c = login(make_staff(role=Role.ASSOCIATE, locations=[honolulu]))
    f = ready(pickup_order(net, ("TEE-0", 1)), associate)  # at Shibuya: not on the Honolulu page
    assert {n for _, _, n in c.get(PAGE).context["counter_tiles"]} == {0}
    assert f.pk not in listed(c.get(PAGE))


def test_the_card_never_shows_the_pickup_code(net, associate, counter):
    f = ready(pickup_order(net, ("TEE-0", 1)), associate)
    for url in (card(f), PAGE, f"{PAGE}?tile=ready"):
        page = counter.get(url).content.decode()
        assert f.pickup_code not in page, url
        assert f"{f.pickup_code[:4]}-{f.pickup_code[4:]}" not in page, url


def test_load_into_a_locker_and_take_it_out_from_the_card(net, associate, counter):
    from stores.models import Compartment, PickupPoint

    bank = PickupPoint.objects.create(code="SBY-L1", store=net.shibuya, name="Shibuya lockers")
    a1 = Compartment.objects.create(pickup_point=bank, label="A1")
    Compartment.objects.create(pickup_point=bank, label="A2")
    f = ready(pickup_order(net, ("TEE-0", 1)), associate)
    old_code = f.pickup_code
    page = counter.get(card(f)).content.decode()
    assert 'value="SBY-L1:A1"' in page
    assert 'value="SBY-L1:A2"' in page
    # No compartment chosen: refused, nothing changes.
    before = Fulfillment.objects.filter(pk=f.pk).values().get()
    r = counter.post(card(f), {"step": "locker", "compartment": ""}, follow=True)
    assert "Choose a free compartment" in r.content.decode()
    assert Fulfillment.objects.filter(pk=f.pk).values().get() == before

    r = counter.post(card(f), {"step": "locker", "compartment": "SBY-L1:A1"}, follow=True)
    f.refresh_from_db()
    assert f.compartment_id == a1.pk
    assert f.pickup_code != old_code  # the customer was sent a new code for the locker
    page = r.content.decode()
    assert "In locker" in page
    assert 'id="collect"' not in page  # handed over by the locker, not at the counter
    assert "In locker SBY-L1, A1" in counter.get(PAGE).content.decode()
    # A2 is still free for the next order; A1 is not offered.
    g = ready(pickup_order(net, ("TEE-1", 1), phone="090-2345-0009"), associate)
    page = counter.get(card(g)).content.decode()
    assert 'value="SBY-L1:A2"' in page
    assert 'value="SBY-L1:A1"' not in page
    # Taken out: back at the counter.
    counter.post(card(f), {"step": "unload", "reason": "customer came to the counter"})
    f.refresh_from_db()
    assert f.compartment_id is None
    assert f.status == FulfillmentStatus.READY_FOR_PICKUP
    types = set(OrderEvent.objects.filter(fulfillment=f, channel="admin").values_list("type", flat=True))
    assert {"locker_loaded", "locker_unloaded"} <= types


def test_in_transit_to_store_has_its_tile_and_is_overdue_after_its_day(net, counter):
    from stores.models import Location

    Location.objects.filter(pk=net.shibuya.pk).update(ship_to_store=True, transit_days=2)
    f = pickup_order(net, ("TEE-0", 5))  # Shibuya has 3: 2 come from the warehouse
    assert f.status == FulfillmentStatus.AWAITING_TRANSFER
    r = counter.get(PAGE)
    tiles = {name: n for name, _, n in r.context["counter_tiles"]}
    assert (tiles["in_transit"], tiles["to_pick"], tiles["overdue"]) == (1, 0, 0)
    assert listed(counter.get(PAGE, {"tile": "in_transit"})) == [f.pk]
    assert "(in transit)" in r.content.decode()
    page = counter.get(card(f)).content.decode()
    assert "In transit to the store" in page
    assert 'id="collect"' not in page
    # The promised day has passed: overdue.
    Fulfillment.objects.filter(pk=f.pk).update(ready_by=timezone.localdate() - dt.timedelta(days=2))
    assert listed(counter.get(PAGE, {"tile": "overdue"})) == [f.pk]


def test_an_order_whose_window_ended_is_not_loaded_into_a_locker(net, associate, counter):
    from stores.models import Compartment, PickupPoint

    bank = PickupPoint.objects.create(code="SBY-L1", store=net.shibuya, name="Shibuya lockers")
    Compartment.objects.create(pickup_point=bank, label="A1")
    f = ready(pickup_order(net, ("TEE-0", 1)), associate)
    Fulfillment.objects.filter(pk=f.pk).update(pickup_expires_at=timezone.now() - dt.timedelta(minutes=1))
    before = Fulfillment.objects.filter(pk=f.pk).values().get()
    events = OrderEvent.objects.count()
    r = counter.post(card(f), {"step": "locker", "compartment": "SBY-L1:A1"}, follow=True)
    assert "pickup window of this order has ended" in r.content.decode()
    assert Fulfillment.objects.filter(pk=f.pk).values().get() == before
    assert OrderEvent.objects.count() == events
