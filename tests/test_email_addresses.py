"""Email addresses in back-in-stock subscriptions and create_api_user: one normaliser
(config.contacts.normalise_email), one stored form. Orders: tests/orders/test_emails.py."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from notifications.models import BackInStockSubscription

pytestmark = pytest.mark.django_db

BAD = [
    "x\N{GRINNING FACE}@example.com",
    "user@example.com.",
    "a b@example.com",
    "x" * 65 + "@example.com",
    "x@" + ".".join(["a" * 63] * 4) + ".com",
]


@pytest.mark.parametrize("bad", BAD)
def test_back_in_stock_refuses_a_bad_email_naming_the_field(storefront, sku, bad):
    r = storefront.post("/api/v1/back-in-stock/", {"sku": sku.code, "email": bad}, format="json")
    assert r.status_code == 400, r.content
    assert list(r.json()["error"]["details"]["fields"]) == ["email"]
    assert BackInStockSubscription.objects.count() == 0


def test_back_in_stock_keeps_an_idn_email_in_ascii(storefront, sku):
    r = storefront.post(
        "/api/v1/back-in-stock/", {"sku": sku.code, "email": "A@Bücher.example"}, format="json"
    )
    assert r.status_code == 201, r.content
    assert r.json()["email"] == "a@xn--bcher-kva.example"
    same = storefront.post(
        "/api/v1/back-in-stock/", {"sku": sku.code, "email": "a@xn--bcher-kva.example"}, format="json"
    )
    assert same.status_code == 200
    assert BackInStockSubscription.objects.get().email == "a@xn--bcher-kva.example"


def test_create_api_user_normalises_and_refuses_emails():
    call_command(
        "create_api_user",
        "--username",
        "shop",
        "--role",
        "storefront",
        "--email",
        "Ops@Bücher.example",
        stdout=StringIO(),
    )
    assert get_user_model().objects.get(username="shop").email == "ops@xn--bcher-kva.example"
    with pytest.raises(CommandError, match="email is not a valid email address"):
        call_command(
            "create_api_user",
            "--username",
            "shop",
            "--role",
            "storefront",
            "--email",
            "x\N{GRINNING FACE}@example.com",
            stdout=StringIO(),
        )
    assert get_user_model().objects.get(username="shop").email == "ops@xn--bcher-kva.example"


def test_the_per_contact_subscribe_throttle_counts_an_idn_address_typed_either_way(storefront, sku, settings):
    """An address typed with its Unicode domain and with its ASCII one is one contact for the
    per-contact throttle too (it keyed on the lower-cased text before)."""
    from rest_framework.settings import api_settings

    from tests.factories import SkuFactory

    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "subscribe_contact": "1/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    other = SkuFactory(code="OTHER-1")
    first = storefront.post(
        "/api/v1/back-in-stock/", {"sku": sku.code, "email": "a@bücher.example"}, format="json"
    )
    assert first.status_code == 201, first.content
    again = storefront.post(
        "/api/v1/back-in-stock/", {"sku": other.code, "email": "A@xn--bcher-kva.example"}, format="json"
    )
    assert again.status_code == 429, again.content
