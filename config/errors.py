"""Domain errors and the one place that turns every error into the API's error shape.

{"error": {"code": "insufficient_stock", "message": "...", "details": {...}}}
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of every business-rule error. Subclasses set `http_status` and `code`."""

    http_status: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class InvalidInput(DomainError):
    """Well-formed request whose values make no sense (unknown field value, bad range)."""

    http_status = status.HTTP_400_BAD_REQUEST
    code = "invalid"


class NotFound(DomainError):
    http_status = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Forbidden(DomainError):
    http_status = status.HTTP_403_FORBIDDEN
    code = "forbidden"


class Conflict(DomainError):
    """The request conflicts with the current state (409)."""

    http_status = status.HTTP_409_CONFLICT
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class PolicyViolation(DomainError):
    """Well-formed, understood, but not allowed by a business rule (422)."""

    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "policy_violation"


class TooManyAttempts(DomainError):
    """Refused after too many wrong tries of a secret (a pickup code), until someone resets it (429).

    Not a rate: waiting does not help, so there is no Retry-After; DRF's throttles answer 429
    `throttled` with one (the handler below)."""

    http_status = status.HTTP_429_TOO_MANY_REQUESTS
    code = "too_many_attempts"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _validation_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            return f"{field}: {_validation_message(value)}"
    if isinstance(detail, list) and detail:
        return _validation_message(detail[0])
    return str(detail)


_DRF_CODES = {
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: domain errors, validation errors, 404/403 -> one error shape."""
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("too_large", "The request body is larger than this API accepts.", {}),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DataError):
        # A value the database cannot store (e.g. a NUL byte, an out-of-range number): bad input.
        # The database's own message names tables and columns: logged, never echoed to the client.
        logger.info("data error reached the API: %s", exc)
        return Response(
            error_body("invalid", "A value in the request cannot be stored.", {}),
            status=status.HTTP_400_BAD_REQUEST,
        )
    elif isinstance(exc, IntegrityError):
        # A database invariant caught what the services should have: a conflict, never a 500.
        logger.warning("integrity error reached the API: %s", exc)
        return Response(
            error_body("conflict", "The request conflicts with the current state of the data."),
            status=status.HTTP_409_CONFLICT,
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", _validation_message(detail), {"fields": detail})
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    code = _DRF_CODES.get(response.status_code, getattr(exc, "default_code", "error"))
    message = str(getattr(exc, "detail", "")) or "Error."
    details: dict[str, Any] = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details["retry_after_seconds"] = int(exc.wait)
    response.data = error_body(code, message, details)
    return response


# --- Django's own error pages, for requests under /api/ -------------------------------------------


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception):
    """handler404: a path no URL matches. Under /api/ the API's error shape, else Django's page."""
    if _is_api(request):
        return JsonResponse(
            error_body("not_found", "No API endpoint at this path.", {"path": request.path}), status=404
        )
    return defaults.page_not_found(request, exception)


def bad_request(request, exception):
    """handler400: what Django refuses before a view runs (a body over DATA_UPLOAD_MAX_MEMORY_SIZE,
    a suspicious request). Under /api/ the API's error shape, else Django's page."""
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            error_body("too_large", "The request body is larger than this API accepts.", {}), status=413
        )
    return JsonResponse(error_body("invalid", "Bad request.", {}), status=400)
