"""Writes of the notifications app, one module per job:

- outbox: notification rows written with their cause, published to the broker on commit
- delivery: claim, render, send, record, retry; the sweeper and the admin's resend
- back_in_stock: subscriptions, restock alerts in batches and waves
- webhooks: endpoints (register, delete, resume, pause) and publishing events to them
- order_events: which order events the customer hears about and which webhooks they make
- context: a message's language, JSON-safe values and a store's details

Everything other apps, tasks, the admin, the API and tests use is re-exported here, so
`from notifications.services import notification_enqueue` keeps working.
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
    CLAIM_GROUP,
    notification_claim,
    notification_deliver,
    notification_render,
    notification_resend,
    notifications_claim,
    notifications_deliver,
    notifications_requeue_due,
    sms_number,
)
from .order_events import order_events_notify
from .outbox import (
    PUBLISH_CHUNK,
    customer_channels,
    customer_notifications,
    enqueue_deliveries,
    enqueue_delivery,
    notification_enqueue,
    outbox_write,
)
from .webhooks import (
    webhook_delete,
    webhook_deliveries,
    webhook_publish,
    webhook_register,
    webhook_resume,
)

__all__ = [
    "CLAIM_GROUP",
    "PUBLISH_CHUNK",
    "back_in_stock_subscribe",
    "back_in_stock_token",
    "back_in_stock_unsubscribe",
    "back_in_stock_unsubscribe_url",
    "customer_channels",
    "customer_notifications",
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
    "outbox_write",
    "restock_alert_next_wave",
    "restock_alert_process_batch",
    "restock_alerts_advance",
    "restock_alerts_create",
    "sms_number",
    "webhook_delete",
    "webhook_deliveries",
    "webhook_publish",
    "webhook_register",
    "webhook_resume",
]
