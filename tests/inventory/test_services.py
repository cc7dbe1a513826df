import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import InvalidInput, InvalidTransition
from inventory.exceptions import InsufficientStock, StockConflict
from inventory.models import Hold, HoldLine, MovementKind, StockLevel, StockMovement
from inventory.selectors import availability_for_sku, ledger_mismatches
from inventory.services import (
    ImportInvalid,
    ImportRow,
    Line,
    hold_convert,
    hold_create,
    hold_release,
    holds_reclaim_expired,
    stock_adjust,
    stock_commit,
    stock_import,
    stock_receive,
    stock_release,
    stock_reserve,
    transfer_create,
    transfer_receive,
)
from tests.factories import LocationFactory, SkuFactory, stock

pytestmark = pytest.mark.django_db


def level(loc, sku) -> StockLevel:
    return StockLevel.objects.get(location=loc, sku=sku)


def test_receive_creates_level_and_ledger(store, sku):
    movements = stock_receive(lines=[Line(store.pk, sku.pk, 5)], reference="PO-1")
    assert [m.kind for m in movements] == [MovementKind.RECEIPT]
    lvl = level(store, sku)
    assert (lvl.on_hand, lvl.reserved) == (5, 0)
    assert ledger_mismatches() == []


def test_reserve_all_or_nothing(store, sku):
    other = SkuFactory()
    stock(store, sku, 3)
    stock(store, other, 1)
    with pytest.raises(InsufficientStock) as exc:
        stock_reserve(lines=[Line(store.pk, sku.pk, 2), Line(store.pk, other.pk, 2)], reference="O-1")
    assert exc.value.details["lines"] == [
        {"sku": other.code, "location": store.code, "requested": 2, "available": 1, "shortfall": 1}
    ]
    assert level(store, sku).reserved == 0  # nothing partial
    assert StockMovement.objects.filter(kind=MovementKind.RESERVATION).count() == 0


def test_reserve_respects_safety_stock_and_merges_duplicate_lines(store, sku):
    stock(store, sku, 5, safety_stock=2)
    with pytest.raises(InsufficientStock):
        stock_reserve(lines=[Line(store.pk, sku.pk, 2), Line(store.pk, sku.pk, 2)], reference="O-1")
    stock_reserve(lines=[Line(store.pk, sku.pk, 2), Line(store.pk, sku.pk, 1)], reference="O-2")
    assert level(store, sku).reserved == 3
    assert ledger_mismatches() == []


def test_reserve_unknown_level_is_insufficient(store, sku):
    with pytest.raises(InsufficientStock) as exc:
        stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
    assert exc.value.details["lines"][0]["available"] == 0


@pytest.mark.parametrize("qty", [0, -1, 1.5, "2", True, 10**9])
def test_bad_quantities_rejected(store, sku, qty):
    stock(store, sku, 5)
    with pytest.raises(InvalidInput):
        stock_reserve(lines=[Line(store.pk, sku.pk, qty)], reference="O-1")
    assert level(store, sku).reserved == 0


