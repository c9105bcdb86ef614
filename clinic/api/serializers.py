"""Shapes of §4-§6 of the API reference. Input serializers only check form; rules
live in ``clinic.services``."""

from datetime import date

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from clinic.models import (
    ALLOWED_DURATIONS,
    Appointment,
    AppointmentStatus,
    Doctor,
    Language,
    Patient,
)
from clinic.schedule import WEEKDAYS, validate_working_hours
from vaani.common.serializers import (
    MAX_ID,
    AwareDateTimeField,
    CalendarDateField,
    E164PhoneField,
    StrictSerializer,
)

# --- Read fast paths --------------------------------------------------------------------------
# The hot read serializers below answer from ``to_representation`` with plain dicts: the
# same keys, order and values as their declared fields (which still define the OpenAPI
# schema), without building DRF field objects and calling each field per row.
# ``clinic/tests/test_read_serializers.py`` compares them with DRF's own output.

_DRF_DATETIME = serializers.DateTimeField()
_DRF_DATE = serializers.DateField()


def _datetime_out(value, tz):
    """DRF ``DateTimeField().to_representation``, done directly for aware datetimes."""
    if not value:
        return None
    output_format = api_settings.DATETIME_FORMAT
    if (
        isinstance(value, str)
        or tz is None
        or value.tzinfo is None
        or output_format is None
        or output_format.lower() == ISO_8601
    ):
        return _DRF_DATETIME.to_representation(value)
    try:
        return value.astimezone(tz).strftime(output_format)
    except OverflowError:
        return _DRF_DATETIME.to_representation(value)  # DRF's own error


def _date_out(value):
    return None if value is None else _DRF_DATE.to_representation(value)


def _str(value):
    return None if value is None else str(value)


def _int(value):
    return None if value is None else int(value)


def _output_tz():
    return _DRF_DATETIME.default_timezone()


# --- Appointments ---------------------------------------------------------------------------


class AppointmentSerializer(serializers.ModelSerializer):
    """One appointment in lists and in create/update answers (§4.1, §4.3, §4.4)."""

    patient_id = serializers.IntegerField(read_only=True)
    patient_name = serializers.CharField(source="patient.name", read_only=True)
    patient_phone = serializers.CharField(source="patient.phone", read_only=True)
    doctor_id = serializers.IntegerField(read_only=True)
    doctor_name = serializers.CharField(source="doctor.name", read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient_id",
            "patient_name",
            "patient_phone",
            "doctor_id",
            "doctor_name",
            "scheduled_time",
            "end_time",
            "duration_minutes",
            "status",
            "reason",
            "notes",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    #: What ``to_representation`` reads, as ``values()`` names: the list loads these as
    #: rows (``values(*COLUMNS)``), not as appointment, patient and doctor models, which
    #: was most of the cost of a page.
    COLUMNS = (
        "id",
        "patient_id",
        "patient__name",
        "patient__phone",
        "doctor_id",
        "doctor__name",
        "scheduled_time",
        "end_time",
        "duration_minutes",
        "status",
        "reason",
        "notes",
        "source",
        "created_at",
        "updated_at",
    )

    def to_representation(self, instance):
        """``instance``: an Appointment, or a row of ``values(*COLUMNS)``."""
        row = instance if isinstance(instance, dict) else _row(instance, self.COLUMNS)
        tz = _output_tz()
        return {
            "id": _int(row["id"]),
            "patient_id": _int(row["patient_id"]),
            "patient_name": _str(row["patient__name"]),
            "patient_phone": _str(row["patient__phone"]),
            "doctor_id": _int(row["doctor_id"]),
            "doctor_name": _str(row["doctor__name"]),
            "scheduled_time": _datetime_out(row["scheduled_time"], tz),
            "end_time": _datetime_out(row["end_time"], tz),
            "duration_minutes": _int(row["duration_minutes"]),
            "status": _str(row["status"]),
            "reason": _str(row["reason"]),
            "notes": _str(row["notes"]),
            "source": _str(row["source"]),
            "created_at": _datetime_out(row["created_at"], tz),
            "updated_at": _datetime_out(row["updated_at"], tz),
        }


def _row(instance, columns) -> dict:
    """The model instance as a row of ``values(*columns)``."""
    row = {}
    for column in columns:
        value = instance
        for part in column.split("__"):
            value = getattr(value, part)
        row[column] = value
    return row


class AppointmentPatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "name", "phone", "date_of_birth", "language_preference"]
        read_only_fields = fields


class AppointmentDoctorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Doctor
        fields = ["id", "name", "specialization", "phone"]
        read_only_fields = fields


