"""The gather fallback over Twilio's <Gather>/<Say>, every webhook signed for real."""

import threading
import xml.etree.ElementTree as ET
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from twilio.request_validator import RequestValidator

from clinic.models import Appointment, BookingSource, Patient, VoiceMode
from clinic.tests.factories import ClinicPhoneNumberFactory, DoctorFactory, PatientFactory
from voice import fallback
from voice.models import CallLog, CallStatus
from voice.pipeline.providers import CircuitBreaker

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://clinic.example.com"
DIALLED = "+911234567890"
CALL_SID = "CA" + "9" * 32
ENTRY = "/api/v1/voice/gather"
COLLECT = "/api/v1/voice/gather/collect"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_SKIP_SIGNATURE_CHECK = False
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.ALLOWED_HOSTS = ["testserver", "clinic.example.com"]
    settings.VOICE_FORCE_GATHER = False
    settings.LLM_BASE_URL = ""  # the rule-based agent: no model, no network
    settings.LLM_MODEL = ""
    return settings


@pytest.fixture(autouse=True)
def _fresh_breakers():
    fallback.reset()
    yield
    fallback.reset()


def signed_post(client, path, params, *, token=TOKEN, **extra):
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature, **extra)


@pytest.fixture
def dialled(clinic):
    return ClinicPhoneNumberFactory(clinic=clinic, number=DIALLED)


@pytest.fixture
def sharma(clinic):
    return DoctorFactory(clinic=clinic, name="Dr. Priya Sharma", specialization="General Physician")


@pytest.fixture
def ravi(clinic):
    return PatientFactory(
        clinic=clinic, name="Ravi Kumar", phone="+919876500001", language_preference="hi-en"
    )


def parse(body: bytes | str) -> ET.Element:
    return ET.fromstring(body if isinstance(body, bytes) else body.encode())


class PhoneCall:
    """Plays Twilio: follows the TwiML, posts what the caller said to the action URL."""

    def __init__(self, client, caller="+919812345678", call_sid=CALL_SID):
        self.client, self.caller, self.call_sid = client, caller, call_sid
        self.response = None
        self.action = None

    @property
    def base(self):
        return {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "1" * 32,
            "From": self.caller,
            "To": DIALLED,
            "CallStatus": "in-progress",
            "Direction": "inbound",
        }

    def _follow(self, response):
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/xml")
        self.response = response
        self.root = parse(response.content)
        redirect = self.root.find("Redirect")
        self.action = redirect.text if redirect is not None else None
        return self

    def start(self, path=ENTRY):
        return self._follow(signed_post(self.client, path, {**self.base, "CallStatus": "ringing"}))

    def post(self, extra, **headers):
        assert self.action, "the call is over"
        return signed_post(self.client, self.action, {**self.base, **extra}, **headers)

    def say(self, text, confidence="0.91", **headers):
        return self._follow(self.post({"SpeechResult": text, "Confidence": confidence}, **headers))

    def press(self, digits):
        return self._follow(self.post({"Digits": digits}))

    def silence(self):
        return self._follow(self.post({}))

    # --- what Twilio was told ---
    @property
    def gather(self):
        return self.root.find("Gather")

    @property
    def said(self) -> str:
        say = self.root.find("Gather/Say")
        if say is None:
            say = self.root.find("Say")
        return say.text

    @property
    def hung_up(self) -> bool:
        return self.root.find("Hangup") is not None

    def call_log(self) -> CallLog:
        return CallLog.objects.get(call_sid=self.call_sid)


def tomorrow_at(clinic, hour, minute=0):
    day = timezone.localdate(timezone=clinic.tzinfo) + timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=clinic.tzinfo)


