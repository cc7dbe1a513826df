"""Order and fulfillment events, heard by other apps inside the same transaction.

orders.services calls `emit(events)` with the OrderEvent rows it has just written (in the
transaction that made the change). The notifications app registers a listener from its
AppConfig.ready() that writes outbox rows for the events a customer hears about, so the
notification commits or rolls back with the change itself. Orders never imports notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import OrderEvent

OrderEventListener = Callable[[Sequence["OrderEvent"]], None]
_listeners: list[OrderEventListener] = []


def on_order_events(listener: OrderEventListener) -> OrderEventListener:
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def emit(events: Sequence[OrderEvent]) -> None:
    if events:
        for listener in list(_listeners):
            listener(events)
