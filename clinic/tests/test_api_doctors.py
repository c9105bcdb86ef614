"""``/api/v1/doctors`` (§6.1): list, filters, and managers-only writes with checked hours."""

import re

import pytest

from clinic.models import Doctor
from clinic.schedule import WEEKDAYS
from clinic.tests.factories import DoctorFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/doctors"
DOCTOR_KEYS = {"id", "name", "specialization", "phone", "email", "available", "working_hours"}
UTC_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
WEEK = {
    "monday": ["09:00-13:00", "14:00-18:00"],
    "tuesday": ["09:00-13:00", "14:00-18:00"],
    "wednesday": ["09:00-13:00"],
    "thursday": ["08:00-10:00", "11:00-13:00", "17:00-20:00"],
    "friday": ["09:00-13:00", "14:00-18:00"],
    "saturday": ["09:00-13:00"],
    "sunday": [],
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
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert UTC_FORMAT.match(body["timestamp"])
    return body["error"]


def test_list_shape_with_every_weekday(api, clinic):
    priya = DoctorFactory(
        clinic=clinic,
        name="Dr. Priya Sharma",
        specialization="General Physician",
        phone="+911234567890",
        email="priya.sharma@clinic.com",
        working_hours=WEEK,
    )
    # Stored without some days: the answer still has all seven.
    partial = DoctorFactory(
        clinic=clinic, name="Dr. Zed", working_hours={"monday": ["10:00-12:00"]}
    )
    data = ok(api.get(URL))
    doctors = {d["id"]: d for d in data["doctors"]}
    assert [d["name"] for d in data["doctors"]] == ["Dr. Priya Sharma", "Dr. Zed"]
    assert set(doctors[priya.pk]) >= DOCTOR_KEYS
    assert {key: doctors[priya.pk][key] for key in DOCTOR_KEYS} == {
        "id": priya.pk,
        "name": "Dr. Priya Sharma",
        "specialization": "General Physician",
        "phone": "+911234567890",
        "email": "priya.sharma@clinic.com",
        "available": True,
        "working_hours": WEEK,
    }
    assert list(doctors[priya.pk]["working_hours"]) == list(WEEKDAYS)
    assert doctors[partial.pk]["working_hours"] == {
        day: (["10:00-12:00"] if day == "monday" else []) for day in WEEKDAYS
    }


def test_filter_by_specialization_and_availability(api, clinic):
    DoctorFactory(clinic=clinic, name="Dr. A", specialization="Cardiology", available=True)
    DoctorFactory(clinic=clinic, name="Dr. B", specialization="Cardiology", available=False)
    DoctorFactory(clinic=clinic, name="Dr. C", specialization="Dermatology", available=True)

    def listed(**params):
        return [d["name"] for d in ok(api.get(URL, params))["doctors"]]

    assert listed() == ["Dr. A", "Dr. B", "Dr. C"]
    assert listed(specialization="cardiology") == ["Dr. A", "Dr. B"]
    assert listed(specialization="Dermatology") == ["Dr. C"]
    assert listed(specialization="Neurology") == []
    assert listed(available="true") == ["Dr. A", "Dr. C"]
    assert listed(available="false") == ["Dr. B"]
    assert listed(available="true", specialization="Cardiology") == ["Dr. A"]
    for bad in ("maybe", "2", "yes please"):
        body = error(api.get(URL, {"available": bad}), 400, "VALIDATION_ERROR")
        assert "available" in body["details"]


def test_admin_creates_a_doctor_with_normalized_hours(admin_api, clinic):
    payload = {
        "name": "Dr. Priya Sharma",
        "specialization": "General Physician",
        "phone": "+91 12345 67890",
        "email": "priya.sharma@clinic.com",
        "working_hours": {
            "monday": ["14:00-18:00", "09:00-13:00"],
            "saturday": ["09:00-13:00"],
        },
    }
    data = ok(admin_api.post(URL, payload, format="json"), 201)
    doctor = Doctor.objects.get(pk=data["id"])
    assert doctor.clinic == clinic
    assert doctor.phone == data["phone"] == "+911234567890"
    assert doctor.available is True
    expected = {day: [] for day in WEEKDAYS}
    expected["monday"] = ["09:00-13:00", "14:00-18:00"]
    expected["saturday"] = ["09:00-13:00"]
    assert data["working_hours"] == expected
    assert doctor.working_hours_display() == expected


def test_admin_updates_a_doctor(admin_api, clinic):
    doctor = DoctorFactory(clinic=clinic, name="Dr. Old", available=True)
    url = f"{URL}/{doctor.pk}"
    data = ok(admin_api.patch(url, {"available": False, "working_hours": WEEK}, format="json"))
    doctor.refresh_from_db()
    assert doctor.available is False
    assert doctor.name == "Dr. Old"
    assert doctor.working_hours_display() == WEEK == data["working_hours"]
    ok(admin_api.put(url, {"name": "Dr. New", "specialization": "ENT"}, format="json"))
    doctor.refresh_from_db()
    assert (doctor.name, doctor.specialization, doctor.available) == ("Dr. New", "ENT", False)


@pytest.mark.parametrize(
    ("hours", "fragment"),
    [
        ({"monday": ["9-5"]}, "'9-5' is not an interval"),
        ({"monday": ["09:00-13:00", "12:00-14:00"]}, "must not overlap"),
        ({"funday": ["09:00-13:00"]}, "Unknown weekday"),
        ({"monday": ["13:00-09:00"]}, "ends before it starts"),
        ({"monday": ["25:00-26:00"]}, "is not an interval"),
        ({"monday": "09:00-13:00"}, "must be a list"),
        (["09:00-13:00"], "object keyed by weekday"),
        ("monday", "object keyed by weekday"),
    ],
)
def test_working_hours_are_validated(admin_api, clinic, hours, fragment):
    doctor = DoctorFactory(clinic=clinic)
    before = Doctor.objects.values().get(pk=doctor.pk)
    created = admin_api.post(URL, {"name": "Dr. New", "working_hours": hours}, format="json")
    body = error(created, 400, "VALIDATION_ERROR")
    assert fragment in body["details"]["working_hours"]
    updated = admin_api.patch(f"{URL}/{doctor.pk}", {"working_hours": hours}, format="json")
    body = error(updated, 400, "VALIDATION_ERROR")
    assert fragment in body["details"]["working_hours"]
    assert Doctor.objects.count() == 1
    assert Doctor.objects.values().get(pk=doctor.pk) == before


def test_create_checks_other_fields(admin_api, clinic):
    body = error(
        admin_api.post(URL, {"name": "", "phone": "12345", "email": "nope"}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert set(body["details"]) == {"name", "phone", "email"}
    assert body["details"]["phone"] == "Phone number must be in E.164 format (+919876543210)"
    assert not Doctor.objects.exists()


@pytest.mark.parametrize("role_fixture", ["api", "doctor_client"])
def test_receptionists_and_doctors_cannot_write_doctors(request, clinic, role_fixture):
    client = request.getfixturevalue(role_fixture)
    doctor = DoctorFactory(clinic=clinic, name="Dr. Same")
    before = Doctor.objects.values().get(pk=doctor.pk)
    error(client.post(URL, {"name": "Dr. Sneaky"}, format="json"), 403, "FORBIDDEN")
    for method in ("put", "patch"):
        response = getattr(client, method)(
            f"{URL}/{doctor.pk}", {"name": "Dr. Renamed"}, format="json"
        )
        error(response, 403, "FORBIDDEN")
    assert Doctor.objects.count() == 1
    assert Doctor.objects.values().get(pk=doctor.pk) == before
    # Reading is fine for every member.
    assert ok(client.get(URL))["doctors"][0]["id"] == doctor.pk
    assert ok(client.get(f"{URL}/{doctor.pk}"))["id"] == doctor.pk


@pytest.fixture
def doctor_client(make_client, doctor_user):
    return make_client(doctor_user)


def test_doctor_detail_and_unknown_doctor(api, clinic):
    doctor = DoctorFactory(clinic=clinic)
    assert ok(api.get(f"{URL}/{doctor.pk}"))["working_hours"] == doctor.working_hours_display()
    body = error(api.get(f"{URL}/987654"), 404, "NOT_FOUND")
    assert body["details"] == {"resource": "doctor", "id": 987654}
