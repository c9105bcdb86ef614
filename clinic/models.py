"""The clinic domain: the clinic (tenant), its doctors, patients and appointments."""

import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from clinic.schedule import WEEKDAYS, parse_intervals, validate_working_hours
from vaani.common.models import ClinicOwnedQuerySet, TimeStampedModel
from vaani.common.phone import validate_e164


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}.")


class Language(models.TextChoices):
    HINDI = "hi", "Hindi"
    ENGLISH = "en", "English"
    HINGLISH = "hi-en", "Hinglish"


class VoiceMode(models.TextChoices):
    STREAM = "stream", "Media stream (our speech pipeline)"
    GATHER = "gather", "Twilio speech gather (fallback)"


class Clinic(TimeStampedModel):
    """The tenant: every patient, doctor, appointment and call belongs to one clinic."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    time_zone = models.CharField(
        max_length=64, default=settings.DEFAULT_CLINIC_TIME_ZONE, validators=[validate_time_zone]
    )
    address = models.TextField(blank=True)
    front_desk_phone = models.CharField(
        max_length=20,
        blank=True,
        validators=[validate_e164],
        help_text="Where calls are transferred when a caller asks for a person.",
    )
    email = models.EmailField(blank=True)
    default_language = models.CharField(
        max_length=5, choices=Language.choices, default=Language.HINGLISH
    )
    # Free-form facts the receptionist agent answers questions from (fees, hours text...).
    information = models.JSONField(default=dict, blank=True)
    voice_mode = models.CharField(
        max_length=10,
        choices=VoiceMode.choices,
        default=VoiceMode.STREAM,
        help_text="How calls are served: our media stream, or Twilio's <Gather> and <Say>.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class ClinicPhoneNumber(TimeStampedModel):
    """A number patients dial; the dialled number tells which clinic a call is for."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="phone_numbers")
    number = models.CharField(max_length=20, unique=True, validators=[validate_e164])
    label = models.CharField(max_length=60, blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self):
        return self.number


class Patient(TimeStampedModel):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    # Not unique: families in India often share one phone.
    phone = models.CharField(max_length=20, validators=[validate_e164])
    name = models.CharField(max_length=200)
    date_of_birth = models.DateField(null=True, blank=True)
    language_preference = models.CharField(
        max_length=5, choices=Language.choices, default=Language.HINDI
    )

    objects = ClinicOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["clinic", "phone"]),
            models.Index(fields=["clinic", "name"]),
        ]
        constraints = [
            models.UniqueConstraint(
                "clinic", "phone", Lower("name"), name="patient_unique_name_per_phone"
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.phone})"


class Doctor(TimeStampedModel):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="doctors")
    name = models.CharField(max_length=200)
    specialization = models.CharField(max_length=120, blank=True)
    phone = models.CharField(max_length=20, blank=True, validators=[validate_e164])
    email = models.EmailField(blank=True)
    available = models.BooleanField(
        default=True, help_text="Untick to stop new bookings (existing ones stay)."
    )
    # {"monday": ["09:00-13:00", "14:00-18:00"], ..., "sunday": []} in the clinic's time zone.
    working_hours = models.JSONField(default=dict, blank=True, validators=[validate_working_hours])

    objects = ClinicOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["clinic", "specialization"])]

    def __str__(self):
        return self.name

    def working_hours_display(self) -> dict[str, list[str]]:
        hours = self.working_hours or {}
        return {day: list(hours.get(day, [])) for day in WEEKDAYS}


class ScheduleExceptionKind(models.TextChoices):
    LEAVE = "leave", "Leave"
    HOLIDAY = "holiday", "Holiday"
    CHANGED_HOURS = "changed_hours", "Changed hours"


class DoctorScheduleException(TimeStampedModel):
    """A dated change to a doctor's week: a day off, or different hours that day."""

    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="exceptions")
    date = models.DateField()
    kind = models.CharField(max_length=20, choices=ScheduleExceptionKind.choices)
    # Only for changed_hours: the hours that replace the usual ones that day.
    hours = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint("doctor", "date", name="one_schedule_exception_per_doctor_day")
        ]

    def __str__(self):
        return f"{self.doctor} {self.date} {self.get_kind_display()}"

    def clean(self):
        if self.kind == ScheduleExceptionKind.CHANGED_HOURS:
            try:
                parse_intervals(self.hours)
            except ValueError as exc:
                raise ValidationError({"hours": str(exc)}) from None
        elif self.hours:
            raise ValidationError({"hours": "Only changed hours have hours; a day off has none."})


class AppointmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No show"


class BookingSource(models.TextChoices):
    API = "api", "API"
    UI = "ui", "Front desk UI"
    VOICE = "voice", "Voice agent"
    SMS = "sms", "SMS"


ALLOWED_DURATIONS = (15, 30, 45, 60)


class Appointment(TimeStampedModel):
    """A patient's time with a doctor. Cancelled ones are kept, never deleted.

    ``end_time`` is stored (not derived) so the database can refuse overlaps: on
    PostgreSQL an exclusion constraint over (doctor, [scheduled_time, end_time))
    for non-cancelled rows (migration 0002), on SQLite the booking transaction
    takes the write lock first (``transaction_mode=IMMEDIATE``).
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="appointments")
    scheduled_time = models.DateTimeField()
    end_time = models.DateTimeField(editable=False)
    duration_minutes = models.PositiveSmallIntegerField(
        choices=[(d, f"{d} minutes") for d in ALLOWED_DURATIONS]
    )
    status = models.CharField(
        max_length=20, choices=AppointmentStatus.choices, default=AppointmentStatus.SCHEDULED
    )
    reason = models.CharField(max_length=500, blank=True)
    notes = models.TextField(blank=True)
    call_sid = models.CharField(max_length=64, blank=True, db_index=True)
    cancellation_reason = models.CharField(max_length=500, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(
        max_length=10, choices=BookingSource.choices, default=BookingSource.API
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff member who booked it, if a person did.",
    )

    objects = ClinicOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["scheduled_time", "id"]
        indexes = [
            models.Index(fields=["doctor", "scheduled_time"]),
            # Lists filtered by doctor: the page and its total (an index-only count).
            models.Index(fields=["clinic", "doctor", "scheduled_time"]),
            models.Index(fields=["clinic", "scheduled_time"]),
            models.Index(fields=["patient", "scheduled_time"]),
            # A patient's appointment figures (total, upcoming): index-only counts.
            models.Index(fields=["patient", "status", "scheduled_time"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(duration_minutes__in=ALLOWED_DURATIONS),
                name="appointment_duration_allowed",
            ),
            models.CheckConstraint(
                condition=models.Q(end_time__gt=models.F("scheduled_time")),
                name="appointment_ends_after_start",
            ),
        ]

    def __str__(self):
        return (
            f"{self.patient.name} with {self.doctor.name} at {self.scheduled_time:%Y-%m-%d %H:%M}"
        )

    def save(self, *args, **kwargs):
        self.end_time = self.scheduled_time + timedelta(minutes=self.duration_minutes)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"scheduled_time", "duration_minutes"} & set(
            update_fields
        ):
            kwargs["update_fields"] = {*update_fields, "end_time"}
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        """Occupies the doctor's time (everything but a cancellation does)."""
        return self.status != AppointmentStatus.CANCELLED
