"""Delivery: claim an outbox row, render it, send it on its channel, record the outcome, retry.

The guarantee (what a customer can count on):
- Never two sends by us for one claim: `notifications_claim` is one conditional UPDATE (pending
  and due, or sending with an expired lease) -> sending, with a fresh claim token, lease_until
  and attempts + 1. Only the worker whose UPDATE matched sends; a duplicate task message, a
  retried task or a second worker finds nothing to claim and returns. The outcome is written
  only by the claim-token holder (`_finish`).
- The one window left: a worker killed after the provider accepted a message and before the
  row was marked sent. After the lease expires the row is claimed and sent again, with the SAME
  idempotency key (email Message-ID `<notification-{id}@domain>`, SMS `Idempotency-Key`,
  webhook `webhook-id`), so a provider or receiver that deduplicates on it shows it once and
  anyone else can detect the duplicate. Exactly-once is not promised past that window; a kill
  before the provider accepted the message (the common case: the send is in flight) causes no
  duplicate at all.
- Batches (`notifications_deliver`) claim CLAIM_GROUP rows per UPDATE and record each outcome
  right after its own send; those writes skip the WAL flush wait on PostgreSQL
  (`notifications.db.relaxed_durability`: only a database crash, not a worker crash, can make
  them forgotten, and then the row is sent again with the same idempotency key).
- Failures retry with exponential backoff (RETRY_BASE_SECONDS * 2^(attempt-1), capped, +10 %
  jitter) until MAX_ATTEMPTS, then the row is `failed` with its last error (admin: resend).
- Nothing lost: rows whose task message was lost, retries that are due and rows whose claim
  lease expired are published again by the sweeper (`notifications_requeue_due`, beat).

No row lock is held while a provider is called: claiming and recording are separate statements
in autocommit, not one transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone

from config.contacts import normalise_phone
from config.errors import InvalidInput

from .. import channels
from ..channels import PermanentDeliveryError, Rendered, TransientDeliveryError
from ..db import relaxed_durability
from ..models import DeliveryChannel, Notification, NotificationStatus, WebhookStatus
from .context import message_language
from .outbox import PUBLISH_CHUNK, enqueue_deliveries, enqueue_delivery
from .webhooks import webhook_endpoint_failed, webhook_endpoint_succeeded

logger = logging.getLogger(__name__)

CLAIM_GROUP = 20  # rows claimed per UPDATE in a batch
# Stop claiming after this long in one task (CELERY_TASK_SOFT_TIME_LIMIT is 90 s).
DELIVERY_BUDGET_SECONDS = 45.0
RETRY = "retry"  # the outcome of a failed send that will be tried again


# --- Rendering ---------------------------------------------------------------------------------


def notification_render(notification: Notification) -> Rendered:
    """Render the event's template for the channel in the notification's language (English fallback)."""
    lang = message_language(notification.language)
    names = [
        f"notifications/{notification.event}/{notification.channel}.{lang}.txt",
        f"notifications/{notification.event}/{notification.channel}.en.txt",
    ]
    try:
        text = render_to_string(names, notification.context or {}).strip()
    except TemplateDoesNotExist as exc:
        raise PermanentDeliveryError(f"no template for {notification.event}/{notification.channel}") from exc
    if notification.channel == DeliveryChannel.EMAIL:
        subject, _, body = text.partition("\n")
        return Rendered(subject=subject.strip(), body=body.strip() + "\n")
    return Rendered(subject="", body=text)


# --- Claiming ----------------------------------------------------------------------------------


def notifications_claim(*, notification_ids: Sequence[int]) -> list[Notification]:
    """Claim rows for sending: one conditional UPDATE, so each row is won by one worker only.

    Claimable: pending and due, or sending with an expired lease (its worker died). Claimed rows
    get this call's claim token, lease_until = now + LEASE_SECONDS and attempts + 1. Returns the
    rows this call won (possibly none: claimed elsewhere, not due yet, already sent or failed).
    """
    now = timezone.now()
    token = uuid.uuid4()
    claimed = (
        Notification.objects.filter(pk__in=list(notification_ids))
        .filter(
            Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=NotificationStatus.SENDING, lease_until__lt=now)
        )
        .update(
            status=NotificationStatus.SENDING,
            claim_token=token,
            lease_until=now + dt.timedelta(seconds=settings.NOTIFICATIONS["LEASE_SECONDS"]),
            attempts=F("attempts") + 1,
        )
    )
    if not claimed:
        return []
    return list(
        Notification.objects.select_related("webhook_endpoint").filter(claim_token=token).order_by("id")
    )


def notification_claim(*, notification_id: int) -> Notification | None:
    claimed = notifications_claim(notification_ids=[notification_id])
    return claimed[0] if claimed else None


# --- Recording the outcome ---------------------------------------------------------------------


def _backoff(attempts: int) -> dt.timedelta:
    base = settings.NOTIFICATIONS["RETRY_BASE_SECONDS"] * (2 ** max(0, attempts - 1))
    seconds = min(base, settings.NOTIFICATIONS["RETRY_MAX_SECONDS"])
    return dt.timedelta(seconds=seconds * (1 + random.random() * 0.1))


def _finish(notification: Notification, **fields) -> bool:
    """Write the outcome only if we still hold the claim."""
    done = Notification.objects.filter(pk=notification.pk, claim_token=notification.claim_token).update(
        claim_token=None, lease_until=None, **fields
    )
    if not done:
        logger.warning("notification %s: lost the claim before recording the outcome", notification.pk)
    return bool(done)


def _mark_failure(notification: Notification, error: str, *, permanent: bool) -> str:
    """Failed for good (permanent, or the last attempt): `failed`; else pending again after the
    backoff. A retried webhook failure counts towards pausing its endpoint."""
    if permanent or notification.attempts >= settings.NOTIFICATIONS["MAX_ATTEMPTS"]:
        _finish(notification, status=NotificationStatus.FAILED, last_error=error[:2000])
        outcome = NotificationStatus.FAILED
    else:
        _finish(
            notification,
            status=NotificationStatus.PENDING,
            last_error=error[:2000],
            next_attempt_at=timezone.now() + _backoff(notification.attempts),
        )
        outcome = RETRY
    if notification.channel == DeliveryChannel.WEBHOOK and notification.webhook_endpoint_id and not permanent:
        webhook_endpoint_failed(endpoint_id=notification.webhook_endpoint_id)
    return outcome


# --- Sending -----------------------------------------------------------------------------------


def _send_webhook(notification: Notification) -> str:
    endpoint = notification.webhook_endpoint
    if endpoint is None or endpoint.is_deleted or endpoint.status != WebhookStatus.ACTIVE:
        raise PermanentDeliveryError("the webhook endpoint is paused or deleted")
    body = channels.webhook_body(
        event_type=notification.webhook_event,
        data=notification.context.get("data", {}),
        created_at=notification.created_at,
    )
    status_code = channels.webhook_send(
        url=endpoint.url, secret=endpoint.secret, msg_id=f"msg_{notification.pk}", body=body
    )
    webhook_endpoint_succeeded(endpoint)
    return str(status_code)


def sms_number(recipient: str) -> str:
    """The E.164 number an SMS to `recipient` goes to (config.contacts.normalise_phone): rows
    written before phones were normalised hold national forms such as "090-1234-5678"."""
    try:
        number = normalise_phone(recipient, field="recipient")
    except InvalidInput:
        number = None
    if number is None:
        raise PermanentDeliveryError(f"not a phone number: {recipient!r}")
    return number


def _send(notification: Notification, *, email_connection=None) -> str:
    """Send on the row's channel; the provider's message id (webhooks: the status code)."""
    if notification.channel == DeliveryChannel.WEBHOOK:
        return _send_webhook(notification)
    rendered = notification_render(notification)
    if notification.channel == DeliveryChannel.EMAIL:
        return channels.email_send(
            notification_id=notification.pk,
            to=notification.recipient,
            rendered=rendered,
            connection=email_connection,
        )
    if notification.channel == DeliveryChannel.SMS:
        return channels.sms_provider().send(
            to=sms_number(notification.recipient), body=rendered.body, idempotency_key=notification.message_id
        )
    raise PermanentDeliveryError(f"unknown channel {notification.channel!r}")


def _deliver_claimed(notification: Notification, *, email_connection=None) -> str:
    """Send a row this worker claimed and record the outcome: "sent", "retry" or "failed"."""
    if notification.attempts > settings.NOTIFICATIONS["MAX_ATTEMPTS"]:
        # Reclaimed after its workers kept dying mid-send: stop the loop.
        _finish(
            notification,
            status=NotificationStatus.FAILED,
            last_error="gave up: the worker died during every attempt",
        )
        return NotificationStatus.FAILED
    try:
        provider_id = _send(notification, email_connection=email_connection)
    except PermanentDeliveryError as exc:
        logger.warning("notification %s failed for good: %s", notification.pk, exc)
        return _mark_failure(notification, str(exc), permanent=True)
    except TransientDeliveryError as exc:
        logger.info("notification %s will be retried: %s", notification.pk, exc)
        return _mark_failure(notification, str(exc), permanent=False)
    except Exception as exc:
        logger.exception("notification %s: unexpected error", notification.pk)
        return _mark_failure(notification, f"{exc.__class__.__name__}: {exc}", permanent=False)
    _finish(
        notification,
        status=NotificationStatus.SENT,
        sent_at=timezone.now(),
        provider_message_id=provider_id[:200],
        last_error="",
    )
    return NotificationStatus.SENT


def notification_deliver(*, notification_id: int, email_connection=None) -> str:
    """Claim, send, record. Safe to run any number of times: returns "skipped" when not claimable.

    Not one transaction on purpose: no row lock is held while the provider is called. Returns
    "sent", "retry", "failed" or "skipped".
    """
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return "skipped"
    return _deliver_claimed(notification, email_connection=email_connection)


def _open_email_connection():
    """One backend connection for the whole batch (SMTP: one session); None if it cannot open
    (each send then opens its own and fails or succeeds on its own)."""
    connection = channels.email_connection()
    try:
        connection.open()
    except Exception:
        return None
    return connection


def notifications_deliver(*, notification_ids: Sequence[int]) -> dict[str, int]:
    """Deliver a batch with one email connection: claim CLAIM_GROUP rows per UPDATE, send, record each.

    Each row's outcome is recorded right after its own send, so a worker killed mid-batch
    leaves at most the one in-flight message unrecorded; the rest of its claimed group wait
    for their lease to expire and are then sent by someone else (late, not twice). Past
    DELIVERY_BUDGET_SECONDS the unclaimed rest goes to a new task. Returns counts by outcome
    ("sent", "retry", "failed", "skipped", "handed_on").
    """
    counts: dict[str, int] = defaultdict(int)
    ids = list(notification_ids)
    budget = time.monotonic() + DELIVERY_BUDGET_SECONDS
    email_connection = _open_email_connection()
    try:
        with relaxed_durability():
            for i in range(0, len(ids), CLAIM_GROUP):
                if time.monotonic() > budget:
                    # Slow provider: hand the rest to a new task well before the task time limit.
                    enqueue_deliveries(notification_ids=ids[i:])
                    counts["handed_on"] += len(ids) - i
                    break
                group = ids[i : i + CLAIM_GROUP]
                claimed = notifications_claim(notification_ids=group)
                counts["skipped"] += len(group) - len(claimed)
                for notification in claimed:
                    counts[_deliver_claimed(notification, email_connection=email_connection)] += 1
    finally:
        if email_connection is not None:
            email_connection.close()
    return {outcome: n for outcome, n in counts.items() if n}


# --- The sweeper and the admin's resend --------------------------------------------------------


def notifications_requeue_due(*, limit: int = 5000) -> int:
    """The outbox sweeper (beat): re-publish what the broker lost or what is due for a retry.

    Picks pending rows that are due and either older than SWEEP_AFTER_SECONDS (their on-commit
    message may have been lost) or waiting for a retry, and sending rows whose lease expired.
    A row is re-published at most once per SWEEP_AFTER_SECONDS (kicked_at). Returns how many
    were published; stops at the first broker error.
    """
    now = timezone.now()
    grace = now - dt.timedelta(seconds=settings.NOTIFICATIONS["SWEEP_AFTER_SECONDS"])
    ids = list(
        Notification.objects.filter(
            (
                Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
                & (Q(attempts__gt=0) | Q(created_at__lte=grace))
            )
            | Q(status=NotificationStatus.SENDING, lease_until__lt=now)
        )
        .filter(Q(kicked_at__isnull=True) | Q(kicked_at__lte=grace))
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    from ..tasks import deliver_notifications

    published = 0
    for i in range(0, len(ids), PUBLISH_CHUNK):
        chunk = ids[i : i + PUBLISH_CHUNK]
        try:
            deliver_notifications.delay(notification_ids=chunk)
        except Exception:
            logger.exception("sweeper: broker unavailable, %s rows wait for the next run", len(ids) - i)
            break
        Notification.objects.filter(pk__in=chunk).update(kicked_at=now)
        published += len(chunk)
    return published


@transaction.atomic
def notification_resend(*, notification_ids: Sequence[int]) -> int:
    """Admin: put failed (or stuck pending) rows back in the queue from attempt 0. Sent rows are left alone."""
    ids = list(
        Notification.objects.filter(
            pk__in=list(notification_ids), status__in=[NotificationStatus.FAILED, NotificationStatus.PENDING]
        ).values_list("id", flat=True)
    )
    Notification.objects.filter(pk__in=ids).update(
        status=NotificationStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        claim_token=None,
        lease_until=None,
        kicked_at=None,
    )
    for notification_id in ids:
        transaction.on_commit(functools.partial(enqueue_delivery, notification_id=notification_id))
    return len(ids)
