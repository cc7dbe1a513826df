"""Storefront webhooks: registration (SSRF guard), signed deliveries to a local server, retries, pausing."""

import json

import pytest
from standardwebhooks.webhooks import Webhook

from notifications import webhooks
from notifications.models import Notification, NotificationStatus, WebhookEndpoint, WebhookStatus
from notifications.services import notification_deliver, webhook_publish, webhook_register
from orders import hooks
from orders.models import EventType, OrderEvent
from stores.models import Role
from tests.factories import make_staff

from .conftest import make_order

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/"


@pytest.fixture
def public_dns(monkeypatch):
    """DNS is the dependency here: a fixed table instead of the network."""
    table = {
        "hooks.shop.example": ["93.184.216.34"],
        "rebind.shop.example": ["93.184.216.34", "10.0.0.7"],
        "meta.shop.example": ["169.254.169.254"],
        "v6local.shop.example": ["::1"],
    }

    def resolve(host, port):
        if host not in table:
            raise OSError("no such host")
        return table[host]

    monkeypatch.setattr(webhooks, "_resolve", resolve)


def test_register_returns_the_secret_once(storefront, public_dns):
    r = storefront.post(URL, {"url": "https://hooks.shop.example/oms", "events": ["order.*"]}, format="json")
    assert r.status_code == 201, r.data
    assert r.data["secret"].startswith("whsec_")
    Webhook(r.data["secret"])  # a valid Standard Webhooks secret
    listed = storefront.get(URL)
    assert listed.status_code == 200
    assert listed.data["count"] == 1
    assert "secret" not in listed.data["results"][0]
    assert "secret" not in storefront.get(f"{URL}{r.data['id']}/").data


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.shop.example/oms",  # not https
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://192.168.0.10/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://localhost/x",
        "https://metadata.google.internal/x",
        "https://meta.shop.example/x",  # resolves to the metadata address
        "https://rebind.shop.example/x",  # one of its addresses is private
        "https://v6local.shop.example/x",
        "https://nowhere.shop.example/x",  # does not resolve
        "https://user:pw@hooks.shop.example/x",
        "ftp://hooks.shop.example/x",
        "http://127.0.0.1:8080/x",
    ],
)
def test_ssrf_guard_rejects_internal_targets(storefront, public_dns, settings, url):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_ALLOW_LOOPBACK": False}
    r = storefront.post(URL, {"url": url, "events": ["order.placed"]}, format="json")
    assert r.status_code == 400, (url, r.data)
    assert r.data["error"]["details"].get("field") == "url" or "url" in r.data["error"]["details"].get(
        "fields", {}
    )
    assert WebhookEndpoint.objects.count() == 0


def test_loopback_only_when_the_setting_allows_it(storefront, settings):
    body = {"url": "http://127.0.0.1:9/hook", "events": ["order.placed"]}
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_ALLOW_LOOPBACK": False}
    assert storefront.post(URL, body, format="json").status_code == 400
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_ALLOW_LOOPBACK": True}
    assert storefront.post(URL, body, format="json").status_code == 201
    # The allowance is for 127.0.0.1 and ::1 only.
    other = {**body, "url": "http://127.0.0.2:8080/x"}
    assert storefront.post(URL, other, format="json").status_code == 400


@pytest.mark.parametrize("events", [[], ["order.nope"], ["nope.*"], "order.placed", [1], None])
def test_bad_event_lists_are_400(storefront, events):
    r = storefront.post(URL, {"url": "http://127.0.0.1:9/h", "events": events}, format="json")
    assert r.status_code == 400
    assert WebhookEndpoint.objects.count() == 0


def test_roles_and_ownership(api_client_for, anon_client, storefront, store):
    assert anon_client.post(URL, {}, format="json").status_code == 401
    assert api_client_for(Role.ASSOCIATE, locations=[store]).get(URL).status_code == 403
    mine = storefront.post(URL, {"url": "http://127.0.0.1:9/h", "events": ["*"]}, format="json").data["id"]
    other = api_client_for(Role.STOREFRONT)
    assert other.get(URL).data["count"] == 0
    assert other.delete(f"{URL}{mine}/").status_code == 404
    # A scoped manager has no webhooks at all; a network manager only its own.
    manager = api_client_for(Role.MANAGER, locations=[store])
    for r in (
        manager.get(URL),
        manager.post(URL, {"url": "http://127.0.0.1:9/m", "events": ["*"]}, format="json"),
        manager.get(f"{URL}{mine}/"),
        manager.delete(f"{URL}{mine}/"),
    ):
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
    network = api_client_for(Role.MANAGER, network_wide=True)
    assert network.get(URL).data["count"] == 0
    assert network.get(f"{URL}{mine}/").status_code == 404
    assert network.delete(f"{URL}{mine}/").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=mine, is_deleted=False).exists()
    assert storefront.delete(f"{URL}{mine}/").status_code == 204
    assert storefront.get(URL).data["count"] == 0
    assert storefront.delete(f"{URL}{mine}/").status_code == 404


def _endpoint(fake_http, events=("order.*",)):
    owner = make_staff(role=Role.STOREFRONT)
    return webhook_register(owner=owner, url=f"{fake_http.url}/hook", events=list(events))


