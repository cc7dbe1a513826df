"""The reservation benchmark's harness works (few processes, under a second per phase; no timing asserts)."""

import pytest

from bench import reserve

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_hot_sku_bench_quick_runs_and_leaves_the_ledger_true():
    merged, checks = reserve.run(n_skus=1, workers=3, duration=0.5, reset=False)

    assert set(merged) == {"service", "raw"}
    for phase in merged.values():
        assert phase.ok > 0
        assert not phase.errors
        assert phase.refused == 0  # enough stock for the whole run
        assert len(phase.latencies) == phase.ok
    assert checks == {
        "reservations_written": merged["service"].ok + merged["raw"].ok,
        "reservations_counted": merged["service"].ok + merged["raw"].ok,
        "oversold_levels": 0,
        "ledger_mismatches": 0,
    }
    summary, _ = reserve.verdict(merged, checks)
    assert "consistent" in summary
    table = reserve.render(merged, workers=3, duration=0.5)
    assert "| service |" in table
    assert "| raw |" in table
