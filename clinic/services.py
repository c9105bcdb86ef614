"""Business rules of the clinic: booking, changing, cancelling, slots.

The one write path for appointments. The REST API, the front-desk UI, the voice
agent and Celery tasks all call these functions, so each rule lives here once.
They raise the domain errors of ``vaani.common.exceptions`` and announce every
change through ``clinic.signals.appointment_changed`` once the transaction
commits (SMS and webhooks attach there).

Double booking is impossible, not just unlikely: the doctor's row is locked for
the check-and-insert (PostgreSQL), SQLite transactions take the write lock when
they begin, and on PostgreSQL an exclusion constraint refuses any overlapping
non-cancelled row whoever writes it.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from clinic import schedule
from clinic.models import (
    ALLOWED_DURATIONS,
    Appointment,
    AppointmentStatus,
    BookingSource,
    Clinic,
    Doctor,
    DoctorScheduleException,
    Patient,
    ScheduleExceptionKind,
)
from clinic.signals import AppointmentEvent, announce_appointment_change
from vaani.common.exceptions import (
    BookingValidationError,
    ConflictError,
    NotFoundError,
    UnprocessableError,
)
from vaani.common.prepared import PreparedQuery
from vaani.common.timeutils import iso_utc

OVERLAP_CONSTRAINT = "appointment_no_overlap"
DEFAULT_DURATION = 30
LONGEST_APPOINTMENT = timedelta(minutes=max(ALLOWED_DURATIONS))


def overlapping(start: datetime, end: datetime, *, earliest: datetime | None = None) -> Q:
    """Appointments whose [scheduled_time, end_time) meets [start, end).

    The lower bound on scheduled_time (``earliest``, always ``earliest_overlap(start)``;
    a prepared query passes it as an argument of its own) follows from the others
    (nothing lasts longer than the longest allowed duration) but lets the (doctor,
    scheduled_time) index read just that window instead of the doctor's whole history
    before ``end``.
    """
    return Q(
        scheduled_time__lt=end,
        scheduled_time__gt=earliest_overlap(start) if earliest is None else earliest,
        end_time__gt=start,
    )


def earliest_overlap(start: datetime) -> datetime:
    """The earliest start of an appointment that can still be running at ``start``."""
    return start - LONGEST_APPOINTMENT


# --- Lookups that every caller needs --------------------------------------------------


def get_patient(*, clinic: Clinic, patient_id) -> Patient:
    patient = Patient.objects.filter(clinic=clinic, pk=patient_id).first()
    if patient is None:
        raise NotFoundError("patient", patient_id)
    return patient


# Hot reads (slots, schedules, the voice agent's checks) compiled once: see
# vaani.common.prepared. Each is still the queryset below; only its SQL is reused.
_DOCTOR = PreparedQuery(
    lambda clinic_id, doctor_id: Doctor.objects.filter(clinic_id=clinic_id, pk=doctor_id)
)


def get_doctor(*, clinic: Clinic, doctor_id, lock: bool = False) -> Doctor:
    """The clinic's doctor, with ``doctor.clinic`` set to ``clinic`` (no second query)."""
    if lock or not isinstance(doctor_id, int) or isinstance(doctor_id, bool):
        queryset = Doctor.objects.filter(clinic=clinic, pk=doctor_id).select_related("clinic")
        if lock:
            queryset = queryset.select_for_update(of=("self",))
        doctor = queryset.first()
    else:
        found = _DOCTOR(clinic_id=clinic.pk, doctor_id=doctor_id)
        doctor = found[0] if found else None
        if doctor is not None:
            Doctor.clinic.field.set_cached_value(doctor, clinic)
    if doctor is None:
        raise NotFoundError("doctor", doctor_id)
    return doctor


# --- Working hours ---------------------------------------------------------------------------


def opening_periods(
    doctor: Doctor, day: date, exception: DoctorScheduleException | None
) -> list[tuple[datetime, datetime]]:
    """When the doctor sees patients on ``day`` (local), exceptions applied."""
    if exception is not None:
        if exception.kind != ScheduleExceptionKind.CHANGED_HOURS:
            return []
        intervals = schedule.parse_intervals(exception.hours)
    else:
        weekday = schedule.WEEKDAYS[day.weekday()]
        intervals = schedule.parse_intervals((doctor.working_hours or {}).get(weekday, []))
    return schedule.open_periods(intervals, day, doctor.clinic.tzinfo)


