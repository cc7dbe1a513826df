"""SKUs: by code, lists, and their low-stock threshold."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models import Q, QuerySet

from .. import db
from ..exceptions import UnknownSku
from ..models import Sku


def sku_get(*, code: str) -> Sku:
    """The SKU with this code, or UnknownSku (404). Every availability read starts here (one
    statement written once per database: inventory.db.sku_by_code)."""
    if "\x00" not in code:  # no code has one, and PostgreSQL refuses it in a query (a 500)
        sku = db.sku_by_code(code)
        if sku is not None:
            return sku
    raise UnknownSku(f"Unknown SKU {code!r}.", details={"sku": code})


def skus_by_code(*, codes: Iterable[str]) -> dict[str, Sku]:
    """Every SKU of `codes` by code, or UnknownSku (404) listing the unknown ones."""
    codes = set(codes)
    by_code = {s.code: s for s in Sku.objects.filter(code__in=[c for c in codes if "\x00" not in c])}
    missing = sorted(codes - by_code.keys())
    if missing:
        raise UnknownSku("Unknown SKU(s).", details={"skus": missing})
    return by_code


def sku_list(*, search: str | None = None, category: str | None = None) -> QuerySet[Sku]:
    qs = Sku.objects.filter(is_active=True)
    if search:
        qs = qs.filter(Q(code__icontains=search) | Q(name__icontains=search) | Q(barcode=search))
    if category:
        qs = qs.filter(category=category)
    return qs.order_by("code")


def low_stock_threshold(sku: Sku) -> int:
    """Available at or below this is "low stock": the SKU's own, or the global default."""
    return (
        sku.low_stock_threshold
        if sku.low_stock_threshold is not None
        else settings.OMS["LOW_STOCK_THRESHOLD"]
    )
