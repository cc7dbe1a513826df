"""Failed authentications counted per client in the shared cache (config.auth_failures): the API's
token authentication answers 429 `throttled`, the admin login refuses the username from that
address, until the window ends."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.urls import reverse

from config.api import authentication
from stores.models import Role

pytestmark = pytest.mark.django_db

LIMIT = 3
WINDOW = 60
# the start of a window, so that a test never straddles two
T0 = dt.datetime(2026, 11, 30, 6, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.OMS = {
        **settings.OMS,
        "AUTH_FAILURE_LIMIT": LIMIT,
        "AUTH_FAILURE_WINDOW_SECONDS": WINDOW,
        "ADMIN_LOGIN_FAILURE_LIMIT": LIMIT,
        "ADMIN_LOGIN_FAILURE_WINDOW_SECONDS": WINDOW,
    }


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def url(store):
    return f"/api/v1/locations/{store.code}/"


def _bad(anon_client, url, addr="10.0.0.1", token="0" * 64):
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return anon_client.get(url, REMOTE_ADDR=addr)


# --- API tokens -------------------------------------------------------------------------------


def test_failed_token_authentications_lock_the_address_after_the_limit(clock, url, anon_client, storefront):
    for _ in range(LIMIT):
        assert _bad(anon_client, url).status_code == 401
    response = storefront.get(url, REMOTE_ADDR="10.0.0.1")  # even the right token, from there
    assert response.status_code == 429
    body = response.json()
    assert body["error"]["code"] == "throttled"
    assert body["error"]["details"] == {"retry_after_seconds": WINDOW}
    assert body["error"]["message"] == (
        f"Too many failed authentications from this address. Expected available in {WINDOW} seconds."
    )
    assert response["Retry-After"] == str(WINDOW)
    assert _bad(anon_client, url).status_code == 429


def test_the_lock_lifts_when_the_window_ends(clock, url, anon_client, storefront):
    for _ in range(LIMIT):
        _bad(anon_client, url)
    clock.shift(WINDOW - 15)
    response = storefront.get(url, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    assert response.json()["error"]["details"]["retry_after_seconds"] == 15
    clock.shift(15)
    assert storefront.get(url, REMOTE_ADDR="10.0.0.1").status_code == 200
    assert _bad(anon_client, url).status_code == 401  # counting again from zero


def test_other_addresses_are_not_locked(clock, url, anon_client, storefront):
    for _ in range(LIMIT):
        _bad(anon_client, url)
    assert storefront.get(url, REMOTE_ADDR="10.0.0.2").status_code == 200
    assert _bad(anon_client, url, addr="10.0.0.2").status_code == 401


def test_successful_requests_never_count(clock, url, storefront):
    for _ in range(LIMIT * 3):
        assert storefront.get(url, REMOTE_ADDR="10.0.0.1").status_code == 200


def test_requests_without_a_token_do_not_count(clock, url, anon_client):
    for _ in range(LIMIT + 1):
        assert anon_client.get(url, REMOTE_ADDR="10.0.0.1").status_code == 401  # no credentials
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer whatever")  # not ours: not a token failure
    for _ in range(LIMIT + 1):
        assert anon_client.get(url, REMOTE_ADDR="10.0.0.1").status_code == 401


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token \xff\xfe"])
def test_malformed_token_headers_count(clock, url, anon_client, storefront, header):
    for _ in range(LIMIT):
        response = anon_client.get(url, REMOTE_ADDR="10.0.0.1", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
    assert storefront.get(url, REMOTE_ADDR="10.0.0.1").status_code == 429


def test_an_inactive_users_token_counts(clock, url, api_client_for):
    client = api_client_for(Role.STOREFRONT)
    client.user.is_active = False
    client.user.save()
    for _ in range(LIMIT):
        assert client.get(url, REMOTE_ADDR="10.0.0.1").status_code == 401
    assert client.get(url, REMOTE_ADDR="10.0.0.1").status_code == 429


def test_with_no_limit_nothing_is_locked(settings, clock, url, anon_client, storefront):
    settings.OMS = {**settings.OMS, "AUTH_FAILURE_LIMIT": 0}
    for _ in range(LIMIT * 2):
        assert _bad(anon_client, url).status_code == 401
    assert storefront.get(url, REMOTE_ADDR="10.0.0.1").status_code == 200


def test_behind_a_proxy_the_forwarded_address_counts(settings, clock, url, anon_client, storefront):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    via_proxy = {"REMOTE_ADDR": "10.9.9.9"}
    for _ in range(LIMIT):
        anon_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
        anon_client.get(url, HTTP_X_FORWARDED_FOR="203.0.113.7", **via_proxy)
    assert storefront.get(url, HTTP_X_FORWARDED_FOR="203.0.113.7", **via_proxy).status_code == 429
    assert storefront.get(url, HTTP_X_FORWARDED_FOR="198.51.100.1", **via_proxy).status_code == 200
    # the proxy appends what it saw: a client's own X-Forwarded-For entries change nothing
    spoofed = "198.51.100.99, 203.0.113.7"
    assert storefront.get(url, HTTP_X_FORWARDED_FOR=spoofed, **via_proxy).status_code == 429


def test_without_proxies_a_forged_forwarded_for_changes_nothing(clock, url, anon_client, storefront):
    for i in range(LIMIT):
        anon_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
        anon_client.get(url, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert storefront.get(url, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429


class _CountingCache:
    """The auth cache, counting its calls (a call is a round trip with Redis)."""

    def __init__(self, cache):
        self.cache, self.calls = cache, []

    def __getattr__(self, name):
        attr = getattr(self.cache, name)
        if callable(attr):

            def counted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)

            return counted
        return attr


@pytest.fixture
def counting_cache(monkeypatch):
    counting = _CountingCache(caches["default"])
    monkeypatch.setattr(authentication, "auth_cache", lambda: counting)
    monkeypatch.setattr("config.auth_failures.auth_cache", lambda: counting)
    return counting


def test_a_successful_request_costs_one_cache_round_trip(settings, url, storefront, counting_cache):
    """The token's entry, the address's failure count and the last-use marker: one get_many."""
    settings.OMS = {**settings.OMS, "AUTH_CACHE_SECONDS": 30, "TOKEN_USE_RESOLUTION_SECONDS": 60}
    assert storefront.get(url).status_code == 200  # first: reads the database, caches, records the use
    counting_cache.calls.clear()
    for _ in range(3):
        assert storefront.get(url).status_code == 200
    assert counting_cache.calls == ["get_many"] * 3


def test_a_failure_costs_its_own_round_trips_only(url, anon_client, counting_cache, clock):
    _bad(anon_client, url)
    assert counting_cache.calls[0] == "get_many"
    assert "add" in counting_cache.calls[1:]  # the counter


# --- the admin login --------------------------------------------------------------------------------


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "right-password")


def _login(client, username, password, addr="10.0.0.1"):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=addr,
    )


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_admin_logins_are_refused_after_the_limit_even_with_the_right_password(client, admin_user, clock):
    for _ in range(LIMIT):
        response = _login(client, "root", "wrong")
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()
    response = _login(client, "root", "right-password")
    assert response.status_code == 200
    assert "Too many failed logins" in response.content.decode()
    assert not _logged_in(client)


def test_the_admin_lock_is_per_username_and_address(client, admin_user, clock):
    other = get_user_model().objects.create_superuser("other", "o@example.com", "other-password")
    for _ in range(LIMIT):
        _login(client, "root", "wrong")
    assert _login(client, "ROOT", "right-password").status_code == 200  # the same username, any case
    assert not _logged_in(client)
    assert _login(client, other.username, "other-password").status_code == 302
    client.logout()
    assert _login(client, "root", "right-password", addr="10.0.0.2").status_code == 302


def test_the_admin_lock_lifts_when_the_window_ends(client, admin_user, clock):
    for _ in range(LIMIT):
        _login(client, "root", "wrong")
    clock.shift(WINDOW - 1)
    assert _login(client, "root", "right-password").status_code == 200
    clock.shift(1)
    response = _login(client, "root", "right-password")
    assert response.status_code == 302
    assert _logged_in(client)


def test_a_successful_admin_login_clears_the_count(client, admin_user, clock):
    for _ in range(LIMIT - 1):
        _login(client, "root", "wrong")
    assert _login(client, "root", "right-password").status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        _login(client, "root", "wrong")
    assert _login(client, "root", "right-password").status_code == 302


def test_a_non_staff_users_admin_logins_count(client, clock):
    get_user_model().objects.create_user("shop", password="shop-password")  # API only, no admin
    for _ in range(LIMIT):
        assert _login(client, "shop", "shop-password").status_code == 200
    response = _login(client, "shop", "shop-password")
    assert "Too many failed logins" in response.content.decode()