def test_english_booking_over_several_collects_books_and_finalizes(client, clinic, dialled, sharma):
    call = PhoneCall(client).start()
    gather = call.gather
    assert gather.attrib == {
        "input": "speech dtmf",
        "action": f"{COLLECT}?turn=1",
        "method": "POST",
        "language": "en-IN",  # the clinic's default, Hinglish, is heard as Indian English
        "speechTimeout": "auto",
        "hints": "Dr. Priya Sharma, Priya Sharma, Sharma, doctor Sharma, " + clinic.name,
        "numDigits": "1",
    }
    assert call.said.startswith("Namaste!")
    assert call.root.find("Redirect").attrib == {"method": "POST"}
    assert call.action == f"{COLLECT}?turn=1"  # silence falls through to the same action
    log = call.call_log()
    assert (log.channel, log.status, log.clinic) == ("gather", CallStatus.IN_PROGRESS, clinic)
    assert log.agent_state["kind"] == "rules" and log.agent_state["gather"]["turn"] == 1

    call.say("I want to book an appointment with Dr Sharma tomorrow at 10 am")
    assert call.said == "May I have the patient's full name, please?"
    assert call.gather.attrib["language"] == "en-IN"
    assert call.gather.find("Say").attrib == {"voice": "alice", "language": "en-US"}
    assert call.action == f"{COLLECT}?turn=2"

    call.say("my name is Anil Verma")
    assert call.said.startswith("I have the name as Anil Verma. Is that right?")
    call.say("yes")
    assert call.said.startswith("Thank you, Anil Verma.") and call.said.endswith("Shall I book it?")
    assert not Appointment.objects.exists()  # nothing before the yes

    call.say("yes", confidence="0.88")
    appointment = Appointment.objects.get()
    patient = Patient.objects.get(clinic=clinic, phone="+919812345678")
    assert patient.name == "Anil Verma"
    assert (appointment.patient, appointment.doctor) == (patient, sharma)
    assert appointment.scheduled_time == tomorrow_at(clinic, 10)
    assert (appointment.source, appointment.call_sid) == (BookingSource.VOICE, CALL_SID)
    assert f"Your appointment number is {appointment.pk}." in call.said
    assert call.gather is not None  # "anything else?"
    assert call.call_log().finalized_at is None

    call.say("no thank you")
    assert call.hung_up and call.gather is None
    assert "Goodbye" in call.said or "goodbye" in call.said
    log = call.call_log()
    assert log.finalized_at is not None and log.status == CallStatus.COMPLETED
    assert (log.appointment_created, log.patient) == (appointment, patient)
    assert log.providers == {"stt": "twilio-gather", "tts": "twilio-say", "agent": "rules"}
    assert log.intents_detected == ["book_appointment"]
    assert log.language == "en" and log.sentiment
    assert "Booked Anil Verma with Dr. Priya Sharma" in log.summary
    speakers = [t["speaker"] for t in log.turns]
    assert speakers == ["agent"] + ["patient", "agent"] * 5
    yes = log.turns[7]
    assert (yes["text"], yes["language"], yes["confidence"]) == ("yes", "en", 0.88)
    assert all(t["time"].endswith("Z") for t in log.turns)
    assert "patient: my name is Anil Verma" in log.transcript


def test_hinglish_booking_kal_subah_then_haan(client, clinic, dialled, sharma, ravi):
    call = PhoneCall(client, caller=ravi.phone).start()
    assert call.said.startswith("Namaste Ravi ji!")
    assert call.gather.attrib["language"] == "en-IN"
    assert call.gather.find("Say").attrib == {"voice": "Polly.Raveena", "language": "en-IN"}

    call.say("Dr Sharma ke saath kal subah 10 baje appointment chahiye", confidence="0.83")
    assert (
        call.said
        == "Dr. Priya Sharma ke saath kal subah 10 baje, Ravi Kumar ke liye. Book kar doon?"
    )
    call.say("haan")
    appointment = Appointment.objects.get()
    assert (appointment.patient, appointment.scheduled_time) == (ravi, tomorrow_at(clinic, 10))
    assert "book ho gaya hai" in call.said

    call.say("nahi bas, dhanyavaad")
    assert call.hung_up
    log = call.call_log()
    assert log.finalized_at is not None
    assert (log.appointment_created, log.patient, log.language) == (appointment, ravi, "hi-en")
    assert log.turns[1] == {
        "speaker": "patient",
        "text": "Dr Sharma ke saath kal subah 10 baje appointment chahiye",
        "language": "hi-en",
        "confidence": 0.83,
        "time": log.turns[1]["time"],
    }


