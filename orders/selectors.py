"""Reads of customers, orders, fulfillments and events, scoped to who is asking."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from config.contacts import ContactQuery, QueryKind, contact_query
from config.errors import Forbidden
from stores.models import Compartment, Location, LocationKind, PickupPoint, Role
from stores.selectors import (
    user_is_network_wide,
    user_location_ids,
    user_role,
    user_works_a_returns_desk,
)

from .exceptions import UnknownCustomer, UnknownFulfillment, UnknownOrder
from .models import (
    Customer,
    Fulfillment,
    FulfillmentLine,
    FulfillmentMethod,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderLine,
    OrderNote,
    OrderStatus,
)


def _order_qs() -> QuerySet[Order]:
    return Order.objects.select_related("pickup_location", "placed_at_location").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("sku").order_by("pk")),
        Prefetch(
            "fulfillments",
            queryset=Fulfillment.objects.select_related("location", "compartment__pickup_point", "transfer")
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
    qs = Fulfillment.objects.select_related(
        "location", "order", "claimed_by", "compartment__pickup_point", "transfer"
    ).prefetch_related(
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


# --- The returns desk: finding a purchase (issue 11) --------------------------------------------

# The order's own exact identifiers the desk finds a purchase by, each compared with what was typed
# in its stored form (read like a code: any case, spaces and hyphens ignored, full-width folded;
# orders.services.codes.code_normalise), each indexed: the order number, and the receipt code
# printed on the order confirmation (Order.receipt_code).
ORDER_IDENTIFIERS: tuple[str, ...] = ("number", "receipt_code")

PURCHASES_MAX = 50  # hits per search, whatever is asked: the desk finds, it does not browse
NAME_MIN_LENGTH = 3  # part of a name shorter than this finds nothing (and scans nothing)


class Matched:
    IDENTIFIER = "identifier"  # the order number (or another of ORDER_IDENTIFIERS)
    EMAIL = "email"  # the email given on the order
    PHONE = "phone"  # the phone given on the order
    CUSTOMER = "customer"  # the customer's stored email or phone (an order placed with another contact)
    NAME = "name"  # part of the name given on the order (orders at the user's locations only)


@dataclass(frozen=True)
class PurchaseHit:
    """An order found at the returns desk, with what the desk may show of it.

    `order` comes with its lines (and SKUs), fulfillments (and locations) and pickup store. `own`:
    the order touches the user's locations (or the user sees every order); the desk then shows it
    as the order pages do. An order found elsewhere (`own` False, the returns-desk rule of
    docs/security.md) shows its number, channel, dates, status, amounts, lines, fulfillments and
    pickup store, and of its contact only what the associate typed: use `contact_email`,
    `contact_phone` and `contact_name` here, never the order's own fields, and never its shipping
    address."""

    order: Order
    matched: str  # Matched: what the typed text matched
    own: bool
    typed: str | None  # the typed email or phone as stored (E.164), when the text was one

    @property
    def contact_email(self) -> str | None:
        email = self.order.contact_email
        return email if self.own or (email and email == self.typed) else None

    @property
    def contact_phone(self) -> str | None:
        phone = self.order.contact_phone
        return phone if self.own or (phone and phone == self.typed) else None

    @property
    def contact_name(self) -> str:
        return self.order.contact_name if self.own else ""


def _purchase_qs() -> QuerySet[Order]:
    """An order as the desk lists it: lines with SKUs, fulfillments with locations, the pickup store
    (three queries whatever the number of orders)."""
    return Order.objects.select_related("pickup_location").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("sku").order_by("pk")),
        Prefetch("fulfillments", queryset=Fulfillment.objects.select_related("location").order_by("pk")),
    )


def _exact_match(typed: ContactQuery, *, whole_customer: bool, identifiers: tuple[str, ...]) -> Q | None:
    """The orders the typed text names exactly: its identifiers, or the contact given on the order,
    or (`whole_customer`) every order of the customer with that stored email or phone, through one
    scalar subquery on Customer's unique column, so that PostgreSQL ORs index scans (a BitmapOr)
    rather than joining customers. None: the text can name nothing."""
    from .services.codes import code_normalise  # services import the selectors

    cond = None
    if typed.kind == QueryKind.EMAIL and typed.value:
        cond = Q(contact_email=typed.value)
        stored = Customer.objects.filter(email=typed.value)
    elif typed.kind == QueryKind.PHONE:
        cond = Q(contact_phone=typed.value)
        stored = Customer.objects.filter(phone=typed.value)
    if cond is not None and whole_customer:
        cond |= Q(customer_id=Subquery(stored.values("pk")[:1]))
    if typed.kind in (QueryKind.PHONE, QueryKind.OTHER):  # some order numbers are all digits
        code = code_normalise(typed.text)
        for field in identifiers if code else ():
            cond = Q(**{field: code}) if cond is None else cond | Q(**{field: code})
    return cond


def _matched(order: Order, typed: ContactQuery, identifiers: tuple[str, ...]) -> str:
    from .services.codes import code_normalise  # services import the selectors

    code = code_normalise(typed.text)
    if typed.kind != QueryKind.EMAIL and any(getattr(order, f) == code for f in identifiers):
        return Matched.IDENTIFIER
    if typed.kind == QueryKind.EMAIL and order.contact_email == typed.value:
        return Matched.EMAIL
    if typed.kind == QueryKind.PHONE and order.contact_phone == typed.value:
        return Matched.PHONE
    return Matched.CUSTOMER


def _touches(order: Order, ids: set[int] | None) -> bool:
    if ids is None:
        return True
    return (
        order.pickup_location_id in ids
        or order.placed_at_location_id in ids
        or any(f.location_id in ids for f in order.fulfillments.all())
    )


def purchases_find(
    *, text: str, user, limit: int = 20, identifiers: tuple[str, ...] = ORDER_IDENTIFIERS
) -> list[PurchaseHit]:
    """The purchases a customer at the returns desk names by what they say or show: an order number
    (any case; ORDER_IDENTIFIERS), their email or phone (any common form: config.contacts.
    contact_query), newest first, at most `limit` (capped at PURCHASES_MAX).

    Who finds what (docs/security.md, "Returns desk"; stores.selectors.user_works_a_returns_desk):
    associates and managers of a store that accepts returns find ANY order, but only by an exact
    identifier (the number, the email or phone given on the order, or the customer's stored email
    or phone: all the customer's orders across channels). Everyone else finds only the orders
    they see (`visible_orders`): warehouse staff and associates of a store without returns those at
    their locations, matching the contact given on the order only; the storefront the customers it
    serves. Part of a name finds orders at the user's own locations only, and only when nothing
    matched exactly. Lockers find nothing.

    Queries: the user's locations (1, cached on the user), the returns-desk check (1), the orders
    (1), their lines and fulfillments (2), whatever the number found; by part of a name, one more.
    None for an empty text."""
    typed = contact_query(text)
    limit = max(1, min(limit, PURCHASES_MAX))
    if typed.kind == QueryKind.EMPTY or (not user.is_superuser and user_role(user) in (None, Role.LOCKER)):
        return []
    anywhere = not is_storefront(user) and user_works_a_returns_desk(user)
    cond = _exact_match(typed, whole_customer=anywhere or sees_customers(user), identifiers=identifiers)
    hits: list[Order] = []
    if cond is not None:
        found = _purchase_qs().filter(cond)
        hits = list((found if anywhere else visible_orders(found, user)).order_by("-id")[:limit])
    ids = None if is_storefront(user) else user_location_ids(user)
    if not hits and typed.kind == QueryKind.OTHER and len(typed.text) >= NAME_MIN_LENGTH and ids:
        by_name = _purchase_qs().filter(contact_name__icontains=typed.text)
        return [
            PurchaseHit(order=o, matched=Matched.NAME, own=True, typed=None)
            for o in visible_orders(by_name, user).order_by("-id")[:limit]
        ]
    value = typed.value if typed.is_contact else None
    return [
        PurchaseHit(order=o, matched=_matched(o, typed, identifiers), own=_touches(o, ids), typed=value)
        for o in hits
    ]


# --- The store counter (the associates' Pickups page, orders/admin_pickups.py) ------------------

PICKUP_METHODS = (FulfillmentMethod.PICKUP, FulfillmentMethod.CURBSIDE)
TO_PICK = (FulfillmentStatus.PENDING, FulfillmentStatus.PICKING)
IN_TRANSIT = FulfillmentStatus.AWAITING_TRANSFER  # ship to store: the goods are on their way
AT_THE_COUNTER = (*TO_PICK, FulfillmentStatus.READY_FOR_PICKUP, IN_TRANSIT)

# The tiles of the counter page, in the order they are shown: name -> label.
COUNTER_TILES = {
    "arrived_curbside": "Arrived, curbside",
    "arrived_in_person": "Arrived, in person",
    "to_pick": "To pick",
    "ready": "Ready",
    "overdue": "Overdue",
    "expiring_today": "Expiring today",
    "in_transit": "In transit to store",
}


def counter_stores(*, user) -> QuerySet[Location]:
    """The stores whose counter `user` works: stores offering pickup at the user's locations (every
    one for superusers and network-wide managers)."""
    qs = Location.objects.filter(kind=LocationKind.STORE, offers_pickup=True).order_by("code")
    ids = user_location_ids(user)
    return qs if ids is None else qs.filter(pk__in=ids)


def counter_pickups(*, store_ids, qs: QuerySet[Fulfillment] | None = None) -> QuerySet[Fulfillment]:
    """The pickups (in store and curbside) still to hand over at these stores (`qs`: of the Pickup proxy)."""
    return (Fulfillment.objects.all() if qs is None else qs).filter(
        location_id__in=store_ids, method__in=PICKUP_METHODS, status__in=AT_THE_COUNTER
    )


def _today_ends(stores) -> Q:
    """Window ends before each store's midnight tonight (its own timezone): one condition per zone."""
    from .services.window import store_zone, window_end  # services import the selectors

    by_zone: dict[str, list[int]] = {}
    for s in stores:
        by_zone.setdefault(s.timezone or "UTC", []).append(s.pk)
    cond = Q(pk__in=[])
    now = timezone.now()
    for ids in by_zone.values():
        store = next(s for s in stores if s.pk == ids[0])
        tonight = window_end(location=store, last_day=now.astimezone(store_zone(store)).date())
        cond |= Q(location_id__in=ids, pickup_expires_at__lte=tonight)
    return cond


