"""Every raw SQL statement of the inventory app, and availability as one SQL fragment.

Everything else in inventory goes through the ORM. A statement is here only because a
measurement (docs/benchmarks.md) or a pinned statement count showed the ORM form costing more;
each docstring names its ORM equivalent and that reason. Table and column names come from the
models' `_meta`; rows become models through the public `Model.from_db`.
"""

from __future__ import annotations

import functools
from typing import Protocol

from django.db import connection, connections, router
from django.utils import timezone

from config.db import converted, has_converters, model_from_row
from stores.models import Location

from .models import HoldLine, Sku, StockLevel, StockMovement

# --- Availability -----------------------------------------------------------------------------


def active_held_sql(stock: str = "s") -> str:
    """SQL for the held units of live holds of the stock level aliased `stock`: its `held` counter
    minus the units of its expired hold lines not yet reclaimed. Takes one parameter, the current
    time. The hold lines are looked up only for levels that hold something (the CASE)."""
    hold = connection.ops.quote_name(HoldLine._meta.db_table)
    return (
        f"CASE WHEN {stock}.held = 0 THEN 0 ELSE {stock}.held - COALESCE((SELECT SUM(h.quantity) "
        f"FROM {hold} h WHERE h.sku_id = {stock}.sku_id AND h.location_id = {stock}.location_id "
        f"AND h.expires_at <= %s), 0) END"
    )


def available_sql(stock: str = "s", *, clamp: bool = True) -> str:
    """SQL for what the stock level aliased `stock` can still promise: on hand - reserved - live
    held units - safety stock, never below zero (`clamp=False`: the signed value, for a writer
    that derives the value before its change). Takes one parameter, the current time.

    The SQL form of `StockLevel.objects.with_available()` (inventory/models.py), for the raw
    reads: routing, order placement's lookup, the availability API, the guarded reservation.
    """
    value = f"{stock}.on_hand - {stock}.reserved - {stock}.safety_stock - ({active_held_sql(stock)})"
    if not clamp:
        return value
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"  # SQLite: the scalar MAX
    return f"{greatest}(0, {value})"


def now_param():
    """The current time as the parameter `active_held_sql`/`available_sql` take."""
    return connection.ops.adapt_datetimefield_value(timezone.now())


# --- The single-level stock change ------------------------------------------------------------


class LevelChange(Protocol):
    """Signed deltas of the counters of one stock level (inventory.services.changes.Change)."""

    location_id: int
    sku_id: int

    def deltas(self) -> dict[str, int]: ...
    def floors(self) -> dict[str, int]: ...
    def need(self, *, consumes: bool) -> int | None: ...


@functools.cache
def _guarded_update_sql(
    vendor: str, fields: tuple[str, ...], floors: tuple[str, ...], need_check: bool, consumes: bool
) -> str:
    """`UPDATE stock level SET <field> = <field> + %s .. WHERE <guard> RETURNING <available>`.

    No table alias: SQLite's RETURNING accepts only the table's own name."""
    q = connection.ops.quote_name
    table = q(StockLevel._meta.db_table)
    col = {f.name: q(f.column) for f in StockLevel._meta.concrete_fields}
    sets = ", ".join(f"{col[f]} = {col[f]} + %s" for f in fields)
    where = [f"{table}.{col['location']} = %s", f"{table}.{col['sku']} = %s"]
    where += [f"{table}.{col[f]} >= %s" for f in floors]
    if need_check:
        counted = ("reserved", "held", "safety_stock") if consumes else ("reserved", "held")
        where.append(f"{table}.{col['on_hand']} >= {' + '.join(f'{table}.{col[f]}' for f in counted)} + %s")
    return (
        f"UPDATE {table} SET {sets} WHERE {' AND '.join(where)} "
        f"RETURNING {available_sql(table, clamp=False)} AS available"
    )


def _guarded_update(change: LevelChange, *, consumes: bool) -> tuple[str, list]:
    """The guarded UPDATE of `change` and its parameters."""
    deltas, floors, need = change.deltas(), change.floors(), change.need(consumes=consumes)
    sql = _guarded_update_sql(connection.vendor, tuple(deltas), tuple(floors), need is not None, consumes)
    params = [*deltas.values(), change.location_id, change.sku_id, *floors.values()]
    if need is not None:
        params.append(need)
    params.append(now_param())  # RETURNING's available_sql
    return sql, params


