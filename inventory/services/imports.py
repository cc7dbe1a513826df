"""Stock import: set on hand to counted quantities, many rows at once, all or nothing
(`manage.py import_stock`, the admin's import page, the demo data)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db import transaction

from config.errors import InvalidInput
from stores.models import Location
from stores.selectors import user_location_ids

from ..models import MovementKind, Sku, StockLevel
from .changes import Change, apply_changes, lock_levels


@dataclass(frozen=True)
class ImportRow:
    row_number: int
    location_code: str
    sku_code: str
    quantity: object  # as read from the file: checked by stock_import_validate


class CountedRow(NamedTuple):
    """A valid import row: on hand of `sku` at `location` is `quantity`."""

    row: ImportRow
    location: Location
    sku: Sku
    quantity: int


class ImportInvalid(InvalidInput):
    code = "import_invalid"


def _quantity_problems(raw_quantity: object) -> tuple[int | None, list[str]]:
    text = str(raw_quantity).strip() if raw_quantity is not None else ""
    if not text.lstrip("-").isdigit():
        return None, [f"quantity {text!r} is not a whole number"]
    quantity = int(text)
    limit = settings.OMS["MAX_LINE_QUANTITY"]
    if quantity < 0:
        return quantity, ["quantity must be zero or more"]
    if quantity > limit:
        return quantity, [f"quantity must be at most {limit}"]
    return quantity, []


def stock_import_validate(*, rows: Sequence[ImportRow], user=None) -> tuple[list[CountedRow], list[dict]]:
    """Check every row; return the valid rows and the errors by row number (nothing is written).

    With `user`, a row at a location the user is not assigned to is an error too (the same rule
    as stores.selectors.require_location_access, reported per row).
    """
    locations = {loc.code: loc for loc in Location.objects.filter(code__in={r.location_code for r in rows})}
    skus = {s.code: s for s in Sku.objects.filter(code__in={r.sku_code for r in rows})}
    allowed = user_location_ids(user) if user is not None else None
    first_row_of: dict[tuple[str, str], int] = {}
    valid: list[CountedRow] = []
    errors: list[dict] = []
    for r in rows:
        problems = []
        location, sku = locations.get(r.location_code), skus.get(r.sku_code)
        if location is None:
            problems.append(f"unknown location {r.location_code!r}")
        elif allowed is not None and location.pk not in allowed:
            problems.append(f"you are not assigned to location {r.location_code!r}")
        if sku is None:
            problems.append(f"unknown SKU {r.sku_code!r}")
        quantity, quantity_problems = _quantity_problems(r.quantity)
        problems += quantity_problems
        key = (r.location_code, r.sku_code)
        if key in first_row_of:
            problems.append(f"duplicate of row {first_row_of[key]}")
        else:
            first_row_of[key] = r.row_number
        if problems:
            errors.append({"row": r.row_number, "errors": problems})
        else:
            valid.append(CountedRow(r, location, sku, quantity))
    return valid, errors


@transaction.atomic
def stock_import(
    *,
    rows: Sequence[ImportRow],
    user=None,
    reference: str = "csv import",
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 500,
) -> int:
    """Set on hand to the counted quantity of every row, or change nothing.

    Every row is validated first; errors are reported by row number (400 import_invalid), also
    for rows at a location `user` is not assigned to. Rows whose count is below what is reserved
    and held there are errors too. Levels are locked and changed `chunk_size` rows at a time.
    """
    if not rows:
        raise ImportInvalid("The file has no rows.", details={"errors": [{"row": 0, "errors": ["no rows"]}]})
    valid, errors = stock_import_validate(rows=rows, user=user)
    if errors:
        raise ImportInvalid(
            f"{len(errors)} row(s) are invalid; nothing was imported.", details={"errors": errors}
        )
    for start in range(0, len(valid), chunk_size):
        chunk = valid[start : start + chunk_size]
        _import_chunk(chunk, user=user, reference=reference)
        if progress:
            progress(len(chunk))
    return len(valid)


def _import_chunk(chunk: list[CountedRow], *, user, reference: str) -> None:
    keys = [(c.location.pk, c.sku.pk) for c in chunk]
    levels = lock_levels(keys)
    missing = [k for k in keys if k not in levels]
    if missing:
        StockLevel.objects.bulk_create(
            [StockLevel(location_id=loc, sku_id=sku) for loc, sku in missing], ignore_conflicts=True
        )
        levels = lock_levels(keys)
    changes, below_promised = [], []
    for counted in chunk:
        level = levels[(counted.location.pk, counted.sku.pk)]
        promised = level["reserved"] + level["held"]
        if counted.quantity < promised:
            below_promised.append(
                {
                    "row": counted.row.row_number,
                    "errors": [f"quantity {counted.quantity} is below the {promised} units reserved or held"],
                }
            )
        elif counted.quantity != level["on_hand"]:
            changes.append(
                Change(counted.location.pk, counted.sku.pk, on_hand=counted.quantity - level["on_hand"])
            )
    if below_promised:
        raise ImportInvalid(
            f"{len(below_promised)} row(s) are invalid; nothing was imported.",
            details={"errors": below_promised},
        )
    apply_changes(
        changes,
        kind=MovementKind.CYCLE_COUNT,
        reference_type="import",
        reference=reference,
        user=user,
        reason="stock import",
    )
