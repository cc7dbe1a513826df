"""The stock pages that associates and warehouse staff use, clicked through with the test client."""

import pytest
from django.contrib.auth.hashers import make_password
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from inventory.models import MovementKind, StockLevel, StockMovement, Transfer, TransferStatus
from inventory.selectors import ledger_mismatches
from inventory.services import Line, stock_reserve, transfer_create
from stores.models import Role
from stores.services import api_user_upsert
from tests.factories import LocationFactory, SkuFactory, stock


@pytest.fixture
def ginza(db):
    return LocationFactory(code="TKY-GINZA", name="Ginza")


@pytest.fixture
def associate(store):
    """An associate of the Shibuya store only, set up the way create_api_user does it."""
    user, _ = api_user_upsert(
        username="hanako", role=Role.ASSOCIATE, location_codes=[store.code], password_hash=make_password("pw")
    )
    return user


@pytest.fixture
def associate_client(associate):
    client = Client()
    client.force_login(associate)
    return client


@pytest.fixture
def levels(store, ginza, warehouse, sku):
    return {loc.code: stock(loc, sku, n) for loc, n in ((store, 10), (ginza, 20), (warehouse, 30))}


def change_stock(client, level, **data):
    return client.post(reverse("admin:inventory_stocklevel_change_stock", args=[level.pk]), data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
def test_associate_sees_only_their_store_stock(associate_client, levels, store, ginza):
    url = reverse("admin:inventory_stocklevel_changelist")
    response = associate_client.get(url)
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert [lv.location_id for lv in shown] == [store.pk]
    # Another store's level is not reachable by URL either, nor its stock-change form.
    other = levels[ginza.code]
    assert associate_client.get(
        reverse("admin:inventory_stocklevel_change", args=[other.pk])
    ).status_code in (
        302,
        404,
    )
    assert change_stock(associate_client, other, operation="receive", quantity=5).status_code == 404
    assert StockLevel.objects.get(pk=other.pk).on_hand == 20
    # The location list is scoped too.
    locs = associate_client.get(reverse("admin:stores_location_changelist")).context["cl"].result_list
    assert [loc.code for loc in locs] == [store.code]


@pytest.mark.django_db
def test_stock_search_by_barcode_and_sku_code(associate_client, levels, store, sku):
    other = SkuFactory(code="MUG-WHT", barcode="4512345678901")
    stock(store, other, 2)
    url = reverse("admin:inventory_stocklevel_changelist")
    found = associate_client.get(url, {"q": "4512345678901"}).context["cl"].result_list
    assert [lv.sku.code for lv in found] == ["MUG-WHT"]
    found = associate_client.get(url, {"q": sku.code}).context["cl"].result_list
    assert [lv.sku.code for lv in found] == [sku.code]


@pytest.mark.django_db
def test_change_page_shows_read_only_counters_and_the_ledger(associate_client, levels, store):
    level = levels[store.code]
    response = associate_client.get(reverse("admin:inventory_stocklevel_change", args=[level.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="on_hand"' not in html  # counters are not editable
    assert response.context["ledger"][0].kind == MovementKind.RECEIPT
    assert 'class="ledger-row"' in html
    # The stock form is its own form after the model form's end, not nested in it.
    model_form = html.index('id="stocklevel_form"')
    stock_form = html.index('<form id="stock-change-form"')
    assert model_form < stock_form
    assert "</form>" in html[model_form:stock_form]
    assert html.index('<form id="stock-change-form"') < html.index('name="operation"')
    # Posting the model form cannot change counters either.
    associate_client.post(reverse("admin:inventory_stocklevel_change", args=[level.pk]), {"on_hand": 999})
    assert StockLevel.objects.get(pk=level.pk).on_hand == 10


@pytest.mark.django_db
def test_receive_and_count_go_through_the_services_and_the_ledger(associate_client, associate, levels, store):
    level = levels[store.code]
    response = change_stock(associate_client, level, operation="receive", quantity=5, reference="DN-1")
    assert "Received 5 x TEE-BLK-M at TKY-SHIBUYA." in messages_of(response)
    level.refresh_from_db()
    assert level.on_hand == 15
    receipt = StockMovement.objects.filter(location=store, kind=MovementKind.RECEIPT).first()
    assert receipt.on_hand_delta == 5
    assert receipt.user == associate
    assert receipt.reference == "DN-1"

    response = change_stock(associate_client, level, operation="count", quantity=12, reason="shelf count")
    assert "on hand is now 12" in messages_of(response)[0]
    level.refresh_from_db()
    assert level.on_hand == 12
    count = StockMovement.objects.filter(location=store, kind=MovementKind.CYCLE_COUNT).get()
    assert count.on_hand_delta == -3
    assert count.reason == "shelf count"

    change_stock(associate_client, level, operation="adjust", quantity=-2, reason="damaged in store")
    change_stock(associate_client, level, operation="safety", quantity=3)
    level.refresh_from_db()
    assert (level.on_hand, level.safety_stock) == (10, 3)
    assert ledger_mismatches() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"operation": "count", "quantity": 1, "reason": "count"},
            "now: on hand 10, reserved 4, held 0",
        ),  # below reserved
        (
            {"operation": "count", "quantity": -1, "reason": "count"},
            "counted_quantity must be zero or positive",
        ),
        ({"operation": "adjust", "quantity": -11, "reason": "lost"}, "On hand cannot go below zero"),
        ({"operation": "adjust", "quantity": 3, "reason": ""}, "A reason is required"),
        ({"operation": "receive", "quantity": 0}, "must be positive"),
        ({"operation": "receive", "quantity": 10**9}, "must be at most"),
        ({"operation": "receive", "quantity": "abc"}, "quantity: Enter a whole number"),
        ({"operation": "steal", "quantity": 1}, "operation: Select a valid choice"),
    ],
)
def test_bad_stock_change_shows_an_error_and_changes_nothing(
    associate_client, levels, store, sku, data, expected
):
    level = levels[store.code]
    stock_reserve(lines=[Line(store.pk, sku.pk, 4)], reference="ORD-1")
    before = (StockMovement.objects.count(), StockLevel.objects.get(pk=level.pk).on_hand)
    response = change_stock(associate_client, level, **data)
    assert response.status_code == 200
    msgs = messages_of(response)
    assert len(msgs) == 1
    assert expected in msgs[0], msgs
    assert (StockMovement.objects.count(), StockLevel.objects.get(pk=level.pk).on_hand) == before


