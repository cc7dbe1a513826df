"""What a caller sends to order placement and checkout holds, checked without touching the database.

`order_request(...)` turns the raw inputs into an `OrderRequest`, or raises the first problem it
finds (400 / 422, in the error shape of API.md). Everything that needs a database row (the store,
the SKUs, the customer) is checked later, after placement's one lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from config.contacts import normalise_email, normalise_phone
from config.errors import InvalidInput
from inventory.services import validate_quantity

from ..exceptions import CurrencyMismatch, DuplicateLine
from ..models import ORDER_METHOD_CHOICES, Channel, FulfillmentMethod

PICKUP_METHODS = frozenset({FulfillmentMethod.PICKUP, FulfillmentMethod.CURBSIDE})
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
MAX_CUSTOMER_NOTE = 500  # Order.customer_note
CENT = Decimal("0.01")


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
    # Pickup, when the store is short: None = ship to store if the store allows it, True = it must
    # (422 at a store that does not allow it), False = never (409 when short, as without it).
    ship_to_store: bool | None = None


@dataclass(frozen=True)
class LineIn:
    sku: str
    quantity: int
    unit_price: Decimal | str | None = None
    currency: str | None = None


@dataclass(frozen=True)
class CustomerKeys:
    """A customer as placement matches them: normalised email and/or phone, and a name."""

    email: str | None
    phone: str | None
    name: str


@dataclass(frozen=True)
class Destination:
    """How the goods reach the customer: the method, the pickup store's code, or the ship address."""

    method: str
    store_code: str | None  # pickup and curbside
    address: dict  # ship; empty for pickup
    coordinates: tuple[float, float] | None  # the ship address's, when it gave them
    ship_to_store: bool | None = None  # pickup: FulfillmentIn.ship_to_store

    @property
    def is_pickup(self) -> bool:
        return self.method in PICKUP_METHODS


@dataclass(frozen=True)
class OrderRequest:
    """An order's input once every check that needs no database has passed."""

    channel: str
    destination: Destination
    lines: tuple[LineIn, ...]
    line_index: dict[str, int]  # SKU code -> its line's position (one line per SKU)
    currency: str
    unit_prices: tuple[Decimal, ...]  # per line, quantized to cents
    customer: CustomerKeys
    note: str = ""  # what the customer wants the store to know, stripped


def order_request(
    *,
    channel: str,
    customer: CustomerIn | None,
    fulfillment: FulfillmentIn | None,
    lines,
    currency,
    note: str | None = "",
) -> OrderRequest:
    """Check an order's input in the order a caller fixes its mistakes: channel, destination, lines
    and prices, customer, then each line's SKU and quantity."""
    if channel not in Channel.values:
        raise InvalidInput(
            f"Unknown channel {channel!r}.", details={"field": "channel", "allowed": list(Channel.values)}
        )
    destination = destination_of(fulfillment)
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    currency, prices = money_of(lines, currency)
    if customer is None:
        raise InvalidInput("customer is required.", details={"field": "customer"})
    keys = customer_keys(email=customer.email, phone=customer.phone, name=customer.name)
    note = customer_note(note)
    return OrderRequest(
        channel=channel,
        destination=destination,
        lines=tuple(lines),
        line_index=line_index(lines),
        currency=currency,
        unit_prices=tuple(prices),
        customer=keys,
        note=note,
    )


def customer_note(note) -> str:
    """The customer's note, stripped: text of at most MAX_CUSTOMER_NOTE characters ("" for none)."""
    if note is None:
        return ""
    if not isinstance(note, str):
        raise InvalidInput("note must be text.", details={"field": "note"})
    note = note.strip()
    if len(note) > MAX_CUSTOMER_NOTE:
        raise InvalidInput(
            f"note is at most {MAX_CUSTOMER_NOTE} characters.",
            details={"field": "note", "max_length": MAX_CUSTOMER_NOTE, "length": len(note)},
        )
    return note


def customer_keys(*, email, phone, name) -> CustomerKeys:
    email = normalise_email(email, field="customer.email")
    phone = normalise_phone(phone, field="customer.phone")
    if not email and not phone:
        raise InvalidInput("The customer needs an email or a phone number.", details={"field": "customer"})
    return CustomerKeys(email, phone, (name or "").strip()[:200])


