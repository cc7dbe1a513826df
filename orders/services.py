"""Every write about customers, orders and fulfillments.

Each public service is one transaction (`config.services.service`); stock changes go through
inventory.services, which join that transaction. Lock order, everywhere: fulfillment rows (by
pk), then stock levels (inventory's helper, by pk), then the order row (orders.transitions).

Order placement is a fixed number of statements whatever the number of lines (docs/orders.md;
tests/orders/test_queries.py pins them): one lookup (store, SKUs, customer, the store's stock),
routing's reads for ship orders, the reservation (inventory.services), and the order's rows (on
PostgreSQL one statement, with a new customer; elsewhere one INSERT per table).
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from config.db import insert_fields, insert_or_nothing, json_rows, jsonb_recordset_sql, set_pks
from config.errors import InvalidInput, PolicyViolation
from config.services import run_last, service
from inventory.exceptions import InsufficientStock
from inventory.models import MovementKind, Sku
from inventory.services import (
    Line,
    hold_convert,
    hold_create,
    stock_adjust,
    stock_commit,
    stock_release,
    stock_reserve,
    validate_quantity,
)
from stores.models import Location, Role
from stores.selectors import require_location_access, user_location_ids, user_role

from . import transitions
from .exceptions import (
    CurrencyMismatch,
    DuplicateLine,
    HoldMismatch,
    InvalidTransition,
    NotCurbside,
    PickupNotOffered,
    UnknownCustomer,
    UnknownLocation,
    UnknownOrder,
    UnknownSku,
    WrongPickupCode,
)
from .hooks import emit
from .models import (
    Channel,
    Customer,
    EventType,
    Fulfillment,
    FulfillmentLine,
    FulfillmentMethod,
    FulfillmentStatus,
    NotificationChannel,
    Order,
    OrderEvent,
    OrderLine,
    new_order_number,
)
from .selectors import PlacementLookup, placement_lookup

FS = FulfillmentStatus
PICKUP_METHODS = frozenset({FulfillmentMethod.PICKUP, FulfillmentMethod.CURBSIDE})
_METHODS = frozenset(FulfillmentMethod.values)
_CHANNELS = frozenset(Channel.values)
MAX_LINES = 200
# ISO 4217 minor units of the currencies we sell in. Amounts are stored with two decimals.
CURRENCY_MINOR_UNITS = {
    "JPY": 0,
    "KRW": 0,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AUD": 2,
    "CAD": 2,
    "CNY": 2,
    "HKD": 2,
    "SGD": 2,
    "TWD": 2,
}
MAX_UNIT_PRICE = Decimal("9999999999.99")
CENT = Decimal("0.01")


# --- Inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerIn:
    email: str | None = None
    phone: str | None = None
    name: str = ""


@dataclass(frozen=True)
class FulfillmentIn:
    method: str
    location: str | None = None  # pickup store code (pickup, curbside)
    address: dict | None = None  # destination (ship): line1, city, postal_code, country, latitude, longitude


@dataclass(frozen=True)
class LineIn:
    sku: str
    quantity: int
    unit_price: Decimal | str | None = None
    currency: str | None = None


@dataclass
class _Resolved:
    method: str
    pickup_location: Location | None
    address: dict
    destination: tuple[float, float] | None


def _user(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# --- Customers ------------------------------------------------------------------------------

_PHONE_JUNK = re.compile(r"[\s\-().]")


def normalise_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = str(email).strip().lower()
    if not email:
        return None
    if len(email) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise InvalidInput(
            "customer.email is not a valid email address.", details={"field": "customer.email"}
        )
    return email


def normalise_phone(phone: str | None) -> str | None:
    """'+81 90-1234-5678', '090 1234 5678' (national, settings.OMS DEFAULT_PHONE_COUNTRY_CODE) -> '+819012345678'."""
    if phone is None:
        return None
    raw = _PHONE_JUNK.sub("", str(phone).strip())
    if not raw:
        return None
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if raw.startswith("+"):
        digits = raw[1:]
    elif raw.startswith("0"):
        digits = str(settings.OMS.get("DEFAULT_PHONE_COUNTRY_CODE", "81")) + raw[1:]
    else:
        digits = raw
    if not digits.isdigit() or not (8 <= len(digits) <= 15) or digits.startswith("0"):
        raise InvalidInput("customer.phone is not a valid phone number.", details={"field": "customer.phone"})
    return "+" + digits


@service
def customer_find_or_create(
    *, email: str | None = None, phone: str | None = None, name: str = ""
) -> Customer:
    """One customer across channels: the same email OR phone is the same customer.

    An email match wins over a phone match. A known customer's name is updated when a new one is
    given, and a missing email or phone is filled in when nobody else has it. One query for a
    returning customer (two when something changed); two for a new one.
    """
    email, phone, name = _customer_keys(email=email, phone=phone, name=name)
    return _customer_from(_customers_matching(email, phone), email=email, phone=phone, name=name)


def _customer_keys(*, email, phone, name) -> tuple[str | None, str | None, str]:
    email, phone = normalise_email(email), normalise_phone(phone)
    if not email and not phone:
        raise InvalidInput("The customer needs an email or a phone number.", details={"field": "customer"})
    return email, phone, (name or "").strip()[:200]


def _customers_matching(email: str | None, phone: str | None) -> list[Customer]:
    cond = Q()
    if email:
        cond |= Q(email=email)
    if phone:
        cond |= Q(phone=phone)
    return list(Customer.objects.filter(cond).order_by("pk")[:2])


def _new_customer(*, email: str | None, phone: str | None, name: str) -> Customer:
    return Customer(
        email=email,
        phone=phone,
        name=name,
        notify_channels=[NotificationChannel.EMAIL if email else NotificationChannel.SMS],
    )


def _customer_insert(customer: Customer) -> Customer:
    """INSERT a new customer; if a concurrent request created them just now, that row instead."""
    if insert_or_nothing(customer) is not None:
        return customer
    return _customer_from(_customers_matching(customer.email, customer.phone), **_keys_of(customer))


def _keys_of(c: Customer) -> dict:
    return {"email": c.email, "phone": c.phone, "name": c.name}


def _customer_from(
    found: list[Customer], *, email: str | None, phone: str | None, name: str, insert: bool = True
) -> Customer:
    """The customer among `found` (the rows matching the email or the phone), created if none
    (`insert=False`: returned unsaved, for the caller to insert with its own rows)."""
    if not found:
        customer = _new_customer(email=email, phone=phone, name=name)
        return _customer_insert(customer) if insert else customer
    customer = next((c for c in found if email and c.email == email), found[0])
    others = [c for c in found if c is not customer]
    updates = {}
    if name and name != customer.name:
        updates["name"] = name
    if email and not customer.email and not any(o.email == email for o in others):
        updates["email"] = email
    if phone and not customer.phone and not any(o.phone == phone for o in others):
        updates["phone"] = phone
    if updates:
        Customer.objects.filter(pk=customer.pk).update(**updates)
        for k, v in updates.items():
            setattr(customer, k, v)
    return customer


@service
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
        customer.notify_channels = channels
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
        loc = Location.objects.filter(code=preferred_location).first()
        if loc is None:
            raise UnknownLocation(
                f"Unknown location {preferred_location!r}.", details={"field": "preferred_location"}
            )
        if not (loc.is_active and loc.offers_pickup and loc.kind == "store"):
            raise PolicyViolation(
                f"{loc.code} is not a store customers can use.",
                code="not_a_store",
                details={"field": "preferred_location"},
            )
        customer.preferred_location = loc
        fields.append("preferred_location")
    if fields:
        customer.save(update_fields=fields)
    return customer


# --- Validation shared by holds and orders ------------------------------------------------


def _fulfillment_shape(f: FulfillmentIn | None) -> _Resolved:
    """Method, pickup store code and address checked; the store itself is looked up later."""
    if f is None:
        raise InvalidInput("fulfillment is required.", details={"field": "fulfillment"})
    if f.method not in _METHODS:
        raise InvalidInput(
            f"Unknown fulfillment method {f.method!r}.",
            details={"field": "fulfillment.method", "allowed": list(FulfillmentMethod.values)},
        )
    if f.method in PICKUP_METHODS:
        if not f.location:
            raise InvalidInput(
                "A pickup store is required for pickup and curbside.",
                details={"field": "fulfillment.location"},
            )
        return _Resolved(f.method, None, {}, None)
    address = f.address
    if not isinstance(address, dict) or not address:
        raise InvalidInput("A ship order needs an address.", details={"field": "fulfillment.address"})
    destination = None
    lat, lng = address.get("latitude"), address.get("longitude")
    if lat is not None or lng is not None:
        try:
            lat, lng = float(lat), float(lng)
        except (TypeError, ValueError):
            raise InvalidInput(
                "latitude and longitude must both be numbers.",
                details={"field": "fulfillment.address.latitude"},
            ) from None
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise InvalidInput(
                "latitude/longitude out of range.", details={"field": "fulfillment.address.latitude"}
            )
        destination = (lat, lng)
    return _Resolved(f.method, None, dict(address), destination)


def _pickup_store(resolved: _Resolved, code: str, loc: Location | None) -> None:
    """The looked-up pickup store must exist, be active and offer pickup."""
    if loc is None:
        raise UnknownLocation(
            f"Unknown location {code!r}.", details={"field": "fulfillment.location", "location": code}
        )
    if not (loc.is_active and loc.offers_pickup):
        raise PickupNotOffered(
            f"{loc.code} does not offer {resolved.method}.",
            details={"field": "fulfillment.location", "location": loc.code},
        )
    resolved.pickup_location = loc
    resolved.destination = (loc.latitude, loc.longitude)


def _line_shapes(lines: Sequence[LineIn]) -> dict[str, int]:
    """Shape checks of the lines; their SKU codes, each with its index."""
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"At most {MAX_LINES} lines per request.", details={"field": "lines"})
    seen: dict[str, int] = {}
    for i, ln in enumerate(lines):
        if not isinstance(ln.sku, str) or not ln.sku:
            raise InvalidInput("sku is required.", details={"field": f"lines[{i}].sku"})
        if ln.sku in seen:
            raise DuplicateLine(
                f"SKU {ln.sku} appears twice; send one line per SKU with the total quantity.",
                details={"field": f"lines[{i}].sku", "sku": ln.sku, "first": f"lines[{seen[ln.sku]}]"},
            )
        seen[ln.sku] = i
        validate_quantity(ln.quantity, field=f"lines[{i}].quantity")
    return seen


def _line_skus(
    lines: Sequence[LineIn], seen: dict[str, int], skus: dict[str, Sku]
) -> list[tuple[LineIn, Sku]]:
    missing = [code for code in seen if code not in skus]
    if missing:
        raise UnknownSku(
            "Unknown SKU(s).", details={"skus": missing, "field": f"lines[{seen[missing[0]]}].sku"}
        )
    inactive = [code for code in seen if not skus[code].is_active]
    if inactive:
        raise PolicyViolation(
            "SKU(s) no longer sold.", code="sku_inactive", details={"skus": inactive, "field": "lines"}
        )
    return [(ln, skus[ln.sku]) for ln in lines]


def _resolve(
    f: FulfillmentIn | None,
    lines: Sequence[LineIn],
    *,
    resolved: _Resolved | None = None,
    email: str | None = None,
    phone: str | None = None,
    stock: bool = False,
) -> tuple[_Resolved, list[tuple[LineIn, Sku]], PlacementLookup]:
    """Shapes first, then ONE statement for the pickup store, the SKUs, the customer and (`stock`)
    the units available at the pickup store."""
    resolved = resolved or _fulfillment_shape(f)
    seen = _line_shapes(lines)
    code = f.location if resolved.method in PICKUP_METHODS else None
    found = placement_lookup(
        location_code=code, sku_codes=list(seen), email=email, phone=phone, stock_at_location=stock
    )
    if code:
        _pickup_store(resolved, code, found.location)
    return resolved, _line_skus(lines, seen, found.skus), found


def _validate_money(lines: Sequence[LineIn], currency: str | None) -> tuple[str, list[Decimal]]:
    if not isinstance(currency, str) or currency.upper() not in CURRENCY_MINOR_UNITS:
        raise InvalidInput(
            f"Unknown or unsupported currency {currency!r}.",
            code="unknown_currency",
            details={"field": "currency", "allowed": sorted(CURRENCY_MINOR_UNITS)},
        )
    currency = currency.upper()
    minor = CURRENCY_MINOR_UNITS[currency]
    prices = []
    for i, ln in enumerate(lines):
        if ln.currency is not None and str(ln.currency).upper() != currency:
            raise CurrencyMismatch(
                f"Line currency {ln.currency} differs from the order's {currency}.",
                details={"field": f"lines[{i}].currency", "currency": currency},
            )
        try:
            price = Decimal(str(ln.unit_price)) if ln.unit_price is not None else None
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite():
            raise InvalidInput(
                "unit_price must be a decimal amount.", details={"field": f"lines[{i}].unit_price"}
            )
        if price < 0:
            raise InvalidInput(
                "unit_price must not be negative.", details={"field": f"lines[{i}].unit_price"}
            )
        if price > MAX_UNIT_PRICE:
            raise InvalidInput("unit_price is too large.", details={"field": f"lines[{i}].unit_price"})
        if -price.as_tuple().exponent > minor and price != price.quantize(Decimal(1).scaleb(-minor)):
            raise CurrencyMismatch(
                f"{currency} amounts have {minor} decimal places.",
                details={"field": f"lines[{i}].unit_price", "currency": currency},
            )
        prices.append(price.quantize(CENT))
    return currency, prices


def _routing_request(resolved: _Resolved, lines, exclude=frozenset()):
    from orders.routing import RoutingLine, RoutingRequest

    return RoutingRequest(
        lines=tuple(RoutingLine(sku.pk, qty) for sku, qty in lines),
        method=resolved.method,
        pickup_location_id=resolved.pickup_location.pk if resolved.pickup_location else None,
        destination=resolved.destination,
        exclude_location_ids=frozenset(exclude),
    )


def _stock_error(
    available: dict[int, int], skus, requested, *, nearby: dict, method: str
) -> InsufficientStock:
    """409 insufficient_stock: per short line ({sku_id: units available}) the shortfall and the
    nearby locations that have it."""
    lines = [
        {
            "sku": skus[sku_id].code,
            "requested": requested[sku_id],
            "available": have,
            "shortfall": requested[sku_id] - have,
            "nearby": nearby.get(sku_id, []),
        }
        for sku_id, have in available.items()
    ]
    where = "at the chosen store" if method in PICKUP_METHODS else "across the network"
    return InsufficientStock(f"Not enough stock {where}.", details={"lines": lines, "method": method})


def _insufficient(decision, skus: dict[int, Sku], requested: dict[int, int], near) -> InsufficientStock:
    """The 409 for what routing could not fill."""
    from orders.routing import nearby_sources

    short = {u.sku_id: requested[u.sku_id] - u.quantity for u in decision.unfilled}
    nearby = nearby_sources(sku_ids=list(short), near=near, limit=5) if short else {}
    return _stock_error(short, skus, requested, nearby=nearby, method=decision.method)


# The nearby stock of recent pickup 409s, per (SKUs, store position): when a flash sale sells out,
# every further attempt asks the same question. Suggestions only (nothing is reserved from them),
# so they may be OMS["NEARBY_CACHE_SECONDS"] old.
_nearby_recent: dict[tuple, tuple[float, dict]] = {}


def _short_at_store(
    available: dict[int, int], skus: dict[int, Sku], requested: dict[int, int], resolved: _Resolved
) -> InsufficientStock | None:
    """The 409 for a pickup store that lacks some lines ({sku_id: available units there}), or None."""
    from orders.routing import nearby_sources

    short = {pk: max(0, available.get(pk, 0)) for pk, qty in requested.items() if available.get(pk, 0) < qty}
    if not short:
        return None
    key = (tuple(sorted(short)), resolved.destination)
    hit = _nearby_recent.get(key)
    if hit is not None and hit[0] > time.monotonic():
        nearby = hit[1]
    else:
        nearby = nearby_sources(sku_ids=list(short), near=resolved.destination, limit=5)
        ttl = settings.OMS.get("NEARBY_CACHE_SECONDS", 0)
        if ttl > 0:
            if len(_nearby_recent) >= 256:
                _nearby_recent.clear()
            _nearby_recent[key] = (time.monotonic() + ttl, nearby)
    return _stock_error(short, skus, requested, nearby=nearby, method=resolved.method)


def _reserve_at_store(resolved: _Resolved, parsed, *, reference: str, user) -> None:
    """The guarded reservation at the pickup store: the real stock check (409 when it lost a race)."""
    store = resolved.pickup_location
    try:
        stock_reserve(
            lines=[Line(store.pk, sku.pk, ln.quantity) for ln, sku in parsed], reference=reference, user=user
        )
    except InsufficientStock as exc:
        by_code = {sku.code: sku.pk for _, sku in parsed}
        available = {sku.pk: ln.quantity for ln, sku in parsed}
        for ln in (exc.details or {}).get("lines", []):
            if ln.get("sku") in by_code and ln.get("shortfall", 0) > 0:
                available[by_code[ln["sku"]]] = ln["available"]
        skus = {sku.pk: sku for _, sku in parsed}
        err = _short_at_store(available, skus, {sku.pk: ln.quantity for ln, sku in parsed}, resolved)
        raise (err or exc) from None


def _route_and_reserve(
    *, resolved: _Resolved, lines: list[tuple[Sku, int]], reference: str, user, hold: bool
):
    """Routing decides where; reserve (or hold) there. One retry when stock moved in between."""
    from orders.routing import route

    skus = {sku.pk: sku for sku, _ in lines}
    requested = {sku.pk: qty for sku, qty in lines}
    for attempt in (1, 2):
        decision = route(_routing_request(resolved, lines))
        if not decision.complete:
            raise _insufficient(decision, skus, requested, resolved.destination)
        stock_lines = [Line(a.location_id, a.sku_id, a.quantity) for a in decision.allocations]
        try:
            if hold:
                return decision, hold_create(lines=stock_lines, user=user, request={"reference": reference})
            # Nothing is written by a reservation that fails, so the transaction carries on without a savepoint.
            stock_reserve(lines=stock_lines, reference=reference, user=user)
            return decision, None
        except InsufficientStock:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# --- Checkout holds ---------------------------------------------------------------------------


@service
def checkout_hold_create(*, lines: Sequence[LineIn], fulfillment: FulfillmentIn, user=None):
    """Hold the cart's stock where routing would take it from (inventory.services.hold_create).

    Returns (hold, [(sku, location code, quantity)]). 409 insufficient_stock as for orders.
    """
    resolved, parsed, _ = _resolve(fulfillment, lines)
    decision, hold = _route_and_reserve(
        resolved=resolved,
        lines=[(sku, ln.quantity) for ln, sku in parsed],
        reference="",
        user=user,
        hold=True,
    )
    codes = {sku.pk: sku.code for _, sku in parsed}
    hold.request = {
        "method": resolved.method,
        "location": resolved.pickup_location.code if resolved.pickup_location else None,
        "lines": {codes[a.sku_id]: a.quantity for a in decision.allocations},
    }
    hold.save(update_fields=["request"])
    hold.allocated = [
        {
            "sku": codes[a.sku_id],
            "location": decision.location_codes.get(a.location_id),
            "quantity": a.quantity,
        }
        for a in decision.allocations
    ]
    return hold


# --- Order placement -------------------------------------------------------------------------


def _placed_at(*, channel: str, user, placed_at: str | None) -> Location | None:
    """The till's store for orders an associate places (channel store). None for other channels."""
    if channel != Channel.STORE or _user(user) is None:
        return None
    role = user_role(user)
    if placed_at:
        loc = Location.objects.filter(code=placed_at).first()
        if loc is None:
            raise UnknownLocation(f"Unknown location {placed_at!r}.", details={"field": "placed_at"})
        if role != Role.STOREFRONT:
            require_location_access(user, loc)
        return loc
    if role in (Role.ASSOCIATE, Role.MANAGER):
        ids = user_location_ids(user) or set()
        if len(ids) == 1:
            return Location.objects.get(pk=next(iter(ids)))
        raise InvalidInput(
            "Say which store the order is placed at (placed_at).", details={"field": "placed_at"}
        )
    return None


