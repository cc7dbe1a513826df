"""OpenAPI descriptions of the refunds endpoints' own errors (the framework's are config.api.schema's)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

from config.api.schema import ErrorResponseSerializer

_DESCRIPTIONS = {
    400: "Malformed input (`invalid`): a missing or blank `reference` / `reason`, a value too long; the "
    "offending field is in `details`. Nothing was written.",
    401: "No or invalid `Authorization: Token <key>` header.",
    403: "The role may not do this (`forbidden`).",
    404: "Unknown refund (`unknown_refund`), also one of an order the account may not see.",
    409: "`refund_already_completed` (completing it with another reference, or failing it) or "
    "`refund_already_failed` (completing it, or failing it for another reason). Nothing was written.",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        s: OpenApiResponse(response=ErrorResponseSerializer, description=_DESCRIPTIONS[s]) for s in statuses
    }
