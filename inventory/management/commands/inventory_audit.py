"""Prove that the stock counters are explained: `manage.py inventory_audit`.

Three checks (inventory.selectors.audit):
- every stock level equals the sums of its ledger rows (all four counters);
- every level's `held` equals the units of its hold lines (expired, not yet reclaimed ones included);
- no hold that has not expired is without hold lines.

Exit status 0 when all pass, 1 (CommandError) listing the offending rows when not.
"""

from django.core.management.base import BaseCommand, CommandError

from inventory.models import Hold, Sku, StockLevel, StockMovement
from inventory.selectors import held_mismatches, holds_without_units, ledger_mismatches
from stores.models import Location


class Command(BaseCommand):
    help = (
        "Check every stock level against its ledger (StockMovement sums) and its held units against "
        "the hold lines; non-zero exit on drift."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=int, default=100, help="rows to list at most per check (default 100)"
        )

    def handle(self, *args, limit, **options):
        levels = StockLevel.objects.count()
        movements = StockMovement.objects.count()
        ledger, held, empty_holds = ledger_mismatches(), held_mismatches(), holds_without_units()
        if not (ledger or held or empty_holds):
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {levels} stock levels agree with their ledger ({movements} movements) "
                    f"and their held units with the hold lines ({Hold.objects.count()} holds)."
                )
            )
            return
        keys = {(b["location_id"], b["sku_id"]) for b in [*ledger, *held]}
        locations = dict(Location.objects.filter(pk__in={k[0] for k in keys}).values_list("pk", "code"))
        skus = dict(Sku.objects.filter(pk__in={k[1] for k in keys}).values_list("pk", "code"))

        def where(b: dict) -> str:
            level = b["stock_level"] if b["stock_level"] is not None else "-"
            location, sku = (
                locations.get(b["location_id"], b["location_id"]),
                skus.get(b["sku_id"], b["sku_id"]),
            )
            return f"{location!s:<20} {sku!s:<24} {level:>8}"

        problems = []
        if ledger:
            self.stderr.write(f"{'location':<20} {'sku':<24} {'level id':>8}  field: level != ledger")
            self._list([f"{where(b)}  {_diffs(b)}" for b in ledger], limit)
            problems.append(
                f"{len(ledger)} of {levels} stock levels disagree with their ledger ({movements} movements)"
            )
        if held:
            self.stderr.write(f"{'location':<20} {'sku':<24} {'level id':>8}  held != units of hold lines")
            self._list([f"{where(b)}  held: {b['held']} != {b['hold_lines']}" for b in held], limit)
            problems.append(f"{len(held)} stock levels hold other than their hold lines")
        if empty_holds:
            self.stderr.write("hold (not expired, without hold lines)")
            self._list(
                [f"{h['hold']} expires {h['expires_at']:%Y-%m-%d %H:%M:%S}" for h in empty_holds], limit
            )
            problems.append(f"{len(empty_holds)} holds hold nothing")
        raise CommandError("; ".join(problems) + ".")

    def _list(self, lines: list[str], limit: int) -> None:
        for line in lines[:limit]:
            self.stderr.write(line)
        if len(lines) > limit:
            self.stderr.write(f"... and {len(lines) - limit} more")


def _diffs(b: dict) -> str:
    return ", ".join(f"{f}: {d['level']} != {d['ledger']}" for f, d in b["diffs"].items())
