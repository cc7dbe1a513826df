"""The data migrations that rewrite stored phone numbers in E.164 (config/contacts.py), run
directly on rows written the old ways."""

import importlib
import logging

import pytest
from django.apps import apps

from notifications.models import BackInStockSubscription
from orders.models import Customer
from tests.factories import LocationFactory, SkuFactory

pytestmark = pytest.mark.django_db

customer_phones_to_e164 = importlib.import_module(
    "orders.migrations.0004_customer_phone_e164"
).customer_phones_to_e164
subscription_phones_to_e164 = importlib.import_module(
    "notifications.migrations.0003_subscription_phones_e164"
).subscription_phones_to_e164


def phones(*customers):
    return [Customer.objects.get(pk=c.pk).phone for c in customers]


def test_customer_phones_become_e164():
    demo = Customer.objects.create(phone="+81-3-5555-0001")
    national = Customer.objects.create(phone="090-1111-2222", email="n@example.com")
    done = Customer.objects.create(phone="+819012345678")
    unreadable = Customer.objects.create(phone="12345")
    email_only = Customer.objects.create(email="e@example.com")
    customer_phones_to_e164(apps, None)
    assert phones(demo, national, done, unreadable, email_only) == [
        "+81355550001",
        "+819011112222",
        "+819012345678",
        "12345",
        None,
    ]


def test_customers_whose_phones_would_clash_keep_them_and_are_logged(caplog):
    """customer_phone_unique: two ways of writing one number stay as they are; nobody is deleted."""
    one_way = Customer.objects.create(phone="090 5555 0000")
    other_way = Customer.objects.create(phone="+81 90-5555-0000")
    holder = Customer.objects.create(phone="+819077778888")
    late = Customer.objects.create(phone="090-7777-8888")
    fine = Customer.objects.create(phone="080-1111-2222")
    with caplog.at_level(logging.WARNING):
        customer_phones_to_e164(apps, None)
    assert phones(one_way, other_way, holder, late, fine) == [
        "090 5555 0000",
        "+81 90-5555-0000",
        "+819077778888",
        "090-7777-8888",
        "+818011112222",
    ]
    assert Customer.objects.count() == 5
    assert "3 customers keep their phone" in caplog.text
    assert str(sorted([one_way.pk, other_way.pk, late.pk])) in caplog.text


def test_the_customer_migration_reads_national_numbers_in_the_region_setting(settings):
    settings.OMS = {**settings.OMS, "PHONE_REGION": "US"}
    us = Customer.objects.create(phone="(415) 555-2671")
    customer_phones_to_e164(apps, None)
    assert phones(us) == ["+14155552671"]


def subscription(sku, location, phone):
    return BackInStockSubscription.objects.create(
        sku=sku,
        location=location,
        phone=phone,
        scope_key=f"{sku.pk}:{location.pk if location else '*'}:{phone}",
    )


def test_subscription_phones_and_scope_keys_become_e164():
    sku, store = SkuFactory(), LocationFactory()
    anywhere = subscription(sku, None, "09012345678")
    at_store = subscription(sku, store, "090-1111-2222")
    done = subscription(sku, store, "+819033334444")
    unreadable = subscription(sku, store, "12345")
    by_email = BackInStockSubscription.objects.create(
        sku=sku, email="a@example.com", scope_key=f"{sku.pk}:*:a@example.com"
    )
    subscription_phones_to_e164(apps, None)
    rows = {s.pk: (s.phone, s.scope_key) for s in BackInStockSubscription.objects.all()}
    assert rows == {
        anywhere.pk: ("+819012345678", f"{sku.pk}:*:+819012345678"),
        at_store.pk: ("+819011112222", f"{sku.pk}:{store.pk}:+819011112222"),
        done.pk: ("+819033334444", f"{sku.pk}:{store.pk}:+819033334444"),
        unreadable.pk: ("12345", f"{sku.pk}:{store.pk}:12345"),
        by_email.pk: ("", f"{sku.pk}:*:a@example.com"),
    }


def test_subscriptions_that_would_become_one_keep_their_phone(caplog):
    sku, other_sku, store = SkuFactory(), SkuFactory(), LocationFactory()
    national = subscription(sku, store, "09012345678")
    e164 = subscription(sku, store, "+819012345678")
    elsewhere = subscription(sku, None, "09012345678")  # another scope: no clash
    other = subscription(other_sku, store, "09012345678")  # another SKU: no clash
    with caplog.at_level(logging.WARNING):
        subscription_phones_to_e164(apps, None)
    rows = {s.pk: s.phone for s in BackInStockSubscription.objects.all()}
    assert rows == {
        national.pk: "09012345678",
        e164.pk: "+819012345678",
        elsewhere.pk: "+819012345678",
        other.pk: "+819012345678",
    }
    assert f"ids [{national.pk}]" in caplog.text


emails_to_ascii = importlib.import_module("orders.migrations.0007_emails_ascii").emails_to_ascii
subscription_emails_to_ascii = importlib.import_module(
    "notifications.migrations.0004_subscription_emails_ascii"
).subscription_emails_to_ascii


def test_customer_and_order_emails_become_ascii(caplog):
    """An internationalised domain is rewritten in its ASCII form on customers and on orders'
    contacts; an address the validator refuses, and one that would become another customer's, are
    left as they are and logged."""
    from orders.models import Order

    idn = Customer.objects.create(email="hanako@bücher.example")
    done = Customer.objects.create(email="taro@example.com")
    refused = Customer.objects.create(email="x😀@example.com")
    holder = Customer.objects.create(email="ken@xn--caf-dma.example")
    clash = Customer.objects.create(email="ken@café.example")
    order = Order.objects.create(
        channel="web",
        customer=idn,
        currency="JPY",
        subtotal=0,
        total=0,
        fulfillment_method="ship",
        contact_email="hanako@bücher.example",
    )
    with caplog.at_level(logging.WARNING):
        emails_to_ascii(apps, None)
    emails = [Customer.objects.get(pk=c.pk).email for c in (idn, done, refused, holder, clash)]
    assert emails == [
        "hanako@xn--bcher-kva.example",
        "taro@example.com",
        "x😀@example.com",
        "ken@xn--caf-dma.example",
        "ken@café.example",
    ]
    order.refresh_from_db()
    assert order.contact_email == "hanako@xn--bcher-kva.example"
    assert f"ids [{refused.pk}]" in caplog.text
    assert f"ids [{clash.pk}]" in caplog.text


def test_subscription_emails_and_scope_keys_become_ascii(caplog):
    sku, store = SkuFactory(), LocationFactory()

    def sub(email, location=None):
        key = f"{sku.pk}:{location.pk if location else '*'}:{email}"
        return BackInStockSubscription.objects.create(sku=sku, location=location, email=email, scope_key=key)

    idn = sub("hanako@bücher.example", store)
    fine = sub("taro@example.com")
    twin_ascii = sub("ken@xn--caf-dma.example")
    twin_unicode = sub("ken@café.example")
    with caplog.at_level(logging.WARNING):
        subscription_emails_to_ascii(apps, None)
    rows = {s.pk: (s.email, s.scope_key) for s in BackInStockSubscription.objects.all()}
    assert rows == {
        idn.pk: ("hanako@xn--bcher-kva.example", f"{sku.pk}:{store.pk}:hanako@xn--bcher-kva.example"),
        fine.pk: ("taro@example.com", f"{sku.pk}:*:taro@example.com"),
        twin_ascii.pk: ("ken@xn--caf-dma.example", f"{sku.pk}:*:ken@xn--caf-dma.example"),
        twin_unicode.pk: ("ken@café.example", f"{sku.pk}:*:ken@café.example"),
    }
    assert str(twin_unicode.pk) in caplog.text
