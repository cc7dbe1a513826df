"""Each routing strategy on its own, on in-memory candidates (no database), and the pipeline setting."""

from __future__ import annotations

import pytest

from orders.routing import RoutingContext, RoutingLine, RoutingRequest, RoutingStrategy, routing_pipeline
from orders.routing.base import LOOKAHEAD_MAX_LINES
from orders.routing.data import Candidate
from orders.routing.engine import _prepare_step
from orders.routing.strategies import (
    FewestShipments,
    LocationPriority,
    MostStockFirst,
    NearestToDestination,
    SingleLocationFirst,
    StoresBeforeWarehouses,
    WarehousesBeforeStores,
)

_ids = iter(range(1, 10_000))


def cand(code: str, stock: dict[int, int], *, kind="store", priority=100, distance=None) -> Candidate:
    c = Candidate(
        next(_ids),
        (code, code, kind, 35.0, 139.0, True, True, kind == "store", priority, 0, "Asia/Tokyo"),
    )
    c.stock = dict(stock)
    c.distance_km = distance
    return c


def context(remaining: dict[int, int], *cands: Candidate, step: int = 1) -> RoutingContext:
    pool = _prepare_step(list(cands), remaining)
    request = RoutingRequest(
        lines=tuple(RoutingLine(s, q) for s, q in remaining.items()), method="ship", destination=None
    )
    return RoutingContext(request=request, remaining=remaining, pool=pool, step=step, sku_codes={})


def best(strategy: RoutingStrategy, ctx: RoutingContext) -> list[str]:
    """Codes of the candidates the strategy ranks best."""
    ranks = [(strategy.rank(c, ctx), c.code) for c in ctx.pool]
    top = min(r for r, _ in ranks)
    return sorted(code for r, code in ranks if r == top)


def test_single_location_first_prefers_locations_that_fill_everything():
    full = cand("FULL", {1: 2, 2: 1})
    part = cand("PART", {1: 5})
    ctx = context({1: 2, 2: 1}, full, part)
    s = SingleLocationFirst()

    assert best(s, ctx) == ["FULL"]
    assert s.describe(full, ctx) == "can fill the whole order on its own"
    assert s.describe(part, ctx) == "cannot fill the whole order on its own (1 of 2 lines)"
    assert "all remaining lines" in s.describe(full, context({1: 2}, full, step=2))


def test_fewest_shipments_looks_ahead_for_a_two_location_cover():
    # Lines 1, 2, 3. AB + C covers in two; A alone leaves 2 and 3, which nobody holds together.
    ab = cand("AB", {1: 1, 2: 1})
    a = cand("A", {1: 1})
    c = cand("C", {3: 1})
    bc = cand("B", {2: 1})
    ctx = context({1: 1, 2: 1, 3: 1}, ab, a, c, bc)
    s = FewestShipments()

    assert s.rank(ab, ctx)[0] == 2
    assert s.rank(c, ctx)[0] == 2  # C + AB
    assert s.rank(a, ctx)[0] == 3
    assert best(s, ctx) == ["AB"]  # two shipments and more lines filled than C
    assert s.describe(ab, ctx).startswith("2 shipments with it")


def test_fewest_shipments_prefers_more_units_for_a_line_that_must_be_split():
    big = cand("BIG", {1: 6})
    small = cand("SMALL", {1: 2})
    ctx = context({1: 10}, big, small)

    assert [c.take for c in (big, small)] == [{1: 6}, {1: 2}]
    assert best(FewestShipments(), ctx) == ["BIG"]


