"""Writes of the notifications app, one module per job:

- outbox: notification rows written with their cause, published to the broker on commit
- delivery: claim, render, send, record, retry; the sweeper and the admin's resend
- back_in_stock: subscriptions, restock alerts in batches and waves
- webhooks: endpoints (register, delete, resume, pause) and publishing events to them
- order_events: which order events the customer hears about and which webhooks they make
- context: a message's language, JSON-safe values and a store's details

The public services, and every name that tasks, listeners, the admin, the API, bench/ and tests
use, are re-exported here, so `from notifications.services import notification_enqueue` keeps
working. The steps inside a job (row builders, `outbox_write`) are imported from their module.
"""

from .back_in_stock import (
    back_in_stock_subscribe,
    back_in_stock_token,
    back_in_stock_unsubscribe,
    back_in_stock_unsubscribe_url,
    enqueue_restock_batch,
    restock_alert_next_wave,
    restock_alert_process_batch,
    restock_alerts_advance,
    restock_alerts_create,
)
from .delivery import (
    notification_claim,
    notification_deliver,
    notification_render,
    notification_resend,
    notifications_claim,
    notifications_deliver,
    notifications_requeue_due,
)
from .order_events import order_events_notify
from .outbox import (
    PUBLISH_CHUNK,
    enqueue_deliveries,
    enqueue_delivery,
    notification_enqueue,
)
from .webhooks import (
    out_of_stock_publish,
    webhook_delete,
    webhook_publish,
    webhook_register,
    webhook_resume,
)

__all__ = [
    "PUBLISH_CHUNK",
    "back_in_stock_subscribe",
    "back_in_stock_token",
    "back_in_stock_unsubscribe",
    "back_in_stock_unsubscribe_url",
    "enqueue_deliveries",
    "enqueue_delivery",
    "enqueue_restock_batch",
    "notification_claim",
    "notification_deliver",
    "notification_enqueue",
    "notification_render",
    "notification_resend",
    "notifications_claim",
    "notifications_deliver",
    "notifications_requeue_due",
    "order_events_notify",
    "out_of_stock_publish",
    "restock_alert_next_wave",
    "restock_alert_process_batch",
    "restock_alerts_advance",
    "restock_alerts_create",
    "webhook_delete",
    "webhook_publish",
    "webhook_register",
    "webhook_resume",
]
