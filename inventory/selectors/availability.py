"""Availability of a SKU across the network, for every channel: the availability API, "find in
store", and the cart check (which asks order routing).

available = on_hand - reserved - live held - safety_stock, never below zero, computed by the
database with `inventory.db.available_sql` (the hot reads below run on raw rows: inventory.db.stock_rows).
A checkout hold past its expiry stops counting at once, before the sweep reclaims its units.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import router

from stores.models import Location
from stores.selectors import bounding_box, distance_from

from .. import db
from ..models import Sku, StockLevel
from .catalog import low_stock_threshold

AVAILABILITY_LIMIT = 50  # locations listed by default by availability_for_sku
AVAILABILITY_MAX_LIMIT = 500


@dataclass
class LocationAvailability:
    """One location's counters for a SKU (explain=true), and why it does not count, if it does not."""

    location: Location
    on_hand: int
    reserved: int
    held: int  # live checkout holds only
    safety_stock: int
    available: int  # on_hand - reserved - held - safety_stock, never below 0
    distance_km: float | None = None
    excluded: list[str] = field(default_factory=list)  # why the location is left out, if it is


@dataclass
class SkuAvailability:
    """Network availability of one SKU: totals over every location that counts, and the listed rows.

    `locations` are output-ready dicts (location, name, kind, available, pickup, ships,
    distance_km; with explain also on_hand, reserved, held, safety_stock, excluded), at most
    `limit` of them without explain. The totals always cover all `locations_total` locations.
    """

    sku: Sku
    low_stock_threshold: int
    available: int
    ship_available: int
    pickup_available: int
    locations_total: int  # locations that count (active, matching, something available)
    locations: list[dict]

    @property
    def low_stock(self) -> bool:
        return self.available <= self.low_stock_threshold


# The location fields the explained read needs; the others are deferred (loaded on access).
_EXPLAINED_LOCATION_FIELDS = tuple(
    f.attname
    for f in Location._meta.concrete_fields
    if f.attname
    in {
        "id",
        "code",
        "name",
        "kind",
        "is_active",
        "ships_orders",
        "offers_pickup",
        "accepts_returns",
        "latitude",
        "longitude",
        "fulfillment_priority",
        "daily_capacity",
    }
)
# What the listed rows show (they are built straight from the cursor's tuples, no Location).
_LISTED_LOCATION_FIELDS = (
    "id",
    "code",
    "name",
    "kind",
    "offers_pickup",
    "ships_orders",
    "latitude",
    "longitude",
)
_ALL_LOCATION_FIELDS = tuple(f.attname for f in Location._meta.concrete_fields)
# Where locations_with_sku reads code, latitude, longitude in a raw row (no converters on these).
_ALL_FIELD_INDEX = tuple(_ALL_LOCATION_FIELDS.index(f) for f in ("code", "latitude", "longitude"))


def availability_for_sku(
    *,
    sku: Sku,
    near: tuple[float, float] | None = None,
    radius_km: float | None = None,
    pickup_only: bool = False,
    kind: str | None = None,
    explain: bool = False,
    ship_only: bool = False,
    limit: int = AVAILABILITY_LIMIT,
) -> SkuAvailability:
    """Network availability of one SKU: totals over every location that counts, and the first `limit` of them.

    The locations that count are active, of `kind`, offer pickup with `pickup_only`, ship with
    `ship_only`, lie within `radius_km` of `near`, and have something available. They are listed
    nearest first when `near` is given, else most available first (ties by code). The totals
    (`available`, `ship_available`, `pickup_available`, `locations_total`) cover all of them,
    whatever `limit` is.

    Without `explain`: one query, the stock rows joined with their locations and filtered in SQL
    (the bounding box of `radius_km` around `near`, something on the shelf); the rows are summed
    straight from the cursor's tuples (the hottest read of the API: about 350 stocked locations
    per SKU in the benchmark). With `explain`: every location, `limit` not applied (a LEFT JOIN,
    so also those that never stocked the SKU), with its counters and the reasons it was left out:
    "inactive", "not a <kind>", "does not ship", "no pickup", "out of radius", "nothing
    available"; those left out come last.
    """
    if explain:
        return _availability_explained(
            sku=sku, near=near, radius_km=radius_km, pickup_only=pickup_only, kind=kind, ship_only=ship_only
        )
    box = bounding_box(near[0], near[1], radius_km) if near is not None and radius_km is not None else None
    rows = db.stock_rows(
        sku_id=sku.pk,
        location_fields=_LISTED_LOCATION_FIELDS,
        kind=kind,
        pickup=True if pickup_only else None,
        ship_only=ship_only,
        box=box,
        min_quantity=1,
    )
    km = distance_from(*near) if near is not None else None
    total = ship_total = pickup_total = 0
    counted = []
    append = counted.append
    for _, code, name, loc_kind, pickup, ships, lat, lng, _, _, _, _, available in rows:
        if available <= 0:
            continue
        distance = None
        if km is not None:
            distance = round(km(lat, lng), 3)
            if radius_km is not None and distance > radius_km:
                continue
        total += available
        if ships:
            ship_total += available
        if pickup:
            pickup_total += available
        append((distance or 0, -available, code, name, loc_kind, pickup, ships, distance))
    listed = heapq.nsmallest(limit, counted) if limit < len(counted) else sorted(counted)
    return SkuAvailability(
        sku=sku,
        low_stock_threshold=low_stock_threshold(sku),
        available=total,
        ship_available=ship_total,
        pickup_available=pickup_total,
        locations_total=len(counted),
        locations=[
            {
                "location": code,
                "name": name,
                "kind": loc_kind,
                "available": -neg_available,
                "pickup": pickup,
                "ships": ships,
                "distance_km": distance,
            }
            for _, neg_available, code, name, loc_kind, pickup, ships, distance in listed
        ],
    )


