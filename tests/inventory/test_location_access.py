"""Who may change stock at a location is checked by the services themselves (given the acting
user), so the API, the admin, commands and tasks share one rule."""

import pytest
from django.test import Client
from django.urls import reverse

from config.errors import Forbidden
from inventory.models import StockLevel, StockMovement, Transfer, TransferStatus
from inventory.services import (
    ImportInvalid,
    ImportRow,
    Line,
    stock_adjust,
    stock_import,
    stock_receive,
    stock_return_restock,
    stock_set_safety_stock,
    transfer_create,
    transfer_receive,
)
from stores.models import Role
from stores.services import api_user_upsert
from tests.factories import LocationFactory, make_staff, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def ginza(db):
    return LocationFactory(code="TKY-GINZA", name="Ginza")


@pytest.fixture
def outsider(ginza):
    """An associate of the Ginza store only."""
    return make_staff(role=Role.ASSOCIATE, locations=[ginza])


@pytest.fixture
def insider(store):
    return make_staff(role=Role.ASSOCIATE, locations=[store])


def snapshot() -> tuple:
    return (
        sorted(
            StockLevel.objects.values_list(
                "location_id", "sku_id", "on_hand", "reserved", "held", "safety_stock"
            )
        ),
        StockMovement.objects.count(),
        sorted(Transfer.objects.values_list("id", "status")),
    )


def refused(call) -> Forbidden:
    before = snapshot()
    with pytest.raises(Forbidden) as exc:
        call()
    assert exc.value.http_status == 403
    assert exc.value.code == "location_forbidden"
    assert snapshot() == before
    return exc.value


def test_every_location_service_refuses_an_associate_of_another_store(outsider, store, ginza, sku):
    stock(store, sku, 10)
    calls = [
        lambda: stock_receive(lines=[Line(store.pk, sku.pk, 1)], user=outsider),
        lambda: stock_receive(lines=[Line(ginza.pk, sku.pk, 1), Line(store.pk, sku.pk, 1)], user=outsider),
        lambda: stock_adjust(location=store, sku=sku, counted_quantity=3, reason="count", user=outsider),
        lambda: stock_adjust(location=store, sku=sku, delta=-1, reason="lost", user=outsider),
        lambda: stock_set_safety_stock(location=store, sku=sku, safety_stock=2, user=outsider),
        lambda: stock_return_restock(lines=[Line(store.pk, sku.pk, 1)], reference="R-1", user=outsider),
        lambda: transfer_create(from_location=store, to_location=ginza, lines=[(sku, 1)], user=outsider),
    ]
    for call in calls:
        exc = refused(call)
        assert exc.details == {"location": store.code}
        assert exc.message == f"You are not assigned to location {store.code}."


def test_receiving_a_transfer_needs_the_destination(outsider, insider, store, ginza, sku):
    stock(ginza, sku, 5)
    transfer = transfer_create(from_location=ginza, to_location=store, lines=[(sku, 2)], user=outsider)
    refused(lambda: transfer_receive(transfer_id=transfer.pk, user=outsider))  # the sender
    transfer_receive(transfer_id=transfer.pk, user=insider)
    assert StockLevel.objects.get(location=store, sku=sku).on_hand == 2


def test_an_import_lists_the_rows_at_other_locations_and_changes_nothing(outsider, store, ginza, sku):
    stock(store, sku, 10)
    before = snapshot()
    rows = [ImportRow(2, ginza.code, sku.code, "4"), ImportRow(3, store.code, sku.code, "1")]
    with pytest.raises(ImportInvalid) as exc:
        stock_import(rows=rows, user=outsider)
    assert exc.value.details["errors"] == [
        {"row": 3, "errors": [f"you are not assigned to location {store.code!r}"]}
    ]
    assert snapshot() == before
    assert stock_import(rows=rows[:1], user=outsider) == 1


def test_staff_of_the_location_superusers_and_system_callers_may(insider, store, sku):
    superuser = make_staff(role=Role.ASSOCIATE)
    superuser.is_superuser = True
    superuser.save()
    for user in (insider, superuser, None):
        stock_receive(lines=[Line(store.pk, sku.pk, 1)], user=user)
        stock_adjust(location=store, sku=sku, delta=1, reason="found", user=user)
        stock_set_safety_stock(location=store, sku=sku, safety_stock=0, user=user)
    assert StockLevel.objects.get(location=store, sku=sku).on_hand == 6


def test_the_admin_action_is_refused_by_the_service(store, ginza, sku):
    """An associate sees a transfer their store sent; receiving it is for the destination."""
    sender, _ = api_user_upsert(username="hanako", role=Role.ASSOCIATE, location_codes=[ginza.code])
    stock(ginza, sku, 5)
    transfer = transfer_create(from_location=ginza, to_location=store, lines=[(sku, 2)], user=sender)
    client = Client()
    client.force_login(sender)
    url = reverse("admin:inventory_transfer_changelist")
    assert list(client.get(url).context["cl"].result_list) == [transfer]
    before = snapshot()
    response = client.post(
        url, {"action": "receive_transfers", "_selected_action": [transfer.pk]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [
        f"Transfer {transfer.pk}: You are not assigned to location {store.code}."
    ]
    assert snapshot() == before
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.IN_TRANSIT