def destination_of(fulfillment: FulfillmentIn | None) -> Destination:
    """The method, the pickup store's code or the ship address (with valid coordinates, if any)."""
    if fulfillment is None:
        raise InvalidInput("fulfillment is required.", details={"field": "fulfillment"})
    allowed = [value for value, _ in ORDER_METHOD_CHOICES]
    if fulfillment.method not in allowed:
        raise InvalidInput(
            f"Unknown fulfillment method {fulfillment.method!r}.",
            details={"field": "fulfillment.method", "allowed": allowed},
        )
    ship_to_store = getattr(fulfillment, "ship_to_store", None)
    if fulfillment.method in PICKUP_METHODS:
        if not fulfillment.location:
            raise InvalidInput(
                "A pickup store is required for pickup and curbside.",
                details={"field": "fulfillment.location"},
            )
        return Destination(fulfillment.method, fulfillment.location, {}, None, ship_to_store)
    if ship_to_store:
        raise InvalidInput(
            "ship_to_store is for pickup and curbside orders.", details={"field": "fulfillment.ship_to_store"}
        )
    address = fulfillment.address
    if not isinstance(address, dict) or not address:
        raise InvalidInput("A ship order needs an address.", details={"field": "fulfillment.address"})
    return Destination(fulfillment.method, None, dict(address), _coordinates(address))


def _coordinates(address: dict) -> tuple[float, float] | None:
    lat, lng = address.get("latitude"), address.get("longitude")
    if lat is None and lng is None:
        return None
    try:
        lat, lng = float(lat), float(lng)
    except (TypeError, ValueError):
        raise InvalidInput(
            "latitude and longitude must both be numbers.", details={"field": "fulfillment.address.latitude"}
        ) from None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise InvalidInput(
            "latitude/longitude out of range.", details={"field": "fulfillment.address.latitude"}
        )
    return (lat, lng)


def line_index(lines: Sequence[LineIn]) -> dict[str, int]:
    """Each line's SKU code with its position; one line per SKU, quantities whole and positive."""
    if not lines:
        raise InvalidInput("At least one line is needed.", details={"field": "lines"})
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"At most {MAX_LINES} lines per request.", details={"field": "lines"})
    index: dict[str, int] = {}
    for i, ln in enumerate(lines):
        if not isinstance(ln.sku, str) or not ln.sku:
            raise InvalidInput("sku is required.", details={"field": f"lines[{i}].sku"})
        if ln.sku in index:
            raise DuplicateLine(
                f"SKU {ln.sku} appears twice; send one line per SKU with the total quantity.",
                details={"field": f"lines[{i}].sku", "sku": ln.sku, "first": f"lines[{index[ln.sku]}]"},
            )
        index[ln.sku] = i
        validate_quantity(ln.quantity, field=f"lines[{i}].quantity")
    return index


def money_of(lines: Sequence[LineIn], currency) -> tuple[str, list[Decimal]]:
    """The order's currency and each line's unit price, in that currency's minor units."""
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
        field = f"lines[{i}].unit_price"
        if ln.currency is not None and str(ln.currency).upper() != currency:
            raise CurrencyMismatch(
                f"Line currency {ln.currency} differs from the order's {currency}.",
                details={"field": f"lines[{i}].currency", "currency": currency},
            )
        price = _decimal(ln.unit_price)
        if price is None:
            raise InvalidInput("unit_price must be a decimal amount.", details={"field": field})
        if price < 0:
            raise InvalidInput("unit_price must not be negative.", details={"field": field})
        if price > MAX_UNIT_PRICE:
            raise InvalidInput("unit_price is too large.", details={"field": field})
        if -price.as_tuple().exponent > minor and price != price.quantize(Decimal(1).scaleb(-minor)):
            raise CurrencyMismatch(
                f"{currency} amounts have {minor} decimal places.",
                details={"field": field, "currency": currency},
            )
        prices.append(price.quantize(CENT))
    return currency, prices


def _decimal(value) -> Decimal | None:
    if value is None:
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return price if price.is_finite() else None
