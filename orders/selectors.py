"""Reads of customers, orders, fulfillments and events, scoped to who is asking."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from config.errors import Forbidden
from stores.models import Role
from stores.selectors import user_location_ids, user_role

from .exceptions import UnknownCustomer, UnknownFulfillment, UnknownOrder
from .models import Customer, Fulfillment, FulfillmentLine, FulfillmentStatus, Order, OrderEvent, OrderLine


def _order_qs() -> QuerySet[Order]:
    return Order.objects.select_related("pickup_location", "placed_at_location").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("sku").order_by("pk")),
        Prefetch(
            "fulfillments",
            queryset=Fulfillment.objects.select_related("location")
            .prefetch_related(
                Prefetch("lines", queryset=FulfillmentLine.objects.select_related("sku").order_by("pk"))
            )
            .order_by("pk"),
        ),
    )


def sees_all_orders(user) -> bool:
    return user.is_superuser or user_role(user) == Role.STOREFRONT


def order_list(*, user) -> QuerySet[Order]:
    """Storefront and superusers see every order; staff the orders touching their locations."""
    qs = _order_qs()
    if sees_all_orders(user):
        return qs.order_by("-id")
    ids = user_location_ids(user) or set()
    visible = Order.objects.filter(
        Q(fulfillments__location_id__in=ids)
        | Q(pickup_location_id__in=ids)
        | Q(placed_at_location_id__in=ids)
    ).values("pk")
    return qs.filter(pk__in=visible).order_by("-id")


def order_get(*, number: str, user) -> Order:
    order = order_list(user=user).filter(number=number).first()
    if order is None:
        raise UnknownOrder(f"Unknown order {number!r}.", details={"order": number})
    return order


def order_events(*, order: Order) -> QuerySet[OrderEvent]:
    return OrderEvent.objects.filter(order=order).select_related("actor", "fulfillment").order_by("pk")


def fulfillment_list(*, user) -> QuerySet[Fulfillment]:
    """Fulfillments at the user's locations, oldest first (the work queue)."""
    qs = Fulfillment.objects.select_related("location", "order", "claimed_by").prefetch_related(
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
    role = user_role(user)
    if not (user.is_superuser or role in (Role.STOREFRONT, Role.MANAGER)):
        raise Forbidden("Customers are visible to the storefront and managers.")
    customer = (
        Customer.objects.select_related("preferred_location").filter(pk=customer_id).first()
        if str(customer_id).isdigit()
        else None
    )
    if customer is None:
        raise UnknownCustomer(f"Unknown customer {customer_id}.", details={"customer": customer_id})
    return customer


def customer_orders(*, customer: Customer, limit: int = 50) -> list[Order]:
    return list(Order.objects.filter(customer=customer).order_by("-id")[:limit])
