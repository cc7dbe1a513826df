"""The stock ledger (StockMovement rows), newest first."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from stores.models import Location

from ..models import Sku, StockMovement


def movement_list(
    *,
    sku: Sku | None = None,
    location: Location | None = None,
    location_ids: Iterable[int] | None = None,
    kind: str | None = None,
    reference: str | None = None,
) -> QuerySet[StockMovement]:
    """The ledger, newest first. `location_ids` (None = everywhere) scopes it to a staff user's locations."""
    qs = StockMovement.objects.select_related("sku", "location", "user")
    if sku is not None:
        qs = qs.filter(sku=sku)
    if location is not None:
        qs = qs.filter(location=location)
    if location_ids is not None:
        qs = qs.filter(location_id__in=list(location_ids))
    if kind:
        qs = qs.filter(kind=kind)
    if reference:
        qs = qs.filter(reference=reference)
    return qs.order_by("-id")


def movements_by_ids(*, ids: Iterable[int]) -> list[StockMovement]:
    """Ledger rows just written by a service, with SKU, location and user loaded for output."""
    return list(
        StockMovement.objects.filter(pk__in=list(ids))
        .select_related("sku", "location", "user")
        .order_by("id")
    )
