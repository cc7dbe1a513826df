"""Smoke test of bench/pickups.py in a tiny mode: the bulk setup is consistent (the ledger audit is
clean before anything runs), and after the sweep the harness's own checks pass. No timing asserted."""

import pytest

from bench import pickups as bench_pickups
from inventory.selectors import held_mismatches, ledger_mismatches
from orders.services import pickups_expire


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_bulk_setup_is_consistent_and_the_sweep_passes_the_checks():
    meta = bench_pickups.setup(pickups=300, overdue=30, stores=3, skus=4)
    assert ledger_mismatches() == []
    assert held_mismatches() == []
    assert len(meta["overdue_numbers"]) == 30
    assert pickups_expire(batch_size=5) == 30
    checks = bench_pickups.check(meta)
    assert checks == {
        "cancelled": 30,
        "cancelled_exactly_overdue": True,
        "orders_with_two_cancel_events": 0,
        "overdue_left": 0,
        "ledger_mismatches": 0,
        "refunded_exactly_once": True,
        "cancelled_units_not_refunded": 0,
    }