def _late_transfers(stores, now: dt.datetime) -> Q:
    """Promised before today (each store's own calendar day): `ready_by` has passed."""
    from .services.window import store_zone  # services import the selectors

    by_day: dict[dt.date, list[int]] = {}
    for s in stores:
        by_day.setdefault(now.astimezone(store_zone(s)).date(), []).append(s.pk)
    cond = Q(pk__in=[])
    for today, ids in by_day.items():
        cond |= Q(location_id__in=ids, ready_by__lt=today)
    return cond


def counter_tile_filters(*, stores, now: dt.datetime | None = None) -> dict[str, Q]:
    """What each tile counts, as a condition on `counter_pickups` (one definition for the count and
    the list behind the tile).

    - arrived: the customer said they are here (curbside: in the car park; in person: at the counter);
    - to pick: nobody has made it ready yet; ready: waiting at the counter with a pickup code;
    - overdue: to pick for longer than OMS["PICKUP_READY_WITHIN_MINUTES"] (the promise made to the
      customer), or ready with its window ended (the expiry sweep cancels it on its next run);
    - expiring today: ready, and its window ends before the store's midnight tonight;
    - in transit to store: ship to store, waiting for the warehouse's transfer (overdue once its
      promised day `ready_by` has passed, in the store's calendar).
    """
    now = now or timezone.now()
    promise = dt.timedelta(minutes=settings.OMS["PICKUP_READY_WITHIN_MINUTES"])
    ready = Q(status=FulfillmentStatus.READY_FOR_PICKUP)
    arrived = Q(customer_arrived_at__isnull=False)
    return {
        "arrived_curbside": arrived & Q(method=FulfillmentMethod.CURBSIDE),
        "arrived_in_person": arrived & Q(method=FulfillmentMethod.PICKUP),
        "to_pick": Q(status__in=TO_PICK),
        "ready": ready,
        "overdue": Q(status__in=TO_PICK, created_at__lt=now - promise)
        | (ready & Q(pickup_expires_at__lte=now))
        | (Q(status=IN_TRANSIT) & _late_transfers(stores, now)),
        "expiring_today": ready & Q(pickup_expires_at__gt=now) & _today_ends(stores),
        "in_transit": Q(status=IN_TRANSIT),
    }


