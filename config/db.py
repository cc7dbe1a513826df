"""The project-wide raw SQL: helpers the apps' db.py modules share, and config's own statements.

Raw SQL lives only in an app's db.py and here (ruff's TID251 bans `connection.cursor` elsewhere).
Each statement's docstring gives its ORM equivalent and the measurement that made it raw.

Helpers: reading several tables in one statement, for the few hot paths where round trips count.

`json_object_sql(Model, alias)` is a SQL expression that renders one row of `Model` as a JSON
object of all its concrete columns (PostgreSQL `json_build_object`, SQLite `json_object`);
`json_array_sql` aggregates rows into a JSON array. A selector combines them as scalar
subqueries, so three lookups cost one round trip:

    SELECT (SELECT {json_object_sql(Location, "l")} FROM stores_location l WHERE l.code = %s),
           (SELECT {json_array_sql(Sku, "s")} FROM inventory_sku s WHERE s.code IN (...))

`models_from_json(Model, text)` turns the result back into model instances (every field
converted by the field itself), as if the ORM had loaded them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import TypeVar

from django.conf import settings
from django.db import connection, connections, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=models.Model)


def _columns(model: type[models.Model]) -> list[models.Field]:
    return list(model._meta.concrete_fields)


def json_object_sql(model: type[models.Model], alias: str) -> str:
    return _json_object_sql(model, alias, connection.vendor)


@functools.cache
def _json_object_sql(model: type[models.Model], alias: str, vendor: str) -> str:
    qn = connection.ops.quote_name
    parts = []
    for f in _columns(model):
        col = f"{alias}.{qn(f.column)}"
        if isinstance(f, models.DecimalField):
            # as text: a JSON number would come back as a float
            col = f"({col})::text" if vendor == "postgresql" else f"CAST({col} AS TEXT)"
        elif vendor == "sqlite" and isinstance(f, models.JSONField):
            col = f"json({col})"  # stored as text: embed it as JSON, not as a string
        elif vendor == "sqlite" and isinstance(f, models.FloatField):
            # SQLite's JSON writes 15 significant digits; 17 give the float back exactly
            # ('!': SQLite's own printf stops at 16 digits without it; '%%': run with parameters)
            col = f"CASE WHEN {col} IS NULL THEN NULL ELSE printf('%%!.17g', {col}) END"
        parts.append(f"'{f.column}', {col}")
    fn = "json_build_object" if vendor == "postgresql" else "json_object"
    return f"{fn}({', '.join(parts)})"


def json_array_sql(model: type[models.Model], alias: str) -> str:
    fn = "json_agg" if connection.vendor == "postgresql" else "json_group_array"
    return f"{fn}({json_object_sql(model, alias)})"


def text_cast(expr: str) -> str:
    """The expression as text, so that the driver hands back the JSON unparsed (json.loads is
    faster than the driver's own parsing into Python objects)."""
    return f"({expr})::text" if connection.vendor == "postgresql" else expr


@functools.cache
def _decoders(model: type[models.Model]) -> tuple[list[str], list[tuple[str, object]]]:
    """The attnames, and per column the function that turns its JSON value into the field's value
    (None where JSON already gives the right type: text, integers, floats, decoded JSON)."""
    out = []
    for f in _columns(model):
        if isinstance(f, models.JSONField):
            conv = None
        elif isinstance(f, models.BooleanField):
            conv = bool  # SQLite gives 0/1
        elif isinstance(f, models.CharField | models.TextField | models.IntegerField | models.AutoField):
            conv = None
        elif isinstance(f, models.ForeignKey):
            conv = None  # integer keys
        elif isinstance(f, models.FloatField):
            conv = float
        elif isinstance(f, models.DateTimeField):
            conv = _datetime
        else:
            conv = f.to_python
        out.append((f.column, conv))
    return [f.attname for f in _columns(model)], out


def _datetime(value):
    value = parse_datetime(value) if isinstance(value, str) else value
    if value is not None and value.tzinfo is None and settings.USE_TZ:
        value = value.replace(tzinfo=dt.UTC)  # SQLite stores UTC without an offset
    return value


def model_from_dict(model: type[M], data: dict) -> M:
    names, decoders = _decoders(model)
    values = []
    for column, conv in decoders:
        value = data.get(column)
        if value is not None and conv is not None:
            value = conv(value)
        values.append(value)
    return model.from_db(connection.alias, names, values)


def models_from_json(model: type[M], text: str | None) -> list[M]:
    """Model instances from a JSON object or array of objects (None or "null": none)."""
    if text is None:
        return []
    data = json.loads(text) if isinstance(text, str) else text
    if data is None:
        return []
    if isinstance(data, dict):
        data = [data]
    return [model_from_dict(model, row) for row in data]


def insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def jsonb_recordset_sql(model: type[models.Model], source: str, *, extra: tuple[str, ...] = ()) -> str:
    """PostgreSQL: `jsonb_to_recordset({source}) AS x(<column> <type>, ..., n integer)`: the rows
    of `model` that `json_rows` serialised into a jsonb array. `extra`: more "name type" columns."""
    return _recordset(model, source, extra, connection.vendor)


@functools.cache
def _recordset(model, source: str, extra: tuple[str, ...], vendor: str) -> str:
    qn = connection.ops.quote_name
    cols = [f"{qn(f.column)} {f.db_type(connection)}" for f in insert_fields(model)] + list(extra)
    return f"jsonb_to_recordset({source}) AS x({', '.join(cols)}, n integer)"


def json_rows(objs, **extra_per_row) -> list[dict]:
    """Each object's insert values (auto_now fields filled in, as save() would) as a dict for
    jsonb_recordset_sql, with its position `n`; serialise with `json.dumps(..., default=str)`
    (decimals and datetimes as text, which PostgreSQL reads back exactly)."""
    if not objs:
        return []
    fields = insert_fields(type(objs[0]))
    rows = []
    for n, obj in enumerate(objs):
        row = {f.column: f.pre_save(obj, True) for f in fields}
        for key, fn in extra_per_row.items():
            row[key] = fn(obj)
        row["n"] = n
        rows.append(row)
    return rows


def set_pks(objs, pks) -> None:
    """Give objects written by a raw INSERT their new primary keys."""
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk


@functools.cache
def _insert_sql(model, on_conflict: str, vendor: str, n_rows: int) -> str:
    qn = connection.ops.quote_name
    fields = insert_fields(model)
    cols = ", ".join(qn(f.column) for f in fields)
    head = f"INSERT INTO {qn(model._meta.db_table)} ({cols}) "
    tail = f" {on_conflict} RETURNING {qn(model._meta.pk.column)}"
    if vendor == "postgresql":  # one parameter, one text whatever the number of rows
        source = jsonb_recordset_sql(model, "%s::jsonb")
        return (
            f"{head}SELECT {', '.join('x.' + qn(f.column) for f in fields)} FROM {source} ORDER BY x.n{tail}"
        )
    row = f"({', '.join(['%s'] * len(fields))})"
    return f"{head}VALUES {', '.join([row] * n_rows)}{tail}"


def insert_returning(objs: list[models.Model], *, on_conflict: str = "") -> None:
    """ONE `INSERT .. {on_conflict} RETURNING pk` for instances of one model; sets their pks.

    PostgreSQL takes the rows as one jsonb parameter (a statement parsed and planned once);
    elsewhere as VALUES rows. Rows are inserted in the order of `objs` and RETURNING gives their
    ids in that order (Django's bulk_create assumes the same). `on_conflict` must return a row for
    every input row (DO UPDATE), never skip one. Cheaper than bulk_create on a hot path.
    """
    if not objs:
        return
    model = type(objs[0])
    vendor = connection.vendor
    if vendor == "postgresql":
        params = [json.dumps(json_rows(objs), default=str)]
        sql = _insert_sql(model, on_conflict, vendor, 0)
    else:
        fields = insert_fields(model)
        params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in fields]
        sql = _insert_sql(model, on_conflict, vendor, len(objs))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pks = [r[0] for r in cursor.fetchall()]
    if len(pks) != len(objs):
        raise RuntimeError(f"INSERT returned {len(pks)} rows for {len(objs)}")
    set_pks(objs, pks)


