import pytest

from clinic import services
from clinic.tests.factories import DoctorFactory, PatientFactory

pytestmark = pytest.mark.django_db


def test_book_then_list(api, clinic, at):
    patient = PatientFactory(clinic=clinic)
    doctor = DoctorFactory(clinic=clinic)
    response = api.post(
        "/api/v1/appointments",
        {"patient_id": patient.pk, "doctor_id": doctor.pk, "scheduled_time": at("10:00").isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Appointment created successfully. SMS confirmation sent."
    listing = api.get("/api/v1/appointments").json()
    assert listing["data"]["pagination"]["total"] == 1
    again = api.post(
        "/api/v1/appointments",
        {"patient_id": patient.pk, "doctor_id": doctor.pk, "scheduled_time": at("10:15").isoformat()},
        format="json",
    )
    assert again.status_code == 409
    assert again.json()["error"]["details"]["conflicting_appointment_id"] == body["data"]["id"]
    assert services.available_slots(doctor=doctor, day=at("10:00").date())
