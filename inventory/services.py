"""Every stock change in the system goes through this module.

Each public service is one transaction (`config.services.service`: called from another
service it joins that transaction without a savepoint).

Invariants (also enforced by CHECK constraints on StockLevel):
    on_hand >= 0, reserved >= 0, held >= 0, reserved + held <= on_hand
and, for changes that consume availability (reserve, hold):
    on_hand - reserved - held - safety_stock >= 0 after the change.

Every change writes one StockMovement per stock level in the same transaction, so that
for every level the sums of the ledger deltas equal its counters (`inventory_audit`).

Concurrency:
- A change to a single stock level is one guarded UPDATE (the availability check is the
  WHERE clause, evaluated by PostgreSQL under the row lock), then the ledger INSERT.
  No read-modify-write, no lock taken before the UPDATE, sold-out requests never queue.
- A change to several levels first locks them with SELECT ... FOR UPDATE ORDER BY id
  (one global lock order: no deadlocks), checks in Python under the locks, then runs
  one guarded bulk UPDATE and one bulk INSERT: three statements whatever the line count.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone

from config.errors import InvalidInput, InvalidTransition, NotFound
from config.services import service
from stores.models import Location

from .exceptions import InsufficientStock, StockConflict
from .hooks import Restock, emit_restocks
from .models import (
    Hold,
    HoldLine,
    MovementKind,
    Sku,
    StockLevel,
    StockMovement,
    Transfer,
    TransferLine,
    TransferStatus,
)


@dataclass(frozen=True)
class Line:
    """A quantity of one SKU at one location."""

    location_id: int
    sku_id: int
    quantity: int


@dataclass
class _Change:
    location_id: int
    sku_id: int
    on_hand: int = 0
    reserved: int = 0
    held: int = 0
    safety_stock: int = 0

    @property
    def key(self) -> tuple[int, int]:
        return (self.location_id, self.sku_id)

    @property
    def quantity(self) -> int:
        return max(abs(self.on_hand), abs(self.reserved), abs(self.held), abs(self.safety_stock))

    @property
    def availability_delta(self) -> int:
        return self.on_hand - self.reserved - self.held - self.safety_stock


_FIELDS = ("on_hand", "reserved", "held", "safety_stock")


def _merge(changes: Iterable[_Change]) -> list[_Change]:
    merged: dict[tuple[int, int], _Change] = {}
    for c in changes:
        m = merged.setdefault(c.key, _Change(c.location_id, c.sku_id))
        for f in _FIELDS:
            setattr(m, f, getattr(m, f) + getattr(c, f))
    return [m for m in merged.values() if any(getattr(m, f) for f in _FIELDS) or m.quantity == 0]


def _violations(row: dict, c: _Change, *, consumes: bool) -> bool:
    """True when applying `c` to `row` would break an invariant."""
    on_hand = row["on_hand"] + c.on_hand
    reserved = row["reserved"] + c.reserved
    held = row["held"] + c.held
    safety = row["safety_stock"] + c.safety_stock
    if min(on_hand, reserved, held, safety) < 0 or reserved + held > on_hand:
        return True
    return consumes and on_hand - reserved - held - safety < 0


def _guard(c: _Change, *, consumes: bool) -> Q:
    """SQL form of `not _violations(row, c)` for one row, evaluated by the database under the row lock."""
    q = Q()
    for f in _FIELDS:
        d = getattr(c, f)
        if d < 0:
            q &= Q(**{f"{f}__gte": -d})
    # reserved' + held' (+ safety' when consuming) <= on_hand'
    need = c.reserved + c.held - c.on_hand + (c.safety_stock if consumes else 0)
    rhs = F("reserved") + F("held") + Value(need)
    if consumes:
        rhs = rhs + F("safety_stock")
    if need > 0 or consumes:
        q &= Q(on_hand__gte=rhs)
    return q


def _movement(
    c: _Change, *, kind: str, reference_type: str, reference: str, user, reason: str
) -> StockMovement:
    return StockMovement(
        sku_id=c.sku_id,
        location_id=c.location_id,
        kind=kind,
        quantity=c.quantity,
        on_hand_delta=c.on_hand,
        reserved_delta=c.reserved,
        held_delta=c.held,
        safety_stock_delta=c.safety_stock,
        reference_type=reference_type,
        reference=str(reference)[:64],
        user=user if (user is not None and user.is_authenticated) else None,
        reason=reason[:255],
    )


@functools.cache
def _single_change_sql(
    fields: tuple[str, ...], negative: tuple[str, ...], need_check: bool, consumes: bool
) -> str:
    """The guarded UPDATE and its ledger INSERT as one statement, for one shape of change.

    `WITH u AS (UPDATE .. WHERE <guard> RETURNING 1) INSERT INTO ledger SELECT .. FROM u RETURNING id`:
    the stock row is updated (and locked) first, the ledger row is written only when the guard
    held, in one round trip. The same guard as `_guard()`, evaluated by PostgreSQL under the row lock.
    """
    level, movement = StockLevel._meta, StockMovement._meta
    col = {f.name: f.column for f in level.concrete_fields}
    mcol = [f.column for f in movement.concrete_fields if not f.primary_key]
    q = connection.ops.quote_name
    sets = ", ".join(f"{q(col[f])} = {q(col[f])} + %s" for f in fields)
    where = [f"{q(col['location'])} = %s", f"{q(col['sku'])} = %s"]
    where += [f"{q(col[f])} >= %s" for f in negative]
    if need_check:
        rhs = f"{q(col['reserved'])} + {q(col['held'])}" + (
            f" + {q(col['safety_stock'])}" if consumes else ""
        )
        where.append(f"{q(col['on_hand'])} >= {rhs} + %s")
    placeholders = ", ".join(["%s"] * len(mcol))
    return (
        f"WITH u AS (UPDATE {q(level.db_table)} SET {sets} WHERE {' AND '.join(where)} RETURNING 1) "
        f"INSERT INTO {q(movement.db_table)} ({', '.join(q(c) for c in mcol)}) "
        f"SELECT {placeholders} FROM u RETURNING {q(movement.pk.column)}"
    )


def _single_change_pg(c: _Change, *, consumes: bool, ledger: dict) -> list[StockMovement] | None:
    """One stock level, one statement (PostgreSQL). None when the guard failed or the row is missing."""
    fields = tuple(f for f in _FIELDS if getattr(c, f))
    negative = tuple(f for f in _FIELDS if getattr(c, f) < 0)
    need = c.reserved + c.held - c.on_hand + (c.safety_stock if consumes else 0)
    need_check = need > 0 or consumes
    sql = _single_change_sql(fields, negative, need_check, consumes)
    m = _movement(c, **ledger)
    m.created_at = timezone.now()
    params: list = [getattr(c, f) for f in fields] + [c.location_id, c.sku_id]
    params += [-getattr(c, f) for f in negative]
    if need_check:
        params.append(need)
    params += [
        f.get_db_prep_save(getattr(m, f.attname), connection)
        for f in StockMovement._meta.concrete_fields
        if not f.primary_key
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    m.pk = row[0]
    m._state.adding = False
    m._state.db = connection.alias
    return [m]


def _codes(*, sku_ids: set[int], location_ids: set[int]) -> tuple[dict[int, str], dict[int, str]]:
    """The codes of some SKUs and locations, in one statement."""
    qn = connection.ops.quote_name
    sku_ids, location_ids = sorted(sku_ids), sorted(location_ids)
    parts, params = [], []
    for kind, model, ids in (("s", Sku, sku_ids), ("l", Location, location_ids)):
        if ids:
            parts.append(
                f"SELECT '{kind}', id, code FROM {qn(model._meta.db_table)} "
                f"WHERE id IN ({', '.join(['%s'] * len(ids))})"
            )
            params += ids
    out: dict[str, dict[int, str]] = {"s": {}, "l": {}}
    if parts:
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for kind, pk, code in cursor.fetchall():
                out[kind][pk] = code
    return out["s"], out["l"]


def _shortfall_details(failed: list[tuple[_Change, dict | None]]) -> dict:
    sku_codes, loc_codes = _codes(
        sku_ids={c.sku_id for c, _ in failed}, location_ids={c.location_id for c, _ in failed}
    )
    lines = []
    for c, row in failed:
        available = 0
        if row is not None:
            available = max(0, row["on_hand"] - row["reserved"] - row["held"] - row["safety_stock"])
        # What the change takes out of availability: reserved or held units, or units leaving (transfer out).
        requested = max(c.reserved + c.held, -c.on_hand)
        lines.append(
            {
                "sku": sku_codes.get(c.sku_id),
                "location": loc_codes.get(c.location_id),
                "requested": requested,
                "available": available,
                "shortfall": max(0, requested - available),
            }
        )
    return {"lines": lines}


def _raw_available(row: dict) -> int:
    return row["on_hand"] - row["reserved"] - row["held"] - row["safety_stock"]


def _lock_rows(keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    """Lock the stock levels for (location_id, sku_id) keys in primary-key order."""
    by_location: dict[int, list[int]] = defaultdict(list)
    for loc, sku in dict.fromkeys(keys):
        by_location[loc].append(sku)
    qn = connection.ops.quote_name
    cols = ["id", "location_id", "sku_id", *_FIELDS]
    where = " OR ".join(
        f"(location_id = %s AND sku_id IN ({', '.join(['%s'] * len(skus))}))" for skus in by_location.values()
    )
    params = [v for loc, skus in by_location.items() for v in (loc, *skus)]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(qn(c) for c in cols)} FROM {qn(StockLevel._meta.db_table)} "
            f"WHERE {where} ORDER BY id{lock}",
            params,
        )
        rows = [dict(zip(["pk", *cols[1:]], r, strict=True)) for r in cursor.fetchall()]
    return {(r["location_id"], r["sku_id"]): r for r in rows}


def _reclaim_expired(
    rows: dict[tuple[int, int], dict], keys: Iterable[tuple[int, int]], *, user
) -> list[_Change]:
    """Give back held units of expired holds at the given (locked) levels. Returns the changes made."""
    keys = [k for k in keys if k in rows and rows[k]["held"] > 0]
    if not keys:
        return []
    cond = Q()
    for loc, sku in keys:
        cond |= Q(location_id=loc, sku_id=sku)
    expired = list(
        HoldLine.objects.filter(cond, expires_at__lte=timezone.now()).values(
            "pk", "location_id", "sku_id", "quantity", "hold_id"
        )
    )
    if not expired:
        return []
    changes = _merge(_Change(e["location_id"], e["sku_id"], held=-e["quantity"]) for e in expired)
    HoldLine.objects.filter(pk__in=[e["pk"] for e in expired]).delete()
    _write(
        rows,
        changes,
        kind=MovementKind.HOLD_RELEASE,
        reference_type="hold",
        reference="expired",
        user=user,
        reason="checkout hold expired",
        consumes=False,
    )
    return changes


def _write(rows, changes, *, kind, reference_type, reference, user, reason, consumes) -> list[StockMovement]:
    """Guarded bulk UPDATE of already-locked rows, then the ledger rows. Updates `rows` in place."""
    cond = Q()
    whens: dict[str, list[When]] = {f: [] for f in _FIELDS}
    for c in changes:
        row = rows[c.key]
        cond |= Q(pk=row["pk"]) & _guard(c, consumes=consumes)
        for f in _FIELDS:
            d = getattr(c, f)
            if d:
                whens[f].append(When(pk=row["pk"], then=Value(d)))
    updates = {
        f: F(f) + Case(*w, default=Value(0), output_field=IntegerField()) for f, w in whens.items() if w
    }
    if updates:
        n = StockLevel.objects.filter(cond).update(**updates)
        if n != len(changes):  # only possible where the database does not lock (SQLite without IMMEDIATE)
            raise StockConflict("Stock changed while it was being updated; try again.")
    for c in changes:
        row = rows[c.key]
        for f in _FIELDS:
            row[f] += getattr(c, f)
    return StockMovement.objects.bulk_create(
        [
            _movement(
                c, kind=kind, reference_type=reference_type, reference=reference, user=user, reason=reason
            )
            for c in changes
        ]
    )


def _apply(
    changes: Iterable[_Change],
    *,
    kind: str,
    reference_type: str = "",
    reference: str = "",
    user=None,
    reason: str = "",
    consumes: bool = False,
    create_missing: bool = False,
    on_violation: Callable[[list[tuple[_Change, dict | None]]], Exception] | None = None,
) -> list[StockMovement]:
    """Apply counter changes to stock levels with their ledger rows, all or nothing."""
    changes = _merge(changes)
    if not changes:
        return []
    ledger = {
        "kind": kind,
        "reference_type": reference_type,
        "reference": reference,
        "user": user,
        "reason": reason,
    }

    # Fast path: one level, nothing that could make stock newly available. One guarded UPDATE.
    if len(changes) == 1 and not create_missing and changes[0].availability_delta <= 0:
        c = changes[0]
        if connection.vendor == "postgresql":
            done = _single_change_pg(c, consumes=consumes, ledger=ledger)
            if done is not None:
                return done
        else:
            updates = {f: F(f) + getattr(c, f) for f in _FIELDS if getattr(c, f)}
            n = (
                StockLevel.objects.filter(location_id=c.location_id, sku_id=c.sku_id)
                .filter(_guard(c, consumes=consumes))
                .update(**updates)
            )
            if n == 1:
                return StockMovement.objects.bulk_create([_movement(c, **ledger)])
        # Short, or the row is missing: take the locking path for details and expired holds.

    rows = _lock_rows(c.key for c in changes)
    missing = [c for c in changes if c.key not in rows]
    if missing and create_missing:
        StockLevel.objects.bulk_create(
            [StockLevel(location_id=c.location_id, sku_id=c.sku_id) for c in missing], ignore_conflicts=True
        )
        rows = _lock_rows(c.key for c in changes)

    failed = [
        (c, rows.get(c.key))
        for c in changes
        if c.key not in rows or _violations(rows[c.key], c, consumes=consumes)
    ]
    if failed and consumes:
        reclaimed = _reclaim_expired(rows, [c.key for c, _ in failed], user=user)
        if reclaimed:
            failed = [
                (c, rows.get(c.key))
                for c, _ in failed
                if c.key not in rows or _violations(rows[c.key], c, consumes=True)
            ]
    if failed:
        if on_violation is not None:
            raise on_violation(failed)
        raise StockConflict("The change would break a stock invariant.", details=_shortfall_details(failed))

    before = {c.key: _raw_available(rows[c.key]) for c in changes}
    movements = _write(rows, changes, consumes=consumes, **ledger)
    restocks = [
        Restock(sku_id=c.sku_id, location_id=c.location_id, available=_raw_available(rows[c.key]), kind=kind)
        for c in changes
        if c.availability_delta > 0 and before[c.key] <= 0 < _raw_available(rows[c.key])
    ]
    emit_restocks(restocks)
    return movements


def _insufficient(failed) -> InsufficientStock:
    return InsufficientStock("Not enough stock available.", details=_shortfall_details(failed))


def validate_quantity(quantity, *, field: str = "quantity", allow_zero: bool = False) -> int:
    """Reject zero, negative, non-integer and absurd quantities with the offending field."""
    limit = settings.OMS["MAX_LINE_QUANTITY"]
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidInput(f"{field} must be an integer.", details={"field": field})
    if quantity < 0 or (quantity == 0 and not allow_zero):
        raise InvalidInput(
            f"{field} must be {'zero or ' if allow_zero else ''}positive.", details={"field": field}
        )
    if quantity > limit:
        raise InvalidInput(f"{field} must be at most {limit}.", details={"field": field})
    return quantity


def _check_lines(lines: Sequence[Line]) -> None:
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    for i, line in enumerate(lines):
        validate_quantity(line.quantity, field=f"lines[{i}].quantity")


# --- Public services --------------------------------------------------------------------


@service
def stock_receive(
    *, lines: Sequence[Line], reference: str = "", user=None, reason: str = ""
) -> list[StockMovement]:
    """Goods arrived (from a supplier): on hand goes up."""
    _check_lines(lines)
    return _apply(
        (_Change(ln.location_id, ln.sku_id, on_hand=ln.quantity) for ln in lines),
        kind=MovementKind.RECEIPT,
        reference_type="receipt",
        reference=reference,
        user=user,
        reason=reason,
        create_missing=True,
    )


@service
def stock_adjust(
    *,
    location: Location,
    sku: Sku,
    counted_quantity: int | None = None,
    delta: int | None = None,
    reason: str,
    user=None,
    kind: str | None = None,
    reference: str = "",
    reference_type: str = "",
) -> list[StockMovement]:
    """Correct on hand, either to a counted quantity (cycle count) or by a delta (adjustment, damage).

    Refuses (409) to count below what is reserved and held: those units are promised.
    """
    if (counted_quantity is None) == (delta is None):
        raise InvalidInput(
            "Give exactly one of counted_quantity or delta.", details={"field": "counted_quantity"}
        )
    if not reason or not reason.strip():
        raise InvalidInput("A reason is required.", details={"field": "reason"})
    if counted_quantity is not None:
        validate_quantity(counted_quantity, field="counted_quantity", allow_zero=True)
        rows = _lock_rows([(location.pk, sku.pk)])
        if not rows:
            StockLevel.objects.bulk_create([StockLevel(location=location, sku=sku)], ignore_conflicts=True)
            rows = _lock_rows([(location.pk, sku.pk)])
        delta = counted_quantity - rows[(location.pk, sku.pk)]["on_hand"]
        kind = kind or MovementKind.CYCLE_COUNT
    else:
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            raise InvalidInput("delta must be a non-zero integer.", details={"field": "delta"})
        validate_quantity(abs(delta), field="delta")
        kind = kind or (
            MovementKind.DAMAGE
            if delta < 0 and reason.lower().startswith("damage")
            else MovementKind.ADJUSTMENT
        )
    change = _Change(location.pk, sku.pk, on_hand=delta)

    def conflict(failed):
        return StockConflict(
            "On hand cannot go below zero or below what is reserved and held.",
            details=_shortfall_details(failed)
            | {"field": "counted_quantity" if counted_quantity is not None else "delta"},
        )

    if delta == 0:  # a count that confirms the books: recorded, changes nothing
        return StockMovement.objects.bulk_create(
            [
                _movement(
                    change,
                    kind=kind,
                    reference_type=reference_type or "count",
                    reference=reference,
                    user=user,
                    reason=reason,
                )
            ]
        )
    return _apply(
        [change],
        kind=kind,
        reference_type=reference_type or "adjustment",
        reference=reference,
        user=user,
        reason=reason,
        create_missing=True,
        on_violation=conflict,
    )


@service
def stock_set_safety_stock(
    *, location: Location, sku: Sku, safety_stock: int, user=None, reason: str = ""
) -> list[StockMovement]:
    validate_quantity(safety_stock, field="safety_stock", allow_zero=True)
    rows = _lock_rows([(location.pk, sku.pk)])
    if not rows:
        StockLevel.objects.bulk_create([StockLevel(location=location, sku=sku)], ignore_conflicts=True)
        rows = _lock_rows([(location.pk, sku.pk)])
    d = safety_stock - rows[(location.pk, sku.pk)]["safety_stock"]
    if d == 0:
        return []
    return _apply(
        [_Change(location.pk, sku.pk, safety_stock=d)],
        kind=MovementKind.SAFETY_STOCK,
        reference_type="safety",
        user=user,
        reason=reason or "safety stock set",
    )


@service
def stock_reserve(
    *, lines: Sequence[Line], reference: str, reference_type: str = "order", user=None
) -> list[StockMovement]:
    """Reserve every line or none (409 insufficient_stock with the shortfall per line)."""
    _check_lines(lines)
    return _apply(
        (_Change(ln.location_id, ln.sku_id, reserved=ln.quantity) for ln in lines),
        kind=MovementKind.RESERVATION,
        reference_type=reference_type,
        reference=reference,
        user=user,
        consumes=True,
        on_violation=_insufficient,
    )


@service
def stock_release(
    *, lines: Sequence[Line], reference: str, reference_type: str = "order", user=None, reason: str = ""
) -> list[StockMovement]:
    """Give reserved units back to availability (cancellation, re-routing)."""
    _check_lines(lines)
    return _apply(
        (_Change(ln.location_id, ln.sku_id, reserved=-ln.quantity) for ln in lines),
        kind=MovementKind.RELEASE,
        reference_type=reference_type,
        reference=reference,
        user=user,
        reason=reason,
    )


@service
def stock_commit(
    *, lines: Sequence[Line], reference: str, reference_type: str = "order", user=None, reason: str = ""
) -> list[StockMovement]:
    """Reserved goods left the building (shipped, collected): on hand and reserved both go down."""
    _check_lines(lines)
    return _apply(
        (_Change(ln.location_id, ln.sku_id, on_hand=-ln.quantity, reserved=-ln.quantity) for ln in lines),
        kind=MovementKind.COMMIT,
        reference_type=reference_type,
        reference=reference,
        user=user,
        reason=reason,
    )


@service
def stock_return_restock(
    *, lines: Sequence[Line], reference: str, user=None, reason: str = ""
) -> list[StockMovement]:
    """A resellable returned item is back on the shelf of the location that took it."""
    _check_lines(lines)
    return _apply(
        (_Change(ln.location_id, ln.sku_id, on_hand=ln.quantity) for ln in lines),
        kind=MovementKind.RETURN_RESTOCK,
        reference_type="return",
        reference=reference,
        user=user,
        reason=reason,
        create_missing=True,
    )


@service
def transfer_create(
    *,
    from_location: Location,
    to_location: Location,
    lines: Sequence[tuple[Sku, int]],
    user=None,
    reference: str = "",
) -> Transfer:
    """Goods leave `from_location` (transfer out); they are in transit until received."""
    if from_location.pk == to_location.pk:
        raise InvalidInput("A transfer needs two different locations.", details={"field": "to_location"})
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    merged: dict[int, int] = defaultdict(int)
    skus = {}
    for i, (sku, qty) in enumerate(lines):
        validate_quantity(qty, field=f"lines[{i}].quantity")
        merged[sku.pk] += qty
        skus[sku.pk] = sku
    transfer = Transfer.objects.create(
        from_location=from_location,
        to_location=to_location,
        created_by=user if user and user.is_authenticated else None,
        reference=reference,
    )
    TransferLine.objects.bulk_create(
        [TransferLine(transfer=transfer, sku_id=s, quantity=q) for s, q in merged.items()]
    )
    _apply(
        (_Change(from_location.pk, s, on_hand=-q) for s, q in merged.items()),
        kind=MovementKind.TRANSFER_OUT,
        reference_type="transfer",
        reference=str(transfer.pk),
        user=user,
        reason=f"to {to_location.code}",
        consumes=True,
        on_violation=_insufficient,
    )
    return transfer


@service
def transfer_receive(*, transfer_id: int, user=None) -> Transfer:
    """The transfer arrived: on hand goes up at the destination. Receiving twice is a 409."""
    try:
        transfer = (
            Transfer.objects.select_for_update()
            .select_related("to_location", "from_location")
            .get(pk=transfer_id)
        )
    except Transfer.DoesNotExist:
        raise NotFound(f"Unknown transfer {transfer_id}.", code="unknown_transfer") from None
    if transfer.status != TransferStatus.IN_TRANSIT:
        raise InvalidTransition(
            f"Transfer {transfer.pk} is {transfer.status}, it cannot be received.",
            details={"from": transfer.status, "to": TransferStatus.RECEIVED},
        )
    _apply(
        (_Change(transfer.to_location_id, ln.sku_id, on_hand=ln.quantity) for ln in transfer.lines.all()),
        kind=MovementKind.TRANSFER_IN,
        reference_type="transfer",
        reference=str(transfer.pk),
        user=user,
        reason=f"from {transfer.from_location.code}",
        create_missing=True,
    )
    transfer.status = TransferStatus.RECEIVED
    transfer.received_at = timezone.now()
    transfer.save(update_fields=["status", "received_at"])
    return transfer


# --- Checkout holds -------------------------------------------------------------------------


def _hold_ttl(ttl: dt.timedelta | None) -> dt.timedelta:
    ttl = ttl or settings.OMS["HOLD_TTL"]
    if ttl <= dt.timedelta(0) or ttl > settings.OMS["HOLD_MAX_TTL"]:
        raise InvalidInput("Hold duration out of range.", details={"field": "ttl_seconds"})
    return ttl


@service
def hold_create(
    *, lines: Sequence[Line], ttl: dt.timedelta | None = None, user=None, request: dict | None = None
) -> Hold:
    """Hold stock for a shopper in checkout: counts against everyone else's availability at once."""
    _check_lines(lines)
    expires_at = timezone.now() + _hold_ttl(ttl)
    hold = Hold.objects.create(
        expires_at=expires_at,
        request=request or {},
        created_by=user if user and user.is_authenticated else None,
    )
    merged = _merge(_Change(ln.location_id, ln.sku_id, held=ln.quantity) for ln in lines)
    HoldLine.objects.bulk_create(
        [
            HoldLine(
                hold=hold, location_id=c.location_id, sku_id=c.sku_id, quantity=c.held, expires_at=expires_at
            )
            for c in merged
        ]
    )
    _apply(
        merged,
        kind=MovementKind.HOLD,
        reference_type="hold",
        reference=str(hold.pk),
        user=user,
        consumes=True,
        on_violation=_insufficient,
    )
    return hold


