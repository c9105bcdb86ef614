"""A finished call leaves (almost) nothing for the garbage collector.

Every reference cycle a call leaves behind is freed only by a collection; the call's
objects live for seconds, so they reach the oldest generation, and the full
collections that free them pause the event loop every call's audio goes out from.
Measured: with the collector off during a call, what one collection frees after it.
"""

import gc

import pytest
from asgiref.sync import async_to_sync

from clinic.tests.factories import ClinicPhoneNumberFactory, PatientFactory
from voice.simulator import run_in_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

CLINIC_NUMBER = "+911234567890"
CALLER = "+919812300001"
# This test's own side (simulated caller, test transport) leaves ~10; before the
# consumer's cycles were removed a call left ~150.
MAX_CYCLIC_GARBAGE = 60


def test_a_call_leaves_no_reference_cycles_behind(clinic):
    ClinicPhoneNumberFactory(clinic=clinic, number=CLINIC_NUMBER)
    PatientFactory(clinic=clinic, name="Ravi Verma", phone=CALLER, language_preference="en")

    async def call(sid):
        await run_in_process(
            clinic=clinic,
            caller_phone=CALLER,
            sentences=["What are your clinic hours"],
            language="en",
            call_sid=sid,
            to_number=CLINIC_NUMBER,
        )

    async def two_calls() -> int:
        # One event loop for both, as in the server: with Redis, channels_redis keeps a
        # connection pool per loop, and a new loop per call would count new connections'
        # garbage (redis-py's handshake errors and their tracebacks), not the call's.
        await call("CAgarbage0")  # the first call builds what the process keeps
        gc.collect()
        gc.disable()
        try:
            await call("CAgarbage1")
            return gc.collect()
        finally:
            gc.enable()

    collected = async_to_sync(two_calls)()
    assert collected <= MAX_CYCLIC_GARBAGE
