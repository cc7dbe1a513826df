"""OpenAPI descriptions shared by the stores and inventory endpoints: their error responses (the shape: config.api.schema)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from config.api.schema import ErrorResponseSerializer

_DESCRIPTIONS = {
    400: "Malformed input: the offending field is in `details` (`fields` or `field`). Nothing was written.",
    401: "No or invalid `Authorization: Token <key>` header (`not_authenticated`).",
    403: "The role may not do this (`forbidden`), or the staff user is not assigned to the location "
    "(`location_forbidden`).",
    404: "Unknown SKU (`unknown_sku`), location (`unknown_location`) or object (`not_found`).",
    409: "Conflicts with the current stock (`insufficient_stock` with the shortfall per line, "
    "`stock_conflict`) or state (`invalid_transition`). Nothing was written.",
    422: "Well-formed but not allowed (`idempotency_key_reused`).",
}

_EXAMPLES = {
    400: OpenApiExample(
        "invalid quantity",
        value={
            "error": {
                "code": "invalid",
                "message": "lines: ...",
                "details": {
                    "fields": {
                        "lines": {"0": {"quantity": ["Ensure this value is greater than or equal to 1."]}}
                    }
                },
            }
        },
        response_only=True,
        status_codes=["400"],
    ),
    404: OpenApiExample(
        "unknown SKU",
        value={
            "error": {"code": "unknown_sku", "message": "Unknown SKU 'NOPE'.", "details": {"sku": "NOPE"}}
        },
        response_only=True,
        status_codes=["404"],
    ),
    409: OpenApiExample(
        "insufficient stock",
        value={
            "error": {
                "code": "insufficient_stock",
                "message": "Not enough stock available.",
                "details": {
                    "lines": [
                        {
                            "sku": "TEE-BLK-M",
                            "location": "TKY-SHIBUYA",
                            "requested": 5,
                            "available": 2,
                            "shortfall": 3,
                        }
                    ]
                },
            }
        },
        response_only=True,
        status_codes=["409"],
    ),
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """`responses=` entries for the given error statuses, all in the one error shape."""
    return {
        s: OpenApiResponse(
            response=ErrorResponseSerializer,
            description=_DESCRIPTIONS[s],
            examples=[_EXAMPLES[s]] if s in _EXAMPLES else [],
        )
        for s in statuses
    }


READ_ERRORS = (400, 401, 403, 404)
WRITE_ERRORS = (400, 401, 403, 404, 409)