def _check_hold_matches(hold_lines, parsed, resolved: _Resolved) -> None:
    held: dict[int, int] = defaultdict(int)
    for hl in hold_lines:
        held[hl.sku_id] += hl.quantity
    wanted = {sku.pk: ln.quantity for ln, sku in parsed}
    if dict(held) != wanted:
        codes = {sku.pk: sku.code for _, sku in parsed}
        raise HoldMismatch(
            "The hold's lines differ from the order's lines.",
            details={
                "field": "hold",
                "held": {codes.get(k, str(k)): v for k, v in held.items()},
                "ordered": {codes[k]: v for k, v in wanted.items()},
            },
        )
    if resolved.pickup_location is not None and any(
        hl.location_id != resolved.pickup_location.pk for hl in hold_lines
    ):
        raise HoldMismatch("The hold is not at the pickup store.", details={"field": "hold"})


@service
def order_place(
    *,
    channel: str,
    customer: CustomerIn,
    fulfillment: FulfillmentIn,
    lines: Sequence[LineIn],
    currency: str,
    hold_id=None,
    user=None,
    placed_at: str | None = None,
) -> Order:
    """Place an order from any channel: customer, routing, reservations, order rows, events.

    All in one transaction: either the whole order is placed with its stock reserved, or nothing
    is written. For pickup the reservation is the transaction's last step (config.services.run_last):
    inside an outer service it runs when that service ends, and a shortfall found then (409) rolls
    the outer service back too. Totals are computed here from the lines. With `hold_id` the hold's units become
    the order's reservations (inventory.services.hold_convert) without a gap; its lines must be
    the order's lines (422 hold_mismatch).
    """
    if channel not in _CHANNELS:
        raise InvalidInput(
            f"Unknown channel {channel!r}.", details={"field": "channel", "allowed": list(Channel.values)}
        )
    resolved = _fulfillment_shape(fulfillment)
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    currency, prices = _validate_money(lines, currency)
    if customer is None:
        raise InvalidInput("customer is required.", details={"field": "customer"})
    email, phone, name = _customer_keys(email=customer.email, phone=customer.phone, name=customer.name)
    resolved, parsed, found = _resolve(
        fulfillment, lines, resolved=resolved, email=email, phone=phone, stock=hold_id is None
    )
    placed_at_location = _placed_at(channel=channel, user=user, placed_at=placed_at)
    number = new_order_number()
    who = _user(user)
    sku_by_id = {sku.pk: sku for _, sku in parsed}
    reserve_at_store = False

    if hold_id is not None:
        hold_lines = hold_convert(hold_id=hold_id, reference=number, user=who)
        _check_hold_matches(hold_lines, parsed, resolved)
        allocations = [(hl.location_id, hl.sku_id, hl.quantity) for hl in hold_lines]
        location_codes = dict(
            Location.objects.filter(pk__in={a[0] for a in allocations}).values_list("pk", "code")
        )
        decision_json = {
            "method": resolved.method,
            "complete": True,
            "source": "hold",
            "hold": str(hold_id),
            "allocations": [
                {
                    "location": location_codes[loc],
                    "location_id": loc,
                    "sku": sku_by_id[s].code,
                    "sku_id": s,
                    "quantity": q,
                }
                for loc, s, q in allocations
            ],
        }
    elif resolved.pickup_location is not None:
        # The customer chose the store. The lookup read what it has: a sold-out attempt ends here
        # (409 with nearby stock) having written nothing. Otherwise the order's rows are written
        # first and the guarded reservation, the real check, comes last, so the stock row stays
        # locked for as short a time as possible (many buyers of one SKU queue on that lock).
        from orders.routing import pickup_filled

        requested = {sku.pk: ln.quantity for ln, sku in parsed}
        short = _short_at_store(found.available, sku_by_id, requested, resolved)
        if short is not None:
            raise short
        decision = pickup_filled(
            _routing_request(resolved, [(sku, ln.quantity) for ln, sku in parsed]),
            store=resolved.pickup_location,
            sku_codes={pk: sku.code for pk, sku in sku_by_id.items()},
        )
        reserve_at_store = True
        allocations = [(a.location_id, a.sku_id, a.quantity) for a in decision.allocations]
        location_codes = dict(decision.location_codes)
        decision_json = decision.as_json()
    else:
        decision, _ = _route_and_reserve(
            resolved=resolved,
            lines=[(sku, ln.quantity) for ln, sku in parsed],
            reference=number,
            user=who,
            hold=False,
        )
        allocations = [(a.location_id, a.sku_id, a.quantity) for a in decision.allocations]
        location_codes = dict(decision.location_codes)
        decision_json = decision.as_json()
    buyer = _customer_from(found.customers, email=email, phone=phone, name=name, insert=False)

    totals = [(price * ln.quantity).quantize(CENT) for (ln, _), price in zip(parsed, prices, strict=True)]
    subtotal = sum(totals, Decimal("0.00"))
    address = resolved.address
    ship_to = resolved.destination if resolved.destination and not resolved.pickup_location else None
    order = Order(
        number=number,
        channel=channel,
        customer=buyer,
        currency=currency,
        subtotal=subtotal,
        total=subtotal,
        fulfillment_method=resolved.method,
        pickup_location=resolved.pickup_location,
        ship_address=address,
        destination_latitude=ship_to[0] if ship_to else None,
        destination_longitude=ship_to[1] if ship_to else None,
        placed_by=who,
        placed_at_location=placed_at_location,
    )
    order_lines = [
        OrderLine(order=order, sku=sku, quantity=ln.quantity, unit_price=price, line_total=total)
        for (ln, sku), price, total in zip(parsed, prices, totals, strict=True)
    ]
    line_by_sku = {ol.sku_id: ol for ol in order_lines}
    by_location: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for loc, sku_id, qty in allocations:
        by_location[loc].append((sku_id, qty))
    fulfillments = []
    f_lines = []
    for loc in by_location:
        f = Fulfillment(
            order=order,
            location=resolved.pickup_location or Location(pk=loc, code=location_codes.get(loc, "")),
            method=resolved.method,
        )
        mine = [
            FulfillmentLine(
                fulfillment=f, order_line=line_by_sku[sku_id], sku=sku_by_id[sku_id], quantity=qty
            )
            for sku_id, qty in by_location[loc]
        ]
        f._prefetched_objects_cache = {"lines": _cached(FulfillmentLine, mine)}
        fulfillments.append(f)
        f_lines += mine
    events = [
        OrderEvent(
            order=order,
            type=EventType.PLACED,
            to_status=order.status,
            actor=who,
            channel=channel,
            reason=f"{channel} order, {resolved.method}",
            data={
                "lines": [{"sku": sku.code, "name": sku.name, "quantity": ln.quantity} for ln, sku in parsed],
                "total": str(subtotal),
                "currency": currency,
            },
        ),
        OrderEvent(
            order=order,
            type=EventType.ROUTED,
            actor=who,
            channel=channel,
            reason=_routing_reason(decision_json, location_codes),
            data=decision_json,
        ),
    ]
    _insert_order_rows(order, order_lines, fulfillments, f_lines, events)
    order._prefetched_objects_cache = {
        "lines": _cached(OrderLine, order_lines),
        "fulfillments": _cached(Fulfillment, fulfillments),
    }
    emit(events)
    if reserve_at_store:
        # Last before COMMIT (after the API has stored its response): the SKU's stock row, which
        # every buyer of a flash sale queues on, stays locked only for the commit.
        run_last(functools.partial(_reserve_at_store, resolved, parsed, reference=number, user=who))
    return order


