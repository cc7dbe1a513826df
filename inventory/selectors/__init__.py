"""Reads of stock and availability, for every channel.

- `availability`: a SKU across the network (the availability API, "find in store", the cart check);
- `levels`: stock levels with their availability (a store's shelf, staff call results, by pairs);
- `catalog`: SKUs; `ledger`: the stock ledger; `transfers`; `params`: `near` and `radius_km`;
- `holds`: the checkout holds an account may act on (its own);
- `audit`: what `inventory_audit` proves (counters == ledger, held == hold lines).

available = on_hand - reserved - live held - safety_stock, never below zero, is defined once:
`StockLevel.objects.with_available()` for querysets, `inventory.db.available_sql` for raw reads.
"""

from .audit import held_mismatches, holds_without_units, ledger_mismatches
from .availability import (
    AVAILABILITY_LIMIT,
    AVAILABILITY_MAX_LIMIT,
    LocationAvailability,
    LocationStock,
    SkuAvailability,
    availability_for_sku,
    cart_check,
    locations_with_sku,
)
from .catalog import low_stock_threshold, sku_get, sku_list, skus_by_code
from .holds import hold_get, holds_of
from .ledger import movement_list, movements_by_ids
from .levels import available_at, location_stock, stock_for_skus, stock_levels_at
from .params import parse_near, parse_radius
from .transfers import transfer_get, transfer_list

__all__ = [
    "AVAILABILITY_LIMIT",
    "AVAILABILITY_MAX_LIMIT",
    "LocationAvailability",
    "LocationStock",
    "SkuAvailability",
    "availability_for_sku",
    "available_at",
    "cart_check",
    "held_mismatches",
    "hold_get",
    "holds_of",
    "holds_without_units",
    "ledger_mismatches",
    "location_stock",
    "locations_with_sku",
    "low_stock_threshold",
    "movement_list",
    "movements_by_ids",
    "parse_near",
    "parse_radius",
    "sku_get",
    "sku_list",
    "skus_by_code",
    "stock_for_skus",
    "stock_levels_at",
    "transfer_get",
    "transfer_list",
]
