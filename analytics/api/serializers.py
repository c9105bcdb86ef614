"""Shapes of §8.1 and §8.3 (the documented keys, and a few more)."""

from datetime import timedelta

from rest_framework import serializers

from analytics.selectors import METRICS
from vaani.common.serializers import CalendarDateField, StrictSerializer

DEFAULT_DAYS = 30
MAX_DAYS = 366


class AnalyticsQuerySerializer(StrictSerializer):
    start_date = CalendarDateField(
        required=False, help_text="First local day (default: 29 days before end_date)."
    )
    end_date = CalendarDateField(
        required=False, help_text="Last local day, included (default: today)."
    )
    metric = serializers.ChoiceField(
        choices=METRICS, required=False, help_text="Only this section."
    )

    def to_internal_value(self, data):
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})

    def validate(self, attrs):
        today = self.context["today"]
        end = attrs.get("end_date") or max(today, attrs.get("start_date") or today)
        start = attrs.get("start_date") or end - timedelta(days=DEFAULT_DAYS - 1)
        if end < start:
            raise serializers.ValidationError(
                {"end_date": "end_date must not be before start_date"}
            )
        if (end - start).days + 1 > MAX_DAYS:
            raise serializers.ValidationError(
                {"end_date": f"The period may be at most {MAX_DAYS} days long"}
            )
        return {"start": start, "end": end, "metric": attrs.get("metric")}


class _Counts(serializers.Serializer):
    pending = serializers.IntegerField()
    failed = serializers.IntegerField()


class _Messages(serializers.Serializer):
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()


class _Today(serializers.Serializer):
    total_calls = serializers.IntegerField()
    completed_calls = serializers.IntegerField()
    failed_calls = serializers.IntegerField()
    appointments_booked = serializers.IntegerField()
    average_call_duration = serializers.IntegerField(help_text="Seconds, completed calls.")
    date = serializers.DateField(help_text="The clinic's local day.")


class _SystemHealth(serializers.Serializer):
    database = serializers.CharField(help_text="connected or disconnected")
    redis = serializers.CharField(help_text="connected, disconnected or not_configured")
    twilio = serializers.CharField(help_text="configured or not_configured")
    deepgram = serializers.CharField(help_text="configured or not_configured")
    cartesia = serializers.CharField(help_text="configured or not_configured")


class DashboardSerializer(serializers.Serializer):
    today = _Today()
    active_sessions = serializers.IntegerField(help_text="Calls ringing or in progress now.")
    voice_engine_status = serializers.ChoiceField(choices=["healthy", "degraded"])
    average_latency_ms = serializers.IntegerField(allow_null=True)
    p95_latency_ms = serializers.IntegerField(allow_null=True)
    system_health = _SystemHealth()
    messages = _Messages(allow_null=True, help_text="Today's SMS; null without the SMS app.")
    webhooks = _Counts(help_text="Deliveries pending now; failed today.")
    time_zone = serializers.CharField()


class _Period(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    time_zone = serializers.CharField()


class _Calls(serializers.Serializer):
    total = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    average_duration_seconds = serializers.IntegerField()


class _Appointments(serializers.Serializer):
    total_booked = serializers.IntegerField(help_text="Appointments scheduled in the period.")
    completed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    no_show = serializers.IntegerField()
    scheduled = serializers.IntegerField()
    booked_in_period = serializers.IntegerField(help_text="Bookings made in the period.")


class _Performance(serializers.Serializer):
    average_latency_ms = serializers.IntegerField(allow_null=True)
    p50_latency_ms = serializers.IntegerField(allow_null=True)
    p95_latency_ms = serializers.IntegerField(allow_null=True)
    p99_latency_ms = serializers.IntegerField(allow_null=True)
    samples = serializers.IntegerField(help_text="Conversation turns measured.")


class _Languages(serializers.Serializer):
    hindi = serializers.IntegerField()
    english = serializers.IntegerField()
    hinglish = serializers.IntegerField()
    unknown = serializers.IntegerField()


class AnalyticsSerializer(serializers.Serializer):
    """With ``metric``, only ``period`` and that metric's section(s) are present."""

    period = _Period()
    calls = _Calls(required=False)
    appointments = _Appointments(required=False)
    performance = _Performance(required=False)
    languages = _Languages(required=False)
    messages = _Messages(required=False, allow_null=True)
    webhooks = _Counts(required=False)

    def to_representation(self, instance):
        # A nullable field that is absent would be answered as null: leave it out.
        shaped = super().to_representation(instance)
        return {key: value for key, value in shaped.items() if key in instance}
