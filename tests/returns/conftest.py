"""The orders tests' small network (a warehouse, two stores, three SKUs) and a webhook subscriber."""

import pytest

from notifications.services import webhook_register
from stores.models import Role
from tests.factories import make_staff
from tests.orders.conftest import associate, net, picker  # noqa: F401 (fixtures)


@pytest.fixture
def loopback_webhooks(settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_ALLOW_LOOPBACK": True}


@pytest.fixture
def refund_hook(db, loopback_webhooks, django_capture_on_commit_callbacks):
    """A storefront's webhook endpoint subscribed to every refund event."""
    owner = make_staff(role=Role.STOREFRONT)
    with django_capture_on_commit_callbacks(execute=True):  # drops the cached endpoint list
        return webhook_register(owner=owner, url="http://127.0.0.1:9/refunds", events=["refund.*"])
