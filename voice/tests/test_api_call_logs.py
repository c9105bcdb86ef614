"""``/api/v1/call-logs`` (§7): list shape, filters by local day, detail."""

import re
from datetime import UTC, datetime

import pytest

from clinic.tests.factories import AppointmentFactory, PatientFactory
from vaani.common.timeutils import iso_utc
from voice.models import CallLog
from voice.tests.factories import CallLogFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/call-logs"
UTC_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
LIST_KEYS = {
    "id",
    "call_sid",
    "patient_id",
    "patient_name",
    "direction",
    "from_number",
    "to_number",
    "duration_seconds",
    "status",
    "transcript",
    "summary",
    "sentiment",
    "created_at",
}
DETAIL_KEYS = {
    "id",
    "call_sid",
    "patient",
    "direction",
    "duration_seconds",
    "status",
    "transcript",
    "summary",
    "sentiment",
    "intents_detected",
    "appointment_created",
    "created_at",
}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def ok(response, status=200):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is True
    assert UTC_FORMAT.match(body["timestamp"])
    return body["data"]


def error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def call_at(clinic, when: datetime, **fields) -> CallLog:
    """A call whose ``created_at`` (auto_now_add) is ``when``."""
    call = CallLogFactory(clinic=clinic, **fields)
    CallLog.objects.filter(pk=call.pk).update(created_at=when)
    call.refresh_from_db()
    return call


def ids(data) -> list[int]:
    return [c["id"] for c in data["call_logs"]]


def test_list_shape_newest_first(api, clinic):
    patient = PatientFactory(clinic=clinic, name="Rajesh Kumar", phone="+919876543210")
    older = call_at(clinic, datetime(2026, 1, 19, 9, 0, tzinfo=UTC), patient=patient)
    newest = call_at(
        clinic,
        datetime(2026, 1, 20, 10, 0, tzinfo=UTC),
        patient=patient,
        duration_seconds=125,
        transcript="Patient called to book appointment...",
        summary="Appointment booked for Jan 25 at 2:30 PM",
    )
    anonymous = call_at(
        clinic,
        datetime(2026, 1, 19, 12, 0, tzinfo=UTC),
        patient=None,
        from_number="+919000000001",
        status="no-answer",
        sentiment="",
    )
    data = ok(api.get(URL))
    assert ids(data) == [newest.pk, anonymous.pk, older.pk]
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 3, "total_pages": 1}
    first = data["call_logs"][0]
    assert set(first) >= LIST_KEYS
    assert {key: first[key] for key in LIST_KEYS} == {
        "id": newest.pk,
        "call_sid": newest.call_sid,
        "patient_id": patient.pk,
        "patient_name": "Rajesh Kumar",
        "direction": "inbound",
        "from_number": "+919876543210",
        "to_number": "+911234567890",
        "duration_seconds": 125,
        "status": "completed",
        "transcript": "Patient called to book appointment...",
        "summary": "Appointment booked for Jan 25 at 2:30 PM",
        "sentiment": "positive",
        "created_at": "2026-01-20T10:00:00Z",
    }
    unknown_caller = data["call_logs"][1]
    assert unknown_caller["patient_id"] is None
    assert unknown_caller["patient_name"] is None
    assert unknown_caller["status"] == "no-answer"


def test_same_time_calls_are_ordered_by_id_descending(api, clinic):
    moment = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
    calls = [call_at(clinic, moment) for _ in range(3)]
    assert ids(ok(api.get(URL))) == [c.pk for c in reversed(calls)]


def test_filter_by_patient_and_direction(api, clinic):
    rajesh = PatientFactory(clinic=clinic)
    sunita = PatientFactory(clinic=clinic)
    a = call_at(clinic, datetime(2026, 1, 20, 8, tzinfo=UTC), patient=rajesh)
    b = call_at(clinic, datetime(2026, 1, 20, 9, tzinfo=UTC), patient=rajesh, direction="outbound")
    c = call_at(clinic, datetime(2026, 1, 20, 10, tzinfo=UTC), patient=sunita, direction="outbound")
    assert ids(ok(api.get(URL, {"patient_id": rajesh.pk}))) == [b.pk, a.pk]
    assert ids(ok(api.get(URL, {"direction": "outbound"}))) == [c.pk, b.pk]
    assert ids(ok(api.get(URL, {"direction": "inbound"}))) == [a.pk]
    assert ids(ok(api.get(URL, {"patient_id": rajesh.pk, "direction": "outbound"}))) == [b.pk]
    assert ids(ok(api.get(URL, {"patient_id": 987654}))) == []
    error(api.get(URL, {"direction": "sideways"}), 400, "VALIDATION_ERROR")
    error(api.get(URL, {"patient_id": "abc"}), 400, "VALIDATION_ERROR")


