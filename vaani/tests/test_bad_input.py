"""Bad input never breaks the API: every answer is a 4xx in the error envelope of §10.

Each write endpoint gets malformed bodies, non-object bodies, wrong types, bad
dates, huge numbers, control characters, lone surrogates and very long strings;
each list gets bad query values. Nothing that was stored may change.
"""

import json
import re

import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import RevokedSession, User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from audit.models import AuditEntry
from clinic.models import Appointment, Doctor, Patient
from clinic.tests.factories import AppointmentFactory, DoctorFactory, PatientFactory
from voice.models import CallLog
from voice.tests.factories import CallLogFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"
UTC_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CODES = {
    400: {"VALIDATION_ERROR"},
    401: {"UNAUTHORIZED"},
    403: {"FORBIDDEN"},
    404: {"NOT_FOUND"},
    405: {"METHOD_NOT_ALLOWED"},
    406: {"NOT_ACCEPTABLE"},
    409: {"CONFLICT"},
    415: {"UNSUPPORTED_MEDIA_TYPE"},
    422: {"UNPROCESSABLE_ENTITY"},
}
HUGE = 10**30
LONG = "ह" * 6000  # longer than any text field, and not ASCII
SURROGATE = "\ud800"  # valid JSON escape, not valid Unicode

# --- Values that are wrong for a kind of field, whatever the endpoint ----------------------

BAD_ID = ["abc", "", {"a": 1}, [1], None, True, 1.5, "1.5", -7, 0, -HUGE, "9" * 2000, SURROGATE]
BAD_ID_OR_ABSENT = [*BAD_ID, HUGE]  # a huge id is well-formed but names nothing: 404
BAD_TEXT = [{"a": 1}, [1], None, True, LONG, "a\x00b", SURROGATE]
BAD_NAME = [*BAD_TEXT, "", "   "]
BAD_PHONE = [
    "9876543210",
    "+91",
    "abc",
    "",
    None,
    12345,
    {"a": 1},
    [1],
    "+" + "9" * 40,
    "+919876543210\x00",
    SURROGATE,
    LONG,
]
BAD_DATE = [
    "2026-13-45",
    "yesterday",
    "15/05/1985",
    "",
    12345,
    {"a": 1},
    [1],
    True,
    "0000-01-01",
    "0001-01-01",
    "1985-05-15T00:00:00Z",
    "9999-12-31",
    SURROGATE,
]
BAD_DATETIME = [
    "2026-13-45T10:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-01-25T25:00:00Z",
    "yesterday",
    "tomorrow at 10",
    "",
    12345,
    HUGE,
    {"a": 1},
    [1],
    None,
    True,
    "2026-01-25T14:30:00",  # no offset
    "2020-01-01T10:00:00Z",  # past
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:30",
    SURROGATE,
]
BAD_DURATION = ["abc", "", None, {"a": 1}, [1], True, 1.5, -30, 0, 7, 31, HUGE, -HUGE, "9" * 2000]
BAD_LANGUAGE = ["fr", "HI", "", None, 1, {"a": 1}, [1], True, SURROGATE]
BAD_BOOL = ["maybe", 2, -1, 1.5, None, {"a": 1}, [1], "", SURROGATE, HUGE]
BAD_EMAIL = ["nope", "a@", "@b.com", {"a": 1}, [1], None, "x" * 300 + "@clinic.com", SURROGATE]
BAD_HOURS = [
    "9-5",
    {"monday": ["9-5"]},
    {"monday": ["09:00-13:00", "12:00-14:00"]},
    {"funday": []},
    {SURROGATE: []},
    {"monday": [SURROGATE]},
    {"monday": [None]},
    {"monday": [{"a": 1}]},
    {"monday": {"a": 1}},
    {"monday": "09:00-13:00"},
    {"monday": ["09:00-13:00"] * 500},
    [1],
    None,
    HUGE,
    LONG,
]

# Whole bodies that are not a JSON object, or not JSON at all.
MALFORMED = [
    b"{",
    b'{"name": ',
    b"{'name': 'single quotes'}",
    b'{"name": "x",}',
    b"[1, 2",
    b"nul",
    b"\xff\xfe\x00garbage",
    b'{"name": NaN}',
    b'{"name": Infinity}',
    b'{"patient_id": ' + b"9" * 5000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
]
EDGE_DAYS = ["0001-01-01", "0001-01-07", "0002-01-01", "9998-12-31", "9999-12-25", "9999-12-31"]
NOT_AN_OBJECT = [[], [{}], [1, 2], "a string", "", None, 0, 1, True, False, 1e300]


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.RATE_LIMITS = dict.fromkeys(settings.RATE_LIMITS, 1_000_000)


