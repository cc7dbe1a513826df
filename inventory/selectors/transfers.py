"""Transfers, with their locations and lines loaded."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Prefetch, Q, QuerySet

from config.errors import NotFound
from stores.models import Location

from ..models import Transfer, TransferLine


def _transfers() -> QuerySet[Transfer]:
    return Transfer.objects.select_related("from_location", "to_location", "created_by").prefetch_related(
        Prefetch("lines", queryset=TransferLine.objects.select_related("sku").order_by("sku__code"))
    )


def transfer_get(*, transfer_id: int) -> Transfer:
    try:
        return _transfers().get(pk=transfer_id)
    except Transfer.DoesNotExist:
        raise NotFound(
            f"Unknown transfer {transfer_id}.", code="unknown_transfer", details={"transfer": transfer_id}
        ) from None


def transfer_list(
    *, location_ids: Iterable[int] | None = None, location: Location | None = None, status: str | None = None
) -> QuerySet[Transfer]:
    """Transfers newest first; `location_ids` (None = everywhere) keeps those from or to those locations."""
    qs = _transfers()
    if location_ids is not None:
        ids = list(location_ids)
        qs = qs.filter(Q(from_location_id__in=ids) | Q(to_location_id__in=ids))
    if location is not None:
        qs = qs.filter(Q(from_location=location) | Q(to_location=location))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-id")
