import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from knox.models import AuthToken
from rest_framework.test import APIClient

from inventory.models import Sku, StockLevel, StockMovement
from inventory.selectors import ledger_mismatches
from stores.models import Location, LocationKind, Role, StaffAssignment, StaffProfile
from stores.selectors import user_location_ids
from tests.factories import LocationFactory, WarehouseFactory, make_staff

User = get_user_model()


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def counts() -> dict:
    return {
        "locations": Location.objects.count(),
        "skus": Sku.objects.count(),
        "levels": StockLevel.objects.count(),
        "movements": StockMovement.objects.count(),
        "users": User.objects.count(),
        "assignments": StaffAssignment.objects.count(),
        "stock": sorted(StockLevel.objects.values_list("pk", "on_hand", "reserved", "safety_stock")),
    }


@pytest.mark.django_db
def test_load_demo_builds_the_network_once_and_prints_a_working_login_and_token(monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "s3cret-demo-pw")
    out = run("load_demo")

    stores = Location.objects.filter(kind=LocationKind.STORE)
    warehouses = Location.objects.filter(kind=LocationKind.WAREHOUSE)
    assert warehouses.count() == 2
    assert stores.filter(is_active=True).count() >= 8
    # Real coordinates, all in the Tokyo metropolitan area.
    for loc in Location.objects.all():
        assert 35.3 < loc.latitude < 36.0, loc.code
        assert 139.3 < loc.longitude < 140.1, loc.code
        assert loc.timezone == "Asia/Tokyo"
        assert loc.address
        assert loc.opening_hours
    assert all(s.offers_pickup and s.accepts_returns for s in stores)
    assert stores.filter(ships_orders=True).exists()
    assert stores.filter(ships_orders=False).exists()
    assert Sku.objects.count() == 200
    assert Sku.objects.values("category").distinct().count() >= 4
    assert Sku.objects.filter(barcode__isnull=True).count() == 0

    # Realistic stock: some SKUs at zero everywhere, some out of stock at some stores only, safety stock.
    skus_with_stock = set(StockLevel.objects.filter(on_hand__gt=0).values_list("sku_id", flat=True))
    assert 0 < Sku.objects.exclude(pk__in=skus_with_stock).count() < 20
    assert StockLevel.objects.filter(
        location__kind=LocationKind.STORE, on_hand=0, sku_id__in=skus_with_stock
    ).exists()
    assert StockLevel.objects.filter(safety_stock__gt=0).exists()
    assert ledger_mismatches() == []

    # Users per role; the demo manager runs the whole network.
    roles = dict(StaffProfile.objects.values_list("user__username", "role"))
    assert roles["storefront"] == Role.STOREFRONT
    assert roles["manager"] == Role.MANAGER
    assert User.objects.get(username="manager").staff_profile.network_wide
    assert user_location_ids(User.objects.get(username="manager")) is None
    assert user_location_ids(User.objects.get(username="assoc-shibuya")) == {
        Location.objects.get(code="TKY-SHIBUYA").pk
    }
    assert list(roles.values()).count(Role.ASSOCIATE) >= 2
    assert list(roles.values()).count(Role.WAREHOUSE) == 2
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("s3cret-demo-pw")
    assert "s3cret-demo-pw" in out
    assert User.objects.get(username="assoc-shibuya").is_staff
    assert not User.objects.get(username="storefront").is_staff

    # The printed token authenticates the storefront account.
    token = re.search(r"^\s+([0-9a-f]{64})\s*$", out, re.M).group(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/docs/").status_code == 200
    from knox.auth import TokenAuthentication

    user, _ = TokenAuthentication().authenticate_credentials(token.encode())
    assert user.username == "storefront"

    # Idempotent: a second run changes nothing but issues one more storefront token.
    before = counts()
    tokens = AuthToken.objects.count()
    out2 = run("load_demo")
    assert counts() == before
    assert AuthToken.objects.count() == tokens + 1
    assert "(0 new)" in out2
    assert "0 pickup orders" in out2


@pytest.mark.django_db
def test_load_demo_gives_every_store_counter_a_day_of_work():
    from orders.selectors import counter_counts

    run("load_demo")
    stores = Location.objects.filter(kind=LocationKind.STORE, offers_pickup=True, is_active=True)
    for store in stores:
        tiles = counter_counts(stores=[store])
        assert all(n > 0 for n in tiles.values()), (store.code, tiles)
    assert ledger_mismatches() == []
    assert not Sku.objects.filter(image_url="").exists()
    # The demo associate's page is not empty.
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="assoc-shibuya"))
    r = client.get("/admin/orders/pickup/")
    assert r.status_code == 200
    assert len(r.context["cl"].result_list) >= 8
    # ... and every returns desk: returns asked online, with what the help desk wrote.
    from returns.models import Return, ReturnNote

    for store in stores.filter(accepts_returns=True):
        assert Return.objects.filter(expected_location=store, status="requested").exists(), store.code
    assert ReturnNote.objects.filter(channel="phone").count() >= len(stores)
    assert Return.objects.filter(method="mail", expected_location__kind=LocationKind.WAREHOUSE).exists()
    r = client.get("/admin/returns/deskreturn/")
    assert r.status_code == 200
    assert len(r.context["cl"].result_list) >= 3


