"""OpenAPI for Twilio's SMS webhooks (plain Django views), added by voice.openapi's hook."""

from voice.openapi import (
    RECORDED_RESPONSE,
    SIGNATURE_HEADER,
    STRING,
    TWIML_RESPONSE,
    error_responses,
    form_body,
)

SMS_WEBHOOK_PATHS = {
    "/api/v1/sms/incoming": {
        "post": {
            "operationId": "sms_incoming",
            "tags": ["sms"],
            "summary": "Twilio: a patient replies by SMS or WhatsApp",
            "description": '"C", "cancel" or "रद्द" cancels the next appointment, "R" answers a '
            "reschedule link, STOP and START opt out and back in. Answered with a TwiML "
            "<Message> in the patient's language.",
            "parameters": [SIGNATURE_HEADER],
            "requestBody": form_body(
                {"MessageSid": STRING, "From": STRING, "To": STRING, "Body": STRING},
                ["MessageSid", "From", "To"],
            ),
            "responses": {"200": TWIML_RESPONSE, **error_responses("400", "403", "405")},
            "security": [],
        }
    },
    "/api/v1/sms/status": {
        "post": {
            "operationId": "sms_status",
            "tags": ["sms"],
            "summary": "Twilio: delivery status of a message we sent",
            "parameters": [
                SIGNATURE_HEADER,
                {"name": "m", "in": "query", "required": False, "schema": STRING},
            ],
            "requestBody": form_body(
                {
                    "MessageSid": STRING,
                    "MessageStatus": STRING,
                    "ErrorCode": STRING,
                    "ErrorMessage": STRING,
                },
                ["MessageSid", "MessageStatus"],
            ),
            "responses": {
                "200": RECORDED_RESPONSE,
                **error_responses("400", "403", "404", "405"),
            },
            "security": [],
        }
    },
}
