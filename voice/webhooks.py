"""Twilio's voice webhooks (§3.1, §3.2): verified, answered fast, idempotent.

Every request must carry a valid ``X-Twilio-Signature`` computed over the public
URL Twilio called. Behind a proxy that URL is ``PUBLIC_BASE_URL`` (preferred) or
is rebuilt from ``X-Forwarded-*`` headers, believed only from ``TRUSTED_PROXIES``.
"""

import functools
import logging

from django.conf import settings
from django.core.exceptions import DisallowedHost, ValidationError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

from vaani.common.exceptions import error_body
from vaani.common.timeutils import now_iso
from voice import fallback, services, twiml

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


def stream_url(request, call_sid: str) -> str:
    base = public_url(request).split("/api/v1/", 1)[0]
    ws_base = (
        "wss://" + base[len("https://") :]
        if base.startswith("https://")
        else "ws://" + base[len("http://") :]
    )
    return f"{ws_base}/api/v1/voice/stream/{call_sid}"


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


def _error(status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status)


def twilio_webhook(view):
    """POST only, CSRF-exempt (Twilio signs instead), signature checked first."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST":
            return _error(405, "METHOD_NOT_ALLOWED", f'Method "{request.method}" not allowed.')
        try:
            valid = signature_is_valid(request)
        except DisallowedHost:
            return _error(400, "VALIDATION_ERROR", "Unknown host")
        if not valid:
            return _error(403, "FORBIDDEN", "Invalid Twilio signature")
        return view(request, *args, **kwargs)

    return wrapper


def _required(request, *names: str) -> dict[str, str] | JsonResponse:
    values = {name: request.POST.get(name, "").strip() for name in names}
    missing = {name: "This field is required." for name, value in values.items() if not value}
    if missing:
        return _error(400, "VALIDATION_ERROR", "Invalid input data", missing)
    return values


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml; charset=utf-8")


@twilio_webhook
def incoming_call(request):
    """§3.1: greet in the caller's language and connect the call to our media stream."""
    fields = _required(request, "CallSid", "From", "To")
    if isinstance(fields, JsonResponse):
        return fields
    clinic = services.clinic_for_number(fields["To"])
    if clinic is None:
        logger.warning("Call %s to unknown number %s", fields["CallSid"], fields["To"])
        return _twiml(twiml.say_and_hang_up(twiml.UNKNOWN_NUMBER))
    if fallback.use_gather(clinic):  # the clinic's choice, forced, or speech providers down
        from voice import gather  # imports this module's decorator: not at the top

        return gather.answer_call(clinic, fields)
    try:
        call = services.start_inbound_call(
            clinic=clinic,
            call_sid=fields["CallSid"],
            from_number=fields["From"],
            to_number=fields["To"],
        )
    except services.StreamRefused:
        return _error(409, "CONFLICT", "This call belongs to another clinic")
    return _twiml(
        twiml.connect_stream(
            language=call.language,
            stream_url=stream_url(request, fields["CallSid"]),
            parameters={"patient_phone": call.call_log.from_number, "token": call.stream_token},
        )
    )


@twilio_webhook
def call_status(request):
    """§3.2: status and duration; repeated or out-of-order callbacks change nothing final."""
    fields = _required(request, "CallSid", "CallStatus")
    if isinstance(fields, JsonResponse):
        return fields
    raw_duration = request.POST.get("CallDuration", "").strip()
    if raw_duration and not raw_duration.isdigit():
        return _error(
            400, "VALIDATION_ERROR", "Invalid input data", {"CallDuration": "Must be whole seconds"}
        )
    try:
        call_log = services.record_status(
            call_sid=fields["CallSid"],
            status=fields["CallStatus"],
            duration_seconds=int(raw_duration) if raw_duration else None,
        )
    except ValidationError as exc:
        return _error(400, "VALIDATION_ERROR", "Invalid input data", exc.message_dict)
    if call_log is None:
        return _error(
            404, "NOT_FOUND", "Call not found", {"resource": "call", "id": fields["CallSid"]}
        )
    if call_log.channel == "gather" and call_log.finalized_at is None:
        from voice import gather

        gather.finish_hung_up(call_log)  # the caller hung up before our goodbye
    return JsonResponse({"success": True, "message": "Call status updated", "timestamp": now_iso()})
