"""The routing engine: pipeline decisions, eligibility, reasons, nearby sources, query budget."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from inventory.models import HoldLine
from inventory.services import Line, hold_create, stock_reserve
from orders.models import Customer, Fulfillment, FulfillmentStatus, Order
from orders.routing import RoutingLine, RoutingRequest, nearby_sources, route
from stores.models import LocationKind
from tests.factories import LocationFactory, SkuFactory, WarehouseFactory, stock

pytestmark = pytest.mark.django_db

DEST = (35.6812, 139.7671)  # Tokyo station


def at(km_north: float) -> dict:
    """Coordinates about `km_north` km north of DEST."""
    return {"latitude": DEST[0] + km_north / 111.2, "longitude": DEST[1]}


def ship(*lines, dest=DEST, exclude=()):
    return route(
        RoutingRequest(
            lines=tuple(RoutingLine(sku.pk, q) for sku, q in lines),
            method="ship",
            destination=dest,
            exclude_location_ids=frozenset(loc.pk for loc in exclude),
        )
    )


def allocs(decision) -> list[tuple[str, str, int]]:
    return sorted((a["location"], a["sku"], a["quantity"]) for a in decision.as_json()["allocations"])


def entry(decision, code: str) -> dict:
    return next(c for c in decision.considered if c["location"] == code)


def reasons(decision, code: str) -> str:
    return " | ".join(entry(decision, code)["reasons"])


@pytest.fixture
def skus(db):
    return [SkuFactory(code=f"SKU-{c}") for c in "ABCDE"]


def test_single_location_preferred_over_a_nearer_split(skus):
    a, b, _, _, _ = skus
    near1 = LocationFactory(code="NEAR-1", **at(1))
    near2 = LocationFactory(code="NEAR-2", **at(2))
    far = WarehouseFactory(code="FAR-WH", **at(300))
    stock(near1, a, 5)
    stock(near2, b, 5)
    stock(far, a, 5)
    stock(far, b, 5)

    d = ship((a, 2), (b, 1))

    assert d.complete
    assert allocs(d) == [("FAR-WH", "SKU-A", 2), ("FAR-WH", "SKU-B", 1)]
    assert "can fill the whole order on its own" in reasons(d, "FAR-WH")
    assert "SingleLocationFirst" in reasons(d, "NEAR-1")
    assert "short: no stock of SKU-B" in reasons(d, "NEAR-1")
    assert entry(d, "NEAR-1")["chosen"] is False


def test_fewest_shipments_two_beats_three_even_when_the_three_are_nearer(skus):
    a, b, c, _, _ = skus
    la, lb, lc = (LocationFactory(code=f"NEAR-{s}", **at(i + 1)) for i, s in enumerate("ABC"))
    stock(la, a, 5)
    stock(lb, b, 5)
    stock(lc, c, 5)
    far_ab = WarehouseFactory(code="FAR-AB", **at(200))
    far_c = WarehouseFactory(code="FAR-C", **at(250))
    stock(far_ab, a, 5)
    stock(far_ab, b, 5)
    stock(far_c, c, 5)

    d = ship((a, 1), (b, 1), (c, 1))

    assert d.complete
    assert {x[0] for x in allocs(d)} == {"FAR-AB", "NEAR-C"}
    assert "2 shipments" in reasons(d, "FAR-AB")


def test_nearest_wins_among_single_locations(skus):
    a = skus[0]
    for km in (50, 5, 20):
        stock(LocationFactory(code=f"S-{km}", **at(km)), a, 3)

    d = ship((a, 3))

    assert allocs(d) == [("S-5", "SKU-A", 3)]
    assert reasons(d, "S-20").startswith("step 1: farther: ")
    assert entry(d, "S-5")["distance_km"] == pytest.approx(5, abs=0.1)


def test_priority_breaks_a_distance_tie_and_code_breaks_the_rest(skus):
    a = skus[0]
    for code, prio in (("P-B", 10), ("P-A", 50), ("P-C", 10)):
        stock(LocationFactory(code=code, fulfillment_priority=prio, **at(3)), a, 3)

    d = ship((a, 1))

    assert allocs(d) == [("P-B", "SKU-A", 1)]
    assert "lower priority: 50" in reasons(d, "P-A")
    assert "location code decides" in reasons(d, "P-C")


def test_without_destination_priority_decides(skus):
    a = skus[0]
    stock(LocationFactory(code="X-1", fulfillment_priority=20, **at(1)), a, 3)
    stock(LocationFactory(code="X-2", fulfillment_priority=5, **at(100)), a, 3)

    d = ship((a, 1), dest=None)

    assert allocs(d) == [("X-2", "SKU-A", 1)]
    assert entry(d, "X-1")["distance_km"] is None


def test_line_split_only_when_no_single_location_can_fill_it(skus):
    a, b, _, _, _ = skus
    big = LocationFactory(code="BIG", **at(50))
    small1 = LocationFactory(code="SMALL-1", **at(1))
    small2 = LocationFactory(code="SMALL-2", **at(2))
    stock(big, a, 6)
    stock(small1, a, 4)
    stock(small2, a, 4)
    stock(small1, b, 10)
    stock(small2, b, 10)
    stock(big, b, 3)

    # 5 of A: BIG alone can fill it, so no split even though SMALL-1 is nearer.
    d = ship((a, 5))
    assert allocs(d) == [("BIG", "SKU-A", 5)]

    # 12 of B: nobody has 12, so it is split, largest-first then nearest.
    d = ship((b, 12))
    assert d.complete
    assert allocs(d) == [("SMALL-1", "SKU-B", 10), ("SMALL-2", "SKU-B", 2)]


def test_capacity_full_location_is_skipped(skus):
    a = skus[0]
    busy = LocationFactory(code="BUSY", daily_capacity=1, **at(1))
    free = LocationFactory(code="FREE", daily_capacity=5, **at(10))
    stock(busy, a, 5)
    stock(free, a, 5)
    customer = Customer.objects.create(email="c@example.com")
    order = Order.objects.create(
        channel="web",
        customer=customer,
        currency="JPY",
        subtotal=Decimal(0),
        total=Decimal(0),
        fulfillment_method="ship",
    )
    f = Fulfillment.objects.create(order=order, location=busy, method="ship")

    d = ship((a, 1))
    assert allocs(d) == [("FREE", "SKU-A", 1)]
    assert "daily capacity full (1 of 1 fulfillments today)" in reasons(d, "BUSY")

    # A cancelled fulfillment does not use capacity, nor does yesterday's.
    Fulfillment.objects.filter(pk=f.pk).update(status=FulfillmentStatus.CANCELLED)
    assert allocs(ship((a, 1))) == [("BUSY", "SKU-A", 1)]
    f2 = Fulfillment.objects.create(order=order, location=busy, method="ship")
    Fulfillment.objects.filter(pk=f2.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    assert allocs(ship((a, 1))) == [("BUSY", "SKU-A", 1)]


def test_safety_stock_is_respected(skus):
    a = skus[0]
    near = LocationFactory(code="NEAR", **at(1))
    far = LocationFactory(code="FAR", **at(30))
    stock(near, a, 5, safety_stock=3)  # 2 available
    stock(far, a, 5)

    assert allocs(ship((a, 2))) == [("NEAR", "SKU-A", 2)]
    d = ship((a, 3))
    assert allocs(d) == [("FAR", "SKU-A", 3)]
    assert "short: only 2 of 3 SKU-A" in reasons(d, "NEAR")


def test_held_stock_is_respected_until_the_hold_expires(skus):
    a = skus[0]
    near = LocationFactory(code="NEAR", **at(1))
    far = LocationFactory(code="FAR", **at(30))
    stock(near, a, 3)
    stock(far, a, 3)
    hold = hold_create(lines=[Line(near.pk, a.pk, 2)])

    assert allocs(ship((a, 2))) == [("FAR", "SKU-A", 2)]

    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert allocs(ship((a, 2))) == [("NEAR", "SKU-A", 2)]


def test_reserved_stock_is_not_available(skus):
    a = skus[0]
    near = LocationFactory(code="NEAR", **at(1))
    stock(near, a, 3)
    stock_reserve(lines=[Line(near.pk, a.pk, 3)], reference="O-1")

    d = ship((a, 1))
    assert not d.complete
    assert [(u.sku_id, u.quantity) for u in d.unfilled] == [(a.pk, 1)]


def test_inactive_non_shipping_and_excluded_locations_are_skipped_with_reasons(skus):
    a = skus[0]
    stock(LocationFactory(code="OFF", is_active=False, **at(1)), a, 5)
    stock(LocationFactory(code="NOSHIP", ships_orders=False, **at(2)), a, 5)
    short = LocationFactory(code="SHORTPICKED", **at(3))
    stock(short, a, 5)
    stock(LocationFactory(code="OK", **at(40)), a, 5)

    d = ship((a, 1), exclude=[short])

    assert allocs(d) == [("OK", "SKU-A", 1)]
    assert reasons(d, "OFF") == "inactive"
    assert reasons(d, "NOSHIP") == "does not ship orders"
    assert reasons(d, "SHORTPICKED") == "excluded from this routing"


def test_unfilled_lines_report_the_shortfall(skus):
    a, b, c, _, _ = skus
    loc = LocationFactory(code="ONLY", **at(1))
    stock(loc, a, 5)
    stock(loc, b, 2)

    d = ship((a, 1), (b, 3), (c, 4))

    assert not d.complete
    assert allocs(d) == [("ONLY", "SKU-A", 1), ("ONLY", "SKU-B", 2)]
    assert sorted((u.sku_id, u.quantity) for u in d.unfilled) == sorted([(b.pk, 1), (c.pk, 4)])
    assert d.as_json()["complete"] is False


def test_pickup_uses_only_the_chosen_store(skus):
    a, b, _, _, _ = skus
    store = LocationFactory(code="PICKUP", **at(1))
    other = LocationFactory(code="OTHER", **at(2))
    stock(store, a, 5)
    stock(store, b, 1)
    stock(other, b, 10)

    ok = route(RoutingRequest(lines=(RoutingLine(a.pk, 2),), method="pickup", pickup_location_id=store.pk))
    assert ok.complete
    assert allocs(ok) == [("PICKUP", "SKU-A", 2)]

    short = route(
        RoutingRequest(
            lines=(RoutingLine(a.pk, 2), RoutingLine(b.pk, 3)), method="curbside", pickup_location_id=store.pk
        )
    )
    assert not short.complete
    assert {a.location_id for a in short.allocations} == {store.pk}
    assert [(u.sku_id, u.quantity) for u in short.unfilled] == [(b.pk, 2)]
    assert [c["location"] for c in short.considered] == ["PICKUP"]


def test_pickup_at_an_excluded_or_unusable_store_fills_nothing(skus):
    a = skus[0]
    store = LocationFactory(code="PICKUP", **at(1))
    stock(store, a, 5)
    wh = WarehouseFactory(code="WH", **at(1))
    stock(wh, a, 5)

    d = route(
        RoutingRequest(
            lines=(RoutingLine(a.pk, 1),),
            method="pickup",
            pickup_location_id=store.pk,
            exclude_location_ids=frozenset({store.pk}),
        )
    )
    assert d.allocations == []
    assert "excluded from this routing" in reasons(d, "PICKUP")

    d = route(RoutingRequest(lines=(RoutingLine(a.pk, 1),), method="pickup", pickup_location_id=wh.pk))
    assert d.allocations == []
    assert "does not offer pickup" in reasons(d, "WH")


def test_decision_json_is_serialisable_and_carries_reasons(skus):
    a = skus[0]
    stock(LocationFactory(code="S-1", **at(1)), a, 5)
    stock(LocationFactory(code="S-2", **at(9)), a, 5)

    data = json.loads(json.dumps(ship((a, 1)).as_json()))

    assert data["pipeline"] == [
        "SingleLocationFirst",
        "FewestShipments",
        "NearestToDestination",
        "LocationPriority",
    ]
    assert data["considered"][0]["location"] == "S-1"
    assert data["considered"][0]["chosen"] is True
    assert all(c["reasons"] for c in data["considered"])


def test_changing_the_pipeline_setting_changes_the_decision(skus, settings):
    a = skus[0]
    stock(WarehouseFactory(code="WH-NEAR", **at(1)), a, 5)
    stock(LocationFactory(code="STORE-FAR", kind=LocationKind.STORE, **at(40)), a, 5)

    assert allocs(ship((a, 1))) == [("WH-NEAR", "SKU-A", 1)]

    settings.OMS = {
        **settings.OMS,
        "ROUTING_PIPELINE": [
            "orders.routing.strategies.SingleLocationFirst",
            "orders.routing.strategies.StoresBeforeWarehouses",
            "orders.routing.strategies.NearestToDestination",
        ],
    }
    d = ship((a, 1))
    assert allocs(d) == [("STORE-FAR", "SKU-A", 1)]
    assert d.pipeline == ["SingleLocationFirst", "StoresBeforeWarehouses", "NearestToDestination"]
    assert "stores go first" in reasons(d, "WH-NEAR")


def test_nearby_sources_nearest_first(skus):
    a, b, _, _, _ = skus
    stock(LocationFactory(code="N-10", **at(10)), a, 1)
    stock(LocationFactory(code="N-2", **at(2)), a, 4)
    excluded = LocationFactory(code="N-1", **at(1))
    stock(excluded, a, 4)
    stock(LocationFactory(code="N-OFF", is_active=False, **at(0)), a, 9)
    stock(LocationFactory(code="N-5", **at(5)), a, 2)

    out = nearby_sources(sku_ids=[a.pk, b.pk], near=DEST, limit=2, exclude_location_ids={excluded.pk})

    assert [e["location"] for e in out[a.pk]] == ["N-2", "N-5"]
    assert out[a.pk][0]["available"] == 4
    assert out[a.pk][0]["distance_km"] == pytest.approx(2, abs=0.1)
    assert out[b.pk] == []
    # Without a point: most available first.
    out = nearby_sources(sku_ids=[a.pk], near=None)
    assert [e["location"] for e in out[a.pk]] == ["N-1", "N-2", "N-5", "N-10"]


def test_route_reads_with_at_most_three_queries(skus, django_assert_max_num_queries):
    locs = [LocationFactory(code=f"Q-{i}", daily_capacity=10, **at(i)) for i in range(6)]
    for i, loc in enumerate(locs):
        for s in skus[: i % 5 + 1]:
            stock(loc, s, 3)
    hold_create(lines=[Line(locs[5].pk, skus[0].pk, 1)])

    with django_assert_max_num_queries(3):
        d = ship(*((s, 2) for s in skus))
    assert d.complete


def test_route_never_writes_and_needs_no_capacity_query_without_capacities(skus, django_assert_num_queries):
    a, b = skus[:2]
    stock(LocationFactory(code="X", **at(1)), a, 3)
    stock(LocationFactory(code="Y", **at(2)), b, 3)

    with django_assert_num_queries(2) as captured:
        d = ship((a, 1), (b, 1))
    assert d.complete
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in captured.captured_queries)

    with django_assert_num_queries(2):
        route(
            RoutingRequest(
                lines=(RoutingLine(a.pk, 1),), method="pickup", pickup_location_id=d.location_ids[0]
            )
        )


def test_capacity_counts_the_locations_own_day(skus):
    a = skus[0]
    tokyo = LocationFactory(code="TOKYO", daily_capacity=1, timezone="Asia/Tokyo", **at(1))
    utc = LocationFactory(code="UTC", daily_capacity=1, timezone="UTC", **at(2))
    stock(tokyo, a, 5)
    stock(utc, a, 5)
    customer = Customer.objects.create(email="tz@example.com")
    order = Order.objects.create(
        channel="web",
        customer=customer,
        currency="JPY",
        subtotal=Decimal(0),
        total=Decimal(0),
        fulfillment_method="ship",
    )
    # 14:00 UTC on the 22nd is 23:00 on the 22nd in Tokyo; "now" is 16:30 UTC = 01:30 on the 23rd in Tokyo.
    earlier = dt.datetime(2026, 11, 22, 14, 0, tzinfo=dt.UTC)
    for loc in (tokyo, utc):
        f = Fulfillment.objects.create(order=order, location=loc, method="ship")
        Fulfillment.objects.filter(pk=f.pk).update(created_at=earlier)

    with time_machine.travel(dt.datetime(2026, 11, 22, 16, 30, tzinfo=dt.UTC), tick=False):
        d = ship((a, 1))

    assert "daily capacity full (1 of 1 fulfillments today)" in reasons(d, "UTC")
    assert allocs(d) == [("TOKYO", "SKU-A", 1)]


def test_a_split_line_next_to_whole_lines(skus):
    a, b, _, _, _ = skus
    one = LocationFactory(code="ONE", **at(1))
    two = LocationFactory(code="TWO", **at(2))
    stock(one, a, 4)
    stock(two, a, 3)
    stock(two, b, 2)

    d = ship((a, 6), (b, 2))

    assert d.complete
    # TWO fills B whole and gives 3 of A; ONE gives the other 3 of A: two shipments.
    assert allocs(d) == [("ONE", "SKU-A", 3), ("TWO", "SKU-A", 3), ("TWO", "SKU-B", 2)]


def test_lines_are_merged_and_bad_requests_are_refused(skus):
    a = skus[0]
    stock(LocationFactory(code="M", **at(1)), a, 5)

    d = route(RoutingRequest(lines=(RoutingLine(a.pk, 1), RoutingLine(a.pk, 2)), method="ship"))
    assert allocs(d) == [("M", "SKU-A", 3)]
    with pytest.raises(ValueError, match="positive integer"):
        route(RoutingRequest(lines=(RoutingLine(a.pk, 0),), method="ship"))
    with pytest.raises(ValueError, match="unknown fulfillment method"):
        route(RoutingRequest(lines=(RoutingLine(a.pk, 1),), method="drone"))
    with pytest.raises(ValueError, match="pickup_location_id"):
        route(RoutingRequest(lines=(RoutingLine(a.pk, 1),), method="pickup"))


def test_as_json_keeps_the_first_locations_and_counts_the_rest(skus):
    a = skus[0]
    for i in range(5):
        stock(LocationFactory(code=f"L-{i}", **at(i + 1)), a, 2)

    data = ship((a, 1)).as_json(max_considered=3)

    assert [c["location"] for c in data["considered"]] == ["L-0", "L-1", "L-2"]
    assert data["considered_omitted"] == 2