# The rows of a new order, in the order they are written, and how each points at its parents:
# an order at its (maybe new) customer, lines and fulfillments at the order, a fulfillment line at
# its fulfillment (by location: one per location in a new order) and order line (by SKU: one line
# per SKU), events at the order.
_ORDER_ROWS = (
    ("o", Order, {"customer": "COALESCE(x.customer_id, (SELECT id FROM c))"}),
    ("l", OrderLine, {"order": "(SELECT id FROM o)"}),
    ("f", Fulfillment, {"order": "(SELECT id FROM o)"}),
    (
        "fl",
        FulfillmentLine,
        {
            "fulfillment": "(SELECT id FROM f WHERE f.location_id = x.location_id)",
            "order_line": "(SELECT id FROM l WHERE l.sku_id = x.sku_id)",
        },
    ),
    ("e", OrderEvent, {"order": "(SELECT id FROM o)"}),
)
_RETURNING = {"l": "id, sku_id", "f": "id, location_id"}


@functools.cache
def _order_rows_sql(customer_key: str | None) -> str:
    """The statement writing a new order's rows from ONE jsonb parameter (PostgreSQL).

    Its text depends only on how a new customer is matched (`customer_key`: "email", "phone", or
    None for a known customer), never on the number of lines or fulfillments, so the driver
    parses it once and the server plans it once (a prepared statement) for every order.
    """
    qn = connection.ops.quote_name
    ctes = ["d AS (SELECT %s::jsonb AS j)"]
    if customer_key:
        c_fields = insert_fields(Customer)
        c_source = jsonb_recordset_sql(Customer, "(SELECT j->'c' FROM d)")
        ctes.append(
            f"c AS (INSERT INTO {qn(Customer._meta.db_table)} ({', '.join(qn(f.column) for f in c_fields)}) "
            f"SELECT {', '.join('x.' + qn(f.column) for f in c_fields)} "
            f"FROM {c_source} "
            f"ON CONFLICT ({qn(customer_key)}) DO UPDATE SET name = CASE WHEN EXCLUDED.name <> '' "
            f"THEN EXCLUDED.name ELSE {qn(Customer._meta.db_table)}.name END RETURNING id)"
        )
    else:
        ctes.append("c AS (SELECT NULL::bigint AS id WHERE false)")
    for alias, model, parents in _ORDER_ROWS:
        fields = insert_fields(model)
        extra = ("location_id bigint",) if alias == "fl" else ()
        cells = [parents.get(f.name, f"x.{qn(f.column)}") for f in fields]
        source = jsonb_recordset_sql(model, f"(SELECT j->'{alias}' FROM d)", extra=extra)
        ctes.append(
            f"{alias} AS (INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
            f"SELECT {', '.join(cells)} FROM {source} ORDER BY x.n RETURNING {_RETURNING.get(alias, 'id')})"
        )
    union = " UNION ALL ".join(
        f"SELECT '{alias}', id FROM {alias}" for alias in ("c", "o", "l", "f", "fl", "e")
    )
    return f"WITH {', '.join(ctes)} {union}"


