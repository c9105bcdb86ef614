"""The phone path end to end: synthesized caller speech through the real Media Streams
consumer, offline speech recognition and synthesis, the agent and the clinic services.

Each call runs in real time (the simulated caller streams 20 ms frames every 20 ms,
as Twilio does), so these tests take a few seconds each.
"""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from clinic.models import Appointment, AppointmentStatus
from clinic.tests.factories import (
    AppointmentFactory,
)
from vaani.asgi import application
from voice import services
from voice.models import CallLog, CallStatus
from voice.simulator import SimulatedCaller, communicator_transport, run_in_process
from voice.telephony import _console
from voice.tests.conftest import BOOKING, CALLER, CLINIC_NUMBER, tomorrow_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def call(clinic, sentences, sid, **kwargs):
    return async_to_sync(run_in_process)(
        clinic=clinic,
        caller_phone=CALLER,
        sentences=sentences,
        language="en",
        call_sid=sid,
        to_number=CLINIC_NUMBER,
        **kwargs,
    )


def test_booking_by_voice_ends_with_the_appointment_audio_and_a_complete_call_log(line):
    clinic, doctor, patient = line
    caller = call(
        clinic,
        [BOOKING, "yes"],
        "CAe2ebook000000000000000000000001",
    )
    appointment = Appointment.objects.get(patient=patient)
    assert appointment.doctor == doctor
    assert appointment.scheduled_time == tomorrow_at(clinic, 10)
    assert (appointment.source, appointment.status) == ("voice", AppointmentStatus.SCHEDULED)
    assert appointment.call_sid == "CAe2ebook000000000000000000000001"
    # The agent really spoke: paced frames for the greeting and each reply.
    assert len(caller.log.agent_turns) >= 3
    assert all(turn.frames > 10 for turn in caller.log.agent_turns)
    log = CallLog.objects.get(call_sid="CAe2ebook000000000000000000000001")
    assert log.status == CallStatus.COMPLETED and log.finalized_at is not None
    assert log.appointment_created == appointment
    assert log.patient == patient
    assert "book_appointment" in log.intents_detected
    assert log.summary and log.sentiment
    speakers = [turn["speaker"] for turn in log.turns]
    assert speakers[0] == "agent" and "patient" in speakers
    assert any("sharma" in t["text"].lower() for t in log.turns if t["speaker"] == "patient")
    assert log.latency["turns"] >= 2 and log.latency["turn_p50_ms"] > 0
    assert log.providers["stt"] == "pocketsphinx" and log.providers["tts"] == "espeak"
    events = {e["event"] for e in caller.log.events}
    assert {"session_state", "transcript"} <= events
    states = {e["state"] for e in caller.log.events if e["event"] == "session_state"}
    assert {"speaking", "listening", "processing", "thinking"} <= states


def test_rescheduling_by_voice_moves_the_appointment(line):
    clinic, doctor, patient = line
    appointment = AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=tomorrow_at(clinic, 10)
    )
    call(
        clinic,
        ["I want to reschedule my appointment to tomorrow at 11 am", "yes"],
        "CAe2eresched0000000000000000000001",
    )
    appointment.refresh_from_db()
    assert appointment.scheduled_time == tomorrow_at(clinic, 11)
    assert appointment.status == AppointmentStatus.SCHEDULED
    log = CallLog.objects.get(call_sid="CAe2eresched0000000000000000000001")
    assert "reschedule_appointment" in log.intents_detected


def test_cancelling_by_voice_cancels_and_keeps_the_appointment(line):
    clinic, doctor, patient = line
    appointment = AppointmentFactory(
        clinic=clinic, patient=patient, doctor=doctor, scheduled_time=tomorrow_at(clinic, 10)
    )
    call(clinic, ["Please cancel my appointment", "yes"], "CAe2ecancel00000000000000000000001")
    appointment.refresh_from_db()
    turns = CallLog.objects.get(call_sid="CAe2ecancel00000000000000000000001").turns
    assert appointment.status == AppointmentStatus.CANCELLED, turns
    log = CallLog.objects.get(call_sid="CAe2ecancel00000000000000000000001")
    assert "cancel_appointment" in log.intents_detected


# --- the socket itself ------------------------------------------------------------------------