def _location_availabilities(*, sku: Sku, near: tuple[float, float] | None) -> list[LocationAvailability]:
    """Every location (active or not) with its counters of `sku` (0 where it has no level)."""
    read_db = router.db_for_read(StockLevel)
    fields = _EXPLAINED_LOCATION_FIELDS
    km = distance_from(*near) if near is not None else None
    out = []
    rows = db.stock_rows(
        sku_id=sku.pk, location_fields=fields, every_location=True, active_only=False, convert=False
    )
    for row in rows:
        location = db.model_from_row(Location, read_db, fields, row)
        on_hand, reserved, held, safety, available = (value or 0 for value in row[len(fields) :])
        la = LocationAvailability(location, on_hand, reserved, held, safety, available)
        if km is not None:
            la.distance_km = round(km(location.latitude, location.longitude), 3)
        out.append(la)
    return out


def _exclusions(
    la: LocationAvailability, *, radius_km: float | None, pickup_only: bool, kind: str | None, ship_only: bool
) -> list[str]:
    loc = la.location
    excluded = []
    if not loc.is_active:
        excluded.append("inactive")
    if kind and loc.kind != kind:
        excluded.append(f"not a {kind}")
    if ship_only and not loc.ships_orders:
        excluded.append("does not ship")
    if pickup_only and not loc.offers_pickup:
        excluded.append("no pickup")
    if radius_km is not None and la.distance_km is not None and la.distance_km > radius_km:
        excluded.append("out of radius")
    if la.available <= 0 and not excluded:
        excluded.append("nothing available")
    return excluded


def _availability_explained(
    *,
    sku: Sku,
    near: tuple[float, float] | None,
    radius_km: float | None,
    pickup_only: bool,
    kind: str | None,
    ship_only: bool,
) -> SkuAvailability:
    las = _location_availabilities(sku=sku, near=near)
    for la in las:
        la.excluded = _exclusions(
            la, radius_km=radius_km, pickup_only=pickup_only, kind=kind, ship_only=ship_only
        )
    las.sort(
        key=lambda la: (
            bool(la.excluded),
            la.distance_km if la.distance_km is not None else 0,
            -la.available,
            la.location.code,
        )
    )
    included = [la for la in las if not la.excluded]
    return SkuAvailability(
        sku=sku,
        low_stock_threshold=low_stock_threshold(sku),
        available=sum(la.available for la in included),
        ship_available=sum(la.available for la in included if la.location.ships_orders),
        pickup_available=sum(la.available for la in included if la.location.offers_pickup),
        locations_total=len(included),
        locations=[
            {
                "location": la.location.code,
                "name": la.location.name,
                "kind": la.location.kind,
                "available": la.available,
                "pickup": la.location.offers_pickup,
                "ships": la.location.ships_orders,
                "distance_km": la.distance_km,
                "on_hand": la.on_hand,
                "reserved": la.reserved,
                "held": la.held,
                "safety_stock": la.safety_stock,
                "excluded": la.excluded,
            }
            for la in las
        ],
    )


