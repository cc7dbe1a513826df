"""Reads of stock and availability, for every channel.

available = on_hand - reserved - active held - safety_stock, never below zero. A checkout
hold past its expiry stops counting at once here, before the sweep reclaims its units.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.utils import timezone

from config.errors import InvalidInput
from stores.models import Location
from stores.selectors import bounding_box, haversine_km

from .exceptions import UnknownSku
from .models import HoldLine, Sku, StockLevel, StockMovement


def sku_get(*, code: str) -> Sku:
    try:
        return Sku.objects.get(code=code)
    except Sku.DoesNotExist:
        raise UnknownSku(f"Unknown SKU {code!r}.", details={"sku": code}) from None


def skus_by_code(*, codes: Iterable[str]) -> dict[str, Sku]:
    codes = set(codes)
    found = {s.code: s for s in Sku.objects.filter(code__in=codes)}
    missing = sorted(codes - found.keys())
    if missing:
        raise UnknownSku("Unknown SKU(s).", details={"skus": missing})
    return found


def sku_list(*, search: str | None = None, category: str | None = None) -> QuerySet[Sku]:
    qs = Sku.objects.filter(is_active=True)
    if search:
        from django.db.models import Q

        qs = qs.filter(Q(code__icontains=search) | Q(name__icontains=search) | Q(barcode=search))
    if category:
        qs = qs.filter(category=category)
    return qs.order_by("code")


def low_stock_threshold(sku: Sku) -> int:
    return (
        sku.low_stock_threshold
        if sku.low_stock_threshold is not None
        else settings.OMS["LOW_STOCK_THRESHOLD"]
    )


def expired_held(
    *, sku_ids: Iterable[int], location_ids: Iterable[int] | None = None
) -> dict[tuple[int, int], int]:
    """Held units of expired (not yet reclaimed) holds, by (location_id, sku_id)."""
    qs = HoldLine.objects.filter(sku_id__in=list(sku_ids), expires_at__lte=timezone.now())
    if location_ids is not None:
        qs = qs.filter(location_id__in=list(location_ids))
    out: dict[tuple[int, int], int] = defaultdict(int)
    for row in qs.values("location_id", "sku_id").annotate(q=Sum("quantity")):
        out[(row["location_id"], row["sku_id"])] += row["q"]
    return out


@dataclass
class LocationAvailability:
    location: Location
    on_hand: int
    reserved: int
    held: int
    safety_stock: int
    distance_km: float | None = None
    excluded: list[str] = field(default_factory=list)  # why the location is left out, if it is

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved - self.held - self.safety_stock)


@dataclass
class SkuAvailability:
    sku: Sku
    locations: list[LocationAvailability]
    low_stock_threshold: int

    @property
    def included(self) -> list[LocationAvailability]:
        return [la for la in self.locations if not la.excluded]

    @property
    def available(self) -> int:
        return sum(la.available for la in self.included)

    @property
    def ship_available(self) -> int:
        return sum(la.available for la in self.included if la.location.ships_orders)

    @property
    def low_stock(self) -> bool:
        return self.available <= self.low_stock_threshold


def _locations_cache() -> dict[int, Location]:
    return {loc.pk: loc for loc in Location.objects.all()}


def availability_for_sku(
    *,
    sku: Sku,
    near: tuple[float, float] | None = None,
    radius_km: float | None = None,
    pickup_only: bool = False,
    kind: str | None = None,
    explain: bool = False,
) -> SkuAvailability:
    """Network availability of one SKU. With `explain`, excluded locations stay in the list with reasons.

    One query for the stock rows (the covering index on PostgreSQL), one for expired holds,
    one for the locations (or the bounding box when `near` is given).
    """
    if near is not None and radius_km is not None:
        min_lat, max_lat, min_lng, max_lng = bounding_box(near[0], near[1], radius_km)
        loc_qs = Location.objects.all()
        if not explain:
            loc_qs = loc_qs.filter(
                latitude__gte=min_lat,
                latitude__lte=max_lat,
                longitude__gte=min_lng,
                longitude__lte=max_lng,
                is_active=True,
            )
        locations = {loc.pk: loc for loc in loc_qs}
        levels = StockLevel.objects.filter(sku=sku, location_id__in=list(locations))
    else:
        locations = _locations_cache()
        levels = StockLevel.objects.filter(sku=sku)
    rows = list(levels.values_list("location_id", "on_hand", "reserved", "held", "safety_stock"))
    expired = expired_held(sku_ids=[sku.pk]) if any(r[3] for r in rows) else {}
    out = []
    for loc_id, on_hand, reserved, held, safety in rows:
        loc = locations.get(loc_id)
        if loc is None:
            continue
        la = LocationAvailability(loc, on_hand, reserved, held - expired.get((loc_id, sku.pk), 0), safety)
        if near is not None:
            la.distance_km = round(haversine_km(near[0], near[1], loc.latitude, loc.longitude), 3)
        if not loc.is_active:
            la.excluded.append("inactive")
        if kind and loc.kind != kind:
            la.excluded.append(f"not a {kind}")
        if pickup_only and not loc.offers_pickup:
            la.excluded.append("no pickup")
        if radius_km is not None and la.distance_km is not None and la.distance_km > radius_km:
            la.excluded.append("out of radius")
        if la.available <= 0 and not la.excluded:
            la.excluded.append("nothing available")
        if explain or not la.excluded:
            out.append(la)
    out.sort(
        key=lambda la: (
            bool(la.excluded),
            la.distance_km if la.distance_km is not None else 0,
            -la.available,
            la.location.code,
        )
    )
    return SkuAvailability(sku=sku, locations=out, low_stock_threshold=low_stock_threshold(sku))


def available_at(*, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Available units for (location_id, sku_id) pairs: one query for stock, one for expired holds."""
    if not pairs:
        return {}
    from django.db.models import Q

    by_loc: dict[int, list[int]] = defaultdict(list)
    for loc, sku in pairs:
        by_loc[loc].append(sku)
    cond = Q()
    for loc, skus in by_loc.items():
        cond |= Q(location_id=loc, sku_id__in=skus)
    rows = list(
        StockLevel.objects.filter(cond).values_list(
            "location_id", "sku_id", "on_hand", "reserved", "held", "safety_stock"
        )
    )
    expired = expired_held(sku_ids={s for _, s in pairs}) if any(r[4] for r in rows) else {}
    out = dict.fromkeys(pairs, 0)
    for loc, sku, on_hand, reserved, held, safety in rows:
        out[(loc, sku)] = max(0, on_hand - reserved - (held - expired.get((loc, sku), 0)) - safety)
    return out