def _insert_order_rows(order, order_lines, fulfillments, f_lines, events) -> None:
    """INSERT the order, its lines, fulfillments, fulfillment lines and events (and a customer the
    lookup did not find).

    PostgreSQL: ONE statement (_order_rows_sql) taking the rows as one jsonb parameter; each row
    points at its parent through a subquery on the parent's CTE. Elsewhere: one INSERT per table.
    Either way every object gets its pk.
    """
    groups = (("o", [order]), ("l", order_lines), ("f", fulfillments), ("fl", f_lines), ("e", events))
    new_customer = order.customer if order.customer.pk is None else None
    if new_customer is not None and (
        connection.vendor != "postgresql" or (new_customer.email and new_customer.phone)
    ):
        # With both an email and a phone, a concurrent first order may clash on either unique
        # constraint, and ON CONFLICT names one: insert the customer on its own (any conflict
        # becomes a re-read), then the order's rows.
        order.customer = _customer_insert(new_customer)
        new_customer = None
    if connection.vendor != "postgresql":
        for _, objs in groups:
            if objs:
                type(objs[0]).objects.bulk_create(objs)
        return
    payload = {alias: json_rows(objs) for alias, objs in groups if alias != "fl"}
    payload["fl"] = json_rows(f_lines, location_id=lambda fl: fl.fulfillment.location_id)
    customer_key = None
    if new_customer is not None:
        # An email-only (phone-only) customer: a concurrent request may have created them since the
        # lookup; ON CONFLICT on that one constraint takes that row (with this order's name).
        customer_key = "email" if new_customer.email else "phone"
        payload["c"] = json_rows([new_customer])
    with connection.cursor() as cursor:
        cursor.execute(_order_rows_sql(customer_key), [json.dumps(payload, default=str)])
        ids: dict[str, list[int]] = defaultdict(list)
        for alias, pk in cursor.fetchall():
            ids[alias].append(pk)
    if new_customer is not None:
        groups = (("c", [new_customer]), *groups)
    # Rows are inserted in the order given (ORDER BY the position), so ascending ids follow it.
    for alias, objs in groups:
        set_pks(objs, sorted(ids[alias]))
    if new_customer is not None:
        order.customer = new_customer
    for obj in order_lines + fulfillments + events:
        obj.order = order  # through the descriptor: sets order_id and keeps the cached object
    for fl in f_lines:
        fl.fulfillment, fl.order_line = fl.fulfillment, fl.order_line