@pytest.mark.django_db
def test_create_api_user_creates_a_storefront_account_with_a_working_token():
    out = run("create_api_user", "--username", "shop", "--role", "storefront")
    user = User.objects.get(username="shop")
    assert user.staff_profile.role == Role.STOREFRONT
    assert not user.is_staff
    assert not user.has_usable_password()
    assert not user.assignments.exists()
    token = re.search(r"API token \(shown once\): (\w+)", out).group(1)
    from knox.auth import TokenAuthentication

    assert TokenAuthentication().authenticate_credentials(token.encode())[0] == user


@pytest.mark.django_db
def test_create_api_user_updates_role_and_replaces_locations():
    a, b, c = LocationFactory(code="S-A"), LocationFactory(code="S-B"), LocationFactory(code="S-C")
    run(
        "create_api_user",
        "--username",
        "hanako",
        "--role",
        "associate",
        "--location",
        "S-A",
        "--location",
        "S-B",
    )
    user = User.objects.get(username="hanako")
    assert user.is_staff
    assert set(user.assignments.values_list("location__code", flat=True)) == {"S-A", "S-B"}
    assert user.groups.filter(name="OMS associate").exists()
    assert user.has_perm("inventory.change_stocklevel")

    # Without --location an update keeps the assignments; with it they are replaced.
    run("create_api_user", "--username", "hanako", "--role", "associate")
    assert set(user.assignments.values_list("location__code", flat=True)) == {"S-A", "S-B"}
    run("create_api_user", "--username", "hanako", "--role", "manager", "--location", "S-C")
    user = User.objects.get(username="hanako")
    assert user.staff_profile.role == Role.MANAGER
    assert list(user.assignments.values_list("location_id", flat=True)) == [c.pk]
    assert set(user.groups.values_list("name", flat=True)) == {"OMS manager"}
    assert StaffProfile.objects.filter(user=user).count() == 1
    assert a
    assert b

    # Two runs, two distinct tokens; --token-only prints just the token.
    t1 = run("create_api_user", "--username", "hanako", "--role", "manager", "--token-only").strip()
    t2 = run("create_api_user", "--username", "hanako", "--role", "manager", "--token-only").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", t1)
    assert t1 != t2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "boss"], "Unknown role 'boss'"),
        (["--role", "associate", "--location", "NOWHERE"], "Unknown location(s): NOWHERE"),
        (["--role", "associate"], "needs at least one --location"),
        (["--role", "warehouse"], "needs at least one --location"),
        (["--role", "storefront", "--location", "S-A"], "give it no --location"),
        (["--role", "warehouse", "--location", "S-A"], "works at warehouses only"),
        (["--role", "associate", "--location", "S-A", "--location", "NOPE"], "NOPE"),
        (["--role", "manager"], "A manager needs --location CODE (one or more) or --network"),
        (["--role", "associate", "--network"], "--network is for managers only"),
        (["--role", "storefront", "--network"], "--network is for managers only"),
        (["--role", "manager", "--network", "--location", "S-A"], "not both"),
    ],
)
def test_create_api_user_rejects_bad_input_and_writes_nothing(args, message):
    LocationFactory(code="S-A")
    WarehouseFactory(code="W-A")
    users, tokens = User.objects.count(), AuthToken.objects.count()
    with pytest.raises(CommandError) as err:
        run("create_api_user", "--username", "newbie", *args)
    assert message in str(err.value)
    assert User.objects.count() == users
    assert AuthToken.objects.count() == tokens
    assert not StaffAssignment.objects.exists()
    assert not Group.objects.filter(name__startswith="OMS").exists()


