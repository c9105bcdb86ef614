"""The error format of the API reference (§10): one shape for every failure.

Services raise the domain errors below (never HTTP-specific ones), so the API,
the UI, the voice agent and Celery tasks can all handle the same exceptions;
this module turns them, and DRF's own exceptions, into the documented body.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from vaani.common.timeutils import now_iso

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A failure with a documented code; services raise its subclasses."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "VALIDATION_ERROR"
    default_message = "Invalid input data"

    def __init__(self, message: str | None = None, *, details: dict | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class BookingValidationError(ApiError):
    """Input breaks a rule; ``details`` maps each field to what is wrong with it."""


class NotFoundError(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "NOT_FOUND"
    default_message = "Resource not found"

    def __init__(self, resource: str, object_id=None, message: str | None = None):
        super().__init__(
            message or f"{resource.replace('_', ' ').capitalize()} not found",
            details={"resource": resource, "id": object_id},
        )


class ConflictError(ApiError):
    status_code = status.HTTP_409_CONFLICT
    code = "CONFLICT"
    default_message = "Resource conflict"


class UnprocessableError(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "UNPROCESSABLE_ENTITY"
    default_message = "The request cannot be processed"


class ServiceUnavailableError(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "SERVICE_UNAVAILABLE"
    default_message = "Service temporarily unavailable"


class RateLimitExceeded(drf_exceptions.Throttled):
    def __init__(self, *, limit: int, window_seconds: int, retry_after: int):
        super().__init__(wait=retry_after)
        self.limit = limit
        self.window_seconds = window_seconds
        self.retry_after = retry_after


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {
        "success": False,
        "error": {"code": code, "message": message, "details": details or {}},
        "timestamp": now_iso(),
    }


def flatten_errors(detail, prefix: str = "") -> dict[str, str]:
    """DRF's nested error lists become ``{"field": "message"}`` (§10.2), dotted for depth."""
    flat: dict[str, str] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            flat[prefix or "non_field_errors"] = " ".join(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = str(detail)
    return flat


def _translate(exc) -> tuple[int, str, str, dict, dict]:
    """(status, code, message, details, extra headers) for any exception we know."""
    if isinstance(exc, ApiError):
        return exc.status_code, exc.code, exc.message, exc.details, {}
    if isinstance(exc, DjangoValidationError):
        details = flatten_errors(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
        return 400, "VALIDATION_ERROR", "Invalid input data", details, {}
    if isinstance(exc, InvalidToken | TokenError):
        return 401, "UNAUTHORIZED", "Invalid or expired token", {}, {}
    if isinstance(exc, RateLimitExceeded):
        details = {
            "limit": exc.limit,
            "window_seconds": exc.window_seconds,
            "retry_after": exc.retry_after,
        }
        headers = {"Retry-After": str(exc.retry_after)}
        return (
            429,
            "RATE_LIMIT_EXCEEDED",
            "Too many requests. Please try again later.",
            details,
            headers,
        )
    if isinstance(exc, drf_exceptions.ParseError):
        return 400, "VALIDATION_ERROR", "Malformed request body", {"body": str(exc.detail)}, {}
    if isinstance(exc, drf_exceptions.ValidationError):
        return 400, "VALIDATION_ERROR", "Invalid input data", flatten_errors(exc.detail), {}
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return 401, "UNAUTHORIZED", str(exc.detail), {}, {}
    if isinstance(exc, drf_exceptions.PermissionDenied | DjangoPermissionDenied):
        message = str(getattr(exc, "detail", "")) or "You do not have permission to do this."
        return 403, "FORBIDDEN", message, {}, {}
    if isinstance(exc, drf_exceptions.NotFound | Http404):
        return 404, "NOT_FOUND", "Resource not found", {}, {}
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return 405, "METHOD_NOT_ALLOWED", str(exc.detail), {}, {}
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return 406, "NOT_ACCEPTABLE", str(exc.detail), {}, {}
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return 415, "UNSUPPORTED_MEDIA_TYPE", str(exc.detail), {}, {}
    if isinstance(exc, drf_exceptions.Throttled):
        return 429, "RATE_LIMIT_EXCEEDED", "Too many requests. Please try again later.", {}, {}
    if isinstance(exc, drf_exceptions.APIException):
        return exc.status_code, "INTERNAL_SERVER_ERROR", str(exc.detail), {}, {}
    logger.exception("Unhandled error in API view", exc_info=exc)
    return 500, "INTERNAL_SERVER_ERROR", "An unexpected error occurred", {}, {}


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error, expected or not, in the documented body."""
    status_code, code, message, details, headers = _translate(exc)
    response = Response(error_body(code, message, details), status=status_code, headers=headers)
    auth_header = getattr(exc, "auth_header", None)
    if status_code == 401:
        response["WWW-Authenticate"] = auth_header or 'Bearer realm="api"'
    return response


def json_error_view(status_code: int, code: str, message: str):
    def view(request, exception=None):
        return JsonResponse(error_body(code, message), status=status_code)

    return view
