"""Twilio's webhooks, for every app that receives them (voice calls, SMS).

Every request must carry a valid ``X-Twilio-Signature`` computed over the public
URL Twilio called. Behind a proxy that URL is ``PUBLIC_BASE_URL`` (preferred) or
is rebuilt from ``X-Forwarded-*`` headers, believed only from ``TRUSTED_PROXIES``.
"""

import functools
import logging

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

from vaani.common.exceptions import error_body

logger = logging.getLogger(__name__)


def public_url(request) -> str:
    """The URL as Twilio saw it, for the signature."""
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL + request.get_full_path()
    scheme, host = request.scheme, request.get_host()
    if request.META.get("REMOTE_ADDR") in settings.TRUSTED_PROXIES:
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
    return f"{scheme}://{host}{request.get_full_path()}"


def signature_is_valid(request) -> bool:
    if settings.TWILIO_SKIP_SIGNATURE_CHECK:
        return True
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token:
        logger.error("TWILIO_AUTH_TOKEN is not set: every Twilio webhook is refused")
        return False
    if not signature:
        return False
    return RequestValidator(token).validate(public_url(request), request.POST.dict(), signature)


def error_response(
    status: int, code: str, message: str, details: dict | None = None
) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status)


def twilio_webhook(view):
    """POST only, CSRF-exempt (Twilio signs instead), signature checked first."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST":
            return error_response(
                405, "METHOD_NOT_ALLOWED", f'Method "{request.method}" not allowed.'
            )
        try:
            valid = signature_is_valid(request)
        except DisallowedHost:
            return error_response(400, "VALIDATION_ERROR", "Unknown host")
        if not valid:
            return error_response(403, "FORBIDDEN", "Invalid Twilio signature")
        return view(request, *args, **kwargs)

    return wrapper


def required_fields(request, *names: str) -> dict[str, str] | JsonResponse:
    values = {name: request.POST.get(name, "").strip() for name in names}
    missing = {name: "This field is required." for name, value in values.items() if not value}
    if missing:
        return error_response(400, "VALIDATION_ERROR", "Invalid input data", missing)
    return values


def twiml_response(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml; charset=utf-8")
