"""Issue 10 on PostgreSQL with real threads: partial hand-overs release one subset of a store's
levels and commit another; they lock every level first, in primary-key order, so they never
deadlock with placements reserving the same SKUs (which lock in that order too)."""

import pytest

from inventory.models import StockLevel
from inventory.selectors import ledger_mismatches
from orders import services
from orders.models import Fulfillment, FulfillmentStatus
from returns.models import Refund
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, make_staff, stock
from tests.orders.conftest import pickup, place
from tests.orders.test_concurrency import run_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_partial_hand_overs_and_placements_at_once_neither_deadlock_nor_drift():
    store = LocationFactory(code="ST-PART", offers_pickup=True)
    low, high = SkuFactory(code="PA-LOW"), SkuFactory(code="PA-HIGH")
    assert low.pk < high.pk
    for sku in (low, high):
        stock(store, sku, 100)
    associate = make_staff(role=Role.ASSOCIATE, locations=[store])
    fs = []
    for i in range(8):
        f = place(
            ("PA-LOW", 1), ("PA-HIGH", 1), fulfillment=pickup("ST-PART"), email=f"c{i}@example.com"
        ).fulfillments.get()
        services.fulfillment_start(fulfillment_id=f.pk, user=associate)
        fs.append(services.fulfillment_ready(fulfillment_id=f.pk, user=associate))

    def work(i):
        if i % 2:
            place(("PA-LOW", 1), ("PA-HIGH", 1), fulfillment=pickup("ST-PART"), email=f"n{i}@example.com")
            return "placed"
        # Takes the lower-pk SKU and leaves the higher: release (high) and commit (low) would lock
        # out of order without the lock taken first.
        f = fs[i // 2]
        services.fulfillment_collect(
            fulfillment_id=f.pk,
            pickup_code=f.pickup_code,
            lines=[services.TakenIn(sku="PA-LOW", quantity=1)],
            user=associate,
        )
        return "collected"

    results = run_threads(16, work)
    assert results.count("collected") == results.count("placed") == 8
    assert set(Fulfillment.objects.filter(pk__in=[f.pk for f in fs]).values_list("status", flat=True)) == {
        FulfillmentStatus.COLLECTED
    }
    assert Refund.objects.filter(cause="partial_handover").count() == 8
    levels = dict(StockLevel.objects.filter(location=store).values_list("sku__code", "on_hand"))
    reserved = dict(StockLevel.objects.filter(location=store).values_list("sku__code", "reserved"))
    assert levels == {"PA-LOW": 92, "PA-HIGH": 100}
    assert reserved == {"PA-LOW": 8, "PA-HIGH": 8}
    assert ledger_mismatches() == []
