"""Checkout holds: stock held for a shopper in checkout, counting against everyone else's
availability at once, until it is converted into an order's reservations, released, or expires.

An expired hold stops counting on every read at once (StockLevel.objects.with_available,
inventory.db.available_sql); its units are given back by a writer that finds the level short
(changes.reclaim_expired_holds) or by the beat sweep (`holds_reclaim_expired`). A hold whose units
were reclaimed keeps its row (without lines) until the sweep deletes it, so that extending or
converting it answers 404 `hold_expired` rather than `unknown_hold`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import InvalidInput, NotFound, PolicyViolation

from ..models import Hold, HoldLine, MovementKind
from ..selectors.holds import holds_of, unknown_hold
from .changes import (
    Change,
    announce,
    apply_changes,
    counters_available,
    insufficient,
    lock_levels,
    merge_changes,
    reclaim_expired_holds,
)
from .stock import Line, check_lines


def _hold_ttl(ttl: dt.timedelta | None) -> dt.timedelta:
    ttl = ttl or settings.OMS["HOLD_TTL"]
    if ttl <= dt.timedelta(0) or ttl > settings.OMS["HOLD_MAX_TTL"]:
        raise InvalidInput("Hold duration out of range.", details={"field": "ttl_seconds"})
    return ttl


@transaction.atomic
def hold_create(
    *, lines: Sequence[Line], ttl: dt.timedelta | None = None, user=None, request: dict | None = None
) -> Hold:
    """Hold stock for a shopper in checkout: counts against everyone else's availability at once.

    All lines or none (409 insufficient_stock): the hold, its lines and the `held` counters are
    written in this transaction, so a failed attempt leaves no hold row behind.
    """
    check_lines(lines)
    expires_at = timezone.now() + _hold_ttl(ttl)
    hold = Hold.objects.create(
        expires_at=expires_at,
        request=request or {},
        created_by=user if user and user.is_authenticated else None,
    )
    merged = merge_changes(Change(ln.location_id, ln.sku_id, held=ln.quantity) for ln in lines)
    HoldLine.objects.bulk_create(
        [
            HoldLine(
                hold=hold, location_id=c.location_id, sku_id=c.sku_id, quantity=c.held, expires_at=expires_at
            )
            for c in merged
        ]
    )
    apply_changes(
        merged,
        kind=MovementKind.HOLD,
        reference_type="hold",
        reference=str(hold.pk),
        user=user,
        consumes=True,
        on_violation=insufficient,
    )
    return hold


def _hold_locked(hold_id, user) -> Hold:
    """The hold, locked, when `user` may act on it (inventory.selectors.holds_of: its creator,
    superusers and system callers); 404 `unknown_hold` otherwise, before anything is changed."""
    try:
        return holds_of(user).select_for_update().get(pk=hold_id)
    except (Hold.DoesNotExist, ValueError, TypeError):
        raise unknown_hold(hold_id) from None


def _hold_expired() -> NotFound:
    return NotFound("The hold has expired and its stock was released.", code="hold_expired")


def hold_max_lifetime() -> dt.timedelta:
    """How long a hold may live from its creation, extensions included (OMS["HOLD_MAX_SECONDS"])."""
    return dt.timedelta(seconds=settings.OMS["HOLD_MAX_SECONDS"])


@transaction.atomic
def hold_extend(*, hold_id, ttl: dt.timedelta | None = None, user=None) -> Hold:
    """Push the expiry back while the shopper is active. A hold whose units were reclaimed is gone
    (404); another account's hold is unknown (404). A hold never lives longer than
    OMS["HOLD_MAX_SECONDS"] from its creation: an extension past that is refused (422
    `hold_lifetime_exceeded`) and changes nothing; the shopper places the order or holds again."""
    hold = _hold_locked(hold_id, user)
    if not hold.lines.exists():
        raise _hold_expired()
    expires_at = timezone.now() + _hold_ttl(ttl)
    latest = hold.created_at + hold_max_lifetime()
    if expires_at > latest:
        raise PolicyViolation(
            "The hold cannot be extended that far: a hold lives at most "
            f"{settings.OMS['HOLD_MAX_SECONDS']} seconds from its creation.",
            code="hold_lifetime_exceeded",
            details={
                "hold": str(hold.pk),
                "field": "ttl_seconds",
                "max_expires_at": latest.isoformat().replace("+00:00", "Z"),
                "max_seconds": settings.OMS["HOLD_MAX_SECONDS"],
            },
        )
    hold.expires_at = expires_at
    hold.save(update_fields=["expires_at"])
    hold.lines.update(expires_at=hold.expires_at)
    return hold


def _give_back(
    hold: Hold, *, kind: str, user, reason: str, into_reserved: bool, reference: str
) -> list[HoldLine]:
    """Take the hold's units out of `held` (into `reserved` with `into_reserved`); its lines."""
    lines = list(hold.lines.all())
    if lines:
        apply_changes(
            (
                Change(
                    ln.location_id, ln.sku_id, held=-ln.quantity, reserved=ln.quantity if into_reserved else 0
                )
                for ln in lines
            ),
            kind=kind,
            reference_type="order" if into_reserved else "hold",
            reference=reference,
            user=user,
            reason=reason,
        )
    return lines


@transaction.atomic
def hold_release(*, hold_id, user=None, reason: str = "cart abandoned") -> None:
    """The shopper gave up: the hold's units are on sale again and the hold is gone. Another
    account's hold is unknown (404)."""
    hold = _hold_locked(hold_id, user)
    _give_back(
        hold,
        kind=MovementKind.HOLD_RELEASE,
        user=user,
        reason=reason,
        into_reserved=False,
        reference=str(hold.pk),
    )
    hold.delete()


@transaction.atomic
def hold_convert(*, hold_id, reference: str, user=None) -> list[HoldLine]:
    """Turn a hold into an order's reservations with no gap in which the stock could be taken.

    Returns the hold's lines (location, SKU, quantity). Raises 404 when the hold is unknown (or
    another account's: `user` must be its creator) or its stock was already reclaimed after
    expiry; a hold past its expiry whose units are still held converts (nobody else could have
    taken them).
    """
    hold = _hold_locked(hold_id, user)
    lines = _give_back(
        hold,
        kind=MovementKind.RESERVATION,
        user=user,
        reason=f"hold {hold.pk}",
        into_reserved=True,
        reference=reference,
    )
    if not lines:
        raise _hold_expired()
    hold.delete()
    return lines


@transaction.atomic
def holds_reclaim_expired(*, limit: int = 500) -> int:
    """Give back the units of expired holds (the beat sweep; reads already ignore them) and delete
    the expired holds left without lines. Announces the restocks it causes. Returns the units."""
    now = timezone.now()
    expired = list(
        HoldLine.objects.filter(expires_at__lte=now).order_by("pk").values("location_id", "sku_id")[:limit]
    )
    if not expired:
        Hold.objects.filter(expires_at__lte=now, lines__isnull=True).delete()
        return 0
    keys = {(e["location_id"], e["sku_id"]) for e in expired}
    rows = lock_levels(keys)
    before = {k: counters_available(r) for k, r in rows.items()}
    changes = reclaim_expired_holds(rows, keys, user=None)
    # Units that were only held by abandoned checkouts are back on the counters: tell the listeners
    # (compared by the counters, `expired={}`: the sweep is when those units come back for writers).
    announce(changes, before=before, rows=rows, expired={}, kind=MovementKind.HOLD_RELEASE)
    Hold.objects.filter(expires_at__lte=now, lines__isnull=True).delete()
    return sum(-c.held for c in changes)