async def _open(sid, token, *, clinic):
    communicator = WebsocketCommunicator(application, f"/api/v1/voice/stream/{sid}")
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    send, receive = await communicator_transport(communicator)
    from voice import runtime

    caller = SimulatedCaller(
        send=send,
        receive=receive,
        call_sid=sid,
        token=token,
        caller_phone=CALLER,
        tts=runtime.text_to_speech(),
    )
    return communicator, caller


def _start_call(clinic, sid):
    return services.start_inbound_call(
        clinic=clinic, call_sid=sid, from_number=CALLER, to_number=CLINIC_NUMBER
    )


async def _closed_with(communicator, timeout=10):
    """The close code, whether this helper or the simulated caller's reader got the close."""

    async def read_here():
        while True:
            message = await communicator.receive_output(timeout=timeout)
            if message["type"] == "websocket.close":
                return message

    async def read_by_caller():
        while getattr(communicator, "close_message", None) is None:
            await asyncio.sleep(0.02)
        return communicator.close_message

    tasks = [asyncio.ensure_future(read_here()), asyncio.ensure_future(read_by_caller())]
    done, pending = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if not done:
        raise TimeoutError("the stream was not closed")
    return done.pop().result().get("code")


def test_a_stream_with_a_wrong_token_is_refused_and_the_call_untouched(line):
    clinic, *_ = line
    _start_call(clinic, "CAbadtoken00000000000000000000001")

    async def scenario():
        communicator, caller = await _open(
            "CAbadtoken00000000000000000000001", "wrong", clinic=clinic
        )
        await caller.start()
        code = await _closed_with(communicator)
        await caller.close()
        return code

    assert async_to_sync(scenario)() == 4403
    log = CallLog.objects.get(call_sid="CAbadtoken00000000000000000000001")
    assert log.stream_connected_at is None and log.finalized_at is None


def test_a_second_socket_for_the_same_call_is_refused(line):
    clinic, *_ = line
    incoming = _start_call(clinic, "CAsecond000000000000000000000001")

    async def scenario():
        first, caller1 = await _open(
            incoming.call_log.call_sid, incoming.stream_token, clinic=clinic
        )
        await caller1.start()
        assert await caller1.wait_for_agent(timeout=30)
        second, caller2 = await _open(
            incoming.call_log.call_sid, incoming.stream_token, clinic=clinic
        )
        await caller2.start()
        code = await _closed_with(second)
        await caller2.close()
        await caller1.stop()
        await caller1.close()
        await first.disconnect()
        return code

    assert async_to_sync(scenario)() == 4403


def test_stream_sid_in_the_url_must_match_the_start_event(line):
    clinic, *_ = line
    incoming = _start_call(clinic, "CAmatch0000000000000000000000001")

    async def scenario():
        communicator, caller = await _open(
            "CAother0000000000000000000000001", incoming.stream_token, clinic=clinic
        )
        caller.call_sid = "CAmatch0000000000000000000000001"
        await caller.start()
        code = await _closed_with(communicator)
        await caller.close()
        return code

    assert async_to_sync(scenario)() == 4403


def test_malformed_and_out_of_order_frames_change_nothing_and_the_call_still_works(line):
    clinic, _doctor, _patient = line
    incoming = _start_call(clinic, "CAmalformed00000000000000000000001")

    async def scenario():
        communicator, caller = await _open(
            incoming.call_log.call_sid, incoming.stream_token, clinic=clinic
        )
        # Before start: media, marks and garbage are ignored.
        for junk in [
            "not json",
            "[1, 2, 3]",
            json.dumps({"event": "media", "media": {"payload": "AAAA"}}),
            json.dumps({"event": "mark"}),
            json.dumps({"event": "wat"}),
            json.dumps({"event": "media", "media": {"payload": "%%% not base64 %%%"}}),
        ]:
            await communicator.send_to(text_data=junk)
        await caller.start()
        assert await caller.wait_for_agent(timeout=30)
        for junk in [
            json.dumps({"event": "media", "media": {"payload": "!!!"}}),
            json.dumps({"event": "media", "media": {}}),
            json.dumps({"event": "dtmf", "dtmf": {}}),
            json.dumps({"event": "start", "start": {"callSid": "CAsomeoneelse"}}),  # second start
        ]:
            await communicator.send_to(text_data=junk)
        await caller.press("9")  # a real keypad press still gets an answer
        assert await caller.wait_for_agent(timeout=30)
        await caller.stop()
        await caller.close()
        await communicator.disconnect()

    async_to_sync(scenario)()
    log = CallLog.objects.get(call_sid="CAmalformed00000000000000000000001")
    assert log.finalized_at is not None
    assert any(t["text"] == "[keypad 9]" for t in log.turns)


