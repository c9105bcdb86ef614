"""The four events of §12.2: which endpoints get them, and exactly what they say."""

import json
import re

import pytest
from django.db import transaction

from clinic import services as clinic_services
from clinic.tests.factories import AppointmentFactory, DoctorFactory, PatientFactory
from vaani.common.exceptions import ConflictError
from vaani.common.timeutils import iso_utc
from voice import services as voice_services
from voice.models import CallStatus
from voice.tests.factories import CallLogFactory
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.factories import WebhookEndpointFactory

pytestmark = pytest.mark.django_db

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
EVENT_ID = re.compile(r"^evt_[0-9a-f]{32}$")
# The documented examples' keys (§12.2): every body has at least these.
APPOINTMENT_KEYS = {"id", "patient_id", "doctor_id", "scheduled_time", "status"}
CALL_KEYS = {"call_sid", "patient_id", "duration_seconds", "summary", "appointment_id"}


@pytest.fixture
def webhook(clinic, receiver, allow_local):
    return WebhookEndpointFactory(clinic=clinic, url=receiver.url())


@pytest.fixture
def patient(clinic):
    return PatientFactory(clinic=clinic)


@pytest.fixture
def doctor(clinic):
    return DoctorFactory(clinic=clinic)


@pytest.fixture
def book(clinic, patient, doctor, at, django_capture_on_commit_callbacks):
    def book(clock="10:00"):
        with django_capture_on_commit_callbacks(execute=True):
            return clinic_services.book_appointment(
                clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at(clock)
            )

    return book


def _sent(receiver) -> list[dict]:
    return [r.json() for r in receiver.requests]


def _check_envelope(body: dict, event: str):
    assert set(body) == {"id", "event", "timestamp", "data"}
    assert body["event"] == event
    assert EVENT_ID.match(body["id"])
    assert TIMESTAMP.match(body["timestamp"])


def test_appointment_created(book, webhook, receiver, patient, doctor, at):
    appointment = book()
    (body,) = _sent(receiver)
    _check_envelope(body, "appointment.created")
    data = body["data"]
    assert set(data) >= APPOINTMENT_KEYS
    assert data["id"] == appointment.pk
    assert data["patient_id"] == patient.pk and data["doctor_id"] == doctor.pk
    assert data["scheduled_time"] == iso_utc(at("10:00"))
    assert data["status"] == "scheduled"
    assert data["duration_minutes"] == appointment.duration_minutes
    # No patient names or phone numbers leave the clinic this way.
    assert patient.name not in json.dumps(body) and patient.phone not in json.dumps(body)


def test_appointment_updated(book, webhook, receiver, at, django_capture_on_commit_callbacks):
    appointment = book("10:00")
    with django_capture_on_commit_callbacks(execute=True):
        clinic_services.update_appointment(
            appointment=appointment, changes={"scheduled_time": at("11:00")}
        )
    created, updated = _sent(receiver)
    _check_envelope(updated, "appointment.updated")
    assert set(updated["data"]) >= APPOINTMENT_KEYS
    assert updated["data"]["id"] == appointment.pk
    assert updated["data"]["scheduled_time"] == iso_utc(at("11:00"))
    assert updated["data"]["rescheduled"] is True
    assert updated["data"]["previous_time"] == iso_utc(at("10:00"))
    assert updated["id"] != created["id"]


def test_appointment_cancelled(book, webhook, receiver, django_capture_on_commit_callbacks):
    appointment = book()
    with django_capture_on_commit_callbacks(execute=True):
        clinic_services.cancel_appointment(appointment=appointment, reason="Feeling better")
    body = _sent(receiver)[-1]
    _check_envelope(body, "appointment.cancelled")
    assert set(body["data"]) >= APPOINTMENT_KEYS
    assert body["data"]["status"] == "cancelled"
    assert TIMESTAMP.match(body["data"]["cancelled_at"])


def test_call_completed(clinic, webhook, receiver, patient, django_capture_on_commit_callbacks):
    appointment = AppointmentFactory(clinic=clinic, patient=patient)
    call = CallLogFactory(
        clinic=clinic, patient=patient, status=CallStatus.IN_PROGRESS, duration_seconds=125
    )
    outcome = voice_services.CallOutcome(
        summary="Appointment booked successfully", appointment_id=appointment.pk, language="hi"
    )
    with django_capture_on_commit_callbacks(execute=True):
        voice_services.finalize_call(call_sid=call.call_sid, outcome=outcome)
    (body,) = _sent(receiver)
    _check_envelope(body, "call.completed")
    assert body["data"] == {
        "call_sid": call.call_sid,
        "patient_id": patient.pk,
        "duration_seconds": 125,
        "summary": "Appointment booked successfully",
        "appointment_id": appointment.pk,
        "status": "completed",
        "direction": "inbound",
        "language": "hi",
    }
    assert set(body["data"]) >= CALL_KEYS


def test_the_stored_body_is_the_body_sent(book, webhook, receiver):
    book()
    delivery = WebhookDelivery.objects.get()
    assert receiver.requests[0].body == delivery.payload.encode()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1


def test_only_subscribed_active_endpoints_of_the_clinic(
    book, clinic, other_clinic, receiver, allow_local
):
    wanted = WebhookEndpointFactory(clinic=clinic, url=receiver.url("/wanted"))
    WebhookEndpointFactory(clinic=clinic, url=receiver.url("/calls"), events=["call.completed"])
    WebhookEndpointFactory(clinic=clinic, url=receiver.url("/off"), is_active=False)
    WebhookEndpointFactory(clinic=other_clinic, url=receiver.url("/elsewhere"))
    book()
    assert [r.path for r in receiver.requests] == ["/wanted"]
    assert list(WebhookDelivery.objects.values_list("endpoint", flat=True)) == [wanted.pk]


def test_one_event_has_one_id_for_every_endpoint(book, clinic, receiver, allow_local):
    WebhookEndpointFactory(clinic=clinic, url=receiver.url("/a"))
    WebhookEndpointFactory(clinic=clinic, url=receiver.url("/b"))
    book()
    first, second = _sent(receiver)
    assert first == second  # the same event: same id, same body


def test_rollback_sends_nothing(
    clinic, patient, doctor, at, webhook, receiver, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        clinic_services.book_appointment(
            clinic=clinic, patient_id=patient.pk, doctor_id=doctor.pk, scheduled_time=at("10:00")
        )
        raise RuntimeError("something later in the same transaction failed")
    assert not WebhookDelivery.objects.exists()
    assert receiver.requests == []


def test_a_refused_booking_sends_nothing(book, webhook, receiver):
    book("10:00")
    with pytest.raises(ConflictError):
        book("10:00")
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.count() == 1


def test_no_endpoint_no_delivery(book):
    book()
    assert not WebhookDelivery.objects.exists()


def test_a_broken_receiver_never_breaks_the_booking(book, webhook, receiver, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("database is gone")

    monkeypatch.setattr("webhooks.services.publish_event", explode)
    appointment = book()
    assert appointment.pk is not None
    assert "not queued" in caplog.text
