"""Prove that every stock level equals the sum of its ledger: `manage.py inventory_audit`.

Exit status 0 when every level agrees, 1 (CommandError) listing the offending rows when not.
"""

from django.core.management.base import BaseCommand, CommandError

from inventory.models import Sku, StockLevel, StockMovement
from inventory.selectors import ledger_mismatches
from stores.models import Location


class Command(BaseCommand):
    help = "Check every stock level against its ledger (StockMovement sums); non-zero exit on drift."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=100, help="rows to list at most (default 100)")

    def handle(self, *args, limit, **options):
        levels = StockLevel.objects.count()
        movements = StockMovement.objects.count()
        bad = ledger_mismatches()
        if not bad:
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {levels} stock levels agree with their ledger ({movements} movements)."
                )
            )
            return
        locs = dict(Location.objects.filter(pk__in={b["location_id"] for b in bad}).values_list("pk", "code"))
        skus = dict(Sku.objects.filter(pk__in={b["sku_id"] for b in bad}).values_list("pk", "code"))
        self.stderr.write(f"{'location':<20} {'sku':<24} {'level id':>8}  field: level != ledger")
        for b in bad[:limit]:
            diffs = ", ".join(f"{f}: {d['level']} != {d['ledger']}" for f, d in b["diffs"].items())
            self.stderr.write(
                f"{locs.get(b['location_id'], b['location_id'])!s:<20} {skus.get(b['sku_id'], b['sku_id'])!s:<24} "
                f"{b['stock_level'] if b['stock_level'] is not None else '-':>8}  {diffs}"
            )
        if len(bad) > limit:
            self.stderr.write(f"... and {len(bad) - limit} more")
        raise CommandError(
            f"{len(bad)} of {levels} stock levels disagree with their ledger ({movements} movements)."
        )
