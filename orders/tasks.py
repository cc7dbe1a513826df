"""Periodic work for orders: thin wrappers around services, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def reclaim_expired_holds() -> int:
    """Give back the units of expired checkout holds (reads ignore them already)."""
    from inventory.services import holds_reclaim_expired

    return holds_reclaim_expired()


@shared_task(acks_late=True)
def purge_idempotency_keys() -> int:
    """Delete Idempotency-Key rows older than settings.OMS["IDEMPOTENCY_TTL"]."""
    from config.idempotency import idempotency_keys_purge

    return idempotency_keys_purge()


@shared_task(acks_late=True)
def send_pickup_reminders() -> int:
    """Remind customers whose pickup window ends soon, once each (orders.services.pickups)."""
    from orders.services import pickup_reminders_send

    return pickup_reminders_send()


@shared_task(acks_late=True)
def expire_pickups() -> int:
    """Cancel pickups nobody collected in their window, releasing their stock (orders.services.pickups)."""
    from orders.services import pickups_expire

    return pickups_expire()
