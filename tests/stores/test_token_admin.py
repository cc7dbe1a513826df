"""The API token admin (knox/authtoken): superusers list, issue and revoke tokens."""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from stores.models import Role, TokenUse
from stores.services import api_token_issue, api_user_upsert

pytestmark = pytest.mark.django_db

User = get_user_model()
LIST = reverse("admin:knox_authtoken_changelist")
ADD = reverse("admin:knox_authtoken_add")


@pytest.fixture
def root(db):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def shop(db):
    user, _ = api_user_upsert(username="shop", role=Role.STOREFRONT)
    return user


def _api(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_the_list_shows_user_role_created_last_use_expiry_and_key_prefix(root, shop, settings):
    settings.OMS = {**settings.OMS, "TOKEN_USE_RESOLUTION_SECONDS": 60}
    used = api_token_issue(user=shop)
    unused = api_token_issue(user=shop, expiry=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert _api(used.key).get("/api/v1/locations/").status_code == 200
    response = root.get(LIST)
    assert response.status_code == 200
    rows = {row.pk: row for row in response.context["cl"].result_list}
    assert set(rows) == {used.token.pk, unused.token.pk}
    html = response.content.decode()
    for header in ("key prefix", "user", "role", "created", "last use", "expiry"):
        assert f">{header.capitalize()}<" in html or f">{header}<" in html.lower()
    assert used.key[:15] in html
    assert unused.key[:15] in html
    assert used.key not in html  # only the prefix
    assert "Storefront (service account)" in html
    assert "never" in html  # the unused token's last use
    assert rows[used.token.pk].usage.last_used_at is not None


def test_the_list_query_count_does_not_grow_with_tokens(root, shop, django_assert_max_num_queries):
    for _ in range(3):
        api_token_issue(user=shop)
    root.get(LIST)
    with django_assert_max_num_queries(12) as ctx:
        root.get(LIST)
    few = len(ctx.captured_queries)
    for _ in range(20):
        api_token_issue(user=shop)
    with django_assert_max_num_queries(few):
        root.get(LIST)


def test_issuing_a_token_shows_the_key_once_and_stores_only_its_digest(root, shop):
    response = root.post(ADD, {"user": shop.pk, "expiry_0": "", "expiry_1": ""})
    assert response.status_code == 302
    assert response["Location"] == LIST
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    key = re.search(r"<code>([0-9a-f]+)</code>", message).group(1)
    token = AuthToken.objects.get(user=shop)
    assert token.digest == hash_token(key)
    assert token.token_key == key[:15]
    assert token.expiry is None
    assert _api(key).get("/api/v1/locations/").status_code == 200
    assert key in root.get(LIST).content.decode()  # the message, on the page after the redirect
    # shown once: no page has it again
    for url in (LIST, reverse("admin:knox_authtoken_change", args=[token.pk])):
        page = root.get(url)
        assert page.status_code == 200
        assert key not in page.content.decode()


def test_issuing_a_token_with_an_expiry(root, shop):
    response = root.post(ADD, {"user": shop.pk, "expiry_0": "2030-01-01", "expiry_1": "00:00:00"})
    assert response.status_code == 302
    assert AuthToken.objects.get(user=shop).expiry == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_an_inactive_user_cannot_be_given_a_token(root, shop):
    shop.is_active = False
    shop.save()
    response = root.post(ADD, {"user": shop.pk, "expiry_0": "", "expiry_1": ""})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["user"]
    assert not AuthToken.objects.exists()


def test_revoking_from_the_list_refuses_the_next_request(root, shop, settings):
    settings.OMS = {**settings.OMS, "AUTH_CACHE_SECONDS": 30}
    keep, revoke = api_token_issue(user=shop), api_token_issue(user=shop)
    for issued in (keep, revoke):
        assert _api(issued.key).get("/api/v1/locations/").status_code == 200  # cached now
    response = root.post(LIST, {"action": "revoke", "_selected_action": [revoke.token.pk]})
    assert response.status_code == 302
    assert "Revoked 1 API token" in str(next(iter(get_messages(response.wsgi_request))))
    assert _api(revoke.key).get("/api/v1/locations/").status_code == 401
    assert _api(keep.key).get("/api/v1/locations/").status_code == 200


def test_deleting_a_token_page_revokes_it(root, shop, settings):
    settings.OMS = {**settings.OMS, "AUTH_CACHE_SECONDS": 30, "TOKEN_USE_RESOLUTION_SECONDS": 60}
    issued = api_token_issue(user=shop)
    assert _api(issued.key).get("/api/v1/locations/").status_code == 200
    assert TokenUse.objects.filter(token=issued.token).exists()
    url = reverse("admin:knox_authtoken_delete", args=[issued.token.pk])
    assert root.get(url).status_code == 200
    assert root.post(url, {"post": "yes"}).status_code == 302
    assert not AuthToken.objects.exists()
    assert not TokenUse.objects.exists()
    assert _api(issued.key).get("/api/v1/locations/").status_code == 401


def test_tokens_cannot_be_edited(root, shop):
    issued = api_token_issue(user=shop)
    url = reverse("admin:knox_authtoken_change", args=[issued.token.pk])
    other = User.objects.create_user("other")
    root.post(url, {"user": other.pk})
    assert AuthToken.objects.get().user == shop


def test_the_bulk_delete_action_is_replaced_by_revoke(root, shop):
    api_token_issue(user=shop)
    actions = root.get(LIST).context["action_form"].fields["action"].choices
    assert [name for name, _ in actions if name] == ["revoke"]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ASSOCIATE, Role.WAREHOUSE])
def test_staff_who_are_not_superusers_see_no_tokens(role, shop, store, warehouse):
    location = warehouse if role == Role.WAREHOUSE else store
    user, _ = api_user_upsert(username=f"staff-{role}", role=role, location_codes=[location.code])
    # even given knox's model permissions by hand
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="knox"))
    client = Client()
    client.force_login(user)
    issued = api_token_issue(user=shop)
    assert client.get(LIST).status_code == 403
    assert client.get(ADD).status_code == 403
    assert client.get(reverse("admin:knox_authtoken_change", args=[issued.token.pk])).status_code == 403
    assert client.post(LIST, {"action": "revoke", "_selected_action": [issued.token.pk]}).status_code == 403
    assert LIST not in client.get(reverse("admin:index")).content.decode()
    assert AuthToken.objects.count() == 1