def test_hindi_caller_is_listened_to_in_hindi(client, clinic, dialled, sharma):
    PatientFactory(clinic=clinic, phone="+919812340000", language_preference="hi", name="Meena")
    call = PhoneCall(client, caller="+919812340000").start()
    assert call.gather.attrib["language"] == "hi-IN"
    assert call.gather.find("Say").attrib == {"voice": "Polly.Aditi", "language": "hi-IN"}


def test_keypad_answers_pick_the_slot_and_confirm(client, clinic, dialled, sharma, ravi):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.say("Dr Sharma ke saath kal subah appointment chahiye")
    assert "kal subah 9 baje, saadhe 9 baje ya 10 baje khaali hai" in call.said
    assert call.gather.attrib["numDigits"] == "1"
    call.press("2")
    assert call.said.endswith("Book kar doon?") and "saadhe 9 baje" in call.said
    call.press("1")
    assert Appointment.objects.get().scheduled_time == tomorrow_at(clinic, 9, 30)
    turns = call.call_log().turns
    assert [t["text"] for t in turns if t["speaker"] == "patient"][1:] == [
        "[keypad 2]",
        "[keypad 1]",
    ]


def test_silence_asks_if_still_there_then_says_goodbye_and_hangs_up(client, dialled, ravi):
    call = PhoneCall(client, caller=ravi.phone).start()
    greeting = call.said
    call.silence()
    assert call.said.startswith("Kya aap line par hain?")
    assert greeting.split("!")[-1].strip() in call.said  # the question, asked again
    assert call.gather is not None and not call.hung_up
    call.silence()
    assert call.hung_up and call.gather is None
    assert "awaaz nahi aa rahi" in call.said
    log = call.call_log()
    assert log.finalized_at is not None and log.status == CallStatus.COMPLETED
    assert [t["speaker"] for t in log.turns] == ["agent", "agent", "agent"]
    assert not Appointment.objects.exists()


def test_silence_count_resets_when_the_caller_speaks(client, dialled, ravi, sharma):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.silence()
    call.say("Dr Sharma kal 10 baje")
    call.silence()
    assert not call.hung_up and call.said.startswith("Kya aap line par hain?")
    assert call.said.endswith("Book kar doon?")  # the pending question, not the greeting


def test_transfer_dials_the_front_desk_and_finalizes(client, clinic, dialled, ravi):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.say("Can I talk to a person please")
    dial = call.root.find("Dial")
    assert dial is not None and dial.text == clinic.front_desk_phone == "+918041234567"
    assert call.root.find("Say").text  # told before being put through
    log = call.call_log()
    assert log.finalized_at is not None
    assert "Transferred to the front desk on request." in log.summary
    assert log.intents_detected == ["transfer_to_human"]


def test_keypad_zero_transfers(client, clinic, dialled, ravi):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.press("0")
    assert call.root.find("Dial").text == clinic.front_desk_phone


