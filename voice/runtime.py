"""Process-wide voice resources, and the adapter between the pipeline and the agent.

Speech recognizers are built per clinic (biased to its doctors' names and words)
and kept for the life of the process: building the language model takes a while,
a call must not wait for it twice. Text-to-speech is shared by all clinics; voice
activity detectors hold per-call state, so each call gets its own.
"""

import asyncio
import gc
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Max

from clinic.models import Clinic, Doctor
from voice.agent import build_agent
from voice.agent.replies import say
from voice.pipeline.conversation import AgentTurn
from voice.pipeline.providers import STT_PROVIDERS, TTS_PROVIDERS, VAD_PROVIDERS
from voice.pipeline.vocabulary import ClinicVocabulary

_lock = threading.Lock()
_stt_by_clinic: dict[int, tuple[object, object]] = {}
_tts = None


# Database work of live calls (the agent's turns, claiming and finalizing the call log)
# runs on threads of their own: one per call, in order.  Channels'
# ``database_sync_to_async`` sends it all to one process-wide thread by default
# ("thread sensitive"), so with 25 calls every caller's turn queued behind the others'
# (and behind call logs being written): tens of ms at the median, over 100 ms at p95,
# for agent work of 2-7 ms.  One thread per call keeps what "thread sensitive" gave a
# call (its database work in order, never two of its jobs at once, even when a turn is
# abandoned mid-way and the call log is finalized) without the queue across calls.
# Connections are closed after each job, as ``database_sync_to_async`` does.  Idle
# threads are kept for the next calls (starting a thread waits on the event loop).
_idle_db_threads: list[ThreadPoolExecutor] = []
_idle_db_threads_lock = threading.Lock()  # not _lock: that one is held while building STT
_MAX_IDLE_DB_THREADS = 64


def borrow_db_thread() -> ThreadPoolExecutor:
    """A call's database thread; give it back with :func:`return_db_thread`."""
    with _idle_db_threads_lock:
        if _idle_db_threads:
            return _idle_db_threads.pop()
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice-call-db")


def return_db_thread(executor: ThreadPoolExecutor) -> None:
    """Back to the idle ones.  Work still queued on it runs first, in order (a call that
    ended while a turn was in flight): the next call's work waits behind it, that is all."""
    with _idle_db_threads_lock:
        if len(_idle_db_threads) < _MAX_IDLE_DB_THREADS:
            _idle_db_threads.append(executor)
            return
    executor.shutdown(wait=False)


def on_db_thread(fn, executor: ThreadPoolExecutor):
    """``fn`` as a coroutine function run on a call's database thread (see above)."""
    return database_sync_to_async(fn, thread_sensitive=False, executor=executor)


# How long a thread may keep the GIL while another waits for it (CPython's default: 5 ms).
# The event loop of a process serving calls lets go of the GIL at every socket call (a
# frame in, a frame out) and then waits for it again behind whichever thread took it:
# the recogniser (PocketSphinx keeps the GIL while it decodes), the agent's database
# work, synthesis.  At 5 ms a wait, a callback that sends a few frames took 20-40 ms of
# wall time for 0.5 ms of CPU: audio sent late, turns slower.  At 1 ms the waits are
# short; the cost is more frequent switching between busy threads, which is small.
GIL_SWITCH_INTERVAL_S = 0.001


def prepare_process_for_calls() -> None:
    """Once per process, when it starts serving calls (the media stream consumer)."""
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


# The garbage collector.  ``vaani.asgi`` freezes what the process loaded at start-up
# (gc.freeze: left out of every collection), but a process's first calls load and
# build more that lives as long as the process: the URL routes' views, the cloud
# clients and their sockets, the clinic's recognizer, Silero models, the database
# threads' connections.  All of it stayed in the oldest generation, walked by every
# full collection (each took 40-60 ms on the event loop, an audible gap in every reply
# playing).  So once no call is in flight for a moment, what is left after a full
# collection (run then, where it disturbs no call) is frozen as well, if there is
# enough of it to matter.  Never while a call is in flight: its objects would be
# frozen with it, and what of them then became cyclic garbage would never be freed.
# The full collection alone, at an idle moment, also helps: it resets the count
# of objects promoted since the last one, which sets off the next full collection.
REFREEZE_AFTER_IDLE_S = 0.5
REFREEZE_MIN_OBJECTS = 5000  # tracked objects left after the collection
_calls_in_flight = 0
_refreeze_timer: asyncio.TimerHandle | None = None


def call_started() -> None:
    """A call's media stream opened (on the event loop)."""
    global _calls_in_flight, _refreeze_timer
    _calls_in_flight += 1
    if _refreeze_timer is not None:
        _refreeze_timer.cancel()
        _refreeze_timer = None


def call_ended() -> None:
    """Its stream closed: once no call is left for a moment, collect and maybe freeze."""
    global _calls_in_flight, _refreeze_timer
    _calls_in_flight = max(0, _calls_in_flight - 1)
    if _calls_in_flight == 0 and _refreeze_timer is None:
        _refreeze_timer = asyncio.get_running_loop().call_later(
            REFREEZE_AFTER_IDLE_S, _collect_and_freeze_if_idle
        )


