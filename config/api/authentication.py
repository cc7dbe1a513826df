"""Knox token authentication through Django's cache, with failed attempts counted per client.

One cache round trip per request (`get_many`) answers three questions: is this token's entry
(the token with its user and role) cached, is the client locked out by too many failures, and
was the token's last use recorded recently. Only a miss reads the database (one query: token,
user and role together), and only a token unused for OMS["TOKEN_USE_RESOLUTION_SECONDS"] writes
its last use (stores.TokenUse).

The entries live OMS["AUTH_CACHE_SECONDS"] in the cache named by OMS["AUTH_CACHE_ALIAS"]: local
memory on the embedded default, Redis shared by every process in production. Deleting a token, or
saving a token, a user or a staff profile through the ORM (services, admin, manage.py), marks the
entries concerned stale at once and again when the transaction commits
(`connect_auth_cache_invalidation`, connected in stores.apps); a stale marker stops any process
from caching the entry again for AUTH_CACHE_SECONDS, so a request that read the old rows just
before the change cannot put them back. Changes made around the ORM (raw SQL, QuerySet.update)
are seen at the latest AUTH_CACHE_SECONDS later. Staff assignments are not cached: they are read
per request (stores.selectors.user_location_ids).

When the cache cannot be reached (Redis down), every request reads the database, nothing is counted
and nobody is locked out, and a warning is logged: the API stays up (config/api/throttling.py
does the same). A token revoked meanwhile is refused at once (the database says so).

Knox's own class loads the user's other tokens on every request to delete expired ones; our
tokens do not expire by default (REST_KNOX["TOKEN_TTL"] is None), so an expired token is simply
refused here, and operators revoke tokens by deleting them (admin, `stores.services`).
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Iterable
from contextlib import suppress
from functools import partial
from hmac import compare_digest

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from config.auth_failures import auth_cache, client_address, token_failures

logger = logging.getLogger(__name__)
_STALE = "stale"  # the marker left where an entry was invalidated: read the database


def _entry_key(digest: str) -> str:
    return f"oms:auth:token:{digest}"


def _used_key(digest: str) -> str:
    return f"oms:auth:used:{digest}"


def _ttl() -> float:
    return settings.OMS.get("AUTH_CACHE_SECONDS", 0)


def _resolution() -> int:
    return settings.OMS.get("TOKEN_USE_RESOLUTION_SECONDS", 60)


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.authenticate_header(request).encode().lower():
            return None  # not a token request: another authenticator's, or anonymous
        address, failures, now = client_address(request), token_failures(), timezone.now()
        digest = _digest(auth)
        found = _cached(digest=digest, failures_key=failures.key(address, now=now.timestamp()))
        wait = failures.wait(found["failures"], now=now.timestamp())
        if wait is not None:  # DRF adds "Expected available in <wait> seconds."
            raise exceptions.Throttled(wait, detail="Too many failed authentications from this address.")
        try:
            if digest is None:
                raise exceptions.AuthenticationFailed("Invalid token header.")
            auth_token = found["entry"]
            if auth_token is None or auth_token == _STALE:
                auth_token = _token_from_database(auth[1], digest, now=now, cache_it=auth_token is None)
            if auth_token is None or (auth_token.expiry is not None and auth_token.expiry < now):
                raise exceptions.AuthenticationFailed("Invalid token.")
            user, auth_token = self.validate_user(auth_token)  # 401 for an inactive user
        except exceptions.AuthenticationFailed:
            failures.fail(address)
            raise
        if found["used"] is None and _resolution() > 0:
            _record_use(auth_token, now, _resolution())
        return user, auth_token


def _cached(*, digest: str | None, failures_key: str) -> dict:
    """In one round trip: the client's failure count, the token's entry (a token, the stale marker
    or None) and its last-use marker. Asks only for what the settings use."""
    keys = {"failures": failures_key if token_failures().enabled else None}
    if digest is not None:
        keys["entry"] = _entry_key(digest)
        keys["used"] = _used_key(digest) if _resolution() > 0 else None
    wanted = [k for k in keys.values() if k]
    try:
        values = auth_cache().get_many(wanted) if wanted else {}
    except Exception:
        logger.warning("token authentication: the cache is unavailable, reading the database", exc_info=True)
        return {"failures": None, "entry": _STALE, "used": 1}  # nothing cached, nothing counted or recorded
    found = {name: values.get(key) if key else None for name, key in keys.items()}
    return {"failures": None, "entry": None, "used": None, **found}


def _digest(auth: list[bytes]) -> str | None:
    """The digest of the header's token, or None when the header is malformed."""
    if len(auth) != 2:
        return None
    try:
        return hash_token(auth[1].decode("utf-8"))
    except (UnicodeDecodeError, TypeError, binascii.Error, ValueError):
        return None