def level_update_guarded(change: LevelChange, *, consumes: bool) -> int | None:
    """Add the deltas of `change` to its stock level if the guard holds; the level's availability
    after (signed: `available_sql(clamp=False)`), or None when the guard failed or there is no
    such level. One statement.

    The guard, evaluated by the database under the row lock (concurrent changes serialise on the
    row and never oversell): each counter that goes down is at least what it loses, and, unless
    the change frees more than it takes, on_hand >= reserved + held (+ safety_stock when it
    `consumes`) + what it takes.

    ORM equivalent: `StockLevel.objects.filter(<guard>).update(**{f: F(f) + d})`, which returns a
    row count only: the availability after (what `stock.out_of_stock` needs) would cost one more
    SELECT per change, and the statement counts of a placement are pinned
    (tests/orders/test_queries.py). Written once per shape of change: building and compiling the
    ORM's guarded UPDATE costs 0.26 ms of the 0.50 ms it takes (docs/benchmarks.md, "Where a
    service-layer reservation's time goes", steps 2, 3 and 3r).
    """
    sql, params = _guarded_update(change, consumes=consumes)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


@functools.cache
def _with_movement_sql(update_sql: str) -> tuple[str, list]:
    fields = [f for f in StockMovement._meta.concrete_fields if not f.primary_key]
    q = connection.ops.quote_name
    pk = q(StockMovement._meta.pk.column)
    sql = (
        f"WITH u AS ({update_sql}), m AS (INSERT INTO {q(StockMovement._meta.db_table)} "
        f"({', '.join(q(f.column) for f in fields)}) SELECT {', '.join(['%s'] * len(fields))} FROM u "
        f"RETURNING {pk}) SELECT m.{pk}, u.available FROM m, u"
    )
    return sql, fields


def level_update_guarded_with_movement(
    change: LevelChange, *, consumes: bool, movement: StockMovement
) -> tuple[int, StockMovement] | None:
    """PostgreSQL: `level_update_guarded` and the INSERT of its ledger row `movement` (unsaved) as
    ONE statement; (the availability after, the saved movement), or None (nothing written).

    `WITH u AS (UPDATE .. RETURNING <available>), m AS (INSERT INTO ledger SELECT .. FROM u
    RETURNING id) SELECT m.id, u.available FROM m, u`: the stock row is updated (and locked)
    first, the ledger row is written only when the guard held, in one round trip.

    ORM equivalent: the guarded `.update()` then `StockMovement.objects.create(...)`: two round
    trips while the hot row is locked, plus the ORM's building and compiling on every call.
    Measured (docs/benchmarks.md): "Where a service-layer reservation's time goes", step C, 0.04 ms
    of client CPU against 0.76 ms for the ORM service (step A); "1. Hot SKU", service / raw SQL
    0.86 with this statement against 0.63 before it.
    """
    update_sql, params = _guarded_update(change, consumes=consumes)
    sql, fields = _with_movement_sql(update_sql)
    if movement.created_at is None:  # auto_now_add, as save() would set it
        movement.created_at = timezone.now()
    values = [getattr(movement, f.attname) for f in fields]
    params += [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    pk, available = row
    saved = StockMovement.from_db(
        connection.alias, [StockMovement._meta.pk.attname, *(f.attname for f in fields)], [pk, *values]
    )
    return available, saved


# --- Availability reads of one SKU ------------------------------------------------------------


@functools.cache
def _sku_by_code_sql(db: str) -> tuple[str, tuple[str, ...]]:
    q = connections[db].ops.quote_name
    fields = Sku._meta.concrete_fields
    columns = ", ".join(q(f.column) for f in fields)
    sql = f"SELECT {columns} FROM {q(Sku._meta.db_table)} WHERE {q(Sku._meta.get_field('code').column)} = %s"
    return sql, tuple(f.attname for f in fields)


def sku_by_code(code: str) -> Sku | None:
    """The SKU with this code, or None. Every availability read starts here.

    ORM equivalent: `Sku.objects.filter(code=code).first()`. Building and compiling that query
    costs more CPU than running it: the SELECT written once per database took `sku_get` from 0.26
    to 0.06 ms (docs/benchmarks.md, "Figure 3 after the availability rework").
    """
    db = router.db_for_read(Sku)
    sql, names = _sku_by_code_sql(db)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, [code])
        row = cursor.fetchone()
    return None if row is None else model_from_row(Sku, db, names, row)