def _exception_query(doctor_id, day):
    return DoctorScheduleException.objects.filter(doctor_id=doctor_id, date=day)[:1]  # first()


_EXCEPTION = PreparedQuery(_exception_query)


def exception_on(doctor: Doctor, day: date) -> DoctorScheduleException | None:
    found = _EXCEPTION(doctor_id=doctor.pk, day=day)
    return found[0] if found else None


def active_overlapping(
    doctor_id, start: datetime, end: datetime, *, earliest=None, exclude_id=None
) -> QuerySet[Appointment]:
    """The doctor's appointments, cancelled ones aside, that meet [start, end): what a
    booking must not overlap, a day's busy time, a schedule's visits."""
    queryset = Appointment.objects.filter(
        overlapping(start, end, earliest=earliest), doctor_id=doctor_id
    ).exclude(status=AppointmentStatus.CANCELLED)
    if exclude_id is not None:
        queryset = queryset.exclude(pk=exclude_id)
    return queryset


def _busy_query(doctor_id, start, end, earliest, exclude_id):
    return (
        active_overlapping(doctor_id, start, end, earliest=earliest, exclude_id=exclude_id)
        .order_by("scheduled_time")
        .values_list("scheduled_time", "end_time")
    )


_BUSY = PreparedQuery(_busy_query)


def busy_periods(
    doctor: Doctor, start: datetime, end: datetime, *, exclude_id: int | None = None
) -> list[tuple[datetime, datetime]]:
    return _BUSY(
        doctor_id=doctor.pk,
        start=start,
        end=end,
        earliest=earliest_overlap(start),
        exclude_id=exclude_id,
    )


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime


def available_slots(
    *,
    doctor: Doctor,
    day: date,
    duration_minutes: int = DEFAULT_DURATION,
    now: datetime | None = None,
) -> list[Slot]:
    """Free slots on the local ``day``: hours minus exceptions minus bookings, future only.

    Three queries at most: the doctor (with clinic) is the caller's, then the day's
    exception and the day's bookings.
    """
    _check_duration(duration_minutes, field="duration_minutes")
    if not doctor.available:  # booking refuses them, so no slot is free
        return []
    periods = opening_periods(doctor, day, exception_on(doctor, day))
    if not periods:
        return []
    busy = busy_periods(doctor, periods[0][0], periods[-1][1])
    free = schedule.free_slots(
        periods, busy, timedelta(minutes=duration_minutes), now or timezone.now()
    )
    return [Slot(start, end) for start, end in free]


# --- Booking -----------------------------------------------------------------------------------


def _check_duration(duration_minutes, *, field: str = "duration_minutes") -> None:
    if duration_minutes not in ALLOWED_DURATIONS:
        raise BookingValidationError(details={field: "Duration must be 15, 30, 45 or 60 minutes"})


def _validate_time(
    *, doctor: Doctor, start: datetime, duration_minutes: int, now: datetime
) -> None:
    """The rules of §4.3 except overlap; all failures reported together."""
    errors: dict[str, str] = {}
    if start.tzinfo is None:
        errors["scheduled_time"] = "Scheduled time must include a time zone"
    elif start <= now:
        errors["scheduled_time"] = "Scheduled time must be in the future"
    if duration_minutes not in ALLOWED_DURATIONS:
        errors["duration_minutes"] = "Duration must be 15, 30, 45 or 60 minutes"
    if not doctor.available:
        errors["doctor_id"] = f"{doctor.name} is not accepting appointments"
    if not errors:
        local_day = timezone.localtime(start, doctor.clinic.tzinfo).date()
        exception = exception_on(doctor, local_day)
        end = start + timedelta(minutes=duration_minutes)
        if exception is not None and exception.kind != ScheduleExceptionKind.CHANGED_HOURS:
            errors["scheduled_time"] = (
                f"{doctor.name} is not seeing patients on {local_day.isoformat()}"
                f" ({exception.get_kind_display().lower()})"
            )
        elif not schedule.fits_within(start, end, opening_periods(doctor, local_day, exception)):
            errors["scheduled_time"] = f"{doctor.name} is not available at that time"
    if errors:
        raise BookingValidationError(details=errors)


