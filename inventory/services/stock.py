"""Stock changes at one or several stock levels: receive, count and adjust, safety stock, and the
reservations of orders (reserve, release, commit) and resellable returns.

Each public service is its own `transaction.atomic` (called inside another transaction it is a
savepoint: a caller that catches its error and carries on keeps nothing of it) and hands its
`Change`s to `changes.apply_changes`, which holds the invariants and the locking rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from config.errors import InvalidInput
from stores.models import Location

from ..exceptions import InsufficientStock, StockConflict
from ..models import MovementKind, Sku, StockLevel, StockMovement
from .access import require_access
from .changes import (
    Change,
    LedgerEntry,
    apply_changes,
    apply_ledgered_changes,
    insufficient,
    lock_levels,
    shortfall_details,
)


@dataclass(frozen=True)
class Line:
    """A quantity of one SKU at one location."""

    location_id: int
    sku_id: int
    quantity: int


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


def check_lines(lines: Sequence[Line]) -> None:
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    for i, line in enumerate(lines):
        validate_quantity(line.quantity, field=f"lines[{i}].quantity")


def _locked_level(location: Location, sku: Sku) -> dict:
    """The counters of the level of `sku` at `location`, locked; the level is created when missing."""
    rows = lock_levels([(location.pk, sku.pk)])
    if not rows:
        StockLevel.objects.bulk_create([StockLevel(location=location, sku=sku)], ignore_conflicts=True)
        rows = lock_levels([(location.pk, sku.pk)])
    return rows[(location.pk, sku.pk)]


@transaction.atomic
def stock_receive(
    *, lines: Sequence[Line], reference: str = "", user=None, reason: str = ""
) -> list[StockMovement]:
    """Goods arrived (from a supplier): on hand goes up. `user` must be assigned to every line's location."""
    require_access(user, {ln.location_id for ln in lines})  # who may act comes before what they sent
    check_lines(lines)
    return apply_changes(
        (Change(ln.location_id, ln.sku_id, on_hand=ln.quantity) for ln in lines),
        kind=MovementKind.RECEIPT,
        reference_type="receipt",
        reference=reference,
        user=user,
        reason=reason,
        create_missing=True,
    )


def _adjust_delta(
    *, location: Location, sku: Sku, counted_quantity: int | None, delta: int | None, reason: str
) -> int:
    """The change of on hand a count or an adjustment asks for (the level is locked for a count)."""
    if (counted_quantity is None) == (delta is None):
        raise InvalidInput(
            "Give exactly one of counted_quantity or delta.", details={"field": "counted_quantity"}
        )
    if not reason or not reason.strip():
        raise InvalidInput("A reason is required.", details={"field": "reason"})
    if counted_quantity is not None:
        validate_quantity(counted_quantity, field="counted_quantity", allow_zero=True)
        return counted_quantity - _locked_level(location, sku)["on_hand"]
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise InvalidInput("delta must be a non-zero integer.", details={"field": "delta"})
    validate_quantity(abs(delta), field="delta")
    return delta


