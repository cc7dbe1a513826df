"""What `manage.py inventory_audit` proves: the counters are explained by the ledger.

Each function returns the offending rows (empty when all is right). None of them locks: run on a
quiet system, or read a difference that disappears on a second run as a change in flight.
"""

from __future__ import annotations

from django.db.models import Sum

from ..models import StockLevel, StockMovement

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
