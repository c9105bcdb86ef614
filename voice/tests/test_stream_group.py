"""Live call events reach the clinic's channel group, where the front-desk UI listens."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from clinic.tests.factories import ClinicPhoneNumberFactory, DoctorFactory, PatientFactory
from vaani.asgi import application
from voice import runtime, services
from voice.consumers import clinic_group
from voice.simulator import SimulatedCaller, communicator_transport

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_session_state_and_transcripts_are_published_to_the_clinic_group(clinic):
    ClinicPhoneNumberFactory(clinic=clinic, number="+911234567890")
    DoctorFactory(clinic=clinic, name="Dr. Priya Sharma")
    PatientFactory(clinic=clinic, phone="+919812300009", language_preference="en")
    incoming = services.start_inbound_call(
        clinic=clinic,
        call_sid="CAgroup0000000000000000000000001",
        from_number="+919812300009",
        to_number="+911234567890",
    )

    async def scenario():
        layer = get_channel_layer()
        listener = await layer.new_channel()
        await layer.group_add(clinic_group(clinic.pk), listener)
        communicator = WebsocketCommunicator(
            application, f"/api/v1/voice/stream/{incoming.call_log.call_sid}"
        )
        assert (await communicator.connect(timeout=10))[0]
        send, receive = await communicator_transport(communicator)
        caller = SimulatedCaller(
            send=send,
            receive=receive,
            call_sid=incoming.call_log.call_sid,
            token=incoming.stream_token,
            caller_phone="+919812300009",
            tts=runtime.text_to_speech(),
        )
        await caller.start()
        assert await caller.wait_for_agent(timeout=30)
        events = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(listener), timeout=1)
            except TimeoutError:
                break
            events.append(message)
        await caller.stop()
        await caller.close()
        await communicator.disconnect()
        return events

    events = async_to_sync(scenario)()
    assert events and all(e["type"] == "call.event" for e in events)
    assert {e["call_sid"] for e in events} == {"CAgroup0000000000000000000000001"}
    kinds = {e["event"]["event"] for e in events}
    assert kinds == {"session_state", "transcript"}
    greeting = next(e["event"] for e in events if e["event"]["event"] == "transcript")
    assert greeting["direction"] == "outbound" and greeting["text"]
