"""Tenancy, roles and mass assignment across the whole API.

A member of one clinic must not see, change or even confirm the existence of
another clinic's rows: every id of another clinic answers 404 NOT_FOUND exactly
like an id that does not exist.
"""

import re

import pytest

from accounts.models import Role, User
from accounts.tests.factories import UserFactory
from audit.models import AuditEntry
from clinic.models import Appointment, Doctor, Patient
from clinic.tests.factories import AppointmentFactory, DoctorFactory, PatientFactory
from voice.models import CallLog
from voice.tests.factories import CallLogFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"
UTC_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": 10_000}


def error(response, status, code):
    assert response.status_code == status, (response.request, response.content)
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert UTC_FORMAT.match(body["timestamp"])
    return body["error"]


def snapshot() -> dict:
    """Every stored row of patient data, to prove a refused request changed nothing."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Patient, Doctor, Appointment, CallLog, User)
    }


@pytest.fixture
def theirs(other_clinic, at):
    """Another clinic's patient, doctor, appointment (tomorrow-ish) and call."""
    patient = PatientFactory(clinic=other_clinic, name="Their Patient")
    doctor = DoctorFactory(clinic=other_clinic, name="Dr. Theirs")
    appointment = AppointmentFactory(
        clinic=other_clinic, patient=patient, doctor=doctor, scheduled_time=at("10:00")
    )
    call = CallLogFactory(clinic=other_clinic, patient=patient, appointment_created=appointment)
    return {"patient": patient, "doctor": doctor, "appointment": appointment, "call": call}


@pytest.fixture
def ours(clinic, at):
    patient = PatientFactory(clinic=clinic, name="Our Patient")
    doctor = DoctorFactory(clinic=clinic, name="Dr. Ours")
    appointment = AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=at("11:00")
    )
    call = CallLogFactory(clinic=clinic, patient=patient)
    return {"patient": patient, "doctor": doctor, "appointment": appointment, "call": call}


def test_every_object_endpoint_answers_404_for_another_clinics_ids(
    make_client, admin_user, ours, theirs, at
):
    """An admin (who may write everything) walks every endpoint that takes an id."""
    api = make_client(admin_user)
    day = at("10:00").date().isoformat()
    new_time = at("15:00").isoformat()
    own_patient, own_doctor = ours["patient"].pk, ours["doctor"].pk
    # {a}, {p}, {d}, {c}: their appointment, patient, doctor and call (or absent ids).
    ask = [
        ("get", "/appointments/{a}", None, "appointment"),
        ("put", "/appointments/{a}", {"reason": "Mine now"}, "appointment"),
        ("patch", "/appointments/{a}", {"scheduled_time": new_time}, "appointment"),
        ("patch", "/appointments/{a}", {"status": "cancelled"}, "appointment"),
        ("delete", "/appointments/{a}", None, "appointment"),
        ("delete", "/appointments/{a}?reason=gone", None, "appointment"),
        ("get", "/patients/{p}", None, "patient"),
        ("put", "/patients/{p}", {"name": "Renamed"}, "patient"),
        ("patch", "/patients/{p}", {"phone": "+919999999999"}, "patient"),
        ("get", "/doctors/{d}", None, "doctor"),
        ("put", "/doctors/{d}", {"available": False}, "doctor"),
        ("patch", "/doctors/{d}", {"working_hours": {}}, "doctor"),
        ("get", "/doctors/{d}/schedule", None, "doctor"),
        ("get", "/doctors/{d}/schedule?date=" + day + "&week=true", None, "doctor"),
        ("get", "/call-logs/{c}", None, "call_log"),
        ("get", "/appointments/available-slots?doctor_id={d}&date=" + day, None, "doctor"),
        (
            "post",
            "/appointments",
            {"patient_id": "{p}", "doctor_id": own_doctor, "scheduled_time": new_time},
            "patient",
        ),
        (
            "post",
            "/appointments",
            {"patient_id": own_patient, "doctor_id": "{d}", "scheduled_time": new_time},
            "doctor",
        ),
        ("patch", f"/appointments/{ours['appointment'].pk}", {"doctor_id": "{d}"}, "doctor"),
    ]
    their_ids = {
        "a": theirs["appointment"].pk,
        "p": theirs["patient"].pk,
        "d": theirs["doctor"].pk,
        "c": theirs["call"].pk,
    }
    absent_ids = dict.fromkeys(their_ids, 999999)

    def fill(template, ids):
        if isinstance(template, dict):
            return {
                key: int(value.format(**ids)) if isinstance(value, str) and "{" in value else value
                for key, value in template.items()
            }
        return template.format(**ids) if template else template

    before = snapshot()
    for method, path, body, resource in ask:
        response = getattr(api, method)(
            API + fill(path, their_ids), fill(body, their_ids), format="json"
        )
        details = error(response, 404, "NOT_FOUND")["details"]
        assert details["resource"] == resource, (method, path, details)
        assert details["id"] in their_ids.values()
        # Indistinguishable from an id that does not exist.
        absent = getattr(api, method)(
            API + fill(path, absent_ids), fill(body, absent_ids), format="json"
        )
        assert absent.status_code == 404, (method, path)
        assert absent.json()["error"]["message"] == response.json()["error"]["message"]
        assert absent.json()["error"]["details"] == {**details, "id": 999999}
    assert snapshot() == before
    # Nothing was read, so nothing was audited as read.
    assert not AuditEntry.objects.filter(clinic=theirs["patient"].clinic).exists()


