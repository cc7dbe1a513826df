"""Who may change stock where: the one check every location-bound service makes.

The services that act at a location (receive, count, adjust, safety stock, transfers, import,
return restock) take the acting `user` and call `require_access` themselves, so the API, the
admin, commands and tasks all get the same rule (stores.selectors.require_location_access).
No user means a system caller (a task, a command, order placement acting for a customer): it
acts everywhere. Reservations, commits, releases and holds are not checked here: they act for
an order, whose own services decide who may do what.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.errors import Forbidden
from stores.models import Location
from stores.selectors import require_location_access, user_location_ids


def require_access(user, location_ids: Iterable[int]) -> None:
    """403 `location_forbidden` (naming the first such location) unless `user` may act at every
    one of `location_ids`. No query when the user's locations are already known (cached on the
    user object by stores.selectors) or the user acts everywhere."""
    if user is None:
        return
    if not user.is_authenticated:
        raise Forbidden("Sign in to change stock.", code="location_forbidden")
    allowed = user_location_ids(user)
    if allowed is None:
        return
    forbidden = sorted(set(location_ids) - allowed)
    if forbidden:
        require_location_access(user, Location.objects.get(pk=forbidden[0]))