class AppointmentDetailSerializer(serializers.ModelSerializer):
    """§4.2: the appointment with its patient and doctor."""

    patient = AppointmentPatientSerializer(read_only=True)
    doctor = AppointmentDoctorSerializer(read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient",
            "doctor",
            "scheduled_time",
            "end_time",
            "duration_minutes",
            "status",
            "reason",
            "notes",
            "call_sid",
            "source",
            "cancellation_reason",
            "cancelled_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AppointmentCreateSerializer(StrictSerializer):
    patient_id = serializers.IntegerField(min_value=1)
    doctor_id = serializers.IntegerField(min_value=1)
    scheduled_time = AwareDateTimeField()
    duration_minutes = serializers.IntegerField(default=30, help_text="15, 30, 45 or 60.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class AppointmentUpdateSerializer(StrictSerializer):
    """§4.4: any subset; a new time, duration or doctor is checked like a booking."""

    scheduled_time = AwareDateTimeField(required=False)
    duration_minutes = serializers.IntegerField(required=False, help_text="15, 30, 45 or 60.")
    doctor_id = serializers.IntegerField(min_value=1, required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=AppointmentStatus.choices, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["Nothing to update."]})
        return attrs


class AppointmentListQuerySerializer(StrictSerializer):
    patient_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    doctor_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    status = serializers.ChoiceField(choices=AppointmentStatus.choices, required=False)
    start_date = CalendarDateField(required=False, help_text="From this local date (YYYY-MM-DD).")
    end_date = CalendarDateField(required=False, help_text="Up to this local date, inclusive.")

    def to_internal_value(self, data):
        # Query strings carry paging and other parameters too: only these are ours.
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})

    def validate(self, attrs):
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end < start:
            raise serializers.ValidationError(
                {"end_date": "end_date must not be before start_date"}
            )
        return attrs


class CancelQuerySerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def to_internal_value(self, data):
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})


class AvailableSlotsQuerySerializer(StrictSerializer):
    doctor_id = serializers.IntegerField(min_value=1)
    date = CalendarDateField()
    duration_minutes = serializers.ChoiceField(choices=ALLOWED_DURATIONS, default=30)

    def to_internal_value(self, data):
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})


class SlotSerializer(serializers.Serializer):
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()

    def to_representation(self, instance):
        tz = _output_tz()
        return {
            "start_time": _datetime_out(instance["start_time"], tz),
            "end_time": _datetime_out(instance["end_time"], tz),
        }


class AvailableSlotsSerializer(serializers.Serializer):
    doctor_id = serializers.IntegerField()
    doctor_name = serializers.CharField()
    date = serializers.DateField()
    duration_minutes = serializers.IntegerField()
    available_slots = SlotSerializer(many=True)
    total_slots = serializers.IntegerField()

    def to_representation(self, instance):
        tz = _output_tz()
        return {
            "doctor_id": _int(instance["doctor_id"]),
            "doctor_name": _str(instance["doctor_name"]),
            "date": _date_out(instance["date"]),
            "duration_minutes": _int(instance["duration_minutes"]),
            "available_slots": [
                {
                    "start_time": _datetime_out(slot["start_time"], tz),
                    "end_time": _datetime_out(slot["end_time"], tz),
                }
                for slot in instance["available_slots"]
            ],
            "total_slots": _int(instance["total_slots"]),
        }


# --- Patients -------------------------------------------------------------------------------