@pytest.fixture
def world(clinic, other_clinic, at):
    patient = PatientFactory(clinic=clinic, name="Rajesh Kumar", phone="+919876543210")
    doctor = DoctorFactory(clinic=clinic)
    appointment = AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=at("10:00")
    )
    call = CallLogFactory(clinic=clinic, patient=patient)
    theirs = PatientFactory(clinic=other_clinic)
    AppointmentFactory(clinic=other_clinic, patient=theirs, scheduled_time=at("10:00"))
    return {
        "patient": patient.pk,
        "doctor": doctor.pk,
        "appointment": appointment.pk,
        "call": call.pk,
        "time": at("15:00").isoformat(),
        "day": at("15:00").date().isoformat(),
    }


def snapshot() -> dict:
    models = (
        Patient,
        Doctor,
        Appointment,
        CallLog,
        User,
        AuditEntry,
        RevokedSession,
        OutstandingToken,
        BlacklistedToken,
    )
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in models}


def assert_error_envelope(response, *, status=None, what=""):
    label = f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']} {what}"
    assert 400 <= response.status_code < 500, (label, response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, (label, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), label
    body = response.json()
    assert set(body) == {"success", "error", "timestamp"}, (label, body)
    assert body["success"] is False
    error = body["error"]
    assert error["code"] in CODES.get(response.status_code, {"RATE_LIMIT_EXCEEDED"}), (label, body)
    assert isinstance(error["message"], str) and error["message"], label
    assert isinstance(error["details"], dict), label
    assert UTC_FORMAT.match(body["timestamp"]), label
    return error


def send(client, method, path, payload):
    # Encoded here, ASCII-only: the test client's encoder cannot write lone surrogates.
    raw = json.dumps(payload).encode()
    return getattr(client, method)(API + path, raw, content_type="application/json")


def send_raw(client, method, path, raw: bytes, content_type="application/json"):
    return getattr(client, method)(API + path, raw, content_type=content_type)


def write_endpoints(world):
    """(method, path, a valid body, {field: bad values}) for every write endpoint."""
    a, p, d = world["appointment"], world["patient"], world["doctor"]
    appointment_update = {
        "scheduled_time": BAD_DATETIME,
        "duration_minutes": BAD_DURATION,
        "doctor_id": BAD_ID_OR_ABSENT,
        "reason": BAD_TEXT,
        "notes": BAD_TEXT,
        "status": ["done", "CANCELLED", "completed", "", None, 1, {"a": 1}, [1], SURROGATE],
    }
    patient_update = {
        "phone": BAD_PHONE,
        "name": BAD_NAME,
        "date_of_birth": BAD_DATE,
        "language_preference": BAD_LANGUAGE,
    }
    doctor_update = {
        "name": BAD_NAME,
        "specialization": [v for v in BAD_TEXT if v != ""],
        "phone": [v for v in BAD_PHONE if v != ""],
        "email": BAD_EMAIL,
        "available": BAD_BOOL,
        "working_hours": BAD_HOURS,
    }
    endpoints = [
        (
            "post",
            "/appointments",
            {"patient_id": p, "doctor_id": d, "scheduled_time": world["time"]},
            {
                **appointment_update,
                "patient_id": BAD_ID_OR_ABSENT,
                "doctor_id": BAD_ID_OR_ABSENT,
                "status": ["scheduled"],  # not writable on create
            },
        ),
        (
            "post",
            "/patients",
            {"phone": "+919812345678", "name": "Asha Verma"},
            {**patient_update, "date_of_birth": [*BAD_DATE, "2999-01-01"]},
        ),
        ("post", "/doctors", {"name": "Dr. New"}, doctor_update),
    ]
    for method in ("put", "patch"):
        endpoints += [
            (method, f"/appointments/{a}", {"reason": "Checkup"}, appointment_update),
            (method, f"/patients/{p}", {"name": "Rajesh Kumar"}, patient_update),
            (method, f"/doctors/{d}", {"name": "Dr. Same"}, doctor_update),
        ]
    return endpoints


# --- Write endpoints ------------------------------------------------------------------------


def test_malformed_and_non_object_bodies_are_400(admin_api, world):
    before = snapshot()
    for method, path, _valid, _fields in write_endpoints(world):
        for raw in MALFORMED:
            response = send_raw(admin_api, method, path, raw)
            error = assert_error_envelope(response, status=400, what=raw[:30])
            assert error["code"] == "VALIDATION_ERROR"
        for payload in NOT_AN_OBJECT:
            raw = json.dumps(payload).encode()
            assert_error_envelope(send_raw(admin_api, method, path, raw), status=400, what=raw)
    assert snapshot() == before


def test_bodies_that_are_not_json_are_415(admin_api, world):
    before = snapshot()
    for method, path, valid, _fields in write_endpoints(world):
        form = "&".join(f"{k}={v}" for k, v in valid.items())
        for raw, content_type in (
            (form, "application/x-www-form-urlencoded"),
            (form, "text/plain"),
            ("<patient><name>x</name></patient>", "application/xml"),
            (json.dumps(valid), "text/json"),
        ):
            response = send_raw(admin_api, method, path, raw.encode(), content_type)
            assert_error_envelope(response, status=415, what=content_type)
        multipart = getattr(admin_api, method)(API + path, valid, format="multipart")
        assert_error_envelope(multipart, status=415, what="multipart")
    assert snapshot() == before


def test_wrong_values_for_each_field_are_refused(admin_api, world):
    for method, path, valid, fields in write_endpoints(world):
        # The valid body is valid: the refusals below are the bad field's doing.
        probe = send(admin_api, method, path, valid)
        assert probe.status_code in (200, 201), (method, path, probe.content)
        if probe.status_code == 201:
            created = probe.json()["data"]["id"]
            model = {"/appointments": Appointment, "/patients": Patient, "/doctors": Doctor}[path]
            model.objects.filter(pk=created).delete()
        before = snapshot()
        for name, bad_values in fields.items():
            for value in bad_values:
                payload = {**valid, name: value}
                response = send(admin_api, method, path, payload)
                assert_error_envelope(response, what=f"{name}={value!r:.60}")
        unknown = send(admin_api, method, path, {**valid, "nonsense": 1, SURROGATE: 2})
        assert_error_envelope(unknown, status=400, what="unknown fields")
        assert snapshot() == before, (method, path)


def test_valid_unicode_is_kept_exactly(api, world):
    name = "राजेश कुमार 👨‍⚕️ Ünïcødé"
    response = send(api, "post", "/patients", {"phone": "+919812345678", "name": name})
    assert response.status_code == 201, response.content
    created = response.json()["data"]
    assert created["name"] == name
    assert Patient.objects.get(pk=created["id"]).name == name
    listed = api.get(f"{API}/patients", {"search": "राजेश"}).json()["data"]["patients"]
    assert [p["name"] for p in listed] == [name]


def test_negative_and_odd_ids_in_paths_are_404(admin_api, world):
    before = snapshot()
    for resource in ("appointments", "patients", "doctors", "call-logs"):
        for bad in ("-1", "0", "abc", "1.5", "1e3", str(HUGE), "9" * 400, "%00", "%F0%9F%92%A9"):
            for method in ("get", "put", "patch", "delete"):
                response = getattr(admin_api, method)(
                    f"{API}/{resource}/{bad}", {"name": "x"}, format="json"
                )
                assert_error_envelope(response, what=bad)
                if bad != "0" and not bad.isdigit():
                    assert response.status_code == 404, (method, resource, bad)
    for bad in ("-1", "abc", str(HUGE)):
        assert_error_envelope(admin_api.get(f"{API}/doctors/{bad}/schedule"), status=404)
    assert snapshot() == before


# --- Auth endpoints -----------------------------------------------------------------------


def test_auth_endpoints_refuse_bad_bodies(make_client, receptionist, world):
    anonymous = make_client()
    login_fields = {
        "username": [{"a": 1}, [1], None, True, "", "x" * 300, "a\x00b", SURROGATE],
        "password": [{"a": 1}, [1], None, True, "", "x" * 200, SURROGATE],
    }
    good_login = {"username": receptionist.email, "password": DEFAULT_PASSWORD}
    refresh_values = [
        "abc",
        "",
        None,
        {"a": 1},
        [1],
        HUGE,
        SURROGATE,
        "a\x00b",
        "x" * 10_000,
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
    ]
    before = snapshot()
    for path, valid, fields in (
        ("/auth/login", good_login, login_fields),
        ("/auth/refresh", {"refresh_token": "x"}, {"refresh_token": refresh_values}),
    ):
        for raw in MALFORMED:
            assert_error_envelope(send_raw(anonymous, "post", path, raw), status=400)
        for payload in NOT_AN_OBJECT:
            raw = json.dumps(payload).encode()
            assert_error_envelope(send_raw(anonymous, "post", path, raw), status=400, what=raw)
        response = send_raw(anonymous, "post", path, b"username=a&password=b", "multipart/x")
        assert_error_envelope(response, status=415)
        form = "application/x-www-form-urlencoded"
        response = send_raw(anonymous, "post", path, b"username=a&password=b", form)
        assert_error_envelope(response, status=415)
        for name, bad_values in fields.items():
            for value in bad_values:
                response = send(anonymous, "post", path, {**valid, name: value})
                assert_error_envelope(response, what=f"{name}={value!r:.40}")
        assert_error_envelope(send(anonymous, "post", path, {**valid, "role": "owner"}), status=400)
    assert snapshot() == before


def test_logout_refuses_bad_bodies_and_keeps_the_session(make_client, receptionist, world):
    bodies = [*(json.dumps(v).encode() for v in NOT_AN_OBJECT), *MALFORMED]
    bodies += [
        json.dumps({"refresh_token": v}).encode() for v in ({"a": 1}, [1], None, True, SURROGATE)
    ]
    bodies.append(json.dumps({"refresh_token": "x", "sid": "all"}).encode())
    for raw in bodies:
        client = make_client(receptionist)
        response = send_raw(client, "post", "/auth/logout", raw)
        assert_error_envelope(response, status=400, what=raw[:40])
        assert client.get(f"{API}/auth/me").status_code == 200, raw[:40]
    client = make_client(receptionist)
    response = send_raw(client, "post", "/auth/logout", b"a=b", "application/x-www-form-urlencoded")
    assert_error_envelope(response, status=415)
    assert client.get(f"{API}/auth/me").status_code == 200
    assert not RevokedSession.objects.exists()


def test_logout_without_a_body_still_signs_out(make_client, receptionist, world):
    client = make_client(receptionist)
    assert client.post(f"{API}/auth/logout").status_code == 200
    assert client.get(f"{API}/auth/me").status_code == 401


# --- Query strings ----------------------------------------------------------------------------


def test_bad_query_values_on_reads_are_400(admin_api, world):
    d, a = world["doctor"], world["appointment"]
    bad_int = ["abc", "", "-1", "0", "1.5", "1e3", "9" * 2000, "\x00", "\u0661\u0662x"]
    bad_date = [
        "2026-13-45",
        "yesterday",
        "15/05/2026",
        "",
        "0000-01-01",
        "2026-01-01T00:00:00Z",
        "\x00",
    ]
    paging = {"page": ["0", "-1", "abc", "1.5", "9" * 5000], "limit": ["0", "101", "-5", "x"]}
    lists = {
        "/appointments": {
            "patient_id": bad_int,
            "doctor_id": bad_int,
            "status": ["bogus", "SCHEDULED", "\x00"],
            "start_date": bad_date,
            "end_date": bad_date,
            **paging,
        },
        "/patients": {
            "search": ["x" * 101, "a\x00b"],
            "language_preference": ["fr", "HI", "\x00"],
            "phone": ["abc", " 919876543210", "9876543210", "+91", "\x00"],
            **paging,
        },
        "/doctors": {
            "available": ["maybe", "2", "-1", "\x00"],
            "specialization": ["x" * 121, "a\x00b"],
            **paging,
        },
        "/call-logs": {
            "patient_id": bad_int,
            "direction": ["sideways", "INBOUND", "\x00"],
            "start_date": bad_date,
            "end_date": bad_date,
            **paging,
        },
        "/appointments/available-slots": {
            "doctor_id": bad_int,
            "date": bad_date,
            "duration_minutes": ["7", "abc", "", "-30", "9" * 2000],
        },
        f"/doctors/{d}/schedule": {"date": bad_date, "week": ["maybe", "2", "\x00"]},
    }
    base = {"/appointments/available-slots": {"doctor_id": d, "date": world["day"]}}
    before = snapshot()
    for path, params in lists.items():
        valid = base.get(path, {})
        assert admin_api.get(API + path, valid).status_code == 200, path
        AuditEntry.objects.all().delete()
        for name, values in params.items():
            for value in values:
                response = admin_api.get(API + path, {**valid, name: value})
                assert_error_envelope(response, what=f"{name}={value!r:.40}")
        # The calendar's first and last days: an answer or a refusal, never a crash.
        for name in {"start_date", "end_date", "date"} & set(params):
            for day in EDGE_DAYS:
                for extra in ({}, {"week": "true"}, {"start_date": day, "end_date": day}):
                    response = admin_api.get(API + path, {**valid, **extra, name: day})
                    if response.status_code != 200:
                        assert_error_envelope(response, what=f"{name}={day} {extra}")
        AuditEntry.objects.all().delete()
    for path in ("/appointments", "/call-logs"):
        response = admin_api.get(API + path, {"start_date": "2026-02-01", "end_date": "2026-01-01"})
        assert_error_envelope(response, status=400)
    missing = admin_api.get(f"{API}/appointments/available-slots")
    assert set(assert_error_envelope(missing, status=400)["details"]) == {"doctor_id", "date"}
    # Cancelling with a bad reason cancels nothing.
    for reason in ("x" * 501, "a\x00b"):
        response = admin_api.delete(f"{API}/appointments/{a}?reason={reason}")
        assert_error_envelope(response, status=400)
    assert snapshot() == before


def test_huge_well_formed_ids_in_queries_find_nothing(admin_api, world):
    for path, name in (
        ("/appointments", "patient_id"),
        ("/appointments", "doctor_id"),
        ("/call-logs", "patient_id"),
    ):
        response = admin_api.get(API + path, {name: str(HUGE)})
        if response.status_code == 200:
            assert response.json()["data"]["pagination"]["total"] == 0
        else:
            assert_error_envelope(response, status=400)
    response = admin_api.get(
        f"{API}/appointments/available-slots", {"doctor_id": str(HUGE), "date": world["day"]}
    )
    assert_error_envelope(response)
    response = admin_api.get(f"{API}/patients", {"page": str(HUGE)})
    if response.status_code == 200:
        assert response.json()["data"]["patients"] == []
    else:
        assert_error_envelope(response, status=400)


# --- Routing ----------------------------------------------------------------------------------


def test_unknown_paths_trailing_slashes_and_wrong_methods(admin_api, make_client, world):
    p, d, c, a = world["patient"], world["doctor"], world["call"], world["appointment"]
    before = snapshot()
    for path in (
        "/nope",
        "/patients/1/nope",
        "/v2/patients",
        "/appointments/available-slots/1",
        "",
        "/admin",
    ):
        assert_error_envelope(admin_api.get(API + path), status=404, what=path)
    assert_error_envelope(make_client().get(f"{API}/nope"), status=404)
    for path in (
        "/patients/",
        f"/patients/{p}/",
        "/appointments/",
        f"/appointments/{a}/",
        "/doctors/",
        f"/doctors/{d}/schedule/",
        "/call-logs/",
        "/appointments/available-slots/",
        "/auth/login/",
        "/auth/me/",
        "/admin/health/",
    ):
        for method in ("get", "post", "patch"):
            response = getattr(admin_api, method)(API + path, {}, format="json")
            assert_error_envelope(response, status=404, what=path)
    for method, path in (
        ("put", "/patients"),
        ("patch", "/appointments"),
        ("delete", "/patients"),
        ("delete", f"/patients/{p}"),
        ("delete", f"/doctors/{d}"),
        ("post", f"/doctors/{d}/schedule"),
        ("delete", f"/doctors/{d}/schedule"),
        ("post", "/call-logs"),
        ("put", f"/call-logs/{c}"),
        ("delete", f"/call-logs/{c}"),
        ("post", "/appointments/available-slots"),
        ("post", f"/appointments/{a}"),
        ("get", "/auth/login"),
        ("get", "/auth/logout"),
        ("post", "/auth/me"),
    ):
        response = getattr(admin_api, method)(API + path, {}, format="json")
        assert_error_envelope(response, status=405, what=path)
        assert method.upper() not in response["Allow"], path
    assert snapshot() == before


def test_unacceptable_accept_header_is_406_in_the_envelope(api, world):
    response = api.get(f"{API}/patients", HTTP_ACCEPT="application/xml")
    assert_error_envelope(response, status=406)
    assert not AuditEntry.objects.exists()


def test_a_user_of_another_clinic_gets_no_hint_from_bad_input(make_client, other_clinic, world):
    stranger = make_client(UserFactory(clinic=other_clinic, role="admin"))
    before = snapshot()
    for method in ("put", "patch"):
        for path in (
            f"/patients/{world['patient']}",
            f"/appointments/{world['appointment']}",
            f"/doctors/{world['doctor']}",
        ):
            response = send_raw(stranger, method, path, b"{not json")
            assert response.status_code in (400, 404)
            assert_error_envelope(response)
            response = send(stranger, method, path, {"name": None, "reason": None})
            assert_error_envelope(response, status=404, what=path)
    assert snapshot() == before