# The counters every availability row ends with, after the location's fields.
STOCK_COLUMNS = ("on_hand", "reserved", "active_held", "safety_stock", "available")


@functools.cache
def _stock_sql(db: str, location_fields: tuple[str, ...], left_join: bool) -> tuple[str, dict[str, str]]:
    """The SELECT .. FROM location JOIN stock level part of `stock_rows`, and the quoted columns."""
    qn = connections[db].ops.quote_name
    loc, sl = Location._meta, StockLevel._meta
    col = {
        "is_active": qn(loc.get_field("is_active").column),
        "kind": qn(loc.get_field("kind").column),
        "offers_pickup": qn(loc.get_field("offers_pickup").column),
        "ships_orders": qn(loc.get_field("ships_orders").column),
        "lat": qn(loc.get_field("latitude").column),
        "lng": qn(loc.get_field("longitude").column),
        **{f: qn(sl.get_field(f).column) for f in ("on_hand", "reserved", "safety_stock")},
    }
    columns = ", ".join("l." + qn(loc.get_field(f).column) for f in location_fields)
    counters = (
        f"s.{col['on_hand']}, s.{col['reserved']}, {active_held_sql('s')}, s.{col['safety_stock']}, "
        f"{available_sql('s')}"
    )
    sql = (
        f"SELECT {columns}, {counters} FROM {qn(loc.db_table)} l "
        f"{'LEFT OUTER JOIN' if left_join else 'INNER JOIN'} {qn(sl.db_table)} s "
        f"ON s.{qn(sl.get_field('location').column)} = l.{qn(loc.pk.column)} "
        f"AND s.{qn(sl.get_field('sku').column)} = %s"
    )
    return sql, col


def stock_rows(
    *,
    sku_id: int,
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
    """(*location_fields, on_hand, reserved, active_held, safety_stock, available) rows of one SKU.

    One statement: the stock rows with their locations through one join (the covering index on
    StockLevel(sku) on PostgreSQL), availability by `available_sql` (expired holds stop counting).
    With `every_location`, locations without a stock row come back with NULL counters (a LEFT
    JOIN). `min_quantity` > 0 drops rows that cannot give that many even with every hold expired.
    The location values are converted as the ORM converts them (SQLite booleans; nothing to do on
    PostgreSQL); with `convert=False` they are left raw, for `model_from_row` to convert the rows kept.

    ORM equivalent: `Location.objects.filter(...).annotate(stock=FilteredRelation("stock_levels",
    condition=Q(stock_levels__sku=sku)), ...)` with the availability annotations: about 1 ms of CPU
    to build and compile and 3 us per row to iterate, more than the database spends. This is the
    hottest read of the API (about 350 stocked locations per SKU, up to 500 rows a request);
    reading raw rows took `GET /availability/{sku}/` from 4.2 to 1.7 ms of CPU per request and its
    p99 at 5 million stock rows from 46 to 34 ms (docs/benchmarks.md, "3. Availability on 5
    million stock rows" and "Figure 3 after the availability rework").
    """
    db = router.db_for_read(StockLevel)
    sql, col = _stock_sql(db, location_fields, every_location)
    now = now_param()
    where, params = [], [now, now, sku_id]
    if active_only:
        where.append(f"l.{col['is_active']} = %s")
        params.append(True)
    if kind:
        where.append(f"l.{col['kind']} = %s")
        params.append(kind)
    if pickup is not None:
        where.append(f"l.{col['offers_pickup']} = %s")
        params.append(pickup)
    if ship_only:
        where.append(f"l.{col['ships_orders']} = %s")
        params.append(True)
    if box is not None:
        where.append("l.{lat} >= %s AND l.{lat} <= %s AND l.{lng} >= %s AND l.{lng} <= %s".format(**col))
        params.extend(box)
    if min_quantity > 0:
        # Index-friendly prefilter (counts every held unit as gone); callers filter on `available`.
        where.append("s.{on_hand} >= s.{reserved} + s.{safety_stock} + %s".format(**col))
        params.append(min_quantity)
    if where:
        sql += " WHERE " + " AND ".join(where)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if convert and has_converters(Location, db, location_fields):
        rows = [converted(Location, db, location_fields, row) for row in rows]
    return rows
