"""Where an order's units come from, and the 409 when they are not there.

Three sources, one per way an order can be placed:
- a checkout hold the storefront made earlier (`reserve_from_hold`);
- the pickup store the customer chose (`check_store_stock`, then `reserve_at_store` as the last
  step of placement);
- routing across the network (`route_and_reserve`, also behind checkout holds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

from inventory.exceptions import InsufficientStock
from inventory.models import Sku
from inventory.services import Line, hold_convert, stock_reserve_or_shortfall
from stores.models import Location

from ..exceptions import HoldMismatch
from ..routing import RoutingDecision, RoutingLine, RoutingRequest, nearby_sources, pickup_record, route
from .inputs import PICKUP_METHODS


@dataclass(frozen=True)
class SkuLine:
    """A quantity of one known SKU: an order or hold line once its SKU has been looked up."""

    sku: Sku
    quantity: int


@dataclass(frozen=True)
class Sourcing:
    """Which locations give which units, and the routing record kept in the order's timeline."""

    allocations: list[Line]  # (location_id, sku_id, quantity)
    location_codes: dict[int, str]
    record: dict  # RoutingDecision.as_json(), or the hold it came from
    store_reservation_pending: bool = field(default=False)  # pickup: reserve_at_store still to run
    # Ship to store (orders.services.ship_to_store): units per SKU id a warehouse sends to the store,
    # reserved there (`legs`: location_id, sku_id, quantity), and the day promised.
    incoming: dict[int, int] = field(default_factory=dict)
    legs: list[Line] = field(default_factory=list)
    ready_by: object = None  # datetime.date


def routing_request(
    *,
    method: str,
    store: Location | None,
    near: tuple[float, float] | None,
    lines,
    exclude=frozenset(),
    only_kind: str | None = None,
) -> RoutingRequest:
    return RoutingRequest(
        lines=tuple(RoutingLine(ln.sku.pk, ln.quantity) for ln in lines),
        method=method,
        pickup_location_id=store.pk if store else None,
        destination=(store.latitude, store.longitude) if store else near,
        exclude_location_ids=frozenset(exclude),
        only_kind=only_kind,
    )


# --- From a checkout hold ---------------------------------------------------------------------


def reserve_from_hold(
    *, hold_id, method: str, lines: Sequence[SkuLine], store: Location | None, reference: str, user
) -> Sourcing:
    """The hold's units become the order's reservations (inventory.services.hold_convert), with no
    gap in which another buyer could take them. Its lines must be the order's (422 hold_mismatch)."""
    hold_lines = hold_convert(hold_id=hold_id, reference=reference, user=user)
    held: dict[int, int] = defaultdict(int)
    for hl in hold_lines:
        held[hl.sku_id] += hl.quantity
    wanted = {ln.sku.pk: ln.quantity for ln in lines}
    codes = {ln.sku.pk: ln.sku.code for ln in lines}
    if dict(held) != wanted:
        raise HoldMismatch(
            "The hold's lines differ from the order's lines.",
            details={
                "field": "hold",
                "held": {codes.get(k, str(k)): v for k, v in held.items()},
                "ordered": {codes[k]: v for k, v in wanted.items()},
            },
        )
    if store is not None and any(hl.location_id != store.pk for hl in hold_lines):
        raise HoldMismatch("The hold is not at the pickup store.", details={"field": "hold"})
    allocations = [Line(hl.location_id, hl.sku_id, hl.quantity) for hl in hold_lines]
    location_codes = dict(
        Location.objects.filter(pk__in={a.location_id for a in allocations}).values_list("pk", "code")
    )
    record = {
        "method": method,
        "complete": True,
        "source": "hold",
        "hold": str(hold_id),
        "allocations": [
            {
                "location": location_codes[a.location_id],
                "location_id": a.location_id,
                "sku": codes[a.sku_id],
                "sku_id": a.sku_id,
                "quantity": a.quantity,
            }
            for a in allocations
        ],
    }
    return Sourcing(allocations, location_codes, record)


# --- At the chosen pickup store ---------------------------------------------------------------


def check_store_stock(
    *, store: Location, method: str, lines: Sequence[SkuLine], available: dict[int, int]
) -> Sourcing:
    """The chosen store must have every line, as placement's lookup read it (`available`, per SKU
    id): else 409 with nearby stock, having written nothing. A read, not a lock: the guarded
    reservation (`reserve_at_store`) is the real check, run as placement's last step."""
    short = short_at_store(store=store, method=method, lines=lines, available=available)
    if short is not None:
        raise short
    return Sourcing(
        [Line(store.pk, ln.sku.pk, ln.quantity) for ln in lines],
        {store.pk: store.code},
        pickup_record(
            method=method, store=store, lines=[(ln.sku.pk, ln.sku.code, ln.quantity) for ln in lines]
        ),
        store_reservation_pending=True,
    )