def _hold_locked(hold_id) -> Hold:
    try:
        return Hold.objects.select_for_update().get(pk=hold_id)
    except (Hold.DoesNotExist, ValueError, TypeError):
        raise NotFound(
            "Unknown or expired hold.", code="unknown_hold", details={"hold": str(hold_id)}
        ) from None


@service
def hold_extend(*, hold_id, ttl: dt.timedelta | None = None) -> Hold:
    """Push the expiry back while the shopper is active. A hold whose units were reclaimed is gone (404)."""
    hold = _hold_locked(hold_id)
    if not hold.lines.exists():
        raise NotFound("The hold has expired and its stock was released.", code="hold_expired")
    hold.expires_at = timezone.now() + _hold_ttl(ttl)
    hold.save(update_fields=["expires_at"])
    hold.lines.update(expires_at=hold.expires_at)
    return hold


def _hold_lines_release(
    hold: Hold, *, kind: str, user, reason: str, also_reserve: bool, reference: str
) -> list[HoldLine]:
    lines = list(hold.lines.all())
    if lines:
        _apply(
            (
                _Change(
                    ln.location_id, ln.sku_id, held=-ln.quantity, reserved=ln.quantity if also_reserve else 0
                )
                for ln in lines
            ),
            kind=kind,
            reference_type="order" if also_reserve else "hold",
            reference=reference,
            user=user,
            reason=reason,
        )
    return lines


