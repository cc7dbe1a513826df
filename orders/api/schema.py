"""OpenAPI descriptions for the orders endpoints (the error shape is shared with inventory's)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from config.api.schema import ErrorResponseSerializer
from config.idempotency import KEY_SCHEMA

_DESCRIPTIONS = {
    400: "Malformed input (`invalid`, `duplicate_line`, `unknown_currency`, `currency_mismatch`, "
    "`idempotency_key_required`, `idempotency_key_invalid`); the offending field is in `details`. Nothing was written.",
    401: "No or invalid `Authorization: Token <key>` header.",
    403: "The role may not do this (`forbidden`) or the user is not assigned to the location (`location_forbidden`).",
    404: "Unknown SKU (`unknown_sku`), location (`unknown_location`), order (`unknown_order`), fulfillment "
    "(`unknown_fulfillment`, also outside the user's locations), hold (`unknown_hold`, `hold_expired`), customer, "
    "locker (`unknown_locker`) or compartment (`unknown_compartment`).",
    409: "`insufficient_stock` (per line: `sku`, `requested`, `available`, `shortfall`, `nearby` locations that have "
    "it), `invalid_transition` (`details.from`, `details.to`), `already_extended` (a pickup window is extended once) "
    "or `idempotency_in_progress`; lockers: `compartment_occupied`, `compartment_empty`, `already_in_locker`, `pickup_window_ended`, "
    "`not_in_locker`, `in_locker`, `already_collected`, `out_of_service`. Nothing was written.",
    422: "Well-formed but not allowed: `pickup_not_offered`, `hold_mismatch`, `wrong_pickup_code`, `not_a_pickup`, "
    "`idempotency_key_reused`, `sku_inactive`, `locker_pickup_only`, `locker_at_another_store`, `wrong_locker`.",
    429: "`throttled`: too many requests of this kind from this account or address (`Retry-After` header, "
    "`details.retry_after_seconds`); `too_many_attempts`: too many wrong pickup codes, refused until a new code "
    "is issued (no `Retry-After`: waiting does not help); `compartment_locked`: the same for a locker's compartment; "
    "`keypad_locked`: too many codes matching nothing at a locker's keypad (`details.retry_after_seconds`).",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        s: OpenApiResponse(response=ErrorResponseSerializer, description=_DESCRIPTIONS[s]) for s in statuses
    }


IDEMPOTENCY_KEY_REQUIRED = OpenApiParameter(
    name="Idempotency-Key",
    type=KEY_SCHEMA,
    location=OpenApiParameter.HEADER,
    required=True,
    description=(
        "Required, at most 255 printable ASCII characters, scoped to the user. The same key with the same body "
        "replays the first response byte for byte (header `Idempotent-Replayed: true`); with another body: 422 "
        "`idempotency_key_reused`; while the first request is still running: 409 `idempotency_in_progress`. "
        "Errors are not stored (a retry runs again). Keys are kept 24 h."
    ),
)