def _cached(model, objs):
    """A queryset already holding `objs`, as prefetch_related leaves it: related reads cost nothing."""
    qs = QuerySet(model=model)
    qs._result_cache = list(objs)
    qs._prefetch_done = True
    return qs


def _routing_reason(decision_json: dict, location_codes: dict[int, str]) -> str:
    locs = list(dict.fromkeys(a["location"] for a in decision_json.get("allocations", [])))
    source = "from hold " if decision_json.get("source") == "hold" else ""
    return f"routed {source}to {', '.join(locs)}"[:255]


# --- Fulfillment work ----------------------------------------------------------------------


def _locked_for(fulfillment_id, user) -> Fulfillment:
    f = transitions.lock_fulfillment(fulfillment_id)
    if _user(user) is not None:
        require_location_access(user, f.location)
    return f


def _lines(f: Fulfillment) -> list[FulfillmentLine]:
    return list(FulfillmentLine.objects.filter(fulfillment=f).select_related("sku").order_by("pk"))


def _event(f: Fulfillment, type_: str, *, user, channel="", reason="", data=None, **kw) -> OrderEvent:
    return OrderEvent(
        order_id=f.order_id,
        fulfillment=f,
        type=type_,
        actor=_user(user),
        channel=channel,
        reason=reason[:255],
        data=data or {},
        **kw,
    )


