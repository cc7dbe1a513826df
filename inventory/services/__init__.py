"""Every stock change in the system goes through this package.

- `stock`: receive, count and adjust, safety stock, and the reservations of orders
  (reserve, release, commit) and resellable returns;
- `holds`: checkout holds (create, extend, release, convert, the expiry sweep);
- `transfers`: goods moving between locations;
- `returns`: goods customers bring back (restocked, written off, or sent on to a warehouse);
- `imports`: on hand set from counted quantities, many rows at once;
- `changes`: how all of them apply a change (the invariants, the guarded UPDATE, locking,
  the ledger, the restock and out-of-stock events);
- `access`: who may change stock at a location.

Each public service is its own `transaction.atomic` (nested: a savepoint), except
`stock_reserve_or_shortfall`, which joins its caller's transaction without one and returns its 409
(the flash sale's path: docs/architecture.md, "Transactions").
"""

from .holds import hold_convert, hold_create, hold_extend, hold_release, holds_reclaim_expired
from .imports import CountedRow, ImportInvalid, ImportRow, stock_import, stock_import_validate
from .returns import FORWARD, RESTOCK, WRITE_OFF, ReturnCountedIn, ReturnedUnits, stock_return_receive
from .stock import (
    Line,
    Release,
    stock_adjust,
    stock_commit,
    stock_levels_lock,
    stock_receive,
    stock_release,
    stock_release_many,
    stock_reserve,
    stock_reserve_or_shortfall,
    stock_return_restock,
    stock_set_safety_stock,
    validate_quantity,
)
from .transfers import transfer_create, transfer_receive

__all__ = [
    "FORWARD",
    "RESTOCK",
    "WRITE_OFF",
    "CountedRow",
    "ImportInvalid",
    "ImportRow",
    "Line",
    "Release",
    "ReturnCountedIn",
    "ReturnedUnits",
    "hold_convert",
    "hold_create",
    "hold_extend",
    "hold_release",
    "holds_reclaim_expired",
    "stock_adjust",
    "stock_commit",
    "stock_import",
    "stock_import_validate",
    "stock_levels_lock",
    "stock_receive",
    "stock_release",
    "stock_release_many",
    "stock_reserve",
    "stock_reserve_or_shortfall",
    "stock_return_receive",
    "stock_return_restock",
    "stock_set_safety_stock",
    "transfer_create",
    "transfer_receive",
    "validate_quantity",
]
