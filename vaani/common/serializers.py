"""Serializer pieces shared by every app."""

from datetime import MAXYEAR, MINYEAR

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from vaani.common.phone import normalize_e164


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not accept for writing.

    A silently ignored field hides client bugs and invites mass assignment
    (``clinic``, ``role``, ``status`` sent where they are not writable), so
    anything that is not a writable field is a validation error naming it.
    """

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}, code="invalid"
            )
        writable = {name for name, field in self.fields.items() if not field.read_only}
        unknown = sorted(set(data) - writable)
        if unknown:
            raise serializers.ValidationError(
                {name: ["This field is not allowed."] for name in unknown}
            )
        return super().to_internal_value(data)


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    pass


class E164PhoneField(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return normalize_e164(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0]) from None


class AwareDateTimeField(serializers.DateTimeField):
    """A datetime that must say its offset: appointment times are never guessed."""

    default_error_messages = {
        "naive": "Include a time zone, e.g. 2026-01-25T14:30:00Z or 2026-01-25T20:00:00+05:30.",
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        result = super().to_internal_value(value)
        if not _has_room_around(result):
            self.fail("overflow")
        return result


def _has_room_around(value) -> bool:
    """Clinic time zones, day bounds and week views shift a date by up to a week: the
    calendar's first and last years would overflow (an error 500, not a 400)."""
    return MINYEAR < value.year < MAXYEAR


# Ids are 64-bit: a larger number in a filter would crash SQLite, not just find nothing.
MAX_ID = 2**63 - 1


class CalendarDateField(serializers.DateField):
    """A date the clinic calendar can work with (years 2 to 9998)."""

    default_error_messages = {"out_of_range": "Date is out of range."}

    def to_internal_value(self, value):
        result = super().to_internal_value(value)
        if not _has_room_around(result):
            self.fail("out_of_range")
        return result
