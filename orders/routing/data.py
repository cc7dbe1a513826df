"""What routing reads: stock joined with location fields, today's capacity use, nearby sources.

At most three queries per routing decision: the stock rows of the order's SKUs joined with the
location fields routing needs (one query), expired-but-unreclaimed checkout holds (only when a
row has held units), and today's fulfillment count (only for locations with a daily capacity).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, F, Q
from django.utils import timezone

from inventory.models import StockLevel
from inventory.selectors import expired_held
from stores.models import Location
from stores.selectors import haversine_km

_LOCATION_FIELDS = (
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
_ROW_FIELDS = (
    "location_id",
    "sku_id",
    "sku__code",
    "on_hand",
    "reserved",
    "held",
    "safety_stock",
    *(f"location__{f}" for f in _LOCATION_FIELDS),
)


class Candidate:
    """One location as routing sees it: its fields, what it has of the order's SKUs, and why it is out."""

    __slots__ = (
        "capacity",
        "code",
        "covers_all",
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

    def __init__(self, location_id: int, fields: tuple) -> None:
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
        self.stock: dict[int, int] = {}  # sku_id -> available units
        self.distance_km: float | None = None
        self.skip: list[str] = []  # why it cannot be used at all (empty = eligible)
        self.used_today: int | None = None
        # Set by the engine at each step: what it would take of the remaining lines.
        self.take: dict[int, int] = {}
        self.mask = 0  # bit i: can fill remaining line i completely
        self.full_lines = 0
        self.units = 0
        self.covers_all = False

    def __repr__(self) -> str:
        return f"<Candidate {self.code} {self.stock}>"


def load_candidates(
    *, sku_ids: Iterable[int], location_id: int | None = None, near: tuple[float, float] | None = None
) -> tuple[dict[int, Candidate], dict[int, str]]:
    """Locations with any stock of `sku_ids` that might be available, with their available units.

    Inactive and non-shipping locations are kept (with their stock) so the engine can say why it
    skipped them. Returns ({location_id: Candidate}, {sku_id: sku code}).
    """
    sku_ids = list(sku_ids)
    qs = StockLevel.objects.filter(sku_id__in=sku_ids, on_hand__gt=F("reserved") + F("safety_stock"))
    if location_id is not None:
        qs = qs.filter(location_id=location_id)
    rows = list(qs.values_list(*_ROW_FIELDS))
    expired = (
        expired_held(sku_ids=sku_ids, location_ids=[location_id] if location_id is not None else None)
        if any(r[5] for r in rows)
        else {}
    )
    cands: dict[int, Candidate] = {}
    sku_codes: dict[int, str] = {}
    for row in rows:
        loc_id, sku_id, sku_code, on_hand, reserved, held, safety = row[:7]
        sku_codes[sku_id] = sku_code
        c = cands.get(loc_id)
        if c is None:
            c = cands[loc_id] = Candidate(loc_id, row[7:])
            if near is not None:
                c.distance_km = round(haversine_km(near[0], near[1], c.latitude, c.longitude), 2)
        if held:
            held -= expired.get((loc_id, sku_id), 0)
        available = on_hand - reserved - held - safety
        if available > 0:
            c.stock[sku_id] = available
    return cands, sku_codes


def load_location(*, location_id: int) -> Candidate | None:
    """One location as a candidate with no stock (used when it has none of the order's SKUs)."""
    row = Location.objects.filter(pk=location_id).values_list(*_LOCATION_FIELDS).first()
    return Candidate(location_id, row) if row is not None else None


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
    cond = Q()
    for tz_name, ids in by_tz.items():
        cond |= Q(location_id__in=ids, created_at__gte=start_of_local_day(now, tz_name))
    rows = (
        Fulfillment.objects.filter(cond)
        .exclude(status=FulfillmentStatus.CANCELLED)
        .order_by()
        .values("location_id")
        .annotate(n=Count("id"))
        .values_list("location_id", "n")
    )
    return dict(rows)


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
    Two queries at most (stock joined with locations; expired holds when any units are held).
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
