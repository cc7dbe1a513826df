import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from inventory.models import Hold, HoldLine, MovementKind, StockLevel, StockMovement
from inventory.selectors import held_mismatches, holds_without_units, ledger_mismatches
from inventory.services import Line, hold_create, stock_reserve
from tests.factories import SkuFactory, stock


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def snapshot():
    return (
        sorted(
            StockLevel.objects.values_list("location_id", "sku_id", "on_hand", "reserved", "safety_stock")
        ),
        StockMovement.objects.count(),
    )


@pytest.fixture
def csv_file(tmp_path):
    def write(content, name="stock.csv"):
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    return write


@pytest.mark.django_db
def test_inventory_audit_passes_when_every_level_matches_its_ledger(store, warehouse, sku):
    stock(store, sku, 5, safety_stock=1)
    stock(warehouse, sku, 7)
    out, _ = run("inventory_audit")
    assert "OK: 2 stock levels agree" in out


@pytest.mark.django_db
def test_inventory_audit_fails_listing_the_rows_that_drifted(store, warehouse, sku):
    stock(store, sku, 5)
    stock(warehouse, sku, 7)
    other = SkuFactory(code="DRIFT-2")
    stock(store, other, 3)
    # A write that bypassed the services: the ledger no longer explains the counters.
    StockLevel.objects.filter(location=store, sku=sku).update(on_hand=F("on_hand") + 2)
    StockMovement.objects.filter(location=store, sku=other).delete()
    with pytest.raises(CommandError, match="2 of 3 stock levels disagree"):
        _, err = run("inventory_audit")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("inventory_audit", stdout=StringIO(), stderr=err)
    lines = err.getvalue()
    assert f"{store.code}" in lines
    assert "TEE-BLK-M" in lines
    assert "on_hand: 7 != 5" in lines
    assert "DRIFT-2" in lines
    assert "on_hand: 3 != 0" in lines
    assert warehouse.code not in lines


@pytest.mark.django_db
def test_import_stock_applies_every_row_through_the_ledger(store, warehouse, sku, csv_file):
    other = SkuFactory(code="MUG-WHT")
    stock(store, sku, 5)
    path = csv_file(
        f"location,sku,quantity\r\n{store.code},{sku.code},9\r\n\r\n{warehouse.code},{other.code},4\r\n"
        f"{store.code},{other.code},0\r\n"
    )
    out, err = run("import_stock", path)
    assert "Imported 3 rows" in out
    assert "Importing" in err  # the progress bar
    levels = {(lv.location_id, lv.sku_id): lv.on_hand for lv in StockLevel.objects.all()}
    assert levels[(store.pk, sku.pk)] == 9
    assert levels[(warehouse.pk, other.pk)] == 4
    assert levels[(store.pk, other.pk)] == 0
    counts = StockMovement.objects.filter(kind=MovementKind.CYCLE_COUNT, reference_type="import")
    assert sorted(counts.values_list("on_hand_delta", flat=True)) == [4, 4]
    assert ledger_mismatches() == []
    # Importing the same counts again changes nothing.
    before = snapshot()
    run("import_stock", path)
    assert snapshot() == before


@pytest.mark.django_db
def test_import_stock_dry_run_validates_and_changes_nothing(store, sku, csv_file):
    stock(store, sku, 5)
    before = snapshot()
    out, _ = run(
        "import_stock", csv_file(f"location,sku,quantity\n{store.code},{sku.code},50\n"), "--dry-run"
    )
    assert "all 1 rows are valid" in out
    assert snapshot() == before


@pytest.mark.django_db
def test_import_stock_reports_every_bad_row_by_number_and_applies_nothing(store, sku, csv_file):
    stock(store, sku, 5)
    before = snapshot()
    path = csv_file(
        "location,sku,quantity\n"
        f"{store.code},{sku.code},9\n"  # row 2: valid
        f"NOWHERE,{sku.code},1\n"  # row 3
        f"{store.code},NOSUCH,x\n"  # row 4
        "\n"  # row 5: blank, skipped
        f"{store.code},{sku.code},-1\n"  # row 6 (also a duplicate of row 2)
        f"{store.code},{sku.code}\n"  # row 7: a field missing
        f"{store.code},{sku.code},1.5\n"  # row 8
    )
    err = StringIO()
    with pytest.raises(CommandError, match=r"5 row\(s\) are invalid; nothing was imported"):
        call_command("import_stock", path, stdout=StringIO(), stderr=err)
    text = err.getvalue()
    assert "row 2:" not in text
    assert "row 3: unknown location 'NOWHERE'" in text
    assert "row 4: unknown SKU 'NOSUCH'; quantity 'x' is not a whole number" in text
    assert "row 6: quantity must be zero or more; duplicate of row 2" in text
    assert "row 7: expected 3 fields, found 2" in text
    assert "row 8: quantity '1.5' is not a whole number; duplicate of row 2" in text
    assert snapshot() == before


