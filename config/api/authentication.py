"""Knox token authentication in one query: the token, its user and the user's role together;
none for a token this process verified in the last OMS["AUTH_CACHE_SECONDS"] seconds.

Knox's own class loads the user's other tokens on every request to delete expired ones; our
tokens do not expire by default (REST_KNOX["TOKEN_TTL"] is None), so an expired token is simply
refused here, and `manage.py` operators revoke tokens by deleting them.
"""

from __future__ import annotations

import binascii
import time
from hmac import compare_digest

from django.conf import settings
from django.db.models.signals import post_delete
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from rest_framework import exceptions

from config.db import token_candidates


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate_credentials(self, token: bytes):
        message = "Invalid token."
        try:
            token_str = token.decode("utf-8")
            digest = hash_token(token_str)
        except (UnicodeDecodeError, TypeError, binascii.Error, ValueError):
            raise exceptions.AuthenticationFailed(message) from None
        now = timezone.now()
        cached = _recent.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            auth_token = cached[1]
            if auth_token.expiry is None or auth_token.expiry >= now:
                return self.validate_user(auth_token)
        for auth_token in token_candidates(token_str[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if auth_token.expiry is not None and auth_token.expiry < now:
                continue
            if compare_digest(digest, auth_token.digest):
                result = self.validate_user(auth_token)
                _remember(digest, auth_token)
                return result
        raise exceptions.AuthenticationFailed(message)


# Tokens this process verified recently: digest -> (valid until (monotonic), token with its user).
# settings.OMS["AUTH_CACHE_SECONDS"] (0: off) spares the token query on every API call of a busy
# client (the storefront sends thousands per minute with one token). Deleting a token in this
# process forgets it at once; elsewhere a revoked token, or a deactivated user, is refused at the
# latest AUTH_CACHE_SECONDS later.
_recent: dict[str, tuple[float, object]] = {}
_RECENT_MAX = 1024


def _remember(digest: str, auth_token) -> None:
    ttl = settings.OMS.get("AUTH_CACHE_SECONDS", 0)
    if ttl <= 0:
        return
    if len(_recent) >= _RECENT_MAX:
        _recent.clear()
    _recent[digest] = (time.monotonic() + ttl, auth_token)


def forget_token(*, digest: str | None = None) -> None:
    """Drop one verified token (or all of them) from this process's cache."""
    if digest is None:
        _recent.clear()
    else:
        _recent.pop(digest, None)


def _token_deleted(sender, instance, **kwargs) -> None:
    forget_token(digest=instance.digest)


post_delete.connect(_token_deleted, sender=get_token_model(), dispatch_uid="oms-forget-deleted-token")


class TokenScheme(KnoxTokenScheme):
    """OpenAPI: the same `Authorization: Token <key>` scheme as knox's."""

    target_class = "config.api.authentication.TokenAuthentication"
