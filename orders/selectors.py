"""Reads of customers, orders, fulfillments and events, scoped to who is asking."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from config.db import json_array_sql, json_object_sql, models_from_json, text_cast
from config.errors import Forbidden
from inventory.models import Sku, StockLevel
from stores.models import Location, Role
from stores.selectors import user_location_ids, user_role

from .exceptions import UnknownCustomer, UnknownFulfillment, UnknownOrder
from .models import Customer, Fulfillment, FulfillmentLine, FulfillmentStatus, Order, OrderEvent, OrderLine


def _order_qs() -> QuerySet[Order]:
    return Order.objects.select_related("customer", "pickup_location", "placed_at_location").prefetch_related(
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


@dataclass
class PlacementLookup:
    location: Location | None  # the pickup store asked for, if any and if it exists
    skus: dict[str, Sku]  # by code, the ones that exist
    customers: list[Customer]  # at most two: the email's and the phone's
    available: dict[int, int]  # stock_at_location: units available at the store per SKU id (no row: absent)


def placement_lookup(
    *,
    location_code: str | None,
    sku_codes: list[str],
    email: str | None,
    phone: str | None,
    stock_at_location: bool = False,
) -> PlacementLookup:
    """The pickup store, the lines' SKUs and the customer(s) an order names, in one statement.

    With `stock_at_location`, also the units of those SKUs available at the store, as routing
    counts them (on hand - reserved - safety stock - live holds: expired holds do not count). A
    plain read, not a lock: the guarded reservation is the real check.
    """
    qn = connection.ops.quote_name
    params: list = []
    parts = []
    if location_code:
        parts.append(
            f"(SELECT {text_cast(json_object_sql(Location, 'l'))} FROM {qn(Location._meta.db_table)} l "
            "WHERE l.code = %s)"
        )
        params.append(location_code)
    else:
        parts.append("NULL")
    parts.append(
        f"(SELECT {text_cast(json_array_sql(Sku, 's'))} FROM {qn(Sku._meta.db_table)} s "
        f"WHERE s.code IN ({', '.join(['%s'] * len(sku_codes))}))"
        if sku_codes
        else "NULL"
    )
    params += sku_codes
    if email or phone:
        cond = " OR ".join(c for c, v in (("c.email = %s", email), ("c.phone = %s", phone)) if v)
        parts.append(
            f"(SELECT {text_cast(json_array_sql(Customer, 'c'))} FROM "
            f"(SELECT * FROM {qn(Customer._meta.db_table)} c WHERE {cond} ORDER BY c.id LIMIT 2) c)"
        )
        params += [v for v in (email, phone) if v]
    else:
        parts.append("NULL")
    if stock_at_location and location_code and sku_codes:
        from inventory.db import available_sql

        stock, units = qn(StockLevel._meta.db_table), available_sql("s")
        pair = "json_build_array" if connection.vendor == "postgresql" else "json_array"
        agg = "json_agg" if connection.vendor == "postgresql" else "json_group_array"
        parts.append(
            f"(SELECT {text_cast(f'{agg}({pair}(s.sku_id, {units}))')} "
            f"FROM {stock} s WHERE s.location_id = (SELECT id FROM {qn(Location._meta.db_table)} WHERE code = %s) "
            f"AND s.sku_id IN (SELECT id FROM {qn(Sku._meta.db_table)} WHERE code IN ({', '.join(['%s'] * len(sku_codes))})))"
        )
        params += [timezone.now(), location_code, *sku_codes]
    else:
        parts.append("NULL")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        loc, skus, customers, available = cursor.fetchone()
    locations = models_from_json(Location, loc)
    return PlacementLookup(
        location=locations[0] if locations else None,
        skus={s.code: s for s in models_from_json(Sku, skus)},
        customers=models_from_json(Customer, customers),
        available=dict(json.loads(available or "[]")),
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
