"""Shapes of §12.1 (``/api/v1/admin/webhooks``). The secret is write-only: answers show
``secret_hint`` (its last four characters) and never the secret."""

import base64
import binascii
import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from vaani.common.serializers import StrictSerializer
from webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.signing import WHSEC_PREFIX


class WebhookSerializer(serializers.ModelSerializer):
    """A webhook as answered: ``disabled_at``/``disabled_reason`` say why it stopped."""

    secret_hint = serializers.CharField(read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "events",
            "description",
            "is_active",
            "secret_hint",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "last_success_at",
            "last_failure_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def _events_field(**kwargs):
    return serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        allow_empty=False,
        max_length=len(WebhookEvent.values),
        **kwargs,
    )


def _secret_field(**kwargs):
    return serializers.CharField(
        min_length=16,
        max_length=255,
        write_only=True,
        trim_whitespace=False,
        help_text=(
            "Signs every delivery (X-VAANI-Signature, webhook-signature). Write-only. "
            "A whsec_<base64> secret is used as Standard Webhooks defines it."
        ),
        **kwargs,
    )


class _WebhookInput(StrictSerializer):
    def validate_events(self, value):
        return list(dict.fromkeys(value))

    def validate_secret(self, value):
        if value.strip() != value or not value.isprintable():
            raise serializers.ValidationError(
                "The secret may not start or end with spaces or hold control characters."
            )
        if value.startswith(WHSEC_PREFIX):
            try:
                key = base64.b64decode(value[len(WHSEC_PREFIX) :], validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) < 16:
                raise serializers.ValidationError(
                    "A whsec_ secret is whsec_ and the base64 of at least 16 random bytes."
                )
        return value


class WebhookCreateSerializer(_WebhookInput):
    url = serializers.CharField(
        max_length=2000, help_text="https:// (or http://) on a public host."
    )
    events = _events_field()
    secret = _secret_field()
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False, default=True)


class WebhookUpdateSerializer(_WebhookInput):
    """PUT and PATCH both change only the fields sent."""

    url = serializers.CharField(max_length=2000, required=False)
    events = _events_field(required=False)
    secret = _secret_field(required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(
        required=False, help_text="true re-enables a disabled webhook (and clears its notice)."
    )


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "status_code", "latency_ms", "error", "succeeded"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.IntegerField(source="endpoint_id", read_only=True)
    payload = serializers.SerializerMethodField()
    attempt_log = WebhookAttemptSerializer(source="log", many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook_id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
            "payload",
            "attempt_log",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, delivery) -> dict:
        return json.loads(delivery.payload)


class DeliveryListQuerySerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)

    def to_internal_value(self, data):
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})


class WebhookDeletedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    deleted = serializers.BooleanField()
