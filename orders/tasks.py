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
