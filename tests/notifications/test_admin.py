"""The admin pages people use: failed notifications with their error, resend, webhooks with deliveries."""

import pytest
from django.core import mail
from django.urls import reverse

from notifications.models import Notification, NotificationStatus, WebhookStatus
from notifications.services import (
    back_in_stock_subscribe,
    notification_enqueue,
    webhook_publish,
    webhook_register,
)
from stores.models import Role
from tests.factories import UserFactory, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    user.save()
    client.force_login(user)
    return client


def test_failed_notifications_show_error_attempts_and_filter(admin_client, customer):
    (n,) = notification_enqueue(event="refund_issued", customer=customer, context={}, dedupe_key="refund:1")
    Notification.objects.filter(pk=n.pk).update(
        status=NotificationStatus.FAILED, attempts=3, last_error="SMTP 554 rejected"
    )
    url = reverse("admin:notifications_notification_changelist")
    page = admin_client.get(url, {"status__exact": "failed"})
    assert page.status_code == 200
    assert b"SMTP 554 rejected" in page.content
    assert b"hana@example.com" in page.content
    assert admin_client.get(url, {"status__exact": "sent"}).content.count(b"hana@example.com") == 0
    assert (
        admin_client.get(reverse("admin:notifications_notification_change", args=[n.pk])).status_code == 200
    )


def test_resend_action_requeues_and_delivers(admin_client, customer, django_capture_on_commit_callbacks):
    (n,) = notification_enqueue(event="refund_issued", customer=customer, context={}, dedupe_key="refund:1")
    Notification.objects.filter(pk=n.pk).update(status=NotificationStatus.FAILED, attempts=3, last_error="x")
    url = reverse("admin:notifications_notification_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(url, {"action": "resend", "_selected_action": [n.pk]}, follow=True)
    assert r.status_code == 200
    assert b"1 notification(s) queued again" in r.content
    n.refresh_from_db()
    assert n.status == NotificationStatus.SENT
    assert len(mail.outbox) == 1


def test_webhook_page_lists_deliveries_and_resumes(admin_client, settings):
    owner = make_staff(role=Role.STOREFRONT)
    ep = webhook_register(owner=owner, url="http://127.0.0.1:9/h", events=["refund.*"])
    webhook_publish(event_type="refund.issued", data={}, dedupe_key="refund:1")
    type(ep).objects.filter(pk=ep.pk).update(status=WebhookStatus.PAUSED, consecutive_failures=10)
    page = admin_client.get(reverse("admin:notifications_webhookendpoint_change", args=[ep.pk]))
    assert page.status_code == 200
    assert b"refund.issued" in page.content
    assert ep.secret.encode() not in page.content
    r = admin_client.post(
        reverse("admin:notifications_webhookendpoint_changelist"),
        {"action": "resume", "_selected_action": [ep.pk]},
        follow=True,
    )
    assert b"1 endpoint(s) resumed" in r.content
    ep.refresh_from_db()
    assert ep.status == WebhookStatus.ACTIVE
    assert ep.consecutive_failures == 0


def test_subscription_and_restock_pages_load(admin_client, sku, store):
    back_in_stock_subscribe(sku=sku, location=store, email="a@example.com")
    for name in ("backinstocksubscription", "restockalert"):
        assert admin_client.get(reverse(f"admin:notifications_{name}_changelist")).status_code == 200


def test_a_subscription_is_found_by_its_phone_as_written_on_paper(admin_client, sku, store):
    back_in_stock_subscribe(sku=sku, location=store, phone="+819012345678")
    back_in_stock_subscribe(sku=sku, location=store, phone="+819011112222")
    url = reverse("admin:notifications_backinstocksubscription_changelist")
    page = admin_client.get(url, {"q": "090-1234-5678"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert list(page.context["cl"].result_list.values_list("phone", flat=True)) == ["+819012345678"]
    assert admin_client.get(url, {"q": "TEE"}).status_code == 200  # not a phone: the usual search


def test_a_notification_page_hides_the_pickup_code(admin_client, customer):
    (n,) = notification_enqueue(
        event="ready_for_pickup",
        customer=customer,
        context={"order_number": "ORD-1", "pickup_code": "K7QM-3XPD", "new_code": False},
        dedupe_key="ready:1",
    )
    page = admin_client.get(reverse("admin:notifications_notification_change", args=[n.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "ORD-1" in html
    assert "(hidden)" in html
    assert "K7QM" not in html
