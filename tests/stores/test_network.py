"""Where a user may act: superusers and network-wide managers everywhere, everyone else exactly
at their assignments (stores.selectors.user_location_ids)."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from inventory.models import StockLevel
from stores.models import Role, StaffProfile
from stores.selectors import user_is_network_wide, user_location_ids
from tests.factories import LocationFactory, WarehouseFactory, make_staff

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def shops(db):
    return LocationFactory(code="S-A"), LocationFactory(code="S-B"), WarehouseFactory(code="W-A")


def test_superuser_and_network_manager_act_everywhere(shops):
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    boss = make_staff(role=Role.MANAGER, network_wide=True)
    assert user_location_ids(root) is None
    assert user_location_ids(boss) is None
    assert user_is_network_wide(root)
    assert user_is_network_wide(boss)


def test_scoped_manager_acts_exactly_at_their_assignments(shops):
    a, _, w = shops
    manager = make_staff(role=Role.MANAGER, locations=[a, w])
    assert user_location_ids(manager) == {a.pk, w.pk}
    assert not user_is_network_wide(manager)


def test_manager_without_assignment_or_network_acts_nowhere(shops):
    assert user_location_ids(make_staff(role=Role.MANAGER)) == set()


@pytest.mark.parametrize("role", [Role.STOREFRONT, Role.ASSOCIATE, Role.WAREHOUSE])
def test_network_flag_means_nothing_for_other_roles(shops, role):
    user = make_staff(role=role, locations=[shops[0]] if role == Role.ASSOCIATE else (), network_wide=True)
    assert user_location_ids(user) == ({shops[0].pk} if role == Role.ASSOCIATE else set())
    with pytest.raises(ValidationError):
        user.staff_profile.full_clean()


def test_network_flag_is_valid_on_a_manager():
    profile = make_staff(role=Role.MANAGER, network_wide=True).staff_profile
    profile.full_clean()
    assert StaffProfile.objects.get(pk=profile.pk).network_wide


def test_network_manager_receives_stock_anywhere_scoped_manager_nowhere_else(api_client_for, shops, sku):
    a, b, _ = shops
    body = {"location": b.code, "lines": [{"sku": sku.code, "quantity": 3}], "reference": "po-1"}
    network = api_client_for(Role.MANAGER, network_wide=True)
    scoped = api_client_for(Role.MANAGER, locations=[a])
    nowhere = api_client_for(Role.MANAGER)
    for client in (scoped, nowhere):
        r = client.post("/api/v1/stock/receipts/", body, format="json")
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "location_forbidden"
    assert not StockLevel.objects.filter(location=b).exists()
    r = network.post("/api/v1/stock/receipts/", body, format="json")
    assert r.status_code in (200, 201), r.content
    assert StockLevel.objects.get(location=b, sku=sku).on_hand == 3