def counter_counts(*, stores, now: dt.datetime | None = None) -> dict[str, int]:
    """Each tile's count at these stores, in one query."""
    filters = counter_tile_filters(stores=stores, now=now)
    return counter_pickups(store_ids=[s.pk for s in stores]).aggregate(
        **{name: Count("pk", filter=cond) for name, cond in filters.items()}
    )


def counter_queue_ordering() -> list:
    """Who to serve first: curbside arrivals (longest waiting first), then people at the counter,
    then work to pick (oldest first), then ready orders (the window ending soonest first)."""
    rank = Case(
        When(customer_arrived_at__isnull=False, method=FulfillmentMethod.CURBSIDE, then=Value(0)),
        When(customer_arrived_at__isnull=False, then=Value(1)),
        When(status__in=TO_PICK, then=Value(2)),
        When(status=IN_TRANSIT, then=Value(4)),
        default=Value(3),
        output_field=IntegerField(),
    )
    return [
        rank.asc(),
        F("customer_arrived_at").asc(nulls_last=True),
        F("pickup_expires_at").asc(nulls_first=True),
        F("pk").asc(),
    ]


def counter_search(qs: QuerySet[Fulfillment], text: str) -> QuerySet[Fulfillment]:
    """Pickups found by what the customer says or shows: the pickup code (any case, with or without
    the hyphen), the order number, the phone number in any common form ("090-1234-5678",
    "+81 90 1234 5678": compared in E.164), the email address, or part of the name, all as typed
    on the order (docs/security.md, "Personal data"). A pickup code finds only a ready order.

    The text is read as one kind of thing where it can only be that (an address with "@", a valid
    phone number), so that the search is one exact comparison rather than a scan of every name."""
    from .services.codes import code_normalise  # services import the selectors

    typed = contact_query(text)
    if typed.kind == QueryKind.EMPTY:
        return qs
    if typed.kind == QueryKind.EMAIL:
        return qs.filter(order__contact_email=typed.value) if typed.value else qs.none()
    code = code_normalise(typed.text)
    as_code = (
        Q(pickup_code=code, status=FulfillmentStatus.READY_FOR_PICKUP)
        if 6 <= len(code) <= 12
        else Q(pk__in=[])
    )
    if typed.kind == QueryKind.PHONE:
        return qs.filter(Q(order__contact_phone=typed.value) | as_code)
    return qs.filter(
        Q(order__number=typed.text.upper()) | as_code | Q(order__contact_name__icontains=typed.text)
    )


