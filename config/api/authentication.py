"""Knox token authentication in one query: the token, its user and the user's role together.

Knox's own class loads the user's other tokens on every request to delete expired ones; our
tokens do not expire by default (REST_KNOX["TOKEN_TTL"] is None), so an expired token is simply
refused here, and `manage.py` operators revoke tokens by deleting them.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from rest_framework import exceptions


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate_credentials(self, token: bytes):
        message = "Invalid token."
        try:
            token_str = token.decode("utf-8")
            digest = hash_token(token_str)
        except (UnicodeDecodeError, TypeError, binascii.Error, ValueError):
            raise exceptions.AuthenticationFailed(message) from None
        candidates = (
            get_token_model()
            .objects.filter(token_key=token_str[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user", "user__staff_profile")
        )
        now = timezone.now()
        for auth_token in candidates:
            if auth_token.expiry is not None and auth_token.expiry < now:
                continue
            if compare_digest(digest, auth_token.digest):
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(message)


class TokenScheme(KnoxTokenScheme):
    """OpenAPI: the same `Authorization: Token <key>` scheme as knox's."""

    target_class = "config.api.authentication.TokenAuthentication"
