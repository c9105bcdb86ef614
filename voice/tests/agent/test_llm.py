"""The LLM agent against a local OpenAI-compatible server: real HTTP, scripted model."""

import json
import socket
import time

import pytest

from clinic.models import Appointment, AppointmentStatus, BookingSource
from clinic.tests.factories import AppointmentFactory, PatientFactory
from voice.agent import LLMAgent, RuleBasedAgent, build_agent
from voice.tests.agent.conftest import CALL_SID, NOW, Call, ist, utc
from voice.tests.agent.fake_openai import FakeOpenAI, Reply, message, tool_calls


@pytest.fixture
def fake_llm(settings):
    server = FakeOpenAI().start()
    settings.LLM_BASE_URL = server.base_url
    settings.LLM_API_KEY = "test-key"
    settings.LLM_MODEL = "fake-model"
    settings.LLM_TIMEOUT_SECONDS = 2
    yield server
    server.stop()


def test_build_agent_picks_the_llm_only_when_configured(clinic, ravi, settings):
    assert isinstance(build_agent(clinic, ravi.phone, now=NOW), RuleBasedAgent)
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    settings.LLM_MODEL = "some-model"
    assert isinstance(build_agent(clinic, ravi.phone, now=NOW), LLMAgent)
    # a call that already fell back stays with the rules
    assert isinstance(build_agent(clinic, ravi.phone, state={"kind": "rules"}), RuleBasedAgent)


def test_llm_checks_availability_then_books_through_tool_calls(fake_llm, clinic, ravi, sharma):
    fake_llm.script = [
        tool_calls(
            ("check_availability", {"doctor_id": sharma.pk, "date": "2031-01-16", "time": "10:00"})
        ),
        message("Dr. Priya Sharma ke saath kal subah 10 baje slot khaali hai. Book kar doon?"),
        tool_calls(
            (
                "book_appointment",
                {"patient_id": ravi.pk, "doctor_id": sharma.pk, "start": "2031-01-16T10:00"},
            )
        ),
        message("Ho gaya! Kal subah 10 baje Dr. Priya Sharma ke saath appointment book hai."),
    ]
    c = Call(clinic, ravi.phone)
    greeting = c.greet()
    assert greeting.text.startswith("Namaste Ravi ji!")  # a template, no model call
    assert fake_llm.requests == []

    reply = c.say("Dr Sharma ke saath kal subah 10 baje appointment chahiye")
    assert reply.text.endswith("Book kar doon?")
    assert reply.language == "hi-en"
    assert not Appointment.objects.exists()

    first = fake_llm.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer test-key"
    body = first["json"]
    assert body["model"] == "fake-model"
    assert body["tool_choice"] == "auto"
    names = {tool["function"]["name"] for tool in body["tools"]}
    assert {"check_availability", "book_appointment", "cancel_appointment"} <= names
    assert {"reschedule_appointment", "transfer_to_human", "end_call"} <= names
    assert body["messages"][0]["role"] == "system"
    assert "Wednesday 2031-01-15 09:00" in body["messages"][0]["content"]
    assert f"id {ravi.pk}: Ravi Kumar" in body["messages"][0]["content"]
    assert body["messages"][-1] == {
        "role": "user",
        "content": "Dr Sharma ke saath kal subah 10 baje appointment chahiye",
    }
    tool_message = fake_llm.requests[1]["json"]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_1"
    result = json.loads(tool_message["content"])
    assert result["requested_is_free"] is True
    assert result["requested"] == {"start": "2031-01-16T10:00", "spoken": "kal subah 10 baje"}

    reply = c.say("haan ji")
    assert reply.text.startswith("Ho gaya!")
    appointment = Appointment.objects.get()
    assert appointment.scheduled_time == utc(2031, 1, 16, 4, 30)
    assert appointment.source == BookingSource.VOICE
    assert appointment.call_sid == CALL_SID
    assert appointment.patient == ravi
    agent = c.last_agent
    assert agent.appointment_created == appointment.pk
    assert agent.intents_detected == ["book_appointment", "ask_doctor_availability"]
    assert "Booked Ravi Kumar with Dr. Priya Sharma" in agent.summary()
    assert agent.sentiment() == "positive"
    assert c.state["kind"] == "llm" and c.state["mode"] == "llm"
    booked = json.loads(fake_llm.requests[3]["json"]["messages"][-1]["content"])
    assert booked["ok"] is True and booked["appointment"]["appointment_id"] == appointment.pk
    assert len(fake_llm.requests) == 4


