"""Stock levels with their availability, read through `StockLevel.objects.with_available()` (the
one definition of availability for querysets): a store's shelf, the levels a staff call changed,
availability by (location, SKU) for the notification flows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db.models import Q, QuerySet

from stores.models import Location

from ..models import StockLevel


def stock_levels_at(*, location: Location, sku_ids: Iterable[int]) -> list[StockLevel]:
    """Stock levels of some SKUs at one location, by SKU code, with SKU and location loaded and
    `active_held` and `available` annotated."""
    return list(
        StockLevel.objects.with_available()
        .filter(location=location, sku_id__in=list(sku_ids))
        .select_related("sku", "location")
        .order_by("sku__code")
    )


def location_stock(
    *,
    location: Location,
    sku_codes: Iterable[str] | None = None,
    search: str | None = None,
    in_stock: bool = False,
) -> QuerySet[StockLevel]:
    """Stock levels at one location, by SKU code, with the SKU loaded and `active_held` and
    `available` annotated (a store's shelf). `in_stock` keeps those with something available."""
    qs = (
        StockLevel.objects.with_available()
        .filter(location=location, sku__is_active=True)
        .select_related("sku")
    )
    if sku_codes is not None:
        qs = qs.filter(sku__code__in=[c for c in sku_codes if "\x00" not in c])
    if search:
        qs = qs.filter(
            Q(sku__code__icontains=search) | Q(sku__name__icontains=search) | Q(sku__barcode=search)
        )
    if in_stock:
        qs = qs.filter(available__gt=0)
    return qs.order_by("sku__code")


def available_at(*, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Available units for (location_id, sku_id) pairs (0 where there is no level). One query."""
    if not pairs:
        return {}
    by_location: dict[int, list[int]] = defaultdict(list)
    for location_id, sku_id in pairs:
        by_location[location_id].append(sku_id)
    condition = Q()
    for location_id, sku_ids in by_location.items():
        condition |= Q(location_id=location_id, sku_id__in=sku_ids)
    out = dict.fromkeys(pairs, 0)
    for location_id, sku_id, available in (
        StockLevel.objects.with_available()
        .filter(condition)
        .values_list("location_id", "sku_id", "available")
    ):
        out[(location_id, sku_id)] = available
    return out


def stock_for_skus(*, sku_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """Available units per SKU per location, where some are: {sku_id: {location_id: n}}. One query."""
    out: dict[int, dict[int, int]] = defaultdict(dict)
    for location_id, sku_id, available in (
        StockLevel.objects.with_available()
        .filter(sku_id__in=list(sku_ids), available__gt=0)
        .values_list("location_id", "sku_id", "available")
    ):
        out[sku_id][location_id] = available
    return out