@service
def fulfillment_claim(*, location: Location, user, channel: str = "") -> Fulfillment | None:
    """Hand the oldest pending task of `location` to `user`, or None when the queue is empty.

    SELECT ... FOR UPDATE SKIP LOCKED: any number of workers claiming at once get different tasks.
    """
    if _user(user) is not None:
        require_location_access(user, location)
    qs = Fulfillment.objects.filter(location=location, status=FS.PENDING).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    f = qs.select_related("order", "location").first()
    if f is None:
        return None
    return _start_picking(f, user, channel, reason="claimed")


@dataclass(frozen=True)
class PickIn:
    sku: str
    quantity: int


def _start_picking(
    f: Fulfillment, user, channel: str = "", *, reason: str = "picking started"
) -> Fulfillment:
    """A pending fulfillment (already locked) goes to picking, claimed by `user`."""
    if f.status == FS.PENDING:
        f, _ = transitions.transition(
            f,
            FS.PICKING,
            actor=user,
            channel=channel,
            reason=reason,
            locked=True,
            updates={"claimed_by": _user(user), "claimed_at": timezone.now()},
        )
    return f


@service
def fulfillment_start(*, fulfillment_id, user=None, channel: str = "") -> Fulfillment:
    """Claim one particular pending fulfillment (the admin's "claim" on a chosen row)."""
    f = _locked_for(fulfillment_id, user)
    transitions.check(f, FS.PICKING)
    return _start_picking(f, user, channel)


@service
def fulfillment_pick(*, fulfillment_id, picks: Sequence[PickIn], user=None, channel: str = "") -> Fulfillment:
    """Record what was found on the shelf. Lines not mentioned are picked in full.

    A quantity below the ordered one is a short pick: the missing units' reservation is released,
    on hand is counted down by the missing quantity (a cycle-count movement: we know those units
    are not there; units on the shelf for other orders were not counted, so no absolute count is
    set), and the missing quantity is re-routed to other locations (new fulfillments, reserved
    there) or, when nothing can fill it, cancelled on the order line (LINE_CANCELLED event).
    """
    f = _locked_for(fulfillment_id, user)
    if f.status not in (FS.PENDING, FS.PICKING):
        raise InvalidTransition(
            f"Fulfillment {f.pk} is {f.status}; only pending or picking work can be picked.",
            details={"fulfillment": f.pk, "from": f.status, "to": "picked"},
        )
    lines = _lines(f)
    if any(ln.picked_quantity is not None for ln in lines):
        raise InvalidTransition(
            f"Fulfillment {f.pk} was already picked.",
            code="already_picked",
            details={"fulfillment": f.pk, "from": f.status, "to": "picked"},
        )
    by_code = {ln.sku.code: ln for ln in lines}
    found: dict[str, int] = {}
    for i, p in enumerate(picks):
        if p.sku in found:
            raise DuplicateLine(f"SKU {p.sku} appears twice.", details={"field": f"lines[{i}].sku"})
        if p.sku not in by_code:
            raise InvalidInput(
                f"SKU {p.sku} is not in this fulfillment.", details={"field": f"lines[{i}].sku", "sku": p.sku}
            )
        validate_quantity(p.quantity, field=f"lines[{i}].quantity", allow_zero=True)
        if p.quantity > by_code[p.sku].quantity:
            raise InvalidInput(
                f"Picked more {p.sku} than ordered ({by_code[p.sku].quantity}).",
                details={"field": f"lines[{i}].quantity", "ordered": by_code[p.sku].quantity},
            )
        found[p.sku] = p.quantity
    f = _start_picking(f, user, channel)
    short: list[tuple[FulfillmentLine, int]] = []
    for ln in lines:
        picked = found.get(ln.sku.code, ln.quantity)
        if picked < ln.quantity:
            short.append((ln, ln.quantity - picked))
        ln.picked_quantity = picked
        ln.quantity = picked
    FulfillmentLine.objects.bulk_update(lines, ["picked_quantity", "quantity"])
    if short:
        _short_pick(f, short, user=user, channel=channel)
    if all(ln.quantity == 0 for ln in lines):
        transitions.transition(
            f, FS.CANCELLED, actor=user, channel=channel, reason="nothing found on the shelf", locked=True
        )
    return f


