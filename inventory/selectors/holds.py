"""Checkout holds belong to the account that made them (docs/security.md)."""

from __future__ import annotations

from django.db.models import QuerySet

from config.errors import NotFound

from ..models import Hold


def holds_of(user) -> QuerySet[Hold]:
    """The holds `user` may see, extend, release or turn into an order: the ones it created.

    Superusers and system callers (`user` None: tasks, commands, tests) may act on every hold; an
    anonymous user on none. Another account's hold is "unknown" to the caller (404), so a hold id
    proves nothing to anyone but its owner.
    """
    qs = Hold.objects.all()
    if user is None or user.is_superuser:
        return qs
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    return qs.filter(created_by_id=user.pk)


def unknown_hold(hold_id) -> NotFound:
    return NotFound("Unknown or expired hold.", code="unknown_hold", details={"hold": str(hold_id)})


def hold_get(*, hold_id, user) -> Hold:
    """The hold, when `user` may see it (`holds_of`); 404 `unknown_hold` otherwise."""
    try:
        hold = holds_of(user).filter(pk=hold_id).first()
    except (ValueError, TypeError):  # not a UUID
        hold = None
    if hold is None:
        raise unknown_hold(hold_id)
    return hold
