"""Twilio's voice webhooks (§3.1, §3.2): verified, answered fast, idempotent."""

import logging

from django.core.exceptions import ValidationError
from django.http import JsonResponse

from vaani.common.timeutils import now_iso
from vaani.common.twilio import (
    error_response,
    public_url,
    required_fields,
    twilio_webhook,
    twiml_response,
)
from voice import fallback, services, twiml

logger = logging.getLogger(__name__)


def stream_url(request, call_sid: str) -> str:
    base = public_url(request).split("/api/v1/", 1)[0]
    ws_base = (
        "wss://" + base[len("https://") :]
        if base.startswith("https://")
        else "ws://" + base[len("http://") :]
    )
    return f"{ws_base}/api/v1/voice/stream/{call_sid}"


@twilio_webhook
def incoming_call(request):
    """§3.1: greet in the caller's language and connect the call to our media stream."""
    fields = required_fields(request, "CallSid", "From", "To")
    if isinstance(fields, JsonResponse):
        return fields
    clinic = services.clinic_for_number(fields["To"])
    if clinic is None:
        logger.warning("Call %s to unknown number %s", fields["CallSid"], fields["To"])
        return twiml_response(twiml.say_and_hang_up(twiml.UNKNOWN_NUMBER))
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
        return error_response(409, "CONFLICT", "This call belongs to another clinic")
    return twiml_response(
        twiml.connect_stream(
            language=call.language,
            stream_url=stream_url(request, fields["CallSid"]),
            parameters={"patient_phone": call.call_log.from_number, "token": call.stream_token},
        )
    )


@twilio_webhook
def call_status(request):
    """§3.2: status and duration; repeated or out-of-order callbacks change nothing final."""
    fields = required_fields(request, "CallSid", "CallStatus")
    if isinstance(fields, JsonResponse):
        return fields
    raw_duration = request.POST.get("CallDuration", "").strip()
    if raw_duration and not raw_duration.isdigit():
        return error_response(
            400, "VALIDATION_ERROR", "Invalid input data", {"CallDuration": "Must be whole seconds"}
        )
    try:
        call_log = services.record_status(
            call_sid=fields["CallSid"],
            status=fields["CallStatus"],
            duration_seconds=int(raw_duration) if raw_duration else None,
        )
    except ValidationError as exc:
        return error_response(400, "VALIDATION_ERROR", "Invalid input data", exc.message_dict)
    if call_log is None:
        return error_response(
            404, "NOT_FOUND", "Call not found", {"resource": "call", "id": fields["CallSid"]}
        )
    if call_log.channel == "gather" and call_log.finalized_at is None:
        from voice import gather

        gather.finish_hung_up(call_log)  # the caller hung up before our goodbye
    return JsonResponse({"success": True, "message": "Call status updated", "timestamp": now_iso()})