@service
def hold_release(*, hold_id, user=None, reason: str = "cart abandoned") -> None:
    hold = _hold_locked(hold_id)
    _hold_lines_release(
        hold,
        kind=MovementKind.HOLD_RELEASE,
        user=user,
        reason=reason,
        also_reserve=False,
        reference=str(hold.pk),
    )
    hold.delete()


@service
def hold_convert(*, hold_id, reference: str, user=None) -> list[HoldLine]:
    """Turn a hold into an order's reservations with no gap in which the stock could be taken.

    Returns the hold's lines (location, SKU, quantity). Raises 404 when the hold is unknown or
    its stock was already reclaimed after expiry; a hold past its expiry whose units are still
    held converts (nobody else could have taken them).
    """
    hold = _hold_locked(hold_id)
    lines = _hold_lines_release(
        hold,
        kind=MovementKind.RESERVATION,
        user=user,
        reason=f"hold {hold.pk}",
        also_reserve=True,
        reference=reference,
    )
    if not lines:
        raise NotFound("The hold has expired and its stock was released.", code="hold_expired")
    hold.delete()
    return lines


@service
def holds_reclaim_expired(*, limit: int = 500) -> int:
    """Give back the units of expired holds (the beat sweep; reads already ignore them)."""
    now = timezone.now()
    expired = list(
        HoldLine.objects.filter(expires_at__lte=now).order_by("pk").values("location_id", "sku_id")[:limit]
    )
    if not expired:
        Hold.objects.filter(expires_at__lte=now, lines__isnull=True).delete()
        return 0
    keys = {(e["location_id"], e["sku_id"]) for e in expired}
    rows = _lock_rows(keys)
    before = {k: _raw_available(r) for k, r in rows.items()}
    changes = _reclaim_expired(rows, keys, user=None)
    # Units that were only held by abandoned checkouts are on sale again: tell the listeners.
    emit_restocks(
        [
            Restock(
                sku_id=c.sku_id,
                location_id=c.location_id,
                available=_raw_available(rows[c.key]),
                kind=MovementKind.HOLD_RELEASE,
            )
            for c in changes
            if before[c.key] <= 0 < _raw_available(rows[c.key])
        ]
    )
    Hold.objects.filter(expires_at__lte=now, lines__isnull=True).delete()
    return sum(-c.held for c in changes)


