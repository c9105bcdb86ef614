"""OpenAPI that describes the bodies we really send: the envelope and the errors.

drf-spectacular documents serializers as they are; our renderer wraps them in
``{"success", "data", "message", "timestamp"}`` and the exception handler answers
the §10 error body. This schema class applies the same wrapping to every
operation, so clients generated from ``/openapi.json`` (and schemathesis) see the
real shapes.
"""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class RevocableJWTScheme(SimpleJWTScheme):
    """Documents our Bearer JWT authentication (a simplejwt subclass) as ``jwtAuth``."""

    target_class = "accounts.authentication.RevocableJWTAuthentication"


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            "VALIDATION_ERROR",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "NOT_FOUND",
            "METHOD_NOT_ALLOWED",
            "NOT_ACCEPTABLE",
            "CONFLICT",
            "UNSUPPORTED_MEDIA_TYPE",
            "UNPROCESSABLE_ENTITY",
            "RATE_LIMIT_EXCEEDED",
            "INTERNAL_SERVER_ERROR",
            "SERVICE_UNAVAILABLE",
        ]
    )
    message = serializers.CharField()
    details = serializers.DictField(help_text="Per-field messages, or facts about the error.")


class ErrorSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="Always false.")
    error = ErrorDetailSerializer()
    timestamp = serializers.DateTimeField()


_ERRORS = {
    "400": "Invalid input (VALIDATION_ERROR), with per-field details.",
    "401": "Missing, invalid, expired or signed-out token (UNAUTHORIZED).",
    "403": "Your role does not allow this (FORBIDDEN).",
    "404": "Not found, or another clinic's (NOT_FOUND).",
    "405": "Method not allowed.",
    "409": "Conflict, e.g. the slot is already booked (CONFLICT).",
    "415": "Body is not JSON.",
    "422": "Not possible in the object's state (UNPROCESSABLE_ENTITY).",
    "429": "Rate limit exceeded (RATE_LIMIT_EXCEEDED).",
}
_PUBLIC_ERRORS = ("400", "405", "415", "429")
_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {
        "schema": {"type": "integer"},
        "description": "Requests allowed per window.",
    },
    "X-RateLimit-Remaining": {
        "schema": {"type": "integer"},
        "description": "Requests left in this window.",
    },
    "X-RateLimit-Reset": {
        "schema": {"type": "integer"},
        "description": "When the window resets (Unix time).",
    },
}


def _envelope(data_schema: dict | None) -> dict:
    properties = {
        "success": {"type": "boolean", "enum": [True]},
        "message": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
    }
    required = ["success", "timestamp"]
    if data_schema is not None:
        properties["data"] = data_schema
        required.append("data")
    return {"type": "object", "properties": properties, "required": required}


class EnvelopeAutoSchema(AutoSchema):
    def _get_paginator(self):
        paginator = super()._get_paginator()
        if paginator is not None:
            paginator.list_key = getattr(self.view, "list_key", "results")
        return paginator

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        wrap = getattr(self.view, "envelope", True)
        for code, response in responses.items():
            if not code.startswith("2"):
                continue
            if wrap:
                content = response.get("content")
                if content:
                    for media in content.values():
                        media["schema"] = _envelope(media.get("schema"))
                else:
                    response["content"] = {"application/json": {"schema": _envelope(None)}}
            if getattr(self.view, "rate_limit_category", None):
                response.setdefault("headers", {}).update(_RATE_LIMIT_HEADERS)
        public = any(isinstance(p, AllowAny) for p in self.view.get_permissions())
        codes = _PUBLIC_ERRORS if public else tuple(_ERRORS)
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = _ERRORS[code]
        responses.setdefault("default", self._get_response_for_code(ErrorSerializer, "500"))
        responses["default"]["description"] = "Any other error, in the same body."
        return responses
