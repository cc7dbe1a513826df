import pytest
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from stores.models import Role

from .factories import LocationFactory, SkuFactory, WarehouseFactory, make_staff


def pytest_collection_modifyitems(config, items):
    """`postgres` tests need PostgreSQL; on the embedded default (SQLite) they are skipped."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if not engine.endswith("postgresql"):
        skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)
    if not getattr(settings, "TEST_BROKER_URL", ""):
        skip = pytest.mark.skip(reason="needs a real Redis broker (set CELERY_BROKER_URL)")
        for item in items:
            if "redis" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def store(db):
    return LocationFactory(code="TKY-SHIBUYA", name="Shibuya")


@pytest.fixture
def warehouse(db):
    return WarehouseFactory(code="WH-KAWASAKI", name="Kawasaki DC")


@pytest.fixture
def sku(db):
    return SkuFactory(code="TEE-BLK-M", name="Black tee M")


def _client_for(user) -> APIClient:
    client = APIClient()
    _, token = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.user = user
    return client


@pytest.fixture
def api_client_for():
    """api_client_for(role, locations=[...], network_wide=False) -> an APIClient authenticated as a
    new user with that role."""

    def make(role: str = Role.STOREFRONT, locations=(), *, network_wide: bool = False):
        return _client_for(make_staff(role=role, locations=locations, network_wide=network_wide))

    return make


@pytest.fixture
def storefront(db, api_client_for):
    return api_client_for(Role.STOREFRONT)


@pytest.fixture
def anon_client():
    return APIClient()
