"""OpenAPI for Twilio's webhooks, which are plain Django views (Twilio posts forms and
reads TwiML), so drf-spectacular cannot see them: added by a postprocessing hook."""

_ERROR = {"$ref": "#/components/schemas/Error"}


def form_body(properties: dict, required: list[str]) -> dict:
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": properties, "required": required}
            }
        },
    }


def error_responses(*codes: str) -> dict:
    descriptions = {
        "400": "A required Twilio field is missing or invalid.",
        "403": "Missing or invalid X-Twilio-Signature.",
        "404": "Unknown call or message.",
        "405": "Only POST.",
    }
    return {
        code: {
            "description": descriptions[code],
            "content": {"application/json": {"schema": _ERROR}},
        }
        for code in codes
    }


SIGNATURE_HEADER = {
    "name": "X-Twilio-Signature",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "Twilio's HMAC-SHA1 signature of the public URL and the form fields.",
}
STRING = {"type": "string"}
TWIML_RESPONSE = {
    "description": "TwiML for Twilio.",
    "content": {"text/xml": {"schema": {"type": "string"}}},
}

RECORDED_RESPONSE = {
    "description": "Recorded.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "success": {"type": "boolean"},
                    "message": STRING,
                    "timestamp": {"type": "string", "format": "date-time"},
                },
                "required": ["success", "message"],
            }
        }
    },
}

WEBHOOK_PATHS = {
    "/api/v1/voice/incoming": {
        "post": {
            "operationId": "voice_incoming",
            "tags": ["voice"],
            "summary": "Twilio: a patient calls the clinic (§3.1)",
            "description": "Greets the caller and connects the call to the media stream "
            "(or the speech-gather fallback). An unknown dialled number gets a polite message.",
            "parameters": [SIGNATURE_HEADER],
            "requestBody": form_body(
                {
                    "CallSid": STRING,
                    "AccountSid": STRING,
                    "From": STRING,
                    "To": STRING,
                    "CallStatus": STRING,
                    "Direction": STRING,
                },
                ["CallSid", "From", "To"],
            ),
            "responses": {"200": TWIML_RESPONSE, **error_responses("400", "403", "405")},
            "security": [],
        }
    },
    "/api/v1/voice/status": {
        "post": {
            "operationId": "voice_status",
            "tags": ["voice"],
            "summary": "Twilio: call status callback (§3.2)",
            "description": "Repeated or out-of-order callbacks never undo a final status.",
            "parameters": [SIGNATURE_HEADER],
            "requestBody": form_body(
                {
                    "CallSid": STRING,
                    "CallStatus": {
                        "type": "string",
                        "enum": [
                            "queued",
                            "ringing",
                            "in-progress",
                            "completed",
                            "busy",
                            "failed",
                            "no-answer",
                            "canceled",
                        ],
                    },
                    "CallDuration": {"type": "string", "pattern": "^[0-9]*$"},
                    "From": STRING,
                    "To": STRING,
                },
                ["CallSid", "CallStatus"],
            ),
            "responses": {
                "200": RECORDED_RESPONSE,
                **error_responses("400", "403", "404", "405"),
            },
            "security": [],
        }
    },
}


def add_webhook_paths(result, generator, request, public):
    """drf-spectacular postprocessing hook: Twilio's voice and SMS webhooks."""
    from notifications.openapi import SMS_WEBHOOK_PATHS

    result.setdefault("paths", {}).update({**WEBHOOK_PATHS, **SMS_WEBHOOK_PATHS})
    return result
