"""Transfers between locations: out of the source at once (in transit), in at the destination
when received."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from config.errors import InvalidInput, InvalidTransition, NotFound
from stores.models import Location

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
) -> Transfer:
    """Goods leave `from_location` (transfer out); they are in transit until received.

    `user` must be assigned to `from_location` (403). More than available there is 409
    insufficient_stock with the shortfall per line; nothing moves.
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
    apply_changes(
        (Change(from_location.pk, sku_id, on_hand=-q) for sku_id, q in units_by_sku.items()),
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
def transfer_receive(*, transfer_id: int, user=None) -> Transfer:
    """The transfer arrived: on hand goes up at the destination. Receiving twice is a 409.

    Locks the transfer row. `user` must be assigned to the destination (403).
    """
    try:
        transfer = (
            Transfer.objects.select_for_update()
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
    apply_changes(
        (Change(transfer.to_location_id, ln.sku_id, on_hand=ln.quantity) for ln in transfer.lines.all()),
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