def test_llm_cannot_book_for_a_patient_of_another_phone(fake_llm, clinic, ravi, sharma):
    stranger = PatientFactory(clinic=clinic, phone="+919800000042")
    fake_llm.script = [
        tool_calls(
            (
                "book_appointment",
                {"patient_id": stranger.pk, "doctor_id": sharma.pk, "start": "2031-01-16T10:00"},
            )
        ),
        message("Sorry, I could not book that."),
    ]
    agent = build_agent(clinic, ravi.phone, now=NOW)
    agent.respond("book for patient 42")
    assert not Appointment.objects.exists()
    result = json.loads(fake_llm.requests[1]["json"]["messages"][-1]["content"])
    assert result == {
        "ok": False,
        "problem": "not_found",
        "message": "No such patient on the caller's phone number",
        "alternatives": [],
    }


def test_llm_taken_slot_comes_back_with_alternatives(fake_llm, clinic, ravi, sharma):
    AppointmentFactory(clinic=clinic, doctor=sharma, scheduled_time=ist(16, 10))
    fake_llm.script = [
        tool_calls(
            (
                "book_appointment",
                {"patient_id": ravi.pk, "doctor_id": sharma.pk, "start": "2031-01-16T10:00"},
            )
        ),
        message("10 baje ka slot booked hai; saadhe 9 ya saadhe 10?"),
    ]
    build_agent(clinic, ravi.phone, now=NOW).respond("kal 10 baje book kar do")
    result = json.loads(fake_llm.requests[1]["json"]["messages"][-1]["content"])
    assert result["ok"] is False and result["problem"] == "taken"
    assert [a["start"] for a in result["alternatives"]] == [
        "2031-01-16T09:00",
        "2031-01-16T09:30",
        "2031-01-16T10:30",
    ]


def test_llm_transfer_and_end_call_tools_set_the_reply_flags(fake_llm, clinic, ravi):
    fake_llm.script = [
        tool_calls(("transfer_to_human", {"reason": "asked"})),
        message("Connecting you to our receptionist."),
    ]
    reply = build_agent(clinic, ravi.phone, now=NOW).respond("I want to speak to a human")
    assert reply.transfer and not reply.end_call

    fake_llm.script = [tool_calls(("end_call", {})), message("Dhanyavaad, namaste!")]
    agent = build_agent(clinic, ravi.phone, now=NOW)
    reply = agent.respond("bas, dhanyavaad")
    assert reply.end_call and not reply.transfer
    assert agent.state.ended


def test_llm_cancels_through_the_services(fake_llm, clinic, ravi, sharma):
    appointment = AppointmentFactory(
        clinic=clinic, patient=ravi, doctor=sharma, scheduled_time=ist(16, 11)
    )
    fake_llm.script = [
        tool_calls(("list_appointments", {})),
        tool_calls(("cancel_appointment", {"appointment_id": appointment.pk})),
        message("Appointment cancel ho gaya."),
    ]
    agent = build_agent(clinic, ravi.phone, now=NOW)
    agent.respond("haan cancel kar do")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    listed = json.loads(fake_llm.requests[1]["json"]["messages"][-1]["content"])
    assert listed["appointments"][0]["appointment_id"] == appointment.pk
    assert "cancel_appointment" in agent.intents_detected


def test_llm_http_error_falls_back_to_rules_for_the_rest_of_the_call(
    fake_llm, clinic, ravi, sharma
):
    fake_llm.script = [Reply({"error": {"message": "overloaded"}}, status=503)]
    c = Call(clinic, ravi.phone)
    c.greet()
    reply = c.say("I want to book with Dr Sharma tomorrow at 10 am")
    assert reply.text == "Dr. Priya Sharma, tomorrow at 10 am, for Ravi Kumar. Shall I book it?"
    assert c.state["kind"] == "llm" and c.state["mode"] == "rules"
    c.say("yes")  # the next webhook: rules again, no model call
    assert len(fake_llm.requests) == 1
    assert Appointment.objects.get().scheduled_time == utc(2031, 1, 16, 4, 30)