# --- config's own statements -------------------------------------------------------------------


def database_ping() -> None:
    """`SELECT 1` for the readiness probe. ORM equivalent: none (no model to read); raw by nature."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _idempotency_table() -> str:
    from orders.models import IdempotencyKey

    return connection.ops.quote_name(IdempotencyKey._meta.db_table)


def idempotency_claim(*, owner_id: int, key: str, fingerprint: str) -> int | None:
    """INSERT the key row; its id, or None when a row for (owner, key) exists or is being written.

    PostgreSQL guards the INSERT with `pg_try_advisory_xact_lock` on the pair, so a concurrent
    duplicate never waits on the first request's row lock: it finds nobody's row while the lock is
    taken (409 in progress). ORM equivalent: none for the advisory lock; without it,
    IdempotencyKey.objects.create() in a savepoint with IntegrityError handling would make a
    duplicate wait for the first request's whole transaction (config/idempotency.py).
    """
    now = timezone.now()
    table = _idempotency_table()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} (owner_id, key, fingerprint, response_body, created_at) "
                "SELECT %s, %s, %s, '', %s WHERE pg_try_advisory_xact_lock(hashtextextended(%s, 7)) "
                "ON CONFLICT (owner_id, key) DO NOTHING RETURNING id",
                [owner_id, key, fingerprint, now, f"idempotency:{owner_id}:{key}"],
            )
        else:  # SQLite: write transactions are serialised (BEGIN IMMEDIATE), nothing is ever in flight
            cursor.execute(
                f"INSERT INTO {table} (owner_id, key, fingerprint, response_body, created_at) "
                "VALUES (%s, %s, %s, '', %s) ON CONFLICT (owner_id, key) DO NOTHING RETURNING id",
                [owner_id, key, fingerprint, connection.ops.adapt_datetimefield_value(now)],
            )
        row = cursor.fetchone()
    return row[0] if row else None


def idempotency_store_response(*, key_id: int, status: int, body: str) -> None:
    """Store the response of the request that claimed the key row.

    ORM equivalent: IdempotencyKey.objects.filter(pk=key_id).update(response_status=..., response_body=...):
    the same one statement, compiled on every request; this text is fixed (flash-sale "What it
    took", step 4, with the raw outbox INSERT: 6.7 -> 6.0 ms of Python CPU per placement).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_idempotency_table()} SET response_status = %s, response_body = %s WHERE id = %s",
            [status, body, key_id],
        )


