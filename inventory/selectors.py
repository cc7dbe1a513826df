"""Reads of stock and availability, for every channel.

available = on_hand - reserved - active held - safety_stock, never below zero. A checkout
hold past its expiry stops counting at once here, before the sweep reclaims its units.
"""

from __future__ import annotations

import functools
import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router
from django.db.models import F, Prefetch, Q, QuerySet, Sum
from django.db.models.base import ModelState
from django.utils import timezone

from config.errors import InvalidInput, NotFound
from stores.models import Location
from stores.selectors import bounding_box, distance_from

from .exceptions import UnknownSku
from .models import HoldLine, Sku, StockLevel, StockMovement, Transfer, TransferLine


def sku_get(*, code: str) -> Sku:
    """The SKU with this code, or UnknownSku (404).

    Every availability read starts here, so the SELECT is compiled once per database
    (`_sku_by_code_sql`): compiling `Sku.objects.get(code=...)` costs more CPU than running it.
    """
    if "\x00" not in code:  # no code has one, and PostgreSQL refuses it in a query (a 500)
        db = router.db_for_read(Sku)
        conn = connections[db]
        sql, names, converters = _sku_by_code_sql(db)
        with conn.cursor() as cursor:
            cursor.execute(sql, [code])
            row = cursor.fetchone()
        if row is not None:
            if converters:
                row = _converted(row, converters, conn)
            return Sku.from_db(db, names, row)
    raise UnknownSku(f"Unknown SKU {code!r}.", details={"sku": code})


@functools.cache
def _sku_by_code_sql(db: str) -> tuple[str, list[str], list[tuple[int, list, object]]]:
    """The ORM's SELECT of one Sku by code, its field names and its from-database converters."""
    compiler = Sku.objects.filter(code="").query.get_compiler(db)
    sql, params = compiler.as_sql()
    assert params == ("",), params
    columns = [col for col, _, _ in compiler.select]
    converters = compiler.get_converters(columns)
    return (
        sql,
        [col.target.attname for col in columns],
        [(i, funcs, col) for i, (funcs, col) in converters.items()],
    )


def skus_by_code(*, codes: Iterable[str]) -> dict[str, Sku]:
    codes = set(codes)
    found = {s.code: s for s in Sku.objects.filter(code__in=[c for c in codes if "\x00" not in c])}
    missing = sorted(codes - found.keys())
    if missing:
        raise UnknownSku("Unknown SKU(s).", details={"skus": missing})
    return found


def sku_list(*, search: str | None = None, category: str | None = None) -> QuerySet[Sku]:
    qs = Sku.objects.filter(is_active=True)
    if search:
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
    # on_hand - reserved - held - safety_stock, never below 0; computed once (the counters are set once).
    available: int = field(init=False)

    def __post_init__(self) -> None:
        self.available = max(0, self.on_hand - self.reserved - self.held - self.safety_stock)


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