def test_bad_signature_is_refused_and_changes_nothing(client, dialled, ravi, sharma):
    call = PhoneCall(client, caller=ravi.phone)
    unsigned = client.post(ENTRY, call.base)
    assert unsigned.status_code == 403 and unsigned.json()["error"]["code"] == "FORBIDDEN"
    assert not CallLog.objects.exists()

    call.start()
    call.say("Dr Sharma kal 10 baje")
    before = call.call_log()
    params = {**call.base, "SpeechResult": "haan", "Confidence": "0.9"}
    forged = [
        client.post(call.action, params),  # no signature
        signed_post(client, call.action, params, token="f" * 32),  # someone else's token
        client.post(  # signed without the turn: another URL
            call.action,
            params,
            HTTP_X_TWILIO_SIGNATURE=RequestValidator(TOKEN).compute_signature(
                PUBLIC + COLLECT, params
            ),
        ),
    ]
    assert [r.status_code for r in forged] == [403, 403, 403]
    after = call.call_log()
    assert (after.agent_state, after.turns) == (before.agent_state, before.turns)
    assert not Appointment.objects.exists()


def test_an_agent_failure_hands_the_caller_to_the_front_desk(
    client, clinic, dialled, ravi, monkeypatch
):
    call = PhoneCall(client, caller=ravi.phone).start()
    before = call.call_log()

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("voice.gather.build_agent", broken)
    call.say("hello")
    assert call.root.find("Dial").text == clinic.front_desk_phone
    assert call.root.find("Say").text.startswith("Maaf kijiye")  # in the caller's language
    after = call.call_log()
    assert (after.agent_state, after.turns) == (before.agent_state, before.turns)


def test_zero_confidence_is_taken_as_unknown(client, dialled, ravi, sharma):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.say("Dr Sharma kal 10 baje")
    call.say("haan", confidence="0.0")  # not "unclear line, say again"
    assert Appointment.objects.count() == 1
    assert "confidence" not in call.call_log().turns[-2]


def test_unknown_number_gets_the_polite_message(client, dialled):
    call = PhoneCall(client)
    response = signed_post(client, ENTRY, {**call.base, "To": "+911111111111"})
    assert b"not set up with our clinic assistant" in response.content
    assert b"<Hangup />" in response.content
    assert not CallLog.objects.exists()


def test_retried_entry_webhook_answers_the_same_and_logs_once(client, dialled, ravi):
    first = PhoneCall(client, caller=ravi.phone).start().response.content
    second = PhoneCall(client, caller=ravi.phone).start().response.content
    assert first == second
    log = CallLog.objects.get()
    assert len(log.turns) == 1


def test_retried_collect_does_not_book_twice(client, dialled, ravi, sharma):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.say("Dr Sharma kal 10 baje")
    confirm_action = call.action
    first = call.say("haan").response.content
    turns = len(call.call_log().turns)
    call.action = confirm_action  # Twilio posts the very same request again
    again = call.say("haan").response.content
    assert again == first
    assert Appointment.objects.count() == 1
    assert len(call.call_log().turns) == turns
    # and the dialog goes on from where it was
    call.say("nahi, dhanyavaad")
    assert call.hung_up
    assert Appointment.objects.count() == 1


def test_same_idempotency_token_is_answered_once(client, dialled, ravi, sharma):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.say("Dr Sharma kal 10 baje")
    header = {"HTTP_I_TWILIO_IDEMPOTENCY_TOKEN": "tok-1"}
    first = call.say("haan", **header).response.content
    # the same token on the next turn's URL: only the token can tell it is a retry
    assert call.say("haan", **header).response.content == first
    assert Appointment.objects.count() == 1


def test_same_keys_on_consecutive_turns_are_two_turns_not_a_retry(
    client, clinic, dialled, ravi, sharma
):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.say("Dr Sharma ke saath kal subah appointment chahiye")
    call.press("1")  # the first slot
    call.press("1")  # yes
    assert Appointment.objects.get().scheduled_time == tomorrow_at(clinic, 9)


