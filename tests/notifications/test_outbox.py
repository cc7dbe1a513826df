"""The outbox: one row per (event, recipient, channel), claimed before sending, retried, swept."""

import datetime as dt

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from notifications import services
from notifications.channels import LocmemSmsProvider
from notifications.models import Notification, NotificationEvent, NotificationStatus
from notifications.services import (
    delivery,
    notification_claim,
    notification_deliver,
    notification_enqueue,
    notification_resend,
    notifications_requeue_due,
)
from orders.models import Customer

pytestmark = pytest.mark.django_db


def enqueue(customer, key="refund:1", event=NotificationEvent.REFUND_ISSUED, **ctx):
    context = {"amount": "1980.00", "currency": "JPY", "order_number": "ABC123", **ctx}
    return notification_enqueue(event=event, customer=customer, context=context, dedupe_key=key)


def test_one_row_per_channel_the_customer_chose(customer):
    customer.notify_channels = ["email", "sms"]
    customer.save()
    rows = enqueue(customer)
    assert sorted(r.channel for r in rows) == ["email", "sms"]
    assert {r.recipient for r in rows} == {"hana@example.com", "+819012345678"}
    assert all(r.status == NotificationStatus.PENDING and r.language == "ja" for r in rows)


def test_no_preference_means_email_else_sms(db):
    with_email = Customer.objects.create(email="a@example.com", phone="+819000000001")
    phone_only = Customer.objects.create(phone="+819000000002")
    assert [r.channel for r in enqueue(with_email, key="k1")] == ["email"]
    assert [r.channel for r in enqueue(phone_only, key="k2")] == ["sms"]


def test_a_channel_without_a_contact_is_skipped(db):
    c = Customer.objects.create(email="a@example.com", notify_channels=["sms", "email"])
    assert [r.channel for r in enqueue(c)] == ["email"]


def test_same_dedupe_key_never_makes_a_second_row(customer):
    first = enqueue(customer)
    second = enqueue(customer)
    assert [r.pk for r in first] == [r.pk for r in second]
    assert Notification.objects.count() == 1


def test_unknown_event_is_rejected(customer):
    from config.errors import InvalidInput

    with pytest.raises(InvalidInput):
        enqueue(customer, event="nope")
    assert Notification.objects.count() == 0


