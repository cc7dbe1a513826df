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
    """`stock.out_of_stock` webhooks: a SKU's availability at a location reached zero (inventory.hooks).

    Runs inside the stock change's transaction, on the flash sale's path when it sells the last
    unit: without a subscriber to the event it reads only the (cached) endpoint list.
    """
    from django.utils import timezone

    from inventory.models import Sku
    from stores.models import Location

    from .selectors import active_webhook_endpoints_cached
    from .services import webhook_publish
    from .webhooks import event_matches

    event_type = "stock.out_of_stock"
    endpoints = [ep for ep in active_webhook_endpoints_cached() if event_matches(ep.events, event_type)]
    if not endpoints:
        return
    skus = dict(Sku.objects.filter(pk__in={e.sku_id for e in events}).values_list("pk", "code"))
    locations = dict(
        Location.objects.filter(pk__in={e.location_id for e in events}).values_list("pk", "code")
    )
    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
    for e in events:
        webhook_publish(
            event_type=event_type,
            data={
                "sku": skus.get(e.sku_id),
                "location": locations.get(e.location_id),
                "available": 0,
                "cause": e.kind,
            },
            dedupe_key=f"out_of_stock:{e.sku_id}:{e.location_id}:{stamp}",
            endpoints=endpoints,
        )