def age_on(date_of_birth: date | None, today: date) -> int | None:
    if date_of_birth is None:
        return None
    before_birthday = (today.month, today.day) < (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - before_birthday


class PatientSerializer(serializers.ModelSerializer):
    """§5.1: a patient in lists, with appointment figures."""

    age = serializers.SerializerMethodField()
    total_appointments = serializers.SerializerMethodField()
    last_appointment = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = [
            "id",
            "phone",
            "name",
            "date_of_birth",
            "age",
            "language_preference",
            "total_appointments",
            "last_appointment",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_age(self, patient) -> int | None:
        # The view passes "today" in the clinic's time zone; ages change at local midnight.
        return age_on(patient.date_of_birth, self.context.get("today") or timezone.localdate())

    def get_total_appointments(self, patient) -> int:
        return getattr(patient, "total_appointments", 0)

    def get_last_appointment(self, patient) -> str | None:
        value = getattr(patient, "last_appointment", None)
        return serializers.DateTimeField().to_representation(value) if value else None

    def to_representation(self, instance):
        tz = _output_tz()
        return {
            "id": _int(instance.pk),
            "phone": _str(instance.phone),
            "name": _str(instance.name),
            "date_of_birth": _date_out(instance.date_of_birth),
            "age": self.get_age(instance),
            "language_preference": _str(instance.language_preference),
            "total_appointments": self.get_total_appointments(instance),
            "last_appointment": _datetime_out(getattr(instance, "last_appointment", None), tz),
            "created_at": _datetime_out(instance.created_at, tz),
            "updated_at": _datetime_out(instance.updated_at, tz),
        }


class PatientHistoryItemSerializer(serializers.ModelSerializer):
    doctor_id = serializers.IntegerField(read_only=True)
    doctor_name = serializers.CharField(source="doctor.name", read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "doctor_id",
            "doctor_name",
            "scheduled_time",
            "duration_minutes",
            "status",
            "reason",
        ]
        read_only_fields = fields

    #: What ``to_representation`` reads, as ``values()`` names (see AppointmentSerializer).
    COLUMNS = (
        "id",
        "doctor_id",
        "doctor__name",
        "scheduled_time",
        "duration_minutes",
        "status",
        "reason",
    )

    def to_representation(self, instance):
        """``instance``: an Appointment, or a row of ``values(*COLUMNS)``."""
        row = instance if isinstance(instance, dict) else _row(instance, self.COLUMNS)
        return {
            "id": _int(row["id"]),
            "doctor_id": _int(row["doctor_id"]),
            "doctor_name": _str(row["doctor__name"]),
            "scheduled_time": _datetime_out(row["scheduled_time"], _output_tz()),
            "duration_minutes": _int(row["duration_minutes"]),
            "status": _str(row["status"]),
            "reason": _str(row["reason"]),
        }


class PatientDetailSerializer(PatientSerializer):
    """§5.2: the patient with recent appointment history (newest first)."""

    appointment_history = serializers.SerializerMethodField()
    upcoming_appointments = serializers.SerializerMethodField()

    class Meta(PatientSerializer.Meta):
        fields = [*PatientSerializer.Meta.fields, "appointment_history", "upcoming_appointments"]
        read_only_fields = fields

    def get_appointment_history(self, patient) -> list[dict]:
        history = self.context.get("history", [])
        return PatientHistoryItemSerializer(history, many=True).data

    def get_upcoming_appointments(self, patient) -> int:
        return getattr(patient, "upcoming_appointments", 0)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        history = PatientHistoryItemSerializer()
        data["appointment_history"] = [
            history.to_representation(item) for item in self.context.get("history", [])
        ]
        data["upcoming_appointments"] = self.get_upcoming_appointments(instance)
        return data


class _PatientInputMixin:
    def validate_date_of_birth(self, value):
        # "Today" in the clinic's time zone: in India the day starts 5h30 before UTC's.
        clinic = getattr(getattr(self.context.get("request"), "user", None), "clinic", None)
        today = timezone.localdate(timezone=clinic.tzinfo) if clinic else timezone.localdate()
        if value is not None and value > today:
            raise serializers.ValidationError("Date of birth cannot be in the future")
        if value is not None and value.year < 1900:
            raise serializers.ValidationError("Date of birth is too far in the past")
        return value

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("Name cannot be blank")
        return value.strip()


class PatientCreateSerializer(_PatientInputMixin, StrictSerializer):
    phone = E164PhoneField(max_length=20)
    name = serializers.CharField(max_length=200)
    date_of_birth = serializers.DateField(required=False, allow_null=True, default=None)
    language_preference = serializers.ChoiceField(choices=Language.choices, default=Language.HINDI)


class PatientUpdateSerializer(_PatientInputMixin, StrictSerializer):
    phone = E164PhoneField(max_length=20, required=False)
    name = serializers.CharField(max_length=200, required=False)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    language_preference = serializers.ChoiceField(choices=Language.choices, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["Nothing to update."]})
        return attrs


class PatientListQuerySerializer(StrictSerializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=100)
    language_preference = serializers.ChoiceField(choices=Language.choices, required=False)
    phone = E164PhoneField(required=False, help_text="Exact phone (E.164): everyone sharing it.")

    def to_internal_value(self, data):
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})


# --- Doctors ----------------------------------------------------------------------------------


_WORKING_HOURS_SCHEMA = {
    "type": "object",
    "properties": {
        day: {"type": "array", "items": {"type": "string", "example": "09:00-13:00"}}
        for day in WEEKDAYS
    },
}


@extend_schema_field(_WORKING_HOURS_SCHEMA)
class WorkingHoursField(serializers.JSONField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            validate_working_hours(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0]) from None
        return value