# The location fields an availability read needs; the others are deferred (loaded on access).
# Building 500 full Location instances per request would cost more than the query itself.
_AVAILABILITY_LOCATION_FIELDS = tuple(
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


_ALL_LOCATION_FIELDS = tuple(f.attname for f in Location._meta.concrete_fields)
# Where locations_with_sku reads id, code, latitude, longitude in a raw row (no converters on these).
_ALL_FIELD_INDEX = tuple(_ALL_LOCATION_FIELDS.index(f) for f in ("id", "code", "latitude", "longitude"))


def _stock_rows(
    *,
    sku: Sku,
    location_fields: tuple[str, ...],
    every_location: bool = False,
    active_only: bool = True,
    kind: str | None = None,
    pickup: bool | None = None,
    ship_only: bool = False,
    box: tuple[float, float, float, float] | None = None,
    min_quantity: int = 0,
    convert: bool = True,
) -> list[tuple]:
    """(*location_fields, on_hand, reserved, held, safety_stock) rows of one SKU, one query.

    The stock rows come with their locations through one join (the covering index on
    StockLevel(sku) on PostgreSQL), so no per-request scan of the whole Location table.
    With `every_location`, locations without a stock row come back with NULL counters (a LEFT JOIN).
    `min_quantity` > 0 drops rows that cannot give that many even with every hold expired.

    This is the hottest read of the API (up to 500 rows per request, benchmarked at 5M stock
    rows), so the SQL is written out here: the equivalent queryset (a FilteredRelation with
    annotations) costs ~1 ms of CPU to build and compile and ~3 us per row to iterate, more
    than the database spends on it. Column names come from the models' _meta and values pass
    through the backend's converters, as the ORM does (unless `convert` is false: then the
    caller applies `_location_converters` to the rows it keeps, see `LocationStock`).
    """
    db = router.db_for_read(StockLevel)
    conn = connections[db]
    sql, fixed = _stock_sql(db, location_fields, left_join=every_location)
    where, params = [], [sku.pk]
    if active_only:
        where.append(f"l.{fixed['is_active']} = %s")
        params.append(True)
    if kind:
        where.append(f"l.{fixed['kind']} = %s")
        params.append(kind)
    if pickup is not None:
        where.append(f"l.{fixed['offers_pickup']} = %s")
        params.append(pickup)
    if ship_only:
        where.append(f"l.{fixed['ships_orders']} = %s")
        params.append(True)
    if box is not None:
        where.append("l.{lat} >= %s AND l.{lat} <= %s AND l.{lng} >= %s AND l.{lng} <= %s".format(**fixed))
        params.extend(box)
    if min_quantity > 0:
        where.append("s.{on_hand} >= s.{reserved} + s.{safety_stock} + %s".format(**fixed))
        params.append(min_quantity)
    if where:
        sql += " WHERE " + " AND ".join(where)
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    converters = _location_converters(db, location_fields) if convert else None
    if converters:  # none on PostgreSQL for the fields the availability reads use
        rows = [_converted(row, converters, conn) for row in rows]
    return rows


def _converted(row: tuple, converters: list, conn) -> tuple:
    values = list(row)
    for i, funcs, col in converters:
        for func in funcs:
            values[i] = func(values[i], col, conn)
    return tuple(values)


def _stock_by_location(
    *, sku: Sku, location_fields: tuple[str, ...] = _AVAILABILITY_LOCATION_FIELDS, **filters
) -> list[tuple[Location, int, int, int, int]]:
    """`_stock_rows` as (location, on_hand, reserved, held, safety_stock), the locations partly loaded."""
    db = router.db_for_read(StockLevel)
    n = len(location_fields)
    return [
        (
            _location_partial(db, location_fields, row[:n]),
            row[n] or 0,
            row[n + 1] or 0,
            row[n + 2] or 0,
            row[n + 3] or 0,
        )
        for row in _stock_rows(sku=sku, location_fields=location_fields, **filters)
    ]


@functools.cache
def _stock_sql(db: str, location_fields: tuple[str, ...], *, left_join: bool) -> tuple[str, dict[str, str]]:
    """The SELECT ... FROM location JOIN stock level part of `_stock_rows`, and quoted column names."""
    qn = connections[db].ops.quote_name
    loc, sl = Location._meta, StockLevel._meta
    fixed = {
        "is_active": qn(loc.get_field("is_active").column),
        "kind": qn(loc.get_field("kind").column),
        "offers_pickup": qn(loc.get_field("offers_pickup").column),
        "ships_orders": qn(loc.get_field("ships_orders").column),
        "lat": qn(loc.get_field("latitude").column),
        "lng": qn(loc.get_field("longitude").column),
        **{f: qn(sl.get_field(f).column) for f in ("on_hand", "reserved", "held", "safety_stock")},
    }
    columns = ", ".join("l." + qn(loc.get_field(f).column) for f in location_fields)
    counters = ", ".join("s." + fixed[f] for f in ("on_hand", "reserved", "held", "safety_stock"))
    sql = (
        f"SELECT {columns}, {counters} FROM {qn(loc.db_table)} l "
        f"{'LEFT OUTER JOIN' if left_join else 'INNER JOIN'} {qn(sl.db_table)} s "
        f"ON s.{qn(sl.get_field('location').column)} = l.{qn(loc.pk.column)} "
        f"AND s.{qn(sl.get_field('sku').column)} = %s"
    )
    return sql, fixed


@functools.cache
def _location_converters(db: str, location_fields: tuple[str, ...]) -> list[tuple[int, list, object]]:
    """The backend's and the fields' from-database converters (SQLite booleans, JSON), as the ORM applies them."""
    conn = connections[db]
    out = []
    for i, name in enumerate(location_fields):
        f = Location._meta.get_field(name)
        col = f.get_col("l")
        funcs = [*conn.ops.get_db_converters(col), *f.get_db_converters(conn)]
        if funcs:
            out.append((i, funcs, col))
    return out


def _location_partial(db: str, fields: tuple[str, ...], values: tuple) -> Location:
    """A Location loaded with `fields`, what `Model.from_db` builds for `.only(*fields)` without
    its per-field bookkeeping (5 us a row, most of a 500-row read). Fields not loaded are
    deferred: they load from the database on first access."""
    loc = Location.__new__(Location)
    loc.__dict__.update(zip(fields, values, strict=True))
    loc._state = ModelState()
    loc._state.adding = False
    loc._state.db = db
    return loc


def _location_availabilities(
    *, sku: Sku, rows: list[tuple[Location, int, int, int, int]], near: tuple[float, float] | None
) -> list[LocationAvailability]:
    expired = expired_held(sku_ids=[sku.pk]) if any(r[3] for r in rows) else {}
    sku_id = sku.pk
    km = distance_from(*near) if near is not None else None
    out = []
    append = out.append
    for loc, on_hand, reserved, held, safety in rows:
        if expired:
            held -= expired.get((loc.id, sku_id), 0)
        la = LocationAvailability(loc, on_hand, reserved, held, safety)
        if km is not None:
            la.distance_km = round(km(loc.latitude, loc.longitude), 3)
        append(la)
    return out


AVAILABILITY_LIMIT = 50  # locations listed by default by availability_for_sku
AVAILABILITY_MAX_LIMIT = 500

# id, code, name, kind, offers_pickup, ships_orders, latitude, longitude (+ the four counters)
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

    Without `explain`: one query for the stock rows joined with their locations, filtered in SQL
    (the bounding box of `radius_km` around `near`, something on the shelf), plus one for expired
    holds when any unit is held; the rows are built straight from the cursor's tuples (this is
    the hottest read of the API: about 350 stocked locations per SKU in the benchmark).
    With `explain`: every location, `limit` not applied (a LEFT JOIN, so also those that never
    stocked the SKU), with its counters and the reasons it was left out: "inactive",
    "not a <kind>", "does not ship", "no pickup", "out of radius", "nothing available";
    those left out come last.
    """
    if explain:
        return _availability_explained(
            sku=sku, near=near, radius_km=radius_km, pickup_only=pickup_only, kind=kind, ship_only=ship_only
        )
    box = bounding_box(near[0], near[1], radius_km) if near is not None and radius_km is not None else None
    rows = _stock_rows(
        sku=sku,
        location_fields=_LISTED_LOCATION_FIELDS,
        kind=kind,
        pickup=True if pickup_only else None,
        ship_only=ship_only,
        box=box,
        min_quantity=1,
    )
    expired = expired_held(sku_ids=[sku.pk]) if any(r[10] for r in rows) else {}
    sku_id = sku.pk
    km = distance_from(*near) if near is not None else None
    total = ship_total = pickup_total = 0
    counted = []
    append = counted.append
    for loc_id, code, name, loc_kind, pickup, ships, lat, lng, on_hand, reserved, held, safety in rows:
        if expired:
            held -= expired.get((loc_id, sku_id), 0)
        available = on_hand - reserved - held - safety
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


def _availability_explained(
    *,
    sku: Sku,
    near: tuple[float, float] | None,
    radius_km: float | None,
    pickup_only: bool,
    kind: str | None,
    ship_only: bool,
) -> SkuAvailability:
    rows = _stock_by_location(sku=sku, every_location=True, active_only=False)
    las = _location_availabilities(sku=sku, rows=rows, near=near)
    for la in las:
        loc = la.location
        if not loc.is_active:
            la.excluded.append("inactive")
        if kind and loc.kind != kind:
            la.excluded.append(f"not a {kind}")
        if ship_only and not loc.ships_orders:
            la.excluded.append("does not ship")
        if pickup_only and not loc.offers_pickup:
            la.excluded.append("no pickup")
        if radius_km is not None and la.distance_km is not None and la.distance_km > radius_km:
            la.excluded.append("out of radius")
        if la.available <= 0 and not la.excluded:
            la.excluded.append("nothing available")
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

    def __init__(self, db: str, row: tuple, available: int, distance_km: float | None) -> None:
        self._db, self._row, self._location = db, row, None
        self.available, self.distance_km = available, distance_km

    @property
    def location(self) -> Location:
        if self._location is None:
            fields = _ALL_LOCATION_FIELDS
            row = self._row[: len(fields)]
            converters = _location_converters(self._db, fields)
            if converters:
                row = _converted(row, converters, connections[self._db])
            self._location = _location_partial(self._db, fields, row)
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
    One query, plus one for expired holds when any unit is held. Filtered and sorted on the
    cursor's tuples; each Location is built when it is first used (`LocationStock.location`).
    """
    box = bounding_box(near[0], near[1], radius_km) if near is not None and radius_km is not None else None
    fields = _ALL_LOCATION_FIELDS
    rows = _stock_rows(
        sku=sku,
        location_fields=fields,
        every_location=not quantity,
        kind=kind,
        pickup=pickup,
        box=box,
        min_quantity=quantity or 0,
        convert=False,
    )
    n = len(fields)
    i_id, i_code, i_lat, i_lng = _ALL_FIELD_INDEX
    expired = expired_held(sku_ids=[sku.pk]) if any(r[n + 2] for r in rows) else {}
    sku_id = sku.pk
    km = distance_from(*near) if near is not None else None
    kept = []
    append = kept.append
    for row in rows:
        on_hand, reserved, held, safety = row[n:]
        if on_hand is None:  # no stock row (the LEFT JOIN)
            available = 0
        else:
            available = on_hand - reserved - held - safety
            if expired:
                available += expired.get((row[i_id], sku_id), 0)
            if available < 0:
                available = 0
        if quantity and available < quantity:
            continue
        if km is None:
            append((0, row[i_code], available, row, None))
            continue
        distance = round(km(row[i_lat], row[i_lng]), 3)
        if radius_km is None or distance <= radius_km:
            append((distance, row[i_code], available, row, distance))  # codes are unique: rows never compared
    kept.sort()
    db = router.db_for_read(StockLevel)
    return [LocationStock(db, row, available, distance) for _, _, available, row, distance in kept]


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
    so the answer is the one order placement would get. Lines it cannot fill list `alternatives`:
    the nearest locations with some available (nearest the destination or the chosen store).
    At most five queries: routing's three, plus two for the alternatives when a line is short.
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


