"""What `manage.py inventory_audit` proves: the counters are explained by the ledger and the holds.

Each function returns the offending rows (empty when all is right). None of them locks: run on a
quiet system, or read a difference that disappears on a second run as a change in flight.
"""

from __future__ import annotations

from django.db.models import Q, Sum
from django.utils import timezone

from ..models import Hold, HoldLine, StockLevel, StockMovement

COUNTERS = ("on_hand", "reserved", "held", "safety_stock")


def ledger_mismatches() -> list[dict]:
    """Stock levels whose counters differ from the sums of their ledger rows."""
    sums = {
        (r["location_id"], r["sku_id"]): r
        for r in StockMovement.objects.values("location_id", "sku_id").annotate(
            on_hand=Sum("on_hand_delta"),
            reserved=Sum("reserved_delta"),
            held=Sum("held_delta"),
            safety_stock=Sum("safety_stock_delta"),
        )
    }
    bad = []
    seen = set()
    for lvl in StockLevel.objects.values("pk", "location_id", "sku_id", *COUNTERS).iterator(chunk_size=5000):
        key = (lvl["location_id"], lvl["sku_id"])
        seen.add(key)
        s = sums.get(key, {})
        diffs = {f: {"level": lvl[f], "ledger": s.get(f) or 0} for f in COUNTERS if lvl[f] != (s.get(f) or 0)}
        if diffs:
            bad.append({"stock_level": lvl["pk"], "location_id": key[0], "sku_id": key[1], "diffs": diffs})
    for key, s in sums.items():
        if key not in seen and any(s[f] for f in COUNTERS):
            bad.append(
                {
                    "stock_level": None,
                    "location_id": key[0],
                    "sku_id": key[1],
                    "diffs": {f: {"level": 0, "ledger": s[f]} for f in COUNTERS if s[f]},
                }
            )
    return bad


def held_mismatches() -> list[dict]:
    """Stock levels whose `held` differs from the units of their hold lines (every hold line of the
    level, expired ones not yet reclaimed included): {"stock_level", "location_id", "sku_id",
    "held", "hold_lines"}. A hold line at a (location, SKU) without a level is one too
    (stock_level None, held 0)."""
    units = {
        (r["location_id"], r["sku_id"]): r["units"]
        for r in HoldLine.objects.values("location_id", "sku_id").annotate(units=Sum("quantity")).order_by()
    }
    bad = []
    seen = set()
    holding = StockLevel.objects.filter(Q(held__gt=0) | Q(sku_id__in={sku for _, sku in units}))
    for lvl in holding.values("pk", "location_id", "sku_id", "held").iterator(chunk_size=5000):
        key = (lvl["location_id"], lvl["sku_id"])
        seen.add(key)
        if lvl["held"] != units.get(key, 0):
            bad.append(
                {
                    "stock_level": lvl["pk"],
                    "location_id": key[0],
                    "sku_id": key[1],
                    "held": lvl["held"],
                    "hold_lines": units.get(key, 0),
                }
            )
    for key, n in units.items():
        if key not in seen:
            bad.append(
                {"stock_level": None, "location_id": key[0], "sku_id": key[1], "held": 0, "hold_lines": n}
            )
    return bad


def holds_without_units() -> list[dict]:
    """Holds that have not expired yet but hold nothing (no hold line): {"hold", "expires_at"}.

    Every hold is written with its lines in one transaction, so such a row is left over by a write
    that went wrong. An expired hold whose lines a writer reclaimed is not one: it keeps its row
    until the sweep (holds_reclaim_expired) deletes it, so that a late extend or order placement
    with it answers `hold_expired`.
    """
    return [
        {"hold": str(pk), "expires_at": expires_at}
        for pk, expires_at in Hold.objects.filter(expires_at__gt=timezone.now(), lines__isnull=True)
        .order_by("expires_at")
        .values_list("pk", "expires_at")
    ]