@pytest.mark.django_db
def test_import_stock_refuses_a_count_below_what_is_reserved(store, sku, csv_file):
    from inventory.services import Line, stock_reserve

    stock(store, sku, 5)
    stock_reserve(lines=[Line(store.pk, sku.pk, 3)], reference="ORD-1")
    before = snapshot()
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command(
            "import_stock",
            csv_file(f"location,sku,quantity\n{store.code},{sku.code},2\n"),
            stderr=err,
            stdout=StringIO(),
        )
    assert "row 2: quantity 2 is below the 3 units reserved or held" in err.getvalue()
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty"),
        (b"\n\n", "The file is empty"),
        (b"location,sku\nA,B\n", "missing column(s): quantity"),
        (b"location,sku,quantity,price\nA,B,1,2\n", "unexpected column(s): price"),
        (b"location,sku,quantity\n", "header but no rows"),
        (b"location,sku,quantity\nTKY-SHIBUYA,\xe9t\xe9,1\n", "not UTF-8"),
        ("location,sku,quantity\n".encode("utf-16"), "not UTF-8"),
    ],
)
def test_import_stock_rejects_unusable_files(store, sku, csv_file, content, message):
    stock(store, sku, 5)
    before = snapshot()
    with pytest.raises(CommandError) as exc:
        run("import_stock", csv_file(content))
    assert message in str(exc.value)
    assert snapshot() == before


@pytest.mark.django_db
def test_import_stock_accepts_a_bom_and_columns_in_any_order(store, sku, csv_file):
    run("import_stock", csv_file(f"\ufeffQuantity,SKU,Location\n6,{sku.code},{store.code}\n".encode()))
    assert StockLevel.objects.get(location=store, sku=sku).on_hand == 6


@pytest.mark.django_db
def test_import_stock_missing_file_is_a_clear_error():
    with pytest.raises(CommandError, match=r"Cannot read /nonexistent/x\.csv"):
        run("import_stock", "/nonexistent/x.csv")


# --- held == units of the hold lines ---------------------------------------------------------------


def _orphan_hold(store, sku, quantity: int, *, expires_in: int = 600):
    """What a failed hold attempt left when its rows outlived the rollback of its counters: a hold
    and its lines, and no `held` unit for them (built directly: no service writes this)."""
    expires_at = timezone.now() + dt.timedelta(seconds=expires_in)
    hold = Hold.objects.create(expires_at=expires_at)
    HoldLine.objects.create(hold=hold, location=store, sku=sku, quantity=quantity, expires_at=expires_at)
    return hold


@pytest.mark.django_db
def test_inventory_audit_passes_with_live_and_expired_holds(store, sku):
    stock(store, sku, 5)
    hold_create(lines=[Line(store.pk, sku.pk, 1)])
    expired = hold_create(lines=[Line(store.pk, sku.pk, 2)])
    HoldLine.objects.filter(hold=expired).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert held_mismatches() == []
    # A writer that found the level short reclaimed the expired hold's units: its row waits for the sweep.
    Hold.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    stock_reserve(lines=[Line(store.pk, sku.pk, 4)], reference="O-1")
    assert Hold.objects.filter(pk=expired.pk, lines__isnull=True).exists()
    assert holds_without_units() == []
    out, _ = run("inventory_audit")
    assert "OK: 1 stock levels agree with their ledger" in out
    assert "their held units with the hold lines (2 holds)" in out


@pytest.mark.django_db
def test_inventory_audit_fails_when_held_is_not_the_units_of_the_hold_lines(store, warehouse, sku):
    stock(store, sku, 5)
    hold_create(lines=[Line(store.pk, sku.pk, 1)])
    _orphan_hold(store, sku, 2)
    _orphan_hold(warehouse, sku, 3, expires_in=-5)  # expired, and no stock level there at all
    assert ledger_mismatches() == []  # the ledger explains the counters: only the holds do not
    level = StockLevel.objects.get(location=store, sku=sku)
    assert held_mismatches() == [
        {"stock_level": level.pk, "location_id": store.pk, "sku_id": sku.pk, "held": 1, "hold_lines": 3},
        {"stock_level": None, "location_id": warehouse.pk, "sku_id": sku.pk, "held": 0, "hold_lines": 3},
    ]
    err = StringIO()
    with pytest.raises(CommandError, match="2 stock levels hold other than their hold lines"):
        call_command("inventory_audit", stdout=StringIO(), stderr=err)
    lines = err.getvalue()
    assert f"{store.code}" in lines
    assert "held: 1 != 3" in lines
    assert "held: 0 != 3" in lines


@pytest.mark.django_db
def test_inventory_audit_fails_on_a_live_hold_without_lines(store, sku):
    stock(store, sku, 5)
    hold = Hold.objects.create(expires_at=timezone.now() + dt.timedelta(minutes=5))
    Hold.objects.create(expires_at=timezone.now() - dt.timedelta(minutes=5))  # expired: the sweep's
    assert [h["hold"] for h in holds_without_units()] == [str(hold.pk)]
    err = StringIO()
    with pytest.raises(CommandError, match="1 holds hold nothing"):
        call_command("inventory_audit", stdout=StringIO(), stderr=err)
    assert str(hold.pk) in err.getvalue()