def _short_pick(f: Fulfillment, short: list[tuple[FulfillmentLine, int]], *, user, channel: str = "") -> None:
    from orders.routing import route

    order = f.order
    ref = order.number
    stock_release(
        lines=[Line(f.location_id, ln.sku_id, m) for ln, m in short],
        reference=ref,
        user=_user(user),
        reason="short pick",
    )
    for ln, m in short:
        stock_adjust(
            location=f.location,
            sku=ln.sku,
            delta=-m,
            kind=MovementKind.CYCLE_COUNT,
            reason=f"short pick: {m} not found",
            reference=ref,
            reference_type="order",
            user=_user(user),
        )
    events = [
        _event(
            f,
            EventType.SHORT_PICK,
            user=user,
            channel=channel,
            reason=", ".join(f"{ln.sku.code} {m} missing" for ln, m in short),
            data={
                "location": f.location.code,
                "lines": [{"sku": ln.sku.code, "missing": m} for ln, m in short],
            },
        )
    ]
    missing = {ln.sku_id: m for ln, m in short}
    skus = {ln.sku_id: ln.sku for ln, _ in short}
    order_line_ids = {ln.sku_id: ln.order_line_id for ln, _ in short}
    destination = (
        (order.destination_latitude, order.destination_longitude)
        if order.destination_latitude is not None
        else None
    )
    resolved = _Resolved(
        f.method,
        order.pickup_location if f.method in PICKUP_METHODS else None,
        order.ship_address,
        destination,
    )
    if resolved.pickup_location is not None:
        resolved.destination = (resolved.pickup_location.latitude, resolved.pickup_location.longitude)
    decision = route(
        _routing_request(resolved, [(skus[s], q) for s, q in missing.items()], exclude={f.location_id})
    )
    filled: dict[int, int] = {}
    if decision.allocations:
        try:
            with transaction.atomic():
                filled = _reroute(
                    order, f, decision, order_line_ids, skus, user=user, events=events, channel=channel
                )
        except InsufficientStock:
            filled = {}
    unfilled = {s: q - filled.get(s, 0) for s, q in missing.items() if q - filled.get(s, 0) > 0}
    if unfilled:
        _cancel_line_quantities(order, {order_line_ids[s]: q for s, q in unfilled.items()})
        events.append(
            _event(
                f,
                EventType.LINE_CANCELLED,
                user=user,
                channel=channel,
                reason="not available anywhere after a short pick",
                data={"lines": [{"sku": skus[s].code, "quantity": q} for s, q in unfilled.items()]},
            )
        )
    OrderEvent.objects.bulk_create(events)
    emit(events)


def _reroute(order, f, decision, order_line_ids, skus, *, user, events, channel="") -> dict[int, int]:
    """Reserve the re-routed units and put them in a pending fulfillment at each new location.

    Pending fulfillments of the order at those locations are locked before the stock (lock order).
    """
    filled: dict[int, int] = defaultdict(int)
    by_loc: dict[int, list] = defaultdict(list)
    for a in decision.allocations:
        by_loc[a.location_id].append(a)
        filled[a.sku_id] += a.quantity
    existing = {
        x.location_id: x
        for x in Fulfillment.objects.filter(
            order=order, method=f.method, status=FS.PENDING, location_id__in=list(by_loc)
        )
        .select_for_update(of=("self",))
        .order_by("pk")
    }
    stock_reserve(
        lines=[Line(a.location_id, a.sku_id, a.quantity) for a in decision.allocations],
        reference=order.number,
        user=_user(user),
    )
    for loc_id, allocs in by_loc.items():
        target = existing.get(loc_id)
        if target is None:
            target = Fulfillment.objects.create(order=order, location_id=loc_id, method=f.method)
        present = {fl.sku_id: fl for fl in FulfillmentLine.objects.filter(fulfillment=target)}
        for a in allocs:
            if a.sku_id in present:
                FulfillmentLine.objects.filter(pk=present[a.sku_id].pk).update(
                    quantity=F("quantity") + a.quantity
                )
            else:
                FulfillmentLine.objects.create(
                    fulfillment=target,
                    order_line_id=order_line_ids[a.sku_id],
                    sku_id=a.sku_id,
                    quantity=a.quantity,
                )
        events.append(
            _event(
                target,
                EventType.REROUTED,
                user=user,
                channel=channel,
                reason=f"short pick at {f.location.code} re-routed to {decision.location_codes.get(loc_id, loc_id)}",
                data={
                    "from_location": f.location.code,
                    "decision": decision.as_json(),
                    "lines": [{"sku": skus[a.sku_id].code, "quantity": a.quantity} for a in allocs],
                },
            )
        )
    return filled


def _cancel_line_quantities(order: Order, quantities: dict[int, int]) -> None:
    """Add to the lines' cancelled quantities and bring the order's totals down with them."""
    for line_id, q in quantities.items():
        OrderLine.objects.filter(pk=line_id).update(cancelled_quantity=F("cancelled_quantity") + q)
    _recompute_totals(order)


def _recompute_totals(order: Order) -> None:
    subtotal = Decimal("0.00")
    for price, qty, cancelled in OrderLine.objects.filter(order_id=order.pk).values_list(
        "unit_price", "quantity", "cancelled_quantity"
    ):
        subtotal += (price * (qty - cancelled)).quantize(CENT)
    Order.objects.filter(pk=order.pk).update(subtotal=subtotal, total=subtotal)
    order.subtotal = order.total = subtotal


@service
def fulfillment_pack(*, fulfillment_id, user=None, channel: str = "") -> Fulfillment:
    """Picked and packed (ship). Lines without a recorded pick count as picked in full."""
    f = _locked_for(fulfillment_id, user)
    transitions.check(f, FS.PACKED)
    FulfillmentLine.objects.filter(fulfillment=f, picked_quantity__isnull=True).update(
        picked_quantity=F("quantity")
    )
    f, _ = transitions.transition(f, FS.PACKED, actor=user, channel=channel, reason="packed", locked=True)
    return f


def _commit(f: Fulfillment, *, user, reason: str) -> None:
    lines = [Line(f.location_id, ln.sku_id, ln.quantity) for ln in _lines(f) if ln.quantity > 0]
    if lines:
        stock_commit(lines=lines, reference=f.order.number, user=_user(user), reason=reason)


@service
def fulfillment_ship(
    *, fulfillment_id, carrier: str, tracking_number: str, user=None, channel: str = ""
) -> Fulfillment:
    """Handed to the carrier: the reserved stock is committed (on hand and reserved both go down)."""
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    if not carrier:
        raise InvalidInput("carrier is required.", details={"field": "carrier"})
    if not tracking_number:
        raise InvalidInput("tracking_number is required.", details={"field": "tracking_number"})
    if len(carrier) > 64 or len(tracking_number) > 64:
        raise InvalidInput(
            "carrier and tracking_number are at most 64 characters.", details={"field": "tracking_number"}
        )
    f = _locked_for(fulfillment_id, user)
    transitions.check(f, FS.SHIPPED)
    _commit(f, user=user, reason=f"shipped {carrier} {tracking_number}")
    f, _ = transitions.transition(
        f,
        FS.SHIPPED,
        actor=user,
        channel=channel,
        reason=f"shipped with {carrier}",
        locked=True,
        updates={"carrier": carrier, "tracking_number": tracking_number, "shipped_at": timezone.now()},
        data={"carrier": carrier, "tracking_number": tracking_number},
    )
    return f