@dataclass(frozen=True)
class CounterCard:
    """What the associate needs to serve one customer, read in a fixed number of queries."""

    fulfillment: Fulfillment
    lines: list[FulfillmentLine]
    events: list[OrderEvent]
    notes: list[OrderNote]
    other_orders: list[Order]  # the customer's other open orders, every channel and store


def counter_card(*, fulfillment: Fulfillment, other_limit: int = 20) -> CounterCard:
    """The order card of a pickup the caller may act on (already scoped). The customer's other open
    orders are listed by number, channel, status and store only (no contact or lines), so that the
    associate can mention them; they are read whatever store they are at."""
    order = fulfillment.order
    others = (
        Order.objects.filter(customer_id=order.customer_id)
        .exclude(pk=order.pk)
        .exclude(status__in=(OrderStatus.CANCELLED, OrderStatus.COMPLETED, OrderStatus.SHIPPED))
        .select_related("pickup_location")
        .order_by("-pk")[:other_limit]
    )
    return CounterCard(
        fulfillment=fulfillment,
        lines=list(
            FulfillmentLine.objects.filter(fulfillment=fulfillment).select_related("sku").order_by("pk")
        ),
        events=list(order_events(order=order)),
        notes=list(order_notes(order=order)),
        other_orders=list(others),
    )