def test_order_event_is_delivered_signed_in_the_standard_webhooks_style(customer, warehouse, fake_http):
    ep = _endpoint(fake_http)
    _endpoint(fake_http, events=["stock.*"])  # not interested in orders
    order = make_order(customer, location=warehouse)
    ev = OrderEvent.objects.create(order=order, type=EventType.PLACED)
    hooks.emit([ev])
    (delivery,) = Notification.objects.filter(channel="webhook")
    assert delivery.webhook_endpoint == ep
    assert delivery.webhook_event == "order.placed"
    assert notification_deliver(notification_id=delivery.pk) == NotificationStatus.SENT
    (req,) = fake_http.requests
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["webhook-id"] == f"msg_{delivery.pk}"
    assert headers["webhook-signature"].startswith("v1,")
    payload = Webhook(ep.secret).verify(req["body"], headers)  # raises on a bad signature
    assert payload["type"] == "order.placed"
    assert payload["data"]["order"] == order.number
    # A wrong secret does not verify.
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(req["body"], headers)


def test_failed_deliveries_retry_then_pause_the_endpoint(fake_http, settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_PAUSE_AFTER_FAILURES": 2, "MAX_ATTEMPTS": 5}
    ep = _endpoint(fake_http, events=["refund.issued"])
    fake_http.default_status = 500
    (d,) = webhook_publish(event_type="refund.issued", data={"amount": "10.00"}, dedupe_key="refund:1")
    assert notification_deliver(notification_id=d.pk) == "retry"
    d.refresh_from_db()
    assert d.status == NotificationStatus.PENDING
    assert "500" in d.last_error
    Notification.objects.filter(pk=d.pk).update(next_attempt_at=d.created_at)
    assert notification_deliver(notification_id=d.pk) == "retry"
    ep.refresh_from_db()
    assert ep.status == WebhookStatus.PAUSED
    assert ep.consecutive_failures == 2
    # Paused: the pending delivery fails without a request, and new events skip the endpoint.
    Notification.objects.filter(pk=d.pk).update(next_attempt_at=d.created_at)
    assert notification_deliver(notification_id=d.pk) == NotificationStatus.FAILED
    assert len(fake_http.requests) == 2
    assert webhook_publish(event_type="refund.issued", data={}, dedupe_key="refund:2") == []


def test_a_success_resets_the_failure_count(fake_http):
    ep = _endpoint(fake_http, events=["refund.*"])
    fake_http.statuses = [503]
    (d,) = webhook_publish(event_type="refund.issued", data={}, dedupe_key="refund:1")
    notification_deliver(notification_id=d.pk)
    Notification.objects.filter(pk=d.pk).update(next_attempt_at=d.created_at)
    assert notification_deliver(notification_id=d.pk) == NotificationStatus.SENT
    ep.refresh_from_db()
    assert ep.consecutive_failures == 0
    # The retry carried the same webhook-id: the receiver can deduplicate.
    ids = {json.dumps(r["headers"].get("webhook-id")) for r in fake_http.requests}
    assert len(fake_http.requests) == 2
    assert len(ids) == 1


def test_redirects_are_not_followed(fake_http):
    _endpoint(fake_http, events=["refund.*"])
    fake_http.default_status = 302
    (d,) = webhook_publish(event_type="refund.issued", data={}, dedupe_key="refund:1")
    assert notification_deliver(notification_id=d.pk) == "retry"


def test_back_in_stock_webhook_from_a_real_restock(fake_http, store, sku):
    from inventory.services import Line, stock_receive

    _endpoint(fake_http, events=["stock.back_in_stock"])
    stock_receive(lines=[Line(store.pk, sku.pk, 3)], reference="PO-1")
    (d,) = Notification.objects.filter(channel="webhook")
    assert d.context["data"] == {"sku": sku.code, "location": store.code, "available": 3, "cause": "receipt"}


def test_network_manager_and_admin(api_client_for, storefront, db):
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    theirs = storefront.post(URL, {"url": "http://127.0.0.1:9/s", "events": ["*"]}, format="json").data["id"]
    network = api_client_for(Role.MANAGER, network_wide=True)
    r = network.post(URL, {"url": "http://127.0.0.1:9/n", "events": ["order.*"]}, format="json")
    assert r.status_code == 201, r.content
    own = r.data["id"]
    assert [e["id"] for e in network.get(URL).data["results"]] == [own]
    assert network.get(f"{URL}{own}/").status_code == 200
    assert [e["id"] for e in storefront.get(URL).data["results"]] == [theirs]
    assert storefront.get(f"{URL}{own}/").status_code == 404
    admin = APIClient()
    admin.force_authenticate(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    assert {e["id"] for e in admin.get(URL).data["results"]} == {theirs, own}
    assert admin.get(f"{URL}{theirs}/").status_code == 200
    assert network.delete(f"{URL}{own}/").status_code == 204
    assert admin.delete(f"{URL}{theirs}/").status_code == 204
    assert not WebhookEndpoint.objects.filter(is_deleted=False).exists()