def test_date_filters_are_whole_local_days_in_kolkata(api, clinic):
    assert clinic.time_zone == "Asia/Kolkata"
    # 2026-01-20 local runs from 2026-01-19T18:30Z to 2026-01-20T18:30Z.
    before_day = call_at(clinic, datetime(2026, 1, 19, 18, 29, tzinfo=UTC))  # 19th, 23:59 IST
    day_start = call_at(clinic, datetime(2026, 1, 19, 18, 30, tzinfo=UTC))  # 20th, 00:00 IST
    day_end = call_at(clinic, datetime(2026, 1, 20, 18, 29, tzinfo=UTC))  # 20th, 23:59 IST
    next_day = call_at(clinic, datetime(2026, 1, 20, 18, 30, tzinfo=UTC))  # 21st, 00:00 IST

    the_20th = {"start_date": "2026-01-20", "end_date": "2026-01-20"}
    assert ids(ok(api.get(URL, the_20th))) == [day_end.pk, day_start.pk]
    assert ids(ok(api.get(URL, {"start_date": "2026-01-20"}))) == [
        next_day.pk,
        day_end.pk,
        day_start.pk,
    ]
    assert ids(ok(api.get(URL, {"end_date": "2026-01-19"}))) == [before_day.pk]
    assert ids(ok(api.get(URL, {"start_date": "2026-01-21"}))) == [next_day.pk]
    body = error(
        api.get(URL, {"start_date": "2026-01-21", "end_date": "2026-01-20"}),
        400,
        "VALIDATION_ERROR",
    )
    assert "end_date" in body["details"]
    error(api.get(URL, {"start_date": "2026-13-45"}), 400, "VALIDATION_ERROR")


def test_pagination(api, clinic):
    calls = [call_at(clinic, datetime(2026, 1, 1 + n, tzinfo=UTC)) for n in range(5)]
    page = ok(api.get(URL, {"limit": 2, "page": 2}))
    assert ids(page) == [calls[2].pk, calls[1].pk]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 5, "total_pages": 3}


def test_detail_shape(api, clinic):
    patient = PatientFactory(clinic=clinic, name="Rajesh Kumar", phone="+919876543210")
    appointment = AppointmentFactory(clinic=clinic, patient=patient)
    call = call_at(
        clinic,
        datetime(2026, 1, 20, 10, 0, tzinfo=UTC),
        patient=patient,
        duration_seconds=125,
        transcript="Full conversation transcript...",
        summary="Patient called to book appointment.",
        intents_detected=["book_appointment", "ask_doctor_availability"],
        appointment_created=appointment,
        turns=[{"speaker": "patient", "text": "Namaste", "time": "00:01", "language": "hi"}],
    )
    data = ok(api.get(f"{URL}/{call.pk}"))
    assert set(data) >= DETAIL_KEYS
    assert {key: data[key] for key in DETAIL_KEYS} == {
        "id": call.pk,
        "call_sid": call.call_sid,
        "patient": {"id": patient.pk, "name": "Rajesh Kumar", "phone": "+919876543210"},
        "direction": "inbound",
        "duration_seconds": 125,
        "status": "completed",
        "transcript": "Full conversation transcript...",
        "summary": "Patient called to book appointment.",
        "sentiment": "positive",
        "intents_detected": ["book_appointment", "ask_doctor_availability"],
        "appointment_created": appointment.pk,
        "created_at": iso_utc(call.created_at),
    }
    assert data["turns"][0]["text"] == "Namaste"


def test_detail_of_a_call_without_patient_or_booking(api, clinic):
    call = CallLogFactory(clinic=clinic, patient=None, from_number="+919000000001")
    data = ok(api.get(f"{URL}/{call.pk}"))
    assert data["patient"] is None
    assert data["appointment_created"] is None
    assert data["intents_detected"] == []


def test_unknown_call_is_404(api, clinic):
    body = error(api.get(f"{URL}/31337"), 404, "NOT_FOUND")
    assert body["details"] == {"resource": "call_log", "id": 31337}


def test_call_logs_are_read_only(api, clinic):
    call = CallLogFactory(clinic=clinic)
    before = CallLog.objects.values().get(pk=call.pk)
    error(api.post(URL, {"call_sid": "CAnew"}, format="json"), 405, "METHOD_NOT_ALLOWED")
    error(api.patch(f"{URL}/{call.pk}", {"summary": "x"}, format="json"), 405, "METHOD_NOT_ALLOWED")
    error(api.delete(f"{URL}/{call.pk}"), 405, "METHOD_NOT_ALLOWED")
    assert CallLog.objects.values().get(pk=call.pk) == before
