"""Exchanges: the customer brings units back and takes another SKU instead (another size), in the
receipt's transaction (`return_receive` calls these; docs/returns.md, "Exchanges").

    exchanges_wanted   which received lines are exchanged, for which SKU at which price: checked
                       before anything is written (404 unknown SKU, 422 no longer sold, 400 input)
    exchanges_place    the replacement as a new order for the return's customer: a pickup reserved
                       at the receiving store for what it has, shipped to the order's address for
                       what it has not; 409 `exchange_unavailable` naming the lines nobody can fill
    exchange_balance   the price difference, netted over the return: owed by the customer
                       (Return.amount_due, `return.payment_due`) or refunded (`exchange_difference`)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from config.errors import InvalidInput, PolicyViolation
from inventory.exceptions import InsufficientStock, StockConflict, UnknownSku
from inventory.models import Sku
from inventory.selectors import available_at, stock_for_skus
from inventory.services.changes import lock_levels
from orders.models import Channel, EventType, Order, OrderEvent
from orders.services import CustomerIn, FulfillmentIn, LineIn, order_place
from orders.services.inputs import CENT, CURRENCY_MINOR_UNITS, MAX_UNIT_PRICE
from stores.models import Location, LocationKind

from ..exceptions import ExchangeUnavailable
from ..models import Return, ReturnLine
from .policy import ReceiveLineIn
from .refunds import currency_quantum


@dataclass(frozen=True)
class Exchange:
    """Units of one return line taken back and replaced by `quantity` units of `sku`."""

    index: int  # the line's position in the receipt's input (errors name `lines[index]`)
    line: ReturnLine
    sku: Sku  # the replacement
    quantity: int  # the units received on the line: each is replaced
    unit_price: Decimal  # the replacement's, in the order's currency
    paid: Decimal  # what the returned units were paid each (the order line's unit price)

    def difference(self, currency: str) -> Decimal:
        """What the customer owes for this line (negative: what is owed back), in the currency."""
        value = (self.unit_price - self.paid) * self.quantity
        return value.quantize(currency_quantum(currency), rounding=ROUND_HALF_UP).quantize(CENT)


def exchanges_wanted(
    ret: Return, lines: Sequence[ReceiveLineIn], return_lines: dict[str, ReturnLine]
) -> list[Exchange]:
    """The received lines that are exchanged, checked before the receipt writes anything.

    A line's exchange is what the receipt says (`exchange_for`: a SKU; "" for none, a refund
    instead), else what the customer asked for with the return. The replacement's unit price is the
    receipt's `exchange_unit_price`, else what the returned units were paid. Refusals, naming the
    line (`details.field`): an unknown SKU 404 `unknown_sku`; one no longer sold 422 `sku_inactive`;
    the same replacement on two lines, a malformed price: 400. One query (the SKUs), none without
    exchanges.
    """
    wanted: list[tuple[int, ReceiveLineIn, ReturnLine, str]] = []
    for i, ln in enumerate(lines):
        rl = return_lines[ln.sku]
        code = (
            ln.exchange_for
            if ln.exchange_for is not None
            else (rl.exchange_for.code if rl.exchange_for else "")
        )
        code = (code or "").strip()
        if code:
            wanted.append((i, ln, rl, code))
    if not wanted:
        return []
    skus = {s.code: s for s in Sku.objects.filter(code__in={code for *_, code in wanted})}
    seen: dict[str, int] = {}
    exchanges = []
    for i, ln, rl, code in wanted:
        field = f"lines[{i}].exchange_for"
        sku = skus.get(code)
        if sku is None:
            raise UnknownSku(
                f"Unknown SKU {code!r} to exchange {ln.sku} for (lines[{i}]).",
                details={"field": field, "sku": ln.sku, "exchange_for": code},
            )
        if not sku.is_active:
            raise PolicyViolation(
                f"{code} is no longer sold: {ln.sku} cannot be exchanged for it (lines[{i}]).",
                code="sku_inactive",
                details={"field": field, "sku": ln.sku, "exchange_for": code},
            )
        if code in seen:
            raise InvalidInput(
                f"{code} replaces two lines (lines[{seen[code]}] and lines[{i}]): exchange one line for "
                "it and refund the other.",
                details={"field": field, "exchange_for": code, "first": f"lines[{seen[code]}]"},
            )
        seen[code] = i
        paid = rl.order_line.unit_price
        price = paid if ln.exchange_unit_price is None else _price(ln.exchange_unit_price, ret.currency, i)
        exchanges.append(Exchange(i, rl, sku, ln.quantity, price, paid))
    return exchanges


def _price(value, currency: str, i: int) -> Decimal:
    field = f"lines[{i}].exchange_unit_price"
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price < 0 or price > MAX_UNIT_PRICE:
        raise InvalidInput("exchange_unit_price must be an amount of 0 or more.", details={"field": field})
    minor = CURRENCY_MINOR_UNITS.get(currency, 2)
    if price != price.quantize(Decimal(1).scaleb(-minor)):
        raise InvalidInput(f"{currency} amounts have {minor} decimal places.", details={"field": field})
    return price.quantize(CENT)


def exchange_levels_lock(place: Location, exchanges: Sequence[Exchange], *, returned: Sequence[int]) -> None:
    """Before the receipt's stock moves: lock `place`'s levels of the returned SKUs and of the
    replacements, in primary-key order (inventory's one lock order), so that the receipt's later
    updates of them (the restock, the replacement's reservation) wait for nobody, and what
    `exchanges_place` reads available there stays true until COMMIT. Nothing without exchanges."""
    if exchanges:
        lock_levels([(place.pk, sku_id) for sku_id in [*returned, *(e.sku.pk for e in exchanges)]])


@dataclass(frozen=True)
class PlacedExchange:
    """A replacement order and the exchanges it holds."""

    order: Order
    exchanges: list[Exchange]
    pickup: bool  # reserved at the receiving store for the customer at the desk


def exchanges_place(
    ret: Return, *, place: Location, exchanges: Sequence[Exchange], user, channel: str
) -> list[PlacedExchange]:
    """Place the replacements as new orders of the return's customer, in the caller's transaction.

    What the receiving store has available (read once) is one pickup order there, reserved by
    placement's guarded reservation (no ship to store: it is there or it ships); the rest is one
    ship order to the returned order's address, routed like any ship order. Placed at the till of
    the receiving store (channel `store`, by the associate) or, received at a warehouse (mail), by
    the system on the order's channel. 409 `exchange_unavailable` naming the lines when nobody has
    the units (or there is no address to ship to), or when another order took the last unit first;
    the caller's transaction then rolls back as a whole (placement joins it without a savepoint).
    """
    at_store: list[Exchange] = []
    rest = list(exchanges)
    is_store = place.kind == LocationKind.STORE
    if is_store and place.offers_pickup:
        available = available_at(pairs=[(place.pk, e.sku.pk) for e in exchanges])
        at_store = [e for e in exchanges if available[(place.pk, e.sku.pk)] >= e.quantity]
        rest = [e for e in exchanges if e not in at_store]
    placed = []
    if at_store:
        order = _place(
            ret,
            at_store,
            place=place,
            user=user,
            fulfillment=FulfillmentIn(method="pickup", location=place.code, ship_to_store=False),
        )
        placed.append(PlacedExchange(order, at_store, True))
    if rest:
        address = ret.order.ship_address
        if not address:
            raise _unavailable(ret, rest, place, why="and the order has no address to ship to")
        _check_network_stock(ret, rest, place)
        order = _place(
            ret, rest, place=place, user=user, fulfillment=FulfillmentIn(method="ship", address=address)
        )
        placed.append(PlacedExchange(order, rest, False))
    return placed


def _place(ret: Return, exchanges: Sequence[Exchange], *, place: Location, user, fulfillment: FulfillmentIn):
    original = ret.order
    at_till = place.kind == LocationKind.STORE
    try:
        placed = order_place(
            channel=Channel.STORE if at_till else original.channel,
            customer=CustomerIn(
                email=original.contact_email, phone=original.contact_phone, name=original.contact_name
            ),
            fulfillment=fulfillment,
            lines=[LineIn(sku=e.sku.code, quantity=e.quantity, unit_price=e.unit_price) for e in exchanges],
            currency=ret.currency,
            user=user if at_till else None,
            placed_at=place.code if at_till and user is not None else None,
            note=f"Exchange for return {ret.number}",
        )
    except (InsufficientStock, StockConflict):
        # Another order took the units since the read (or routing found none after all).
        raise _unavailable(ret, exchanges, place, why="nor can any location ship it") from None
    order = placed.order
    if order.customer_id != ret.customer_id:
        # The contact matched another customer record: the exchange belongs to the return's.
        Order.objects.filter(pk=order.pk).update(customer_id=ret.customer_id)
        order.customer_id = ret.customer_id
    return order


def _check_network_stock(ret: Return, exchanges: Sequence[Exchange], place: Location) -> None:
    """Refuse at once, naming the lines, what no location has enough of (one query). Routing still
    decides where from; this only names the lines when nobody has them."""
    anywhere = stock_for_skus(sku_ids=[e.sku.pk for e in exchanges])
    short = [e for e in exchanges if sum(anywhere.get(e.sku.pk, {}).values()) < e.quantity]
    if short:
        raise _unavailable(ret, short, place, why="nor can any location ship it")


def _unavailable(
    ret: Return, exchanges: Sequence[Exchange], place: Location, *, why: str
) -> ExchangeUnavailable:
    first = exchanges[0]
    violations = [
        {
            "line": e.index,
            "field": f"lines[{e.index}].exchange_for",
            "sku": e.line.sku.code,
            "exchange_for": e.sku.code,
            "quantity": e.quantity,
        }
        for e in exchanges
    ]
    return ExchangeUnavailable(
        f"No {first.sku.code} for the exchange of {first.line.sku.code} (lines[{first.index}]): "
        f"{place.code} has none {why}. Nothing was received.",
        details={**violations[0], "location": place.code, "return": ret.number, "violations": violations},
    )


def exchange_events(
    ret: Return, placed: Sequence[PlacedExchange], *, place: Location, user, channel: str, amount_due: Decimal
) -> list[OrderEvent]:
    """EXCHANGE_PLACED in the returned order's timeline (→ `return.exchanged`) and in each new
    order's; PAYMENT_DUE in the returned order's when the customer owes the difference
    (→ `return.payment_due`)."""
    actor = user if user is not None and getattr(user, "is_authenticated", False) else None
    events = []
    for p in placed:
        lines = [
            {
                "sku": e.line.sku.code,
                "exchange_for": e.sku.code,
                "quantity": e.quantity,
                "paid": str(e.paid),
                "unit_price": str(e.unit_price),
                "difference": str(e.difference(ret.currency)),
            }
            for e in p.exchanges
        ]
        how = f"reserved at {place.code}" if p.pickup else "shipped"
        events.append(
            OrderEvent(
                order=ret.order,
                type=EventType.EXCHANGE_PLACED,
                actor=actor,
                channel=(channel or "")[:16],
                reason=f"return {ret.number}: exchange order {p.order.number}, {how}"[:255],
                data={
                    "return": ret.number,
                    "exchange_order": p.order.number,
                    "method": "pickup" if p.pickup else "ship",
                    "location": place.code,
                    "currency": ret.currency,
                    "lines": lines,
                },
            )
        )
        events.append(
            OrderEvent(
                order=p.order,
                type=EventType.EXCHANGE_PLACED,
                actor=actor,
                channel=(channel or "")[:16],
                reason=f"exchange for return {ret.number} of order {ret.order.number}"[:255],
                data={"return": ret.number, "replaces_order": ret.order.number, "lines": lines},
            )
        )
    if amount_due > 0:
        events.append(
            OrderEvent(
                order=ret.order,
                type=EventType.PAYMENT_DUE,
                actor=actor,
                channel=(channel or "")[:16],
                reason=f"return {ret.number}: the exchange costs {amount_due} {ret.currency} more"[:255],
                data={
                    "return": ret.number,
                    "amount": str(amount_due),
                    "currency": ret.currency,
                    "exchange_orders": [p.order.number for p in placed],
                },
            )
        )
    return events


def exchange_balance(ret: Return, exchanges: Sequence[Exchange]) -> Decimal:
    """The return's exchanges netted: > 0 the customer owes it, < 0 it is owed back."""
    return sum((e.difference(ret.currency) for e in exchanges), Decimal("0.00"))


__all__ = [
    "Exchange",
    "PlacedExchange",
    "exchange_balance",
    "exchange_events",
    "exchanges_place",
    "exchanges_wanted",
]
