"""The Twilio backend through the real twilio Client; only its HTTP transport is faked."""

import json
from urllib.parse import urlencode

import pytest
import requests
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from notifications import backends
from notifications.models import (
    Channel,
    ContactPreference,
    MessageKind,
    MessageStatus,
    NotificationSettings,
    OutboundMessage,
)

pytestmark = pytest.mark.django_db

ACCOUNT = "AC" + "1" * 32
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


def created(sid="SM" + "a" * 32, status="queued", **fields):
    return 201, {
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": fields.get("body", ""),
        "date_created": "Thu, 22 Jan 2026 10:30:00 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": fields.get("from_", "+14155550100"),
        "messaging_service_sid": None,
        "num_segments": "1",
        "price": None,
        "sid": sid,
        "status": status,
        "to": fields.get("to", "+919876543210"),
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
    }


def error(status, code, message):
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilioTransport(TwilioHttpClient):
    """Answers with canned Twilio JSON and remembers every request; no network."""

    def __init__(self, answers):
        super().__init__(pool_connections=False)
        self.answers = list(answers)
        self.requests = []

    def request(self, method, url, params=None, data=None, headers=None, auth=None, **kwargs):
        self.requests.append({"method": method, "url": url, "data": data, "auth": auth})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return Response(status, json.dumps(body), {})


@pytest.fixture
def twilio(settings, monkeypatch):
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    transport = FakeTwilioTransport([])
    monkeypatch.setattr(backends, "make_twilio_http_client", lambda: transport)
    return transport


def confirmation():
    return OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION)


def test_an_sms_is_posted_to_twilio_with_to_from_body_and_status_callback(twilio, book, at):
    twilio.answers.append(created())
    book(at("10:00"))
    message = confirmation()
    [request] = twilio.requests
    assert (request["method"], request["url"]) == ("POST", MESSAGES_URL)
    assert request["auth"] == (ACCOUNT, "0123456789abcdef0123456789abcdef")
    assert request["data"] == {
        "To": "+919876543210",
        "From": "+14155550100",
        "Body": message.body,
        "StatusCallback": f"https://clinic.example.com/api/v1/sms/status?m={message.pk}",
    }
    assert message.status == MessageStatus.SENT
    assert (message.provider_id, message.provider_status) == ("SM" + "a" * 32, "queued")
    # The form body Twilio receives.
    assert "StatusCallback=https%3A%2F%2Fclinic.example.com" in urlencode(request["data"])


def test_whatsapp_goes_through_twilios_whatsapp_channel(twilio, book, at, patient):
    ContactPreference.objects.create(patient=patient, channel=Channel.WHATSAPP)
    twilio.answers.append(created())
    book(at("10:00"))
    data = twilio.requests[0]["data"]
    assert (data["To"], data["From"]) == ("whatsapp:+919876543210", "whatsapp:+14155550199")
    assert confirmation().channel == Channel.WHATSAPP


def test_a_messaging_service_as_the_clinics_sender(twilio, book, at, clinic):
    service_sid = "MG" + "2" * 32
    NotificationSettings.objects.create(clinic=clinic, sms_sender=service_sid)
    twilio.answers.append(created())
    book(at("10:00"))
    data = twilio.requests[0]["data"]
    assert data["MessagingServiceSid"] == service_sid and "From" not in data


def test_a_refused_number_fails_at_once_with_twilios_code(twilio, book, at):
    twilio.answers.append(error(400, 21211, "The 'To' number +919876543210 is not valid."))
    appointment = book(at("10:00"))
    message = confirmation()
    assert appointment.pk and len(twilio.requests) == 1
    assert message.status == MessageStatus.FAILED and message.failed_at is not None
    assert message.error_code == "21211"
    assert "is not valid" in message.error_message


def test_twilio_errors_5xx_and_network_failures_are_retried(twilio, book, at):
    twilio.answers += [
        error(503, 20503, "Service unavailable"),
        requests.ConnectionError("connection reset"),
        created(sid="SM" + "b" * 32),
    ]
    book(at("10:00"))
    message = confirmation()
    assert len(twilio.requests) == 3
    assert message.status == MessageStatus.SENT and message.attempts == 3
    assert message.provider_id == "SM" + "b" * 32


def test_a_failed_whatsapp_send_falls_back_to_sms(twilio, book, at, patient):
    ContactPreference.objects.create(patient=patient, channel=Channel.WHATSAPP)
    twilio.answers += [
        error(400, 63016, "Failed to send freeform message outside the allowed window"),
        created(sid="SM" + "c" * 32),
    ]
    book(at("10:00"))
    whatsapp, sms = OutboundMessage.objects.filter(kind=MessageKind.CONFIRMATION).order_by("id")
    assert (whatsapp.channel, whatsapp.status, whatsapp.error_code) == (
        "whatsapp",
        "failed",
        "63016",
    )
    assert (sms.channel, sms.status, sms.fallback_of) == ("sms", "sent", whatsapp)
    assert [r["data"]["To"] for r in twilio.requests] == ["whatsapp:+919876543210", "+919876543210"]
    assert sms.body == whatsapp.body


def test_without_credentials_nothing_is_sent_and_the_reason_is_kept(twilio, settings, book, at):
    settings.TWILIO_ACCOUNT_SID = ""
    book(at("10:00"))
    message = confirmation()
    assert twilio.requests == []
    assert message.status == MessageStatus.FAILED and message.error_code == "config"