class DoctorSerializer(serializers.ModelSerializer):
    """§6.1."""

    # Plain string: a doctor may have no e-mail (""), which format "email" would refuse.
    email = serializers.CharField(read_only=True, help_text="E-mail address, or empty.")
    working_hours = serializers.SerializerMethodField()

    class Meta:
        model = Doctor
        fields = ["id", "name", "specialization", "phone", "email", "available", "working_hours"]
        read_only_fields = fields

    @extend_schema_field(_WORKING_HOURS_SCHEMA)
    def get_working_hours(self, doctor):
        return doctor.working_hours_display()


class DoctorCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    specialization = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default=""
    )
    phone = E164PhoneField(max_length=20, required=False, allow_blank=True, default="")
    # No default="": OpenAPI would document "" as the default of an email-format field.
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    available = serializers.BooleanField(default=True)
    working_hours = WorkingHoursField(required=False, default=dict)


class DoctorUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    specialization = serializers.CharField(max_length=120, required=False, allow_blank=True)
    phone = E164PhoneField(max_length=20, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    available = serializers.BooleanField(required=False)
    working_hours = WorkingHoursField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["Nothing to update."]})
        return attrs


class DoctorListQuerySerializer(StrictSerializer):
    specialization = serializers.CharField(required=False, allow_blank=True, max_length=120)
    available = serializers.BooleanField(required=False, allow_null=True, default=None)

    def to_internal_value(self, data):
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})


class ScheduleQuerySerializer(StrictSerializer):
    date = CalendarDateField(required=False, help_text="Local date; today when omitted.")
    week = serializers.BooleanField(
        required=False, default=False, help_text="The whole week (Monday to Sunday)."
    )

    def to_internal_value(self, data):
        return super().to_internal_value({k: v for k, v in data.items() if k in self.fields})


class ScheduleAppointmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    patient_name = serializers.CharField()
    start_time = serializers.CharField(help_text="Local clock time, HH:MM.")
    end_time = serializers.CharField(help_text="Local clock time, HH:MM.")
    status = serializers.CharField()
    reason = serializers.CharField()


class DayScheduleSerializer(serializers.Serializer):
    date = serializers.DateField()
    working_hours = serializers.ListField(child=serializers.CharField())
    day_off = serializers.CharField(allow_null=True)
    appointments = ScheduleAppointmentSerializer(many=True)
    total_appointments = serializers.IntegerField()
    available_slots = serializers.IntegerField()


class DoctorScheduleSerializer(DayScheduleSerializer):
    doctor_id = serializers.IntegerField()
    doctor_name = serializers.CharField()
    time_zone = serializers.CharField()
    week_start = serializers.DateField(required=False)
    week_end = serializers.DateField(required=False)
    days = DayScheduleSerializer(many=True, required=False)

    def to_representation(self, instance):
        # A week lists each appointment twice (under its day, and in ``appointments``),
        # the same dict both times: shaped once.
        shaped: dict[int, dict] = {}

        def appointment_out(item: dict) -> dict:
            key = id(item)
            if key not in shaped:
                shaped[key] = _schedule_appointment_out(item)
            return shaped[key]

        data = _day_out(instance, appointment_out)
        data["doctor_id"] = _int(instance["doctor_id"])
        data["doctor_name"] = _str(instance["doctor_name"])
        data["time_zone"] = _str(instance["time_zone"])
        # Not required: a single day's schedule has no week fields (DRF skips them).
        if "week_start" in instance:
            data["week_start"] = _date_out(instance["week_start"])
        if "week_end" in instance:
            data["week_end"] = _date_out(instance["week_end"])
        if "days" in instance:
            data["days"] = [_day_out(day, appointment_out) for day in instance["days"]]
        return data


def _schedule_appointment_out(item: dict) -> dict:
    return {
        "id": _int(item["id"]),
        "patient_id": _int(item["patient_id"]),
        "patient_name": _str(item["patient_name"]),
        "start_time": _str(item["start_time"]),
        "end_time": _str(item["end_time"]),
        "status": _str(item["status"]),
        "reason": _str(item["reason"]),
    }


def _day_out(day: dict, appointment_out=_schedule_appointment_out) -> dict:
    return {
        "date": _date_out(day["date"]),
        "working_hours": [_str(hours) for hours in day["working_hours"]],
        "day_off": _str(day["day_off"]),
        "appointments": [appointment_out(a) for a in day["appointments"]],
        "total_appointments": _int(day["total_appointments"]),
        "available_slots": _int(day["available_slots"]),
    }
