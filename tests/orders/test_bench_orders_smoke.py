"""Smoke test of bench/orders.py (issue 3, figures 1 and 4) in a tiny mode: the harness runs end to end.

The flash sale goes through a real gunicorn serving this test database over HTTP; the claims through
forked worker processes. No timing is asserted: only what the harness itself verifies (every unit
sold once and only once, clean 409s, no 5xx, ledger consistent; every task claimed exactly once).
"""

import pytest

from bench import orders as bench_orders


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_flash_sale_and_claims_tiny():
    params = bench_orders.TINY_FLASH
    res = bench_orders.run_flash(database_url=bench_orders.current_database_url(), params=params, reset=False)
    assert res["problems"] == []
    checks = res["checks"]
    assert checks["created_201"] == params.units
    assert checks["orders_in_db"] == params.units
    assert checks["conflict_409_insufficient_stock"] == params.attempts - params.units
    assert checks["5xx"] == 0
    assert checks["transport_errors"] == 0
    assert checks["reserved"] == params.units
    assert checks["reserved"] <= checks["on_hand"]
    assert checks["ledger_mismatches"] == 0
    assert res["statements"]["201"] > 0
    assert res["statements"]["floor_noauth"] == 1
    tbl, summary, _ = bench_orders.flash_render(res)
    assert "orders/s" in tbl
    assert "insufficient_stock" in summary

    claims = bench_orders.TINY_CLAIMS
    res = bench_orders.run_claims(params=claims, reset=False)
    assert res["problems"] == []
    for mode in ("service", "raw"):
        c = res["checks"][mode]
        assert c["claimed_calls"] == claims.tasks
        assert c["distinct_ids"] == claims.tasks
        assert c["picking_in_db"] == claims.tasks
        assert c["pending_in_db"] == 0
    assert res["checks"]["service"]["fulfillments_claimed_twice"] == 0
    tbl, summary, ok = bench_orders.claims_render(res)
    assert ok
    assert "claims/s" in tbl
