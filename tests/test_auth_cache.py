"""The per-process cache of verified knox tokens (config.api.authentication, OMS["AUTH_CACHE_SECONDS"])."""

import datetime as dt
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken

from config.api.authentication import forget_token
from stores.models import Role

pytestmark = pytest.mark.django_db

TOKEN_TABLE = AuthToken._meta.db_table
SHORT_TTL = 0.3


@pytest.fixture(autouse=True)
def _empty_token_cache():
    forget_token()
    yield
    forget_token()


@pytest.fixture
def cache_seconds(settings):
    """cache_seconds(n): turn the token cache on for n seconds (0: off)."""

    def set_ttl(seconds):
        settings.OMS = {**settings.OMS, "AUTH_CACHE_SECONDS": seconds}

    return set_ttl


@pytest.fixture
def client(api_client_for):
    return api_client_for(Role.STOREFRONT)


@pytest.fixture
def url(store):
    return f"/api/v1/locations/{store.code}/"


def _get(client, url):
    """GET the URL; returns (status code, SQL statements it ran)."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    return response.status_code, [q["sql"] for q in ctx.captured_queries]


def _token_queries(statements):
    return [sql for sql in statements if TOKEN_TABLE in sql]


def _wait_past(seconds):
    time.sleep(seconds + 0.1)


def test_a_cached_token_is_not_queried_again(client, url, cache_seconds):
    cache_seconds(30)
    status, first = _get(client, url)
    assert status == 200
    assert len(_token_queries(first)) == 1
    status, second = _get(client, url)
    assert status == 200
    assert _token_queries(second) == []
    assert len(second) == len(first) - 1


def test_the_cached_user_is_the_tokens_user(client, url, cache_seconds):
    cache_seconds(30)
    _get(client, url)
    response = client.get(url)
    assert response.status_code == 200
    assert response.wsgi_request.user.pk == client.user.pk


def test_with_the_cache_off_every_request_queries_the_token(client, url, cache_seconds):
    cache_seconds(0)
    for _ in range(3):
        status, statements = _get(client, url)
        assert status == 200
        assert len(_token_queries(statements)) == 1


def test_the_cache_is_per_token(api_client_for, url, cache_seconds):
    cache_seconds(30)
    a, b = api_client_for(Role.STOREFRONT), api_client_for(Role.STOREFRONT)
    assert _get(a, url)[0] == 200
    status, statements = _get(b, url)
    assert status == 200
    assert len(_token_queries(statements)) == 1


def test_a_wrong_token_is_refused_while_another_is_cached(client, url, cache_seconds, anon_client):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    anon_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
    assert anon_client.get(url).status_code == 401


def test_a_token_deleted_through_the_orm_is_refused_at_once(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    AuthToken.objects.filter(user=client.user).delete()
    assert client.get(url).status_code == 401


def test_a_token_instance_deleted_is_refused_at_once(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    AuthToken.objects.get(user=client.user).delete()
    assert client.get(url).status_code == 401


def test_deleting_the_user_refuses_its_token_at_once(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    client.user.delete()  # the token goes by cascade
    assert client.get(url).status_code == 401


def test_deleting_one_token_keeps_the_others_cached(api_client_for, url, cache_seconds):
    cache_seconds(30)
    a, b = api_client_for(Role.STOREFRONT), api_client_for(Role.STOREFRONT)
    assert _get(a, url)[0] == 200
    assert _get(b, url)[0] == 200
    AuthToken.objects.filter(user=a.user).delete()
    assert a.get(url).status_code == 401
    status, statements = _get(b, url)
    assert status == 200
    assert _token_queries(statements) == []


def test_a_token_deleted_by_another_process_is_accepted_until_the_ttl_then_refused(
    client, url, cache_seconds
):
    cache_seconds(SHORT_TTL)
    assert _get(client, url)[0] == 200
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TOKEN_TABLE} WHERE user_id = %s", [client.user.pk])
    status, statements = _get(client, url)
    assert status == 200  # still in this process's cache
    assert _token_queries(statements) == []
    _wait_past(SHORT_TTL)
    assert client.get(url).status_code == 401


def test_a_user_deactivated_by_another_process_is_refused_after_the_ttl(client, url, cache_seconds):
    cache_seconds(SHORT_TTL)
    assert _get(client, url)[0] == 200
    user_table = type(client.user)._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {user_table} SET is_active = %s WHERE id = %s", [False, client.user.pk])
    assert client.get(url).status_code == 200  # cached within the TTL
    _wait_past(SHORT_TTL)
    assert client.get(url).status_code == 401


def test_the_token_is_queried_again_after_the_ttl(client, url, cache_seconds):
    cache_seconds(SHORT_TTL)
    assert _get(client, url)[0] == 200
    _wait_past(SHORT_TTL)
    status, statements = _get(client, url)
    assert status == 200
    assert len(_token_queries(statements)) == 1


def test_a_cached_token_that_expires_is_refused_within_the_ttl(client, url, cache_seconds):
    cache_seconds(30)
    token = AuthToken.objects.get(user=client.user)
    token.expiry = dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=0.3)
    token.save(update_fields=["expiry"])
    assert _get(client, url)[0] == 200
    status, statements = _get(client, url)
    assert status == 200
    assert _token_queries(statements) == []  # served from the cache
    deadline = time.monotonic() + 5
    while token.expiry >= dt.datetime.now(tz=dt.UTC) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get(url).status_code == 401


def test_a_token_already_expired_is_refused(client, url, cache_seconds):
    cache_seconds(30)
    token = AuthToken.objects.get(user=client.user)
    token.expiry = dt.datetime.now(tz=dt.UTC) - dt.timedelta(seconds=1)
    token.save(update_fields=["expiry"])
    assert client.get(url).status_code == 401
    assert client.get(url).status_code == 401


def test_forget_token_drops_the_cache(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    forget_token()
    status, statements = _get(client, url)
    assert status == 200
    assert len(_token_queries(statements)) == 1
