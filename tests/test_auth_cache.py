"""The API token cache (config.api.authentication: Django's cache, OMS["AUTH_CACHE_SECONDS"]) and
the token's last use (stores.TokenUse, OMS["TOKEN_USE_RESOLUTION_SECONDS"]).

Every change made through the ORM (revoking, deactivating, a new role) shows at the next request,
in every process; only changes made around the ORM wait for the entry's expiry.
"""

import datetime as dt
import time
import uuid

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken

from config.api import authentication
from stores.models import Role, StaffAssignment, TokenUse
from stores.services import api_tokens_revoke, api_user_upsert
from tests.factories import LocationFactory

pytestmark = pytest.mark.django_db

TOKEN_TABLE = AuthToken._meta.db_table
USE_TABLE = TokenUse._meta.db_table
SHORT_TTL = 0.3


@pytest.fixture
def cache_seconds(settings):
    """cache_seconds(n): turn the token cache on for n seconds (0: off)."""

    def set_ttl(seconds):
        settings.OMS = {**settings.OMS, "AUTH_CACHE_SECONDS": seconds}

    return set_ttl


@pytest.fixture
def use_resolution(settings):
    def set_resolution(seconds):
        settings.OMS = {**settings.OMS, "TOKEN_USE_RESOLUTION_SECONDS": seconds}

    return set_resolution


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
    return [sql for sql in statements if TOKEN_TABLE in sql and USE_TABLE not in sql]


def _wait_past(seconds):
    time.sleep(seconds + 0.1)


# --- the cache ---------------------------------------------------------------------------------


def test_a_cached_token_is_not_queried_again(client, url, cache_seconds):
    cache_seconds(30)
    status, first = _get(client, url)
    assert status == 200
    assert len(_token_queries(first)) == 1
    status, second = _get(client, url)
    assert status == 200
    assert _token_queries(second) == []
    assert len(second) == len(first) - 1


