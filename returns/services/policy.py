"""The return rules, in one place (docs/returns.md): what callers send, checked without the database;
who may ask for whom; the return window; what a line may still give back; where returns go.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from config.contacts import normalise_email, normalise_phone
from config.errors import Forbidden, InvalidInput
from inventory.services import validate_quantity
from orders.exceptions import UnknownOrder
from orders.models import FulfillmentLine, FulfillmentMethod, FulfillmentStatus, Order, OrderLine
from orders.services.codes import code_matches
from stores.models import Location, LocationKind, Role
from stores.selectors import (
    distance_from,
    location_get,
    require_location_access,
    user_location_ids,
    user_role,
)

from ..exceptions import LocationNotTakingReturns, NoReturnsWarehouse, ReturnRefused
from ..models import ReturnCondition, ReturnMethod, ReturnReason

MAX_REASON_TEXT = 500
MAX_NOTE = 500


@dataclass(frozen=True)
class ReturnLineIn:
    """A line of a return request: units of one SKU of the order, and why."""

    sku: str
    quantity: int
    reason: str  # ReturnReason
    reason_text: str = ""
    exchange_for: str | None = None  # the SKU the customer would like instead (exchanged on receipt)


@dataclass(frozen=True)
class ReceiveLineIn:
    """Units of one SKU of the return taken back at the desk or the warehouse, and their condition."""

    sku: str
    quantity: int
    condition: str  # ReturnCondition
    # An exchange (docs/returns.md, "Exchanges"): None = what the customer asked with the return;
    # "" = none (refund the units); a SKU code = exchange the received units for it.
    exchange_for: str | None = None
    # The replacement's unit price; None = what the returned units were paid.
    exchange_unit_price: object = None


# --- Input, checked without the database ----------------------------------------------------------


def _sku_lines(lines: Sequence, *, twice: str):
    """(field prefix, line) of request or receipt lines, after the checks both share: at least one
    line, each with a SKU code given once and a whole quantity of 1 or more (400 naming the field)."""
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    seen: set[str] = set()
    for i, ln in enumerate(lines):
        field = f"lines[{i}]"
        if not isinstance(ln.sku, str) or not ln.sku:
            raise InvalidInput("sku is required.", details={"field": f"{field}.sku"})
        if ln.sku in seen:
            raise InvalidInput(
                f"SKU {ln.sku} is on two lines: {twice}.", details={"field": f"{field}.sku", "sku": ln.sku}
            )
        seen.add(ln.sku)
        validate_quantity(ln.quantity, field=f"{field}.quantity")
        yield field, ln


def check_request_input(*, lines: Sequence[ReturnLineIn], method: str, note: str) -> str:
    """400 `invalid` naming the field for malformed input; the note, trimmed."""
    if method not in ReturnMethod.values:
        raise InvalidInput(
            f"Unknown method {method!r}.", details={"field": "method", "allowed": list(ReturnMethod.values)}
        )
    for field, ln in _sku_lines(lines, twice="give it once"):
        if ln.reason not in ReturnReason.values:
            raise InvalidInput(
                f"Unknown reason {ln.reason!r}.",
                details={"field": f"{field}.reason", "allowed": list(ReturnReason.values)},
            )
        if not isinstance(ln.reason_text, str) or len(ln.reason_text) > MAX_REASON_TEXT:
            raise InvalidInput(
                f"reason_text is at most {MAX_REASON_TEXT} characters.",
                details={"field": f"{field}.reason_text"},
            )
        if ln.reason == ReturnReason.OTHER and not ln.reason_text.strip():
            raise InvalidInput(
                "Say why in reason_text when the reason is 'other'.",
                details={"field": f"{field}.reason_text"},
            )
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"note is at most {MAX_NOTE} characters.", details={"field": "note"})
    return note


def check_receive_input(lines: Sequence[ReceiveLineIn]) -> None:
    for field, ln in _sku_lines(lines, twice="a return line is received once, in one condition"):
        if ln.condition not in ReturnCondition.values:
            raise InvalidInput(
                f"Unknown condition {ln.condition!r}.",
                details={"field": f"{field}.condition", "allowed": list(ReturnCondition.values)},
            )
        if ln.exchange_for is not None and (
            not isinstance(ln.exchange_for, str) or len(ln.exchange_for) > 64
        ):
            raise InvalidInput("exchange_for is a SKU code.", details={"field": f"{field}.exchange_for"})


# --- Who asks, for which order -------------------------------------------------------------------


def acting(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def asker_kind(user) -> str:
    """ "system" (no user), "storefront" (for its customers: proof needed), "desk" (store staff,
    superusers and network managers: the order in front of them). Warehouse staff do not ask (403)."""
    who = acting(user)
    if who is None:
        return "system"
    if who.is_superuser:
        return "desk"
    role = user_role(who)
    if role == Role.STOREFRONT:
        return "storefront"
    if role in (Role.ASSOCIATE, Role.MANAGER):
        return "desk"
    raise Forbidden("Returns are asked for by the storefront or at a store's returns desk.")


def order_for_return(
    *, number: str, kind: str, user, email: str | None, phone: str | None, receipt_code: str | None
) -> Order:
    """The order, found by its exact number; 404 `unknown_order` when there is none, when the
    storefront does not serve its customer, or when a proof given does not match (nothing says
    which). The storefront must give a proof: the order's email, phone or receipt code (400)."""
    from orders.selectors import visible_orders  # orders' one rule

    number = (number or "").strip().upper()
    qs = Order.objects.select_related("customer", "pickup_location").filter(number=number)
    if kind == "storefront":
        if not (email or phone or receipt_code):
            raise InvalidInput(
                "Prove the purchase: the order's email, phone or receipt code.", details={"field": "email"}
            )
        qs = visible_orders(qs, user)
    order = qs.first() if number else None
    if order is None or not _proof_matches(order, email=email, phone=phone, receipt_code=receipt_code):
        raise UnknownOrder(
            f"Unknown order {number!r}, or it does not match what was given.", details={"order": number}
        )
    return order


