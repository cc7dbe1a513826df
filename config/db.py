"""Reading several tables in one statement, for the few hot paths where round trips count.

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
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.db import connection, models
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
        if vendor == "sqlite" and isinstance(f, models.JSONField):
            col = f"json({col})"  # stored as text: embed it as JSON, not as a string
        parts.append(f"'{f.column}', {col}")
    fn = "json_build_object" if vendor == "postgresql" else "json_object"
    return f"{fn}({', '.join(parts)})"


def json_array_sql(model: type[models.Model], alias: str) -> str:
    fn = "json_agg" if connection.vendor == "postgresql" else "json_group_array"
    return f"{fn}({json_object_sql(model, alias)})"


def text_cast(expr: str) -> str:
    """The expression as text, so that the driver hands back the JSON unparsed (decimals stay exact)."""
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
    data = json.loads(text, parse_float=Decimal) if isinstance(text, str) else text
    if data is None:
        return []
    if isinstance(data, dict):
        data = [data]
    return [model_from_dict(model, row) for row in data]


def insert_returning(objs: list[models.Model], *, on_conflict: str = "") -> None:
    """ONE `INSERT .. VALUES (..), (..) {on_conflict} RETURNING pk` for instances of one model.

    Sets each object's pk, in the order of `objs` (the order of the VALUES rows, as Django's
    bulk_create assumes too). `on_conflict` must return a row for every input row (DO UPDATE),
    never skip one. Cheaper than bulk_create on a hot path: the SQL is plain text, not compiled.
    """
    if not objs:
        return
    meta = objs[0]._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    params: list = []
    for obj in objs:
        params += [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * len(objs))} {on_conflict} RETURNING {qn(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pks = [r[0] for r in cursor.fetchall()]
    if len(pks) != len(objs):
        raise RuntimeError(f"INSERT returned {len(pks)} rows for {len(objs)}")
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
