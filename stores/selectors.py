"""Reads about locations and who may act where."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from config.errors import Forbidden, NotFound

from .models import Location, LocationKind, Role, StaffAssignment

EARTH_RADIUS_KM = 6371.0088


def user_profile(user):
    """The user's StaffProfile, or None (no profile, or not a saved user)."""
    try:
        return getattr(user, "staff_profile", None)
    except Exception:
        return None


def user_role(user) -> str | None:
    if user.is_superuser:
        return Role.MANAGER
    profile = user_profile(user)
    return profile.role if profile else None


def user_is_network_wide(user) -> bool:
    """A superuser, or a manager assigned to the whole network (`StaffProfile.network_wide`)."""
    if user.is_superuser:
        return True
    profile = user_profile(user)
    return bool(profile and profile.role == Role.MANAGER and profile.network_wide)


def user_location_ids(user) -> set[int] | None:
    """The locations the user may act at: None means everywhere (superusers and network-wide managers).

    Everyone else acts exactly at their assigned locations: a scoped manager with no assignment,
    and the storefront account (which has none), act at no location. Cached on the user object
    for the request (and for as long as the authentication cache keeps the user).
    """
    if user_is_network_wide(user):
        return None
    cached = getattr(user, "_oms_location_ids", None)
    if cached is None:
        cached = (
            set(StaffAssignment.objects.filter(user=user).values_list("location_id", flat=True))
            if user.pk is not None
            else set()
        )
        user._oms_location_ids = cached
    return cached


def user_works_a_returns_desk(user) -> bool:
    """An associate or manager assigned to an active store that accepts returns
    (`Location.accepts_returns`), or a network-wide manager or superuser: who may find a purchase
    made anywhere at a returns desk, by its exact identifiers only (docs/security.md, "Returns
    desk"; orders.selectors.purchases_find). Warehouse staff never (mail returns come with the
    return's number, at their own locations). One query (none for network-wide users)."""
    if user_is_network_wide(user):
        return True
    if user_role(user) not in (Role.ASSOCIATE, Role.MANAGER):
        return False
    ids = user_location_ids(user)
    return (
        bool(ids)
        and Location.objects.filter(
            pk__in=ids, kind=LocationKind.STORE, accepts_returns=True, is_active=True
        ).exists()
    )


def user_can_act_at(user, location: Location) -> bool:
    ids = user_location_ids(user)
    return ids is None or location.id in ids


def require_location_access(user, location: Location) -> None:
    if not user_can_act_at(user, location):
        raise Forbidden(
            f"You are not assigned to location {location.code}.",
            code="location_forbidden",
            details={"location": location.code},
        )


def require_any_location_access(user, locations: Iterable[Location]) -> None:
    """403 `location_forbidden` unless the user may act at one of `locations` (e.g. either end of a transfer)."""
    locations = list(locations)
    if not any(user_can_act_at(user, loc) for loc in locations):
        raise Forbidden(
            "You are not assigned to any of these locations.",
            code="location_forbidden",
            details={"locations": [loc.code for loc in locations]},
        )


def location_get(*, code: str) -> Location:
    try:
        if "\x00" in code:  # no code has one, and PostgreSQL refuses it in a query (a 500)
            raise Location.DoesNotExist
        return Location.objects.get(code=code)
    except Location.DoesNotExist:
        raise NotFound(
            f"Unknown location {code!r}.", code="unknown_location", details={"location": code}
        ) from None


def locations_by_code(*, codes: Iterable[str]) -> dict[str, Location]:
    codes = set(codes)
    by_code = {
        loc.code: loc for loc in Location.objects.filter(code__in=[c for c in codes if "\x00" not in c])
    }
    missing = sorted(codes - by_code.keys())
    if missing:
        raise NotFound("Unknown location(s).", code="unknown_location", details={"locations": missing})
    return by_code


def location_list(*, kind: str | None = None, pickup: bool | None = None) -> QuerySet[Location]:
    qs = Location.objects.filter(is_active=True)
    if kind:
        qs = qs.filter(kind=kind)
    if pickup is not None:
        qs = qs.filter(offers_pickup=pickup)
    return qs.order_by("code")


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def distance_from(lat: float, lng: float) -> Callable[[float, float], float]:
    """`haversine_km` from a fixed point, for many points: the point's trigonometry is done once."""
    p1, cos_p1, rad = math.radians(lat), math.cos(math.radians(lat)), math.radians
    sin, cos, asin, sqrt = math.sin, math.cos, math.asin, math.sqrt

    def km(lat2: float, lng2: float) -> float:
        p2 = rad(lat2)
        a = sin((p2 - p1) / 2) ** 2 + cos_p1 * cos(p2) * sin(rad(lng2 - lng) / 2) ** 2
        return 2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(a)))

    return km


def bounding_box(lat: float, lng: float, radius_km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lng, max_lng) enclosing the circle; used as an index prefilter."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    coslat = max(math.cos(math.radians(lat)), 1e-6)
    dlng = min(180.0, math.degrees(radius_km / (EARTH_RADIUS_KM * coslat)))
    return lat - dlat, lat + dlat, lng - dlng, lng + dlng


def locations_within(*, lat: float, lng: float, radius_km: float, qs: QuerySet[Location] | None = None):
    """Active locations within `radius_km`, nearest first, as (location, distance_km) pairs.

    Bounding box on the indexed (latitude, longitude) columns, then exact great-circle distance.
    """
    min_lat, max_lat, min_lng, max_lng = bounding_box(lat, lng, radius_km)
    qs = (qs if qs is not None else Location.objects.filter(is_active=True)).filter(
        latitude__gte=min_lat, latitude__lte=max_lat, longitude__gte=min_lng, longitude__lte=max_lng
    )
    out = []
    for loc in qs:
        d = haversine_km(lat, lng, loc.latitude, loc.longitude)
        if d <= radius_km:
            out.append((loc, d))
    out.sort(key=lambda pair: (pair[1], pair[0].code))
    return out


@dataclass
class LocationHit:
    """A location in a search result, with its distance from the search point when there is one."""

    location: Location
    distance_km: float | None = None
    available: int | None = None  # filled by searches that ask about a SKU


def location_search(
    *,
    kind: str | None = None,
    pickup: bool | None = None,
    near: tuple[float, float] | None = None,
    radius_km: float | None = None,
) -> list[LocationHit]:
    """Active locations, nearest first when `near` is given (within `radius_km` when given), else by code.

    With a radius: the bounding box on the indexed (latitude, longitude) columns, then the
    great-circle distance. One query.
    """
    qs = location_list(kind=kind, pickup=pickup)
    if near is None:
        return [LocationHit(loc) for loc in qs]
    if radius_km is not None:
        pairs = locations_within(lat=near[0], lng=near[1], radius_km=radius_km, qs=qs)
    else:
        pairs = [(loc, haversine_km(near[0], near[1], loc.latitude, loc.longitude)) for loc in qs]
        pairs.sort(key=lambda pair: (pair[1], pair[0].code))
    return [LocationHit(loc, round(d, 3)) for loc, d in pairs]