# --- Raw rows into model instances, as the ORM converts them --------------------------------------


@functools.cache
def _converters(
    model: type[models.Model], db: str, field_names: tuple[str, ...]
) -> list[tuple[int, list, object]]:
    """The backend's and the fields' from-database converters (SQLite booleans, JSON, ...), per
    column index, as the ORM applies them."""
    conn = connections[db]
    out = []
    for i, name in enumerate(field_names):
        field = model._meta.get_field(name)
        col = field.get_col(model._meta.db_table)
        funcs = [*conn.ops.get_db_converters(col), *field.get_db_converters(conn)]
        if funcs:
            out.append((i, funcs, col))
    return out


def has_converters(model: type[models.Model], db: str, field_names: tuple[str, ...]) -> bool:
    return bool(_converters(model, db, field_names))


def converted(model: type[models.Model], db: str, field_names: tuple[str, ...], row) -> tuple:
    """`row` with its first len(field_names) values (those fields' raw values) converted as the
    ORM converts them; the rest unchanged. No work where the backend needs none (PostgreSQL)."""
    converters = _converters(model, db, field_names)
    if not converters:
        return tuple(row)
    values = list(row)
    conn = connections[db]
    for i, funcs, col in converters:
        for func in funcs:
            values[i] = func(values[i], col, conn)
    return tuple(values)


def model_from_row(model: type[M], db: str, field_names: tuple[str, ...], row) -> M:
    """An instance from the raw values of `field_names` (other fields deferred: loaded on access)."""
    return model.from_db(db, field_names, converted(model, db, field_names, row[: len(field_names)]))
