"""DRF throttles (config/api/throttling.py) through the real views and Django's default cache:
what is limited, per what key, and that the storefront's hot paths are not (docs/security.md,
"Throttling"). Rates are lowered through settings; nothing of the throttles is mocked."""

import os
import uuid

import pytest
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache

from config.api.throttling import (
    AnonThrottle,
    CustomerLookupThrottle,
    CustomerSearchThrottle,
    SubscribeContactThrottle,
    SubscribeThrottle,
)
from orders.models import Order
from stores.models import Role
from tests.factories import SkuFactory, WarehouseFactory, stock
from tests.orders.conftest import TOKYO, place

pytestmark = pytest.mark.django_db

API = "/api/v1"
BIS = f"{API}/back-in-stock/"


@pytest.fixture(autouse=True)
def _clock_at_a_windows_start(time_machine):
    """The limits count in fixed windows (config/api/throttling.py): a test crossing a minute
    boundary would see its counts start again (CI saw it). The clock stands still just after a
    window starts; tests that need time to pass move it themselves."""
    time_machine.move_to("2026-11-30T12:00:01Z", tick=False)


@pytest.fixture
def rates(settings):
    """rates(scope=rate, ...): these rates, every other scope as configured."""

    def set_rates(**overrides):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **overrides},
        }

    return set_rates


@pytest.fixture
def proxies(settings):
    def set_proxies(n):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": n}

    return set_proxies


@pytest.fixture
def wh(db):
    wh = WarehouseFactory(code="WH-KAWASAKI", latitude=35.53, longitude=139.70)
    for i in range(2):
        stock(wh, SkuFactory(code=f"TEE-{i}"), 100)
    return wh


def throttled(resp):
    """A 429 in the API's error shape, with Retry-After (seconds, within the window)."""
    assert resp.status_code == 429, resp.content
    error = resp.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "throttled"
    retry_after = int(resp["Retry-After"])
    assert 0 < retry_after <= 3600
    assert error["details"]["retry_after_seconds"] == retry_after
    return retry_after