def reserve_at_store(*, store: Location, method: str, lines: Sequence[SkuLine], reference: str, user) -> None:
    """The guarded reservation at the pickup store: 409 with nearby stock when another buyer took
    the units since the lookup (the caller's transaction then rolls back as a whole)."""
    shortfall = stock_reserve_or_shortfall(
        lines=[Line(store.pk, ln.sku.pk, ln.quantity) for ln in lines], reference=reference, user=user
    )
    if shortfall is None:
        return
    by_code = {ln.sku.code: ln.sku.pk for ln in lines}
    available = {ln.sku.pk: ln.quantity for ln in lines}
    for short in (shortfall.details or {}).get("lines", []):
        if short.get("sku") in by_code and short.get("shortfall", 0) > 0:
            available[by_code[short["sku"]]] = short["available"]
    raise short_at_store(store=store, method=method, lines=lines, available=available) or shortfall


def short_at_store(
    *, store: Location, method: str, lines: Sequence[SkuLine], available: dict[int, int]
) -> InsufficientStock | None:
    """The 409 for a pickup store that lacks some lines ({sku_id: units available there}), or None.

    When a flash sale sells out every further attempt asks the same question, so the nearby
    stock is cached (Django's cache) for OMS["NEARBY_CACHE_SECONDS"]: suggestions only, nothing
    is reserved from them.
    """
    short = {
        ln.sku.pk: max(0, available.get(ln.sku.pk, 0))
        for ln in lines
        if available.get(ln.sku.pk, 0) < ln.quantity
    }
    if not short:
        return None
    near = (store.latitude, store.longitude)
    ttl = settings.OMS.get("NEARBY_CACHE_SECONDS", 0)
    key = f"orders:nearby:{','.join(map(str, sorted(short)))}:{near[0]},{near[1]}"
    nearby = cache.get(key) if ttl > 0 else None
    if nearby is None:
        nearby = nearby_sources(sku_ids=list(short), near=near, limit=5)
        if ttl > 0:
            cache.set(key, nearby, ttl)
    return stock_error(short, lines, nearby=nearby, method=method)


# --- By routing --------------------------------------------------------------------------------


def route_and_reserve(
    *,
    method: str,
    store: Location | None,
    near: tuple[float, float] | None,
    lines: Sequence[SkuLine],
    reserve: Callable[[list[Line]], object],
    only_kind: str | None = None,
):
    """Routing decides where; `reserve(stock_lines)` takes the units there (a reservation or a
    checkout hold). When stock moved between routing's read and the reservation, route once more.

    Each attempt runs in its own savepoint (`reserve` is a plain `transaction.atomic` service:
    stock_reserve, hold_create), so a lost race leaves nothing behind: no hold row, no ledger row,
    no counter change. Returns (decision, what `reserve` returned).
    """
    for attempt in (1, 2):
        decision = route(
            routing_request(method=method, store=store, near=near, lines=lines, only_kind=only_kind)
        )
        if not decision.complete:
            raise routing_shortfall(
                decision, lines, near=(store.latitude, store.longitude) if store else near
            )
        stock_lines = [Line(a.location_id, a.sku_id, a.quantity) for a in decision.allocations]
        try:
            return decision, reserve(stock_lines)
        except InsufficientStock:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def sourcing_of(decision: RoutingDecision) -> Sourcing:
    return Sourcing(
        [Line(a.location_id, a.sku_id, a.quantity) for a in decision.allocations],
        dict(decision.location_codes),
        decision.as_json(),
    )


def routing_shortfall(decision: RoutingDecision, lines: Sequence[SkuLine], *, near) -> InsufficientStock:
    """The 409 for what routing could not fill, with nearby stock per short line."""
    requested = {ln.sku.pk: ln.quantity for ln in lines}
    short = {u.sku_id: requested[u.sku_id] - u.quantity for u in decision.unfilled}
    nearby = nearby_sources(sku_ids=list(short), near=near, limit=5) if short else {}
    return stock_error(short, lines, nearby=nearby, method=decision.method)


def stock_error(
    available: dict[int, int], lines: Sequence[SkuLine], *, nearby: dict, method: str
) -> InsufficientStock:
    """409 insufficient_stock: per short line ({sku_id: units available}) the shortfall and the
    nearby locations that have it."""
    by_sku = {ln.sku.pk: ln for ln in lines}
    details = [
        {
            "sku": by_sku[sku_id].sku.code,
            "requested": by_sku[sku_id].quantity,
            "available": have,
            "shortfall": by_sku[sku_id].quantity - have,
            "nearby": nearby.get(sku_id, []),
        }
        for sku_id, have in available.items()
    ]
    where = "at the chosen store" if method in PICKUP_METHODS else "across the network"
    return InsufficientStock(f"Not enough stock {where}.", details={"lines": details, "method": method})
