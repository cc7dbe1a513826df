"""The short paths of order placement: pickup checked in the lookup and reserved last, the order's
rows in one statement, the 201 body built without serializers. Each must behave exactly like the
general path it replaces."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from inventory.exceptions import InsufficientStock
from inventory.models import Hold, StockLevel, StockMovement
from inventory.selectors import ledger_mismatches
from inventory.services import Line, hold_create, stock_reserve
from orders import selectors
from orders.api.serializers import OrderOut, order_created_body
from orders.models import Customer, Order, OrderEvent
from orders.routing import RoutingLine, RoutingRequest, pickup_record, route
from orders.services import PlacedFulfillment, PlacedOrder, fulfillment_claim, fulfillment_ready
from stores.models import Role
from tests.factories import make_staff, stock
from tests.orders.conftest import TOKYO, pickup, place, placed, ship

pytestmark = pytest.mark.django_db


def _level(loc, sku) -> StockLevel:
    return StockLevel.objects.get(location=loc, sku=sku)


# --- The 201 body ------------------------------------------------------------------------------


def _rows_of(order) -> PlacedOrder:
    """A PlacedOrder of an order read back through the ORM."""
    return PlacedOrder(
        order,
        list(order.lines.all()),
        [PlacedFulfillment(f, list(f.lines.all())) for f in order.fulfillments.all()],
        [],
    )


def _same_body(rows: PlacedOrder, *, show_code: bool) -> None:
    """The body built from the objects order_place returned equals OrderOut of the order as read back."""
    fresh = selectors._order_qs().get(pk=rows.order.pk)
    expected = OrderOut(fresh, context={"show_pickup_code": show_code}).data
    assert order_created_body(rows, show_pickup_code=show_code) == expected
    assert order_created_body(_rows_of(fresh), show_pickup_code=show_code) == expected


@pytest.mark.parametrize("show_code", [True, False])
def test_body_of_a_pickup_order_equals_the_serializer(net, show_code):
    rows = placed(("TEE-0", 2), fulfillment=pickup(), email="body@example.com")
    _same_body(rows, show_code=show_code)


def test_body_of_a_split_ship_order_equals_the_serializer(net):
    """12 units: no single location has them, so two fulfillments with their own lines."""
    rows = placed(("TEE-0", 12), ("TEE-1", 1), fulfillment=ship(TOKYO), currency="USD", email="s@example.com")
    assert rows.order.fulfillments.count() == 2
    _same_body(rows, show_code=True)


def test_body_of_an_endless_aisle_order_equals_the_serializer(net):
    associate = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
    rows = placed(("TEE-1", 1), channel="store", user=associate, email="till@example.com")
    assert rows.order.placed_at_location == net.shibuya
    _same_body(rows, show_code=False)


def test_body_after_transitions_equals_the_serializer(net):
    order = place(("TEE-0", 1), fulfillment=pickup(), email="later@example.com")
    staff = make_staff(role=Role.ASSOCIATE, locations=[net.shibuya])
    f = fulfillment_claim(location=net.shibuya, user=staff)
    fulfillment_ready(fulfillment_id=f.pk, user=staff)
    fresh = selectors._order_qs().get(pk=order.pk)
    assert fresh.fulfillments.all()[0].pickup_code
    _same_body(_rows_of(fresh), show_code=True)


# --- Pickup: the routing record without the routing read ----------------------------------------


def test_pickup_decision_is_what_routing_records(net):
    request = RoutingRequest(
        lines=(RoutingLine(net.skus[0].pk, 2), RoutingLine(net.skus[1].pk, 1)),
        method="curbside",
        pickup_location_id=net.shibuya.pk,
    )
    routed = route(request)
    assert routed.complete
    lines = [(s.pk, s.code, q) for s, q in ((net.skus[0], 2), (net.skus[1], 1))]
    assert pickup_record(method="curbside", store=net.shibuya, lines=lines) == routed.as_json()
    assert routed.location_codes == {net.shibuya.pk: net.shibuya.code}


def test_pickup_order_records_the_chosen_store_and_reserves_there(net):
    order = place(("TEE-0", 3), fulfillment=pickup(), email="all3@example.com")
    routed = OrderEvent.objects.get(order=order, type="routed")
    assert routed.data["allocations"] == [
        {
            "location": "TKY-SHIBUYA",
            "location_id": net.shibuya.pk,
            "sku": "TEE-0",
            "sku_id": net.skus[0].pk,
            "quantity": 3,
        }
    ]
    assert routed.data["considered"][0]["reasons"] == [
        "the customer's chosen store for pickup",
        "can fill the whole order",
    ]
    assert _level(net.shibuya, net.skus[0]).reserved == 3
    assert StockMovement.objects.filter(reference=order.number, kind="reservation").count() == 1
    assert ledger_mismatches() == []


# --- Pickup: the stock check in the lookup ------------------------------------------------------


def test_sold_out_pickup_is_409_with_nearby_stock_and_writes_nothing(net):
    customers, orders = Customer.objects.count(), Order.objects.count()
    with pytest.raises(InsufficientStock) as exc:
        place(("TEE-0", 4), fulfillment=pickup(), email="nobody-yet@example.com")
    line = exc.value.details["lines"][0]
    assert (line["sku"], line["requested"], line["available"], line["shortfall"]) == ("TEE-0", 4, 3, 1)
    # every location with units of the SKU, the chosen store too (it has some), nearest first
    assert [n["location"] for n in line["nearby"]] == ["TKY-SHIBUYA", "WH-KAWASAKI", "OSA-UMEDA"]
    assert exc.value.details["method"] == "pickup"
    assert (Customer.objects.count(), Order.objects.count()) == (customers, orders)
    assert _level(net.shibuya, net.skus[0]).reserved == 0


def test_only_the_short_lines_are_listed(net):
    with pytest.raises(InsufficientStock) as exc:
        place(("TEE-0", 1), ("TEE-1", 5), fulfillment=pickup(), email="two@example.com")
    assert [ln["sku"] for ln in exc.value.details["lines"]] == ["TEE-1"]


def test_a_live_hold_at_the_store_counts_against_the_lookup(net):
    hold_create(lines=[Line(net.shibuya.pk, net.skus[0].pk, 2)])
    with pytest.raises(InsufficientStock) as exc:
        place(("TEE-0", 2), fulfillment=pickup(), email="held-out@example.com")
    assert exc.value.details["lines"][0]["available"] == 1


def test_an_expired_hold_at_the_store_does_not_block(net):
    hold = hold_create(lines=[Line(net.shibuya.pk, net.skus[0].pk, 3)])
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    hold.lines.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    order = place(("TEE-0", 3), fulfillment=pickup(), email="after-expiry@example.com")
    lvl = _level(net.shibuya, net.skus[0])
    assert (lvl.reserved, lvl.held) == (3, 0)  # the expired hold was reclaimed by the reservation
    assert order.fulfillments.get().location == net.shibuya
    assert ledger_mismatches() == []


def test_safety_stock_counts_in_the_lookup(net):
    StockLevel.objects.filter(location=net.shibuya, sku=net.skus[0]).update(safety_stock=2)
    with pytest.raises(InsufficientStock) as exc:
        place(("TEE-0", 2), fulfillment=pickup(), email="safety@example.com")
    assert exc.value.details["lines"][0]["available"] == 1
    place(("TEE-0", 1), fulfillment=pickup(), email="safety@example.com")


# --- Pickup: the reservation comes last -----------------------------------------------------------


def test_stock_taken_after_the_lookup_rolls_the_whole_order_back(net, monkeypatch):
    """The lookup saw 3 units; between the lookup and the reservation (placement's last step)
    another buyer takes them, here from an order-event listener in the same transaction: the
    reservation fails and nothing of the order remains."""
    from orders import hooks

    customers = Customer.objects.count()

    def someone_else_takes_them(events):
        order = events[0].order
        assert Order.objects.filter(pk=order.pk).exists()  # written, not yet reserved
        assert _level(net.shibuya, net.skus[0]).reserved == 0
        stock_reserve(lines=[Line(net.shibuya.pk, net.skus[0].pk, 3)], reference="someone else")

    monkeypatch.setattr(hooks, "_listeners", [*hooks._listeners, someone_else_takes_them])

    def order_then_stock_gone():
        place(("TEE-0", 3), fulfillment=pickup(), email="raced@example.com")

    with pytest.raises(InsufficientStock) as exc:
        order_then_stock_gone()
    assert exc.value.details["lines"][0]["nearby"]  # the same 409 as a sold-out lookup
    assert not Order.objects.filter(customer__email="raced@example.com").exists()
    assert Customer.objects.count() == customers
    assert _level(net.shibuya, net.skus[0]).reserved == 0
    assert ledger_mismatches() == []


def test_ship_orders_still_reserve_before_their_rows(net):
    with transaction.atomic():
        order = place(("TEE-2", 1), fulfillment=ship(TOKYO), email="ship@example.com")
        assert StockMovement.objects.filter(reference=order.number).exists()


# --- The customer written with the order -------------------------------------------------------


def test_a_new_customer_is_created_with_the_order(net):
    order = place(("TEE-0", 1), fulfillment=pickup(), email="Fresh@Example.com")
    c = Customer.objects.get(email="fresh@example.com")
    assert order.customer.pk == c.pk
    assert order.customer_id == c.pk
    assert c.notify_channels == ["email"]
    assert Order.objects.get(pk=order.pk).customer_id == c.pk


def test_a_returning_customer_is_not_inserted_again(net):
    first = place(("TEE-0", 1), fulfillment=pickup(), email="back@example.com")
    second = place(("TEE-1", 1), fulfillment=ship(TOKYO), email="back@example.com")
    assert first.customer_id == second.customer_id
    assert Customer.objects.filter(email="back@example.com").count() == 1


def test_a_phone_only_customer(net):
    from orders.services import CustomerIn, LineIn, order_place

    order = order_place(
        channel="app",
        customer=CustomerIn(phone="090-1234-5678", name="Ken"),
        fulfillment=pickup(),
        lines=[LineIn(sku="TEE-0", quantity=1, unit_price="1980")],
        currency="JPY",
    ).order
    c = Customer.objects.get(phone="+819012345678")
    assert order.customer_id == c.pk
    assert c.email is None
    assert c.notify_channels == ["sms"]


# --- The nearby stock of a sell-out, reused for a moment ----------------------------------------


@pytest.fixture
def nearby_cache(settings):

    cache.clear()
    settings.OMS = {**settings.OMS, "NEARBY_CACHE_SECONDS": 0.3}
    yield
    cache.clear()


def _sold_out_409(email):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx, pytest.raises(InsufficientStock) as exc:
        place(("TEE-0", 4), fulfillment=pickup(), email=email)
    reads = [q for q in ctx.captured_queries if "inventory_stocklevel" in q["sql"]]
    return exc.value.details["lines"][0]["nearby"], len(reads)


def test_a_sell_out_reuses_its_nearby_stock_for_a_moment(net, nearby_cache):
    import time

    first, reads_first = _sold_out_409("a1@example.com")
    again, reads_again = _sold_out_409("a2@example.com")
    assert again == first
    assert reads_first == 3  # the lookup's store stock, then routing's two nearby reads
    assert reads_again == 1  # the lookup only
    stock(net.osaka, net.skus[0], 7)  # more nearby: shown once the answer is older than the setting
    time.sleep(0.35)
    later, reads_later = _sold_out_409("a3@example.com")
    assert reads_later == 3
    assert {n["location"]: n["available"] for n in later}["OSA-UMEDA"] == 12


def test_the_nearby_answer_is_per_skus_and_store(net, nearby_cache):
    _sold_out_409("b1@example.com")
    with pytest.raises(InsufficientStock) as exc:
        place(("TEE-1", 4), fulfillment=pickup(), email="b2@example.com")
    assert exc.value.details["lines"][0]["sku"] == "TEE-1"
    assert {n["location"] for n in exc.value.details["lines"][0]["nearby"]} >= {"WH-KAWASAKI"}
    with pytest.raises(InsufficientStock) as exc:
        place(("TEE-0", 6), fulfillment=pickup("OSA-UMEDA"), email="b3@example.com")
    assert exc.value.details["lines"][0]["nearby"][0]["location"] == "OSA-UMEDA"  # nearest to Osaka


def test_a_new_customer_with_email_and_phone(net):
    from orders.services import CustomerIn, LineIn, order_place

    order = order_place(
        channel="web",
        customer=CustomerIn(email="both@example.com", phone="080-1111-2222", name="Both"),
        fulfillment=pickup(),
        lines=[LineIn(sku="TEE-0", quantity=1, unit_price="1980")],
        currency="JPY",
    ).order
    c = Customer.objects.get(email="both@example.com")
    assert (c.phone, order.customer_id) == ("+818011112222", c.pk)
    again = order_place(
        channel="store",
        customer=CustomerIn(phone="080-1111-2222"),
        fulfillment=pickup(),
        lines=[LineIn(sku="TEE-1", quantity=1, unit_price="1980")],
        currency="JPY",
    ).order
    assert again.customer_id == c.pk


def test_a_deferred_store_reservation_is_taken_by_order_reserve_at_store(net):
    """reserve_at_store_later: the order's rows are written, the reservation is handed back as
    PlacedOrder.store_reservation and taken by order_reserve_at_store in the same transaction."""
    from orders.services import order_reserve_at_store

    with transaction.atomic():
        rows = placed(
            ("TEE-0", 2), fulfillment=pickup(), email="later@example.com", reserve_at_store_later=True
        )
        assert rows.store_reservation is not None
        assert _level(net.shibuya, net.skus[0]).reserved == 0
        order_reserve_at_store(reservation=rows.store_reservation)
    assert _level(net.shibuya, net.skus[0]).reserved == 2
    assert ledger_mismatches() == []
    ship_rows = placed(
        ("TEE-2", 1), fulfillment=ship(TOKYO), email="ship@example.com", reserve_at_store_later=True
    )
    assert ship_rows.store_reservation is None  # only a pickup at a store defers anything


def test_a_refused_order_dooms_the_callers_transaction_unless_it_has_its_own_savepoint(net):
    """order_place joins its caller's transaction without a savepoint (the flash sale's path): a
    caller can never carry on as if a refused placement had not happened. With its own atomic()
    around the call, it can."""
    from django.db.transaction import TransactionManagementError

    from config.errors import InvalidInput
    from orders.services import order_place

    with transaction.atomic():
        with pytest.raises(InvalidInput):
            order_place(**_bad_currency(net))
        with pytest.raises(TransactionManagementError):
            Order.objects.count()
    with transaction.atomic():
        with pytest.raises(InvalidInput), transaction.atomic():
            order_place(**_bad_currency(net))
        assert Order.objects.count() == 0


def _bad_currency(net) -> dict:
    from orders.services import CustomerIn, LineIn

    return {
        "channel": "web",
        "customer": CustomerIn(email="doom@example.com"),
        "fulfillment": pickup(),
        "lines": [LineIn(sku="TEE-0", quantity=1, unit_price="1980")],
        "currency": "XXX",
    }
