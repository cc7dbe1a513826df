"""Which cache each settings profile uses: local memory on the embedded default, Redis in production
(CACHE_URL, defaulting to the broker's URL), through config.cache.RedisCache. Read in a subprocess: settings load once per process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "SECRET_KEY": "test-only-secret-key-that-is-long-enough-for-the-checks-0123456789",
    "ALLOWED_HOSTS": "oms.example.com",
    "DATABASE_URL": "sqlite:///unused.sqlite3",
}


def _settings(module: str, **env) -> dict:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CACHE_URL", "CELERY_BROKER_URL", "THROTTLE_NUM_PROXIES"}
    }
    code = (
        f"import importlib, json; s = importlib.import_module({module!r}); "
        "print(json.dumps({'caches': s.CACHES, 'proxies': s.REST_FRAMEWORK.get('NUM_PROXIES')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_embedded_default_keeps_its_cache_in_the_process():
    s = _settings("config.settings.base")
    assert s["caches"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert s["proxies"] == 0


def test_base_settings_use_redis_when_given_a_cache_url():
    s = _settings("config.settings.base", CACHE_URL="redis://10.1.2.3:6379/4")
    assert s["caches"]["default"] == {
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": "redis://10.1.2.3:6379/4",
    }


@pytest.mark.parametrize(
    ("env", "location"),
    [
        ({"CELERY_BROKER_URL": "redis://broker:6379/0"}, "redis://broker:6379/0"),
        (
            {"CELERY_BROKER_URL": "redis://broker:6379/0", "CACHE_URL": "redis://cache:6379/1"},
            "redis://cache:6379/1",
        ),
    ],
)
def test_production_shares_one_redis_cache(env, location):
    s = _settings("config.settings.production", **PRODUCTION_ENV, **env)
    assert s["caches"]["default"] == {
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": location,
    }
    assert s["proxies"] == 0  # THROTTLE_NUM_PROXIES: set where there is a proxy


@pytest.mark.redis
def test_the_redis_cache_reuses_its_client(settings):
    """config.cache.RedisCache: Django's backend, one redis-py client per connection pool."""
    from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

    from config.cache import RedisCache

    cache = RedisCache(settings.TEST_BROKER_URL, {"KEY_PREFIX": f"test-cache-{os.getpid()}"})
    assert isinstance(cache, DjangoRedisCache)
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client() is client
    assert cache._cache.get_client("some key", write=False) is client  # one server: one pool
    try:
        cache.set("k", {"a": 1}, timeout=30)
        assert cache.get_many(["k", "missing"]) == {"k": {"a": 1}}
        assert cache.add("n", 1, timeout=30)
        assert cache.incr("n") == 2
    finally:
        cache.delete_many(["k", "n"])
        cache.close()