def test_commit_and_release(store, sku):
    stock(store, sku, 5)
    stock_reserve(lines=[Line(store.pk, sku.pk, 3)], reference="O-1")
    stock_commit(lines=[Line(store.pk, sku.pk, 2)], reference="O-1")
    stock_release(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
    lvl = level(store, sku)
    assert (lvl.on_hand, lvl.reserved) == (3, 0)
    with pytest.raises(StockConflict):
        stock_release(lines=[Line(store.pk, sku.pk, 1)], reference="O-1")
    assert ledger_mismatches() == []


def test_adjust_counted_and_delta(store, sku):
    stock(store, sku, 5)
    stock_reserve(lines=[Line(store.pk, sku.pk, 2)], reference="O-1")
    stock_adjust(location=store, sku=sku, counted_quantity=4, reason="cycle count")
    assert level(store, sku).on_hand == 4
    with pytest.raises(StockConflict):
        stock_adjust(location=store, sku=sku, counted_quantity=1, reason="cycle count")  # below reserved
    stock_adjust(location=store, sku=sku, delta=-1, reason="damaged in store")
    lvl = level(store, sku)
    assert lvl.on_hand == 3
    assert StockMovement.objects.filter(kind=MovementKind.DAMAGE).count() == 1
    with pytest.raises(InvalidInput):
        stock_adjust(location=store, sku=sku, counted_quantity=3, delta=1, reason="x")
    with pytest.raises(InvalidInput):
        stock_adjust(location=store, sku=sku, delta=1, reason="  ")
    assert ledger_mismatches() == []


def test_transfer_out_in_transit_in(store, warehouse, sku):
    stock(warehouse, sku, 10)
    t = transfer_create(from_location=warehouse, to_location=store, lines=[(sku, 4)])
    assert level(warehouse, sku).on_hand == 6
    assert not StockLevel.objects.filter(location=store, sku=sku).exists()  # in transit: nowhere
    transfer_receive(transfer_id=t.pk)
    assert level(store, sku).on_hand == 4
    with pytest.raises(InvalidTransition):
        transfer_receive(transfer_id=t.pk)
    with pytest.raises(InsufficientStock):
        transfer_create(from_location=warehouse, to_location=store, lines=[(sku, 7)])
    assert ledger_mismatches() == []


def test_hold_counts_at_once_and_expiry_stops_counting(store, sku):
    stock(store, sku, 3)
    hold = hold_create(lines=[Line(store.pk, sku.pk, 2)])
    assert availability_for_sku(sku=sku).available == 1
    with pytest.raises(InsufficientStock):
        stock_reserve(lines=[Line(store.pk, sku.pk, 2)], reference="O-1")
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert availability_for_sku(sku=sku).available == 3  # expired: stops counting on read
    stock_reserve(lines=[Line(store.pk, sku.pk, 3)], reference="O-2")  # reclaims inline
    lvl = level(store, sku)
    assert (lvl.reserved, lvl.held) == (3, 0)
    assert ledger_mismatches() == []


def test_hold_convert_and_release(store, sku):
    stock(store, sku, 3)
    h1 = hold_create(lines=[Line(store.pk, sku.pk, 2)])
    lines = hold_convert(hold_id=h1.pk, reference="O-1")
    assert [(ln.sku_id, ln.quantity) for ln in lines] == [(sku.pk, 2)]
    h2 = hold_create(lines=[Line(store.pk, sku.pk, 1)])
    hold_release(hold_id=h2.pk)
    lvl = level(store, sku)
    assert (lvl.reserved, lvl.held) == (2, 0)
    assert not Hold.objects.exists()
    assert ledger_mismatches() == []


def test_reclaim_sweep(store, sku):
    stock(store, sku, 3)
    hold = hold_create(lines=[Line(store.pk, sku.pk, 2)], ttl=dt.timedelta(minutes=1))
    assert holds_reclaim_expired() == 0
    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert holds_reclaim_expired() == 2
    assert level(store, sku).held == 0
    assert not Hold.objects.exists()
    assert ledger_mismatches() == []


def test_import_all_or_nothing(store, warehouse, sku):
    stock(store, sku, 1)
    rows = [
        ImportRow(2, store.code, sku.code, "7"),
        ImportRow(3, "NOPE", sku.code, "1"),
        ImportRow(4, store.code, "NOPE", "x"),
        ImportRow(5, store.code, sku.code, "2"),
    ]
    with pytest.raises(ImportInvalid) as exc:
        stock_import(rows=rows)
    assert [e["row"] for e in exc.value.details["errors"]] == [3, 4, 5]
    assert level(store, sku).on_hand == 1
    stock_import(rows=[ImportRow(2, store.code, sku.code, "7"), ImportRow(3, warehouse.code, sku.code, "0")])
    assert level(store, sku).on_hand == 7
    assert level(warehouse, sku).on_hand == 0
    assert ledger_mismatches() == []


def test_database_constraint_is_last_line_of_defence(store, sku):
    stock(store, sku, 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.filter(location=store, sku=sku).update(reserved=2)


def test_audit_detects_drift(store, sku):
    stock(store, sku, 2)
    StockLevel.objects.filter(location=store, sku=sku).update(on_hand=5)
    bad = ledger_mismatches()
    assert len(bad) == 1
    assert bad[0]["diffs"]["on_hand"] == {"level": 5, "ledger": 2}


def test_restock_hook_fires_on_zero_to_available(store, sku):
    from inventory import hooks

    seen = []
    listener = hooks.on_restock(lambda r: seen.extend(r))
    try:
        stock(store, sku, 2)
        stock_receive(lines=[Line(store.pk, sku.pk, 1)])  # already available: no second alert
        stock_reserve(lines=[Line(store.pk, sku.pk, 3)], reference="O")
        stock_release(lines=[Line(store.pk, sku.pk, 1)], reference="O")
    finally:
        hooks._restock_listeners.remove(listener)
    assert [(r.kind, r.available) for r in seen] == [(MovementKind.RECEIPT, 2), (MovementKind.RELEASE, 1)]


def test_other_location_unaffected(sku):
    a, b = LocationFactory(), LocationFactory()
    stock(a, sku, 1)
    with pytest.raises(InsufficientStock):
        stock_reserve(lines=[Line(b.pk, sku.pk, 1)], reference="O")


def test_sweep_of_expired_hold_announces_restock(store, sku):
    from inventory import hooks

    stock(store, sku, 1)
    hold = hold_create(lines=[Line(store.pk, sku.pk, 1)])
    HoldLine.objects.filter(hold=hold).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    seen = []
    listener = hooks.on_restock(lambda r: seen.extend(r))
    try:
        assert holds_reclaim_expired() == 1
    finally:
        hooks._restock_listeners.remove(listener)
    assert [(r.kind, r.available) for r in seen] == [(MovementKind.HOLD_RELEASE, 1)]
