"""Back-in-stock: subscribe (API), restocks through the real stock services, batches and waves."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from config.errors import InvalidInput
from inventory.services import (
    Line,
    stock_receive,
    stock_release,
    stock_reserve,
    stock_return_restock,
    transfer_create,
    transfer_receive,
)
from notifications.channels import LocmemSmsProvider
from notifications.models import (
    BackInStockSubscription,
    Notification,
    NotificationStatus,
    RestockAlert,
    RestockAlertStatus,
    SubscriptionStatus,
)
from notifications.services import (
    back_in_stock_subscribe,
    back_in_stock_token,
    restock_alerts_advance,
)
from stores.models import Role
from tests.factories import LocationFactory, SkuFactory, stock

pytestmark = pytest.mark.django_db
URL = "/api/v1/back-in-stock/"


def subscribe_many(sku, n, *, location=None, prefix="s"):
    return [
        back_in_stock_subscribe(sku=sku, location=location, email=f"{prefix}{i}@example.com")[0]
        for i in range(n)
    ]


def alerted_emails():
    return sorted(m.to[0] for m in mail.outbox)


# --- API -----------------------------------------------------------------------------------


def test_subscribe_is_idempotent_201_then_200(storefront, sku, store):
    body = {"sku": sku.code, "email": "Shopper@Example.com", "location": store.code}
    first = storefront.post(URL, body, format="json")
    assert first.status_code == 201, first.data
    assert first.data["email"] == "shopper@example.com"
    assert first.data["location"] == store.code
    again = storefront.post(URL, {**body, "email": "shopper@example.com"}, format="json")
    assert again.status_code == 200
    assert again.data["id"] == first.data["id"]
    anywhere = storefront.post(URL, {"sku": sku.code, "email": "shopper@example.com"}, format="json")
    assert anywhere.status_code == 201
    assert anywhere.data["location"] is None
    assert BackInStockSubscription.objects.count() == 2


def test_subscribe_by_phone(storefront, sku):
    r = storefront.post(URL, {"sku": sku.code, "phone": "+81 90-1234-5678", "language": "ko"}, format="json")
    assert r.status_code == 201
    assert r.data["phone"] == "+819012345678"
    assert r.data["language"] == "ko"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"email": "a@example.com", "phone": "+819012345678"}, 400, "email"),
        ({}, 400, "email"),
        ({"email": "not-an-email"}, 400, "email"),
        ({"phone": "090-1234"}, 400, "phone"),
        ({"phone": "+81abc"}, 400, "phone"),
        ({"email": "a@example.com", "language": "fr"}, 400, "language"),
        ({"email": "a@example.com", "sku": "NOPE"}, 404, None),
        ({"email": "a@example.com", "location": "NOWHERE"}, 404, None),
    ],
)
def test_bad_subscriptions_are_rejected_and_write_nothing(storefront, sku, body, status, field):
    r = storefront.post(URL, {"sku": sku.code, **body}, format="json")
    assert r.status_code == status, r.data
    assert set(r.data) == {"error"}
    if field:
        assert field in r.data["error"]["details"]["fields"]
    assert BackInStockSubscription.objects.count() == 0


def test_subscribe_needs_the_storefront_role(anon_client, api_client_for, sku, store):
    body = {"sku": sku.code, "email": "a@example.com"}
    assert anon_client.post(URL, body, format="json").status_code == 401
    associate = api_client_for(Role.ASSOCIATE, locations=[store])
    assert associate.post(URL, body, format="json").status_code == 403


def test_subscribe_is_throttled(storefront, sku, settings):
    """Per account and per contact: tests/test_throttling.py."""
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "subscribe": "3/minute"},
    }
    codes = [
        storefront.post(URL, {"sku": sku.code, "email": f"t{i}@example.com"}, format="json").status_code
        for i in range(4)
    ]
    assert codes == [201, 201, 201, 429]
    assert BackInStockSubscription.objects.count() == 3


def test_unsubscribe_with_the_signed_token(anon_client, sku):
    sub, _ = back_in_stock_subscribe(sku=sku, email="a@example.com")
    token = back_in_stock_token(sub)
    assert anon_client.delete(f"{URL}{token}/").status_code == 204
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.UNSUBSCRIBED
    assert anon_client.delete(f"{URL}{token}/").status_code == 204  # again: still gone
    assert anon_client.delete(f"{URL}{token}x/").status_code == 404
    assert anon_client.delete(f"{URL}garbage/").status_code == 404
    forged = token.replace(token.split(":")[0], "eyJzIjoxMjM0fQ")
    r = anon_client.delete(f"{URL}{forged}/")
    assert r.status_code == 404
    assert r.data["error"]["code"] == "unknown_subscription"


def test_subscribe_by_a_national_phone_number(storefront, sku):
    r = storefront.post(URL, {"sku": sku.code, "phone": "090-1234-5678"}, format="json")
    assert r.status_code == 201, r.data
    assert r.data["phone"] == "+819012345678"


def test_a_phone_written_two_ways_is_one_subscription(sku, store):
    """Before config/contacts.py the service kept "09012345678" and "+819012345678": two contacts."""
    first, created = back_in_stock_subscribe(sku=sku, location=store, phone="090-1234-5678")
    again, created_again = back_in_stock_subscribe(sku=sku, location=store, phone="+81 90 1234 5678")
    assert (created, created_again, again.pk) == (True, False, first.pk)
    first.refresh_from_db()
    assert (first.phone, first.scope_key) == ("+819012345678", f"{sku.pk}:{store.pk}:+819012345678")


@pytest.mark.parametrize(
    ("contact", "field"), [({"phone": "090-1234"}, "phone"), ({"email": "nope"}, "email")]
)
def test_the_service_refuses_what_is_no_contact(sku, contact, field):
    with pytest.raises(InvalidInput) as exc:
        back_in_stock_subscribe(sku=sku, **contact)
    assert exc.value.details["field"] == field
    assert BackInStockSubscription.objects.count() == 0


def test_subscribing_again_after_an_alert_reactivates_the_same_row(sku):
    sub, _ = back_in_stock_subscribe(sku=sku, email="a@example.com")
    BackInStockSubscription.objects.filter(pk=sub.pk).update(status=SubscriptionStatus.NOTIFIED)
    again, created = back_in_stock_subscribe(sku=sku, email="A@example.com")
    assert (again.pk, created, again.status) == (sub.pk, False, SubscriptionStatus.ACTIVE)


# --- Restocks through the stock services ------------------------------------------------------


def test_receipt_at_the_store_alerts_store_and_anywhere_subscribers_once(
    store, sku, django_capture_on_commit_callbacks
):
    at_store = subscribe_many(sku, 2, location=store, prefix="store")
    anywhere = subscribe_many(sku, 1, prefix="any")
    other_sku = SkuFactory()
    subscribe_many(other_sku, 1, prefix="other")
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 5)], reference="PO-1")
    assert alerted_emails() == ["any0@example.com", "store0@example.com", "store1@example.com"]
    assert {
        s.status for s in BackInStockSubscription.objects.filter(pk__in=[s.pk for s in at_store + anywhere])
    } == {SubscriptionStatus.NOTIFIED}
    body = next(m for m in mail.outbox if m.to == ["store0@example.com"]).body
    assert "Black tee M" in body
    assert "Shibuya" in body
    token = back_in_stock_token(at_store[0])
    assert f"/back-in-stock/unsubscribe/{token}" in body
    # More stock while still available: not a restock, nobody is alerted again.
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 5)], reference="PO-2")
    assert len(mail.outbox) == 3
    assert Notification.objects.filter(status=NotificationStatus.SENT).count() == 3


def test_anywhere_subscribers_wait_while_another_location_has_it(
    store, warehouse, sku, django_capture_on_commit_callbacks
):
    stock(warehouse, sku, 4)
    subscribe_many(sku, 1, prefix="any")
    subscribe_many(sku, 1, location=store, prefix="store")
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 1)], reference="PO-1")
    assert alerted_emails() == ["store0@example.com"]


def test_a_store_subscription_ignores_other_stores(store, sku, django_capture_on_commit_callbacks):
    other = LocationFactory()
    subscribe_many(sku, 1, location=store)
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(other.pk, sku.pk, 3)], reference="PO-1")
    assert mail.outbox == []
    assert RestockAlert.objects.count() == 0


def test_cancellation_release_return_and_transfer_are_restocks(
    store, warehouse, sku, django_capture_on_commit_callbacks
):
    stock(store, sku, 1)
    stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="ORDER1")
    subscribe_many(sku, 1, location=store, prefix="release")
    with django_capture_on_commit_callbacks(execute=True):
        stock_release(lines=[Line(store.pk, sku.pk, 1)], reference="ORDER1", reason="cancelled")
    assert alerted_emails() == ["release0@example.com"]

    sku2, sku3 = SkuFactory(), SkuFactory()
    subscribe_many(sku2, 1, location=store, prefix="return")
    subscribe_many(sku3, 1, location=store, prefix="transfer")
    with django_capture_on_commit_callbacks(execute=True):
        stock_return_restock(lines=[Line(store.pk, sku2.pk, 1)], reference="RMA-1")
    stock(warehouse, sku3, 2)
    t = transfer_create(from_location=warehouse, to_location=store, lines=[(sku3, 2)])
    with django_capture_on_commit_callbacks(execute=True):
        transfer_receive(transfer_id=t.pk)
    assert alerted_emails() == ["release0@example.com", "return0@example.com", "transfer0@example.com"]
    kinds = set(RestockAlert.objects.values_list("kind", flat=True))
    assert {"release", "return_restock", "transfer_in"} <= kinds


def test_sms_subscribers_get_an_sms(store, sku, django_capture_on_commit_callbacks):
    back_in_stock_subscribe(sku=sku, location=store, phone="+819055556666", language="ja")
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 2)], reference="PO-1")
    (sms,) = LocmemSmsProvider.outbox
    assert sms["to"] == "+819055556666"
    assert "再入荷" in sms["body"]


def test_an_sms_goes_to_the_e164_number_of_a_phone_kept_in_national_form(
    store, sku, django_capture_on_commit_callbacks
):
    """A subscription written before phones were normalised (the data migration leaves a number
    it cannot rewrite as it is): the SMS provider still gets E.164."""
    BackInStockSubscription.objects.create(
        sku=sku, location=store, phone="09055556666", scope_key=f"{sku.pk}:{store.pk}:09055556666"
    )
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 2)], reference="PO-1")
    (sms,) = LocmemSmsProvider.outbox
    assert sms["to"] == "+819055556666"
    assert Notification.objects.get().status == NotificationStatus.SENT


def test_unsubscribed_and_late_subscribers_are_not_in_the_alert(
    store, sku, django_capture_on_commit_callbacks
):
    gone, stays = subscribe_many(sku, 2, location=store)
    gone.status = SubscriptionStatus.UNSUBSCRIBED
    gone.save()
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 2)], reference="PO-1")
    assert alerted_emails() == [stays.email]


def test_waves_alert_a_multiple_of_what_came_back_earliest_first(
    store, sku, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "BACK_IN_STOCK_WAVE_MULTIPLIER": 3}
    subs = subscribe_many(sku, 10, location=store)
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 1)], reference="PO-1")
    assert alerted_emails() == sorted(s.email for s in subs[:3])
    alert = RestockAlert.objects.get()
    assert (alert.status, alert.wave, alert.alerted) == (RestockAlertStatus.WAITING, 1, 3)
    assert alert.next_wave_at > timezone.now() + dt.timedelta(minutes=14)

    # Not due yet: nothing happens.
    with django_capture_on_commit_callbacks(execute=True):
        assert restock_alerts_advance() == 0
    assert len(mail.outbox) == 3

    # Due, and 2 units are available now: the next 6 earliest.
    stock_receive(lines=[Line(store.pk, sku.pk, 1)], reference="PO-2")
    RestockAlert.objects.filter(pk=alert.pk).update(next_wave_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert restock_alerts_advance() == 1
    assert alerted_emails() == sorted(s.email for s in subs[:9])
    alert.refresh_from_db()
    assert (alert.status, alert.wave, alert.alerted) == (RestockAlertStatus.WAITING, 2, 9)

    # Sold out before the third wave: the last subscriber waits for the next restock.
    stock_reserve(lines=[Line(store.pk, sku.pk, 2)], reference="ORDER9")
    RestockAlert.objects.filter(pk=alert.pk).update(next_wave_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        restock_alerts_advance()
    alert.refresh_from_db()
    assert alert.status == RestockAlertStatus.DONE
    assert len(mail.outbox) == 9
    assert BackInStockSubscription.objects.get(pk=subs[9].pk).status == SubscriptionStatus.ACTIVE


def test_batches_cover_everyone_exactly_once(store, sku, settings, django_capture_on_commit_callbacks):
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "BACK_IN_STOCK_WAVE_MULTIPLIER": 0,
        "BACK_IN_STOCK_BATCH_SIZE": 2,
    }
    subs = subscribe_many(sku, 5, location=store)
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 1)], reference="PO-1")
    assert alerted_emails() == sorted(s.email for s in subs)
    alert = RestockAlert.objects.get()
    assert alert.status == RestockAlertStatus.DONE
    assert alert.alerted == 5
    # The batch task run again (a redelivered message): nobody is alerted twice.
    from notifications.services import restock_alert_process_batch

    RestockAlert.objects.filter(pk=alert.pk).update(status=RestockAlertStatus.SENDING)
    assert restock_alert_process_batch(restock_alert_id=alert.pk) == []
    assert len(mail.outbox) == 5


def test_a_new_restock_supersedes_the_waiting_one(store, sku, settings, django_capture_on_commit_callbacks):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "BACK_IN_STOCK_WAVE_MULTIPLIER": 1}
    subscribe_many(sku, 4, location=store)
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 1)], reference="PO-1")
    stock_reserve(lines=[Line(store.pk, sku.pk, 1)], reference="O1")
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(lines=[Line(store.pk, sku.pk, 1)], reference="PO-2")
    first, second = RestockAlert.objects.order_by("id")
    assert first.status == RestockAlertStatus.SUPERSEDED
    assert second.status == RestockAlertStatus.WAITING
    assert len(mail.outbox) == 2  # one per restock, different people
    assert len(set(alerted_emails())) == 2
