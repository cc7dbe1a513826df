"""The raw SQL of the orders app: order placement's lookup and its rows, and routing's reads.

Each replaces ORM round trips or ORM CPU that docs/benchmarks.md measured (flash-sale "What it
took"; "Figure 2: routing a 10-line ship order across 500 locations"). Everything else in orders
uses the ORM.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from config.db import (
    insert_fields,
    json_array_sql,
    json_object_sql,
    json_rows,
    jsonb_recordset_sql,
    models_from_json,
    text_cast,
)
from inventory.db import available_sql
from inventory.models import Sku, StockLevel
from stores.models import Location

from .models import Customer, Fulfillment, FulfillmentLine, Order, OrderEvent, OrderLine


@dataclass(frozen=True)
class PlacementLookup:
    """What one statement reads before an order is placed."""

    store: Location | None  # the pickup store asked for, if any and if it exists
    skus: dict[str, Sku]  # by code, the ones that exist
    customers: list[Customer]  # at most two: the email's and the phone's
    store_available: dict[int, int]  # units available at the store per SKU id (no stock row: absent)


def placement_lookup(
    *,
    store_code: str | None,
    sku_codes: list[str],
    email: str | None,
    phone: str | None,
    with_store_stock: bool = False,
) -> PlacementLookup:
    """The pickup store, the lines' SKUs, the customer(s) and (`with_store_stock`) the units of
    those SKUs available at the store, as one SELECT of four scalar subqueries.

    Availability is inventory's one definition (`inventory.db.available_sql`: live holds only). A
    plain read, not a lock: the guarded reservation is the real check.

    ORM equivalent: Location.objects.filter(code=...).first(), Sku.objects.filter(code__in=...),
    Customer.objects.filter(Q(email=...) | Q(phone=...))[:2] and
    StockLevel.objects.with_available().filter(location__code=..., sku__code__in=...): 4 round trips
    for 1 (flash-sale "What it took", step 1: 17 -> 11 statements with the order-rows INSERT below).
    """
    qn = connection.ops.quote_name
    params: list = []
    parts = ["NULL"] * 4
    if store_code:
        parts[0] = (
            f"(SELECT {text_cast(json_object_sql(Location, 'l'))} FROM {qn(Location._meta.db_table)} l "
            "WHERE l.code = %s)"
        )
        params.append(store_code)
    in_codes = ", ".join(["%s"] * len(sku_codes))
    if sku_codes:
        parts[1] = (
            f"(SELECT {text_cast(json_array_sql(Sku, 's'))} FROM {qn(Sku._meta.db_table)} s "
            f"WHERE s.code IN ({in_codes}))"
        )
        params += sku_codes
    if email or phone:
        cond = " OR ".join(c for c, v in (("c.email = %s", email), ("c.phone = %s", phone)) if v)
        parts[2] = (
            f"(SELECT {text_cast(json_array_sql(Customer, 'c'))} FROM "
            f"(SELECT * FROM {qn(Customer._meta.db_table)} c WHERE {cond} ORDER BY c.id LIMIT 2) c)"
        )
        params += [v for v in (email, phone) if v]
    if with_store_stock and store_code and sku_codes:
        pair = "json_build_array" if connection.vendor == "postgresql" else "json_array"
        agg = "json_agg" if connection.vendor == "postgresql" else "json_group_array"
        units = available_sql("s")
        parts[3] = (
            f"(SELECT {text_cast(f'{agg}({pair}(s.sku_id, {units}))')} "
            f"FROM {qn(StockLevel._meta.db_table)} s "
            f"WHERE s.location_id = (SELECT id FROM {qn(Location._meta.db_table)} WHERE code = %s) "
            f"AND s.sku_id IN (SELECT id FROM {qn(Sku._meta.db_table)} WHERE code IN ({in_codes})))"
        )
        params += [timezone.now(), store_code, *sku_codes]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        store, skus, customers, available = cursor.fetchone()
    stores = models_from_json(Location, store)
    return PlacementLookup(
        store=stores[0] if stores else None,
        skus={s.code: s for s in models_from_json(Sku, skus)},
        customers=models_from_json(Customer, customers),
        store_available=dict(json.loads(available or "[]")),
    )


# The rows of a new order, in the order they are written, and how each points at its parents:
# an order at its (maybe new) customer, lines and fulfillments at the order, a fulfillment line at
# its fulfillment (by location: one per location in a new order) and order line (by SKU: one line
# per SKU), events at the order.
_ORDER_ROWS = (
    ("o", Order, {"customer": "COALESCE(x.customer_id, (SELECT id FROM c))"}),
    ("l", OrderLine, {"order": "(SELECT id FROM o)"}),
    ("f", Fulfillment, {"order": "(SELECT id FROM o)"}),
    (
        "fl",
        FulfillmentLine,
        {
            "fulfillment": "(SELECT id FROM f WHERE f.location_id = x.location_id)",
            "order_line": "(SELECT id FROM l WHERE l.sku_id = x.sku_id)",
        },
    ),
    ("e", OrderEvent, {"order": "(SELECT id FROM o)"}),
)
_RETURNING = {"l": "id, sku_id", "f": "id, location_id"}


@functools.cache
def _order_rows_sql(new_customer_key: str | None, rename_customer: bool = True) -> str:
    """The INSERT of a new order's rows from ONE jsonb parameter, one CTE per table.

    Its text depends only on how a new customer is matched (`new_customer_key`: "email", "phone",
    or None for a known customer) and whether a concurrently created customer takes the order's
    name (`rename_customer`: not for staff at the till), never on the number of lines or
    fulfillments, so the driver parses it once and the server plans it once (a prepared
    statement) for every order. The order's columns (its `contact_*` included) are every concrete
    field of Order.
    """
    qn = connection.ops.quote_name
    ctes = ["d AS (SELECT %s::jsonb AS j)"]
    if new_customer_key:
        table = qn(Customer._meta.db_table)
        columns = [qn(f.column) for f in insert_fields(Customer)]
        source = jsonb_recordset_sql(Customer, "(SELECT j->'c' FROM d)")
        # DO UPDATE even when nothing changes: DO NOTHING would not return the existing row's id.
        name = (
            f"CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE {table}.name END"
            if rename_customer
            else f"{table}.name"
        )
        ctes.append(
            f"c AS (INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join('x.' + c for c in columns)} "
            f"FROM {source} "
            f"ON CONFLICT ({qn(new_customer_key)}) DO UPDATE SET name = {name} RETURNING id)"
        )
    else:
        ctes.append("c AS (SELECT NULL::bigint AS id WHERE false)")
    for alias, model, parents in _ORDER_ROWS:
        fields = insert_fields(model)
        extra = ("location_id bigint",) if alias == "fl" else ()
        cells = [parents.get(f.name, f"x.{qn(f.column)}") for f in fields]
        source = jsonb_recordset_sql(model, f"(SELECT j->'{alias}' FROM d)", extra=extra)
        ctes.append(
            f"{alias} AS (INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
            f"SELECT {', '.join(cells)} FROM {source} ORDER BY x.n RETURNING {_RETURNING.get(alias, 'id')})"
        )
    union = " UNION ALL ".join(
        f"SELECT '{alias}', id FROM {alias}" for alias in ("c", "o", "l", "f", "fl", "e")
    )
    return f"WITH {', '.join(ctes)} {union}"


def insert_order_rows(
    *,
    new_customer: Customer | None,
    rename_customer: bool = True,
    order: Order,
    lines: list[OrderLine],
    fulfillments: list[Fulfillment],
    fulfillment_lines: list[FulfillmentLine],
    events: list[OrderEvent],
) -> dict[str, list[int]]:
    """PostgreSQL: INSERT a new order, its lines, fulfillments, fulfillment lines, events and (when
    the lookup found none) its email-only or phone-only customer, as ONE statement; the new ids
    per table ("c", "o", "l", "f", "fl", "e"), ascending in the order the rows were given.

    Each row points at its parent through a subquery on the parent's CTE (a fulfillment line finds
    its fulfillment by location and its order line by SKU). A concurrent first order of the same
    customer is met by ON CONFLICT on the one key the customer has: both orders share that row
    (renamed to this order's name unless `rename_customer` is False: staff at the till).

    ORM equivalent: customer.save() then bulk_create per table: 5-6 round trips for 1 (flash-sale
    "What it took", step 1), with a text that never changes, so it is prepared once (step 6).
    """
    payload = {
        "o": json_rows([order]),
        "l": json_rows(lines),
        "f": json_rows(fulfillments),
        "fl": json_rows(fulfillment_lines, location_id=lambda fl: fl.fulfillment.location_id),
        "e": json_rows(events),
    }
    key = None
    if new_customer is not None:
        key = "email" if new_customer.email else "phone"
        payload["c"] = json_rows([new_customer])
    with connection.cursor() as cursor:
        cursor.execute(_order_rows_sql(key, rename_customer), [json.dumps(payload, default=str)])
        ids: dict[str, list[int]] = defaultdict(list)
        for alias, pk in cursor.fetchall():
            ids[alias].append(pk)
    return {alias: sorted(pks) for alias, pks in ids.items()}


# --- Routing's reads ---------------------------------------------------------------------------


@functools.cache
def _routing_sql(vendor: str) -> tuple[str, str]:
    """The two statements of routing, with {skus} (SKU placeholders) and {where} to fill in."""
    from .routing.data import LOCATION_FIELDS

    q = connection.ops.quote_name
    stock = q(StockLevel._meta.db_table)
    sku, loc = q(Sku._meta.db_table), q(Location._meta.db_table)
    loc_cols = ", ".join(f"l.{q(Location._meta.get_field(f).column)}" for f in ("id", *LOCATION_FIELDS))
    available = (
        f"SELECT s.location_id, s.sku_id, {available_sql('s')}, NULL "
        f"FROM {stock} s WHERE s.sku_id IN ({{skus}}) AND s.on_hand > s.reserved + s.safety_stock{{where}} "
        f"UNION ALL SELECT NULL, k.id, NULL, k.code FROM {sku} k WHERE k.id IN ({{skus}})"
    )
    locations = (
        f"SELECT {loc_cols} FROM {loc} l WHERE l.id IN (SELECT s.location_id FROM {stock} s "
        f"WHERE s.sku_id IN ({{skus}}) AND s.on_hand > s.reserved + s.safety_stock)"
    )
    return available, locations


def routing_stock(
    *, sku_ids: list[int], location_id: int | None = None
) -> tuple[dict[int, dict[int, int]], dict[int, str]]:
    """Per location, the units available of each of `sku_ids` (only levels with some), and the
    SKUs' codes: ({location_id: {sku_id: units}}, {sku_id: code}). One statement (UNION ALL).

    The `on_hand > reserved + safety_stock` prefilter is a cheap, looser test that lets the index
    skip empty levels; availability itself is inventory's one definition (`available_sql`).
    ORM equivalent: StockLevel.objects.with_available().filter(sku_id__in=..., available__gt=0)
    .values_list(...) plus Sku.objects.filter(pk__in=...).values_list("pk", "code"): 2 queries,
    and compiling and iterating querysets over thousands of narrow rows per order costs more than
    the queries ("Figure 2": a 10-line order over 500 locations, p99 15 ms, target 20).
    """
    available, _ = _routing_sql(connection.vendor)
    marks = ", ".join(["%s"] * len(sku_ids))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    stock: dict[int, dict[int, int]] = defaultdict(dict)
    codes: dict[int, str] = {}
    with connection.cursor() as cursor:
        if location_id is None:
            cursor.execute(available.format(skus=marks, where=""), [now, *sku_ids, *sku_ids])
        else:
            cursor.execute(
                available.format(skus=marks, where=" AND s.location_id = %s"),
                [now, *sku_ids, location_id, *sku_ids],
            )
        # Iterating the cursor (not fetchall) builds each row only while it is read: thousands of
        # rows alive at once would trigger garbage collections in the middle of routing.
        for loc_id, sku_id, units, code in cursor:
            if loc_id is None:
                codes[sku_id] = code
            elif units > 0:
                stock[loc_id][sku_id] = units
    return stock, codes


def routing_locations(*, sku_ids: list[int]) -> list[tuple]:
    """(id, *routing.data.LOCATION_FIELDS) of every location holding some of `sku_ids`.

    ORM equivalent: Location.objects.filter(pk__in=Subquery(...)).values_list("pk", *LOCATION_FIELDS):
    the same one query, compiled on every order (same measurement as routing_stock).
    """
    _, locations = _routing_sql(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(locations.format(skus=", ".join(["%s"] * len(sku_ids))), sku_ids)
        return cursor.fetchall()
