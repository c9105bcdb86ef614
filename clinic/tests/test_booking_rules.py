"""The booking rules of §4.3-§4.5, one test per rule, through ``clinic.services``."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from clinic import services
from clinic.models import Appointment, AppointmentStatus, ScheduleExceptionKind
from clinic.schedule import WEEKDAYS
from clinic.signals import appointment_changed
from clinic.tests.factories import (
    AppointmentFactory,
    ClinicFactory,
    DoctorFactory,
    PatientFactory,
    ScheduleExceptionFactory,
)
from vaani.common.exceptions import (
    BookingValidationError,
    ConflictError,
    NotFoundError,
    UnprocessableError,
)
from vaani.common.timeutils import iso_utc

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(clinic):
    return PatientFactory(clinic=clinic)


@pytest.fixture
def doctor(clinic):
    return DoctorFactory(clinic=clinic)


@pytest.fixture
def book(clinic, patient, doctor, at):
    """Books through the service with defaults; ``now`` is the day before ``future_day``."""

    def _book(clock="10:00", **kwargs):
        kwargs.setdefault("patient_id", patient.pk)
        kwargs.setdefault("doctor_id", doctor.pk)
        kwargs.setdefault("duration_minutes", 30)
        start = kwargs.pop("scheduled_time", None) or at(clock)
        return services.book_appointment(clinic=clinic, scheduled_time=start, **kwargs)

    return _book


@pytest.fixture
def sent():
    """Every ``appointment_changed`` actually sent: (event, appointment id, extra)."""
    events = []

    def receiver(sender, event, appointment, signal, **extra):
        events.append((str(event), appointment.pk, extra))

    appointment_changed.connect(receiver, weak=False, dispatch_uid="test_booking_rules")
    yield events
    appointment_changed.disconnect(dispatch_uid="test_booking_rules")


def details_of(excinfo) -> dict:
    return excinfo.value.details


# --- Booking: §4.3 -------------------------------------------------------------------------


def test_valid_booking_is_saved_with_its_end_time(book, patient, doctor, at, receptionist):
    appointment = book("10:00", duration_minutes=45, reason="Fever", booked_by=receptionist)
    saved = Appointment.objects.get(pk=appointment.pk)
    assert (saved.patient_id, saved.doctor_id) == (patient.pk, doctor.pk)
    assert saved.scheduled_time == at("10:00")
    assert saved.end_time == at("10:45")
    assert saved.status == AppointmentStatus.SCHEDULED
    assert saved.reason == "Fever"
    assert saved.booked_by == receptionist


def test_scheduled_time_must_be_in_the_future(book, at):
    with pytest.raises(BookingValidationError) as excinfo:
        book("10:00", now=at("10:00"))  # "now" itself is not the future
    assert details_of(excinfo) == {"scheduled_time": "Scheduled time must be in the future"}
    with pytest.raises(BookingValidationError):
        book("10:00", now=at("11:00"))
    assert book("10:00", now=at("09:59")).pk


def test_a_real_past_time_is_refused_without_a_frozen_clock(book):
    yesterday = timezone.now() - timedelta(days=1)
    with pytest.raises(BookingValidationError) as excinfo:
        book(scheduled_time=yesterday)
    assert "scheduled_time" in details_of(excinfo)


@pytest.mark.parametrize("minutes", [15, 30, 45, 60])
def test_allowed_durations(book, at, minutes):
    appointment = book("10:00", duration_minutes=minutes)
    assert appointment.end_time == at("10:00") + timedelta(minutes=minutes)


@pytest.mark.parametrize("minutes", [0, 5, 20, 31, 90, -30, None, "30"])
def test_other_durations_are_refused(book, minutes):
    with pytest.raises(BookingValidationError) as excinfo:
        book("10:00", duration_minutes=minutes)
    assert details_of(excinfo) == {"duration_minutes": "Duration must be 15, 30, 45 or 60 minutes"}
    assert not Appointment.objects.exists()


@pytest.mark.parametrize(
    ("clock", "minutes", "ok"),
    [
        ("09:00", 30, True),  # opening
        ("12:30", 30, True),  # ends exactly at closing of the morning
        ("12:31", 30, False),  # one minute over
        ("12:45", 30, False),  # runs into lunch
        ("08:45", 30, False),  # starts before opening
        ("13:15", 15, False),  # lunch break
        ("14:00", 60, True),  # second interval of the day
        ("17:00", 60, True),  # ends exactly at closing
        ("17:01", 15, True),
        ("17:46", 15, False),  # one minute over 18:00
        ("18:00", 15, False),
    ],
)
def test_must_fit_inside_one_working_interval(book, clock, minutes, ok):
    if ok:
        assert book(clock, duration_minutes=minutes).pk
        return
    with pytest.raises(BookingValidationError) as excinfo:
        book(clock, duration_minutes=minutes)
    assert "is not available at that time" in details_of(excinfo)["scheduled_time"]


def test_weekday_without_hours_is_refused(clinic, patient, at, future_day):
    hours = {day: ["09:00-13:00"] for day in WEEKDAYS}
    hours[WEEKDAYS[future_day.weekday()]] = []
    doctor = DoctorFactory(clinic=clinic, working_hours=hours)
    with pytest.raises(BookingValidationError):
        services.book_appointment(
            clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("10:00")
        )
    next_day = at("10:00") + timedelta(days=1)
    assert services.book_appointment(
        clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=next_day
    ).pk


def test_working_hours_are_read_in_the_clinics_time_zone(clinic, patient, at, future_day):
    """01:00 in Kolkata is the previous day in UTC: the local weekday decides."""
    only_that_day = {WEEKDAYS[future_day.weekday()]: ["00:30-03:00"]}
    doctor = DoctorFactory(clinic=clinic, working_hours=only_that_day)
    start = at("01:00")
    assert start.astimezone(UTC).date() != future_day  # the point of the test
    appointment = services.book_appointment(
        clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=start
    )
    assert appointment.pk


@pytest.mark.parametrize("kind", [ScheduleExceptionKind.LEAVE, ScheduleExceptionKind.HOLIDAY])
def test_no_booking_on_a_day_off(book, doctor, future_day, kind):
    ScheduleExceptionFactory(doctor=doctor, date=future_day, kind=kind)
    with pytest.raises(BookingValidationError) as excinfo:
        book("10:00")
    message = details_of(excinfo)["scheduled_time"]
    assert future_day.isoformat() in message
    assert kind.label.lower() in message


def test_day_off_is_the_local_date(clinic, patient, future_day, at):
    """A booking at 01:00 local on a leave day is refused though it is 'yesterday' in UTC."""
    doctor = DoctorFactory(clinic=clinic, working_hours={day: ["00:30-03:00"] for day in WEEKDAYS})
    ScheduleExceptionFactory(doctor=doctor, date=future_day, kind=ScheduleExceptionKind.LEAVE)
    with pytest.raises(BookingValidationError):
        services.book_appointment(
            clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("01:00")
        )


def test_a_day_off_elsewhere_in_the_week_does_not_matter(book, doctor, future_day):
    ScheduleExceptionFactory(doctor=doctor, date=future_day + timedelta(days=1))
    assert book("10:00").pk


def test_changed_hours_replace_the_days_hours(book, doctor, future_day):
    ScheduleExceptionFactory(
        doctor=doctor,
        date=future_day,
        kind=ScheduleExceptionKind.CHANGED_HOURS,
        hours=["19:00-21:00"],
    )
    with pytest.raises(BookingValidationError):
        book("10:00")  # usual hours no longer apply
    assert book("19:00").pk
    assert book("20:30").pk  # ends exactly at the changed closing time
    with pytest.raises(BookingValidationError):
        book("20:45")


def test_unavailable_doctor_refuses(book, doctor):
    doctor.available = False
    doctor.save()
    with pytest.raises(BookingValidationError) as excinfo:
        book("10:00")
    assert details_of(excinfo) == {"doctor_id": f"{doctor.name} is not accepting appointments"}


@pytest.mark.parametrize(
    ("clock", "minutes"),
    [("10:00", 30), ("10:15", 15), ("09:45", 30), ("09:30", 60), ("10:29", 15)],
)
def test_overlap_with_the_same_doctor_is_a_conflict(book, doctor, at, clock, minutes):
    existing = book("10:00", duration_minutes=30)
    with pytest.raises(ConflictError) as excinfo:
        book(clock, duration_minutes=minutes)
    assert excinfo.value.message == "Appointment time slot already booked"
    assert details_of(excinfo) == {
        "doctor_id": doctor.pk,
        "requested_time": iso_utc(at(clock)),
        "conflicting_appointment_id": existing.pk,
    }
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize("status", [AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW])
def test_any_non_cancelled_appointment_blocks(book, clinic, patient, doctor, at, status):
    blocking = AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=at("10:00"), status=status
    )
    with pytest.raises(ConflictError) as excinfo:
        book("10:00")
    assert details_of(excinfo)["conflicting_appointment_id"] == blocking.pk


def test_cancelled_appointment_frees_its_slot(book):
    first = book("10:00")
    services.cancel_appointment(appointment=first, reason="Patient unwell")
    second = book("10:00")
    assert second.pk != first.pk
    assert Appointment.objects.filter(status=AppointmentStatus.SCHEDULED).count() == 1


def test_another_doctor_at_the_same_time_is_fine(book, clinic):
    other_doctor = DoctorFactory(clinic=clinic)
    book("10:00")
    assert book("10:00", doctor_id=other_doctor.pk).doctor_id == other_doctor.pk


def test_back_to_back_is_fine(book):
    book("10:00")
    assert book("10:30").pk  # starts when the other ends
    assert book("09:30").pk  # ends when the other starts
    assert Appointment.objects.count() == 3


@pytest.mark.parametrize("which", ["patient", "doctor"])
def test_unknown_patient_or_doctor_is_not_found(book, which):
    with pytest.raises(NotFoundError) as excinfo:
        book("10:00", **{f"{which}_id": 999_999})
    assert excinfo.value.message == f"{which.capitalize()} not found"
    assert details_of(excinfo) == {"resource": which, "id": 999_999}


@pytest.mark.parametrize("which", ["patient", "doctor"])
def test_another_clinics_patient_or_doctor_is_not_found(book, which):
    elsewhere = ClinicFactory()
    foreign = (PatientFactory if which == "patient" else DoctorFactory)(clinic=elsewhere)
    with pytest.raises(NotFoundError) as excinfo:
        book("10:00", **{f"{which}_id": foreign.pk})
    assert excinfo.value.message == f"{which.capitalize()} not found"
    assert not Appointment.objects.exists()


def test_naive_datetime_is_refused_with_a_clear_message(book, at):
    naive = at("10:00").replace(tzinfo=None)
    with pytest.raises(BookingValidationError) as excinfo:
        book(scheduled_time=naive)
    assert details_of(excinfo) == {"scheduled_time": "Scheduled time must include a time zone"}


def test_several_errors_are_reported_together(book, doctor, at):
    doctor.available = False
    doctor.save()
    with pytest.raises(BookingValidationError) as excinfo:
        book("10:00", duration_minutes=20, now=at("11:00"))
    assert set(details_of(excinfo)) == {"scheduled_time", "duration_minutes", "doctor_id"}


# --- Updating: §4.4 --------------------------------------------------------------------------


def test_move_is_revalidated_like_a_booking(book, at):
    appointment = book("10:00")
    for clock in ("12:45", "13:30", "08:00"):  # lunch, lunch, before opening
        with pytest.raises(BookingValidationError):
            services.update_appointment(
                appointment=appointment, changes={"scheduled_time": at(clock)}
            )
    with pytest.raises(BookingValidationError) as excinfo:
        services.update_appointment(
            appointment=appointment, changes={"scheduled_time": at("11:00")}, now=at("11:30")
        )
    assert "future" in details_of(excinfo)["scheduled_time"]
    appointment.refresh_from_db()
    assert appointment.scheduled_time == at("10:00")


def test_move_onto_another_appointment_is_a_conflict(book, at):
    appointment = book("10:00")
    other = book("11:00")
    with pytest.raises(ConflictError) as excinfo:
        services.update_appointment(
            appointment=appointment, changes={"scheduled_time": at("10:45")}
        )
    assert details_of(excinfo)["conflicting_appointment_id"] == other.pk


def test_move_within_its_own_slot_does_not_conflict_with_itself(book, at):
    appointment = book("10:00")
    moved = services.update_appointment(
        appointment=appointment, changes={"scheduled_time": at("10:15")}
    )
    assert moved.scheduled_time == at("10:15")
    assert moved.end_time == at("10:45")
    appointment.refresh_from_db()
    assert appointment.end_time == at("10:45")


def test_longer_duration_is_checked_against_the_next_appointment(book, at):
    appointment = book("10:00")
    book("10:30")
    with pytest.raises(ConflictError):
        services.update_appointment(appointment=appointment, changes={"duration_minutes": 45})
    with pytest.raises(BookingValidationError) as excinfo:
        services.update_appointment(appointment=appointment, changes={"duration_minutes": 25})
    assert "duration_minutes" in details_of(excinfo)
    shorter = services.update_appointment(appointment=appointment, changes={"duration_minutes": 15})
    assert shorter.end_time == at("10:15")


def test_move_to_another_doctor_checks_that_doctor(book, clinic, at):
    appointment = book("10:00")
    busy_doctor = DoctorFactory(clinic=clinic)
    blocking = book("10:00", doctor_id=busy_doctor.pk)
    with pytest.raises(ConflictError) as excinfo:
        services.update_appointment(appointment=appointment, changes={"doctor_id": busy_doctor.pk})
    assert details_of(excinfo)["conflicting_appointment_id"] == blocking.pk
    with pytest.raises(NotFoundError) as excinfo:
        services.update_appointment(appointment=appointment, changes={"doctor_id": 999_999})
    assert excinfo.value.message == "Doctor not found"
    free_doctor = DoctorFactory(clinic=clinic)
    moved = services.update_appointment(
        appointment=appointment, changes={"doctor_id": free_doctor.pk}
    )
    assert moved.doctor_id == free_doctor.pk


def test_reason_and_notes_of_a_past_appointment_can_change(clinic, patient, doctor):
    past = AppointmentFactory(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=timezone.now() - timedelta(days=2),
        status=AppointmentStatus.COMPLETED,
    )
    updated = services.update_appointment(
        appointment=past, changes={"reason": "Follow-up", "notes": "Bring reports"}
    )
    past.refresh_from_db()
    assert (past.reason, past.notes) == ("Follow-up", "Bring reports")
    assert updated.scheduled_time == past.scheduled_time


def test_unchanged_time_is_not_revalidated(clinic, patient, doctor):
    past = AppointmentFactory(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=timezone.now() - timedelta(days=1),
    )
    updated = services.update_appointment(
        appointment=past, changes={"scheduled_time": past.scheduled_time, "notes": "Late"}
    )
    assert updated.notes == "Late"


def test_a_cancelled_appointment_cannot_be_changed(book, at):
    appointment = book("10:00")
    services.cancel_appointment(appointment=appointment)
    for changes in ({"notes": "x"}, {"scheduled_time": at("11:00")}):
        with pytest.raises(UnprocessableError):
            services.update_appointment(appointment=appointment, changes=changes)
    appointment.refresh_from_db()
    assert appointment.notes == ""


def test_only_a_scheduled_appointment_can_be_moved(clinic, patient, doctor, at):
    done = AppointmentFactory(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=at("10:00"),
        status=AppointmentStatus.COMPLETED,
    )
    with pytest.raises(UnprocessableError):
        services.update_appointment(appointment=done, changes={"scheduled_time": at("11:00")})


@pytest.mark.parametrize("status", [AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW])
def test_completed_or_no_show_only_after_start(book, at, status):
    appointment = book("10:00")
    with pytest.raises(BookingValidationError) as excinfo:
        services.update_appointment(
            appointment=appointment, changes={"status": status}, now=at("09:59")
        )
    assert "status" in details_of(excinfo)
    updated = services.update_appointment(
        appointment=appointment, changes={"status": status}, now=at("10:05")
    )
    assert updated.status == status


def test_status_cancelled_cancels(book):
    appointment = book("10:00")
    updated = services.update_appointment(appointment=appointment, changes={"status": "cancelled"})
    appointment.refresh_from_db()
    assert updated.status == appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_at is not None


def test_cancel_through_update_must_come_alone(book):
    appointment = book("10:00")
    with pytest.raises(BookingValidationError):
        services.update_appointment(
            appointment=appointment, changes={"status": "cancelled", "notes": "x"}
        )
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED


def test_fields_that_are_not_editable_are_refused(book, clinic):
    appointment = book("10:00")
    with pytest.raises(BookingValidationError) as excinfo:
        services.update_appointment(appointment=appointment, changes={"clinic_id": clinic.pk})
    assert set(details_of(excinfo)) == {"clinic_id"}


# --- Cancelling: §4.5 ------------------------------------------------------------------------


def test_cancel_keeps_the_row(book):
    appointment = book("10:00")
    before = timezone.now()
    services.cancel_appointment(appointment=appointment, reason="Patient unavailable")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancellation_reason == "Patient unavailable"
    assert appointment.cancelled_at >= before


def test_cancelling_twice_changes_nothing(book):
    appointment = book("10:00")
    first = services.cancel_appointment(appointment=appointment, reason="first")
    again = services.cancel_appointment(appointment=appointment, reason="second")
    appointment.refresh_from_db()
    assert appointment.cancellation_reason == "first"
    assert again.cancelled_at == first.cancelled_at


@pytest.mark.parametrize("status", [AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW])
def test_a_finished_appointment_cannot_be_cancelled(clinic, patient, doctor, at, status):
    finished = AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=at("10:00"), status=status
    )
    with pytest.raises(UnprocessableError):
        services.cancel_appointment(appointment=finished)
    finished.refresh_from_db()
    assert finished.status == status


# --- The hook: appointment_changed -----------------------------------------------------------


def test_booking_announces_created_only_after_commit(
    book, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        appointment = book("10:00")
        assert sent == []  # not before the transaction commits
    assert callbacks  # queued for the commit...
    assert sent == [("appointment.created", appointment.pk, {})]  # ...and sent once, then


@pytest.mark.parametrize(
    "failure",
    [
        {"clock": "10:00"},  # conflict with the first booking
        {"clock": "13:30"},  # outside hours
        {"clock": "11:00", "duration_minutes": 20},
        {"clock": "11:00", "patient_id": 999_999},
    ],
)
def test_failed_booking_announces_nothing(book, sent, django_capture_on_commit_callbacks, failure):
    book("10:00")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises((BookingValidationError, ConflictError, NotFoundError)),
    ):
        book(**failure)
    assert callbacks == []
    assert sent == []


def test_booking_rolled_back_by_the_caller_announces_nothing(
    book, sent, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        book("10:00")
        raise RuntimeError("caller fails after booking")
    assert callbacks == []
    assert sent == []
    assert not Appointment.objects.exists()


def test_update_announces_updated_once(book, at, sent, django_capture_on_commit_callbacks):
    appointment = book("10:00")
    with django_capture_on_commit_callbacks(execute=True):
        services.update_appointment(
            appointment=appointment, changes={"scheduled_time": at("11:00")}
        )
    assert sent == [
        (
            "appointment.updated",
            appointment.pk,
            {"rescheduled": True, "previous_time": at("10:00")},
        )
    ]
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.update_appointment(appointment=appointment, changes={"notes": "Hindi please"})
    assert [(event, extra["rescheduled"]) for event, _, extra in sent] == [
        ("appointment.updated", False)
    ]


def test_failed_update_announces_nothing(book, at, sent, django_capture_on_commit_callbacks):
    appointment = book("10:00")
    book("11:00")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ConflictError),
    ):
        services.update_appointment(
            appointment=appointment, changes={"scheduled_time": at("11:00")}
        )
    assert callbacks == [] and sent == []


def test_cancel_announces_cancelled_once(book, sent, django_capture_on_commit_callbacks):
    appointment = book("10:00")
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_appointment(appointment=appointment, reason="x")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.cancel_appointment(appointment=appointment, reason="again")
    assert callbacks == []
    assert sent == [("appointment.cancelled", appointment.pk, {})]


def test_cancel_through_update_announces_cancelled(book, sent, django_capture_on_commit_callbacks):
    appointment = book("10:00")
    with django_capture_on_commit_callbacks(execute=True):
        services.update_appointment(appointment=appointment, changes={"status": "cancelled"})
    assert sent == [("appointment.cancelled", appointment.pk, {})]


# --- Available slots: §4.6 -------------------------------------------------------------------


def slot_clocks(slots, clinic) -> list[str]:
    return [timezone.localtime(s.start, clinic.tzinfo).strftime("%H:%M") for s in slots]


def day_start(clinic, day) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=clinic.tzinfo)


def test_slots_are_hours_minus_bookings(book, clinic, doctor, future_day, at):
    book("10:00")
    book("14:15", duration_minutes=15)  # off-grid: blocks 14:00-14:30
    cancelled = book("16:00")
    services.cancel_appointment(appointment=cancelled)
    slots = services.available_slots(
        doctor=doctor, day=future_day, now=day_start(clinic, future_day)
    )
    clocks = slot_clocks(slots, clinic)
    assert len(clocks) == 16 - 2
    assert "10:00" not in clocks and "14:00" not in clocks
    assert {"09:30", "10:30", "14:30", "16:00"} <= set(clocks)
    assert slots[0].start == at("09:00") and slots[0].end == at("09:30")


def test_slots_on_a_day_off_and_on_changed_hours(clinic, doctor, future_day):
    ScheduleExceptionFactory(doctor=doctor, date=future_day, kind=ScheduleExceptionKind.HOLIDAY)
    changed = future_day + timedelta(days=1)
    ScheduleExceptionFactory(
        doctor=doctor, date=changed, kind=ScheduleExceptionKind.CHANGED_HOURS, hours=["10:00-11:00"]
    )
    now = day_start(clinic, future_day)
    assert services.available_slots(doctor=doctor, day=future_day, now=now) == []
    slots = services.available_slots(doctor=doctor, day=changed, now=now)
    assert slot_clocks(slots, clinic) == ["10:00", "10:30"]


def test_slots_not_before_now(clinic, doctor, future_day, at):
    slots = services.available_slots(doctor=doctor, day=future_day, now=at("16:50"))
    assert slot_clocks(slots, clinic) == ["17:00", "17:30"]


def test_no_slots_for_a_doctor_who_takes_no_bookings(clinic, doctor, future_day):
    """Every slot offered must be bookable, and booking refuses an unavailable doctor."""
    doctor.available = False
    doctor.save()
    now = day_start(clinic, future_day)
    assert services.available_slots(doctor=doctor, day=future_day, now=now) == []


def test_slots_refuse_an_odd_duration(doctor, future_day):
    with pytest.raises(BookingValidationError) as excinfo:
        services.available_slots(doctor=doctor, day=future_day, duration_minutes=20)
    assert set(details_of(excinfo)) == {"duration_minutes"}


def test_every_offered_slot_can_be_booked(clinic, patient, doctor, future_day, book):
    book("11:00", duration_minutes=45)
    now = day_start(clinic, future_day)
    for minutes in (45, 60):
        for slot in services.available_slots(
            doctor=doctor, day=future_day, duration_minutes=minutes, now=now
        ):
            with transaction.atomic():
                appointment = services.book_appointment(
                    clinic=clinic,
                    patient_id=patient.pk,
                    doctor_id=doctor.pk,
                    scheduled_time=slot.start,
                    duration_minutes=minutes,
                    now=now,
                )
                appointment.delete()