# --- Import ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRow:
    row_number: int
    location_code: str
    sku_code: str
    quantity: object


class ImportInvalid(InvalidInput):
    code = "import_invalid"


def stock_import_validate(
    *, rows: Sequence[ImportRow]
) -> tuple[list[tuple[ImportRow, Location, Sku, int]], list[dict]]:
    """Check every row; return the parsed rows and the errors by row number (nothing is written)."""
    errors: list[dict] = []
    locations = {loc.code: loc for loc in Location.objects.filter(code__in={r.location_code for r in rows})}
    skus = {s.code: s for s in Sku.objects.filter(code__in={r.sku_code for r in rows})}
    seen: dict[tuple[str, str], int] = {}
    parsed = []
    limit = settings.OMS["MAX_LINE_QUANTITY"]
    for r in rows:
        problems = []
        loc = locations.get(r.location_code)
        sku = skus.get(r.sku_code)
        if loc is None:
            problems.append(f"unknown location {r.location_code!r}")
        if sku is None:
            problems.append(f"unknown SKU {r.sku_code!r}")
        qty = None
        raw = str(r.quantity).strip() if r.quantity is not None else ""
        if not raw.lstrip("-").isdigit():
            problems.append(f"quantity {raw!r} is not a whole number")
        else:
            qty = int(raw)
            if qty < 0:
                problems.append("quantity must be zero or more")
            elif qty > limit:
                problems.append(f"quantity must be at most {limit}")
        key = (r.location_code, r.sku_code)
        if key in seen:
            problems.append(f"duplicate of row {seen[key]}")
        else:
            seen[key] = r.row_number
        if problems:
            errors.append({"row": r.row_number, "errors": problems})
        else:
            parsed.append((r, loc, sku, qty))
    return parsed, errors