@pytest.mark.django_db
def test_create_api_user_failed_update_leaves_the_user_as_it_was():
    store = LocationFactory(code="S-A")
    user = make_staff(role=Role.ASSOCIATE, locations=[store], username="taro")
    with pytest.raises(CommandError):
        run(
            "create_api_user",
            "--username",
            "taro",
            "--role",
            "associate",
            "--location",
            "S-A",
            "--location",
            "X",
        )
    with pytest.raises(CommandError):
        run("create_api_user", "--username", "bad name!", "--role", "manager")
    user.refresh_from_db()
    assert user.staff_profile.role == Role.ASSOCIATE
    assert list(user.assignments.values_list("location_id", flat=True)) == [store.pk]
    assert not User.objects.filter(username="bad name!").exists()


@pytest.mark.django_db
def test_create_api_user_network_manager_acts_everywhere_and_can_be_scoped_again():
    a = LocationFactory(code="S-A")
    WarehouseFactory(code="W-A")
    out = run("create_api_user", "--username", "boss", "--role", "manager", "--network", "--no-token")
    assert "every location (network-wide)" in out
    user = User.objects.get(username="boss")
    assert user.staff_profile.network_wide
    assert user.is_staff
    assert not user.assignments.exists()
    assert user_location_ids(user) is None

    # An update without --location or --network keeps the manager network-wide.
    run("create_api_user", "--username", "boss", "--role", "manager", "--no-token")
    user = User.objects.get(username="boss")
    assert user.staff_profile.network_wide

    # --location makes it a scoped manager again; --network after that clears the assignments.
    out = run("create_api_user", "--username", "boss", "--role", "manager", "--location", "S-A", "--no-token")
    assert "locations S-A," in out
    user = User.objects.get(username="boss")
    assert not user.staff_profile.network_wide
    assert user_location_ids(user) == {a.pk}
    run("create_api_user", "--username", "boss", "--role", "manager", "--network", "--no-token")
    user = User.objects.get(username="boss")
    assert user.staff_profile.network_wide
    assert not user.assignments.exists()

    # Another role drops the network flag (it means nothing there).
    run("create_api_user", "--username", "boss", "--role", "associate", "--location", "S-A", "--no-token")
    user = User.objects.get(username="boss")
    assert not user.staff_profile.network_wide
    assert user_location_ids(user) == {a.pk}


@pytest.mark.django_db
def test_create_api_user_network_flag_on_an_existing_associate_changes_nothing():
    store = LocationFactory(code="S-A")
    user = make_staff(role=Role.ASSOCIATE, locations=[store], username="taro")
    with pytest.raises(CommandError, match="--network is for managers only"):
        run("create_api_user", "--username", "taro", "--role", "associate", "--network")
    user.refresh_from_db()
    assert not user.staff_profile.network_wide
    assert list(user.assignments.values_list("location_id", flat=True)) == [store.pk]
