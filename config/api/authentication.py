"""Knox token authentication in one query: the token, its user and the user's role together;
none for a token this process verified in the last OMS["AUTH_CACHE_SECONDS"] seconds.

Knox's own class loads the user's other tokens on every request to delete expired ones; our
tokens do not expire by default (REST_KNOX["TOKEN_TTL"] is None), so an expired token is simply
refused here, and `manage.py` operators revoke tokens by deleting them.
"""

from __future__ import annotations

import binascii
import functools
import time
from hmac import compare_digest

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.expressions import Col
from django.db.models.signals import post_delete
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
        now = timezone.now()
        cached = _recent.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            auth_token = cached[1]
            if auth_token.expiry is None or auth_token.expiry >= now:
                return self.validate_user(auth_token)
        for auth_token in _candidates(token_str[: CONSTANTS.TOKEN_KEY_LENGTH]):
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


@functools.cache
def _candidates_sql(vendor: str) -> tuple[str, list, list, list]:
    """SELECT token, user and staff profile columns in one row per token with this key."""
    from stores.models import StaffProfile

    Token, User = get_token_model(), get_user_model()
    qn = connection.ops.quote_name
    t_fields = list(Token._meta.concrete_fields)
    u_fields = list(User._meta.concrete_fields)
    p_fields = list(StaffProfile._meta.concrete_fields)
    cols = [f"t.{qn(f.column)}" for f in t_fields]
    cols += [f"u.{qn(f.column)}" for f in u_fields]
    cols += [f"p.{qn(f.column)}" for f in p_fields]
    sql = (
        f"SELECT {', '.join(cols)} FROM {qn(Token._meta.db_table)} t "
        f"JOIN {qn(User._meta.db_table)} u ON u.{qn(User._meta.pk.column)} = t.{qn(Token._meta.get_field('user').column)} "
        f"LEFT JOIN {qn(StaffProfile._meta.db_table)} p ON p.{qn(StaffProfile._meta.get_field('user').column)} "
        f"= u.{qn(User._meta.pk.column)} WHERE t.{qn(Token._meta.get_field('token_key').column)} = %s"
    )
    return sql, t_fields, u_fields, p_fields


def _convert(fields, values, converters):
    return [
        conv(v, f) if conv and v is not None else v
        for f, v, conv in zip(fields, values, converters, strict=True)
    ]


def _candidates(token_key: str) -> list:
    """The tokens with this key, each with its user and the user's staff profile loaded (one query).

    The same objects `select_related("user", "user__staff_profile")` builds, from a statement
    compiled once per process instead of on every request (this runs before every API call).
    """
    from stores.models import StaffProfile

    Token, User = get_token_model(), get_user_model()
    sql, t_fields, u_fields, p_fields = _candidates_sql(connection.vendor)
    convs = _converters(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [token_key])
        rows = cursor.fetchall()
    out = []
    nt, nu = len(t_fields), len(u_fields)
    for row in rows:
        t_vals, u_vals, p_vals = row[:nt], row[nt : nt + nu], row[nt + nu :]
        token = Token.from_db(
            connection.alias, [f.attname for f in t_fields], _convert(t_fields, t_vals, convs[0])
        )
        user = User.from_db(
            connection.alias, [f.attname for f in u_fields], _convert(u_fields, u_vals, convs[1])
        )
        profile = None
        if p_vals[0] is not None:
            profile = StaffProfile.from_db(
                connection.alias, [f.attname for f in p_fields], _convert(p_fields, p_vals, convs[2])
            )
            StaffProfile._meta.get_field("user").set_cached_value(profile, user)
        User._meta.get_field("staff_profile").set_cached_value(user, profile)
        Token._meta.get_field("user").set_cached_value(token, user)
        out.append(token)
    return out


@functools.cache
def _converters(vendor: str) -> tuple[list, list, list]:
    """Per column, the function turning the driver's value into the field's (as the ORM does)."""
    _, *field_lists = _candidates_sql(vendor)

    def conv_for(f):
        backend = connection.ops.get_db_converters(Col("x", f))
        own = f.get_db_converters(connection)
        funcs = backend + own
        if not funcs:
            return None

        def convert(value, field, funcs=funcs):
            for fn in funcs:
                value = fn(value, Col("x", field), connection)
            return value

        return convert

    return tuple([conv_for(f) for f in fields] for fields in field_lists)


class TokenScheme(KnoxTokenScheme):
    """OpenAPI: the same `Authorization: Token <key>` scheme as knox's."""

    target_class = "config.api.authentication.TokenAuthentication"