@service
def stock_import(
    *,
    rows: Sequence[ImportRow],
    user=None,
    reference: str = "csv import",
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 500,
) -> int:
    """Set on hand to the counted quantity of every row, or change nothing.

    Every row is validated first; errors are reported by row number (400 import_invalid).
    Rows whose count is below what is reserved and held there are errors too.
    """
    if not rows:
        raise ImportInvalid("The file has no rows.", details={"errors": [{"row": 0, "errors": ["no rows"]}]})
    parsed, errors = stock_import_validate(rows=rows)
    if errors:
        raise ImportInvalid(
            f"{len(errors)} row(s) are invalid; nothing was imported.", details={"errors": errors}
        )
    applied = 0
    for start in range(0, len(parsed), chunk_size):
        chunk = parsed[start : start + chunk_size]
        keys = [(loc.pk, sku.pk) for _, loc, sku, _ in chunk]
        rows_now = _lock_rows(keys)
        missing = [k for k in keys if k not in rows_now]
        if missing:
            StockLevel.objects.bulk_create(
                [StockLevel(location_id=lo, sku_id=s) for lo, s in missing], ignore_conflicts=True
            )
            rows_now = _lock_rows(keys)
        changes, bad = [], []
        for r, loc, sku, qty in chunk:
            row = rows_now[(loc.pk, sku.pk)]
            if qty < row["reserved"] + row["held"]:
                bad.append(
                    {
                        "row": r.row_number,
                        "errors": [
                            f"quantity {qty} is below the {row['reserved'] + row['held']} units reserved or held"
                        ],
                    }
                )
            elif qty != row["on_hand"]:
                changes.append(_Change(loc.pk, sku.pk, on_hand=qty - row["on_hand"]))
        if bad:
            raise ImportInvalid(
                f"{len(bad)} row(s) are invalid; nothing was imported.", details={"errors": bad}
            )
        _apply(
            changes,
            kind=MovementKind.CYCLE_COUNT,
            reference_type="import",
            reference=reference,
            user=user,
            reason="stock import",
        )
        applied += len(chunk)
        if progress:
            progress(len(chunk))
    return applied
