"""The real SMS adapter (httpx) against a local fake provider on 127.0.0.1 (never the internet)."""

import json

import pytest

from notifications.channels import (
    HttpSmsProvider,
    LocmemSmsProvider,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notifications.models import Notification, NotificationStatus
from notifications.services import notification_deliver, notification_enqueue
from orders.models import Customer


def provider(fake_http, **kw):
    return HttpSmsProvider(base_url=fake_http.url + "/v1", token="tok-123", sender="OMS", timeout=2, **kw)


def test_posts_json_with_bearer_token_and_idempotency_key(fake_http):
    message_id = provider(fake_http).send(
        to="+819012345678", body="こんにちは", idempotency_key="notification-7"
    )
    assert message_id == "SM1"
    (req,) = fake_http.requests
    assert req["path"] == "/v1/messages"
    assert req["headers"]["Authorization"] == "Bearer tok-123"
    assert req["headers"]["Idempotency-Key"] == "notification-7"
    assert json.loads(req["body"]) == {"to": "+819012345678", "from": "OMS", "body": "こんにちは"}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
        (429, TransientDeliveryError),
        (400, PermanentDeliveryError),
        (401, PermanentDeliveryError),
    ],
)
def test_status_codes_map_to_transient_or_permanent(fake_http, status, error):
    fake_http.default_status = status
    with pytest.raises(error):
        provider(fake_http).send(to="+819012345678", body="x", idempotency_key="k")


def test_connection_refused_is_transient():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(TransientDeliveryError):
        HttpSmsProvider(base_url=f"http://127.0.0.1:{port}", token="t", sender="OMS", timeout=1).send(
            to="+819012345678", body="x", idempotency_key="k"
        )


@pytest.fixture
def http_sms(fake_http, settings):
    """The "http" SMS provider of the settings, posting to the fake provider."""
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "SMS_PROVIDER": "http",
        "SMS_API_BASE_URL": fake_http.url,
        "SMS_API_TOKEN": "tok",
    }
    return fake_http


def sms_cancellation(phone: str) -> Notification:
    """The outbox row of an order cancellation SMS to a customer whose phone is stored as `phone`."""
    c = Customer.objects.create(phone=phone, notify_channels=["sms"], language="en")
    (n,) = notification_enqueue(
        event="order_cancelled", customer=c, context={"order_number": "ORD1"}, dedupe_key="cancel:1"
    )
    return n


@pytest.mark.django_db
def test_end_to_end_through_settings_with_a_retry(http_sms):
    fake_http = http_sms
    n = sms_cancellation("+819099998888")
    fake_http.statuses = [503]
    assert notification_deliver(notification_id=n.pk) == "retry"
    Notification.objects.filter(pk=n.pk).update(next_attempt_at=n.created_at)
    assert notification_deliver(notification_id=n.pk) == NotificationStatus.SENT
    n.refresh_from_db()
    assert n.provider_message_id == "SM2"
    assert [json.loads(r["body"])["body"] for r in fake_http.requests] == [
        "Order ORD1 has been cancelled."
    ] * 2
    assert {r["headers"]["Idempotency-Key"] for r in fake_http.requests} == {f"notification-{n.pk}"}


@pytest.mark.django_db
def test_the_provider_gets_e164_for_a_phone_kept_in_national_form(http_sms):
    n = sms_cancellation("090-9999-8888")  # stored before phones were normalised
    assert notification_deliver(notification_id=n.pk) == NotificationStatus.SENT
    (req,) = http_sms.requests
    assert json.loads(req["body"])["to"] == "+819099998888"


@pytest.mark.django_db
def test_an_sms_to_what_is_no_phone_number_fails_for_good_without_a_send(http_sms):
    n = sms_cancellation("12345")
    assert notification_deliver(notification_id=n.pk) == NotificationStatus.FAILED
    assert http_sms.requests == []
    assert LocmemSmsProvider.outbox == []
    n.refresh_from_db()
    assert n.last_error == "not a phone number: '12345'"