def test_one_location_covers_needs_no_lookahead_for_huge_orders():
    lines = dict.fromkeys(range(1, LOOKAHEAD_MAX_LINES + 3), 1)
    half1 = cand("H1", dict.fromkeys(list(lines)[: len(lines) // 2], 1))
    half2 = cand("H2", dict.fromkeys(list(lines)[len(lines) // 2 :], 1))
    ctx = context(lines, half1, half2)

    assert ctx.one_location_covers(half2.mask) is False  # no look-ahead: greedy only
    small = context({1: 1, 2: 1}, cand("X", {1: 1}), cand("Y", {2: 1}))
    assert small.one_location_covers(0b10) is True
    assert small.one_location_covers(0b11) is False


def test_nearest_to_destination_ranks_by_distance_and_abstains_without_one():
    near = cand("NEAR", {1: 1}, distance=3.2)
    far = cand("FAR", {1: 1}, distance=40.0)
    s = NearestToDestination()

    ctx = context({1: 1}, near, far)
    assert best(s, ctx) == ["NEAR"]
    assert s.loss_reason(far, near, ctx) == "farther: 40 km (NEAR is 3.2 km)"

    x, y = cand("X", {1: 1}), cand("Y", {1: 1})
    ctx = context({1: 1}, x, y)
    assert best(s, ctx) == ["X", "Y"]
    assert s.describe(x, ctx) == "no destination to measure from"


def test_location_priority_lower_first():
    hi = cand("HI", {1: 1}, priority=5)
    lo = cand("LO", {1: 1}, priority=50)
    ctx = context({1: 1}, hi, lo)

    assert best(LocationPriority(), ctx) == ["HI"]
    assert LocationPriority().loss_reason(lo, hi, ctx) == "lower priority: 50 (HI has 5)"


def test_stores_before_warehouses_and_the_reverse():
    st = cand("ST", {1: 1}, kind="store")
    wh = cand("WH", {1: 1}, kind="warehouse")
    ctx = context({1: 1}, st, wh)

    assert best(StoresBeforeWarehouses(), ctx) == ["ST"]
    assert best(WarehousesBeforeStores(), ctx) == ["WH"]
    assert "stores go first" in StoresBeforeWarehouses().loss_reason(wh, st, ctx)


def test_most_stock_first_prefers_the_deepest_stock():
    deep = cand("DEEP", {1: 40, 2: 10})
    shallow = cand("SHALLOW", {1: 2, 2: 1})
    ctx = context({1: 1, 2: 1}, deep, shallow)

    assert best(MostStockFirst(), ctx) == ["DEEP"]
    assert MostStockFirst().describe(deep, ctx) == "50 units available of what it would ship"


def test_strategy_names_default_to_the_class_name():
    assert [s.name for s in routing_pipeline()] == [
        "SingleLocationFirst",
        "FewestShipments",
        "NearestToDestination",
        "LocationPriority",
    ]


def test_pipeline_setting_accepts_bare_names_and_rejects_non_strategies(settings):
    settings.OMS = {**settings.OMS, "ROUTING_PIPELINE": ["StoresBeforeWarehouses", "LocationPriority"]}
    assert [s.name for s in routing_pipeline()] == ["StoresBeforeWarehouses", "LocationPriority"]

    settings.OMS = {**settings.OMS, "ROUTING_PIPELINE": ["orders.routing.types.RoutingLine"]}
    with pytest.raises(TypeError, match="not a RoutingStrategy"):
        routing_pipeline()


def _random_case(rng):
    from stores.models import LocationKind

    n_lines = rng.randint(1, 5)
    lines = [RoutingLine(sku_id, rng.randint(1, 4)) for sku_id in rng.sample(range(1, 9), n_lines)]
    cands = []
    for i in range(rng.randint(0, 7)):
        stock = {ln.sku_id: rng.randint(1, 5) for ln in lines if rng.random() < 0.5}
        kind = rng.choice([LocationKind.STORE, LocationKind.WAREHOUSE])
        c = cand(f"R-{i}", stock, kind=kind, priority=rng.choice([10, 100]), distance=rng.uniform(0, 50))
        if stock:
            cands.append(c)
    return lines, cands


@pytest.mark.parametrize("seed", range(300))
def test_decisions_keep_the_invariants_on_random_networks(seed):
    """Allocations + unfilled = order; nothing over available; split only when no one can fill a line;
    one location when one can fill everything; two when two can; the same answer every time."""
    import itertools
    import random

    from orders.routing.engine import decide

    rng = random.Random(seed)
    lines, cands = _random_case(rng)
    request = RoutingRequest(lines=tuple(lines), method="ship", destination=(35.0, 139.0))
    stock = {c.location_id: dict(c.stock) for c in cands}

    def run():
        eligible = sorted(cands, key=lambda c: c.code)
        return decide(
            request, lines, {c.location_id: c for c in cands}, list(eligible), {}, routing_pipeline()
        )

    d = run()
    got: dict[int, int] = {}
    seen = set()
    for a in d.allocations:
        assert (a.location_id, a.sku_id) not in seen
        seen.add((a.location_id, a.sku_id))
        assert 0 < a.quantity <= stock[a.location_id].get(a.sku_id, 0)
        got[a.sku_id] = got.get(a.sku_id, 0) + a.quantity
    for ln in lines:
        unfilled = sum(u.quantity for u in d.unfilled if u.sku_id == ln.sku_id)
        assert got.get(ln.sku_id, 0) + unfilled == ln.quantity
        sources = {a.location_id for a in d.allocations if a.sku_id == ln.sku_id}
        if len(sources) > 1:
            assert max((s.get(ln.sku_id, 0) for s in stock.values()), default=0) < ln.quantity

    def covers(ids):  # every line filled completely by one of `ids`
        return all(any(stock[i].get(ln.sku_id, 0) >= ln.quantity for i in ids) for ln in lines)

    used = d.location_ids
    if any(covers([i]) for i in stock):
        assert len(used) == 1
        assert d.complete
    elif any(covers(pair) for pair in itertools.combinations(stock, 2)):
        assert len(used) == 2
        assert d.complete
    assert run().as_json() == d.as_json()


def test_distances_are_stores_haversine():
    import random

    from orders.routing.data import set_distances
    from stores.selectors import haversine_km

    rng = random.Random(7)
    near = (35.68, 139.76)
    cands = []
    for i in range(200):
        c = cand(f"D-{i}", {})
        c.latitude, c.longitude = rng.uniform(-89, 89), rng.uniform(-179, 179)
        cands.append(c)
    set_distances(cands, near)
    assert all(c.distance_km == round(haversine_km(*near, c.latitude, c.longitude), 2) for c in cands)
