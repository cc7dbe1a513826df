import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from stores.models import Location, Role, StaffAssignment, StaffProfile
from stores.services import api_user_upsert
from tests.factories import LocationFactory

User = get_user_model()


@pytest.fixture
def admin_client_(db):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def login(username, role, codes):
    user, _ = api_user_upsert(username=username, role=role, location_codes=codes)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_location_list_search_and_filters_for_a_superuser(admin_client_, store, warehouse):
    url = reverse("admin:stores_location_changelist")
    assert {loc.code for loc in admin_client_.get(url).context["cl"].result_list} == {
        store.code,
        warehouse.code,
    }
    assert [loc.code for loc in admin_client_.get(url, {"q": "shibuya"}).context["cl"].result_list] == [
        store.code
    ]
    assert [
        loc.code for loc in admin_client_.get(url, {"kind__exact": "warehouse"}).context["cl"].result_list
    ] == [warehouse.code]
    assert admin_client_.get(reverse("admin:stores_location_change", args=[store.pk])).status_code == 200


@pytest.mark.django_db
def test_manager_sees_and_edits_only_their_locations(store, warehouse):
    other = LocationFactory(code="TKY-UENO")
    client = login("boss", Role.MANAGER, [store.code, warehouse.code])
    url = reverse("admin:stores_location_changelist")
    assert {loc.code for loc in client.get(url).context["cl"].result_list} == {store.code, warehouse.code}
    assert client.get(reverse("admin:stores_location_change", args=[other.pk])).status_code == 302
    response = client.get(reverse("admin:stores_location_change", args=[store.pk]))
    assert response.status_code == 200
    assert 'name="daily_capacity"' in response.content.decode()  # managers may change their locations
    assert client.get(reverse("admin:stores_location_add")).status_code == 403
    assert client.get(reverse("admin:stores_location_delete", args=[store.pk])).status_code == 403


@pytest.mark.django_db
def test_associate_sees_their_store_read_only(store, warehouse):
    client = login("hanako", Role.ASSOCIATE, [store.code])
    response = client.get(reverse("admin:stores_location_change", args=[store.pk]))
    assert response.status_code == 200
    assert 'name="daily_capacity"' not in response.content.decode()
    client.post(reverse("admin:stores_location_change", args=[store.pk]), {"name": "Renamed"})
    assert Location.objects.get(pk=store.pk).name == "Shibuya"
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


@pytest.mark.django_db
def test_user_admin_shows_role_and_assignments_inline(admin_client_, store, warehouse):
    user, _ = api_user_upsert(username="hanako", role=Role.ASSOCIATE, location_codes=[store.code])
    response = admin_client_.get(reverse("admin:auth_user_changelist"))
    assert response.status_code == 200
    assert "TKY-SHIBUYA" in response.content.decode()
    response = admin_client_.get(reverse("admin:auth_user_change", args=[user.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="staff_profile-0-role"' in html
    assert 'name="staff_profile-0-network_wide"' in html
    assert 'name="assignments-0-location"' in html
    assert StaffAssignment.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_role_given_in_the_user_admin_grants_admin_access(admin_client_, store):
    user = User.objects.create_user("jiro", password="pw")
    data = {
        "username": "jiro",
        "email": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "10:00:00",
        "staff_profile-TOTAL_FORMS": "1",
        "staff_profile-INITIAL_FORMS": "0",
        "staff_profile-MIN_NUM_FORMS": "0",
        "staff_profile-MAX_NUM_FORMS": "1",
        "staff_profile-0-role": Role.ASSOCIATE,
        "assignments-TOTAL_FORMS": "1",
        "assignments-INITIAL_FORMS": "0",
        "assignments-MIN_NUM_FORMS": "0",
        "assignments-MAX_NUM_FORMS": "1000",
        "assignments-0-location": str(store.pk),
    }
    response = admin_client_.post(reverse("admin:auth_user_change", args=[user.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    user.refresh_from_db()
    assert user.staff_profile.role == Role.ASSOCIATE
    assert user.is_staff
    assert user.has_perm("inventory.change_stocklevel")
    assert list(user.assignments.values_list("location_id", flat=True)) == [store.pk]


def _user_form(user, *, role, network_wide, location=None, initial_profile=0) -> dict:
    data = {
        "username": user.username,
        "email": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "10:00:00",
        "staff_profile-TOTAL_FORMS": "1",
        "staff_profile-INITIAL_FORMS": str(initial_profile),
        "staff_profile-MIN_NUM_FORMS": "0",
        "staff_profile-MAX_NUM_FORMS": "1",
        "staff_profile-0-role": role,
        "assignments-TOTAL_FORMS": "1" if location else "0",
        "assignments-INITIAL_FORMS": "0",
        "assignments-MIN_NUM_FORMS": "0",
        "assignments-MAX_NUM_FORMS": "1000",
    }
    if network_wide:
        data["staff_profile-0-network_wide"] = "on"
    if location:
        data["assignments-0-location"] = str(location.pk)
    return data


@pytest.mark.django_db
def test_network_flag_set_in_the_user_admin_makes_a_network_manager(admin_client_, store):
    user = User.objects.create_user("boss", password="pw")
    url = reverse("admin:auth_user_change", args=[user.pk])
    response = admin_client_.post(url, _user_form(user, role=Role.MANAGER, network_wide=True))
    assert response.status_code == 302
    user = User.objects.get(pk=user.pk)
    assert user.staff_profile.network_wide
    assert user.is_staff
    changelist = admin_client_.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "every location (network-wide)" in changelist


@pytest.mark.django_db
def test_user_admin_refuses_the_network_flag_for_an_associate(admin_client_, store):
    user = User.objects.create_user("jiro", password="pw")
    url = reverse("admin:auth_user_change", args=[user.pk])
    response = admin_client_.post(
        url, _user_form(user, role=Role.ASSOCIATE, network_wide=True, location=store)
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Only a manager can act for the whole network." in response.content.decode()
    assert not StaffProfile.objects.filter(user=user).exists()
