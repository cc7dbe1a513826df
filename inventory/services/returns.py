"""Goods customers bring back, counted in at the location that takes them (returns.services.
return_receive calls this, in its transaction).

Every returned unit writes a `return_restock` ledger row at the receiving location (it came back
there), and what happens to it next:

- resellable: nothing more. On hand goes up (apply_changes, one guarded bulk UPDATE whatever the
  number of SKUs): sellable from every channel at once, and a SKU that had nothing available there
  is announced as a Restock (back-in-stock alerts for that store, `stock.back_in_stock`).
- written off (damaged, defective): a `damage` row of the same units. The pair nets to zero, so
  the counters do not change and the units are never available, not even inside the transaction
  (no Restock is announced); the ledger still says they came back and were written off.
- forwarded (send to warehouse): a `transfer_out` row of the same units on a new Transfer to the
  returns warehouse, received there like any transfer (`transfer_receive`: `transfer_in`).

`manage.py inventory_audit` stays clean: the pairs sum to zero, as the level's counters do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from config.errors import InvalidInput
from stores.models import Location

from ..models import MovementKind, StockMovement, Transfer, TransferLine
from .access import require_access
from .changes import Change, LedgerEntry, apply_changes
from .stock import validate_quantity

RESTOCK = "restock"
WRITE_OFF = "write_off"
FORWARD = "forward"


@dataclass(frozen=True)
class ReturnedUnits:
    """`quantity` units of a SKU taken back, and what becomes of them: RESTOCK, WRITE_OFF or FORWARD."""

    sku_id: int
    quantity: int
    disposition: str


@dataclass(frozen=True)
class ReturnCountedIn:
    movements: list[StockMovement]
    transfer: Transfer | None  # the transfer carrying the FORWARD units, if any


@transaction.atomic
def stock_return_receive(
    *,
    location: Location,
    units: Sequence[ReturnedUnits],
    reference: str,
    user=None,
    forward_to: Location | None = None,
    reason: str = "",
) -> ReturnCountedIn:
    """Count returned units in at `location` (module docstring). `user` must be assigned there (403).

    A fixed number of statements whatever the number of SKUs: the restock's lock, UPDATE and ledger
    INSERT (apply_changes), one INSERT for the write-off and forward rows, and for forwarded units
    the transfer and its lines (two INSERTs).
    """
    require_access(user, [location.pk])
    by_kind: dict[str, dict[int, int]] = {
        RESTOCK: defaultdict(int),
        WRITE_OFF: defaultdict(int),
        FORWARD: defaultdict(int),
    }
    for i, u in enumerate(units):
        if u.disposition not in by_kind:
            raise InvalidInput(f"Unknown disposition {u.disposition!r}.", details={"field": f"units[{i}]"})
        validate_quantity(u.quantity, field=f"units[{i}].quantity")
        by_kind[u.disposition][u.sku_id] += u.quantity
    if by_kind[FORWARD] and (forward_to is None or forward_to.pk == location.pk):
        raise InvalidInput("Forwarded units need another location to go to.", details={"field": "forward_to"})
    movements: list[StockMovement] = []
    if by_kind[RESTOCK]:
        movements += apply_changes(
            (Change(location.pk, sku_id, on_hand=q) for sku_id, q in by_kind[RESTOCK].items()),
            kind=MovementKind.RETURN_RESTOCK,
            reference_type="return",
            reference=reference,
            user=user,
            reason=reason or "returned, resellable",
            create_missing=True,
        )
    transfer = None
    pairs: list[StockMovement] = []
    came_back = LedgerEntry(MovementKind.RETURN_RESTOCK, "return", reference, user, reason or "returned")
    if by_kind[WRITE_OFF]:
        written_off = LedgerEntry(
            MovementKind.DAMAGE, "return", reference, user, "returned damaged or defective"
        )
        for sku_id, q in by_kind[WRITE_OFF].items():
            pairs += [
                came_back.movement(Change(location.pk, sku_id, on_hand=q)),
                written_off.movement(Change(location.pk, sku_id, on_hand=-q)),
            ]
    if by_kind[FORWARD]:
        transfer = Transfer.objects.create(
            from_location=location,
            to_location=forward_to,
            created_by=user if user is not None and user.is_authenticated else None,
            reference=f"return {reference}"[:64],
        )
        TransferLine.objects.bulk_create(
            [
                TransferLine(transfer=transfer, sku_id=sku_id, quantity=q)
                for sku_id, q in by_kind[FORWARD].items()
            ]
        )
        sent = LedgerEntry(
            MovementKind.TRANSFER_OUT, "transfer", str(transfer.pk), user, f"to {forward_to.code}"
        )
        for sku_id, q in by_kind[FORWARD].items():
            pairs += [
                came_back.movement(Change(location.pk, sku_id, on_hand=q)),
                sent.movement(Change(location.pk, sku_id, on_hand=-q)),
            ]
    if pairs:
        movements += StockMovement.objects.bulk_create(pairs)
    return ReturnCountedIn(movements=movements, transfer=transfer)
