"""Twilio's messaging webhooks: patients' texts and the status of ours.

Both are signed by Twilio and checked with the shared decorator of vaani.common.twilio (same URL
rules behind a proxy). WhatsApp messages come here too (``From: whatsapp:+91...``).
"""

from django.http import HttpResponse, JsonResponse
from twilio.twiml.messaging_response import MessagingResponse

from notifications import services
from vaani.common.exceptions import error_body
from vaani.common.timeutils import now_iso
from vaani.common.twilio import required_fields, twilio_webhook


@twilio_webhook
def incoming_message(request):
    """A patient's text: act on it and answer in TwiML, in their language."""
    fields = required_fields(request, "MessageSid", "From", "To")
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
    fields = required_fields(request, "MessageSid", "MessageStatus")
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
