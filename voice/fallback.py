"""When a call must be served by Twilio's ``<Gather>``/``<Say>`` instead of our stream.

Process-wide, consulted by ``/api/v1/voice/incoming`` for every call:

- ``settings.VOICE_FORCE_GATHER`` (bool, default False) sends every call to the
  gather flow: the operator's switch during an outage or a deploy;
- the speech providers' circuit breakers, kept in a registry here (``breaker("stt")``,
  ``breaker("tts")``, or any other name): the streaming side records each
  provider call's outcome into them
  (``record_failure("stt", "timeout")`` / ``record_success("stt")``, or
  ``breaker("stt").call(...)``); while one of them is open, new calls go to gather.
  After its cool-down the breaker goes half-open and calls stream again: the first
  streamed call is the trial that closes it or opens it again. Every breaker in
  the registry counts, so register only those whose opening should stop streaming;
- a clinic may choose gather for good (``Clinic.voice_mode``), see ``use_gather``.

The breakers live in this process only (each worker judges its own providers).
"""

from __future__ import annotations

import threading

from django.conf import settings

from clinic.models import VoiceMode
from voice.pipeline.providers import CircuitBreaker, CircuitState

_lock = threading.Lock()
_breakers: dict[str, CircuitBreaker] = {}


def breaker(name: str) -> CircuitBreaker:
    """The process-wide breaker for one provider kind, created on first use."""
    with _lock:
        found = _breakers.get(name)
        if found is None:
            found = _breakers[name] = CircuitBreaker(name)
        return found


def register(circuit: CircuitBreaker) -> CircuitBreaker:
    """Makes ``circuit`` (e.g. one built with other thresholds) the one for its name."""
    with _lock:
        _breakers[circuit.name] = circuit
    return circuit


def breakers() -> dict[str, CircuitBreaker]:
    with _lock:
        return dict(_breakers)


def record_failure(name: str, reason: str = "failure") -> None:
    breaker(name).record_failure(reason)


def record_success(name: str) -> None:
    breaker(name).record_success()


def reset() -> None:
    """Forgets every breaker (tests; an operator after fixing a provider)."""
    with _lock:
        _breakers.clear()


def force_gather() -> bool:
    return bool(getattr(settings, "VOICE_FORCE_GATHER", False))


def streaming_available() -> bool:
    """False when forced off, or while a speech provider's breaker is open."""
    if force_gather():
        return False
    return all(circuit.state is not CircuitState.OPEN for circuit in breakers().values())


def use_gather(clinic) -> bool:
    """Whether this clinic's new call is answered with the gather flow."""
    return clinic.voice_mode == VoiceMode.GATHER or not streaming_available()
