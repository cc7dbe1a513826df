"""The per-process cache of active webhook endpoints (NOTIFICATIONS["WEBHOOK_ENDPOINTS_CACHE_SECONDS"])."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification, NotificationStatus, WebhookEndpoint, WebhookStatus
from notifications.selectors import active_webhook_endpoints_cached, forget_webhook_endpoints
from notifications.services import (
    notification_deliver,
    webhook_delete,
    webhook_publish,
    webhook_register,
    webhook_resume,
)
from orders import hooks
from orders.models import EventType, OrderEvent
from stores.models import Role
from tests.factories import make_staff

from .conftest import make_order

pytestmark = pytest.mark.django_db

SHORT_TTL = 0.3
ENDPOINT_TABLE = WebhookEndpoint._meta.db_table


@pytest.fixture(autouse=True)
def _empty_endpoint_cache():
    forget_webhook_endpoints()
    yield
    forget_webhook_endpoints()


@pytest.fixture
def cache_seconds(settings):
    def set_ttl(seconds):
        settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_ENDPOINTS_CACHE_SECONDS": seconds}

    return set_ttl


@pytest.fixture
def owner(db):
    return make_staff(role=Role.STOREFRONT)


def _register(owner, capture, events=("order.*",), url="http://127.0.0.1:9/hook"):
    with capture(execute=True):
        return webhook_register(owner=owner, url=url, events=list(events))


def _ids():
    return [ep.pk for ep in active_webhook_endpoints_cached()]


def _endpoint_queries(statements):
    return [q["sql"] for q in statements if ENDPOINT_TABLE in q["sql"]]


def test_the_cached_list_is_read_once_within_the_ttl(owner, cache_seconds, django_assert_num_queries):
    cache_seconds(30)
    WebhookEndpoint.objects.create(owner=owner, url="http://127.0.0.1:9/a", events=["*"], secret="s")
    with django_assert_num_queries(1):
        first = _ids()
    with django_assert_num_queries(0):
        assert _ids() == first
    assert len(first) == 1


def test_with_ttl_zero_the_list_is_read_every_time(owner, cache_seconds, django_assert_num_queries):
    cache_seconds(0)
    for _ in range(3):
        with django_assert_num_queries(1):
            active_webhook_endpoints_cached()
    ep = WebhookEndpoint.objects.create(owner=owner, url="http://127.0.0.1:9/a", events=["*"], secret="s")
    assert _ids() == [ep.pk]  # seen at once


def test_an_endpoint_registered_through_the_service_is_seen_at_once(
    owner, cache_seconds, django_capture_on_commit_callbacks
):
    cache_seconds(30)
    assert _ids() == []
    ep = _register(owner, django_capture_on_commit_callbacks)
    assert _ids() == [ep.pk]


def test_an_endpoint_created_by_another_process_is_seen_after_the_ttl(
    owner, cache_seconds, django_assert_num_queries
):
    cache_seconds(SHORT_TTL)
    assert _ids() == []
    ep = WebhookEndpoint.objects.create(owner=owner, url="http://127.0.0.1:9/a", events=["*"], secret="s")
    with django_assert_num_queries(0):
        assert _ids() == []  # the list this process read before
    deadline = time.monotonic() + 5
    while _ids() == [] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ids() == [ep.pk]


def test_a_deleted_endpoint_stops_being_listed_at_once(
    owner, cache_seconds, django_capture_on_commit_callbacks
):
    cache_seconds(30)
    keep = _register(owner, django_capture_on_commit_callbacks)
    gone = _register(owner, django_capture_on_commit_callbacks, url="http://127.0.0.1:9/gone")
    assert _ids() == [keep.pk, gone.pk]
    with django_capture_on_commit_callbacks(execute=True):
        webhook_delete(endpoint=gone)
    assert _ids() == [keep.pk]


def test_a_deleted_endpoint_gets_no_more_deliveries(owner, cache_seconds, django_capture_on_commit_callbacks):
    cache_seconds(30)
    ep = _register(owner, django_capture_on_commit_callbacks, events=["refund.*"])
    assert len(webhook_publish(event_type="refund.issued", data={}, dedupe_key="refund:1")) == 1
    with django_capture_on_commit_callbacks(execute=True):
        webhook_delete(endpoint=ep)
    assert webhook_publish(event_type="refund.issued", data={}, dedupe_key="refund:2") == []


def test_a_resumed_endpoint_is_listed_at_once(owner, cache_seconds, django_capture_on_commit_callbacks):
    cache_seconds(30)
    ep = WebhookEndpoint.objects.create(
        owner=owner, url="http://127.0.0.1:9/a", events=["*"], secret="s", status=WebhookStatus.PAUSED
    )
    assert _ids() == []
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_resume(endpoint_ids=[ep.pk]) == 1
    assert _ids() == [ep.pk]


def test_an_endpoint_paused_by_failures_stops_being_listed_at_once(
    owner, cache_seconds, settings, fake_http, django_capture_on_commit_callbacks
):
    cache_seconds(30)
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "WEBHOOK_PAUSE_AFTER_FAILURES": 1}
    ep = _register(
        owner, django_capture_on_commit_callbacks, events=["refund.*"], url=f"{fake_http.url}/hook"
    )
    fake_http.default_status = 500
    (d,) = webhook_publish(event_type="refund.issued", data={}, dedupe_key="refund:1")
    assert _ids() == [ep.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert notification_deliver(notification_id=d.pk) == "retry"
    ep.refresh_from_db()
    assert ep.status == WebhookStatus.PAUSED
    assert _ids() == []


def test_an_order_event_with_a_cached_endpoint_list_writes_the_webhook_row(
    owner, cache_seconds, customer, warehouse, django_capture_on_commit_callbacks
):
    cache_seconds(30)
    ep = _register(owner, django_capture_on_commit_callbacks)
    assert _ids() == [ep.pk]  # the list is now cached
    order = make_order(customer, location=warehouse)
    ev = OrderEvent.objects.create(order=order, type=EventType.PLACED)
    with CaptureQueriesContext(connection) as ctx:
        hooks.emit([ev])
    assert _endpoint_queries(ctx.captured_queries) == []  # served from the cache
    (delivery,) = Notification.objects.filter(channel="webhook")
    assert delivery.webhook_endpoint_id == ep.pk
    assert delivery.webhook_event == "order.placed"
    assert delivery.dedupe_key == f"order-event:{ev.pk}:webhook:{ep.pk}"
    assert delivery.context["data"]["order"] == order.number


def test_a_stale_list_never_sends_to_an_endpoint_deleted_elsewhere(
    owner, cache_seconds, fake_http, django_capture_on_commit_callbacks
):
    cache_seconds(30)
    ep = _register(
        owner, django_capture_on_commit_callbacks, events=["refund.*"], url=f"{fake_http.url}/hook"
    )
    assert _ids() == [ep.pk]
    WebhookEndpoint.objects.filter(pk=ep.pk).update(is_deleted=True)  # another process: cache not told
    (d,) = webhook_publish(event_type="refund.issued", data={}, dedupe_key="refund:1")  # the stale list
    assert notification_deliver(notification_id=d.pk) == NotificationStatus.FAILED
    assert fake_http.requests == []
