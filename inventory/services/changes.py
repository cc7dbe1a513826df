"""How every stock change is applied: the one place that writes StockLevel counters and the ledger.

Every public service of inventory.services describes its change as `Change`s (signed deltas of the
four counters of one stock level) and hands them to `apply_changes`, inside its transaction.

Invariants (also enforced by CHECK constraints on StockLevel):
    on_hand >= 0, reserved >= 0, held >= 0, safety_stock >= 0, reserved + held <= on_hand
and, for changes that consume availability (reserve, hold, transfer out):
    on_hand - reserved - held - safety_stock >= 0 after the change.

Every change writes one StockMovement per stock level in the same transaction, so that for every
level the sums of the ledger deltas equal its counters (`inventory_audit`).

Concurrency:
- A change to a single stock level is one guarded UPDATE (the invariants are its WHERE clause,
  evaluated by the database under the row lock), returning the level's availability after; on
  PostgreSQL the ledger INSERT is part of the same statement (inventory.db). No read-modify-write,
  no lock taken before the UPDATE: sold-out requests never queue.
- A change to several levels (or one that is short, or needs a missing level created) first locks
  them with SELECT ... FOR UPDATE ORDER BY id (one global lock order: no deadlocks), checks in
  Python under the locks, reclaims expired holds on a short level, then runs one guarded bulk
  UPDATE and one bulk INSERT: three statements whatever the line count.

Events: a level whose availability goes from nothing to something is announced as a `Restock`, from
something to nothing as an `OutOfStock` (inventory.hooks), inside the transaction. The single-level
path uses the availability its UPDATE returns (live holds only); the locking path the counters it
holds locked (every held unit counted, as the writers' guard does).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Case, F, IntegerField, Q, Sum, Value, When
from django.utils import timezone

from stores.models import Location

from .. import db
from ..exceptions import InsufficientStock, StockConflict
from ..hooks import OutOfStock, Restock, emit_out_of_stock, emit_restocks
from ..models import HoldLine, MovementKind, Sku, StockLevel, StockMovement

COUNTERS = ("on_hand", "reserved", "held", "safety_stock")

Key = tuple[int, int]  # (location_id, sku_id): one stock level
LockedRow = dict  # pk, location_id, sku_id and the four counters of a level locked by lock_levels


@dataclass
class Change:
    """Signed deltas of the counters of one stock level."""

    location_id: int
    sku_id: int
    on_hand: int = 0
    reserved: int = 0
    held: int = 0
    safety_stock: int = 0

    @property
    def key(self) -> Key:
        return (self.location_id, self.sku_id)

    @property
    def quantity(self) -> int:
        """Units moved, as the ledger row records them (always positive)."""
        return max(abs(self.on_hand), abs(self.reserved), abs(self.held), abs(self.safety_stock))

    @property
    def availability_delta(self) -> int:
        return self.on_hand - self.reserved - self.held - self.safety_stock

    def deltas(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in COUNTERS if getattr(self, f)}

    def floors(self) -> dict[str, int]:
        """Each counter that goes down must be at least this before the change."""
        return {f: -getattr(self, f) for f in COUNTERS if getattr(self, f) < 0}

    def need(self, *, consumes: bool) -> int | None:
        """The guard on_hand >= reserved + held (+ safety_stock when consuming) + need, or None when
        the change cannot break it (it frees more than it takes)."""
        need = self.reserved + self.held - self.on_hand + (self.safety_stock if consumes else 0)
        return need if need > 0 or consumes else None

    def violated_by(self, row: LockedRow, *, consumes: bool) -> bool:
        """True when applying the change to the locked `row` would break an invariant."""
        on_hand, reserved, held, safety = (row[f] + getattr(self, f) for f in COUNTERS)
        if min(on_hand, reserved, held, safety) < 0 or reserved + held > on_hand:
            return True
        return consumes and on_hand - reserved - held - safety < 0

    def guard(self, *, consumes: bool) -> Q:
        """`not violated_by(row)` as a condition on the row, evaluated by the database under its lock."""
        condition = Q(**{f"{f}__gte": floor for f, floor in self.floors().items()})
        need = self.need(consumes=consumes)
        if need is not None:
            rhs = F("reserved") + F("held") + Value(need)
            if consumes:
                rhs = rhs + F("safety_stock")
            condition &= Q(on_hand__gte=rhs)
        return condition


def merge_changes(changes: Iterable[Change]) -> list[Change]:
    """One change per stock level (the sum of the deltas), in first-seen order."""
    merged: dict[Key, Change] = {}
    for c in changes:
        m = merged.setdefault(c.key, Change(c.location_id, c.sku_id))
        for f in COUNTERS:
            setattr(m, f, getattr(m, f) + getattr(c, f))
    return list(merged.values())


@dataclass(frozen=True)
class LedgerEntry:
    """What every ledger row of one service call says besides the deltas."""

    kind: str
    reference_type: str = ""
    reference: str = ""
    user: object = None
    reason: str = ""

    def movement(self, c: Change) -> StockMovement:
        user = self.user
        return StockMovement(
            sku_id=c.sku_id,
            location_id=c.location_id,
            kind=self.kind,
            quantity=c.quantity,
            on_hand_delta=c.on_hand,
            reserved_delta=c.reserved,
            held_delta=c.held,
            safety_stock_delta=c.safety_stock,
            reference_type=self.reference_type,
            reference=str(self.reference)[:64],
            user=user if (user is not None and user.is_authenticated) else None,
            reason=self.reason[:255],
        )


Failed = list[tuple[Change, LockedRow | None]]  # the changes that would break an invariant, with their rows


def apply_changes(
    changes: Iterable[Change],
    *,
    kind: str,
    reference_type: str = "",
    reference: str = "",
    user=None,
    reason: str = "",
    consumes: bool = False,
    create_missing: bool = False,
    on_violation: Callable[[Failed], Exception] | None = None,
) -> list[StockMovement]:
    """Apply counter changes to stock levels with their ledger rows, all or nothing.

    `consumes`: the change takes availability (safety stock counts in the guard, expired holds on
    a short level are reclaimed first). `create_missing`: levels that do not exist yet are created
    (goods arriving); else a missing level is a violation. A violation raises `on_violation(failed)`
    (default StockConflict) and writes nothing. Must run inside the caller's transaction.
    """
    ledger = LedgerEntry(kind, reference_type, reference, user, reason)
    return apply_ledgered_changes(
        ((ledger, c) for c in changes),
        consumes=consumes,
        create_missing=create_missing,
        on_violation=on_violation,
    )


def apply_ledgered_changes(
    entries: Iterable[tuple[LedgerEntry, Change]],
    *,
    consumes: bool = False,
    create_missing: bool = False,
    on_violation: Callable[[Failed], Exception] | None = None,
) -> list[StockMovement]:
    """`apply_changes` for changes that each name their own ledger row: several references (orders)
    changed in one call, as the pickup-expiry sweep releases a batch of orders. The levels are
    locked, checked and updated once, for the sum of the changes to each (one lock in primary-key
    order, one guarded UPDATE); the ledger gets one row per ledger entry and level, exactly the rows
    separate `apply_changes` calls would have written. Every entry has the same `kind`."""
    entries = list(entries)
    if not entries:
        return []
    kinds = {ledger.kind for ledger, _ in entries}
    if len(kinds) != 1:
        raise ValueError(f"apply_ledgered_changes: one movement kind per call, not {sorted(kinds)}")
    (kind,) = kinds
    changes = merge_changes(c for _, c in entries)
    # The ledger rows: per entry, one per level (the sum of that entry's changes to it).
    per_entry: dict[LedgerEntry, list[Change]] = {}
    for ledger, c in entries:
        per_entry.setdefault(ledger, []).append(c)
    ledger_rows = [(ledger, m) for ledger, cs in per_entry.items() for m in merge_changes(cs)]
    # One level, one ledger row, nothing that could make stock newly available: one guarded UPDATE.
    if (
        len(changes) == 1
        and len(ledger_rows) == 1
        and not create_missing
        and changes[0].availability_delta <= 0
    ):
        done = _apply_one_guarded(changes[0], ledger=ledger_rows[0][0], consumes=consumes)
        if done is not None:
            return done
        # Short, or the level is missing: the locking path gives the details and reclaims expired holds.
    rows = lock_levels(c.key for c in changes)
    missing = [c for c in changes if c.key not in rows]
    if missing and create_missing:
        StockLevel.objects.bulk_create(
            [StockLevel(location_id=c.location_id, sku_id=c.sku_id) for c in missing], ignore_conflicts=True
        )
        rows = lock_levels(c.key for c in changes)
    failed = _failed(rows, changes, consumes=consumes)
    if (
        failed
        and consumes
        and reclaim_expired_holds(rows, [c.key for c, _ in failed], user=entries[0][0].user)
    ):
        failed = _failed(rows, [c for c, _ in failed], consumes=True)
    if failed:
        if on_violation is not None:
            raise on_violation(failed)
        raise StockConflict("The change would break a stock invariant.", details=shortfall_details(failed))
    # Only a change that moves availability can start or end a shortage (not hold -> reserved).
    expired = expired_held_units(rows, [c.key for c in changes if c.availability_delta])
    before = {c.key: counters_available(rows[c.key]) + expired.get(c.key, 0) for c in changes}
    movements = write_locked(
        rows, changes, movements=[ledger.movement(m) for ledger, m in ledger_rows], consumes=consumes
    )
    announce(changes, before=before, rows=rows, expired=expired, kind=kind)
    return movements


def _failed(rows: dict[Key, LockedRow], changes: Iterable[Change], *, consumes: bool) -> Failed:
    return [
        (c, rows.get(c.key))
        for c in changes
        if c.key not in rows or c.violated_by(rows[c.key], consumes=consumes)
    ]


def _apply_one_guarded(c: Change, *, ledger: LedgerEntry, consumes: bool) -> list[StockMovement] | None:
    """One level: the guarded UPDATE (and, on PostgreSQL, its ledger INSERT in the same statement).
    None when the guard failed or the level is missing (nothing was written)."""
    movement = ledger.movement(c)
    if connection.vendor == "postgresql":
        done = db.level_update_guarded_with_movement(c, consumes=consumes, movement=movement)
        if done is None:
            return None
        available, movement = done
    else:
        available = db.level_update_guarded(c, consumes=consumes)
        if available is None:
            return None
        StockMovement.objects.bulk_create([movement])
    # `available` is what the UPDATE returned (live holds only): no statement added to know it.
    if available <= 0 < available - c.availability_delta:
        emit_out_of_stock([OutOfStock(sku_id=c.sku_id, location_id=c.location_id, kind=ledger.kind)])
    return [movement]


def lock_levels(keys: Iterable[Key]) -> dict[Key, LockedRow]:
    """Lock the stock levels of (location_id, sku_id) keys in primary-key order (one global lock
    order: no deadlocks); their counters by key. Levels that do not exist are absent."""
    by_location: dict[int, list[int]] = defaultdict(list)
    for location_id, sku_id in dict.fromkeys(keys):
        by_location[location_id].append(sku_id)
    condition = Q()
    for location_id, sku_ids in by_location.items():
        condition |= Q(location_id=location_id, sku_id__in=sku_ids)
    rows = (
        StockLevel.objects.select_for_update()
        .filter(condition)
        .order_by("pk")
        .values("pk", "location_id", "sku_id", *COUNTERS)
    )
    return {(r["location_id"], r["sku_id"]): r for r in rows}


def write_locked(
    rows: dict[Key, LockedRow],
    changes: list[Change],
    *,
    movements: list[StockMovement],
    consumes: bool,
) -> list[StockMovement]:
    """One guarded bulk UPDATE of already-locked levels (one change per level), then their ledger
    rows (`movements`) in one INSERT. Updates `rows` in place."""
    condition = Q()
    whens: dict[str, list[When]] = {f: [] for f in COUNTERS}
    for c in changes:
        pk = rows[c.key]["pk"]
        condition |= Q(pk=pk) & c.guard(consumes=consumes)
        for f, d in c.deltas().items():
            whens[f].append(When(pk=pk, then=Value(d)))
    updates = {
        f: F(f) + Case(*w, default=Value(0), output_field=IntegerField()) for f, w in whens.items() if w
    }
    if updates:
        updated = StockLevel.objects.filter(condition).update(**updates)
        if updated != len(
            changes
        ):  # only possible where the database does not lock (SQLite without IMMEDIATE)
            raise StockConflict("Stock changed while it was being updated; try again.")
    for c in changes:
        row = rows[c.key]
        for f in COUNTERS:
            row[f] += getattr(c, f)
    return StockMovement.objects.bulk_create(movements)


def reclaim_expired_holds(rows: dict[Key, LockedRow], keys: Iterable[Key], *, user) -> list[Change]:
    """Give back the held units of expired holds at the given (locked) levels: their hold lines are
    deleted and `held` goes down, with a hold_release ledger row. Returns the changes made."""
    keys = [k for k in keys if k in rows and rows[k]["held"] > 0]
    if not keys:
        return []
    condition = Q()
    for location_id, sku_id in keys:
        condition |= Q(location_id=location_id, sku_id=sku_id)
    expired = list(
        HoldLine.objects.filter(condition, expires_at__lte=timezone.now()).values(
            "pk", "location_id", "sku_id", "quantity"
        )
    )
    if not expired:
        return []
    changes = merge_changes(Change(e["location_id"], e["sku_id"], held=-e["quantity"]) for e in expired)
    HoldLine.objects.filter(pk__in=[e["pk"] for e in expired]).delete()
    ledger = LedgerEntry(MovementKind.HOLD_RELEASE, "hold", "expired", user, "checkout hold expired")
    write_locked(rows, changes, movements=[ledger.movement(c) for c in changes], consumes=False)
    return changes


def counters_available(row: LockedRow) -> int:
    """What a locked level's counters leave (every held unit counted: the writers' view)."""
    return row["on_hand"] - row["reserved"] - row["held"] - row["safety_stock"]


def expired_held_units(rows: dict[Key, LockedRow], keys: Iterable[Key]) -> dict[Key, int]:
    """Units of expired, not yet reclaimed hold lines per locked level: what the counters still
    count as held but availability (inventory.db.available_sql) does not. One query, and only when
    a level holds something."""
    keys = [k for k in keys if k in rows and rows[k]["held"] > 0]
    if not keys:
        return {}
    condition = Q()
    for location_id, sku_id in keys:
        condition |= Q(location_id=location_id, sku_id=sku_id)
    expired = (
        HoldLine.objects.filter(condition, expires_at__lte=timezone.now())
        .values("location_id", "sku_id")
        .annotate(units=Sum("quantity"))
        .order_by()
    )
    return {(e["location_id"], e["sku_id"]): e["units"] for e in expired}


def announce(
    changes: list[Change],
    *,
    before: dict[Key, int],
    rows: dict[Key, LockedRow],
    expired: dict[Key, int],
    kind: str,
) -> None:
    """Tell the listeners (inventory.hooks) about levels that went from nothing available to
    something, or from something to nothing, by these (applied, still locked) changes. Available
    as everyone reads it: the counters plus the units of expired holds (`expired`)."""
    restocks, sold_out = [], []
    for c in changes:
        after = counters_available(rows[c.key]) + expired.get(c.key, 0)
        if c.availability_delta > 0 and before[c.key] <= 0 < after:
            restocks.append(Restock(sku_id=c.sku_id, location_id=c.location_id, available=after, kind=kind))
        elif c.availability_delta < 0 and after <= 0 < before[c.key]:
            sold_out.append(OutOfStock(sku_id=c.sku_id, location_id=c.location_id, kind=kind))
    emit_restocks(restocks)
    emit_out_of_stock(sold_out)


def shortfall_details(failed: Failed) -> dict:
    """Per failed change: SKU and location codes, units requested, available and short."""
    sku_codes = dict(Sku.objects.filter(pk__in={c.sku_id for c, _ in failed}).values_list("pk", "code"))
    location_codes = dict(
        Location.objects.filter(pk__in={c.location_id for c, _ in failed}).values_list("pk", "code")
    )
    lines = []
    for c, row in failed:
        available = 0 if row is None else max(0, counters_available(row))
        # What the change takes out of availability: reserved or held units, or units leaving (transfer out).
        requested = max(c.reserved + c.held, -c.on_hand)
        lines.append(
            {
                "sku": sku_codes.get(c.sku_id),
                "location": location_codes.get(c.location_id),
                "requested": requested,
                "available": available,
                "shortfall": max(0, requested - available),
            }
        )
    return {"lines": lines}


def insufficient(failed: Failed) -> InsufficientStock:
    return InsufficientStock("Not enough stock available.", details=shortfall_details(failed))