def counter_lockers(*, fulfillment: Fulfillment) -> list[tuple[PickupPoint, list[Compartment]]]:
    """The locker banks of the fulfillment's store with their free compartments, for the card's
    "load into a locker" (empty when it is not a ready pickup, or already in a compartment). One
    query for the banks, one per bank (a store has one or two)."""
    if fulfillment.status != FulfillmentStatus.READY_FOR_PICKUP or fulfillment.compartment_id is not None:
        return []
    banks = PickupPoint.objects.filter(store_id=fulfillment.location_id, is_active=True).order_by("code")
    return [(bank, list(free_compartments(locker=bank))) for bank in banks]


# --- Lockers -------------------------------------------------------------------------------------


class CompartmentState:
    FREE = "free"  # empty and in service: an order may be loaded
    OCCUPIED = "occupied"  # an order waits in it for its customer
    LOCKED = "locked"  # an order waits, but too many wrong codes: an associate issues a new code
    UNLOAD = "unload"  # an order that must come out: its window ended, or it was cancelled
    OUT_OF_SERVICE = "out_of_service"  # empty and out of service (or the whole locker is)


@dataclass(frozen=True)
class CompartmentView:
    compartment: Compartment
    state: str
    fulfillment: Fulfillment | None  # the order in it (with its order), or None


@dataclass(frozen=True)
class LockerView:
    locker: PickupPoint
    compartments: list[CompartmentView]

    def count(self, state: str) -> int:
        return sum(1 for c in self.compartments if c.state == state)


def _state(
    comp: Compartment, locker: PickupPoint, f: Fulfillment | None, *, now: dt.datetime, limit: int
) -> str:
    if f is None:
        return (
            CompartmentState.FREE if comp.is_active and locker.is_active else CompartmentState.OUT_OF_SERVICE
        )
    if f.status != FulfillmentStatus.READY_FOR_PICKUP or (f.pickup_expires_at and f.pickup_expires_at <= now):
        return CompartmentState.UNLOAD
    if f.pickup_code_attempts >= limit:
        return CompartmentState.LOCKED
    return CompartmentState.OCCUPIED


def locker_list(*, user, store: Location | None = None) -> list[LockerView]:
    """The locker banks at the user's locations (or at `store`), each compartment with its state and
    the order in it. Three queries whatever the number of lockers and compartments."""
    qs = PickupPoint.objects.select_related("store").prefetch_related(
        Prefetch("compartments", queryset=Compartment.objects.order_by("label"))
    )
    ids = user_location_ids(user)
    if ids is not None:
        qs = qs.filter(store_id__in=ids)
    if store is not None:
        qs = qs.filter(store=store)
    lockers = list(qs.order_by("code"))
    occupants = {
        f.compartment_id: f
        for f in Fulfillment.objects.filter(compartment__pickup_point__in=[lk.pk for lk in lockers])
        .exclude(status=FulfillmentStatus.COLLECTED)
        .select_related("order", "location")
    }
    now, limit = timezone.now(), settings.OMS["PICKUP_CODE_MAX_ATTEMPTS"]
    return [
        LockerView(
            locker=lk,
            compartments=[
                CompartmentView(
                    c, _state(c, lk, occupants.get(c.pk), now=now, limit=limit), occupants.get(c.pk)
                )
                for c in lk.compartments.all()
            ],
        )
        for lk in lockers
    ]


def free_compartments(*, locker: PickupPoint) -> QuerySet[Compartment]:
    """The compartments of `locker` an order may be loaded into now (empty, in service), by label."""
    if not locker.is_active:
        return Compartment.objects.none()
    live = Fulfillment.objects.filter(compartment=OuterRef("pk")).exclude(status=FulfillmentStatus.COLLECTED)
    return (
        Compartment.objects.filter(pickup_point=locker, is_active=True)
        .exclude(Exists(live))
        .order_by("label")
    )
