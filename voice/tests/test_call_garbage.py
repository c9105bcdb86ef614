"""A finished call leaves none of its own objects for the garbage collector.

Every reference cycle a call leaves behind is freed only by a collection; the call's
objects live for seconds, so they reach the oldest generation, and the full
collections that free them pause the event loop every call's audio goes out from.
Measured: with the collector off during a call and saving what it finds, the garbage
one collection frees after it, and which of it is the project's own.

Only the project's objects are asserted on: the libraries' garbage depends on the
mode. With Redis, a connection that channels_redis opens during the call leaves ~80
objects (redis-py's handshake asks for maintenance notifications, Redis 7.0 refuses,
and the caught error keeps its traceback's frames in a cycle); embedded, ~10 are left.
Before the consumer's own cycles were removed, the consumer, its conversation and
their callbacks were in that garbage (a call left ~150 objects in all).
"""

import gc
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync

from clinic.tests.factories import ClinicPhoneNumberFactory, PatientFactory
from voice.simulator import run_in_process
from voice.tests.conftest import CALLER, CLINIC_NUMBER

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PROJECT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = {path.name for path in PROJECT.iterdir() if (path / "__init__.py").exists()}


def _ours(obj) -> bool:
    """An instance of a class of ours, or a frame of our code."""
    if type(obj).__name__ == "frame":
        filename = obj.f_code.co_filename
        return filename.startswith(str(PROJECT)) and "site-packages" not in filename
    return type(obj).__module__.split(".")[0] in OUR_PACKAGES


def _describe(obj) -> str:
    if type(obj).__name__ == "frame":
        return f"frame {obj.f_code.co_filename}:{obj.f_code.co_name}"
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def test_a_call_leaves_no_reference_cycles_of_its_own(clinic):
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

    async def garbage_of_second_call() -> list:
        # One event loop for both, as in the server (channels_redis pools per loop).
        await call("CAgarbage0")  # the first call builds what the process keeps
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            await call("CAgarbage1")
            gc.collect()
            return list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()

    garbage = async_to_sync(garbage_of_second_call)()
    ours = sorted({_describe(obj) for obj in garbage if _ours(obj)})
    assert ours == [], f"{len(garbage)} objects of cyclic garbage, ours among them: {ours}"