@transaction.atomic
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

    Refuses (409) to count below what is reserved and held: those units are promised. A count
    equal to the books is recorded (a ledger row that changes nothing). `user` must be assigned
    to `location` (403).
    """
    require_access(user, [location.pk])
    change_delta = _adjust_delta(
        location=location, sku=sku, counted_quantity=counted_quantity, delta=delta, reason=reason
    )
    if counted_quantity is not None:
        kind = kind or MovementKind.CYCLE_COUNT
    else:
        damaged = change_delta < 0 and reason.lower().startswith("damage")
        kind = kind or (MovementKind.DAMAGE if damaged else MovementKind.ADJUSTMENT)
    change = Change(location.pk, sku.pk, on_hand=change_delta)
    if change_delta == 0:  # a count that confirms the books: recorded, changes nothing
        ledger = LedgerEntry(kind, reference_type or "count", reference, user, reason)
        return StockMovement.objects.bulk_create([ledger.movement(change)])

    def conflict(failed) -> StockConflict:
        return StockConflict(
            "On hand cannot go below zero or below what is reserved and held.",
            details=shortfall_details(failed)
            | {"field": "counted_quantity" if counted_quantity is not None else "delta"},
        )

    return apply_changes(
        [change],
        kind=kind,
        reference_type=reference_type or "adjustment",
        reference=reference,
        user=user,
        reason=reason,
        create_missing=True,
        on_violation=conflict,
    )


@transaction.atomic
def stock_set_safety_stock(
    *, location: Location, sku: Sku, safety_stock: int, user=None, reason: str = ""
) -> list[StockMovement]:
    """Set the units never offered to customers at `location`. Setting the current value writes
    nothing. `user` must be assigned to `location` (403)."""
    require_access(user, [location.pk])
    validate_quantity(safety_stock, field="safety_stock", allow_zero=True)
    difference = safety_stock - _locked_level(location, sku)["safety_stock"]
    if difference == 0:
        return []
    return apply_changes(
        [Change(location.pk, sku.pk, safety_stock=difference)],
        kind=MovementKind.SAFETY_STOCK,
        reference_type="safety",
        user=user,
        reason=reason or "safety stock set",
    )


@transaction.atomic
def stock_reserve(
    *, lines: Sequence[Line], reference: str, reference_type: str = "order", user=None
) -> list[StockMovement]:
    """Reserve every line or none (409 insufficient_stock with the shortfall per line).

    One line: one guarded UPDATE (with its ledger row, on PostgreSQL one statement). Several:
    the levels locked in id order, checked, updated and logged in three statements.
    """
    return _reserve(lines, reference=reference, reference_type=reference_type, user=user)


@transaction.atomic(savepoint=False)
def stock_reserve_or_shortfall(
    *, lines: Sequence[Line], reference: str, reference_type: str = "order", user=None
) -> InsufficientStock | None:
    """`stock_reserve` that returns its 409 instead of raising it, for the flash sale's path.

    It joins a caller's transaction without a savepoint (savepoints cost the sale 7-10 %:
    docs/benchmarks.md, "Savepoints on the hot path"), and a shortfall, returned rather than
    raised, leaves that transaction usable (order placement adds nearby stock to the 409 before
    raising it). On a shortfall nothing is reserved; expired holds it reclaimed on the way stay
    reclaimed (with their ledger rows) unless the caller rolls back, as placement does.
    """
    try:
        _reserve(lines, reference=reference, reference_type=reference_type, user=user)
    except InsufficientStock as shortfall:
        return shortfall
    return None


def _reserve(lines: Sequence[Line], *, reference: str, reference_type: str, user) -> list[StockMovement]:
    check_lines(lines)
    return apply_changes(
        (Change(ln.location_id, ln.sku_id, reserved=ln.quantity) for ln in lines),
        kind=MovementKind.RESERVATION,
        reference_type=reference_type,
        reference=reference,
        user=user,
        consumes=True,
        on_violation=insufficient,
    )


def stock_release(
    *, lines: Sequence[Line], reference: str, reference_type: str = "order", user=None, reason: str = ""
) -> list[StockMovement]:
    """Give reserved units back to availability (cancellation, re-routing)."""
    return stock_release_many(
        releases=[Release(lines=lines, reference=reference, reference_type=reference_type, reason=reason)],
        user=user,
    )


@dataclass(frozen=True)
class Release:
    """Reserved units one reference (an order) gives back, and what its ledger rows say."""

    lines: Sequence[Line]
    reference: str
    reference_type: str = "order"
    reason: str = ""


@transaction.atomic
def stock_release_many(*, releases: Sequence[Release], user=None) -> list[StockMovement]:
    """`stock_release` of several references at once (the pickup-expiry sweep's batch of orders):
    every level locked once, in primary-key order, one guarded UPDATE for the sum, and the ledger
    rows each release would have written alone (one per reference and level, its reason)."""
    for release in releases:
        check_lines(release.lines)
    return apply_ledgered_changes(
        (
            LedgerEntry(MovementKind.RELEASE, r.reference_type, r.reference, user, r.reason),
            Change(ln.location_id, ln.sku_id, reserved=-ln.quantity),
        )
        for r in releases
        for ln in r.lines
    )


def stock_levels_lock(*, lines: Sequence[Line]) -> int:
    """Lock the stock levels of `lines` (SELECT ... FOR UPDATE, primary-key order: the one global
    lock order) until the caller's transaction ends; how many exist. For a caller that changes
    several orders' levels one order at a time in one transaction (orders' pickup expiry sweep):
    taking them all first, in order, keeps it from deadlocking with placements and other sweeps."""
    if not lines:
        return 0
    return len(lock_levels((ln.location_id, ln.sku_id) for ln in lines))


@transaction.atomic
def stock_commit(
    *, lines: Sequence[Line], reference: str, reference_type: str = "order", user=None, reason: str = ""
) -> list[StockMovement]:
    """Reserved goods left the building (shipped, collected): on hand and reserved both go down."""
    check_lines(lines)
    return apply_changes(
        (Change(ln.location_id, ln.sku_id, on_hand=-ln.quantity, reserved=-ln.quantity) for ln in lines),
        kind=MovementKind.COMMIT,
        reference_type=reference_type,
        reference=reference,
        user=user,
        reason=reason,
    )


@transaction.atomic
def stock_return_restock(
    *, lines: Sequence[Line], reference: str, user=None, reason: str = ""
) -> list[StockMovement]:
    """A resellable returned item is back on the shelf of the location that took it (`user` must
    be assigned there)."""
    require_access(user, {ln.location_id for ln in lines})  # who may act comes before what they sent
    check_lines(lines)
    return apply_changes(
        (Change(ln.location_id, ln.sku_id, on_hand=ln.quantity) for ln in lines),
        kind=MovementKind.RETURN_RESTOCK,
        reference_type="return",
        reference=reference,
        user=user,
        reason=reason,
        create_missing=True,
    )
