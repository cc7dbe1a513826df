"""Reads of customers, orders, fulfillments and events, scoped to who is asking."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from config.errors import Forbidden
from stores.models import Role
from stores.selectors import user_is_network_wide, user_location_ids, user_role

from .exceptions import UnknownCustomer, UnknownFulfillment, UnknownOrder
from .models import (
    Customer,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderLine,
    OrderNote,
)


def _order_qs() -> QuerySet[Order]:
    return Order.objects.select_related("pickup_location", "placed_at_location").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("sku").order_by("pk")),
        Prefetch(
            "fulfillments",
            queryset=Fulfillment.objects.select_related("location", "transfer")
            .prefetch_related(
                Prefetch("lines", queryset=FulfillmentLine.objects.select_related("sku").order_by("pk"))
            )
            .order_by("pk"),
        ),
        Prefetch("notes", queryset=order_notes_qs()),
    )


def order_notes_qs() -> QuerySet[OrderNote]:
    return OrderNote.objects.select_related("author").order_by("pk")


def order_notes(*, order: Order) -> QuerySet[OrderNote]:
    """The notes of an order already checked visible (`order_get`), oldest first."""
    return order_notes_qs().filter(order=order)


def is_storefront(user) -> bool:
    return not user.is_superuser and user_role(user) == Role.STOREFRONT


def sees_customers(user) -> bool:
    """Who may read whole customers at all (GET /customers/{id}/): the storefront, managers and
    superusers; which customers is `visible_customers`."""
    return user.is_superuser or user_role(user) in (Role.STOREFRONT, Role.MANAGER)


def _served(user, customer_ref: OuterRef) -> Exists:
    """The storefront account serves the customer: it placed at least one of their orders.

    A semi-join on the customer's orders (Order.customer is indexed), never a scan of every order
    the account placed (Order.placed_by is deliberately not indexed)."""
    return Exists(Order.objects.filter(customer_id=customer_ref, placed_by_id=user.pk))


def visible_orders(qs: QuerySet[Order], user) -> QuerySet[Order]:
    """The one rule of which orders `user` may see (docs/security.md), applied to `qs`.

    Superusers and network-wide managers: every order. The storefront: every order (every channel)
    of the customers it serves. Staff: the orders touching their locations (a fulfillment there,
    the pickup store or the till's store); none when they have no location.
    """
    if user_is_network_wide(user):
        return qs
    if is_storefront(user):
        return qs.filter(_served(user, OuterRef("customer_id")))
    ids = user_location_ids(user) or set()
    at_my_locations = Order.objects.filter(
        Q(fulfillments__location_id__in=ids)
        | Q(pickup_location_id__in=ids)
        | Q(placed_at_location_id__in=ids)
    ).values("pk")
    return qs.filter(pk__in=at_my_locations)


def visible_customers(qs: QuerySet[Customer], user) -> QuerySet[Customer]:
    """The customers `user` may read whole (on top of `sees_customers`): everyone for superusers and
    network-wide managers, the ones it serves for the storefront, and for a scoped manager the
    customers with an order they see (`visible_orders`)."""
    if user_is_network_wide(user):
        return qs
    if is_storefront(user):
        return qs.filter(_served(user, OuterRef("pk")))
    return qs.filter(Exists(visible_orders(Order.objects.all(), user).filter(customer_id=OuterRef("pk"))))


def order_list(*, user) -> QuerySet[Order]:
    """The orders `user` may see (`visible_orders`), newest first."""
    return visible_orders(_order_qs(), user).order_by("-id")


def order_filter_contact(qs: QuerySet[Order], *, user, email: str | None = None, phone: str | None = None):
    """Orders by a customer's (normalised) email or phone. Who may read the customer (the
    storefront, managers, superusers: `sees_customers`) finds all the customer's orders they see;
    other staff only the orders placed with that contact (what those orders show)."""
    whole = sees_customers(user)
    if email is not None:
        qs = qs.filter(customer__email=email) if whole else qs.filter(contact_email=email)
    if phone is not None:
        qs = qs.filter(customer__phone=phone) if whole else qs.filter(contact_phone=phone)
    return qs


def order_get(*, number: str, user) -> Order:
    """The order, when `user` may see it (one query, with a semi-join for the storefront); 404 otherwise."""
    order = order_list(user=user).filter(number=number).first()
    if order is None:
        raise UnknownOrder(f"Unknown order {number!r}.", details={"order": number})
    return order


def order_events(*, order: Order) -> QuerySet[OrderEvent]:
    return OrderEvent.objects.filter(order=order).select_related("actor", "fulfillment").order_by("pk")


def fulfillment_list(*, user) -> QuerySet[Fulfillment]:
    """Fulfillments at the user's locations, oldest first (the work queue)."""
    qs = Fulfillment.objects.select_related("location", "order", "claimed_by", "transfer").prefetch_related(
        Prefetch("lines", queryset=FulfillmentLine.objects.select_related("sku").order_by("pk"))
    )
    ids = user_location_ids(user)
    if ids is not None:
        qs = qs.filter(location_id__in=ids)
    return qs.order_by("pk")


def fulfillment_get(*, fulfillment_id, user) -> Fulfillment:
    f = (
        fulfillment_list(user=user).filter(pk=fulfillment_id).first()
        if str(fulfillment_id).isdigit()
        else None
    )
    if f is None:
        raise UnknownFulfillment(
            f"Unknown fulfillment {fulfillment_id}.", details={"fulfillment": fulfillment_id}
        )
    return f


def fulfillment_queue(*, location_ids) -> QuerySet[Fulfillment]:
    return fulfillment_list_all().filter(location_id__in=location_ids, status=FulfillmentStatus.PENDING)


def fulfillment_list_all() -> QuerySet[Fulfillment]:
    return Fulfillment.objects.select_related("location", "order").order_by("pk")


def customer_get(*, customer_id, user) -> Customer:
    """The customer, when `user` may read them: 403 for roles that never may (associates,
    warehouse staff), 404 for a customer they may not see (`visible_customers`) or nobody has."""
    if not sees_customers(user):
        raise Forbidden("Customers are visible to the storefront and managers.")
    customer = (
        visible_customers(Customer.objects.select_related("preferred_location"), user)
        .filter(pk=customer_id)
        .first()
        if str(customer_id).isdigit()
        else None
    )
    if customer is None:
        raise UnknownCustomer(f"Unknown customer {customer_id}.", details={"customer": customer_id})
    return customer


def customer_orders(*, customer: Customer, user, limit: int = 50) -> list[Order]:
    """The customer's orders `user` may see, newest first (a scoped manager: those at their locations)."""
    return list(visible_orders(Order.objects.filter(customer=customer), user).order_by("-id")[:limit])
