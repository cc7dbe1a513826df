"""Channel adapters: how one rendered message leaves the building.

Every adapter raises `TransientDeliveryError` for what may work later (timeouts, 5xx, 429,
connection refused) and `PermanentDeliveryError` for what never will (4xx, bad address).
Every send carries the notification's stable id as the provider's idempotency key:
email as its Message-ID header, SMS as an `Idempotency-Key` header, webhooks as `webhook-id`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import sys
from dataclasses import dataclass
from typing import Protocol

import httpx
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send did not go through."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying later."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help (bad address, rejected request)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


# --- Email ---------------------------------------------------------------------------------


def email_message(*, notification_id: int, to: str, rendered: Rendered, connection=None) -> EmailMessage:
    domain = settings.NOTIFICATIONS["MESSAGE_ID_DOMAIN"]
    msg = EmailMessage(
        subject=rendered.subject,
        body=rendered.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        connection=connection,
        headers={
            # The same on every retry: a re-send after a crash is detectable (and ESPs deduplicate on it).
            "Message-ID": f"<notification-{notification_id}@{domain}>",
            "X-OMS-Notification-Id": str(notification_id),
        },
    )
    return msg


def email_send(*, notification_id: int, to: str, rendered: Rendered, connection=None) -> str:
    """Send one email through settings.EMAIL_BACKEND. Returns the Message-ID."""
    msg = email_message(notification_id=notification_id, to=to, rendered=rendered, connection=connection)
    try:
        sent = msg.send(fail_silently=False)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise PermanentDeliveryError(f"{exc.__class__.__name__}: {exc}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientDeliveryError(f"{exc.__class__.__name__}: {exc}") from exc
    except Exception as exc:
        # anymail raises AnymailError subclasses; treat unknown provider errors as transient.
        raise TransientDeliveryError(f"{exc.__class__.__name__}: {exc}") from exc
    if not sent:
        raise TransientDeliveryError("the email backend sent nothing")
    return msg.extra_headers["Message-ID"]


def email_connection():
    """One backend connection for a batch of sends (SMTP: one session)."""
    return get_connection()


# --- SMS -----------------------------------------------------------------------------------


class SmsProvider(Protocol):
    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """Send one SMS; return the provider's message id."""
        ...


class ConsoleSmsProvider:
    """The demo: prints the SMS to stdout, like Django's console email backend."""

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        sys.stdout.write(f"SMS to {to} [{idempotency_key}]\n{body}\n{'-' * 79}\n")
        sys.stdout.flush()
        return f"console-{idempotency_key}"


class HttpSmsProvider:
    """A Twilio-style JSON API: POST {base}/messages {"to","from","body"} with a bearer token.

    Sends `Idempotency-Key`, so a retry after a lost response is not a second SMS at a provider
    that honours it. 2xx -> the JSON `id`; 408/429/5xx/network -> transient; other 4xx -> permanent.
    """

    def __init__(self, *, base_url: str, token: str, sender: str, timeout: float = 10.0, client=None):
        if not base_url:
            raise PermanentDeliveryError("SMS_API_BASE_URL is not configured")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.sender = sender
        self.timeout = timeout
        self.client = client

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": idempotency_key}
        payload = {"to": to, "from": self.sender, "body": body}
        try:
            if self.client is not None:
                resp = self.client.post(f"{self.base_url}/messages", json=payload, headers=headers)
            else:
                resp = httpx.post(
                    f"{self.base_url}/messages", json=payload, headers=headers, timeout=self.timeout
                )
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"{exc.__class__.__name__}: {exc}") from exc
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            raise TransientDeliveryError(f"SMS provider answered {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise PermanentDeliveryError(f"SMS provider answered {resp.status_code}: {resp.text[:200]}")
        try:
            return str(resp.json().get("id", ""))
        except (ValueError, AttributeError):
            return ""


class LocmemSmsProvider:
    """Tests: keeps what was sent in `LocmemSmsProvider.outbox`, like django.core.mail.outbox."""

    outbox: list[dict] = []

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        LocmemSmsProvider.outbox.append({"to": to, "body": body, "idempotency_key": idempotency_key})
        return f"locmem-{len(LocmemSmsProvider.outbox)}"


def sms_provider() -> SmsProvider:
    conf = settings.NOTIFICATIONS
    kind = conf["SMS_PROVIDER"]
    if kind == "http":
        return HttpSmsProvider(
            base_url=conf["SMS_API_BASE_URL"],
            token=conf["SMS_API_TOKEN"],
            sender=conf["SMS_FROM"],
            timeout=conf["SMS_TIMEOUT_SECONDS"],
        )
    if kind == "locmem":
        return LocmemSmsProvider()
    return ConsoleSmsProvider()


# --- Webhooks ------------------------------------------------------------------------------


def webhook_body(*, event_type: str, data: dict, created_at: dt.datetime) -> str:
    """The Standard Webhooks payload shape: {"type", "timestamp", "data"}."""
    return json.dumps(
        {"type": event_type, "timestamp": created_at.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def webhook_headers(*, secret: str, msg_id: str, body: str, now: dt.datetime | None = None) -> dict[str, str]:
    now = now or timezone.now()
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=now, data=body)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "user-agent": "oms-webhooks/1",
    }


def webhook_send(*, url: str, secret: str, msg_id: str, body: str) -> int:
    """POST a signed delivery; redirects are not followed (SSRF). Returns the status code on 2xx."""
    from .webhooks import UnsafeUrl, check_url

    try:
        check_url(url)  # again at send time: DNS may have changed since registration
    except UnsafeUrl as exc:
        raise PermanentDeliveryError(f"unsafe URL: {exc}") from exc
    headers = webhook_headers(secret=secret, msg_id=msg_id, body=body)
    try:
        resp = httpx.post(
            url,
            content=body.encode(),
            headers=headers,
            timeout=settings.NOTIFICATIONS["WEBHOOK_TIMEOUT_SECONDS"],
            follow_redirects=False,
        )
    except (OSError, httpx.HTTPError) as exc:
        raise TransientDeliveryError(f"{exc.__class__.__name__}: {exc}") from exc
    if not 200 <= resp.status_code < 300:
        # Every non-2xx is retried (Standard Webhooks): the endpoint may be deploying.
        raise TransientDeliveryError(f"endpoint answered {resp.status_code}")
    return resp.status_code
