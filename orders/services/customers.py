"""Customers: one person across channels, matched by email or phone."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from config.errors import InvalidInput, PolicyViolation
from stores.models import Location

from ..exceptions import UnknownCustomer, UnknownLocation
from ..models import Customer, NotificationChannel
from .inputs import CustomerKeys, customer_keys


@transaction.atomic
def customer_find_or_create(
    *, email: str | None = None, phone: str | None = None, name: str = ""
) -> Customer:
    """One customer across channels: the same email OR phone is the same customer.

    An email match wins over a phone match. A known customer's name is updated when a new one is
    given, and a missing email or phone is filled in when nobody else has it. One query for a
    returning customer (two when something changed); two for a new one.
    """
    keys = customer_keys(email=email, phone=phone, name=name)
    customer = customer_matching(customers_with(keys), keys)
    return customer if customer.pk is not None else customer_insert(customer)


def customers_with(keys: CustomerKeys) -> list[Customer]:
    """The customers holding the email or the phone (at most two: one each)."""
    cond = Q()
    if keys.email:
        cond |= Q(email=keys.email)
    if keys.phone:
        cond |= Q(phone=keys.phone)
    return list(Customer.objects.filter(cond).order_by("pk")[:2])


def customer_matching(candidates: list[Customer], keys: CustomerKeys, *, update: bool = True) -> Customer:
    """The customer among `candidates` (those holding the email or the phone), updated with what
    `keys` adds; or a new, unsaved Customer when there is none.

    `update=False` (an order staff place at the till): the match only links the order to the
    customer's history; the stored customer is never renamed nor given the email or phone the
    till typed in (staff must not be able to change, or learn, a customer's stored details).
    """
    if not candidates:
        return Customer(
            email=keys.email,
            phone=keys.phone,
            name=keys.name,
            notify_channels=[NotificationChannel.EMAIL if keys.email else NotificationChannel.SMS],
        )
    customer = next((c for c in candidates if keys.email and c.email == keys.email), candidates[0])
    if not update:
        return customer
    others = [c for c in candidates if c is not customer]
    updates = {}
    if keys.name and keys.name != customer.name:
        updates["name"] = keys.name
    if keys.email and not customer.email and not any(o.email == keys.email for o in others):
        updates["email"] = keys.email
    if keys.phone and not customer.phone and not any(o.phone == keys.phone for o in others):
        updates["phone"] = keys.phone
    if updates:
        Customer.objects.filter(pk=customer.pk).update(**updates)
        for field, value in updates.items():
            setattr(customer, field, value)
    return customer


def customer_insert(customer: Customer, *, update: bool = True) -> Customer:
    """Save a new customer; if a concurrent request created them just now, that row instead
    (updated as `customer_matching(..., update=update)` says).

    The INSERT runs in a savepoint, so a unique-constraint clash leaves the caller's transaction
    usable, and the re-read then sees the other transaction's committed row.
    """
    try:
        with transaction.atomic():
            customer.save(force_insert=True)
        return customer
    except IntegrityError:
        keys = CustomerKeys(customer.email, customer.phone, customer.name)
        existing = customer_matching(customers_with(keys), keys, update=update)
        if existing.pk is None:
            raise
        return existing


@transaction.atomic
def customer_update_preferences(
    *,
    customer_id: int,
    notify_channels: Sequence[str] | None = None,
    language: str | None = None,
    preferred_location: str | None = None,
    clear_preferred_location: bool = False,
) -> Customer:
    """Notification channels (a subset of email/sms, each needing that contact), language, preferred store."""
    try:
        customer = Customer.objects.select_for_update().get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise UnknownCustomer(f"Unknown customer {customer_id}.", details={"customer": customer_id}) from None
    fields = []
    if notify_channels is not None:
        customer.notify_channels = _channels(customer, notify_channels)
        fields.append("notify_channels")
    if language is not None:
        languages = {code for code, _ in settings.LANGUAGES}
        if language not in languages:
            raise InvalidInput(
                f"Unknown language {language!r}.", details={"field": "language", "allowed": sorted(languages)}
            )
        customer.language = language
        fields.append("language")
    if clear_preferred_location:
        customer.preferred_location = None
        fields.append("preferred_location")
    elif preferred_location is not None:
        customer.preferred_location = _preferred_store(preferred_location)
        fields.append("preferred_location")
    if fields:
        customer.save(update_fields=fields)
    return customer


def _channels(customer: Customer, notify_channels: Sequence[str]) -> list[str]:
    channels = list(dict.fromkeys(notify_channels))
    valid = set(NotificationChannel.values)
    bad = [c for c in channels if c not in valid]
    if bad:
        raise InvalidInput(
            f"Unknown notification channel(s): {', '.join(map(str, bad))}.",
            details={"field": "notify_channels", "allowed": sorted(valid)},
        )
    if NotificationChannel.EMAIL in channels and not customer.email:
        raise PolicyViolation(
            "The customer has no email address.", code="no_email", details={"field": "notify_channels"}
        )
    if NotificationChannel.SMS in channels and not customer.phone:
        raise PolicyViolation(
            "The customer has no phone number.", code="no_phone", details={"field": "notify_channels"}
        )
    return channels


def _preferred_store(code: str) -> Location:
    loc = Location.objects.filter(code=code).first()
    if loc is None:
        raise UnknownLocation(f"Unknown location {code!r}.", details={"field": "preferred_location"})
    if not (loc.is_active and loc.offers_pickup and loc.kind == "store"):
        raise PolicyViolation(
            f"{loc.code} is not a store customers can use.",
            code="not_a_store",
            details={"field": "preferred_location"},
        )
    return loc
