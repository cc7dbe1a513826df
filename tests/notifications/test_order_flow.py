"""Through the real orders API: each customer-facing step produces exactly one notification per channel."""

import uuid

import pytest
from django.core import mail

from notifications.models import Notification, NotificationEvent, NotificationStatus
from orders.models import Customer
from stores.models import Role
from tests.factories import stock

from .conftest import ship_body

pytestmark = pytest.mark.django_db


def place(client, body):
    return client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))


def test_post_orders_sends_exactly_one_confirmation(
    storefront, warehouse, sku, django_capture_on_commit_callbacks
):
    stock(warehouse, sku, 5)
    with django_capture_on_commit_callbacks(execute=True):
        r = place(storefront, ship_body(sku))
    assert r.status_code == 201, r.content
    (n,) = Notification.objects.all()
    assert n.event == NotificationEvent.ORDER_CONFIRMED
    assert n.status == NotificationStatus.SENT
    (msg,) = mail.outbox
    assert msg.to == ["buyer@example.com"]
    assert r.json()["number"] in msg.subject


def test_a_refused_order_notifies_nobody(storefront, warehouse, sku, django_capture_on_commit_callbacks):
    stock(warehouse, sku, 1)
    with django_capture_on_commit_callbacks(execute=True):
        r = place(
            storefront,
            {**ship_body(sku), "lines": [{"sku": sku.code, "quantity": 2, "unit_price": "1980.00"}]},
        )
    assert r.status_code == 409
    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_ship_flow_tells_carrier_and_tracking(
    storefront, api_client_for, warehouse, sku, django_capture_on_commit_callbacks
):
    stock(warehouse, sku, 5)
    staff = api_client_for(Role.WAREHOUSE, locations=[warehouse])
    with django_capture_on_commit_callbacks(execute=True):
        order = place(storefront, ship_body(sku)).json()
        fid = order["fulfillments"][0]["id"]
        assert staff.post(f"/api/v1/fulfillments/{fid}/pick/", {}, format="json").status_code == 200
        assert staff.post(f"/api/v1/fulfillments/{fid}/pack/", {}, format="json").status_code == 200
        r = staff.post(
            f"/api/v1/fulfillments/{fid}/ship/",
            {"carrier": "Yamato", "tracking_number": "4455-6677"},
            format="json",
        )
        assert r.status_code == 200, r.content
    events = list(Notification.objects.order_by("id").values_list("event", flat=True))
    assert events == [NotificationEvent.ORDER_CONFIRMED, NotificationEvent.ORDER_SHIPPED]
    shipped = mail.outbox[-1]
    assert "Yamato" in shipped.body
    assert "4455-6677" in shipped.body


def test_pickup_ready_and_cancel_in_japanese_by_sms(
    storefront, api_client_for, store, sku, django_capture_on_commit_callbacks
):
    from notifications.channels import LocmemSmsProvider

    Customer.objects.create(phone="+819012340000", language="ja", notify_channels=["sms"])
    stock(store, sku, 3)
    associate = api_client_for(Role.ASSOCIATE, locations=[store])
    body = {
        **ship_body(sku),
        "customer": {"phone": "+819012340000"},
        "fulfillment": {"method": "pickup", "location": store.code},
    }
    with django_capture_on_commit_callbacks(execute=True):
        order = place(storefront, body).json()
        fid = order["fulfillments"][0]["id"]
        assert associate.post(f"/api/v1/fulfillments/{fid}/pick/", {}, format="json").status_code == 200
        r = associate.post(f"/api/v1/fulfillments/{fid}/ready/", {}, format="json")
        assert r.status_code == 200, r.content
    ready = Notification.objects.get(event=NotificationEvent.READY_FOR_PICKUP)
    assert ready.channel == "sms"
    code = ready.context["pickup_code"]
    assert code
    assert [m["body"] for m in LocmemSmsProvider.outbox][-1].startswith(
        f"ご注文 {order['number']} は Shibuya で受け取れます"
    )
    assert code in LocmemSmsProvider.outbox[-1]["body"]
    with django_capture_on_commit_callbacks(execute=True):
        r = storefront.post(
            f"/api/v1/orders/{order['number']}/cancel/", {"reason": "changed my mind"}, format="json"
        )
        assert r.status_code == 200, r.content
    assert Notification.objects.filter(event=NotificationEvent.ORDER_CANCELLED).count() == 1
    assert mail.outbox == []  # SMS only, as the customer chose