def test_llm_timeout_falls_back_to_rules(fake_llm, clinic, ravi, sharma, settings):
    settings.LLM_TIMEOUT_SECONDS = 0.3
    fake_llm.script = [Reply(message("too late"), delay=1.5)]
    agent = build_agent(clinic, ravi.phone, now=NOW)
    started = time.monotonic()
    reply = agent.respond("Dr Sharma kal 10 baje")
    assert time.monotonic() - started < 1.2
    assert reply.text.endswith("Book kar doon?")
    assert agent.mode == "rules"


def test_llm_unreachable_or_malformed_falls_back(fake_llm, clinic, ravi, sharma, settings):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
    reply = build_agent(clinic, ravi.phone, now=NOW).respond("What are your fees?")
    assert reply.text.startswith("Fees: consultation: 500 rupees")

    settings.LLM_BASE_URL = fake_llm.base_url
    fake_llm.script = [{"unexpected": "shape"}]
    reply = build_agent(clinic, ravi.phone, now=NOW).respond("What are your fees?")
    assert reply.text.startswith("Fees: consultation: 500 rupees")


def test_llm_failure_after_a_booking_reads_it_back_instead_of_booking_twice(
    fake_llm, clinic, ravi, sharma
):
    fake_llm.script = [
        tool_calls(
            (
                "book_appointment",
                {"patient_id": ravi.pk, "doctor_id": sharma.pk, "start": "2031-01-16T10:00"},
            )
        ),
        Reply({"error": "boom"}, status=500),
    ]
    agent = build_agent(clinic, ravi.phone, now=NOW)
    reply = agent.respond("yes book Dr Sharma tomorrow at 10 am")
    appointment = Appointment.objects.get()
    assert reply.text.startswith(
        "Done! Ravi Kumar's appointment with Dr. Priya Sharma is booked for tomorrow at 10 am."
    )
    assert agent.appointment_created == appointment.pk
    assert agent.mode == "rules"


def test_llm_dtmf_is_sent_as_a_keypad_note(fake_llm, clinic, ravi):
    fake_llm.script = [message("Theek hai.")]
    build_agent(clinic, ravi.phone, now=NOW).respond_dtmf("1")
    assert fake_llm.requests[0]["json"]["messages"][-1] == {
        "role": "user",
        "content": "(The caller pressed 1 on the phone keypad.)",
    }


def test_a_slow_model_cannot_hold_a_turn_beyond_its_budget(
    fake_llm, clinic, ravi, sharma, settings
):
    settings.LLM_TURN_BUDGET_SECONDS = 0.6
    fake_llm.script = [
        Reply(tool_calls(("list_doctors", {})), delay=0.3),
        Reply(message("finally"), delay=2.5),  # without a budget: cut at 2 s (the timeout)
    ]
    agent = build_agent(clinic, ravi.phone, now=NOW)
    started = time.monotonic()
    reply = agent.respond("Dr Sharma kal 10 baje")
    assert time.monotonic() - started < 1.5
    assert reply.text.endswith("Book kar doon?")  # the rules answered
    assert agent.mode == "rules"


@pytest.mark.parametrize(
    "question",
    [
        "Welcome! May I have your name, please?",
        "Ji zaroor. Aapka naam kya hai?",
        "जी, आपका नाम क्या है?",
        "I have the name as Meera Nair. Is that right?",
    ],
)
def test_when_the_model_asks_a_new_callers_name_the_recogniser_listens_for_a_name(
    fake_llm, clinic, sharma, question
):
    fake_llm.script = [message(question)]
    reply = build_agent(clinic, "+919812345600", now=NOW).respond("I want an appointment")
    assert reply.expects == "name"


def test_other_questions_and_known_callers_are_heard_as_usual(fake_llm, clinic, ravi, sharma):
    # A question about something else, and a caller already known by the phone.
    fake_llm.script = [message("Namaste! Dr. Sharma is in on Monday. Which time suits you?")]
    assert build_agent(clinic, "+919812345600", now=NOW).respond("hi").expects == "intent"
    fake_llm.script = [message("Whose name should I book it under?")]
    assert build_agent(clinic, ravi.phone, now=NOW).respond("book for tomorrow").expects == (
        "intent"
    )


def test_a_family_phone_is_not_asked_for_a_name_to_register(fake_llm, clinic, family, sharma):
    agent = build_agent(clinic, family[0].phone, now=NOW)
    agent.greet()  # a template: no patient chosen yet among the family
    fake_llm.script = [message("Whose name should I book it under?")]
    assert agent.respond("appointment chahiye").expects == "intent"
