"""End to end through real sockets: the documented examples (§2, §4-§8) over HTTP against
pytest-django's live server, schemathesis against the live ``/openapi.json``, and a real
Daphne process; plus ``manage.py check --deploy`` with a production-like environment."""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import UserFactory
from accounts.tokens import issue_tokens
from clinic.tests.factories import (
    AppointmentFactory,
    ClinicFactory,
    DoctorFactory,
    PatientFactory,
)
from voice.tests.factories import CallLogFactory

BASE_DIR = Path(django_settings.BASE_DIR)
PASSWORD = "secure_password"
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def utc_z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_z(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.fixture
def roomy_limits(settings):
    """The live server runs in this process, so these settings reach it too."""
    settings.RATE_LIMITS = {category: 100_000 for category in settings.RATE_LIMITS}


@pytest.fixture
def world(transactional_db, roomy_limits):
    """One clinic as in the API reference's examples, and a stranger clinic beside it."""
    clinic = ClinicFactory(name="Sharma Clinic")
    admin = UserFactory(clinic=clinic, email="admin@clinic.com", role=Role.ADMIN, password=PASSWORD)
    doctor = DoctorFactory(
        clinic=clinic,
        name="Dr. Priya Sharma",
        specialization="General Physician",
        phone="+911234567890",
        email="priya.sharma@clinic.com",
    )
    day = timezone.localdate(timezone=clinic.tzinfo) + timedelta(days=3)
    elsewhere = ClinicFactory(name="Elsewhere")
    stranger = PatientFactory(clinic=elsewhere)
    return {
        "clinic": clinic,
        "admin": admin,
        "doctor": doctor,
        "day": day,
        "at": lambda clock: datetime.combine(
            day, datetime.strptime(clock, "%H:%M").time(), tzinfo=clinic.tzinfo
        ),
        "stranger": stranger,
    }


class Api:
    """httpx against the live server; checks what every API response must carry, and that
    it matches what the live ``/openapi.json`` says that operation answers."""

    def __init__(self, base_url: str, openapi=None):
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.token: str | None = None
        self.openapi = openapi
        self.validated = 0

    def request(self, method: str, path: str, *, expect: int, **kwargs):
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["x-request-id"]
        for name in RATE_LIMIT_HEADERS:
            assert name in response.headers, (method, path, name)
        body = response.json()
        if path != "/api/v1/admin/health":
            assert body["success"] is (expect < 400), body
            parse_z(body["timestamp"])
        if self.openapi is not None:
            template = re.sub(r"/\d+(?=/|$)", "/{id}", urlsplit(path).path)
            self.openapi[template][method].validate_response(response)  # raises if it breaks
            self.validated += 1
        return body

    def login(self, username: str, password: str) -> dict:
        body = self.request(
            "POST",
            "/api/v1/auth/login",
            json={"username": username, "password": password},
            expect=200,
        )
        self.token = body["data"]["access_token"]
        return body


@pytest.fixture
def api(live_server):
    import schemathesis

    client = Api(live_server.url, schemathesis.openapi.from_url(f"{live_server.url}/openapi.json"))
    yield client
    client.http.close()
    assert client.validated, "no response was checked against /openapi.json"


# --- (1) The documented examples ------------------------------------------------------------


@pytest.mark.live
def test_login_and_health_as_documented(api, world):
    health = api.request("GET", "/api/v1/admin/health", expect=200)
    assert health["status"] == "healthy"
    assert health["version"] == "2.0.0"
    parse_z(health["timestamp"])
    assert health["components"]["database"]["status"] == "healthy"
    assert isinstance(health["components"]["database"]["response_time_ms"], int | float)
    assert "status" in health["components"]["redis"]
    assert {"deepgram", "cartesia"} <= set(health["components"]["voice_providers"])
    assert "success" not in health

    body = api.login("admin@clinic.com", "secure_password")
    data = body["data"]
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == 3600
    assert {k: data["user"][k] for k in ("id", "username", "role")} == {
        "id": world["admin"].pk,
        "username": "admin@clinic.com",
        "role": "admin",
    }
    me = api.request("GET", "/api/v1/auth/me", expect=200)
    assert me["data"]["id"] == world["admin"].pk

    wrong = Api(str(api.http.base_url), api.openapi)
    error = wrong.request(
        "POST",
        "/api/v1/auth/login",
        json={"username": "admin@clinic.com", "password": "x"},
        expect=401,
    )
    assert error["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.live
def test_patients_as_documented(api, world):
    api.login("admin@clinic.com", PASSWORD)

    # §5.3
    created = api.request(
        "POST",
        "/api/v1/patients",
        json={
            "phone": "+919876543210",
            "name": "Rajesh Kumar",
            "date_of_birth": "1985-05-15",
            "language_preference": "hi",
        },
        expect=201,
    )["data"]
    assert {"id", "phone", "name", "created_at"} <= set(created)
    assert (created["phone"], created["name"]) == ("+919876543210", "Rajesh Kumar")
    parse_z(created["created_at"])
    patient_id = created["id"]

    # The same person twice is a conflict, not a second record.
    twin = api.request(
        "POST",
        "/api/v1/patients",
        json={"phone": "+919876543210", "name": "rajesh kumar"},
        expect=409,
    )
    assert twin["error"]["code"] == "CONFLICT"
    bad = api.request("POST", "/api/v1/patients", json={"phone": "98765", "name": "X"}, expect=400)
    assert (
        bad["error"]["details"]["phone"] == "Phone number must be in E.164 format (+919876543210)"
    )

    # §5.4
    updated = api.request(
        "PUT",
        f"/api/v1/patients/{patient_id}",
        json={"name": "Rajesh Kumar Sharma", "language_preference": "hi-en"},
        expect=200,
    )["data"]
    assert updated["id"] == patient_id
    assert updated["name"] == "Rajesh Kumar Sharma"
    assert updated["language_preference"] == "hi-en"
    parse_z(updated["updated_at"])

    # §5.1
    listing = api.request("GET", "/api/v1/patients?search=rajesh&limit=10", expect=200)["data"]
    assert listing["pagination"] == {"page": 1, "limit": 10, "total": 1, "total_pages": 1}
    (patient,) = listing["patients"]
    assert {
        "id", "phone", "name", "date_of_birth", "age", "language_preference",
        "total_appointments", "last_appointment", "created_at",
    } <= set(patient)  # fmt: skip
    assert patient["date_of_birth"] == "1985-05-15"
    assert isinstance(patient["age"], int) and patient["age"] >= 40

    # §5.2
    detail = api.request("GET", f"/api/v1/patients/{patient_id}", expect=200)["data"]
    assert {
        "id", "phone", "name", "date_of_birth", "age", "language_preference", "created_at",
        "appointment_history", "total_appointments", "upcoming_appointments",
    } <= set(detail)  # fmt: skip
    assert detail["appointment_history"] == []

    # Another clinic's patient does not exist here.
    missing = api.request("GET", f"/api/v1/patients/{world['stranger'].pk}", expect=404)
    assert missing["error"]["code"] == "NOT_FOUND"


@pytest.mark.live
def test_appointments_as_documented(api, world):
    api.login("admin@clinic.com", PASSWORD)
    doctor = world["doctor"]
    patient = PatientFactory(clinic=world["clinic"], name="Rajesh Kumar", phone="+919876543210")
    day = world["day"].isoformat()
    ten, half_past_ten = world["at"]("10:00"), world["at"]("10:30")

    # §4.6
    slots_path = (
        f"/api/v1/appointments/available-slots?doctor_id={doctor.pk}&date={day}&duration_minutes=30"
    )
    slots = api.request("GET", slots_path, expect=200)["data"]
    assert {"doctor_id", "doctor_name", "date", "available_slots", "total_slots"} <= set(slots)
    assert (slots["doctor_id"], slots["doctor_name"], slots["date"]) == (
        doctor.pk,
        "Dr. Priya Sharma",
        day,
    )
    assert slots["total_slots"] == len(slots["available_slots"]) == 16  # 8 h in 30-min slots
    for slot in slots["available_slots"]:
        assert parse_z(slot["end_time"]) - parse_z(slot["start_time"]) == timedelta(minutes=30)
    assert slots["available_slots"][0]["start_time"] == utc_z(world["at"]("09:00"))
    assert {"start_time": utc_z(ten), "end_time": utc_z(half_past_ten)} in slots["available_slots"]

    # §4.3
    created = api.request(
        "POST",
        "/api/v1/appointments",
        json={
            "patient_id": patient.pk,
            "doctor_id": doctor.pk,
            "scheduled_time": utc_z(ten),
            "duration_minutes": 30,
            "reason": "Annual checkup",
            "notes": "Patient prefers Hindi",
        },
        expect=201,
    )
    assert created["message"] == "Appointment created successfully. SMS confirmation sent."
    appointment = created["data"]
    assert {
        key: appointment[key]
        for key in ("patient_id", "doctor_id", "scheduled_time", "duration_minutes", "status",
                    "reason")
    } == {
        "patient_id": patient.pk,
        "doctor_id": doctor.pk,
        "scheduled_time": utc_z(ten),
        "duration_minutes": 30,
        "status": "scheduled",
        "reason": "Annual checkup",
    }  # fmt: skip
    parse_z(appointment["created_at"])
    appointment_id = appointment["id"]

    # §4.3's error responses: 409, 404, 400.
    conflict = api.request(
        "POST",
        "/api/v1/appointments",
        json={"patient_id": patient.pk, "doctor_id": doctor.pk, "scheduled_time": utc_z(ten)},
        expect=409,
    )["error"]
    assert conflict["code"] == "CONFLICT"
    assert conflict["details"] == {
        "doctor_id": doctor.pk,
        "requested_time": utc_z(ten),
        "conflicting_appointment_id": appointment_id,
    }
    unknown = api.request(
        "POST",
        "/api/v1/appointments",
        json={"patient_id": 987654, "doctor_id": doctor.pk, "scheduled_time": utc_z(ten)},
        expect=404,
    )["error"]
    assert unknown["code"] == "NOT_FOUND"
    past = api.request(
        "POST",
        "/api/v1/appointments",
        json={
            "patient_id": patient.pk,
            "doctor_id": doctor.pk,
            "scheduled_time": utc_z(timezone.now() - timedelta(days=1)),
            "duration_minutes": 20,
        },
        expect=400,
    )["error"]
    assert past["code"] == "VALIDATION_ERROR"
    assert {"scheduled_time", "duration_minutes"} <= set(past["details"])

    # The slot is gone.
    after = api.request("GET", slots_path, expect=200)["data"]
    assert after["total_slots"] == 15
    assert utc_z(ten) not in [slot["start_time"] for slot in after["available_slots"]]

    # §4.1
    listing = api.request(
        "GET", f"/api/v1/appointments?doctor_id={doctor.pk}&start_date={day}&limit=10", expect=200
    )["data"]
    assert listing["pagination"] == {"page": 1, "limit": 10, "total": 1, "total_pages": 1}
    (item,) = listing["appointments"]
    assert {
        "id", "patient_id", "patient_name", "patient_phone", "doctor_id", "doctor_name",
        "scheduled_time", "duration_minutes", "status", "reason", "created_at", "updated_at",
    } <= set(item)  # fmt: skip
    assert (item["patient_name"], item["patient_phone"], item["doctor_name"]) == (
        "Rajesh Kumar",
        "+919876543210",
        "Dr. Priya Sharma",
    )

    # §4.2
    detail = api.request("GET", f"/api/v1/appointments/{appointment_id}", expect=200)["data"]
    assert {"id", "name", "phone", "date_of_birth", "language_preference"} <= set(detail["patient"])
    assert {"id", "name", "specialization", "phone"} <= set(detail["doctor"])
    assert {
        "scheduled_time", "duration_minutes", "status", "reason", "notes", "call_sid",
        "created_at", "updated_at",
    } <= set(detail)  # fmt: skip
    assert detail["notes"] == "Patient prefers Hindi"

    # §4.4
    updated = api.request(
        "PUT",
        f"/api/v1/appointments/{appointment_id}",
        json={
            "scheduled_time": utc_z(half_past_ten),
            "reason": "Follow-up checkup",
            "notes": "Rescheduled by patient request",
        },
        expect=200,
    )
    assert updated["message"] == "Appointment updated. SMS notification sent to patient."
    assert updated["data"]["id"] == appointment_id
    assert updated["data"]["scheduled_time"] == utc_z(half_past_ten)
    assert updated["data"]["reason"] == "Follow-up checkup"
    parse_z(updated["data"]["updated_at"])

    # §6.2 sees the moved appointment, in local clock time.
    schedule = api.request("GET", f"/api/v1/doctors/{doctor.pk}/schedule?date={day}", expect=200)[
        "data"
    ]
    assert (schedule["doctor_id"], schedule["doctor_name"], schedule["date"]) == (
        doctor.pk,
        "Dr. Priya Sharma",
        day,
    )
    (booked,) = schedule["appointments"]
    assert {
        key: booked[key] for key in ("id", "patient_name", "start_time", "end_time", "status")
    } == {
        "id": appointment_id,
        "patient_name": "Rajesh Kumar",
        "start_time": "10:30",
        "end_time": "11:00",
        "status": "scheduled",
    }
    assert schedule["total_appointments"] == 1
    assert schedule["available_slots"] == 15
    week = api.request(
        "GET", f"/api/v1/doctors/{doctor.pk}/schedule?date={day}&week=true", expect=200
    )["data"]
    assert week["total_appointments"] == 1 and len(week["days"]) == 7

    # §4.5
    cancelled = api.request(
        "DELETE", f"/api/v1/appointments/{appointment_id}?reason=Patient%20unavailable", expect=200
    )
    assert cancelled["message"] == "Appointment cancelled successfully. SMS notification sent."
    assert "data" not in cancelled
    after_cancel = api.request("GET", f"/api/v1/appointments/{appointment_id}", expect=200)["data"]
    assert after_cancel["status"] == "cancelled"
    assert after_cancel["cancellation_reason"] == "Patient unavailable"
    assert api.request("GET", slots_path, expect=200)["data"]["total_slots"] == 16


@pytest.mark.live
def test_doctors_and_call_logs_as_documented(api, world):
    api.login("admin@clinic.com", PASSWORD)
    doctor = world["doctor"]
    patient = PatientFactory(clinic=world["clinic"], name="Rajesh Kumar", phone="+919876543210")
    booked = AppointmentFactory(clinic=world["clinic"], patient=patient, doctor=doctor)
    call = CallLogFactory(
        clinic=world["clinic"],
        patient=patient,
        call_sid="CA1234567890abcdef",
        to_number="+911234567890",
        duration_seconds=125,
        transcript="Patient called to book appointment...",
        summary="Appointment booked",
        sentiment="positive",
        intents_detected=["book_appointment", "ask_doctor_availability"],
        appointment_created=booked,
    )
    CallLogFactory(clinic=world["clinic"], patient=patient, direction="outbound")

    # §6.1
    doctors = api.request("GET", "/api/v1/doctors?specialization=General%20Physician", expect=200)
    (listed,) = doctors["data"]["doctors"]
    assert {
        "id": listed["id"], "name": listed["name"], "specialization": listed["specialization"],
        "phone": listed["phone"], "email": listed["email"], "available": listed["available"],
    } == {
        "id": doctor.pk, "name": "Dr. Priya Sharma", "specialization": "General Physician",
        "phone": "+911234567890", "email": "priya.sharma@clinic.com", "available": True,
    }  # fmt: skip
    assert set(listed["working_hours"]) == {
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    }  # fmt: skip
    assert listed["working_hours"]["monday"] == ["09:00-13:00", "14:00-18:00"]
    none = api.request("GET", "/api/v1/doctors?available=false", expect=200)["data"]["doctors"]
    assert none == []

    # §7.1
    calls = api.request(
        "GET", f"/api/v1/call-logs?patient_id={patient.pk}&direction=inbound", expect=200
    )["data"]
    assert calls["pagination"] == {"page": 1, "limit": 20, "total": 1, "total_pages": 1}
    (item,) = calls["call_logs"]
    assert {
        "id", "call_sid", "patient_id", "patient_name", "direction", "from_number", "to_number",
        "duration_seconds", "status", "transcript", "summary", "sentiment", "created_at",
    } <= set(item)  # fmt: skip
    assert (item["id"], item["call_sid"], item["patient_name"], item["duration_seconds"]) == (
        call.pk,
        "CA1234567890abcdef",
        "Rajesh Kumar",
        125,
    )

    # §7.2
    detail = api.request("GET", f"/api/v1/call-logs/{call.pk}", expect=200)["data"]
    assert detail["patient"] == {"id": patient.pk, "name": "Rajesh Kumar", "phone": "+919876543210"}
    assert detail["intents_detected"] == ["book_appointment", "ask_doctor_availability"]
    assert detail["appointment_created"] == booked.pk
    assert {
        "direction", "duration_seconds", "status", "transcript", "summary", "sentiment",
        "created_at",
    } <= set(detail)  # fmt: skip
    api.request("GET", "/api/v1/call-logs/987654", expect=404)


@pytest.mark.live
def test_signed_out_and_signed_in_wrongly_over_http(api, world):
    api.request("GET", "/api/v1/appointments", expect=401)
    api.token = "garbage"
    api.request("GET", "/api/v1/appointments", expect=401)
    api.login("admin@clinic.com", PASSWORD)
    api.request("POST", "/api/v1/auth/logout", json={}, expect=200)
    api.request("GET", "/api/v1/auth/me", expect=401)


# --- (2) schemathesis against the live /openapi.json -------------------------------------------


SCHEMATHESIS_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))


