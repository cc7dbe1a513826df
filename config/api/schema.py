"""The OpenAPI schema's shared parts: the error shape, and the error responses that the framework
itself gives (authentication, permissions, pagination, throttling, malformed input), declared on
every operation they can happen on.

Each view declares the errors of its own logic (`responses={..., **errors(404, 409)}`); the
`AutoSchema` here adds, per operation, what DRF and config/errors.py answer before or around that
logic, read from the view's own configuration, so a generated client knows every status it can
get (`.ci/schemathesis` checks that every response's status is declared).
"""

from __future__ import annotations

from drf_spectacular import openapi, plumbing
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. `insufficient_stock`, `unknown_sku`.")
    message = serializers.CharField(help_text="For people.")
    details = serializers.DictField(
        help_text=(
            "Context. Input errors found by the request's serializer list them per field in `fields` "
            '(`{"fields": {"lines": {"1": {"quantity": ["..."]}}}}`: list items by index); errors found by the domain name the '
            'offending field in `field`; `insufficient_stock` carries `lines`: `[{"sku", "location", '
            '"requested", "available", "shortfall"}]`.'
        )
    )


class ErrorResponseSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


FRAMEWORK_ERRORS = {
    400: "Malformed input (`invalid`, `invalid_json`): a body or query parameter that is not what "
    "this operation takes; the offending field is in `details`. Nothing was written.",
    401: "No or invalid `Authorization: Token <key>` header (`not_authenticated`).",
    403: "The role may not do this (`forbidden`).",
    404: "Not found (`not_found`): no such object, a path that names none, or a page past the last (`page`).",
    429: "Too many requests (`throttled`); `details.retry_after_seconds` says when to retry.",
}


def lib_doc_excludes() -> list[type]:
    """Classes whose docstrings never describe a schema component (SPECTACULAR_SETTINGS
    "GET_LIB_DOC_EXCLUDES"): DRF's, and our plumbing base classes."""
    from config.api.serializers import InputSerializer

    return [*plumbing.get_lib_doc_excludes(), InputSerializer]


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, adding the framework's error responses to each operation:

    - 400 when the operation takes a body, query parameters or headers (parsing, serializers,
      filters, a malformed Idempotency-Key);
    - 401 and 403 unless the view allows anyone (`AllowAny`);
    - 404 when the path names an object (`{...}`) or the operation is a paginated list;
    - 429 when the view is throttled (by AnonThrottle: only where no account is needed).

    A status the view already declares keeps the view's own description.
    """

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """Lists declare the bounds they enforce: `allow_empty=False` is `minItems: 1`, and a list
        serializer's `min_length`/`max_length` are `minItems`/`maxItems` (drf-spectacular maps
        these for ListField only)."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            isinstance(field, (serializers.ListField, serializers.ListSerializer))
            and schema.get("type") == "array"
        ):
            if getattr(field, "min_length", None) is not None:
                schema.setdefault("minItems", field.min_length)
            if getattr(field, "allow_empty", True) is False:
                schema["minItems"] = max(schema.get("minItems", 0), 1)
            if getattr(field, "max_length", None) is not None:
                schema.setdefault("maxItems", field.max_length)
        return schema

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for status in self._framework_error_statuses(operation):
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    OpenApiResponse(ErrorResponseSerializer, FRAMEWORK_ERRORS[status]), str(status)
                )
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _framework_error_statuses(self, operation: dict) -> list[int]:
        statuses = []
        parameters = operation.get("parameters", [])
        if operation.get("requestBody") or any(p["in"] in ("query", "header") for p in parameters):
            statuses.append(400)
        needs_account = not all(issubclass(p, AllowAny) for p in self.view.permission_classes)
        if needs_account:
            statuses += [401, 403]
        paginated = self.method == "GET" and self._is_list_view() and self._get_paginator() is not None
        if "{" in self.path or paginated:
            statuses.append(404)
        from config.api.throttling import AnonThrottle  # not at import: DRF imports throttling late

        throttles = getattr(self.view, "throttle_classes", None) or []
        # AnonThrottle counts only requests without an account: those get 401 where one is needed.
        if any(not (needs_account and issubclass(t, AnonThrottle)) for t in throttles):
            statuses.append(429)
        return statuses
