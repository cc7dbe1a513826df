"""Django's Redis cache backend, reusing its redis-py client objects.

Django's RedisCacheClient.get_client() builds a new `redis.Redis` around the connection pool on
every cache call, and redis-py's constructor fills a table of ~170 response callbacks each time:
a quarter of the CPU of a cache hit, on every API request (the token cache; docs/benchmarks.md,
"Issue 9: token authentication"). A `redis.Redis` is thread-safe and holds no connection of its
own (the pool does, and the pool re-creates its connections after a fork), so one per pool does.
Everything else is Django's backend unchanged.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
