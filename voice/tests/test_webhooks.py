"""Twilio voice webhooks, signed for real with the twilio library's validator."""

import os
import subprocess
import sys

import pytest
from twilio.request_validator import RequestValidator

from clinic.tests.factories import ClinicPhoneNumberFactory, PatientFactory
from voice.models import CallLog, CallStatus
from voice.tests.factories import CallLogFactory

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://clinic.example.com"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_SKIP_SIGNATURE_CHECK = False
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.ALLOWED_HOSTS = ["testserver", "clinic.example.com"]
    return settings


def signed_post(client, path, params, *, url=None, token=TOKEN, **extra):
    signature = RequestValidator(token).compute_signature(url or PUBLIC + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature, **extra)


@pytest.fixture
def dialled(clinic):
    return ClinicPhoneNumberFactory(clinic=clinic, number="+911234567890")


def call_params(**overrides):
    params = {
        "CallSid": "CA1234567890abcdef",
        "AccountSid": "AC1234567890abcdef",
        "From": "+919876543210",
        "To": "+911234567890",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    params.update(overrides)
    return params


def test_incoming_call_answers_stream_twiml_and_logs_the_call(client, clinic, dialled):
    patient = PatientFactory(clinic=clinic, phone="+919876543210", language_preference="en")
    response = signed_post(client, "/api/v1/voice/incoming", call_params())
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    body = response.content.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "Please wait while we connect you to our AI assistant." in body
    assert '<Stream url="wss://clinic.example.com/api/v1/voice/stream/CA1234567890abcdef">' in body
    assert '<Parameter name="patient_phone" value="+919876543210" />' in body
    assert '<Parameter name="token" value="' in body
    call = CallLog.objects.get(call_sid="CA1234567890abcdef")
    assert (call.clinic, call.patient, call.status) == (clinic, patient, CallStatus.RINGING)
    assert call.stream_token_hash and call.stream_token_hash not in body


def test_greeting_follows_the_patients_language(client, clinic, dialled):
    PatientFactory(clinic=clinic, phone="+919876543210", language_preference="hi")
    body = signed_post(client, "/api/v1/voice/incoming", call_params()).content.decode()
    assert "नमस्ते" in body and 'language="hi-IN"' in body


def test_retried_incoming_webhook_does_not_duplicate_the_call(client, dialled):
    signed_post(client, "/api/v1/voice/incoming", call_params())
    signed_post(client, "/api/v1/voice/incoming", call_params())
    assert CallLog.objects.filter(call_sid="CA1234567890abcdef").count() == 1


def test_unknown_dialled_number_gets_a_polite_message(client, dialled):
    response = signed_post(client, "/api/v1/voice/incoming", call_params(To="+911111111111"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "not set up with our clinic assistant" in body and "<Hangup />" in body
    assert not CallLog.objects.exists()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c, p: c.post("/api/v1/voice/incoming", p),  # no signature at all
        lambda c, p: signed_post(c, "/api/v1/voice/incoming", p, token="f" * 32),  # other token
        lambda c, p: signed_post(  # signed for another URL
            c, "/api/v1/voice/incoming", p, url="https://evil.example.com/api/v1/voice/incoming"
        ),
        lambda c, p: c.post(  # params changed after signing
            "/api/v1/voice/incoming",
            {**p, "From": "+919999999999"},
            HTTP_X_TWILIO_SIGNATURE=RequestValidator(TOKEN).compute_signature(
                PUBLIC + "/api/v1/voice/incoming", p
            ),
        ),
    ],
)
def test_bad_or_missing_signature_is_refused_and_changes_nothing(client, dialled, tamper):
    response = tamper(client, call_params())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert not CallLog.objects.exists()


def test_without_public_base_url_the_request_url_is_signed(client, dialled, settings):
    settings.PUBLIC_BASE_URL = ""
    response = signed_post(
        client,
        "/api/v1/voice/incoming",
        call_params(),
        url="http://testserver/api/v1/voice/incoming",
    )
    assert response.status_code == 200


def test_forwarded_headers_are_believed_only_from_trusted_proxies(client, dialled, settings):
    settings.PUBLIC_BASE_URL = ""
    url = "https://clinic.example.com/api/v1/voice/incoming"
    headers = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "clinic.example.com"}
    settings.TRUSTED_PROXIES = []
    assert (
        signed_post(client, "/api/v1/voice/incoming", call_params(), url=url, **headers).status_code
        == 403
    )
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert (
        signed_post(client, "/api/v1/voice/incoming", call_params(), url=url, **headers).status_code
        == 200
    )


@pytest.mark.parametrize(("debug", "skipped"), [("0", False), ("1", True)])
def test_skipping_the_signature_check_only_works_with_debug(debug, skipped):
    env = {**os.environ, "DEBUG": debug, "SECRET_KEY": "x" * 50, "TWILIO_SKIP_SIGNATURE_CHECK": "1"}
    code = "import vaani.settings as s; print(s.TWILIO_SKIP_SIGNATURE_CHECK)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(skipped)


def test_with_the_check_skipped_unsigned_requests_pass(client, dialled, settings):
    settings.TWILIO_SKIP_SIGNATURE_CHECK = True
    assert client.post("/api/v1/voice/incoming", call_params()).status_code == 200


def test_missing_fields_are_a_validation_error(client, dialled):
    response = signed_post(client, "/api/v1/voice/incoming", {"From": "+919876543210"})
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"CallSid", "To"}


def test_get_is_not_allowed(client):
    assert client.get("/api/v1/voice/incoming").status_code == 405


def test_status_callback_updates_status_and_duration(client, clinic):
    call = CallLogFactory(
        clinic=clinic, call_sid="CA1", status=CallStatus.IN_PROGRESS, duration_seconds=0
    )
    response = signed_post(
        client,
        "/api/v1/voice/status",
        {"CallSid": "CA1", "CallStatus": "completed", "CallDuration": "125"},
    )
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert response.json()["message"] == "Call status updated"
    call.refresh_from_db()
    assert (call.status, call.duration_seconds) == (CallStatus.COMPLETED, 125)
    assert call.ended_at is not None


def test_late_or_repeated_status_callbacks_change_nothing_final(client, clinic):
    call = CallLogFactory(
        clinic=clinic, call_sid="CA2", status=CallStatus.RINGING, duration_seconds=0
    )
    post = lambda status, duration="": signed_post(  # noqa: E731
        client,
        "/api/v1/voice/status",
        {"CallSid": "CA2", "CallStatus": status, "CallDuration": duration},
    )
    post("in-progress")
    post("completed", "60")
    post("in-progress")  # out of order
    post("ringing")
    post("failed", "0")  # a second final status
    call.refresh_from_db()
    assert (call.status, call.duration_seconds) == (CallStatus.COMPLETED, 60)


def test_status_callback_rejects_unknown_status_and_bad_duration(client, clinic):
    CallLogFactory(clinic=clinic, call_sid="CA3", status=CallStatus.RINGING)
    bad_status = signed_post(
        client, "/api/v1/voice/status", {"CallSid": "CA3", "CallStatus": "exploded"}
    )
    bad_duration = signed_post(
        client,
        "/api/v1/voice/status",
        {"CallSid": "CA3", "CallStatus": "completed", "CallDuration": "x"},
    )
    assert bad_status.status_code == bad_duration.status_code == 400
    assert CallLog.objects.get(call_sid="CA3").status == CallStatus.RINGING


def test_status_for_unknown_call_is_not_found(client):
    response = signed_post(
        client, "/api/v1/voice/status", {"CallSid": "CA404", "CallStatus": "completed"}
    )
    assert response.status_code == 404
