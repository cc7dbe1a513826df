"""Callbacks other apps register to hear about stock events, inside the same transaction.

Inventory does not import the apps that listen (notifications, webhooks); they register
here from their AppConfig.ready(). A callback runs inside the stock change's transaction,
so what it writes (an outbox row) commits or rolls back with the change.
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


RestockListener = Callable[[list[Restock]], None]
_restock_listeners: list[RestockListener] = []


def on_restock(listener: RestockListener) -> RestockListener:
    if listener not in _restock_listeners:
        _restock_listeners.append(listener)
    return listener


def emit_restocks(restocks: list[Restock]) -> None:
    if restocks:
        for listener in list(_restock_listeners):
            listener(restocks)
