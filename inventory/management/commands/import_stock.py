"""Set on-hand stock from a CSV file: `manage.py import_stock FILE.csv [--dry-run]`.

The header is `location,sku,quantity` (row 1); each row sets on hand at that location to the
counted quantity (a cycle count in the ledger). Every row is validated first; if any row is
invalid, the errors are listed by row number, nothing is applied and the exit status is 1.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.errors import DomainError
from inventory.services import stock_import

from ._stock_csv import CsvFileError, check_stock_csv, format_errors


class Command(BaseCommand):
    help = "Import on-hand stock from a CSV (location,sku,quantity): all rows or none."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file with the header location,sku,quantity")
        parser.add_argument("--dry-run", action="store_true", help="validate only; change nothing")
        parser.add_argument("--reference", default="", help="ledger reference (default: the file name)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, file, dry_run, reference, no_progress, **options):
        path = Path(file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from None
        try:
            rows, errors = check_stock_csv(data)
        except CsvFileError as exc:
            raise CommandError(f"{file}: {exc}") from None
        if errors:
            for line in format_errors(errors):
                self.stderr.write(line)
            raise CommandError(f"{len(errors)} row(s) are invalid; nothing was imported.")
        if dry_run:
            self.stdout.write(f"Dry run: all {len(rows)} rows are valid; nothing was changed.")
            return
        with tqdm(
            total=len(rows), unit="row", desc="Importing", disable=no_progress, file=self.stderr._out
        ) as bar:
            try:
                applied = stock_import(
                    rows=rows, reference=reference or f"csv {path.name}"[:64], progress=bar.update
                )
            except DomainError as exc:  # rows below what is reserved: still all or nothing
                errors = exc.details.get("errors") or []
                for line in format_errors(errors):
                    self.stderr.write(line)
                raise CommandError(f"{exc.message}") from None
        self.stdout.write(self.style.SUCCESS(f"Imported {applied} rows from {path.name}."))
