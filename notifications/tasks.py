"""Celery tasks: thin wrappers that take ids and call a service. All are safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def deliver_notification(*, notification_id: int) -> str:
    """Claim and send one notification; a no-op when it is already sent, failed or claimed.

    Retries are not Celery retries: a failed send puts the row back to pending with
    next_attempt_at, and the sweeper re-publishes it when it is due (no long countdowns
    that outlive the broker's visibility timeout).
    """
    from .services import notification_deliver

    return notification_deliver(notification_id=notification_id)


@shared_task(acks_late=True, ignore_result=True)
def deliver_notifications(*, notification_ids: list[int]) -> dict:
    from .services import notifications_deliver

    return notifications_deliver(notification_ids=notification_ids)


@shared_task(ignore_result=True)
def notifications_sweep() -> int:
    """Beat (every 15 s): re-publish undelivered rows (lost messages, due retries, expired leases)."""
    from .services import notifications_requeue_due

    return notifications_requeue_due()


@shared_task(acks_late=True, ignore_result=True)
def restock_alert_batch(*, restock_alert_id: int) -> int:
    """Queue the next batch of back-in-stock alerts of a restock (chains itself until the wave is done)."""
    from .services import restock_alert_process_batch

    return len(restock_alert_process_batch(restock_alert_id=restock_alert_id))


@shared_task(ignore_result=True)
def restock_alerts_advance() -> int:
    """Beat (every minute): start due waves; re-kick restocks whose batch message was lost."""
    from .services import restock_alerts_advance as advance

    return advance()