def stock_for_skus(*, sku_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """Available units per SKU per location for a set of SKUs (routing's input): {sku_id: {location_id: n}}."""
    sku_ids = list(sku_ids)
    rows = list(
        StockLevel.objects.filter(sku_id__in=sku_ids).values_list(
            "location_id", "sku_id", "on_hand", "reserved", "held", "safety_stock"
        )
    )
    expired = expired_held(sku_ids=sku_ids) if any(r[4] for r in rows) else {}
    out: dict[int, dict[int, int]] = defaultdict(dict)
    for loc, sku, on_hand, reserved, held, safety in rows:
        a = on_hand - reserved - (held - expired.get((loc, sku), 0)) - safety
        if a > 0:
            out[sku][loc] = a
    return out


def movement_list(*, sku: Sku | None = None, location: Location | None = None) -> QuerySet[StockMovement]:
    qs = StockMovement.objects.select_related("sku", "location", "user")
    if sku is not None:
        qs = qs.filter(sku=sku)
    if location is not None:
        qs = qs.filter(location=location)
    return qs.order_by("-id")


def parse_near(value: str | None, *, field_name: str = "near") -> tuple[float, float] | None:
    if value in (None, ""):
        return None
    try:
        lat_s, lng_s = value.split(",")
        lat, lng = float(lat_s), float(lng_s)
    except (ValueError, AttributeError):
        raise InvalidInput(f"{field_name} must be 'LAT,LNG'.", details={"field": field_name}) from None
    if not (-90 <= lat <= 90) or not (-180 <= lng <= 180) or lat != lat or lng != lng:
        raise InvalidInput(f"{field_name} is out of range.", details={"field": field_name})
    return lat, lng


def parse_radius(value: str | None, *, default: float | None = None) -> float | None:
    if value in (None, ""):
        return default
    try:
        r = float(value)
    except ValueError:
        raise InvalidInput("radius_km must be a number.", details={"field": "radius_km"}) from None
    limit = settings.OMS["MAX_RADIUS_KM"]
    if not (0 < r <= limit):
        raise InvalidInput(f"radius_km must be above 0 and at most {limit}.", details={"field": "radius_km"})
    return r


def ledger_mismatches() -> list[dict]:
    """Stock levels whose counters differ from the sums of their ledger rows (empty when all is right)."""
    sums = {
        (r["location_id"], r["sku_id"]): r
        for r in StockMovement.objects.values("location_id", "sku_id").annotate(
            on_hand=Sum("on_hand_delta"),
            reserved=Sum("reserved_delta"),
            held=Sum("held_delta"),
            safety_stock=Sum("safety_stock_delta"),
        )
    }
    bad = []
    fields = ("on_hand", "reserved", "held", "safety_stock")
    seen = set()
    for lvl in StockLevel.objects.values("pk", "location_id", "sku_id", *fields).iterator(chunk_size=5000):
        key = (lvl["location_id"], lvl["sku_id"])
        seen.add(key)
        s = sums.get(key, {})
        diffs = {f: {"level": lvl[f], "ledger": s.get(f) or 0} for f in fields if lvl[f] != (s.get(f) or 0)}
        if diffs:
            bad.append({"stock_level": lvl["pk"], "location_id": key[0], "sku_id": key[1], "diffs": diffs})
    for key, s in sums.items():
        if key not in seen and any(s[f] for f in fields):
            bad.append(
                {
                    "stock_level": None,
                    "location_id": key[0],
                    "sku_id": key[1],
                    "diffs": {f: {"level": 0, "ledger": s[f]} for f in fields if s[f]},
                }
            )
    return bad
