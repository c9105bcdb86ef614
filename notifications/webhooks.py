"""Twilio's messaging webhooks: patients' texts and the status of ours.

Both are signed by Twilio and checked with the voice webhooks' decorator (same URL
rules behind a proxy). WhatsApp messages come here too (``From: whatsapp:+91...``).
"""

from django.http import HttpResponse, JsonResponse
from twilio.twiml.messaging_response import MessagingResponse

from notifications import services
from vaani.common.exceptions import error_body
from vaani.common.timeutils import now_iso
from voice.webhooks import twilio_webhook


def _required(request, *names: str) -> dict[str, str] | JsonResponse:
    values = {name: request.POST.get(name, "").strip() for name in names}
    missing = {name: "This field is required." for name, value in values.items() if not value}
    if missing:
        return JsonResponse(
            error_body("VALIDATION_ERROR", "Invalid input data", missing), status=400
        )
    return values


@twilio_webhook
def incoming_message(request):
    """A patient's text: act on it and answer in TwiML, in their language."""
    fields = _required(request, "MessageSid", "From", "To")
    if isinstance(fields, JsonResponse):
        return fields
    reply = services.handle_inbound(
        message_sid=fields["MessageSid"],
        from_number=fields["From"],
        to_number=fields["To"],
        body=request.POST.get("Body", ""),
    )
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


@twilio_webhook
def message_status(request):
    """Twilio's status callback for a message we sent (``?m=`` names our row)."""
    fields = _required(request, "MessageSid", "MessageStatus")
    if isinstance(fields, JsonResponse):
        return fields
    try:
        message = services.record_status(
            message_sid=fields["MessageSid"],
            provider_status=fields["MessageStatus"].lower(),
            error_code=request.POST.get("ErrorCode", "").strip(),
            error_message=request.POST.get("ErrorMessage", "").strip(),
            message_id=request.GET.get("m", ""),
        )
    except ValueError:
        return JsonResponse(
            error_body(
                "VALIDATION_ERROR",
                "Invalid input data",
                {"MessageStatus": "Not a status of an outgoing message"},
            ),
            status=400,
        )
    if message is None:
        return JsonResponse(
            error_body(
                "NOT_FOUND",
                "Message not found",
                {"resource": "message", "id": fields["MessageSid"]},
            ),
            status=404,
        )
    return JsonResponse(
        {"success": True, "message": "Message status updated", "timestamp": now_iso()}
    )
