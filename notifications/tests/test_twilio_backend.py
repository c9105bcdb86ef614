"""The Twilio backend through the real twilio Client; only its HTTP transport is faked."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import requests
from django.utils import timezone

from notifications import backends, services, tasks
from notifications.models import (
    Channel,
    ContactPreference,
    MessageKind,
    MessageStatus,
    NotificationSettings,
    OutboundMessage,
)
from notifications.tests.twilio_fake import (
    ACCOUNT,
    MESSAGES_URL,
    FakeTwilioTransport,
    accept_then,
    error,
    message_json,
)

pytestmark = pytest.mark.django_db


def created(sid="SM" + "a" * 32, status="queued", **fields):
    return 201, message_json(sid=sid, status=status, **fields)


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
        error(503, 20503, "Service unavailable"),  # the send: did Twilio take it?
        requests.ConnectionError("connection reset"),  # asking: no answer, try later
    ]  # then Twilio answers: it has nothing, so the message is sent
    book(at("10:00"))
    message = confirmation()
    assert [r["method"] for r in twilio.requests] == ["POST", "GET", "GET", "POST"]
    [taken] = twilio.messages
    assert message.status == MessageStatus.SENT and message.attempts == 3
    assert message.provider_id == taken["sid"]


def test_a_send_that_timed_out_after_twilio_took_it_is_not_sent_again(twilio, book, at):
    twilio.answers.append(accept_then(requests.ReadTimeout("read timed out")))
    book(at("10:00"))
    message = confirmation()
    [taken] = twilio.messages
    assert [r["method"] for r in twilio.requests] == ["POST", "GET"]
    assert (message.status, message.provider_id) == (MessageStatus.SENT, taken["sid"])


def test_a_refusal_is_not_looked_up_before_the_next_try(twilio, book, at):
    twilio.answers.append(error(429, 20429, "Too Many Requests"))
    book(at("10:00"))
    message = confirmation()
    assert [r["method"] for r in twilio.requests] == ["POST", "POST"]
    assert message.status == MessageStatus.SENT and len(twilio.messages) == 1


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


# --- A worker that dies mid-send: reconciled with Twilio before any re-send ------------------


class WorkerDied(BaseException):
    """SIGKILL in the middle of a send: nothing after it runs, nothing is recorded."""


@pytest.fixture
def sweep(commits):
    """Beat's dispatch once the dead worker's claim has run out (its tasks run eagerly)."""

    def run(after=None):
        later = timezone.now() + (after or services.sending_stale_after() + timedelta(seconds=1))
        with commits():
            return services.dispatch_due(now=later)

    return run


@pytest.fixture
def waiting(clinic, patient):
    """A confirmation, queued (its task about to run)."""
    return OutboundMessage.objects.create(
        clinic=clinic,
        patient=patient,
        kind=MessageKind.CONFIRMATION,
        to=patient.phone,
        language="en",
        body="Ravi Kumar, your appointment with Dr. Asha Rao is confirmed.",
        idempotency_key="confirmation:interrupted",
        status=MessageStatus.QUEUED,
    )


def interrupted(twilio, waiting):
    """The worker dies in deliver(): the row stays 'sending', handed to Twilio."""
    with pytest.raises(WorkerDied):
        services.deliver(waiting.pk)
    waiting.refresh_from_db()
    assert waiting.status == MessageStatus.SENDING and waiting.handed_at is not None
    assert waiting.provider_id == ""
    return waiting


def test_interrupted_after_twilio_took_it_is_recorded_not_sent_again(twilio, waiting, sweep):
    twilio.answers.append(accept_then(WorkerDied()))
    message = interrupted(twilio, waiting)
    [taken] = twilio.messages

    assert sweep(after=timedelta(minutes=1)) == 0  # a live worker may still be at it
    assert sweep() == 1
    message.refresh_from_db()
    assert (message.status, message.provider_id) == (MessageStatus.SENT, taken["sid"])
    assert message.provider_status == "sent" and message.attempts == 2
    assert len(twilio.posts()) == 1 and len(twilio.messages) == 1
    [asked] = twilio.gets()
    assert asked["url"] == MESSAGES_URL
    assert (asked["params"]["To"], asked["params"]["From"]) == ("+919876543210", "+14155550100")
    since = datetime.strptime(asked["params"]["DateSent>"], "%Y-%m-%dT%H:%M:%SZ")
    margin = message.handed_at - since.replace(tzinfo=UTC)  # our clock against Twilio's
    skew = services.RECONCILE_CLOCK_SKEW
    assert skew <= margin < skew + timedelta(seconds=1)

    assert sweep() == 0  # and nothing more, however often beat runs
    tasks.send_message.apply(args=(message.pk,))  # nor a redelivered task
    assert len(twilio.posts()) == 1


def test_interrupted_before_twilio_took_it_is_sent_again_exactly_once(twilio, waiting, sweep):
    twilio.answers.append(WorkerDied())  # died on the way: Twilio never got it
    message = interrupted(twilio, waiting)
    assert twilio.messages == []

    assert sweep() == 1
    message.refresh_from_db()
    [taken] = twilio.messages
    assert (message.status, message.provider_id) == (MessageStatus.SENT, taken["sid"])
    assert [r["method"] for r in twilio.requests] == ["POST", "GET", "POST"]
    assert taken["body"] == message.body and taken["to"] == "+919876543210"

    assert sweep() == 0
    tasks.send_message.apply(args=(message.pk,))
    assert len(twilio.messages) == 1 and len(twilio.posts()) == 2


def test_when_twilio_cannot_be_asked_the_message_waits_and_is_never_sent_twice(
    twilio, waiting, sweep
):
    twilio.answers += [
        accept_then(WorkerDied()),
        error(503, 20503, "Service unavailable"),
        requests.ConnectionError("connection reset"),
    ]
    message = interrupted(twilio, waiting)

    assert sweep() == 1  # asks, fails twice (retried after a backoff), then finds it
    message.refresh_from_db()
    [taken] = twilio.messages
    assert (message.status, message.provider_id) == (MessageStatus.SENT, taken["sid"])
    assert [r["method"] for r in twilio.requests] == ["POST", "GET", "GET", "GET"]
    assert message.error_code == "" and message.attempts == 4


def test_if_twilio_can_never_be_asked_the_message_fails_unsent(twilio, waiting, sweep):
    twilio.answers.append(accept_then(WorkerDied()))
    twilio.answers += [error(503, 20503, "Service unavailable")] * services.MAX_SEND_ATTEMPTS
    message = interrupted(twilio, waiting)

    sweep()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.error_code == "unconfirmed"
    assert "Service unavailable" in message.error_message
    assert len(twilio.gets()) == services.MAX_SEND_ATTEMPTS and len(twilio.posts()) == 1
    assert sweep() == 0 and len(twilio.posts()) == 1


def test_the_same_text_sent_before_by_another_message_is_not_taken_for_it(
    twilio, waiting, sweep, clinic, patient
):
    earlier = OutboundMessage.objects.create(
        clinic=clinic,
        patient=patient,
        kind=MessageKind.REPLY,
        to=patient.phone,
        body=waiting.body,
        idempotency_key="the-same-text-before",
        status=MessageStatus.QUEUED,
    )
    services.deliver(earlier.pk)
    earlier.refresh_from_db()
    assert earlier.status == MessageStatus.SENT
    twilio.answers.append(WorkerDied())
    message = interrupted(twilio, waiting)

    sweep()
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and len(twilio.messages) == 2
    assert message.provider_id == twilio.messages[1]["sid"] != earlier.provider_id


def test_a_messaging_service_sender_is_looked_up_by_its_sid(
    twilio, waiting, sweep, clinic, settings
):
    service_sid = "MG" + "2" * 32
    NotificationSettings.objects.create(clinic=clinic, sms_sender=service_sid)
    twilio.store.append(  # the same text through another service of the account
        message_json(body=waiting.body, messaging_service_sid="MG" + "3" * 32, from_=None)
    )
    twilio.answers.append(accept_then(WorkerDied()))
    message = interrupted(twilio, waiting)

    sweep()
    message.refresh_from_db()
    [asked] = twilio.gets()
    assert "From" not in asked["params"]
    assert message.status == MessageStatus.SENT
    assert message.provider_id == twilio.messages[1]["sid"] and len(twilio.posts()) == 1


def test_whatsapp_is_looked_up_on_the_whatsapp_channel(twilio, waiting, sweep, patient):
    OutboundMessage.objects.filter(pk=waiting.pk).update(channel=Channel.WHATSAPP)
    twilio.answers.append(accept_then(WorkerDied()))
    message = interrupted(twilio, waiting)

    sweep()
    message.refresh_from_db()
    [asked] = twilio.gets()
    assert (asked["params"]["To"], asked["params"]["From"]) == (
        "whatsapp:+919876543210",
        "whatsapp:+14155550199",
    )
    assert message.status == MessageStatus.SENT and len(twilio.posts()) == 1