def _token_from_database(token: bytes, digest: str, *, now, cache_it: bool):
    """The token with this digest, with its user (password left out: it goes into the cache) and
    the user's staff profile loaded. One query. A valid one is cached if `cache_it` (not where a
    stale marker is: `add` never replaces one)."""
    candidates = (
        get_token_model()
        .objects.select_related("user", "user__staff_profile")
        .defer("user__password")
        .filter(token_key=token.decode("utf-8")[: CONSTANTS.TOKEN_KEY_LENGTH])
    )
    for auth_token in candidates:
        if compare_digest(digest, auth_token.digest):
            valid = (auth_token.expiry is None or auth_token.expiry >= now) and auth_token.user.is_active
            if valid and cache_it and _ttl() > 0:
                with suppress(Exception):  # the cache just answered: a failure now is a blip
                    auth_cache().add(_entry_key(digest), auth_token, timeout=_ttl())
            return auth_token
    return None


def _record_use(auth_token, now, resolution: int) -> None:
    """Write the token's last use, unless some process did in the last TOKEN_USE_RESOLUTION_SECONDS
    (the cache's add is atomic: one process per token and period writes)."""
    from stores.models import TokenUse

    try:
        if not auth_cache().add(_used_key(auth_token.digest), 1, timeout=resolution):
            return
    except Exception:
        return  # without the marker every request would write: skip until the cache is back
    with suppress(IntegrityError):  # the token was revoked meanwhile: nothing to record
        TokenUse.objects.bulk_create(  # one INSERT .. ON CONFLICT DO UPDATE
            [TokenUse(token_id=auth_token.digest, last_used_at=now)],
            update_conflicts=True,
            unique_fields=["token"],
            update_fields=["last_used_at"],
        )


# --- Invalidation -------------------------------------------------------------------------------


def auth_cache_forget(digests: Iterable[str]) -> None:
    """Mark these tokens' cache entries stale in every process: now, and again when the current
    transaction commits (a request that read the old rows meanwhile cannot cache them)."""
    ttl = _ttl()
    keys = [_entry_key(d) for d in digests]
    if ttl <= 0 or not keys:
        return
    _mark_stale(keys, ttl)
    if connection.in_atomic_block:
        transaction.on_commit(partial(_mark_stale, keys, ttl))


def auth_cache_forget_user(user_id: int) -> None:
    """Mark the cache entries of every token of this user stale (see auth_cache_forget)."""
    if _ttl() <= 0:
        return
    auth_cache_forget(get_token_model().objects.filter(user_id=user_id).values_list("digest", flat=True))


def _mark_stale(keys: list[str], ttl: float) -> None:
    try:
        auth_cache().set_many(dict.fromkeys(keys, _STALE), timeout=ttl)
    except Exception:
        # The change itself is saved. A cache this process cannot reach is most likely one nobody
        # can (they read the database meanwhile); if others still reach it, they see the change
        # when the entry expires, at most AUTH_CACHE_SECONDS later.
        logger.warning(
            "token cache: the cache is unavailable, %d entries not marked stale", len(keys), exc_info=True
        )


def _token_changed(sender, instance, created=False, **kwargs) -> None:
    if not created:  # a new token has no entry yet
        auth_cache_forget([instance.digest])


def _user_changed(sender, instance, update_fields=None, **kwargs) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a login: nothing the token entry holds
    auth_cache_forget_user(instance.pk)


def _profile_changed(sender, instance, **kwargs) -> None:
    auth_cache_forget_user(instance.user_id)


def connect_auth_cache_invalidation() -> None:
    """Connect the receivers that keep the token cache true (once, from stores.apps.ready)."""
    from stores.models import StaffProfile

    Token, User = get_token_model(), get_user_model()
    for signal, name in ((post_save, "save"), (post_delete, "delete")):
        signal.connect(_token_changed, sender=Token, dispatch_uid=f"oms-auth-cache-token-{name}")
        signal.connect(_user_changed, sender=User, dispatch_uid=f"oms-auth-cache-user-{name}")
        signal.connect(_profile_changed, sender=StaffProfile, dispatch_uid=f"oms-auth-cache-profile-{name}")


class TokenScheme(KnoxTokenScheme):
    """OpenAPI: the same `Authorization: Token <key>` scheme as knox's."""

    target_class = "config.api.authentication.TokenAuthentication"
