"""Staff and API users: roles, location assignments, admin groups, tokens.

Used by `create_api_user`, `load_demo` and the User admin.

Admin access is granted through one auth Group per role ("OMS associate", "OMS warehouse",
"OMS manager"), created or refreshed here with the model permissions in ROLE_PERMISSIONS.
Staff roles get `is_staff=True` so they can log in to /admin/; what they see there is
scoped to their assigned locations by the ModelAdmins themselves. The storefront service
account and locker controllers (devices) are API-only (`is_staff=False`, no group).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from knox.models import get_digest_token, get_token_model
from knox.settings import CONSTANTS

from config.contacts import normalise_email
from config.errors import InvalidInput
from stores.models import Location, LocationKind, Role, StaffAssignment, StaffProfile

STAFF_ROLES = (Role.ASSOCIATE, Role.WAREHOUSE, Role.MANAGER)
# Roles that only act somewhere: they need at least one location.
LOCATED_ROLES = (Role.ASSOCIATE, Role.WAREHOUSE, Role.LOCKER)
# The kind of location each located role may be assigned to.
ROLE_LOCATION_KIND = {
    Role.ASSOCIATE: LocationKind.STORE,
    Role.WAREHOUSE: LocationKind.WAREHOUSE,
    Role.LOCKER: LocationKind.STORE,  # a locker controller opens the lockers of its stores
}

_FLOOR = [
    "stores.view_location",
    "inventory.view_sku",
    "inventory.view_stocklevel",
    "inventory.change_stocklevel",  # the receive / count / adjust / safety-stock forms and CSV import
    "inventory.view_stockmovement",
    "inventory.view_transfer",
    "inventory.change_transfer",  # the "receive transfer" action
]
# Other apps may extend these lists (app_label.codename); the commands re-sync groups on every run.
_LOCKERS_VIEW = ["stores.view_pickuppoint", "stores.view_compartment"]
_LOCKERS_CHANGE = ["stores.change_pickuppoint", "stores.add_compartment", "stores.change_compartment"]
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.ASSOCIATE: [*_FLOOR, *_LOCKERS_VIEW],
    Role.WAREHOUSE: list(_FLOOR),
    Role.MANAGER: [
        *_FLOOR,
        "stores.change_location",
        "inventory.add_sku",
        "inventory.change_sku",
        *_LOCKERS_VIEW,
        *_LOCKERS_CHANGE,
    ],
}


def group_name(role: str) -> str:
    return f"OMS {role}"


@transaction.atomic
def role_groups_sync() -> dict[str, Group]:
    """Create the per-role groups and set exactly their permissions. Safe to run any number of times."""
    groups = {}
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name(role))
        wanted = set()
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            wanted |= set(
                Permission.objects.filter(content_type__app_label=app_label, codename=codename).values_list(
                    "pk", flat=True
                )
            )
        current = set(group.permissions.values_list("pk", flat=True))
        if current != wanted:
            group.permissions.set(wanted)
        groups[role] = group
    return groups


def _validate(
    username: str, role: str, location_codes: Sequence[str] | None, network_wide: bool
) -> list[Location] | None:
    User = get_user_model()
    if not username or not username.strip():
        raise InvalidInput("--username must not be empty.")
    try:
        User.username_validator(username)
    except Exception as exc:
        raise InvalidInput(f"--username {username!r} is not a valid username: {exc}") from None
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    if network_wide and role != Role.MANAGER:
        raise InvalidInput(f"--network is for managers only, not for role {role}.")
    if network_wide and location_codes:
        raise InvalidInput(
            "A network-wide manager acts at every location; give --network or --location, not both."
        )
    if location_codes is None:
        return None
    if role == Role.STOREFRONT and location_codes:
        raise InvalidInput("A storefront account acts for the whole network; give it no --location.")
    codes = list(dict.fromkeys(location_codes))
    locations_by_code = {loc.code: loc for loc in Location.objects.filter(code__in=codes)}
    missing = [c for c in codes if c not in locations_by_code]
    if missing:
        known = ", ".join(Location.objects.order_by("code").values_list("code", flat=True)[:20]) or "none"
        raise InvalidInput(f"Unknown location(s): {', '.join(missing)}. Known: {known}.")
    wanted_kind = ROLE_LOCATION_KIND.get(role)
    if wanted_kind:
        wrong = [c for c in codes if locations_by_code[c].kind != wanted_kind]
        if wrong:
            raise InvalidInput(f"Role {role} works at {wanted_kind}s only; not at: {', '.join(wrong)}.")
    return [locations_by_code[c] for c in codes]


@transaction.atomic
def api_user_upsert(
    *,
    username: str,
    role: str,
    location_codes: Sequence[str] | None = None,
    password_hash: str | None = None,
    email: str = "",
    network_wide: bool = False,
) -> tuple[object, bool]:
    """Create or update a user with `role`; replace its assignments when `location_codes` is given.

    A manager is either network-wide (`network_wide=True`, no locations: acts everywhere) or
    scoped to its locations; an update with neither keeps what the manager was. Raises
    InvalidInput (and writes nothing) on an unknown role or location, a staff role that would end
    up with no location, `network_wide` for anyone but a manager, or a bad email
    (config.contacts.normalise_email: kept in its ASCII form; a given email replaces an existing
    user's). Returns (user, created).
    """
    email = normalise_email(email, field="email") or ""
    locations = _validate(username, role, location_codes, network_wide)
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    created = user is None
    profile = StaffProfile.objects.filter(user=user).first() if user is not None else None
    wanted_network = role == Role.MANAGER and (
        network_wide
        # An update without --location or --network keeps a network-wide manager so.
        or (locations is None and profile is not None and profile.role == role and profile.network_wide)
    )
    if role in LOCATED_ROLES or (role == Role.MANAGER and not wanted_network):
        has_assignments = (
            bool(locations)
            if locations is not None
            else (not created and StaffAssignment.objects.filter(user=user).exists())
        )
        if not has_assignments and role == Role.MANAGER:
            raise InvalidInput("A manager needs --location CODE (one or more) or --network (every location).")
        if not has_assignments:
            raise InvalidInput(f"Role {role} needs at least one --location CODE.")

    if created:
        user = User(username=username, email=email)
        if password_hash:
            user.password = password_hash
        else:
            user.set_unusable_password()
    is_staff = role in STAFF_ROLES or user.is_superuser
    if created or user.is_staff != is_staff or not user.is_active or (email and user.email != email):
        user.is_staff = is_staff
        user.is_active = True
        if email:
            user.email = email
        user.save()

    if profile is None:
        StaffProfile.objects.create(user=user, role=role, network_wide=wanted_network)
    elif profile.role != role or profile.network_wide != wanted_network:
        profile.role = role
        profile.network_wide = wanted_network
        profile.save(update_fields=["role", "network_wide"])

    if wanted_network:
        StaffAssignment.objects.filter(user=user).delete()  # everywhere: assignments would mean nothing
    elif locations is not None:
        wanted = {loc.pk for loc in locations}
        current = set(StaffAssignment.objects.filter(user=user).values_list("location_id", flat=True))
        if wanted != current:
            StaffAssignment.objects.filter(user=user).exclude(location_id__in=wanted).delete()
            StaffAssignment.objects.bulk_create(
                [StaffAssignment(user=user, location_id=pk) for pk in sorted(wanted - current)]
            )

    user_role_groups_sync(user, role)
    return user, created


@transaction.atomic
def user_role_groups_sync(user, role: str | None) -> None:
    """Make the user a member of exactly its role's "OMS <role>" group (none for storefront or no role)."""
    groups = role_groups_sync()
    role_group_ids = {g.pk for g in groups.values()}
    current_groups = set(user.groups.filter(pk__in=role_group_ids).values_list("pk", flat=True))
    wanted_groups = {groups[role].pk} if role in groups else set()
    if current_groups != wanted_groups:
        user.groups.remove(*(current_groups - wanted_groups))
        user.groups.add(*(wanted_groups - current_groups))


@dataclass(frozen=True)
class IssuedToken:
    token: object  # the stored row: its digest (SHA-512 of the key), never the key itself
    key: str  # the plaintext, shown once to whoever issued it and stored nowhere


def api_token_issue(*, user, expiry: dt.datetime | None = None) -> IssuedToken:
    """A new API token for an active `user`, valid until `expiry` (None: until revoked). The
    user's other tokens stay valid. Only the key's digest is stored (knox)."""
    if not user.is_active:
        raise InvalidInput(f"User {user.get_username()!r} is inactive: it cannot have a token.")
    digest, key = get_digest_token()
    token = get_token_model()(
        digest=digest, token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], user=user, expiry=expiry
    )
    token.save(force_insert=True)
    return IssuedToken(token=token, key=key)


def api_token_create(user) -> str:
    """A new API token for `user` that never expires; the plaintext key."""
    return api_token_issue(user=user).key


@transaction.atomic
def api_tokens_revoke(*, tokens: Iterable) -> int:
    """Delete these tokens (rows or a queryset); returns how many. Every process refuses them from
    the next request on (config.api.authentication drops them from the shared cache)."""
    Token = get_token_model()
    _, per_model = Token.objects.filter(digest__in=[t.digest for t in tokens]).delete()
    return per_model.get(Token._meta.label, 0)