def test_the_default_rates_and_every_scope_has_one(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    documented = {  # docs/security.md, "Throttling"; unless the environment sets another
        "anon": "60/minute",
        "customer_lookup": "120/minute",
        "customer_lookup_storefront": "3000/minute",
        "subscribe": "3000/minute",
        "subscribe_contact": "10/hour",
    }
    assert set(rates) == set(documented)
    for scope, rate in documented.items():
        assert rates[scope] == os.environ.get(f"THROTTLE_{scope.upper()}", rate)
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0
    for cls in (AnonThrottle, CustomerLookupThrottle, CustomerSearchThrottle, SubscribeThrottle):
        assert cls().rate == rates[cls.scope]
    assert SubscribeContactThrottle().rate == rates["subscribe_contact"]


def test_the_counters_live_in_the_default_cache(anon_client, rates):
    rates(anon="5/minute")
    anon_client.delete(f"{BIS}garbage/", REMOTE_ADDR="198.51.100.7")
    cache.clear()  # what an operator's FLUSHDB on the shared cache does: counting starts again
    for _ in range(5):
        assert anon_client.delete(f"{BIS}garbage/", REMOTE_ADDR="198.51.100.7").status_code == 404


def test_when_the_cache_is_down_requests_go_through_uncounted(anon_client, rates, settings, caplog):
    rates(anon="1/minute")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    codes = [anon_client.delete(f"{BIS}garbage/", REMOTE_ADDR="198.51.100.7").status_code for _ in range(3)]
    assert codes == [404, 404, 404]
    assert "the cache is unavailable" in caplog.text


# --- Anonymous requests, per client address ------------------------------------------------------


def test_anonymous_requests_are_limited_per_address(anon_client, rates):
    rates(anon="3/minute")
    codes = [anon_client.delete(f"{BIS}garbage/", REMOTE_ADDR="198.51.100.7").status_code for _ in range(3)]
    assert codes == [404, 404, 404]
    throttled(anon_client.delete(f"{BIS}garbage/", REMOTE_ADDR="198.51.100.7"))
    schema = anon_client.get("/api/schema/", REMOTE_ADDR="198.51.100.7")  # every anonymous request
    assert schema.status_code == 429  # (rendered by the schema's own renderer)
    assert int(schema["Retry-After"]) > 0
    assert anon_client.delete(f"{BIS}garbage/", REMOTE_ADDR="198.51.100.8").status_code == 404


def test_a_made_up_forwarded_for_does_not_reset_the_count(anon_client, rates):
    rates(anon="2/minute")
    codes = [
        anon_client.delete(
            f"{BIS}garbage/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}"
        ).status_code
        for i in range(3)
    ]
    assert codes == [404, 404, 429]


def test_behind_a_proxy_the_address_it_saw_is_the_key(anon_client, rates, proxies):
    rates(anon="2/minute")
    proxies(1)

    def from_client(forwarded):
        return anon_client.delete(f"{BIS}garbage/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    assert from_client("203.0.113.5").status_code == 404
    assert from_client("1.2.3.4, 203.0.113.5").status_code == 404  # the client's own entry is ignored
    throttled(from_client(f"{uuid.uuid4()}, 203.0.113.5"))
    assert from_client("203.0.113.6").status_code == 404  # another client behind the same proxy


def test_authenticated_requests_are_not_counted_as_anonymous(storefront, wh, rates):
    rates(anon="1/minute")
    assert [storefront.get(f"{API}/skus/").status_code for _ in range(5)] == [200] * 5


# --- The storefront's hot paths ---------------------------------------------------------------------


def test_the_hot_storefront_paths_are_never_throttled(storefront, wh, rates):
    """Every rate at 1/minute: placing orders, holds and availability reads still all go through."""
    rates(
        anon="1/minute",
        customer_lookup="1/minute",
        customer_lookup_storefront="1/minute",
        subscribe="1/minute",
        subscribe_contact="1/minute",
    )
    order = {
        "channel": "web",
        "customer": {"email": "flash@example.com"},
        "fulfillment": {"method": "ship", "address": TOKYO},
        "lines": [{"sku": "TEE-0", "quantity": 1, "unit_price": "1980.00"}],
        "currency": "JPY",
    }
    for i in range(4):
        r = storefront.post(f"{API}/orders/", order, format="json", HTTP_IDEMPOTENCY_KEY=f"flash-{i}")
        assert r.status_code == 201, r.content
        hold = {
            "lines": [{"sku": "TEE-1", "quantity": 1}],
            "fulfillment": {"method": "ship", "address": TOKYO},
        }
        assert storefront.post(f"{API}/holds/", hold, format="json").status_code == 201
        assert storefront.get(f"{API}/availability/TEE-0/").status_code == 200
        check = {
            "lines": [{"sku": "TEE-0", "quantity": 1}],
            "fulfillment": {"method": "ship", "address": TOKYO},
        }
        assert storefront.post(f"{API}/availability/check/", check, format="json").status_code == 200
        assert storefront.get(f"{API}/orders/").status_code == 200  # the list without a customer filter
        assert storefront.get(f"{API}/orders/{r.json()['number']}/").status_code == 200
    assert Order.objects.count() == 4


# --- Customer lookups, per account --------------------------------------------------------------------


def test_customer_lookups_are_limited_per_account(storefront, api_client_for, wh, rates):
    rates(customer_lookup_storefront="4/minute", customer_lookup="2/minute")
    customer = place(("TEE-0", 1), email="c@example.com", user=storefront.user).customer
    assert storefront.get(f"{API}/customers/{customer.pk}/").status_code == 200
    assert storefront.get(f"{API}/orders/", {"customer_email": "c@example.com"}).status_code == 200
    assert storefront.get(f"{API}/orders/", {"customer_phone": "090-1234-5678"}).status_code == 200
    prefs = storefront.patch(f"{API}/customers/{customer.pk}/preferences/", {}, format="json")
    assert prefs.status_code == 200  # it answers with the customer: a lookup too
    throttled(storefront.get(f"{API}/customers/{customer.pk}/"))
    throttled(storefront.get(f"{API}/orders/", {"customer_email": "c@example.com"}))
    throttled(storefront.get(f"{API}/customers/{customer.pk + 1000}/"))  # a miss counts as much as a hit
    assert storefront.get(f"{API}/orders/").status_code == 200  # the plain list is not a lookup

    other_storefront = api_client_for(Role.STOREFRONT)
    place(("TEE-0", 1), email="c@example.com", user=other_storefront.user)
    assert other_storefront.get(f"{API}/customers/{customer.pk}/").status_code == 200  # its own count

    manager = api_client_for(Role.MANAGER, locations=[wh])  # people: the lower rate
    assert [manager.get(f"{API}/customers/{customer.pk}/").status_code for _ in range(2)] == [200, 200]
    throttled(manager.get(f"{API}/orders/", {"customer_email": "c@example.com"}))


# --- Back-in-stock subscriptions: per account and per contact -------------------------------------------


def test_subscribe_is_limited_per_account(storefront, api_client_for, rates):
    rates(subscribe="3/minute")
    sku = SkuFactory(code="SOLD-OUT")
    codes = [
        storefront.post(BIS, {"sku": sku.code, "email": f"t{i}@example.com"}, format="json").status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 201]
    throttled(storefront.post(BIS, {"sku": sku.code, "email": "t9@example.com"}, format="json"))
    other = api_client_for(Role.STOREFRONT)
    assert other.post(BIS, {"sku": sku.code, "email": "t9@example.com"}, format="json").status_code == 201


def test_subscribe_is_limited_per_email_or_phone(storefront, api_client_for, rates):
    rates(subscribe_contact="2/minute")
    skus = [SkuFactory(code=f"SOLD-{i}") for i in range(4)]
    assert (
        storefront.post(BIS, {"sku": skus[0].code, "email": "v@example.com"}, format="json").status_code
        == 201
    )
    assert (
        storefront.post(BIS, {"sku": skus[1].code, "email": " V@Example.com"}, format="json").status_code
        == 201
    )
    other = api_client_for(Role.STOREFRONT)  # whichever account sends it
    throttled(other.post(BIS, {"sku": skus[2].code, "email": "v@example.com"}, format="json"))
    assert (
        storefront.post(BIS, {"sku": skus[2].code, "email": "w@example.com"}, format="json").status_code
        == 201
    )

    assert (
        storefront.post(BIS, {"sku": skus[0].code, "phone": "090-1234-5678"}, format="json").status_code
        == 201
    )
    assert (
        storefront.post(BIS, {"sku": skus[1].code, "phone": "+81 90 1234 5678"}, format="json").status_code
        == 201
    )
    throttled(storefront.post(BIS, {"sku": skus[3].code, "phone": "+819012345678"}, format="json"))
    assert (
        storefront.post(BIS, {"sku": skus[3].code, "phone": "not a phone"}, format="json").status_code == 400
    )  # no key: the view's own answer
    if isinstance(cache, LocMemCache):  # no address in the cache's keys
        assert not [k for k in cache._cache if "example.com" in k or "8190" in k]