def _raise_if_overlapping(
    *, doctor: Doctor, start: datetime, duration_minutes: int, exclude_id: int | None = None
) -> None:
    end = start + timedelta(minutes=duration_minutes)
    conflicting = (
        active_overlapping(doctor.pk, start, end, exclude_id=exclude_id)
        .order_by("scheduled_time")
        .values_list("pk", flat=True)
        .first()
    )
    if conflicting is not None:
        raise _conflict(doctor, start, conflicting)


def _conflict(doctor: Doctor, start: datetime, conflicting_id: int | None) -> ConflictError:
    return ConflictError(
        "Appointment time slot already booked",
        details={
            "doctor_id": doctor.pk,
            "requested_time": iso_utc(start),
            "conflicting_appointment_id": conflicting_id,
        },
    )


def _save_guarded(appointment: Appointment, *, doctor: Doctor, **save_kwargs) -> None:
    """Saves; a lost race against another booking becomes the same 409 as the check."""
    try:
        with transaction.atomic():
            appointment.save(**save_kwargs)
    except IntegrityError as exc:
        if OVERLAP_CONSTRAINT not in str(exc):
            raise
        _raise_if_overlapping(
            doctor=doctor,
            start=appointment.scheduled_time,
            duration_minutes=appointment.duration_minutes,
            exclude_id=appointment.pk,
        )
        raise _conflict(doctor, appointment.scheduled_time, None) from exc


def book_appointment(
    *,
    clinic: Clinic,
    patient_id: int,
    doctor_id: int,
    scheduled_time: datetime,
    duration_minutes: int = DEFAULT_DURATION,
    reason: str = "",
    notes: str = "",
    call_sid: str = "",
    source: str = BookingSource.API,
    booked_by=None,
    now: datetime | None = None,
) -> Appointment:
    """Books a patient with a doctor, or raises NotFound/Validation/Conflict errors."""
    now = now or timezone.now()
    with transaction.atomic():
        patient = get_patient(clinic=clinic, patient_id=patient_id)
        doctor = get_doctor(clinic=clinic, doctor_id=doctor_id, lock=True)
        _validate_time(
            doctor=doctor, start=scheduled_time, duration_minutes=duration_minutes, now=now
        )
        _raise_if_overlapping(
            doctor=doctor, start=scheduled_time, duration_minutes=duration_minutes
        )
        appointment = Appointment(
            clinic=clinic,
            patient=patient,
            doctor=doctor,
            scheduled_time=scheduled_time,
            duration_minutes=duration_minutes,
            reason=reason,
            notes=notes,
            call_sid=call_sid,
            source=source,
            booked_by=booked_by,
        )
        _save_guarded(appointment, doctor=doctor)
        announce_appointment_change(AppointmentEvent.CREATED, appointment)
    return appointment


_EDITABLE_FIELDS = {"scheduled_time", "duration_minutes", "doctor_id", "reason", "notes", "status"}
_FOLLOW_UP_STATUSES = {AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW}


