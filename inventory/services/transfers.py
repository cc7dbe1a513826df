"""Transfers between locations: out of the source at once (in transit), in at the destination
when received."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from config.errors import InvalidInput, InvalidTransition, NotFound
from stores.models import Location

from ..hooks import TransferArrival, claim_arrival
from ..models import MovementKind, Sku, Transfer, TransferLine, TransferStatus
from .access import require_access
from .changes import Change, apply_changes, insufficient
from .stock import validate_quantity


@transaction.atomic
def transfer_create(
    *,
    from_location: Location,
    to_location: Location,
    lines: Sequence[tuple[Sku, int]],
    user=None,
    reference: str = "",
    from_reserved: bool = False,
) -> Transfer:
    """Goods leave `from_location` (transfer out); they are in transit until received.

    `user` must be assigned to `from_location` (403). More than available there is 409
    insufficient_stock with the shortfall per line; nothing moves. `from_reserved`: the units were
    reserved there for this transfer (ship to store, orders.services.ship_to_store): on hand and
    reserved go down together, in the one ledger row (409 when fewer are reserved).
    """
    require_access(user, [from_location.pk])
    if from_location.pk == to_location.pk:
        raise InvalidInput("A transfer needs two different locations.", details={"field": "to_location"})
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    units_by_sku: dict[int, int] = defaultdict(int)
    for i, (sku, quantity) in enumerate(lines):
        validate_quantity(quantity, field=f"lines[{i}].quantity")
        units_by_sku[sku.pk] += quantity
    transfer = Transfer.objects.create(
        from_location=from_location,
        to_location=to_location,
        created_by=user if user and user.is_authenticated else None,
        reference=reference,
    )
    TransferLine.objects.bulk_create(
        [TransferLine(transfer=transfer, sku_id=sku_id, quantity=q) for sku_id, q in units_by_sku.items()]
    )
    reserved = -1 if from_reserved else 0
    apply_changes(
        (
            Change(from_location.pk, sku_id, on_hand=-q, reserved=reserved * q)
            for sku_id, q in units_by_sku.items()
        ),
        kind=MovementKind.TRANSFER_OUT,
        reference_type="transfer",
        reference=str(transfer.pk),
        user=user,
        reason=f"to {to_location.code}",
        consumes=True,
        on_violation=insufficient,
    )
    return transfer


@transaction.atomic
def transfer_receive(*, transfer_id: int, user=None, received: dict[str, int] | None = None) -> Transfer:
    """The transfer arrived: on hand goes up at the destination. Receiving twice is a 409.

    `received` ({SKU code: units counted in}, 0 to what was sent; a SKU left out: all of it) is
    for a short arrival; the rest is lost in transit (it left the source's on hand when sent).
    Units an order waits for (inventory.hooks.TransferArrival: ship to store) are counted in
    reserved for it. Locks the transfer row first, then what the listeners lock, then the stock.
    `user` must be assigned to the destination (403).
    """
    try:
        transfer = (
            Transfer.objects.select_for_update(of=("self",))
            .select_related("to_location", "from_location")
            .get(pk=transfer_id)
        )
    except Transfer.DoesNotExist:
        raise NotFound(f"Unknown transfer {transfer_id}.", code="unknown_transfer") from None
    require_access(user, [transfer.to_location_id])
    if transfer.status != TransferStatus.IN_TRANSIT:
        raise InvalidTransition(
            f"Transfer {transfer.pk} is {transfer.status}, it cannot be received.",
            details={"from": transfer.status, "to": TransferStatus.RECEIVED},
        )
    lines = list(transfer.lines.select_related("sku").order_by("pk"))
    counted = _counted(lines, received or {})
    claims = claim_arrival(
        TransferArrival(
            transfer_id=transfer.pk,
            to_location_id=transfer.to_location_id,
            sent={ln.sku_id: ln.quantity for ln in lines},
            received={ln.sku_id: counted[ln.pk] for ln in lines},
            user=user,
        )
    )
    claimed: dict[int, int] = defaultdict(int)
    for claim in claims:
        for sku_id, q in claim.reserve.items():
            claimed[sku_id] += q
    changes = [
        Change(transfer.to_location_id, ln.sku_id, on_hand=counted[ln.pk], reserved=claimed[ln.sku_id])
        for ln in lines
        if counted[ln.pk] > 0
    ]
    if changes:
        apply_changes(
            changes,
            kind=MovementKind.TRANSFER_IN,
            reference_type="transfer",
            reference=str(transfer.pk),
            user=user,
            reason=f"from {transfer.from_location.code}",
            create_missing=True,
        )
    for ln in lines:
        ln.received_quantity = counted[ln.pk]
    TransferLine.objects.bulk_update(lines, ["received_quantity"])
    for claim in claims:
        claim.then()
    transfer.status = TransferStatus.RECEIVED
    transfer.received_at = timezone.now()
    transfer.save(update_fields=["status", "received_at"])
    return transfer


def _counted(lines: list[TransferLine], received: dict[str, int]) -> dict[int, int]:
    """{transfer line id: units counted in}: `received` by SKU code checked against the lines (400)."""
    by_code = {ln.sku.code: ln for ln in lines}
    unknown = [code for code in received if code not in by_code]
    if unknown:
        raise InvalidInput(
            f"SKU {unknown[0]} is not on this transfer.", details={"field": "lines", "sku": unknown[0]}
        )
    out = {}
    for ln in lines:
        q = received.get(ln.sku.code, ln.quantity)
        validate_quantity(q, field=f"lines[{ln.sku.code}].quantity", allow_zero=True)
        if q > ln.quantity:
            raise InvalidInput(
                f"Received more {ln.sku.code} than was sent ({ln.quantity}).",
                details={"field": "lines", "sku": ln.sku.code, "sent": ln.quantity},
            )
        out[ln.pk] = q
    return out