def test_late_turn_after_the_goodbye_hangs_up_without_changes(client, dialled, ravi):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.say("bye")
    assert call.hung_up
    log = call.call_log()
    call.action = f"{COLLECT}?turn=99"
    call.say("hello?")
    assert call.hung_up and call.root.find("Say") is None
    after = call.call_log()
    assert (after.turns, after.finalized_at) == (log.turns, log.finalized_at)


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_book_once(dialled, ravi, sharma):
    from django.test import Client

    call = PhoneCall(Client(), caller=ravi.phone).start()
    call.say("Dr Sharma kal 10 baje")
    action = call.action
    params = {**call.base, "SpeechResult": "haan", "Confidence": "0.9"}
    bodies, errors = [], []
    barrier = threading.Barrier(3)

    def post():
        try:
            barrier.wait()
            bodies.append(signed_post(Client(), action, params).content)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(bodies)) == 1 and b"book ho gaya hai" in bodies[0]
    assert Appointment.objects.count() == 1


def test_caller_hanging_up_mid_dialog_is_finalized_by_the_status_callback(
    client, dialled, ravi, sharma
):
    call = PhoneCall(client, caller=ravi.phone).start()
    call.say("Dr Sharma kal 10 baje")
    call.say("haan")  # booked; "anything else?" -- and the caller hangs up
    status = {**call.base, "CallStatus": "completed", "CallDuration": "42"}
    assert signed_post(client, "/api/v1/voice/status", status).status_code == 200
    log = call.call_log()
    assert log.finalized_at is not None and log.status == CallStatus.COMPLETED
    assert log.duration_seconds == 42
    assert log.appointment_created == Appointment.objects.get()
    assert "Booked Ravi Kumar" in log.summary and log.providers["stt"] == "twilio-gather"
    assert "patient: haan" in log.transcript


# --- when /voice/incoming serves the gather flow ------------------------------------------


def _incoming(client, caller):
    call = PhoneCall(client, caller=caller)
    return call.start(path="/api/v1/voice/incoming")


def _assert_served_gather(call):
    body = call.response.content.decode()
    assert "<Stream" not in body and "<Connect" not in body
    assert call.gather.attrib["action"] == f"{COLLECT}?turn=1"
    assert call.call_log().channel == "gather"


def test_clinic_in_gather_mode_gets_gather_from_incoming(client, clinic, dialled, ravi, sharma):
    clinic.voice_mode = VoiceMode.GATHER
    clinic.save()
    call = _incoming(client, ravi.phone)
    _assert_served_gather(call)
    call.say("Dr Sharma ke saath kal subah 10 baje appointment chahiye")
    call.say("haan")
    assert Appointment.objects.get().patient == ravi


def test_stream_mode_still_streams(client, dialled, ravi):
    call = _incoming(client, ravi.phone)
    assert b"<Stream" in call.response.content and call.gather is None
    assert call.call_log().channel == "stream"


def test_forced_fallback_setting_serves_gather(client, dialled, ravi, settings):
    settings.VOICE_FORCE_GATHER = True
    assert not fallback.streaming_available()
    _assert_served_gather(_incoming(client, ravi.phone))


def test_open_speech_breaker_serves_gather_until_it_cools_down(client, dialled, ravi):
    now = [0.0]
    stt = fallback.register(CircuitBreaker("stt", failure_threshold=2, clock=lambda: now[0]))
    assert fallback.breaker("stt") is stt and fallback.streaming_available()
    fallback.record_failure("stt", "timeout")
    assert fallback.streaming_available()
    fallback.record_failure("stt", "timeout")
    assert not fallback.streaming_available()
    _assert_served_gather(_incoming(client, ravi.phone))

    now[0] += stt.reset_timeout_s  # half-open: the next streamed call is the trial
    assert fallback.streaming_available()
    second = PhoneCall(client, caller=ravi.phone, call_sid="CA" + "8" * 32)
    second.start(path="/api/v1/voice/incoming")
    assert b"<Stream" in second.response.content


def test_tts_failures_count_too(client, dialled):
    for _ in range(fallback.breaker("tts").failure_threshold):
        fallback.record_failure("tts")
    assert not fallback.streaming_available()
    fallback.reset()
    assert fallback.streaming_available()