def test_lists_never_show_another_clinics_rows(api, ours, theirs):
    mine = {
        "appointments": ours["appointment"].pk,
        "patients": ours["patient"].pk,
        "doctors": ours["doctor"].pk,
        "call-logs": ours["call"].pk,
    }
    keys = {
        "appointments": "appointments",
        "patients": "patients",
        "doctors": "doctors",
        "call-logs": "call_logs",
    }
    for path, key in keys.items():
        data = api.get(f"{API}/{path}").json()["data"]
        assert [row["id"] for row in data[key]] == [mine[path]], path
        assert data["pagination"]["total"] == 1
    # Filtering by another clinic's ids finds nothing (and says nothing).
    patient, doctor = theirs["patient"].pk, theirs["doctor"].pk
    for path, params in (
        ("appointments", {"patient_id": patient}),
        ("appointments", {"doctor_id": doctor}),
        ("call-logs", {"patient_id": patient}),
        ("patients", {"phone": theirs["patient"].phone}),
        ("patients", {"search": "Their"}),
        ("doctors", {"specialization": theirs["doctor"].specialization, "available": "true"}),
    ):
        data = api.get(f"{API}/{path}", params).json()["data"]
        rows = data[keys[path]]
        if path == "doctors":  # same specialization here: only our own doctor
            assert [r["id"] for r in rows] == [ours["doctor"].pk]
        else:
            assert rows == [], (path, params)
            assert data["pagination"]["total"] == 0


# --- Mass assignment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "valid", "forbidden"),
    [
        (
            "/patients",
            {"phone": "+919876543210", "name": "Rajesh"},
            ["clinic", "clinic_id", "id", "created_at", "updated_at", "role"],
        ),
        (
            "/appointments",
            "appointment",
            ["clinic", "clinic_id", "id", "created_at", "status", "source", "booked_by"],
        ),
        ("/doctors", {"name": "Dr. New"}, ["clinic", "clinic_id", "id", "created_at", "role"]),
    ],
)
def test_create_refuses_fields_that_are_not_writable(
    make_client, admin_user, other_clinic, ours, at, path, valid, forbidden
):
    api = make_client(admin_user)
    if valid == "appointment":
        valid = {
            "patient_id": ours["patient"].pk,
            "doctor_id": ours["doctor"].pk,
            "scheduled_time": at("16:00").isoformat(),
        }
    before = snapshot()
    values = {
        "clinic": other_clinic.pk,
        "clinic_id": other_clinic.pk,
        "id": 424242,
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
        "status": "completed",
        "source": "voice",
        "booked_by": 1,
        "role": "owner",
    }
    for name in forbidden:
        response = make_client(admin_user).post(
            API + path, {**valid, name: values[name]}, format="json"
        )
        details = error(response, 400, "VALIDATION_ERROR")["details"]
        assert details == {name: "This field is not allowed."}, (path, name)
    assert snapshot() == before
    # The same body without the extra field is accepted (so the refusal was the field).
    assert api.post(API + path, valid, format="json").status_code == 201