def _proof_matches(order: Order, *, email, phone, receipt_code) -> bool:
    """Every proof given matches the order (as given on it: `contact_*`, or the customer's own)."""
    if email:
        try:
            given = normalise_email(email)
        except InvalidInput:
            return False
        if given not in {order.contact_email, order.customer.email} - {None, ""}:
            return False
    if phone:
        given = None
        with contextlib.suppress(InvalidInput):
            given = normalise_phone(phone)
        if not given or given not in {order.contact_phone, order.customer.phone} - {None, ""}:
            return False
    return not receipt_code or code_matches(receipt_code, order.receipt_code)


# --- Where the return goes -----------------------------------------------------------------------


def takes_returns(location: Location, *, method: str) -> bool:
    """Stores that accept returns take both kinds (a parcel can be brought in person);
    warehouses that accept returns take mail returns only."""
    if not (location.is_active and location.accepts_returns):
        return False
    return location.kind == LocationKind.STORE or method == ReturnMethod.MAIL


def require_takes_returns(location: Location, *, method: str, field: str = "location") -> None:
    if not takes_returns(location, method=method):
        what = "returns" if location.kind == LocationKind.STORE else "in-store returns"
        raise LocationNotTakingReturns(
            f"{location.code} does not take {what}.",
            details={"field": field, "location": location.code, "kind": location.kind, "method": method},
        )


def expected_location(*, kind: str, user, method: str, code: str | None, order: Order) -> Location | None:
    """Where the return is expected. In store: the store given (it must take returns; at a desk it
    must be one of the user's, 403), or at a desk the user's only store; none (any store) online.
    By mail: the warehouse given, else the returns warehouse (`returns_warehouse`)."""
    if code:
        location = location_get(code=code)
        if kind == "desk":
            require_location_access(user, location)
        require_takes_returns(location, method=method)
        if method == ReturnMethod.MAIL and location.kind != LocationKind.WAREHOUSE:
            raise LocationNotTakingReturns(
                f"Mail returns go to a warehouse, not {location.code}.",
                details={"field": "location", "location": location.code},
            )
        return location
    if method == ReturnMethod.MAIL:
        return returns_warehouse(near=order_coordinates(order))
    if kind == "desk":
        ids = user_location_ids(user)
        stores = list(Location.objects.filter(pk__in=ids or [], kind=LocationKind.STORE)[:2]) if ids else []
        if len(stores) == 1:
            require_takes_returns(stores[0], method=method)
            return stores[0]
        raise InvalidInput("Say which store takes the return back (location).", details={"field": "location"})
    return None


def returns_warehouse(*, near: tuple[float, float] | None) -> Location:
    """The warehouse the retailer set (OMS["RETURNS_WAREHOUSE"]), else the nearest active warehouse
    that accepts returns (to `near`; without coordinates the first by code). 422 when there is none."""
    code = settings.OMS.get("RETURNS_WAREHOUSE") or ""
    if code:
        found = Location.objects.filter(code=code, is_active=True).first()
        if found is not None:
            return found
    candidates = list(
        Location.objects.filter(kind=LocationKind.WAREHOUSE, is_active=True, accepts_returns=True)
    )
    if not candidates:
        raise NoReturnsWarehouse("No warehouse takes returns.", details={"setting": "OMS_RETURNS_WAREHOUSE"})
    if near is None:
        return min(candidates, key=lambda loc: loc.code)
    km = distance_from(*near)
    return min(candidates, key=lambda loc: (km(loc.latitude, loc.longitude), loc.code))


def order_coordinates(order: Order) -> tuple[float, float] | None:
    """Where the customer is: the pickup store, else the ship address."""
    if order.pickup_location is not None:
        return order.pickup_location.latitude, order.pickup_location.longitude
    if order.destination_latitude is not None and order.destination_longitude is not None:
        return order.destination_latitude, order.destination_longitude
    return None