def test_the_cached_user_is_the_tokens_user_with_its_role(client, url, cache_seconds):
    cache_seconds(30)
    _get(client, url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    user = response.wsgi_request.user
    assert user.pk == client.user.pk
    assert user.staff_profile.role == Role.STOREFRONT
    assert not any("stores_staffprofile" in q["sql"] for q in ctx.captured_queries)


def test_the_cache_holds_no_password_hash(client, url, cache_seconds):
    cache_seconds(30)
    _get(client, url)
    token = AuthToken.objects.get(user=client.user)
    entry = caches["default"].get(f"oms:auth:token:{token.digest}")
    assert entry.user.pk == client.user.pk
    assert "password" not in entry.user.__dict__


def test_with_the_cache_off_every_request_queries_the_token(client, url, cache_seconds):
    cache_seconds(0)
    for _ in range(3):
        status, statements = _get(client, url)
        assert status == 200
        assert len(_token_queries(statements)) == 1


def test_a_token_issued_while_the_cache_is_on_is_cached_from_its_first_request(
    api_client_for, url, cache_seconds
):
    cache_seconds(30)
    client = api_client_for(Role.STOREFRONT)  # its token is created now
    assert _get(client, url)[0] == 200
    status, statements = _get(client, url)
    assert (status, _token_queries(statements)) == (200, [])


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


def test_the_token_is_queried_again_after_the_ttl(client, url, cache_seconds):
    cache_seconds(SHORT_TTL)
    assert _get(client, url)[0] == 200
    _wait_past(SHORT_TTL)
    status, statements = _get(client, url)
    assert status == 200
    assert len(_token_queries(statements)) == 1


# --- revocation and changes: at the next request --------------------------------------------------


def test_revoking_a_cached_token_refuses_the_very_next_request(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    assert _get(client, url)[0] == 200  # served from the cache
    assert api_tokens_revoke(tokens=AuthToken.objects.filter(user=client.user)) == 1
    response = client.get(url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


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


def test_deactivating_the_user_refuses_the_very_next_request(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    assert _get(client, url)[0] == 200
    client.user.is_active = False
    client.user.save()
    response = client.get(url)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "User inactive or deleted."


def test_deactivating_the_user_with_update_fields_refuses_the_next_request(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    client.user.is_active = False
    client.user.save(update_fields=["is_active"])
    assert client.get(url).status_code == 401


def test_deleting_the_user_refuses_its_token_at_once(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    client.user.delete()  # the token goes by cascade
    assert client.get(url).status_code == 401


def test_a_new_role_applies_at_the_next_request(client, cache_seconds, store):
    cache_seconds(30)
    assert client.get("/api/v1/webhooks/").status_code == 200  # storefront only
    assert client.get("/api/v1/webhooks/").status_code == 200  # cached
    api_user_upsert(username=client.user.username, role=Role.ASSOCIATE, location_codes=[store.code])
    assert client.get("/api/v1/webhooks/").status_code == 403


def test_a_new_assignment_applies_at_the_next_request(api_client_for, cache_seconds, store):
    """Assignments are not cached: read on every request."""
    cache_seconds(30)
    other = LocationFactory(code="TKY-GINZA")
    client = api_client_for(Role.ASSOCIATE, locations=[store])
    movements = f"/api/v1/stock/movements/?location={other.code}"
    assert client.get(movements).status_code == 403
    assert client.get(movements).status_code == 403
    StaffAssignment.objects.create(user=client.user, location=other)
    assert client.get(movements).status_code == 200
    StaffAssignment.objects.filter(user=client.user, location=other).delete()
    assert client.get(movements).status_code == 403


def test_a_login_does_not_drop_the_users_tokens(client, url, cache_seconds):
    cache_seconds(30)
    assert _get(client, url)[0] == 200
    client.user.last_login = dt.datetime.now(tz=dt.UTC)
    client.user.save(update_fields=["last_login"])
    status, statements = _get(client, url)
    assert status == 200
    assert _token_queries(statements) == []


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


def test_after_a_change_the_entry_is_not_cached_again_for_the_ttl(client, url, cache_seconds):
    """The stale marker: a request that read the rows before the change cannot cache them again."""
    cache_seconds(SHORT_TTL)
    assert _get(client, url)[0] == 200
    client.user.first_name = "Changed"
    client.user.save()
    for _ in range(2):
        status, statements = _get(client, url)
        assert status == 200
        assert len(_token_queries(statements)) == 1  # from the database, not cached again
    _wait_past(SHORT_TTL)
    assert _get(client, url)[0] == 200
    status, statements = _get(client, url)
    assert _token_queries(statements) == []  # cached again


def test_a_change_inside_a_transaction_is_marked_again_at_commit(
    client, cache_seconds, monkeypatch, django_capture_on_commit_callbacks
):
    cache_seconds(30)
    marked = []
    monkeypatch.setattr(authentication, "_mark_stale", lambda keys, ttl: marked.append(keys))
    with django_capture_on_commit_callbacks(execute=True):
        client.user.is_active = False
        client.user.save()
        assert len(marked) == 1  # at once, for this process's next read
    assert len(marked) == 2  # and after COMMIT, over whatever a concurrent request cached meanwhile
    assert marked[0] == marked[1]


def test_a_token_deleted_around_the_orm_is_accepted_until_the_ttl_then_refused(client, url, cache_seconds):
    cache_seconds(SHORT_TTL)
    assert _get(client, url)[0] == 200
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TOKEN_TABLE} WHERE user_id = %s", [client.user.pk])
    status, statements = _get(client, url)
    assert status == 200  # still cached: a raw DELETE sends no signal
    assert _token_queries(statements) == []
    _wait_past(SHORT_TTL)
    assert client.get(url).status_code == 401


def test_a_user_deactivated_around_the_orm_is_refused_after_the_ttl(client, url, cache_seconds):
    cache_seconds(SHORT_TTL)
    assert _get(client, url)[0] == 200
    type(client.user).objects.filter(pk=client.user.pk).update(is_active=False)  # no signal
    assert client.get(url).status_code == 200  # cached within the TTL
    _wait_past(SHORT_TTL)
    assert client.get(url).status_code == 401


def test_a_cached_token_that_expires_is_refused_within_the_ttl(client, url, cache_seconds):
    cache_seconds(30)
    token = AuthToken.objects.get(user=client.user)
    token.expiry = dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=0.3)
    AuthToken.objects.filter(pk=token.pk).update(expiry=token.expiry)  # keep the entry cacheable
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


# --- last use -----------------------------------------------------------------------------------------


def _use_writes(statements):
    return [sql for sql in statements if USE_TABLE in sql]


def test_a_token_never_used_has_no_last_use(client, use_resolution):
    use_resolution(60)
    assert not TokenUse.objects.exists()


def test_the_first_request_records_the_last_use(client, url, use_resolution):
    use_resolution(60)
    before = dt.datetime.now(tz=dt.UTC)
    assert client.get(url).status_code == 200
    use = TokenUse.objects.get(token__user=client.user)
    assert before <= use.last_used_at <= dt.datetime.now(tz=dt.UTC)


@pytest.mark.parametrize("ttl", [0, 30])
def test_the_last_use_is_written_at_most_once_per_resolution(client, url, use_resolution, cache_seconds, ttl):
    cache_seconds(ttl)
    use_resolution(60)
    writes = []
    for _ in range(5):
        status, statements = _get(client, url)
        assert status == 200
        writes += _use_writes(statements)
    assert len(writes) == 1
    first = TokenUse.objects.get().last_used_at
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=61), tick=False):
        status, statements = _get(client, url)
        assert status == 200
        assert len(_use_writes(statements)) == 1
        assert TokenUse.objects.get().last_used_at > first


def test_a_refused_request_records_no_use(client, url, use_resolution):
    use_resolution(60)
    client.user.is_active = False
    client.user.save()
    assert client.get(url).status_code == 401
    assert not TokenUse.objects.exists()


def test_revoking_a_token_removes_its_last_use(client, url, use_resolution):
    use_resolution(60)
    assert client.get(url).status_code == 200
    api_tokens_revoke(tokens=AuthToken.objects.filter(user=client.user))
    assert not TokenUse.objects.exists()


# --- two processes, one Redis -----------------------------------------------------------------------


@pytest.fixture
def two_processes(settings):
    """Two cache aliases on the same Redis database, each its own client and connection pool:
    what two gunicorn workers have. `use(name)` makes this test process act as one of them."""
    url = django_settings.TEST_BROKER_URL
    prefix = f"test-auth-{uuid.uuid4().hex[:8]}"
    backend = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix,
    }
    settings.CACHES = {**settings.CACHES, "worker-a": dict(backend), "worker-b": dict(backend)}
    settings.OMS = {**settings.OMS, "AUTH_CACHE_SECONDS": 30}

    def use(name):
        settings.OMS = {**settings.OMS, "AUTH_CACHE_ALIAS": name}
        return caches[name]

    yield use
    redis = caches["worker-a"]._cache.get_client(write=True)
    for key in redis.scan_iter(f"{prefix}:*"):  # this test's keys only: the database is the broker's
        redis.delete(key)
    caches["worker-a"].close()
    caches["worker-b"].close()


@pytest.mark.redis
def test_two_processes_sharing_redis_see_a_revocation_at_once(client, url, two_processes):
    a = two_processes("worker-a")
    assert _get(client, url)[0] == 200
    status, statements = _get(client, url)
    assert (status, _token_queries(statements)) == (200, [])  # worker A serves it from Redis

    b = two_processes("worker-b")
    assert a is not b
    assert a._cache.get_client() is not b._cache.get_client()
    assert a._cache._pools[0] is not b._cache._pools[0]
    status, statements = _get(client, url)
    assert (status, _token_queries(statements)) == (200, [])  # worker B finds A's entry
    api_tokens_revoke(tokens=AuthToken.objects.filter(user=client.user))  # revoked in worker B

    two_processes("worker-a")
    assert client.get(url).status_code == 401  # worker A's very next request


@pytest.mark.redis
def test_two_processes_sharing_redis_see_a_deactivation_at_once(client, url, two_processes):
    two_processes("worker-a")
    assert _get(client, url)[0] == 200
    two_processes("worker-b")
    client.user.is_active = False
    client.user.save()
    two_processes("worker-a")
    assert client.get(url).status_code == 401


# --- the cache down ------------------------------------------------------------------------------------


@pytest.fixture
def cache_down(settings):
    """The token cache on a Redis nobody listens to (connection refused)."""
    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "config.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    settings.OMS = {
        **settings.OMS,
        "AUTH_CACHE_ALIAS": "down",
        "AUTH_CACHE_SECONDS": 30,
        "TOKEN_USE_RESOLUTION_SECONDS": 60,
        "AUTH_FAILURE_LIMIT": 2,
    }


def test_with_the_cache_down_tokens_are_read_from_the_database(client, url, cache_down, anon_client):
    for _ in range(2):
        status, statements = _get(client, url)
        assert status == 200
        assert len(_token_queries(statements)) == 1
    assert not TokenUse.objects.exists()  # not recorded: without the marker it would be every request
    anon_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
    for _ in range(4):
        assert anon_client.get(url).status_code == 401  # not counted: never 429
    assert api_tokens_revoke(tokens=AuthToken.objects.filter(user=client.user)) == 1  # the save succeeds
    assert client.get(url).status_code == 401