def test_rolled_back_change_leaves_no_row_and_sends_nothing(customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                enqueue(customer)
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    assert Notification.objects.count() == 0
    assert callbacks == []
    assert mail.outbox == []


def test_delivery_is_enqueued_on_commit_and_sends_once(customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        (n,) = enqueue(customer)
    assert len(callbacks) == 1
    n.refresh_from_db()
    assert n.status == NotificationStatus.SENT
    assert n.attempts == 1
    assert n.sent_at
    assert len(mail.outbox) == 1
    msg = mail.outbox[0]
    assert msg.to == ["hana@example.com"]
    assert msg.subject == "1980.00 JPY を返金しました"  # Japanese: the customer's language
    assert msg.extra_headers["Message-ID"] == f"<notification-{n.pk}@oms.example.com>"
    # The task again (a duplicate message, a retry): nothing more is sent.
    assert notification_deliver(notification_id=n.pk) == "skipped"
    assert len(mail.outbox) == 1


def test_templates_exist_for_every_event_channel_and_language(customer):
    from notifications.models import DeliveryChannel

    for event in NotificationEvent.values:
        if event == NotificationEvent.WEBHOOK:
            continue
        for lang in ("en", "ja", "ko"):
            for channel in (DeliveryChannel.EMAIL, DeliveryChannel.SMS):
                ctx = {"order_number": "X1", "return_number": "X1", "sku_name": "X1", "lines": []}
                n = Notification(event=event, channel=channel, language=lang, context=ctx)
                r = services.notification_render(n)
                assert "X1" in r.body, (event, lang, channel)
                assert "{" not in r.body + r.subject
                if channel == DeliveryChannel.EMAIL:
                    assert r.subject
                    assert "\n" not in r.subject


def test_unknown_language_falls_back_to_english(db):
    c = Customer.objects.create(email="x@example.com", language="ko")
    (n,) = enqueue(c)
    assert services.notification_render(n).subject == "1980.00 JPY 환불이 처리되었습니다"
    n.language = "fr"
    assert services.notification_render(n).subject == "Refund of 1980.00 JPY issued"


def test_sms_goes_through_the_provider_with_the_idempotency_key(db):
    c = Customer.objects.create(phone="+819011112222", notify_channels=["sms"], language="en")
    (n,) = enqueue(c)
    assert notification_deliver(notification_id=n.pk) == NotificationStatus.SENT
    assert LocmemSmsProvider.outbox == [
        {
            "to": "+819011112222",
            "body": "Refund of 1980.00 JPY issued for order ABC123.",
            "idempotency_key": f"notification-{n.pk}",
        }
    ]


def test_a_claimed_row_cannot_be_claimed_again(customer):
    (n,) = enqueue(customer)
    first = notification_claim(notification_id=n.pk)
    assert first is not None
    assert first.status == NotificationStatus.SENDING
    assert first.attempts == 1
    assert notification_claim(notification_id=n.pk) is None
    assert notification_deliver(notification_id=n.pk) == "skipped"
    assert mail.outbox == []


def test_an_expired_lease_is_reclaimed_and_the_old_holder_cannot_record(customer):
    (n,) = enqueue(customer)
    stale = notification_claim(notification_id=n.pk)
    Notification.objects.filter(pk=n.pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert notification_deliver(notification_id=n.pk) == NotificationStatus.SENT
    assert len(mail.outbox) == 1
    # The worker that lost its lease comes back: its outcome is not written.
    assert delivery._finish(stale, status=NotificationStatus.FAILED) is False
    n.refresh_from_db()
    assert n.status == NotificationStatus.SENT
    assert n.attempts == 2


class FlakyBackend:
    """An email backend that fails with a connection error."""

    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        return False

    def close(self):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


def test_failures_back_off_exponentially_then_fail(customer, settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_outbox.FlakyBackend"
    (n,) = enqueue(customer)
    delays = []
    for attempt in range(1, 4):
        before = timezone.now()
        outcome = notification_deliver(notification_id=n.pk)
        n.refresh_from_db()
        assert n.attempts == attempt
        assert "ConnectionRefusedError" in n.last_error
        if attempt < 3:
            assert outcome == "retry"
            assert n.status == NotificationStatus.PENDING
            delays.append((n.next_attempt_at - before).total_seconds())
            # Not due yet: a duplicate task message does nothing.
            assert notification_deliver(notification_id=n.pk) == "skipped"
            Notification.objects.filter(pk=n.pk).update(next_attempt_at=timezone.now())
        else:
            assert outcome == NotificationStatus.FAILED
            assert n.status == NotificationStatus.FAILED
    assert 30 <= delays[0] <= 34
    assert 60 <= delays[1] <= 67


def test_permanent_error_fails_at_once(customer, settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "SMS_PROVIDER": "http", "SMS_API_BASE_URL": ""}
    customer.notify_channels = ["sms"]
    customer.save()
    (n,) = enqueue(customer)
    assert notification_deliver(notification_id=n.pk) == NotificationStatus.FAILED
    n.refresh_from_db()
    assert n.attempts == 1
    assert "SMS_API_BASE_URL" in n.last_error


def test_resend_puts_failed_rows_back_and_leaves_sent_rows(customer, django_capture_on_commit_callbacks):
    (n,) = enqueue(customer)
    (other,) = enqueue(customer, key="refund:2")
    Notification.objects.filter(pk=n.pk).update(status=NotificationStatus.FAILED, attempts=3, last_error="x")
    notification_deliver(notification_id=other.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert notification_resend(notification_ids=[n.pk, other.pk]) == 1
    n.refresh_from_db()
    assert n.status == NotificationStatus.SENT
    assert n.attempts == 1
    assert len(mail.outbox) == 2


def test_sweeper_picks_old_pending_due_retries_and_expired_leases(
    customer, django_capture_on_commit_callbacks
):
    now = timezone.now()
    fresh, old, retry, later, leased, expired, sent = (enqueue(customer, key=f"k{i}")[0] for i in range(7))
    Notification.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(minutes=5))
    Notification.objects.filter(pk=retry.pk).update(attempts=1, next_attempt_at=now - dt.timedelta(seconds=1))
    Notification.objects.filter(pk=later.pk).update(attempts=1, next_attempt_at=now + dt.timedelta(minutes=5))
    Notification.objects.filter(pk=leased.pk).update(
        status=NotificationStatus.SENDING, lease_until=now + dt.timedelta(minutes=5)
    )
    Notification.objects.filter(pk=expired.pk).update(
        status=NotificationStatus.SENDING, lease_until=now - dt.timedelta(seconds=1), attempts=1
    )
    Notification.objects.filter(pk=sent.pk).update(
        status=NotificationStatus.SENT, created_at=now - dt.timedelta(hours=1)
    )

    assert notifications_requeue_due() == 3  # old, retry, expired (in-process: delivered at once)
    status = dict(Notification.objects.values_list("pk", "status"))
    assert {pk for pk, s in status.items() if s == NotificationStatus.SENT} == {
        old.pk,
        retry.pk,
        expired.pk,
        sent.pk,
    }
    assert status[fresh.pk] == status[later.pk] == NotificationStatus.PENDING
    assert status[leased.pk] == NotificationStatus.SENDING
    assert len(mail.outbox) == 3
    # A second sweep right away publishes nothing new.
    assert notifications_requeue_due() == 0


def test_broker_down_does_not_fail_the_commit(customer, settings, caplog):
    """With a broker that refuses connections, the row commits, the publish error is only logged."""
    from config.celery import app

    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    saved = {k: app.conf[k] for k in ("broker_url", "broker_write_url", "broker_transport_options")}
    app.conf.broker_url = app.conf.broker_write_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app.conf.broker_transport_options = {"max_retries": 0, "socket_connect_timeout": 0.5}
    app._pool = None
    app.amqp._producer_pool = None
    try:
        with transaction.atomic():
            (n,) = enqueue(customer)
        assert services.enqueue_delivery(notification_id=n.pk) is False
        assert "the outbox sweeper will retry" in caplog.text
        # The breaker: further on-commit publishes are skipped for a while, not retried per request.
        assert services.enqueue_delivery(notification_id=n.pk) is False
        # The sweeper reports the broker error and publishes nothing.
        Notification.objects.filter(pk=n.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
        assert notifications_requeue_due() == 0
        n.refresh_from_db()
        assert n.status == NotificationStatus.PENDING
        assert n.kicked_at is None
    finally:
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None


def test_outbox_lag_is_the_age_of_the_oldest_due_row(customer):
    from notifications.selectors import outbox_lag_seconds

    assert outbox_lag_seconds() == 0.0
    (n,) = enqueue(customer)
    Notification.objects.filter(pk=n.pk).update(created_at=timezone.now() - dt.timedelta(seconds=90))
    assert 89 < outbox_lag_seconds() < 120
    notification_deliver(notification_id=n.pk)
    assert outbox_lag_seconds() == 0.0


def test_a_slow_batch_hands_the_rest_to_a_new_task(customer, monkeypatch):
    """Past the time budget, the unclaimed rest goes to a new task (before the task time limit hits)."""
    rows = [enqueue(customer, key=f"slow:{i}")[0] for i in range(45)]
    ticks = iter([0.0, 0.0])  # budget start, first group; every later check is past the budget

    class Clock:
        @staticmethod
        def monotonic():
            return next(ticks, 1000.0)

    handed = []
    monkeypatch.setattr(delivery, "time", Clock)
    monkeypatch.setattr(
        delivery, "enqueue_deliveries", lambda *, notification_ids: handed.extend(notification_ids)
    )
    counts = services.notifications_deliver(notification_ids=[r.pk for r in rows])
    assert counts == {"sent": 20, "handed_on": 25}
    assert handed == [r.pk for r in rows[20:]]
    assert len(mail.outbox) == 20
    assert Notification.objects.filter(status=NotificationStatus.PENDING).count() == 25


@pytest.mark.parametrize(
    ("event", "context", "expected"),
    [
        (
            NotificationEvent.PICKUP_REMINDER,
            {
                "order_number": "P1",
                "store_name": "Shibuya",
                "pickup_code": "123456",
                "expires_at": "2026-11-30",
            },
            ["Reminder: order P1 is waiting for you", "123456", "by 2026-11-30"],
        ),
        (
            NotificationEvent.PICKUP_EXPIRED,
            {"order_number": "P1", "store_name": "Shibuya", "refund_amount": "1980.00", "currency": "JPY"},
            ["Order P1 was not collected and has been cancelled", "1980.00 JPY"],
        ),
        (
            NotificationEvent.RETURN_RECEIVED,
            {"order_number": "P1", "return_number": "R9", "store_name": "Shibuya"},
            ["We received your return R9", "at Shibuya"],
        ),
    ],
)
def test_later_flows_call_the_same_service(db, event, context, expected):
    """Pickup reminders/expiry and returns plug in through notification_enqueue (their issues land later)."""
    c = Customer.objects.create(email="later@example.com", language="en")
    (n,) = notification_enqueue(event=event, customer=c, context=context, dedupe_key=f"{event}:P1")
    assert notification_deliver(notification_id=n.pk) == NotificationStatus.SENT
    text = mail.outbox[0].subject + "\n" + mail.outbox[0].body
    for piece in expected:
        assert piece in text
