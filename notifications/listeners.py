"""Hook listeners registered in NotificationsConfig.ready(); they run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence


def order_events(events: Sequence) -> None:
    from .services import order_events_notify

    order_events_notify(events=events)


def restocks(restocks: Sequence) -> None:
    from .services import restock_alerts_create

    restock_alerts_create(restocks=restocks)


def out_of_stock(events: Sequence) -> None:
    from .services import out_of_stock_publish

    out_of_stock_publish(events=events)
