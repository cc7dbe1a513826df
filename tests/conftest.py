import pytest
from django.core.cache import cache
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


@pytest.fixture(autouse=True)
def _empty_default_cache():
    """Each test starts with an empty default cache: throttle and authentication failure counters
    (anonymous requests all come from one test address), token entries, cached answers."""
    cache.clear()


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


def pytest_terminal_summary(terminalreporter):
    """The access matrix's size and result (tests/test_access_matrix.py): one line per kind of check."""
    kinds: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if "test_access_matrix.py::" not in nodeid or getattr(report, "when", "call") not in (
                "call",
                "setup",
            ):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            name = nodeid.split("::", 1)[1].split("[", 1)[0]
            kind = {
                "test_api": "API cells",
                "test_api_anonymous": "API without credentials",
                "test_admin": "admin cells",
                "test_admin_anonymous": "admin without a session",
            }.get(name)
            if kind is None:
                owasp = ("test_mass_assignment", "test_pickup_codes", "test_admin_shows", "test_till_order")
                kind = (
                    "coverage guard"
                    if name.startswith("test_every")
                    else "OWASP API3 (mass assignment, data exposure)"
                    if name.startswith(owasp)
                    else "the doc's prose rules"
                )
            counts = kinds.setdefault(kind, {})
            counts[outcome] = counts.get(outcome, 0) + 1
    if not kinds:
        return
    total = {o: sum(c.get(o, 0) for c in kinds.values()) for o in ("passed", "failed", "error", "skipped")}
    checks = sum(total.values())

    def line(counts):
        return ", ".join(f"{n} {o}" for o, n in counts.items() if n)

    terminalreporter.write_sep("-", f"access matrix (docs/security.md): {checks} checks: {line(total)}")
    for kind, counts in kinds.items():
        terminalreporter.write_line(f"  {kind}: {sum(counts.values())} ({line(counts)})")
