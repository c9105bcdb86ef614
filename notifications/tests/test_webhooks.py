"""Patients' texts and Twilio's status callbacks, signed for real with Twilio's validator."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clinic.models import AppointmentStatus
from clinic.tests.factories import ClinicFactory, ClinicPhoneNumberFactory, PatientFactory
from notifications import services
from notifications.models import (
    Channel,
    ContactPreference,
    InboundMessage,
    MessageKind,
    MessageStatus,
    NotificationSettings,
    OptOut,
    OutboundMessage,
)
from notifications.tests.conftest import PUBLIC, signed_post

pytestmark = pytest.mark.django_db

INCOMING = "/api/v1/sms/incoming"
STATUS = "/api/v1/sms/status"
CLINIC_NUMBER = "+911234567890"


@pytest.fixture(autouse=True)
def clinic_number(clinic):
    return ClinicPhoneNumberFactory(clinic=clinic, number=CLINIC_NUMBER)


_sids = iter(range(10**6))


def text(client, body, *, sid=None, sender="+919876543210", to=CLINIC_NUMBER):
    params = {
        "MessageSid": sid or f"SM{next(_sids):032d}",
        "AccountSid": "AC" + "1" * 32,
        "From": sender,
        "To": to,
        "Body": body,
        "NumMedia": "0",
    }
    return signed_post(client, INCOMING, params)


def reply_of(response) -> str:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    body = response.content.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?><Response')
    return body


# --- C / cancel / रद्द -----------------------------------------------------------------------


@pytest.mark.parametrize("word", ["C", "c.", "cancel", "CANCEL please", "Cancel."])
def test_c_or_cancel_cancels_the_next_appointment(client, book, at, commits, outbox, word):
    first = book(at("10:00"))
    later = book(at("10:00", at("10:00").date() + timedelta(days=1)))
    outbox.clear()
    with commits():
        body = reply_of(text(client, word))
    first.refresh_from_db(), later.refresh_from_db()
    assert first.status == AppointmentStatus.CANCELLED
    assert first.cancellation_reason == "Cancelled by the patient by SMS"
    assert later.status == AppointmentStatus.SCHEDULED
    assert body.startswith(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Your appointment with '
        "Dr. Asha Rao on "
    )
    assert "at 10:00 AM is cancelled" in body and body.endswith("</Message></Response>")
    # The reply is the cancellation notice: stored once, no second SMS.
    assert outbox == []
    notice = OutboundMessage.objects.get(kind=MessageKind.CANCELLATION)
    assert notice.appointment == first and notice.status == MessageStatus.SENT
    assert notice.provider_status == "twiml-reply" and notice.body in body
    # And its reminders are void.
    assert not OutboundMessage.objects.filter(
        appointment=first, kind=MessageKind.REMINDER, status=MessageStatus.SCHEDULED
    ).exists()


@pytest.mark.parametrize("word", ["रद्द", "रद्द करें"])
def test_radd_in_devanagari_cancels_and_answers_in_hindi(client, book, at, commits, word):
    appointment = book(at("14:30"))
    with commits():
        body = reply_of(text(client, word))
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert "Dr. Asha Rao के साथ" in body and "दोपहर 2:30 बजे की आपकी अपॉइंटमेंट रद्द कर दी गई है" in body


def test_the_reply_is_in_the_patients_language(client, book, at, patient, commits):
    patient.language_preference = "hi-en"
    patient.save()
    book(at("10:00"))
    with commits():
        body = reply_of(text(client, "C"))
    assert "subah 10:00 baje ka aapka appointment cancel kar diya gaya hai" in body


def test_a_retried_webhook_cancels_nothing_more(client, book, at, commits):
    first = book(at("10:00"))
    later = book(at("11:00"))
    with commits():
        one = reply_of(text(client, "C", sid="SM" + "9" * 32))
        two = reply_of(text(client, "C", sid="SM" + "9" * 32))
    later.refresh_from_db()
    assert one == two
    assert later.status == AppointmentStatus.SCHEDULED
    assert InboundMessage.objects.get().appointment == first


def test_cancel_with_nothing_upcoming(client, patient):
    body = reply_of(text(client, "C"))
    assert "We found no upcoming appointment for this number" in body
    assert "+918041234567" in body  # the front desk


# --- R --------------------------------------------------------------------------------------


def test_r_answers_a_signed_expiring_reschedule_link(client, book, at, commits):
    appointment = book(at("10:00"))
    body = reply_of(text(client, "R"))
    assert "To change your appointment with Dr. Asha Rao on " in body
    link = body.split("open ", 1)[1].split(" ", 1)[0]
    assert link.startswith(f"{PUBLIC}/reschedule/")
    token = link.rsplit("/", 1)[1]
    assert services.read_reschedule_token(token) == appointment
    assert services.read_reschedule_token(token[:-2] + "xx") is None  # tampered
    assert services.read_reschedule_token(token, max_age=timedelta(seconds=-1)) is None  # expired
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED
    from clinic import services as clinic_services

    with commits():
        clinic_services.update_appointment(
            appointment=appointment, changes={"scheduled_time": at("12:00")}
        )
    assert services.read_reschedule_token(token) is None  # moved: the old link is void


# --- STOP / START ---------------------------------------------------------------------------


def test_stop_opts_out_and_every_later_message_honours_it(
    client, book, at, clinic, patient, commits, outbox
):
    body = reply_of(text(client, "STOP"))
    assert "You will get no more messages from" in body and "Reply START" in body
    assert OptOut.objects.get(clinic=clinic, phone=patient.phone).opted_out
    appointment = book(at("10:00"))
    assert outbox == []  # no confirmation
    # A text while opted out still acts, but gets no answer.
    with commits():
        silent = reply_of(text(client, "C"))
    appointment.refresh_from_db()
    assert silent.endswith("<Response />")
    assert appointment.status == AppointmentStatus.CANCELLED and outbox == []
    statuses = OutboundMessage.objects.exclude(kind=MessageKind.REPLY).values_list("kind", "status")
    assert set(statuses) == {
        ("confirmation", "skipped"),
        ("cancellation", "skipped"),
        ("reminder", "cancelled"),
    }


def test_start_opts_back_in(client, book, at, clinic, patient, outbox):
    reply_of(text(client, "stop"))
    body = reply_of(text(client, "START"))
    assert "You will get appointment messages from" in body
    assert not OptOut.objects.get(clinic=clinic, phone=patient.phone).opted_out
    book(at("10:00"))
    assert len(outbox) == 1


def test_stop_is_stored_per_clinic(client, clinic, patient):
    other = ClinicFactory()
    ClinicPhoneNumberFactory(clinic=other, number="+911234500000")
    reply_of(text(client, "STOP", to="+911234500000"))
    assert services.is_opted_out(other, patient.phone)
    assert not services.is_opted_out(clinic, patient.phone)


@pytest.mark.parametrize(
    ("text_body", "command"),
    [
        ("C", "cancel"),
        (" c! ", "cancel"),
        ("Cancel my appointment", "cancel"),
        ("रद्द करें।", "cancel"),
        ("R", "reschedule"),
        ("reschedule please", "reschedule"),
        ("STOP", "stop"),
        ("Unsubscribe.", "stop"),
        ("start", "start"),
        ("C you at 5", "help"),  # a letter alone only when it is the whole text
        ("R u open today?", "help"),
        ("End of May works?", "help"),  # so are the opt-out words
        ("Please stop the 2nd reminder", "help"),
        ("", "help"),
    ],
)
def test_what_a_text_means(text_body, command):
    assert services.parse_command(text_body) == command


def test_a_sentence_starting_with_c_cancels_nothing(client, book, at, commits):
    appointment = book(at("10:00"))
    with commits():
        body = reply_of(text(client, "C you tomorrow doctor"))
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED and "reply C to cancel" in body


def test_anything_else_gets_help(client, patient):
    body = reply_of(text(client, "What time do you open?"))
    assert "reply C to cancel your next appointment, R to reschedule it, STOP" in body
    assert InboundMessage.objects.get().command == "help"


def test_every_reply_is_stored(client, patient):
    reply_of(text(client, "hello", sid="SM" + "7" * 32))
    reply = OutboundMessage.objects.get(kind=MessageKind.REPLY)
    assert reply.idempotency_key == "reply:SM" + "7" * 32
    assert (reply.to, reply.sender, reply.status) == (patient.phone, CLINIC_NUMBER, "sent")


# --- Which clinic, which channel ---------------------------------------------------------------


def test_a_number_nobody_knows_gets_no_answer(client):
    body = reply_of(text(client, "C", to="+14155559999", sender="+919999999999"))
    assert body.endswith("<Response />")
    assert InboundMessage.objects.get().clinic is None


def test_a_shared_sender_finds_the_clinic_that_texted_the_patient(client, book, at, commits):
    appointment = book(at("10:00"))  # confirmation from TWILIO_MESSAGING_FROM
    with commits():
        reply_of(text(client, "C", to="+14155550100"))
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED


def test_whatsapp_texts_work_the_same(client, book, at, clinic, patient, commits):
    NotificationSettings.objects.create(clinic=clinic, whatsapp_sender="+14155550199")
    ContactPreference.objects.create(patient=patient, channel=Channel.WHATSAPP)
    appointment = book(at("10:00"))
    with commits():
        body = reply_of(
            text(client, "cancel", sender="whatsapp:+919876543210", to="whatsapp:+14155550199")
        )
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED and "is cancelled" in body
    inbound = InboundMessage.objects.get()
    assert (inbound.channel, inbound.from_number) == ("whatsapp", "+919876543210")
    assert inbound.reply.channel == "whatsapp"


def test_a_family_phone_cancels_the_soonest_appointment_of_anyone_on_it(
    client, book, at, clinic, patient, commits
):
    mother = PatientFactory(
        clinic=clinic, name="Sita", phone=patient.phone, language_preference="hi"
    )
    hers = book(at("09:00"), who=mother)
    his = book(at("11:00"))
    with commits():
        body = reply_of(text(client, "C"))
    hers.refresh_from_db(), his.refresh_from_db()
    assert hers.status == AppointmentStatus.CANCELLED and his.status == "scheduled"
    assert "रद्द कर दी गई है" in body  # her language


# --- Signatures and input --------------------------------------------------------------------


def test_an_unsigned_or_wrongly_signed_text_is_refused(client, book, at):
    appointment = book(at("10:00"))
    params = {"MessageSid": "SM1", "From": "+919876543210", "To": CLINIC_NUMBER, "Body": "C"}
    assert client.post(INCOMING, params).status_code == 403
    forged = signed_post(client, INCOMING, params, token="f" * 32)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "FORBIDDEN"
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED
    assert not InboundMessage.objects.exists()


def test_missing_fields_and_wrong_method(client):
    response = signed_post(client, INCOMING, {"Body": "C"})
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"MessageSid", "From", "To"}
    assert client.get(INCOMING).status_code == 405
    assert client.get(STATUS).status_code == 405


# --- Status callbacks ------------------------------------------------------------------------


def status_callback(client, message, status, **extra):
    path = f"{STATUS}?m={message.pk}"
    params = {
        "MessageSid": message.provider_id or extra.pop("sid", ""),
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": "AC" + "1" * 32,
        "To": message.to,
        **extra,
    }
    return signed_post(client, path, params, url=PUBLIC + path)


def confirmation():
    return OutboundMessage.objects.get(kind=MessageKind.CONFIRMATION, fallback_of=None)


def test_status_callbacks_are_recorded(client, book, at):
    book(at("10:00"))
    message = confirmation()
    response = status_callback(client, message, "delivered")
    assert response.status_code == 200
    assert response.json()["success"] is True
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("delivered", "delivered")
    assert message.delivered_at is not None


def test_late_callbacks_never_move_a_message_back(client, book, at):
    book(at("10:00"))
    message = confirmation()
    for status in ("sent", "delivered", "sent", "queued", "failed"):
        status_callback(client, message, status)
    message.refresh_from_db()
    assert message.status == "delivered" and message.failed_at is None


def test_a_failure_is_recorded_with_its_error_code(client, book, at):
    book(at("10:00"))
    message = confirmation()
    status_callback(client, message, "undelivered", ErrorCode="30003")
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("undelivered", "30003")
    assert not OutboundMessage.objects.filter(fallback_of=message).exists()  # SMS: no fallback


def test_an_undelivered_whatsapp_message_goes_again_by_sms_once(
    client, book, at, patient, commits, outbox
):
    ContactPreference.objects.create(patient=patient, channel=Channel.WHATSAPP)
    book(at("10:00"))
    whatsapp = confirmation()
    assert whatsapp.channel == "whatsapp" and len(outbox) == 1
    with commits():
        status_callback(client, whatsapp, "undelivered", ErrorCode="63024")
        status_callback(client, whatsapp, "failed", ErrorCode="63024")  # repeated
    assert [m.channel for m in outbox] == ["whatsapp", "sms"]
    assert outbox[1].body == outbox[0].body
    fallback = OutboundMessage.objects.get(fallback_of=whatsapp)
    assert (fallback.channel, fallback.status) == ("sms", "sent")
    # The SMS failing too is the end of it.
    with commits():
        status_callback(client, fallback, "failed", ErrorCode="30006")
    assert len(outbox) == 2
    assert OutboundMessage.objects.filter(kind=MessageKind.CONFIRMATION).count() == 2


def test_a_callback_that_beats_our_own_update_is_matched_by_our_id(client, book, at):
    book(at("10:00"))
    message = confirmation()
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, provider_id=""
    )
    message.refresh_from_db()
    response = status_callback(client, message, "sent", sid="SM" + "5" * 32)
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_id) == ("sent", "SM" + "5" * 32)
    # Our own update arriving now does not undo it.
    services.deliver(message.pk)
    message.refresh_from_db()
    assert message.status == "sent"


def test_unknown_message_and_status(client, book, at):
    response = signed_post(client, STATUS, {"MessageSid": "SM404", "MessageStatus": "sent"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"
    book(at("10:00"))
    response = status_callback(client, confirmation(), "exploded")
    assert response.status_code == 400
    assert confirmation().status == "sent"


def test_a_status_callback_needs_twilios_signature(client, book, at):
    book(at("10:00"))
    message = confirmation()
    params = {"MessageSid": message.provider_id, "MessageStatus": "failed"}
    assert client.post(f"{STATUS}?m={message.pk}", params).status_code == 403
    # Signed for another URL (our id is part of what is signed).
    response = signed_post(client, f"{STATUS}?m={message.pk}", params, url=PUBLIC + STATUS)
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == "sent"


def test_message_counts_for_the_dashboard(client, book, at, clinic, other_clinic):
    from notifications.selectors import message_counts

    book(at("10:00"))
    book(at("11:00"))
    first, second = OutboundMessage.objects.filter(kind=MessageKind.CONFIRMATION).order_by("id")
    status_callback(client, first, "delivered")
    status_callback(client, second, "failed", ErrorCode="30008")
    now = timezone.now()
    window = (now - timedelta(hours=1), now + timedelta(hours=1))
    assert message_counts(clinic, *window) == {"sent": 1, "failed": 1}
    assert message_counts(other_clinic, *window) == {"sent": 0, "failed": 0}
    assert message_counts(clinic, now + timedelta(hours=1), now + timedelta(hours=2)) == {
        "sent": 0,
        "failed": 0,
    }
