"""Reading a stock CSV (header location,sku,quantity) into inventory.services.ImportRow rows.

Shared by `manage.py import_stock` and the admin's import page. Row numbers are file lines:
the header is row 1. Blank lines are skipped (they keep their number for the rows after them).
"""

from __future__ import annotations

import csv
import io

from inventory.services import ImportRow, stock_import_validate

COLUMNS = ("location", "sku", "quantity")
MAX_BYTES = 20 * 1024 * 1024


class CsvFileError(ValueError):
    """The file as a whole cannot be read (encoding, header, empty)."""


def parse_stock_csv(data: bytes) -> tuple[list[ImportRow], list[dict]]:
    """The rows, and the rows that could not be read (wrong field count) by row number.

    Raises CsvFileError when the file as a whole is unusable.
    """
    if len(data) > MAX_BYTES:
        raise CsvFileError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFileError(f"The file is not UTF-8 text (byte {exc.start} cannot be decoded).") from None
    if not text.strip():
        raise CsvFileError("The file is empty; expected a header line: location,sku,quantity.")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise CsvFileError(f"Row 1: {exc}") from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    extra = [h for h in names if h not in COLUMNS]
    if missing or extra or len(names) != len(set(names)):
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected column(s): {', '.join(extra)}")
        if len(names) != len(set(names)):
            parts.append("a column appears twice")
        raise CsvFileError(f"Row 1 (header): {'; '.join(parts)}. Expected: location,sku,quantity.")
    index = {name: names.index(name) for name in COLUMNS}
    rows: list[ImportRow] = []
    problems: list[dict] = []
    try:
        for record in reader:
            row_number = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(names):
                problems.append(
                    {"row": row_number, "errors": [f"expected {len(names)} fields, found {len(record)}"]}
                )
                continue
            rows.append(
                ImportRow(
                    row_number,
                    record[index["location"]].strip(),
                    record[index["sku"]].strip(),
                    record[index["quantity"]].strip(),
                )
            )
    except csv.Error as exc:
        raise CsvFileError(f"Row {reader.line_num}: {exc}") from None
    if not rows and not problems:
        raise CsvFileError("The file has a header but no rows.")
    return rows, problems


def check_stock_csv(data: bytes, *, user=None) -> tuple[list[ImportRow], list[dict]]:
    """Read and validate every row (nothing is written): the rows, and all errors sorted by row
    number; with `user`, rows at locations the user is not assigned to are errors too."""
    rows, problems = parse_stock_csv(data)
    _, errors = stock_import_validate(rows=rows, user=user)
    return rows, sorted(problems + errors, key=lambda e: e["row"])


def format_errors(errors: list[dict]) -> list[str]:
    return [f"row {e['row']}: {'; '.join(e['errors'])}" for e in errors]
