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


# --- Returns ---------------------------------------------------------------------------------------

from decimal import Decimal  # noqa: E402

from orders.models import Fulfillment  # noqa: E402
from orders.services import (  # noqa: E402
    fulfillment_collect,
    fulfillment_pack,
    fulfillment_pick,
    fulfillment_ready,
    fulfillment_ship,
    fulfillment_start,
)
from tests.orders.conftest import lines as order_lines  # noqa: E402
from tests.orders.conftest import pickup, placed  # noqa: E402

BUYER = {"email": "a@example.com"}


def hand_over(order) -> None:
    """Every fulfillment of the order shipped (ship) or collected (pickup), by the system."""
    for f in order.fulfillments.order_by("pk"):
        fulfillment_start(fulfillment_id=f.pk)
        fulfillment_pick(fulfillment_id=f.pk, picks=[])
        if f.method == "ship":
            fulfillment_pack(fulfillment_id=f.pk)
            fulfillment_ship(fulfillment_id=f.pk, carrier="Yamato", tracking_number=f"TRK-{f.pk}")
        else:
            fulfillment_ready(fulfillment_id=f.pk)
            code = Fulfillment.objects.get(pk=f.pk).pickup_code
            fulfillment_collect(fulfillment_id=f.pk, pickup_code=code)


def delivered(*pairs, price="1980.00", **kw):
    """A placed order (ship from the warehouse by default) handed over to the customer."""
    order = (
        placed(*pairs, **kw).order
        if price == "1980.00" and "phone" not in kw
        else _placed_at(pairs, price, **kw)
    )
    hand_over(order)
    order.refresh_from_db()
    return order


def _placed_at(pairs, price, **kw):
    from django.db import transaction

    from orders.services import CustomerIn, order_place
    from tests.orders.conftest import ship

    with transaction.atomic():
        return order_place(
            channel="web",
            customer=CustomerIn(
                email=kw.pop("email", "a@example.com"), phone=kw.pop("phone", None), name="Aiko"
            ),
            fulfillment=kw.pop("fulfillment", None) or ship(),
            lines=order_lines(*pairs, price=price),
            currency="JPY",
            **kw,
        ).order


__all__ = ["BUYER", "Decimal", "delivered", "hand_over", "pickup"]
