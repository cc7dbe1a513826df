"""OpenAPI descriptions of the refunds endpoints' own errors (the framework's are config.api.schema's)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

from config.api.schema import ErrorResponseSerializer

_DESCRIPTIONS = {
    400: "Malformed input (`invalid`): a missing or blank field, an unknown choice, a value too long; the "
    "offending field is in `details`. Nothing was written.",
    401: "No or invalid `Authorization: Token <key>` header.",
    403: "The role may not do this (`forbidden`), or not at this location (`location_forbidden`).",
    404: "Unknown refund (`unknown_refund`), return (`unknown_return`), order (`unknown_order`: also a proof "
    "of purchase that does not match) or location, also one the account may not see.",
    409: "Refunds: `refund_already_completed` / `refund_already_failed`. Returns: `invalid_transition` "
    "(received twice, cancelled, received after cancelling). Nothing was written.",
    422: "Refused by a return rule, named in `code` with the line in `details` (`not_on_order`, "
    "`not_returnable`, `not_delivered`, `return_window_closed`, `more_than_returnable`, `not_on_return`, "
    "`more_than_requested`, `location_not_accepting_returns`, `no_returns_warehouse`). Nothing was written.",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        s: OpenApiResponse(response=ErrorResponseSerializer, description=_DESCRIPTIONS[s]) for s in statuses
    }