def available_at(*, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Available units for (location_id, sku_id) pairs: one query for stock, one for expired holds."""
    if not pairs:
        return {}

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


def movement_list(
    *,
    sku: Sku | None = None,
    location: Location | None = None,
    location_ids: Iterable[int] | None = None,
    kind: str | None = None,
    reference: str | None = None,
) -> QuerySet[StockMovement]:
    """The ledger, newest first. `location_ids` (None = everywhere) scopes it to a staff user's locations."""
    qs = StockMovement.objects.select_related("sku", "location", "user")
    if sku is not None:
        qs = qs.filter(sku=sku)
    if location is not None:
        qs = qs.filter(location=location)
    if location_ids is not None:
        qs = qs.filter(location_id__in=list(location_ids))
    if kind:
        qs = qs.filter(kind=kind)
    if reference:
        qs = qs.filter(reference=reference)
    return qs.order_by("-id")


def stock_levels_at(*, location: Location, sku_ids: Iterable[int]) -> list[StockLevel]:
    """Stock levels of some SKUs at one location, by SKU code, with SKU and location loaded."""
    return list(
        StockLevel.objects.filter(location=location, sku_id__in=list(sku_ids))
        .select_related("sku", "location")
        .order_by("sku__code")
    )


def location_stock(
    *,
    location: Location,
    sku_codes: Iterable[str] | None = None,
    search: str | None = None,
    in_stock: bool = False,
) -> QuerySet[StockLevel]:
    """Stock levels at one location, by SKU code, with the SKU loaded (a store's shelf).

    `in_stock` keeps levels with on hand - reserved - held - safety stock > 0, counting the held
    units of expired holds not yet reclaimed (the sweep gives them back within a minute); use
    `with_active_holds` on the page for the exact figures.
    """
    qs = StockLevel.objects.filter(location=location, sku__is_active=True).select_related("sku")
    if sku_codes is not None:
        qs = qs.filter(sku__code__in=[c for c in sku_codes if "\x00" not in c])
    if search:
        qs = qs.filter(
            Q(sku__code__icontains=search) | Q(sku__name__icontains=search) | Q(sku__barcode=search)
        )
    if in_stock:
        qs = qs.filter(on_hand__gt=F("reserved") + F("held") + F("safety_stock"))
    return qs.order_by("sku__code")


def with_active_holds(levels: Sequence[StockLevel]) -> Sequence[StockLevel]:
    """Set `active_held` (held minus expired, unreclaimed holds) and `available` on each level. One query
    at most (none when nothing is held)."""
    held = [lvl for lvl in levels if lvl.held]
    expired = (
        expired_held(sku_ids={lvl.sku_id for lvl in held}, location_ids={lvl.location_id for lvl in held})
        if held
        else {}
    )
    for lvl in levels:
        lvl.active_held = lvl.held - expired.get((lvl.location_id, lvl.sku_id), 0)
        lvl.available = max(0, lvl.on_hand - lvl.reserved - lvl.active_held - lvl.safety_stock)
    return levels


def movements_by_ids(*, ids: Iterable[int]) -> list[StockMovement]:
    """Ledger rows just written by a service, with SKU, location and user loaded for output."""
    return list(
        StockMovement.objects.filter(pk__in=list(ids))
        .select_related("sku", "location", "user")
        .order_by("id")
    )


def _transfers() -> QuerySet[Transfer]:
    return Transfer.objects.select_related("from_location", "to_location", "created_by").prefetch_related(
        Prefetch("lines", queryset=TransferLine.objects.select_related("sku").order_by("sku__code"))
    )


def transfer_get(*, transfer_id: int) -> Transfer:
    try:
        return _transfers().get(pk=transfer_id)
    except Transfer.DoesNotExist:
        raise NotFound(
            f"Unknown transfer {transfer_id}.", code="unknown_transfer", details={"transfer": transfer_id}
        ) from None


def transfer_list(
    *, location_ids: Iterable[int] | None = None, location: Location | None = None, status: str | None = None
) -> QuerySet[Transfer]:
    """Transfers newest first; `location_ids` (None = everywhere) keeps those from or to those locations."""
    qs = _transfers()
    if location_ids is not None:
        ids = list(location_ids)
        qs = qs.filter(Q(from_location_id__in=ids) | Q(to_location_id__in=ids))
    if location is not None:
        qs = qs.filter(Q(from_location=location) | Q(to_location=location))
    if status:
        qs = qs.filter(status=status)
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