@pytest.mark.django_db
def test_import_page_validates_every_row_and_applies_all_or_nothing(
    associate_client, levels, store, ginza, sku
):
    url = reverse("admin:inventory_stocklevel_import")
    changelist = associate_client.get(reverse("admin:inventory_stocklevel_changelist")).content.decode()
    assert f'href="{url}"' in changelist  # linked from the stock level list
    assert associate_client.get(url).status_code == 200
    before = StockMovement.objects.count()

    bad = SimpleUploadedFile(
        "count.csv",
        f"location,sku,quantity\n{store.code},{sku.code},7\n{ginza.code},{sku.code},1\n{store.code},NOPE,x\n".encode(),
    )
    response = associate_client.post(url, {"file": bad})
    assert response.status_code == 200
    errors = response.context["errors"]
    assert errors == [
        "row 3: you are not assigned to location 'TKY-GINZA'",
        "row 4: unknown SKU 'NOPE'; quantity 'x' is not a whole number",
    ]
    assert StockMovement.objects.count() == before

    response = associate_client.post(url, {"file": SimpleUploadedFile("x.csv", b"\xff\xfe\x00")})
    assert "not UTF-8" in response.context["errors"][0]

    good = SimpleUploadedFile("count.csv", f"location,sku,quantity\n{store.code},{sku.code},7\n".encode())
    response = associate_client.post(url, {"file": good, "dry_run": "on"}, follow=True)
    assert "nothing was changed (dry run)" in messages_of(response)[0]
    assert StockLevel.objects.get(location=store, sku=sku).on_hand == 10

    good.seek(0)
    response = associate_client.post(url, {"file": good}, follow=True)
    assert "Imported 1 rows from count.csv." in messages_of(response)
    assert StockLevel.objects.get(location=store, sku=sku).on_hand == 7
    assert StockMovement.objects.filter(reference_type="import").count() == 1
    assert ledger_mismatches() == []


@pytest.mark.django_db
def test_ledger_admin_is_read_only_and_scoped(associate_client, levels, store):
    url = reverse("admin:inventory_stockmovement_changelist")
    response = associate_client.get(url)
    assert response.status_code == 200
    assert {m.location_id for m in response.context["cl"].result_list} == {store.pk}
    movement = StockMovement.objects.filter(location=store).first()
    change_url = reverse("admin:inventory_stockmovement_change", args=[movement.pk])
    page = associate_client.get(change_url)
    assert page.status_code == 200
    assert 'name="quantity"' not in page.content.decode()
    associate_client.post(change_url, {"quantity": 999})
    movement.refresh_from_db()
    assert movement.quantity != 999
    assert associate_client.get(reverse("admin:inventory_stockmovement_add")).status_code == 403


@pytest.mark.django_db
def test_transfer_receive_action(store, warehouse, sku, levels):
    user, _ = api_user_upsert(username="wh", role=Role.WAREHOUSE, location_codes=[warehouse.code])
    transfer = transfer_create(from_location=store, to_location=warehouse, lines=[(sku, 4)])
    client = Client()
    client.force_login(user)
    url = reverse("admin:inventory_transfer_changelist")
    assert list(client.get(url).context["cl"].result_list) == [transfer]
    response = client.post(
        url, {"action": "receive_transfers", "_selected_action": [transfer.pk]}, follow=True
    )
    assert "Received 1 transfer(s)." in messages_of(response)
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.RECEIVED
    assert StockLevel.objects.get(location=warehouse, sku=sku).on_hand == 34
    # Receiving again is refused with a message; nothing moves.
    before = StockMovement.objects.count()
    response = client.post(
        url, {"action": "receive_transfers", "_selected_action": [transfer.pk]}, follow=True
    )
    assert "cannot be received" in messages_of(response)[0]
    assert StockMovement.objects.count() == before
    assert Transfer.objects.count() == 1


@pytest.mark.django_db
def test_staff_without_admin_rights_cannot_open_stock_pages(store, levels):
    user, _ = api_user_upsert(username="shop", role=Role.STOREFRONT, location_codes=[])
    client = Client()
    client.force_login(user)
    assert client.get(reverse("admin:inventory_stocklevel_changelist")).status_code == 302  # to the login
    level = levels[store.code]
    assert change_stock(client, level, operation="receive", quantity=1).redirect_chain
    assert StockLevel.objects.get(pk=level.pk).on_hand == 10