def new_pickup_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


@service
def fulfillment_ready(*, fulfillment_id, user=None, channel: str = "") -> Fulfillment:
    """At the counter (pickup, curbside): the customer gets a 6-digit pickup code."""
    f = _locked_for(fulfillment_id, user)
    transitions.check(f, FS.READY_FOR_PICKUP)
    FulfillmentLine.objects.filter(fulfillment=f, picked_quantity__isnull=True).update(
        picked_quantity=F("quantity")
    )
    f, _ = transitions.transition(
        f,
        FS.READY_FOR_PICKUP,
        actor=user,
        channel=channel,
        reason="ready for pickup",
        locked=True,
        updates={"pickup_code": new_pickup_code(), "ready_at": timezone.now()},
    )
    return f


@service
def fulfillment_collect(*, fulfillment_id, pickup_code: str, user=None, channel: str = "") -> Fulfillment:
    """Handed to the customer who showed the right code: the stock is committed."""
    f = _locked_for(fulfillment_id, user)
    transitions.check(f, FS.COLLECTED)
    code = str(pickup_code or "").strip()
    if not f.pickup_code or not secrets.compare_digest(code.encode(), f.pickup_code.encode()):
        raise WrongPickupCode("The pickup code does not match.", details={"field": "pickup_code"})
    _commit(f, user=user, reason="collected")
    f, _ = transitions.transition(
        f,
        FS.COLLECTED,
        actor=user,
        channel=channel,
        reason="collected",
        locked=True,
        updates={"collected_at": timezone.now()},
    )
    return f


@service
def fulfillment_cancel(*, fulfillment_id, user=None, reason: str = "", channel: str = "") -> Fulfillment:
    """Stop a fulfillment before it leaves: release what it still has reserved, cancel those units."""
    f = _locked_for(fulfillment_id, user)
    transitions.check(f, FS.CANCELLED)
    lines = [ln for ln in _lines(f) if ln.quantity > 0]
    if lines:
        stock_release(
            lines=[Line(f.location_id, ln.sku_id, ln.quantity) for ln in lines],
            reference=f.order.number,
            user=_user(user),
            reason=reason or "fulfillment cancelled",
        )
        _cancel_line_quantities(f.order, {ln.order_line_id: ln.quantity for ln in lines})
    f, _ = transitions.transition(
        f, FS.CANCELLED, actor=user, channel=channel, reason=reason or "cancelled", locked=True
    )
    return f


def _order_locked_fulfillments(number: str) -> tuple[Order, list[Fulfillment]]:
    order = Order.objects.filter(number=number).first()
    if order is None:
        raise UnknownOrder(f"Unknown order {number!r}.", details={"order": number})
    fs = list(
        Fulfillment.objects.filter(order=order)
        .select_related("location")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
    return order, fs


@service
def order_cancel(*, number: str, user=None, reason: str = "", channel: str = "") -> Order:
    """Cancel every fulfillment of the order and release what is reserved. 409 if something left."""
    order, fs = _order_locked_fulfillments(number)
    gone = [f for f in fs if f.status in transitions.LEFT_THE_BUILDING]
    if gone:
        raise InvalidTransition(
            "Part of the order already left the building; it cannot be cancelled.",
            details={
                "order": number,
                "from": order.status,
                "to": "cancelled",
                "fulfillments": [f.pk for f in gone],
            },
        )
    live = [f for f in fs if f.status != FS.CANCELLED]
    if not live:
        raise InvalidTransition(
            "The order is already cancelled.",
            details={"order": number, "from": order.status, "to": "cancelled"},
        )
    live_ids = [f.pk for f in live]
    lines = list(FulfillmentLine.objects.filter(fulfillment_id__in=live_ids, quantity__gt=0))
    loc = {f.pk: f.location_id for f in live}
    if lines:
        stock_release(
            lines=[Line(loc[ln.fulfillment_id], ln.sku_id, ln.quantity) for ln in lines],
            reference=number,
            user=_user(user),
            reason=reason or "order cancelled",
        )
    Fulfillment.objects.filter(pk__in=live_ids).update(status=FS.CANCELLED, updated_at=timezone.now())
    OrderLine.objects.filter(order=order).update(cancelled_quantity=F("quantity"))
    _recompute_totals(order)
    events = [
        OrderEvent(
            order=order,
            fulfillment=f,
            type=EventType.FULFILLMENT_STATUS_CHANGED,
            from_status=f.status,
            to_status=FS.CANCELLED,
            actor=_user(user),
            channel=channel,
            reason=(reason or "order cancelled")[:255],
            data={"location": f.location.code, "method": f.method},
        )
        for f in live
    ]
    events.append(
        OrderEvent(
            order=order,
            type=EventType.CANCELLED,
            from_status=order.status,
            to_status="cancelled",
            actor=_user(user),
            channel=channel,
            reason=(reason or "cancelled")[:255],
        )
    )
    events += transitions.order_status_refresh(
        order, actor=user, channel=channel, reason=reason or "cancelled"
    )
    OrderEvent.objects.bulk_create(events)
    emit(events)
    return order


@service
def order_customer_arrived(*, number: str, note: str = "", user=None, channel: str = "") -> Order:
    """Curbside: the customer is in the car park. 422 for other methods, 409 when nothing waits."""
    order, fs = _order_locked_fulfillments(number)
    if order.fulfillment_method != FulfillmentMethod.CURBSIDE:
        raise NotCurbside("Only curbside orders can report an arrival.", details={"order": number})
    note = (note or "").strip()
    if len(note) > 255:
        raise InvalidInput("note is at most 255 characters.", details={"field": "note"})
    waiting = [f for f in fs if f.status not in transitions.FINAL]
    if not waiting:
        raise InvalidTransition(
            "Nothing of this order is waiting to be handed over.",
            details={"order": number, "from": order.status, "to": "customer_arrived"},
        )
    now = timezone.now()
    Fulfillment.objects.filter(pk__in=[f.pk for f in waiting]).update(
        customer_arrived_at=now, arrival_note=note
    )
    events = [
        _event(
            f,
            EventType.CUSTOMER_ARRIVED,
            user=user,
            channel=channel,
            reason=note or "customer arrived",
            data={"location": f.location.code, "note": note},
        )
        for f in waiting
    ]
    OrderEvent.objects.bulk_create(events)
    emit(events)
    return order