def nearest_return_stores(
    *, order: Order, first: Location | None = None, limit: int | None = None
) -> list[dict]:
    """The stores the customer's message lists: `first` (the store chosen), then the nearest active
    stores that accept returns (OMS["RETURN_STORES_IN_MESSAGE"]). One query."""
    limit = settings.OMS["RETURN_STORES_IN_MESSAGE"] if limit is None else limit
    stores = list(
        Location.objects.filter(kind=LocationKind.STORE, is_active=True, accepts_returns=True).only(
            "code", "name", "address", "city", "latitude", "longitude"
        )
    )
    near = order_coordinates(order)
    if near is not None:
        km = distance_from(*near)
        stores.sort(key=lambda loc: (km(loc.latitude, loc.longitude), loc.code))
    else:
        stores.sort(key=lambda loc: loc.code)
    if first is not None:
        stores = [first, *[s for s in stores if s.pk != first.pk]]
    return [{"code": s.code, "name": s.name, "address": s.address} for s in stores[:limit]]


# --- What a line may give back -------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    units: int  # handed to the customer (collected, or shipped: delivery is not tracked)
    at: dt.datetime | None  # when the last of them was (the window starts there)


def delivered_units(order_lines: Sequence[OrderLine]) -> dict[int, Delivered]:
    """Per order line: the units its collected or shipped fulfillments carried to the customer, and
    when the last of them left (collected_at, else shipped_at). One query. A warehouse's `to_store`
    leg of a ship-to-store order is not a delivery (its pickup fulfillment is)."""
    units: dict[int, int] = defaultdict(int)
    at: dict[int, dt.datetime] = {}
    rows = (
        FulfillmentLine.objects.filter(
            order_line_id__in=[ol.pk for ol in order_lines],
            fulfillment__status__in=(FulfillmentStatus.COLLECTED, FulfillmentStatus.SHIPPED),
        )
        .filter(~Q(fulfillment__method=FulfillmentMethod.TO_STORE))
        .values_list("order_line_id", "quantity", "fulfillment__collected_at", "fulfillment__shipped_at")
    )
    for line_id, quantity, collected_at, shipped_at in rows:
        units[line_id] += quantity
        when = collected_at or shipped_at
        if when is not None and (line_id not in at or when > at[line_id]):
            at[line_id] = when
    return {ol.pk: Delivered(units.get(ol.pk, 0), at.get(ol.pk)) for ol in order_lines}


def window_days(category: str) -> int:
    """The return window of a SKU category (OMS["RETURN_WINDOW_DAYS_BY_CATEGORY"], else the default)."""
    by_category = settings.OMS.get("RETURN_WINDOW_DAYS_BY_CATEGORY") or {}
    return int(by_category.get(category, settings.OMS["RETURN_WINDOW_DAYS"]))


def line_violations(
    *,
    lines: Sequence[ReturnLineIn],
    order_lines: dict[str, OrderLine],
    delivered: dict[int, Delivered],
    now=None,
) -> list[dict]:
    """Every rule a requested line breaks, in line order: not returnable, not delivered yet, outside
    its window, more than it may still give back (bought and delivered, minus what other returns
    not cancelled already asked for). Empty: every line may be returned."""
    now = now or timezone.now()
    out = []
    for i, ln in enumerate(lines):
        ol = order_lines[ln.sku]
        base = {"line": i, "field": f"lines[{i}]", "sku": ln.sku}
        d = delivered[ol.pk]
        if not ol.sku.returnable:
            out.append({**base, "rule": "not_returnable"})
            continue
        if d.units == 0 or d.at is None:
            out.append({**base, "rule": "not_delivered"})
            continue
        days = window_days(ol.sku.category)
        closes = d.at + dt.timedelta(days=days)
        if now > closes:
            out.append(
                {
                    **base,
                    "rule": "return_window_closed",
                    "window_days": days,
                    "delivered_at": d.at.isoformat(),
                    "closed_at": closes.isoformat(),
                }
            )
            continue
        returnable = max(d.units - ol.returned_quantity, 0)
        if ln.quantity > returnable:
            out.append(
                {
                    **base,
                    "rule": "more_than_returnable",
                    "requested": ln.quantity,
                    "returnable": returnable,
                    "delivered": d.units,
                    "already_returned": ol.returned_quantity,
                }
            )
    return out


_RULE_TEXT = {
    "not_returnable": "{sku} cannot be returned",
    "not_delivered": "{sku} has not been handed over yet",
    "return_window_closed": "{sku}: the return window closed on {closed_at}",
    "more_than_returnable": "{sku}: at most {returnable} more may be returned",
    "not_on_order": "{sku} is not on this order",
}


def refused(violations: list[dict]) -> ReturnRefused:
    """The 422: its code the first line's rule, its message that line, every violation in details."""
    first = violations[0]
    message = _RULE_TEXT[first["rule"]].format(**first) + f" (lines[{first['line']}])."
    return ReturnRefused(message, code=first["rule"], details={**first, "violations": violations})