def test_dropped_socket_mid_call_still_finalizes_the_call_log(line):
    clinic, *_ = line
    incoming = _start_call(clinic, "CAdropped000000000000000000000001")

    async def scenario():
        communicator, caller = await _open(
            incoming.call_log.call_sid, incoming.stream_token, clinic=clinic
        )
        await caller.start()
        await asyncio.sleep(1.0)  # mid-greeting
        await caller.close()
        await communicator.disconnect(code=1006)

    async_to_sync(scenario)()
    log = CallLog.objects.get(call_sid="CAdropped000000000000000000000001")
    assert log.finalized_at is not None
    assert log.status == CallStatus.COMPLETED
    assert log.turns and log.turns[0]["speaker"] == "agent"


def test_barge_in_stops_the_agent_and_a_backchannel_does_not(line, settings):
    clinic, *_ = line
    incoming = _start_call(clinic, "CAbargein000000000000000000000001")

    async def scenario():
        communicator, caller = await _open(
            incoming.call_log.call_sid, incoming.stream_token, clinic=clinic
        )
        await caller.start()
        await asyncio.sleep(0.8)  # the greeting is playing
        caller.say("ok")  # a backchannel: the agent keeps talking
        await asyncio.sleep(1.5)
        clears_after_backchannel = caller.log.clears
        caller.say("I want to book an appointment with Doctor Sharma please")
        await asyncio.sleep(2.0)
        clears_after_barge_in = caller.log.clears
        await caller.stop()
        await caller.close()
        await communicator.disconnect()
        return clears_after_backchannel, clears_after_barge_in

    backchannel, barge_in = async_to_sync(scenario)()
    assert backchannel == 0
    assert barge_in == 1
    log = CallLog.objects.get(call_sid="CAbargein000000000000000000000001")
    greeting = log.turns[0]
    assert greeting["speaker"] == "agent" and greeting.get("interrupted") is True
    assert not greeting.get("heard")
    assert log.latency["barge_ins"] == 1


def test_dtmf_answers_a_yes_no_question(line):
    clinic, _doctor, patient = line

    async def scenario():
        incoming = await database_sync_to_async(_start_call)(
            clinic, "CAdtmf00000000000000000000000001"
        )
        communicator, caller = await _open(
            incoming.call_log.call_sid, incoming.stream_token, clinic=clinic
        )
        await caller.start()
        assert await caller.wait_for_agent(timeout=30)
        assert await caller.speak_and_wait(
            "I want to book an appointment with Dr. Sharma tomorrow at 11 am", timeout=30
        )
        await caller.press("1")  # yes
        assert await caller.wait_for_agent(timeout=30)
        await caller.stop()
        await caller.close()
        await communicator.disconnect()

    async_to_sync(scenario)()
    assert Appointment.objects.filter(
        patient=patient, scheduled_time=tomorrow_at(clinic, 11)
    ).exists()


def test_silence_gets_a_prompt_then_a_polite_goodbye_and_hang_up(line, settings):
    clinic, *_ = line
    settings.VOICE_IDLE_TIMEOUT_SECONDS = 1.0
    _console.actions.clear()
    incoming = _start_call(clinic, "CAidle00000000000000000000000001")

    async def scenario():
        communicator, caller = await _open(
            incoming.call_log.call_sid, incoming.stream_token, clinic=clinic
        )
        await caller.start()
        code = await _closed_with(communicator, timeout=60)
        await caller.close()
        return code

    async_to_sync(scenario)()
    log = CallLog.objects.get(call_sid="CAidle00000000000000000000000001")
    agent_lines = [t["text"] for t in log.turns if t["speaker"] == "agent"]
    assert "Are you still there?" in agent_lines[1]
    assert "Goodbye" in agent_lines[-1]
    assert ("hangup", "CAidle00000000000000000000000001") in _console.actions
    assert log.finalized_at is not None