def _checks() -> list:
    """No 5xx; status code, content type and body as documented for that operation."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]


@pytest.mark.live
def test_schemathesis_finds_no_server_error_and_no_schema_break(live_server, world):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation import GenerationMode

    checks = _checks()
    clinic, admin = world["clinic"], world["admin"]
    patient = PatientFactory(clinic=clinic)
    appointment = AppointmentFactory(clinic=clinic, patient=patient, doctor=world["doctor"])
    call = CallLogFactory(clinic=clinic, patient=patient, appointment_created=appointment)
    real_ids = {
        "/api/v1/appointments/{id}": appointment.pk,
        "/api/v1/patients/{id}": patient.pk,
        "/api/v1/doctors/{id}": world["doctor"].pk,
        "/api/v1/doctors/{id}/schedule": world["doctor"].pk,
        "/api/v1/call-logs/{id}": call.pk,
    }
    session = issue_tokens(admin)

    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    calls = 0

    def fuzz(operation, mode):
        @given(case=operation.as_strategy(generation_mode=mode), use_real_id=st.booleans())
        @hypothesis_settings(
            max_examples=SCHEMATHESIS_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case, use_real_id):
            nonlocal calls
            if use_real_id and operation.path in real_ids and case.path_parameters:
                case.path_parameters["id"] = real_ids[operation.path]
            # Signing out would end the shared session: sign-outs get a login of their own.
            token = (
                issue_tokens(admin)["access_token"]
                if operation.path == "/api/v1/auth/logout"
                else session["access_token"]
            )
            calls += 1
            case.call_and_validate(
                base_url=live_server.url,
                headers={"Authorization": f"Bearer {token}"},
                checks=checks,
                timeout=30,
            )

        run()

    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode)
            except Unsatisfiable:  # nothing to make invalid (GET /admin/health has no input)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # collect every failure, report all
                failures.append(f"{operation.label} [{mode.value}]: {exc}")

    assert calls >= len(operations) * 4, (calls, failures[:3])
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)


@pytest.mark.live
def test_schemathesis_stateful_sequences(live_server, world):
    """Chains of calls (create, then read/update/cancel what was created) on inferred links."""
    import schemathesis
    from hypothesis import HealthCheck, Phase
    from hypothesis import settings as hypothesis_settings

    checks = _checks()
    admin = world["admin"]
    session = issue_tokens(admin)
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json").exclude(
        path="/api/v1/auth/logout"
    )
    base = schema.as_state_machine()
    steps = 0

    class Machine(base):
        def get_call_kwargs(self, case):
            return {
                "base_url": live_server.url,
                "headers": {"Authorization": f"Bearer {session['access_token']}"},
                "timeout": 30,
            }

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            nonlocal steps
            steps += 1
            case.validate_response(response, checks=checks)

    Machine.run(
        settings=hypothesis_settings(
            max_examples=SCHEMATHESIS_EXAMPLES,
            stateful_step_count=8,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    assert steps >= SCHEMATHESIS_EXAMPLES


# --- (3) A real Daphne process ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_env() -> dict[str, str]:
    """Environment that points a fresh process at this test run's database."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(name)}
    parts = urlsplit(os.environ["DATABASE_URL"])
    return {"DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))}


def _wait_until_up(process: subprocess.Popen, url: str, log: Path, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"daphne did not answer within {seconds}s:\n{log.read_text()}")


@pytest.mark.live
def test_through_a_real_daphne_process(world, tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    patient = PatientFactory(clinic=world["clinic"])
    # Daphne runs with the production hashers, whatever this test run uses.
    admin = world["admin"]
    hasher = PBKDF2PasswordHasher()
    admin.password = hasher.encode(PASSWORD, hasher.salt())
    admin.save(update_fields=["password"])
    env = {
        **os.environ,
        **_database_env(),
        "DJANGO_SETTINGS_MODULE": "vaani.settings",
        "PYTHONPATH": str(BASE_DIR),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "daphne.log"
    daphne = Path(sys.executable).with_name("daphne")
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(port), "vaani.asgi:application"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, f"{base}/api/v1/admin/health", log)
        with httpx.Client(base_url=base, timeout=30) as http:
            health = http.get("/api/v1/admin/health")
            assert health.status_code == 200, health.text
            assert health.json()["components"]["database"]["status"] == "healthy"
            assert "X-RateLimit-Limit" in health.headers

            login = http.post(
                "/api/v1/auth/login", json={"username": "admin@clinic.com", "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = login.json()["data"]["access_token"]

            booking = http.post(
                "/api/v1/appointments",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "patient_id": patient.pk,
                    "doctor_id": world["doctor"].pk,
                    "scheduled_time": utc_z(world["at"]("11:00")),
                    "duration_minutes": 30,
                    "reason": "Annual checkup",
                },
            )
            assert booking.status_code == 201, booking.text
            assert booking.json()["data"]["scheduled_time"] == utc_z(world["at"]("11:00"))
            assert booking.headers["x-request-id"]
            again = http.post(
                "/api/v1/appointments",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "patient_id": patient.pk,
                    "doctor_id": world["doctor"].pk,
                    "scheduled_time": utc_z(world["at"]("11:15")),
                },
            )
            assert again.status_code == 409, again.text
        # The booking went to this test's database.
        assert world["doctor"].appointments.filter(patient=patient).count() == 1
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- manage.py check --deploy ------------------------------------------------------------------


def test_check_deploy_passes_with_a_production_environment(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_", "SECURE_", "DEBUG"))
    }
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="api.vaani-engine.com",
        VAANI_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout


def test_check_deploy_catches_an_insecure_environment(tmp_path):
    """The check above would be worthless if it could not fail."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DEBUG="0",
        SECRET_KEY="short",
        ALLOWED_HOSTS="api.vaani-engine.com",
        VAANI_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr
