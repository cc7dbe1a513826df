"""Callbacks other apps register to hear about stock events, inside the same transaction.

Inventory does not import the apps that listen (notifications, webhooks); they register
here from their AppConfig.ready(). A callback runs inside the stock change's transaction,
so what it writes (an outbox row) commits or rolls back with the change.

Two events, both about one SKU at one location, emitted by inventory.services.changes:
- `Restock`: availability went from nothing to something;
- `OutOfStock`: availability went from something to nothing.

And one question, asked by `transfer_receive` before it counts a transfer in: `TransferArrival`.
A listener (orders' ship to store) may claim the arriving units for an order: they are counted in
already reserved (one ledger row, no moment in which another buyer could take them), and its
`then` runs after the stock change, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Restock:
    """A SKU went from nothing available to some available at a location."""

    sku_id: int
    location_id: int
    available: int
    kind: str  # the movement kind that caused it


@dataclass(frozen=True)
class OutOfStock:
    """A SKU went from some available to none at a location."""

    sku_id: int
    location_id: int
    kind: str  # the movement kind that caused it


RestockListener = Callable[[list[Restock]], None]
OutOfStockListener = Callable[[list[OutOfStock]], None]
_restock_listeners: list[RestockListener] = []
_out_of_stock_listeners: list[OutOfStockListener] = []


def on_restock(listener: RestockListener) -> RestockListener:
    if listener not in _restock_listeners:
        _restock_listeners.append(listener)
    return listener


def emit_restocks(restocks: list[Restock]) -> None:
    if restocks:
        for listener in list(_restock_listeners):
            listener(restocks)


def on_out_of_stock(listener: OutOfStockListener) -> OutOfStockListener:
    if listener not in _out_of_stock_listeners:
        _out_of_stock_listeners.append(listener)
    return listener


def emit_out_of_stock(events: list[OutOfStock]) -> None:
    if events:
        for listener in list(_out_of_stock_listeners):
            listener(events)


@dataclass(frozen=True)
class TransferArrival:
    """A transfer being received (its row locked): units sent and units counted in, per SKU id."""

    transfer_id: int
    to_location_id: int
    sent: dict[int, int]
    received: dict[int, int]
    user: object = None


@dataclass(frozen=True)
class ArrivalClaim:
    """Units of an arriving transfer to count in as reserved ({sku_id: units}, at most what was
    received), and what to do once they are (in the receipt's transaction)."""

    reserve: dict[int, int]
    then: Callable[[], None]


ArrivalListener = Callable[[TransferArrival], "ArrivalClaim | None"]
_arrival_listeners: list[ArrivalListener] = []


def on_transfer_arrival(listener: ArrivalListener) -> ArrivalListener:
    if listener not in _arrival_listeners:
        _arrival_listeners.append(listener)
    return listener


def claim_arrival(arrival: TransferArrival) -> list[ArrivalClaim]:
    """Ask every listener; the claims they make (each locks what it changes before the stock)."""
    return [c for listener in list(_arrival_listeners) if (c := listener(arrival)) is not None]
