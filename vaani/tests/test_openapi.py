"""``/openapi.json``, ``/docs``, ``/redoc`` ("Interactive API Documentation"), and the response
envelope and request ids that the schema describes (§1.3, §10)."""

import re

import pytest
from openapi_spec_validator import validate as validate_openapi
from rest_framework.test import APIClient

from clinic.tests.factories import AppointmentFactory, DoctorFactory, PatientFactory

pytestmark = pytest.mark.django_db

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# Every HTTP operation of the API reference, as written there (§2-§8, §12).
SPEC_OPERATIONS = [
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/appointments"),
    ("get", "/api/v1/appointments/{appointment_id}"),
    ("post", "/api/v1/appointments"),
    ("put", "/api/v1/appointments/{appointment_id}"),
    ("delete", "/api/v1/appointments/{appointment_id}"),
    ("get", "/api/v1/appointments/available-slots"),
    ("get", "/api/v1/patients"),
    ("get", "/api/v1/patients/{patient_id}"),
    ("post", "/api/v1/patients"),
    ("put", "/api/v1/patients/{patient_id}"),
    ("get", "/api/v1/doctors"),
    ("get", "/api/v1/doctors/{doctor_id}/schedule"),
    ("get", "/api/v1/call-logs"),
    ("get", "/api/v1/call-logs/{call_log_id}"),
    ("get", "/api/v1/admin/health"),
    ("post", "/api/v1/voice/incoming"),  # §3.1, a Twilio webhook (TwiML), added by voice/openapi.py
    ("post", "/api/v1/voice/status"),  # §3.2
    ("get", "/api/v1/admin/dashboard"),  # §8.1
    ("get", "/api/v1/admin/analytics"),  # §8.3
    ("post", "/api/v1/admin/webhooks"),  # §12.1
]
PUBLIC_OPERATIONS = {
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("get", "/api/v1/admin/health"),
}
METHODS = {"get", "post", "put", "patch", "delete"}
# Answers with only a message (§4.5 cancel; sign-out).
NO_DATA = {("delete", "/api/v1/appointments/{id}"), ("post", "/api/v1/auth/logout")}
ERROR_CODES = {
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "UNPROCESSABLE_ENTITY",
    "RATE_LIMIT_EXCEEDED",
    "INTERNAL_SERVER_ERROR",
    "SERVICE_UNAVAILABLE",
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/openapi.json")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    return response.json()


def _shape(path: str) -> str:
    """Parameter names are not part of a URL: ``/x/{appointment_id}`` is ``/x/{}``."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = schema["components"]["schemas"][name]
    return node


# Twilio's webhooks take forms and answer TwiML, signed by Twilio instead of a token: they
# are checked by their own test below, not by the JSON API's rules.
TWILIO_WEBHOOKS = {
    ("post", "/api/v1/voice/incoming"),
    ("post", "/api/v1/voice/status"),
    ("post", "/api/v1/sms/incoming"),
    ("post", "/api/v1/sms/status"),
}


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS and (method, path) not in TWILIO_WEBHOOKS:
                yield method, path, operation


def test_twilio_webhooks_are_documented_as_signed_forms(schema):
    for method, path in TWILIO_WEBHOOKS:
        operation = schema["paths"][path][method]
        assert "application/x-www-form-urlencoded" in operation["requestBody"]["content"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "X-Twilio-Signature" in headers
        assert operation["security"] == []
        for code in ("400", "403"):
            _assert_error_body(schema, operation["responses"][code], (method, path, code))
    incoming = schema["paths"]["/api/v1/voice/incoming"]["post"]["responses"]["200"]
    assert "text/xml" in incoming["content"]


# --- The document ----------------------------------------------------------------------------


def test_is_a_valid_openapi_3_document(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] and schema["info"]["version"] == "2.0.0"
    validate_openapi(schema)  # raises with the offending part when invalid


@pytest.mark.parametrize(("method", "path"), SPEC_OPERATIONS)
def test_documents_every_operation_of_the_api_reference(schema, method, path):
    by_shape = {_shape(p): item for p, item in schema["paths"].items()}
    assert _shape(path) in by_shape, f"{path} is not in /openapi.json"
    assert method in by_shape[_shape(path)], f"{method.upper()} {path} is not documented"


def test_paths_are_versioned_and_have_no_trailing_slash(schema):
    for path in schema["paths"]:
        assert path.startswith("/api/v1/"), path
        assert not path.endswith("/"), path


def test_the_documented_paths_are_the_routed_ones(schema, api):
    """No path that the server would answer 404 (or redirect) for."""
    for _, path, _ in _operations(schema):
        url = path.replace("{id}", "987654")
        response = api.options(url)
        assert response.status_code == 200, (url, response.status_code)


# --- The bodies ------------------------------------------------------------------------------


def test_success_bodies_are_the_envelope(schema):
    for method, path, operation in _operations(schema):
        if path == "/api/v1/admin/health":
            continue
        successes = {c: r for c, r in operation["responses"].items() if c.startswith("2")}
        assert successes, f"{method} {path} has no success response"
        for code, response in successes.items():
            body = _resolve(schema, response["content"]["application/json"]["schema"])
            assert body["type"] == "object"
            assert {"success", "timestamp"} <= set(body["required"]), (method, path, code)
            assert body["properties"]["success"]["enum"] == [True]
            assert body["properties"]["timestamp"]["format"] == "date-time"
            assert "message" in body["properties"]
            if (method, path) not in NO_DATA:
                assert "data" in body["required"], (method, path, code)


def test_data_is_documented_inside_the_envelope(schema):
    listing = schema["paths"]["/api/v1/appointments"]["get"]["responses"]["200"]
    data = _resolve(schema, listing["content"]["application/json"]["schema"]["properties"]["data"])
    assert {"appointments", "pagination"} <= set(data["required"])
    item = _resolve(schema, data["properties"]["appointments"]["items"])
    assert {"id", "patient_id", "doctor_id", "scheduled_time", "status"} <= set(item["properties"])
    pagination = data["properties"]["pagination"]
    assert set(pagination["required"]) == {"page", "limit", "total", "total_pages"}

    login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]["200"]
    token = _resolve(schema, login["content"]["application/json"]["schema"]["properties"]["data"])
    assert {"access_token", "token_type", "expires_in", "user"} <= set(token["properties"])


def _assert_error_body(schema, response, where):
    body = _resolve(schema, response["content"]["application/json"]["schema"])
    assert set(body["required"]) >= {"success", "error", "timestamp"}, where
    error = _resolve(schema, body["properties"]["error"])
    assert set(error["required"]) >= {"code", "message", "details"}, where
    code = _resolve(schema, error["properties"]["code"])
    assert set(code["enum"]) >= ERROR_CODES, where
    assert error["properties"]["details"]["type"] == "object", where


def test_errors_are_documented_with_the_error_body(schema):
    for method, path, operation in _operations(schema):
        responses = operation["responses"]
        expected = {"400", "429"}
        if (method, path) not in PUBLIC_OPERATIONS:
            expected |= {"401", "403", "404"}
        for code in sorted(expected):
            assert code in responses, f"{method.upper()} {path} does not document {code}"
            _assert_error_body(schema, responses[code], (method, path, code))
        # Anything else (500, 503, ...) still comes in the same body.
        _assert_error_body(schema, responses["default"], (method, path, "default"))


def test_booking_documents_conflict_and_rate_limit_headers(schema):
    create = schema["paths"]["/api/v1/appointments"]["post"]
    assert "409" in create["responses"]
    headers = create["responses"]["201"]["headers"]
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers)


def test_health_is_documented_without_the_envelope(schema):
    operation = schema["paths"]["/api/v1/admin/health"]["get"]
    for code in ("200", "503"):
        body = _resolve(
            schema, operation["responses"][code]["content"]["application/json"]["schema"]
        )
        assert "success" not in body["properties"], code
        assert {"status", "timestamp", "version", "components"} <= set(body["properties"])


def test_bearer_jwt_is_documented_and_required_where_it_is(schema):
    schemes = schema["components"]["securitySchemes"]
    bearer = [n for n, s in schemes.items() if (s["type"], s.get("scheme")) == ("http", "bearer")]
    assert bearer, schemes
    for method, path, operation in _operations(schema):
        names = {name for requirement in operation.get("security", []) for name in requirement}
        if (method, path) in PUBLIC_OPERATIONS:
            assert {} in operation.get("security", [{}]), (method, path)
        else:
            assert names & set(bearer), f"{method.upper()} {path} does not say it needs a token"


# --- The interactive documentation ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_interactive_documentation_pages(path):
    response = APIClient().get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<html" in page.lower()
    assert "/openapi.json" in page


# --- The envelope as sent ----------------------------------------------------------------------


def test_success_bodies_have_success_data_message_timestamp(api, clinic, at):
    patient, doctor = PatientFactory(clinic=clinic), DoctorFactory(clinic=clinic)
    created = api.post(
        "/api/v1/appointments",
        {
            "patient_id": patient.pk,
            "doctor_id": doctor.pk,
            "scheduled_time": at("10:00").isoformat(),
        },
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"success", "data", "message", "timestamp"}
    assert body["success"] is True
    assert body["message"] == "Appointment created successfully. SMS confirmation sent."
    assert TIMESTAMP.match(body["timestamp"])
    assert TIMESTAMP.match(body["data"]["scheduled_time"])

    listing = api.get("/api/v1/appointments").json()
    assert set(listing) <= {"success", "data", "message", "timestamp"}
    assert {"success", "data", "timestamp"} <= set(listing)

    cancelled = api.delete(f"/api/v1/appointments/{body['data']['id']}").json()
    assert set(cancelled) == {"success", "message", "timestamp"}  # nothing to return: no data


def test_error_bodies_have_the_documented_shape(api):
    response = api.get("/api/v1/appointments/987654")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"success", "error", "timestamp"}
    assert body["success"] is False
    assert body["error"] == {
        "code": "NOT_FOUND",
        "message": "Appointment not found",
        "details": {"resource": "appointment", "id": 987654},
    }
    assert TIMESTAMP.match(body["timestamp"])


def test_unknown_api_paths_answer_the_error_body(api):
    response = api.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    # ...and there is no trailing-slash redirect.
    slash = api.get("/api/v1/appointments/")
    assert slash.status_code == 404


def test_request_id_is_made_when_missing(api):
    first, second = api.get("/api/v1/appointments"), api.get("/api/v1/appointments")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize("path", ["/api/v1/appointments", "/api/v1/admin/health", "/openapi.json"])
def test_a_sane_request_id_is_kept(api, path):
    response = api.get(path, HTTP_X_REQUEST_ID="req-2026.01.20_abc123")
    assert response["X-Request-ID"] == "req-2026.01.20_abc123"


@pytest.mark.parametrize(
    "supplied",
    [
        "short",
        "x" * 65,
        "abc def ghi jkl",
        "evil\r\nSet-Cookie: a=b",
        "<script>alert(1)</script>",
        "../../etc/passwd%00",
        "id;DROP TABLE audit",
    ],
)
def test_a_malicious_request_id_is_replaced(api, clinic, supplied):
    from audit.models import AuditEntry

    response = api.get("/api/v1/appointments", HTTP_X_REQUEST_ID=supplied)
    assert response.status_code == 200
    assert response["X-Request-ID"] != supplied
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    # The audit trail records the id that was answered, not the caller's string.
    entry = AuditEntry.objects.latest("pk")
    assert entry.request_id == response["X-Request-ID"]


def test_request_id_is_on_error_responses_too(api):
    response = api.get("/api/v1/appointments/987654", HTTP_X_REQUEST_ID="trace-0001-abcd")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "trace-0001-abcd"
    unauthenticated = APIClient().get("/api/v1/appointments", HTTP_X_REQUEST_ID="trace-0002-abcd")
    assert unauthenticated["X-Request-ID"] == "trace-0002-abcd"


def test_datetimes_are_utc_with_z(api, clinic):
    AppointmentFactory(clinic=clinic)
    item = api.get("/api/v1/appointments").json()["data"]["appointments"][0]
    for field in ("scheduled_time", "created_at", "updated_at"):
        assert TIMESTAMP.match(item[field]), (field, item[field])