def _collect_and_freeze_if_idle() -> None:
    global _refreeze_timer
    _refreeze_timer = None
    if _calls_in_flight:
        return
    collected = gc.collect()
    left = len(gc.get_objects())
    frozen = left >= REFREEZE_MIN_OBJECTS
    if frozen:
        gc.freeze()
    if _gc_log_enabled():
        sys.stderr.write(
            f"vaani-gc idle collected={collected} left={left} frozen_now={int(frozen)}"
            f" frozen={gc.get_freeze_count()} at={time.monotonic():.3f}\n"
        )


def _gc_log_enabled() -> bool:
    from voice import gcwatch

    return gcwatch.installed()


def provider_names() -> dict[str, str]:
    return {
        "stt": settings.VOICE_STT_PROVIDER,
        "tts": settings.VOICE_TTS_PROVIDER,
        "vad": settings.VOICE_VAD_PROVIDER,
    }


def _is_cloud(name: str) -> bool:
    return hasattr(settings, f"{name.upper()}_API_KEY")


def _cloud_options(name: str) -> dict:
    """A cloud provider's key and endpoint from settings: ``<NAME>_API_KEY``, ``<NAME>_URL``
    (default: the real endpoint; tests point it at a local fake), ``<NAME>_VOICE_ID``."""
    if not _is_cloud(name):
        return {}
    prefix = name.upper()
    options = {"api_key": getattr(settings, f"{prefix}_API_KEY", "")}
    for setting, option in (("URL", "url"), ("VOICE_ID", "voice_id")):
        if value := getattr(settings, f"{prefix}_{setting}", ""):
            options[option] = value
    return options


def for_call(provider):
    """A per-call view of a shared provider (its own usage counters), or the provider."""
    view = getattr(provider, "for_call", None)
    return view() if callable(view) else provider


def provider_report(*providers) -> dict:
    """Who served, fallbacks and breaker states of cloud providers, for ``CallLog.providers``."""
    report = {}
    for provider in providers:
        usage = getattr(provider, "usage_report", None)
        if callable(usage):
            report.update(usage())
    return report


def _vocabulary_version(clinic: Clinic):
    return Doctor.objects.filter(clinic=clinic).aggregate(v=Max("updated_at"))["v"]


def speech_to_text(clinic: Clinic):
    """The clinic's recognizer, rebuilt when its doctors change."""
    version = _vocabulary_version(clinic)
    cached = _stt_by_clinic.get(clinic.pk)
    if cached and cached[0] == version:
        return for_call(cached[1])
    with _lock:
        cached = _stt_by_clinic.get(clinic.pk)
        if cached and cached[0] == version:
            return for_call(cached[1])
        doctors = list(Doctor.objects.filter(clinic=clinic).values_list("name", flat=True))
        surnames = [name.replace("Dr.", "").split()[-1] for name in doctors if name.split()]
        vocabulary = ClinicVocabulary(
            phrases=(*doctors, clinic.name),
            doctor_names=tuple(surnames) or ClinicVocabulary.doctor_names,
        )
        name = settings.VOICE_STT_PROVIDER
        options = {"provider": name, "vocabulary": vocabulary, **_cloud_options(name)}
        fallback = getattr(settings, "VOICE_STT_FALLBACK", "pocketsphinx")
        if _is_cloud(name) and fallback:  # the offline recognizer takes over when it fails
            options["fallback"] = {"provider": fallback, "vocabulary": vocabulary}
        stt = STT_PROVIDERS.create(options)
        _stt_by_clinic[clinic.pk] = (version, stt)
        return for_call(stt)


def text_to_speech():
    global _tts
    if _tts is None:
        with _lock:
            if _tts is None:
                name = settings.VOICE_TTS_PROVIDER
                options = {"provider": name, **_cloud_options(name)}
                fallback = getattr(settings, "VOICE_TTS_FALLBACK", "espeak")
                if _is_cloud(name) and fallback:
                    options["fallback"] = fallback
                _tts = TTS_PROVIDERS.create(options)
    return for_call(_tts)


def new_vad():
    return VAD_PROVIDERS.create({"provider": settings.VOICE_VAD_PROVIDER, "sample_rate": 8000})


@dataclass
class AgentAdapter:
    """The sync Django agent, as the async agent the conversation expects.

    Every call into the agent reaches the database, so it runs on the call's
    database thread (:func:`on_db_thread`), never the event loop.
    """

    agent: object
    db_thread: ThreadPoolExecutor

    @staticmethod
    def _turn(reply) -> AgentTurn:
        return AgentTurn(
            text=reply.text,
            language=reply.language,
            end_call=reply.end_call,
            transfer=reply.transfer,
            expects=reply.expects,
        )

    async def greet(self) -> AgentTurn:
        return self._turn(await on_db_thread(self.agent.greet, self.db_thread)())

    async def respond(self, text: str, *, language: str, confidence: float) -> AgentTurn:
        reply = await on_db_thread(self.agent.respond, self.db_thread)(text, confidence=confidence)
        return self._turn(reply)

    async def respond_dtmf(self, digits: str) -> AgentTurn:
        return self._turn(await on_db_thread(self.agent.respond_dtmf, self.db_thread)(digits))

    async def still_there(self, attempt: int) -> AgentTurn:
        language = getattr(self.agent, "language", "en") or "en"
        if attempt <= 1:  # the question is still open: listen for its answer
            return AgentTurn(say("still_there", language), language, expects=self.agent.expects)
        return AgentTurn(say("no_answer_goodbye", language), language, end_call=True)


def make_agent(clinic: Clinic, caller_phone: str, call_sid: str):
    return build_agent(clinic, caller_phone, call_sid=call_sid)