def test_updates_refuse_fields_that_are_not_writable(admin_api, other_clinic, ours):
    targets = [
        (f"/patients/{ours['patient'].pk}", {"name": "New Name"}),
        (f"/appointments/{ours['appointment'].pk}", {"reason": "New reason"}),
        (f"/doctors/{ours['doctor'].pk}", {"name": "Dr. New Name"}),
    ]
    before = snapshot()
    for path, valid in targets:
        for name, value in (
            ("clinic", other_clinic.pk),
            ("clinic_id", other_clinic.pk),
            ("id", 1),
            ("created_at", "2020-01-01T00:00:00Z"),
            ("role", "owner"),
        ):
            for method in ("put", "patch"):
                response = getattr(admin_api, method)(
                    API + path, {**valid, name: value}, format="json"
                )
                details = error(response, 400, "VALIDATION_ERROR")["details"]
                assert details == {name: "This field is not allowed."}, (path, name)
    assert snapshot() == before


# --- Roles ------------------------------------------------------------------------------------


def test_doctor_role_reads_patients_but_cannot_write_them(make_client, doctor_user, ours):
    api = make_client(doctor_user)
    patient = ours["patient"]
    assert api.get(f"{API}/patients").status_code == 200
    assert api.get(f"{API}/patients/{patient.pk}").status_code == 200
    before = snapshot()
    error(
        api.post(f"{API}/patients", {"phone": "+919876543210", "name": "X"}, format="json"),
        403,
        "FORBIDDEN",
    )
    for method in ("put", "patch"):
        response = getattr(api, method)(
            f"{API}/patients/{patient.pk}", {"name": "Changed"}, format="json"
        )
        error(response, 403, "FORBIDDEN")
    error(api.delete(f"{API}/appointments/{ours['appointment'].pk}"), 403, "FORBIDDEN")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/patients"),
        ("get", "/patients/1"),
        ("post", "/patients"),
        ("get", "/appointments"),
        ("post", "/appointments"),
        ("get", "/appointments/available-slots?doctor_id=1&date=2026-01-25"),
        ("get", "/doctors"),
        ("get", "/doctors/1/schedule"),
        ("get", "/call-logs"),
        ("get", "/call-logs/1"),
        ("get", "/auth/me"),
    ],
)
def test_anonymous_is_401_with_www_authenticate(make_client, db, method, path):
    response = getattr(make_client(), method)(API + path, {}, format="json")
    error(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_garbage_token_is_401(make_client, db):
    client = make_client()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    response = client.get(f"{API}/patients")
    error(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_user_without_a_clinic_is_403(make_client, db):
    operator = UserFactory(clinic=None, role=Role.ADMIN)
    api = make_client(operator)
    for method, path in (
        ("get", "/patients"),
        ("get", "/appointments"),
        ("get", "/doctors"),
        ("get", "/call-logs"),
        ("post", "/patients"),
    ):
        body = {"phone": "+919876543210", "name": "X"} if method == "post" else None
        error(getattr(api, method)(API + path, body, format="json"), 403, "FORBIDDEN")
    assert not Patient.objects.exists()


def test_inactive_user_is_refused(make_client, receptionist):
    api = make_client(receptionist)
    receptionist.is_active = False
    receptionist.save()
    error(api.get(f"{API}/patients"), 401, "UNAUTHORIZED")


def test_roles_follow_the_user_not_the_token(make_client, receptionist, clinic):
    """A role lowered after sign-in takes effect at once (the token carries no role),
    although the signed-in user is cached between requests."""
    api = make_client(receptionist)
    assert api.post(f"{API}/patients", {"phone": "+919876543210", "name": "A"}).status_code == 201
    member = User.objects.get(pk=receptionist.pk)  # as the admin or the API would change it
    member.role = Role.DOCTOR
    member.save(update_fields=["role"])
    error(api.post(f"{API}/patients", {"phone": "+919876543210", "name": "B"}), 403, "FORBIDDEN")
    assert list(Patient.objects.values_list("name", flat=True)) == ["A"]