def update_appointment(
    *, appointment: Appointment, changes: dict, updated_by=None, now: datetime | None = None
) -> Appointment:
    """Applies ``changes`` (a subset of the editable fields), revalidating a new time.

    Setting status to ``cancelled`` is the same as ``cancel_appointment``.
    """
    unknown = set(changes) - _EDITABLE_FIELDS
    if unknown:
        raise BookingValidationError(
            details={name: "This field cannot be changed" for name in unknown}
        )
    now = now or timezone.now()
    if changes.get("status") == AppointmentStatus.CANCELLED:
        rest = {k: v for k, v in changes.items() if k != "status"}
        if rest:
            raise BookingValidationError(
                details={"status": "Cancel on its own, without other changes"}
            )
        return cancel_appointment(appointment=appointment, cancelled_by=updated_by)

    with transaction.atomic():
        current = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if current.status == AppointmentStatus.CANCELLED:
            raise UnprocessableError("A cancelled appointment cannot be changed; book a new one")
        moves = {"scheduled_time", "duration_minutes", "doctor_id"} & set(changes)
        moved = any(getattr(current, f) != changes[f] for f in moves)
        if moved and current.status != AppointmentStatus.SCHEDULED:
            raise UnprocessableError("Only a scheduled appointment can be moved")

        new_status = changes.get("status")
        if new_status in _FOLLOW_UP_STATUSES and current.scheduled_time > now:
            raise BookingValidationError(
                details={"status": "An appointment cannot be completed or missed before it starts"}
            )

        doctor = current.doctor
        if moved:
            doctor_id = changes.get("doctor_id", current.doctor_id)
            doctor = get_doctor(clinic=current.clinic, doctor_id=doctor_id, lock=True)
            start = changes.get("scheduled_time", current.scheduled_time)
            duration = changes.get("duration_minutes", current.duration_minutes)
            _validate_time(doctor=doctor, start=start, duration_minutes=duration, now=now)
            _raise_if_overlapping(
                doctor=doctor, start=start, duration_minutes=duration, exclude_id=current.pk
            )
            current.doctor = doctor
            current.scheduled_time = start
            current.duration_minutes = duration
        for field in ("reason", "notes", "status"):
            if field in changes:
                setattr(current, field, changes[field])
        _save_guarded(current, doctor=doctor)
        announce_appointment_change(
            AppointmentEvent.UPDATED,
            current,
            rescheduled=moved,
            previous_time=appointment.scheduled_time,
        )
    return current


def cancel_appointment(
    *, appointment: Appointment, reason: str = "", cancelled_by=None, now: datetime | None = None
) -> Appointment:
    """Cancels and keeps the row. Cancelling a cancelled appointment changes nothing."""
    with transaction.atomic():
        current = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if current.status == AppointmentStatus.CANCELLED:
            return current
        if current.status != AppointmentStatus.SCHEDULED:
            raise UnprocessableError(
                f"A {current.get_status_display().lower()} appointment cannot be cancelled"
            )
        current.status = AppointmentStatus.CANCELLED
        current.cancellation_reason = reason[:500]
        current.cancelled_at = now or timezone.now()
        current.save(update_fields=["status", "cancellation_reason", "cancelled_at", "updated_at"])
        announce_appointment_change(AppointmentEvent.CANCELLED, current)
    return current


# --- Patients and doctors --------------------------------------------------------------------


def _save_unique_patient(patient: Patient) -> Patient:
    duplicate = (
        Patient.objects.filter(
            clinic=patient.clinic, phone=patient.phone, name__iexact=patient.name
        )
        .exclude(pk=patient.pk)
        .values_list("pk", flat=True)
        .first()
    )
    if duplicate is not None:
        raise ConflictError(
            "A patient with this name and phone already exists",
            details={"existing_patient_id": duplicate},
        )
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:  # a concurrent twin won the race
        raise ConflictError("A patient with this name and phone already exists") from None
    return patient


def create_patient(*, clinic: Clinic, phone: str, name: str, **fields) -> Patient:
    return _save_unique_patient(Patient(clinic=clinic, phone=phone, name=name.strip(), **fields))


def update_patient(*, patient: Patient, changes: dict) -> Patient:
    for field, value in changes.items():
        setattr(patient, field, value.strip() if field == "name" else value)
    return _save_unique_patient(patient)


def create_doctor(*, clinic: Clinic, working_hours: dict | None = None, **fields) -> Doctor:
    doctor = Doctor(
        clinic=clinic, working_hours=schedule.normalize_working_hours(working_hours or {}), **fields
    )
    doctor.save()
    return doctor


def update_doctor(*, doctor: Doctor, changes: dict) -> Doctor:
    if "working_hours" in changes:
        changes = {
            **changes,
            "working_hours": schedule.normalize_working_hours(changes["working_hours"]),
        }
    for field, value in changes.items():
        setattr(doctor, field, value)
    doctor.save()
    return doctor
