"""Shapes of §7 of the API reference."""

from rest_framework import serializers

from vaani.common.serializers import MAX_ID, CalendarDateField, StrictSerializer
from voice.models import CallDirection, CallLog


class CallLogSerializer(serializers.ModelSerializer):
    """§7.1: a call in lists."""

    patient_id = serializers.IntegerField(read_only=True, allow_null=True)
    patient_name = serializers.CharField(
        source="patient.name", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = CallLog
        fields = [
            "id",
            "call_sid",
            "patient_id",
            "patient_name",
            "direction",
            "from_number",
            "to_number",
            "duration_seconds",
            "status",
            "language",
            "transcript",
            "summary",
            "sentiment",
            "created_at",
        ]
        read_only_fields = fields


class CallPatientSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    phone = serializers.CharField()


class CallTurnSerializer(serializers.Serializer):
    speaker = serializers.CharField()
    text = serializers.CharField()
    time = serializers.CharField(required=False)
    language = serializers.CharField(required=False)


class CallLogDetailSerializer(serializers.ModelSerializer):
    """§7.2: the whole call: transcript turns, intents, what it booked, latencies."""

    patient = CallPatientSerializer(read_only=True, allow_null=True)
    appointment_created = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    turns = CallTurnSerializer(many=True, read_only=True)
    intents_detected = serializers.ListField(child=serializers.CharField(), read_only=True)
    latency = serializers.DictField(read_only=True)
    providers = serializers.DictField(read_only=True)

    class Meta:
        model = CallLog
        fields = [
            "id",
            "call_sid",
            "patient",
            "direction",
            "from_number",
            "to_number",
            "duration_seconds",
            "status",
            "language",
            "transcript",
            "turns",
            "summary",
            "sentiment",
            "intents_detected",
            "appointment_created",
            "latency",
            "providers",
            "started_at",
            "ended_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CallLogListQuerySerializer(StrictSerializer):
    patient_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    direction = serializers.ChoiceField(choices=CallDirection.choices, required=False)
    start_date = CalendarDateField(required=False)
    end_date = CalendarDateField(required=False)

    def to_internal_value(self, data):
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})

    def validate(self, attrs):
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end < start:
            raise serializers.ValidationError(
                {"end_date": "end_date must not be before start_date"}
            )
        return attrs
