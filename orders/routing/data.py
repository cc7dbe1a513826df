"""What routing reads: available units per location, the locations, today's capacity use, nearby sources.

At most three queries per routing decision: the available units of the order's SKUs per location
(live checkout holds only: expired ones are added back inside the same query) with the SKUs'
codes, the fields of those locations, and today's fulfillment count (only for locations with a
daily capacity).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, Q
from django.utils import timezone

from stores.models import Location
from stores.selectors import EARTH_RADIUS_KM

from ..db import routing_locations, routing_stock

LOCATION_FIELDS = (
    "code",
    "name",
    "kind",
    "latitude",
    "longitude",
    "is_active",
    "ships_orders",
    "offers_pickup",
    "fulfillment_priority",
    "daily_capacity",
    "timezone",
)


class Candidate:
    """One location as routing sees it: its fields, what it has of the order's SKUs, and why it is out."""

    __slots__ = (
        "capacity",
        "code",
        "covers_all",
        "covers_order",
        "distance_km",
        "full_lines",
        "is_active",
        "kind",
        "latitude",
        "location_id",
        "longitude",
        "mask",
        "name",
        "offers_pickup",
        "priority",
        "ships_orders",
        "skip",
        "stock",
        "take",
        "timezone",
        "units",
        "used_today",
    )

    def __init__(self, location_id: int, fields: Sequence) -> None:
        self.location_id = location_id
        (
            self.code,
            self.name,
            self.kind,
            self.latitude,
            self.longitude,
            self.is_active,
            self.ships_orders,
            self.offers_pickup,
            self.priority,
            self.capacity,
            self.timezone,
        ) = fields
        # SQLite returns booleans as 0/1.
        self.is_active, self.ships_orders, self.offers_pickup = (
            bool(self.is_active),
            bool(self.ships_orders),
            bool(self.offers_pickup),
        )
        self.stock: dict[int, int] = {}  # sku_id -> available units
        self.distance_km: float | None = None
        self.skip: tuple[str, ...] = ()  # why it cannot be used at all (empty = eligible)
        self.used_today: int | None = None
        # Set by the engine at each step: what it would take of the remaining lines.
        self.take: dict[int, int] = {}
        self.mask = 0  # bit i: can fill remaining line i completely
        self.full_lines = 0
        self.units = 0
        self.covers_all = False
        self.covers_order = False  # could fill the whole order at the first step

    def __repr__(self) -> str:
        return f"<Candidate {self.code} {self.stock}>"


def load_candidates(
    *, sku_ids: Iterable[int], location_id: int | None = None, near: tuple[float, float] | None = None
) -> tuple[dict[int, Candidate], dict[int, str]]:
    """Locations holding stock of `sku_ids` (or just `location_id`), with their available units.

    Two statements (orders.db.routing_stock and routing_locations): each location's available
    units of the SKUs (inventory's one definition) with the SKUs' codes, then the fields of those
    locations.

    Inactive and non-shipping locations are kept so the engine can say why it skipped them; with
    `location_id` that location is returned even when it has none of the SKUs.
    Returns ({location_id: Candidate}, {sku_id: sku code}).
    """
    sku_ids = [int(s) for s in dict.fromkeys(sku_ids)]
    if not sku_ids:
        return {}, {}
    stock, sku_codes = routing_stock(sku_ids=sku_ids, location_id=location_id)
    if location_id is not None:
        rows = Location.objects.filter(pk=location_id).values_list("pk", *LOCATION_FIELDS)
    else:
        rows = routing_locations(sku_ids=sku_ids) if stock else ()
    cands: dict[int, Candidate] = {}
    for loc_id, *fields in rows:
        c = cands[loc_id] = Candidate(loc_id, fields)
        c.stock = stock.get(loc_id, {})
    if near is not None:
        set_distances(cands.values(), near)
    return cands, sku_codes


def set_distances(cands: Iterable[Candidate], near: tuple[float, float]) -> None:
    """Great-circle km from `near`, rounded to 10 m: stores.selectors.haversine_km's formula, with the
    point's terms computed once (it runs for every location on every order)."""
    radians, sin, cos, asin, sqrt = math.radians, math.sin, math.cos, math.asin, math.sqrt
    p1 = radians(near[0])
    cos_p1 = cos(p1)
    lng1 = near[1]
    two_r = 2 * EARTH_RADIUS_KM
    for c in cands:
        p2 = radians(c.latitude)
        a = sin((p2 - p1) / 2) ** 2 + cos_p1 * cos(p2) * sin(radians(c.longitude - lng1) / 2) ** 2
        c.distance_km = round(two_r * asin(min(1.0, sqrt(a))), 2)


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def start_of_local_day(now: dt.datetime, tz_name: str) -> dt.datetime:
    """Midnight of `now`'s date in the location's timezone (UTC when the name is unknown)."""
    zone = _zone(tz_name)
    local = now.astimezone(zone)
    return dt.datetime.combine(local.date(), dt.time.min, tzinfo=zone)


def fulfillments_today(*, candidates: Iterable[Candidate]) -> dict[int, int]:
    """Non-cancelled fulfillments created today (each location's own calendar day) per location, one query."""
    from orders.models import Fulfillment, FulfillmentStatus

    now = timezone.now()
    by_tz: dict[str, list[int]] = defaultdict(list)
    for c in candidates:
        by_tz[c.timezone].append(c.location_id)
    if not by_tz:
        return {}
    today = Q()
    for tz_name, ids in by_tz.items():
        today |= Q(location_id__in=ids, created_at__gte=start_of_local_day(now, tz_name))
    counts = (
        Fulfillment.objects.filter(today)
        .exclude(status=FulfillmentStatus.CANCELLED)
        .values("location_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["location_id"]: row["n"] for row in counts}


def nearby_sources(
    *,
    sku_ids: Iterable[int],
    near: tuple[float, float] | None,
    limit: int = 5,
    exclude_location_ids: Iterable[int] = frozenset(),
) -> dict[int, list[dict]]:
    """Per SKU id, active locations with available units, nearest first (most units first without `near`).

    Each entry: {"location": code, "location_id", "name", "kind", "ships_orders", "offers_pickup",
    "available": n, "distance_km": float | None}. Every requested SKU id is a key (maybe empty).
    Two queries (load_candidates): available units (live holds only) with the SKU codes, the locations.
    """
    sku_ids = list(dict.fromkeys(sku_ids))
    excluded = set(exclude_location_ids)
    cands, _ = load_candidates(sku_ids=sku_ids, near=near)
    out: dict[int, list[dict]] = {sku_id: [] for sku_id in sku_ids}
    for c in cands.values():
        if not c.is_active or c.location_id in excluded:
            continue
        for sku_id, available in c.stock.items():
            out[sku_id].append(
                {
                    "location": c.code,
                    "location_id": c.location_id,
                    "name": c.name,
                    "kind": c.kind,
                    "ships_orders": c.ships_orders,
                    "offers_pickup": c.offers_pickup,
                    "available": available,
                    "distance_km": c.distance_km,
                    "_priority": c.priority,
                }
            )
    for sku_id, entries in out.items():
        entries.sort(
            key=lambda e: (
                e["distance_km"] if e["distance_km"] is not None else 0.0,
                -e["available"],
                e["_priority"],
                e["location"],
            )
        )
        del entries[limit:]
        for e in entries:
            del e["_priority"]
        out[sku_id] = entries
    return out
