"""The appointment API over HTTP (§4.1-§4.6) and the doctor schedule (§6.2)."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.models import Appointment, AppointmentStatus, ScheduleExceptionKind
from clinic.schedule import WEEKDAYS
from clinic.signals import appointment_changed
from clinic.tests.factories import (
    AppointmentFactory,
    DoctorFactory,
    PatientFactory,
    ScheduleExceptionFactory,
)
from vaani.common.timeutils import iso_utc

pytestmark = pytest.mark.django_db

URL = "/api/v1/appointments"
SLOTS_URL = f"{URL}/available-slots"
CREATED = "Appointment created successfully. SMS confirmation sent."
UPDATED = "Appointment updated. SMS notification sent to patient."
CANCELLED = "Appointment cancelled successfully. SMS notification sent."


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The signed-in users' factory hashes a password; the production hasher costs ~0.6s."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def patient(clinic):
    return PatientFactory(clinic=clinic, name="Rajesh Kumar", phone="+919876543210")


@pytest.fixture
def doctor(clinic):
    return DoctorFactory(clinic=clinic, name="Dr. Priya Sharma", phone="+911234567890")


@pytest.fixture
def create(api, patient, doctor, at):
    """POSTs a booking; ``clock`` is local time on ``future_day``."""

    def _create(clock="10:00", client=None, **body):
        body.setdefault("patient_id", patient.pk)
        body.setdefault("doctor_id", doctor.pk)
        body.setdefault("scheduled_time", at(clock).isoformat())
        return (client or api).post(URL, body, format="json")

    return _create


@pytest.fixture
def booked(create):
    """Books and returns the appointment row."""

    def _booked(clock="10:00", **body):
        response = create(clock, **body)
        assert response.status_code == 201, response.json()
        return Appointment.objects.get(pk=response.json()["data"]["id"])

    return _booked


@pytest.fixture
def sent():
    events = []

    def receiver(sender, event, appointment, signal, **extra):
        events.append((str(event), appointment.pk))

    appointment_changed.connect(receiver, weak=False, dispatch_uid="test_api_appointments")
    yield events
    appointment_changed.disconnect(dispatch_uid="test_api_appointments")


@pytest.fixture
def view_only_client(receptionist):
    """Signed in without JWT work: the queries counted are the view's own.

    ``force_authenticate`` hands the view the user object (its clinic already
    loaded by the factory), so authentication runs no SQL and every query the
    context manager sees is the view's (lookups, page, count, audit).
    """
    client = APIClient()
    client.force_authenticate(user=receptionist)
    return client


def error_of(response, status: int, code: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert "timestamp" in body
    return body["error"]


def data_of(response, status: int = 200) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["success"] is True
    return body["data"]


def z(moment: datetime) -> str:
    return iso_utc(moment)


# --- §4.3 Create ----------------------------------------------------------------------------


def test_create_answers_the_documented_body(create, patient, doctor, at, receptionist):
    response = create("10:00", duration_minutes=45, reason="Annual checkup", notes="Hindi")
    body = response.json()
    assert response.status_code == 201, body
    assert body["message"] == CREATED
    data = body["data"]
    documented = {
        "id",
        "patient_id",
        "doctor_id",
        "scheduled_time",
        "duration_minutes",
        "status",
        "reason",
        "created_at",
    }
    assert documented <= set(data)
    assert data["patient_id"] == patient.pk
    assert data["doctor_id"] == doctor.pk
    assert data["scheduled_time"] == z(at("10:00"))
    assert data["scheduled_time"].endswith("Z")
    assert data["duration_minutes"] == 45
    assert data["status"] == "scheduled"
    assert data["reason"] == "Annual checkup"
    saved = Appointment.objects.get(pk=data["id"])
    assert saved.notes == "Hindi"
    assert saved.booked_by == receptionist
    assert saved.source == "api"


def test_create_accepts_an_offset_and_answers_utc(create, at):
    local = at("10:00")
    data = data_of(create(scheduled_time=local.strftime("%Y-%m-%dT%H:%M:%S+05:30")), 201)
    assert data["scheduled_time"] == local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_create_defaults_to_30_minutes(create):
    assert data_of(create("10:00"), 201)["duration_minutes"] == 30


def test_create_in_the_past_is_refused(create):
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    error = error_of(create(scheduled_time=yesterday), 400, "VALIDATION_ERROR")
    assert error["details"]["scheduled_time"] == "Scheduled time must be in the future"


@pytest.mark.parametrize("minutes", [0, 20, 90])
def test_create_with_an_odd_duration_is_refused(create, minutes):
    error = error_of(create(duration_minutes=minutes), 400, "VALIDATION_ERROR")
    assert error["details"] == {"duration_minutes": "Duration must be 15, 30, 45 or 60 minutes"}


@pytest.mark.parametrize(
    ("clock", "minutes", "status"),
    [("12:30", 30, 201), ("12:31", 30, 400), ("17:00", 60, 201), ("13:30", 15, 400)],
)
def test_create_must_fit_the_working_hours(create, clock, minutes, status):
    assert create(clock, duration_minutes=minutes).status_code == status


def test_create_on_a_leave_day_is_refused(create, doctor, future_day):
    ScheduleExceptionFactory(doctor=doctor, date=future_day, kind=ScheduleExceptionKind.LEAVE)
    error = error_of(create("10:00"), 400, "VALIDATION_ERROR")
    assert "leave" in error["details"]["scheduled_time"]


def test_create_with_an_unavailable_doctor_is_refused(create, doctor):
    doctor.available = False
    doctor.save()
    error = error_of(create("10:00"), 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"doctor_id"}


def test_overlap_is_a_409_naming_the_conflicting_appointment(create, booked, doctor, at):
    existing = booked("10:00")
    error = error_of(create("10:15"), 409, "CONFLICT")
    assert error["message"] == "Appointment time slot already booked"
    assert error["details"] == {
        "doctor_id": doctor.pk,
        "requested_time": z(at("10:15")),
        "conflicting_appointment_id": existing.pk,
    }


def test_cancelled_slot_can_be_booked_again(api, create, booked):
    first = booked("10:00")
    assert api.delete(f"{URL}/{first.pk}").status_code == 200
    assert create("10:00").status_code == 201


def test_another_doctor_and_back_to_back_are_fine(create, booked, clinic):
    booked("10:00")
    other = DoctorFactory(clinic=clinic)
    assert create("10:00", doctor_id=other.pk).status_code == 201
    assert create("10:30").status_code == 201
    assert create("09:30").status_code == 201


@pytest.mark.parametrize("which", ["patient", "doctor"])
def test_unknown_patient_or_doctor_is_404(create, which):
    error = error_of(create(**{f"{which}_id": 999_999}), 404, "NOT_FOUND")
    assert error["message"] == f"{which.capitalize()} not found"


@pytest.mark.parametrize("which", ["patient", "doctor"])
def test_other_clinics_patient_or_doctor_is_404(create, other_clinic, which):
    foreign = (PatientFactory if which == "patient" else DoctorFactory)(clinic=other_clinic)
    error = error_of(create(**{f"{which}_id": foreign.pk}), 404, "NOT_FOUND")
    assert error["message"] == f"{which.capitalize()} not found"
    assert not Appointment.objects.exists()


def test_naive_datetime_is_refused_with_a_clear_message(create, at):
    naive = at("10:00").replace(tzinfo=None).isoformat()
    error = error_of(create(scheduled_time=naive), 400, "VALIDATION_ERROR")
    assert "time zone" in error["details"]["scheduled_time"]
    assert not Appointment.objects.exists()


def test_form_errors_are_reported_together(api):
    response = api.post(
        URL, {"doctor_id": "abc", "scheduled_time": "tomorrow", "colour": "red"}, format="json"
    )
    # Unknown fields are refused first, on their own.
    assert set(error_of(response, 400, "VALIDATION_ERROR")["details"]) == {"colour"}
    response = api.post(
        URL, {"doctor_id": "abc", "scheduled_time": "tomorrow", "duration_minutes": "x"}
    )
    details = error_of(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {"patient_id", "doctor_id", "scheduled_time", "duration_minutes"}
    assert all(isinstance(message, str) and message for message in details.values())


def test_rule_errors_are_reported_together(create, doctor):
    doctor.available = False
    doctor.save()
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    response = create(scheduled_time=yesterday, duration_minutes=20)
    details = error_of(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {"scheduled_time", "duration_minutes", "doctor_id"}


@pytest.mark.parametrize("body", [[], "text", 5])
def test_create_needs_a_json_object(api, body):
    error_of(api.post(URL, body, format="json"), 400, "VALIDATION_ERROR")


# --- §4.2 Detail ----------------------------------------------------------------------------


def test_detail_has_the_documented_shape(api, clinic, doctor, at):
    patient = PatientFactory(clinic=clinic, date_of_birth=datetime(1985, 5, 15).date())
    appointment = AppointmentFactory(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=at("10:00"),
        notes="Patient requested early morning slot",
        call_sid="CA1234567890abcdef",
    )
    data = data_of(api.get(f"{URL}/{appointment.pk}"))
    documented = {
        "id",
        "patient",
        "doctor",
        "scheduled_time",
        "duration_minutes",
        "status",
        "reason",
        "notes",
        "call_sid",
        "created_at",
        "updated_at",
    }
    assert documented <= set(data)
    assert data["patient"] == {
        "id": patient.pk,
        "name": patient.name,
        "phone": patient.phone,
        "date_of_birth": "1985-05-15",
        "language_preference": "hi",
    }
    assert data["doctor"] == {
        "id": doctor.pk,
        "name": "Dr. Priya Sharma",
        "specialization": "General Physician",
        "phone": "+911234567890",
    }
    assert data["scheduled_time"] == z(at("10:00"))
    assert data["call_sid"] == "CA1234567890abcdef"
    assert data["notes"] == "Patient requested early morning slot"
    for key in ("created_at", "updated_at"):
        assert data[key].endswith("Z")


def test_detail_of_another_clinics_appointment_is_404(api, other_clinic):
    foreign = AppointmentFactory(clinic=other_clinic)
    error = error_of(api.get(f"{URL}/{foreign.pk}"), 404, "NOT_FOUND")
    assert error["message"] == "Appointment not found"
    assert error["details"] == {"resource": "appointment", "id": foreign.pk}


# --- §4.4 Update ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_partial_update_moves_within_its_own_slot(api, booked, at, method):
    appointment = booked("10:00")
    response = getattr(api, method)(
        f"{URL}/{appointment.pk}", {"scheduled_time": at("10:15").isoformat()}, format="json"
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["message"] == UPDATED
    assert {"id", "scheduled_time", "reason", "updated_at"} <= set(body["data"])
    assert body["data"]["scheduled_time"] == z(at("10:15"))
    appointment.refresh_from_db()
    assert (appointment.scheduled_time, appointment.end_time) == (at("10:15"), at("10:45"))
    assert appointment.reason == "" and appointment.duration_minutes == 30


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_onto_another_appointment_is_409(api, booked, at, method):
    appointment = booked("10:00")
    other = booked("11:00")
    response = getattr(api, method)(
        f"{URL}/{appointment.pk}", {"scheduled_time": at("10:45").isoformat()}, format="json"
    )
    error = error_of(response, 409, "CONFLICT")
    assert error["details"]["conflicting_appointment_id"] == other.pk
    assert error["details"]["requested_time"] == z(at("10:45"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scheduled_time": "2020-01-01T10:00:00Z"}, "scheduled_time"),  # past
        ({"duration_minutes": 20}, "duration_minutes"),
        ({"status": "later"}, "status"),
        ({"patient_id": 1}, "patient_id"),  # not changeable
    ],
)
def test_update_revalidates(api, booked, body, field):
    appointment = booked("10:00")
    error = error_of(
        api.put(f"{URL}/{appointment.pk}", body, format="json"), 400, "VALIDATION_ERROR"
    )
    assert field in error["details"]


def test_update_outside_hours_and_naive_time_are_refused(api, booked, at):
    appointment = booked("10:00")
    response = api.patch(
        f"{URL}/{appointment.pk}", {"scheduled_time": at("13:15").isoformat()}, format="json"
    )
    assert (
        "not available" in error_of(response, 400, "VALIDATION_ERROR")["details"]["scheduled_time"]
    )
    naive = at("11:00").replace(tzinfo=None).isoformat()
    response = api.patch(f"{URL}/{appointment.pk}", {"scheduled_time": naive}, format="json")
    assert "time zone" in error_of(response, 400, "VALIDATION_ERROR")["details"]["scheduled_time"]


@pytest.mark.parametrize("body", [{}, None])
def test_update_with_an_empty_body_is_400(api, booked, body):
    appointment = booked("10:00")
    response = api.put(f"{URL}/{appointment.pk}", body, format="json")
    error_of(response, 400, "VALIDATION_ERROR")


def test_reason_and_notes_of_a_past_appointment_can_change(api, clinic, patient, doctor):
    past = AppointmentFactory(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=timezone.now() - timedelta(days=3),
    )
    response = api.put(
        f"{URL}/{past.pk}", {"reason": "Follow-up", "notes": "Brought reports"}, format="json"
    )
    assert data_of(response)["reason"] == "Follow-up"
    past.refresh_from_db()
    assert past.notes == "Brought reports"


def test_a_cancelled_appointment_cannot_be_changed(api, booked):
    appointment = booked("10:00")
    api.delete(f"{URL}/{appointment.pk}")
    response = api.patch(f"{URL}/{appointment.pk}", {"notes": "too late"}, format="json")
    error_of(response, 422, "UNPROCESSABLE_ENTITY")
    appointment.refresh_from_db()
    assert appointment.notes == ""


def test_completed_only_after_the_start(api, booked, clinic, patient, doctor):
    future = booked("10:00")
    response = api.patch(f"{URL}/{future.pk}", {"status": "completed"}, format="json")
    assert "status" in error_of(response, 400, "VALIDATION_ERROR")["details"]
    started = AppointmentFactory(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=timezone.now() - timedelta(minutes=10),
    )
    for status in ("no_show", "completed"):
        response = api.patch(f"{URL}/{started.pk}", {"status": status}, format="json")
        assert data_of(response)["status"] == status


def test_status_cancelled_through_put_cancels(api, booked):
    appointment = booked("10:00")
    response = api.put(f"{URL}/{appointment.pk}", {"status": "cancelled"}, format="json")
    assert data_of(response)["status"] == "cancelled"
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_at is not None


def test_update_of_another_clinics_appointment_is_404(api, other_clinic):
    foreign = AppointmentFactory(clinic=other_clinic)
    error_of(api.patch(f"{URL}/{foreign.pk}", {"notes": "x"}, format="json"), 404, "NOT_FOUND")
    foreign.refresh_from_db()
    assert foreign.notes == ""


def test_update_to_another_clinics_doctor_is_404(api, booked, other_clinic):
    appointment = booked("10:00")
    foreign_doctor = DoctorFactory(clinic=other_clinic)
    response = api.patch(f"{URL}/{appointment.pk}", {"doctor_id": foreign_doctor.pk}, format="json")
    assert error_of(response, 404, "NOT_FOUND")["message"] == "Doctor not found"


# --- §4.5 Cancel ----------------------------------------------------------------------------


def test_delete_cancels_and_keeps_the_row(api, booked):
    appointment = booked("10:00")
    before = timezone.now()
    response = api.delete(f"{URL}/{appointment.pk}?reason=Patient%20unavailable")
    body = response.json()
    assert response.status_code == 200, body
    assert body["success"] is True
    assert body["message"] == CANCELLED
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancellation_reason == "Patient unavailable"
    assert appointment.cancelled_at >= before
    detail = data_of(api.get(f"{URL}/{appointment.pk}"))
    assert detail["status"] == "cancelled"


def test_cancelling_twice_is_harmless(api, booked, sent, django_capture_on_commit_callbacks):
    appointment = booked("10:00")
    with django_capture_on_commit_callbacks(execute=True):
        first = api.delete(f"{URL}/{appointment.pk}?reason=first")
    with django_capture_on_commit_callbacks(execute=True):
        second = api.delete(f"{URL}/{appointment.pk}?reason=second")
    assert first.status_code == second.status_code == 200
    assert second.json()["success"] is True
    assert sent == [("appointment.cancelled", appointment.pk)]
    appointment.refresh_from_db()
    assert appointment.cancellation_reason == "first"


def test_a_completed_appointment_cannot_be_cancelled(api, clinic, patient, doctor):
    done = AppointmentFactory(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=timezone.now() - timedelta(days=1),
        status=AppointmentStatus.COMPLETED,
    )
    error_of(api.delete(f"{URL}/{done.pk}"), 422, "UNPROCESSABLE_ENTITY")
    done.refresh_from_db()
    assert done.status == AppointmentStatus.COMPLETED


def test_cancel_reason_too_long_is_400(api, booked):
    appointment = booked("10:00")
    response = api.delete(f"{URL}/{appointment.pk}?reason={'x' * 501}")
    assert "reason" in error_of(response, 400, "VALIDATION_ERROR")["details"]
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED


def test_delete_of_another_clinics_appointment_is_404(api, other_clinic):
    foreign = AppointmentFactory(clinic=other_clinic)
    error_of(api.delete(f"{URL}/{foreign.pk}"), 404, "NOT_FOUND")
    foreign.refresh_from_db()
    assert foreign.status == AppointmentStatus.SCHEDULED


# --- The hook through the API ---------------------------------------------------------------


def test_each_change_sends_one_signal_after_commit(
    api, create, at, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = create("10:00")
    appointment_id = response.json()["data"]["id"]
    assert sent == [("appointment.created", appointment_id)]
    with django_capture_on_commit_callbacks(execute=True):
        api.patch(f"{URL}/{appointment_id}", {"notes": "x"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        api.put(
            f"{URL}/{appointment_id}", {"scheduled_time": at("11:00").isoformat()}, format="json"
        )
    with django_capture_on_commit_callbacks(execute=True):
        api.delete(f"{URL}/{appointment_id}")
    assert sent == [
        ("appointment.created", appointment_id),
        ("appointment.updated", appointment_id),
        ("appointment.updated", appointment_id),
        ("appointment.cancelled", appointment_id),
    ]


def test_no_signal_before_commit(create, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert create("10:00").status_code == 201
    assert callbacks
    assert sent == []  # the test transaction never committed


def test_failed_requests_send_nothing(
    api, create, booked, at, sent, django_capture_on_commit_callbacks
):
    appointment = booked("10:00")
    with django_capture_on_commit_callbacks(execute=True):
        assert create("10:00").status_code == 409
        assert create("13:30").status_code == 400
        assert create("11:00", patient_id=999_999).status_code == 404
        response = api.patch(
            f"{URL}/{appointment.pk}", {"scheduled_time": "2020-01-01T10:00:00Z"}, format="json"
        )
        assert response.status_code == 400
    assert sent == []


# --- §4.6 Available slots -------------------------------------------------------------------


def slot_query(doctor, day, **extra):
    params = {"doctor_id": doctor.pk, "date": day.isoformat(), **extra}
    return "&".join(f"{k}={v}" for k, v in params.items())


def test_slots_in_utc_from_local_hours(api, doctor, future_day, at):
    data = data_of(api.get(f"{SLOTS_URL}?{slot_query(doctor, future_day)}"))
    assert data["doctor_id"] == doctor.pk
    assert data["doctor_name"] == doctor.name
    assert data["date"] == future_day.isoformat()
    slots = data["available_slots"]
    assert data["total_slots"] == len(slots) == 16
    day = future_day.isoformat()
    assert slots[0] == {"start_time": f"{day}T03:30:00Z", "end_time": f"{day}T04:00:00Z"}
    assert slots[7] == {"start_time": f"{day}T07:00:00Z", "end_time": f"{day}T07:30:00Z"}
    assert slots[8]["start_time"] == f"{day}T08:30:00Z"  # 14:00 in Kolkata
    assert slots[-1]["end_time"] == f"{day}T12:30:00Z"  # 18:00
    assert slots[0]["start_time"] == z(at("09:00"))


def test_slots_leave_out_bookings_and_exceptions(api, booked, doctor, future_day, at):
    booked("10:00")
    booked("14:15", duration_minutes=15)
    cancelled = booked("16:00")
    api.delete(f"{URL}/{cancelled.pk}")
    data = data_of(api.get(f"{SLOTS_URL}?{slot_query(doctor, future_day)}"))
    starts = [slot["start_time"] for slot in data["available_slots"]]
    assert data["total_slots"] == 14
    assert z(at("10:00")) not in starts and z(at("14:00")) not in starts
    assert z(at("16:00")) in starts  # a cancellation frees its slot
    ScheduleExceptionFactory(doctor=doctor, date=future_day, kind=ScheduleExceptionKind.HOLIDAY)
    data = data_of(api.get(f"{SLOTS_URL}?{slot_query(doctor, future_day)}"))
    assert data["available_slots"] == [] and data["total_slots"] == 0


def test_changed_hours_give_their_own_slots(api, doctor, future_day, at):
    ScheduleExceptionFactory(
        doctor=doctor,
        date=future_day,
        kind=ScheduleExceptionKind.CHANGED_HOURS,
        hours=["19:00-20:00"],
    )
    data = data_of(api.get(f"{SLOTS_URL}?{slot_query(doctor, future_day)}"))
    assert [slot["start_time"] for slot in data["available_slots"]] == [
        z(at("19:00")),
        z(at("19:30")),
    ]


def test_unavailable_doctor_offers_no_slots(api, doctor, future_day):
    doctor.available = False
    doctor.save()
    data = data_of(api.get(f"{SLOTS_URL}?{slot_query(doctor, future_day)}"))
    assert data["available_slots"] == [] and data["total_slots"] == 0


def test_45_minute_slots_align_to_each_interval_start(api, doctor, future_day, at):
    query = slot_query(doctor, future_day, duration_minutes=45)
    data = data_of(api.get(f"{SLOTS_URL}?{query}"))
    starts = [slot["start_time"] for slot in data["available_slots"]]
    expected = ["09:00", "09:45", "10:30", "11:15", "12:00", "14:00", "14:45", "15:30"]
    expected += ["16:15", "17:00"]
    assert starts == [z(at(clock)) for clock in expected]
    assert data["total_slots"] == 10
    for slot in data["available_slots"]:
        start = datetime.fromisoformat(slot["start_time"])
        assert datetime.fromisoformat(slot["end_time"]) - start == timedelta(minutes=45)


def test_past_days_offer_nothing_and_today_only_what_is_left(api, clinic, future_day):
    doctor = DoctorFactory(clinic=clinic, working_hours={day: ["00:00-24:00"] for day in WEEKDAYS})
    yesterday = timezone.localdate(timezone=clinic.tzinfo) - timedelta(days=1)
    assert data_of(api.get(f"{SLOTS_URL}?{slot_query(doctor, yesterday)}"))["total_slots"] == 0
    before = timezone.now()
    today = timezone.localdate(timezone=clinic.tzinfo)
    data = data_of(api.get(f"{SLOTS_URL}?{slot_query(doctor, today)}"))
    starts = [datetime.fromisoformat(s["start_time"]) for s in data["available_slots"]]
    assert all(start >= before.replace(microsecond=0) for start in starts)
    assert data["total_slots"] < 48
    future = data_of(api.get(f"{SLOTS_URL}?{slot_query(doctor, future_day)}"))
    assert future["total_slots"] == 48


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", {"doctor_id", "date"}),
        ("doctor_id=abc&date=2026-02-30", {"doctor_id", "date"}),
        ("date=25-01-2026&duration_minutes=20", {"doctor_id", "date", "duration_minutes"}),
        ("doctor_id=0&date=2026-01-25&duration_minutes=abc", {"doctor_id", "duration_minutes"}),
    ],
)
def test_slots_bad_query_is_400_per_field(api, query, fields):
    error = error_of(api.get(f"{SLOTS_URL}?{query}"), 400, "VALIDATION_ERROR")
    assert set(error["details"]) == fields


def test_slots_for_another_clinics_doctor_is_404(api, other_clinic, future_day):
    foreign = DoctorFactory(clinic=other_clinic)
    response = api.get(f"{SLOTS_URL}?{slot_query(foreign, future_day)}")
    assert error_of(response, 404, "NOT_FOUND")["message"] == "Doctor not found"


def test_slots_use_three_queries_whatever_the_bookings(
    view_only_client, clinic, doctor, future_day, at, django_assert_max_num_queries
):
    """Counted with ``view_only_client`` (no SQL for authentication, see the fixture):
    the doctor with its clinic, the day's exception, the day's bookings."""
    url = f"{SLOTS_URL}?{slot_query(doctor, future_day)}"
    with CaptureQueriesContext(connection) as empty_day:
        assert view_only_client.get(url).status_code == 200
    patients = PatientFactory.create_batch(3, clinic=clinic)
    for index, clock in enumerate(["09:00", "10:00", "11:00", "14:00", "15:00", "16:00"]):
        AppointmentFactory(
            clinic=clinic, patient=patients[index % 3], doctor=doctor, scheduled_time=at(clock)
        )
    with django_assert_max_num_queries(3):
        response = view_only_client.get(url)
    assert data_of(response)["total_slots"] == 10
    with CaptureQueriesContext(connection) as busy_day:
        view_only_client.get(url)
    assert len(busy_day) == len(empty_day)


# --- §4.1 List ------------------------------------------------------------------------------


def _spread(clinic, at, count, doctors=None, patients=None):
    """``count`` appointments half an hour apart, across several patients and doctors."""
    patients = patients or PatientFactory.create_batch(4, clinic=clinic)
    doctors = doctors or DoctorFactory.create_batch(3, clinic=clinic)
    start = at("00:00")
    return [
        AppointmentFactory(
            clinic=clinic,
            patient=patients[i % len(patients)],
            doctor=doctors[i % len(doctors)],
            scheduled_time=start + timedelta(minutes=30 * i),
        )
        for i in range(count)
    ]


def ids_of(response) -> list[int]:
    return [row["id"] for row in data_of(response)["appointments"]]


def test_list_rows_have_the_documented_keys(api, clinic, patient, doctor, at, other_clinic):
    appointment = AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=at("10:00")
    )
    AppointmentFactory(clinic=other_clinic)
    data = data_of(api.get(URL))
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 1, "total_pages": 1}
    (row,) = data["appointments"]
    assert row == {
        **row,
        "id": appointment.pk,
        "patient_id": patient.pk,
        "patient_name": "Rajesh Kumar",
        "patient_phone": "+919876543210",
        "doctor_id": doctor.pk,
        "doctor_name": "Dr. Priya Sharma",
        "scheduled_time": z(at("10:00")),
        "duration_minutes": 30,
        "status": "scheduled",
        "reason": "Checkup",
    }
    assert row["created_at"].endswith("Z") and row["updated_at"].endswith("Z")


def test_list_filters(api, clinic, at):
    doctors = DoctorFactory.create_batch(2, clinic=clinic)
    patients = PatientFactory.create_batch(2, clinic=clinic)
    rows = _spread(clinic, at, 8, doctors=doctors, patients=patients)
    rows[0].status = AppointmentStatus.CANCELLED
    rows[0].save()
    rows[3].status = AppointmentStatus.COMPLETED
    rows[3].save()

    def listed(query):
        return set(ids_of(api.get(f"{URL}?{query}&limit=100")))

    assert listed(f"doctor_id={doctors[0].pk}") == {r.pk for r in rows[0::2]}
    assert listed(f"patient_id={patients[1].pk}") == {r.pk for r in rows[1::2]}
    assert listed("status=cancelled") == {rows[0].pk}
    assert listed("status=completed") == {rows[3].pk}
    assert listed(f"status=scheduled&doctor_id={doctors[1].pk}") == {
        rows[1].pk,
        rows[5].pk,
        rows[7].pk,
    }
    assert listed("doctor_id=999999") == set()


def test_list_dates_are_local_days_with_an_inclusive_end(api, clinic, patient, doctor, future_day):
    tz = clinic.tzinfo

    def visit(day, hour, minute):  # 15 minutes, so none overlaps on PostgreSQL
        start = datetime.combine(day, time(hour, minute), tzinfo=tz)
        return AppointmentFactory(
            clinic=clinic, patient=patient, doctor=doctor, scheduled_time=start, duration_minutes=15
        )

    late_before = visit(future_day - timedelta(days=1), 23, 40)
    early = visit(future_day, 0, 15)  # 00:15 in Kolkata is still the previous day in UTC
    late = visit(future_day, 23, 40)
    next_day = visit(future_day + timedelta(days=1), 0, 10)
    day = future_day.isoformat()
    assert ids_of(api.get(f"{URL}?start_date={day}&end_date={day}")) == [early.pk, late.pk]
    assert ids_of(api.get(f"{URL}?start_date={day}")) == [early.pk, late.pk, next_day.pk]
    assert ids_of(api.get(f"{URL}?end_date={day}")) == [late_before.pk, early.pk, late.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start_date=2026-02-30", "start_date"),
        ("end_date=tomorrow", "end_date"),
        ("start_date=2026-01-25&end_date=2026-01-24", "end_date"),
        ("status=later", "status"),
        ("doctor_id=abc", "doctor_id"),
        ("patient_id=-1", "patient_id"),
    ],
)
def test_list_bad_filters_are_400(api, query, field):
    error = error_of(api.get(f"{URL}?{query}"), 400, "VALIDATION_ERROR")
    assert field in error["details"]


def test_list_pagination(api, clinic, at):
    rows = _spread(clinic, at, 45)
    first = data_of(api.get(URL))
    assert first["pagination"] == {"page": 1, "limit": 20, "total": 45, "total_pages": 3}
    assert [r["id"] for r in first["appointments"]] == [r.pk for r in rows[:20]]
    last = data_of(api.get(f"{URL}?page=3"))
    assert [r["id"] for r in last["appointments"]] == [r.pk for r in rows[40:]]
    small = data_of(api.get(f"{URL}?page=2&limit=10"))
    assert small["pagination"] == {"page": 2, "limit": 10, "total": 45, "total_pages": 5}
    assert [r["id"] for r in small["appointments"]] == [r.pk for r in rows[10:20]]
    everything = data_of(api.get(f"{URL}?limit=100"))
    assert len(everything["appointments"]) == 45
    past_the_end = data_of(api.get(f"{URL}?page=9"))
    assert past_the_end["appointments"] == []
    assert past_the_end["pagination"] == {"page": 9, "limit": 20, "total": 45, "total_pages": 3}


def test_list_of_nothing_has_zero_pages(api):
    data = data_of(api.get(URL))
    assert data == {
        "appointments": [],
        "pagination": {"page": 1, "limit": 20, "total": 0, "total_pages": 0},
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=-2", "page"),
    ],
)
def test_list_bad_paging_is_400(api, query, field):
    error = error_of(api.get(f"{URL}?{query}"), 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {field}


def test_list_queries_do_not_grow_with_the_page(view_only_client, clinic, at):
    """Counted with ``view_only_client`` (no authentication SQL): count, page, audit."""
    _spread(clinic, at, 50, patients=PatientFactory.create_batch(10, clinic=clinic))
    with CaptureQueriesContext(connection) as five:
        response = view_only_client.get(f"{URL}?limit=5")
    assert len(data_of(response)["appointments"]) == 5
    with CaptureQueriesContext(connection) as fifty:
        response = view_only_client.get(f"{URL}?limit=50")
    assert len(data_of(response)["appointments"]) == 50
    assert len(fifty) == len(five) <= 3, [q["sql"] for q in fifty.captured_queries]


# --- §6.2 Doctor schedule -------------------------------------------------------------------


def schedule_url(doctor, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/doctors/{doctor.pk}/schedule" + (f"?{query}" if query else "")


def test_schedule_of_a_day(api, booked, doctor, future_day, clinic):
    first = booked("09:00")
    second = booked("10:00", duration_minutes=45)
    cancelled = booked("11:00")
    api.delete(f"{URL}/{cancelled.pk}")
    AppointmentFactory(  # another day
        clinic=clinic,
        doctor=doctor,
        scheduled_time=datetime.combine(
            future_day + timedelta(days=1), time(9), tzinfo=clinic.tzinfo
        ),
    )
    data = data_of(api.get(schedule_url(doctor, date=future_day.isoformat())))
    assert data["doctor_id"] == doctor.pk
    assert data["doctor_name"] == doctor.name
    assert data["date"] == future_day.isoformat()
    assert [
        {k: a[k] for k in ("id", "patient_name", "start_time", "end_time", "status")}
        for a in data["appointments"]
    ] == [
        {
            "id": first.pk,
            "patient_name": "Rajesh Kumar",
            "start_time": "09:00",
            "end_time": "09:30",
            "status": "scheduled",
        },
        {
            "id": second.pk,
            "patient_name": "Rajesh Kumar",
            "start_time": "10:00",
            "end_time": "10:45",
            "status": "scheduled",
        },
    ]
    assert data["total_appointments"] == 2
    # 16 half-hour slots; 09:00, 10:00 and 10:30 are taken.
    assert data["available_slots"] == 13
    assert data["working_hours"] == ["09:00-13:00", "14:00-18:00"]
    assert data["day_off"] is None


def test_schedule_week_runs_monday_to_sunday(api, clinic, patient, doctor, future_day):
    later = future_day + timedelta(days=7)  # the whole week is in the future
    monday = later - timedelta(days=later.weekday())
    wednesday = monday + timedelta(days=2)
    ScheduleExceptionFactory(doctor=doctor, date=wednesday, kind=ScheduleExceptionKind.LEAVE)
    friday = monday + timedelta(days=4)
    ScheduleExceptionFactory(
        doctor=doctor,
        date=friday,
        kind=ScheduleExceptionKind.CHANGED_HOURS,
        hours=["10:00-12:00"],
    )
    sunday_visit = AppointmentFactory(
        clinic=clinic,
        patient=patient,
        doctor=doctor,
        scheduled_time=datetime.combine(
            monday + timedelta(days=6), time(17, 30), tzinfo=clinic.tzinfo
        ),
    )
    data = data_of(api.get(schedule_url(doctor, date=later.isoformat(), week="true")))
    assert data["week_start"] == monday.isoformat()
    assert data["week_end"] == (monday + timedelta(days=6)).isoformat()
    days = data["days"]
    assert [d["date"] for d in days] == [(monday + timedelta(days=i)).isoformat() for i in range(7)]
    by_date = {d["date"]: d for d in days}
    assert by_date[wednesday.isoformat()]["day_off"] == "Leave"
    assert by_date[wednesday.isoformat()]["working_hours"] == []
    assert by_date[wednesday.isoformat()]["available_slots"] == 0
    assert by_date[friday.isoformat()]["working_hours"] == ["10:00-12:00"]
    assert by_date[friday.isoformat()]["available_slots"] == 4
    assert by_date[friday.isoformat()]["day_off"] is None
    sunday = days[-1]
    assert [(a["id"], a["start_time"], a["end_time"]) for a in sunday["appointments"]] == [
        (sunday_visit.pk, "17:30", "18:00")
    ]
    assert sunday["available_slots"] == 15
    assert data["total_appointments"] == 1
    assert data["available_slots"] == 16 * 5 - 1 + 4
    assert [a["id"] for a in data["appointments"]] == [sunday_visit.pk]


def test_schedule_shows_a_day_off(api, doctor, future_day):
    ScheduleExceptionFactory(doctor=doctor, date=future_day, kind=ScheduleExceptionKind.HOLIDAY)
    data = data_of(api.get(schedule_url(doctor, date=future_day.isoformat())))
    assert data["day_off"] == "Holiday"
    assert data["working_hours"] == []
    assert data["available_slots"] == 0


def test_schedule_bad_query_and_other_clinic(api, doctor, other_clinic):
    response = api.get(schedule_url(doctor, date="2026-02-30"))
    assert "date" in error_of(response, 400, "VALIDATION_ERROR")["details"]
    response = api.get(schedule_url(doctor, week="maybe"))
    assert "week" in error_of(response, 400, "VALIDATION_ERROR")["details"]
    foreign = DoctorFactory(clinic=other_clinic)
    assert error_of(api.get(schedule_url(foreign)), 404, "NOT_FOUND")["message"] == (
        "Doctor not found"
    )


# --- Roles and authentication ---------------------------------------------------------------


def test_doctor_user_reads_but_cannot_write(make_client, doctor_user, create, booked, at, doctor):
    appointment = booked("10:00")
    client = make_client(doctor_user)
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}/{appointment.pk}").status_code == 200
    assert client.get(f"{SLOTS_URL}?doctor_id={doctor.pk}&date=2026-01-25").status_code == 200
    refused = [
        create("11:00", client=client),
        client.put(f"{URL}/{appointment.pk}", {"notes": "x"}, format="json"),
        client.patch(f"{URL}/{appointment.pk}", {"notes": "x"}, format="json"),
        client.delete(f"{URL}/{appointment.pk}"),
    ]
    for response in refused:
        error_of(response, 403, "FORBIDDEN")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED and appointment.notes == ""
    assert Appointment.objects.count() == 1


def test_anonymous_is_401(make_client, booked, doctor, future_day):
    appointment = booked("10:00")
    client = make_client()
    for response in [
        client.get(URL),
        client.get(f"{URL}/{appointment.pk}"),
        client.post(URL, {}, format="json"),
        client.patch(f"{URL}/{appointment.pk}", {"notes": "x"}, format="json"),
        client.delete(f"{URL}/{appointment.pk}"),
        client.get(f"{SLOTS_URL}?{slot_query(doctor, future_day)}"),
        client.get(schedule_url(doctor)),
    ]:
        error_of(response, 401, "UNAUTHORIZED")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED
