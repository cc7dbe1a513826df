"""Role checks shared by every app's API. Location scoping is in stores.selectors."""

from rest_framework.permissions import BasePermission

from stores.models import Role
from stores.selectors import user_is_network_wide, user_role


def _role_permission(*roles: str) -> type[BasePermission]:
    class _HasRole(BasePermission):
        message = f"This needs one of the roles: {', '.join(roles)}."

        def has_permission(self, request, view) -> bool:
            user = request.user
            if not (user and user.is_authenticated):
                return False
            return user.is_superuser or user_role(user) in roles

    _HasRole.__name__ = "HasRole_" + "_".join(roles)
    return _HasRole


IsStorefront = _role_permission(Role.STOREFRONT, Role.MANAGER)
IsStaff = _role_permission(Role.ASSOCIATE, Role.WAREHOUSE, Role.MANAGER)
IsStorefrontOrStaff = _role_permission(Role.STOREFRONT, Role.ASSOCIATE, Role.WAREHOUSE, Role.MANAGER)


class IsStorefrontOrNetworkManager(BasePermission):
    """The storefront account, network-wide managers and superusers (e.g. webhooks: a scoped
    manager acts at locations, not for the whole network)."""

    message = "This needs the storefront role or a network-wide manager."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user_role(user) == Role.STOREFRONT or user_is_network_wide(user)