class LocationStock:
    """A location with its availability of one SKU: an item of `locations_with_sku`.

    `location` (the full Location) is built from the row on first access: the list is filtered
    and sorted on the raw rows, so a page of a few hundred nearby locations builds (and decodes
    the opening hours of) only the locations shown.
    """

    __slots__ = ("_db", "_location", "_row", "available", "distance_km")

    def __init__(self, read_db: str, row: tuple, available: int, distance_km: float | None) -> None:
        self._db, self._row, self._location = read_db, row, None
        self.available, self.distance_km = available, distance_km

    @property
    def location(self) -> Location:
        if self._location is None:
            self._location = db.model_from_row(Location, self._db, _ALL_LOCATION_FIELDS, self._row)
        return self._location


def locations_with_sku(
    *,
    sku: Sku,
    quantity: int | None = None,
    kind: str | None = None,
    pickup: bool | None = None,
    near: tuple[float, float] | None = None,
    radius_km: float | None = None,
) -> list[LocationStock]:
    """Active locations with their availability of `sku` (the "find in store" list).

    `pickup`: True only locations offering pickup, False only those that do not, None all.
    Without `quantity` every matching location is listed, those without stock at 0; with it,
    only those that can give `quantity` units. Nearest first when `near` is given (within
    `radius_km` when given: bounding box in SQL, then great-circle distance), else by code.
    One query. Filtered and sorted on the cursor's tuples; each Location is built when it is
    first used (`LocationStock.location`).
    """
    box = bounding_box(near[0], near[1], radius_km) if near is not None and radius_km is not None else None
    rows = db.stock_rows(
        sku_id=sku.pk,
        location_fields=_ALL_LOCATION_FIELDS,
        every_location=not quantity,
        kind=kind,
        pickup=pickup,
        box=box,
        min_quantity=quantity or 0,
        convert=False,
    )
    i_code, i_lat, i_lng = _ALL_FIELD_INDEX
    km = distance_from(*near) if near is not None else None
    kept = []
    append = kept.append
    for row in rows:
        available = row[-1] or 0  # NULL: no stock level (the LEFT JOIN)
        if quantity and available < quantity:
            continue
        if km is None:
            append((0, row[i_code], available, row, None))
            continue
        distance = round(km(row[i_lat], row[i_lng]), 3)
        if radius_km is None or distance <= radius_km:
            append((distance, row[i_code], available, row, distance))  # codes are unique: rows never compared
    kept.sort()
    read_db = router.db_for_read(StockLevel)
    return [LocationStock(read_db, row, available, distance) for _, _, available, row, distance in kept]


def cart_check(
    *,
    lines: Sequence[tuple[Sku, int]],
    method: str,
    pickup_location: Location | None = None,
    destination: tuple[float, float] | None = None,
    explain: bool = False,
) -> dict:
    """Could this cart be fulfilled this way now, and from where? Reads only: nothing is reserved.

    Asks the order routing engine (orders.routing.route) what placing the cart would allocate,
    so the answer is the one order placement would get (routing counts availability with
    inventory.db.available_sql). Lines it cannot fill list `alternatives`: the nearest locations
    with some available (nearest the destination or the chosen store). At most five queries:
    routing's three, plus two for the alternatives when a line is short.
    """
    from orders.routing import RoutingLine, RoutingRequest, nearby_sources, route

    decision = route(
        RoutingRequest(
            lines=tuple(RoutingLine(sku.pk, quantity) for sku, quantity in lines),
            method=method,
            pickup_location_id=pickup_location.pk if pickup_location else None,
            destination=destination,
        )
    )
    unfilled = {u.sku_id: u.quantity for u in decision.unfilled}
    near = destination
    if near is None and pickup_location is not None:
        near = (pickup_location.latitude, pickup_location.longitude)
    alternatives = nearby_sources(sku_ids=list(unfilled), near=near) if unfilled else {}
    distances = {c["location_id"]: c.get("distance_km") for c in decision.considered}
    code = decision.location_codes.get
    out_lines = []
    for sku, quantity in lines:
        shortfall = unfilled.get(sku.pk, 0)
        line = {
            "sku": sku.code,
            "quantity": quantity,
            "fulfillable": shortfall == 0,
            "shortfall": shortfall,
            "locations": [
                {
                    "location": code(a.location_id, str(a.location_id)),
                    "quantity": a.quantity,
                    "distance_km": distances.get(a.location_id),
                }
                for a in decision.allocations
                if a.sku_id == sku.pk
            ],
        }
        if shortfall:
            line["alternatives"] = [
                {k: e[k] for k in ("location", "kind", "available", "distance_km", "offers_pickup")}
                for e in alternatives.get(sku.pk, [])
            ]
        out_lines.append(line)
    out = {
        "fulfillable": decision.complete,
        "method": method,
        "locations": [code(i, str(i)) for i in decision.location_ids],
        "lines": out_lines,
    }
    if explain:
        out["routing"] = decision.as_json()
    return out
