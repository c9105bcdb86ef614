"""Provider selection by plain config, and a circuit breaker for provider calls.

Config is a plain dict so it can come from Django settings, a clinic row, a
CLI flag or a benchmark file without this package importing any of them::

    providers = build_providers({
        "stt": {"provider": "pocketsphinx", "doctor_names": ["Sharma", "Rao"]},
        "tts": {"provider": "espeak", "rate_wpm": 160},
        "vad": {"provider": "silero"},
    })

Cloud providers (Deepgram, Cartesia, ...) register a factory under a new name
with :meth:`ProviderRegistry.register`; callers do not change.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from .stt import SpeechToText, Transcript
from .tts import TextToSpeech
from .vad import VoiceActivityDetector

T = TypeVar("T")
R = TypeVar("R")


class ProviderRegistry(Generic[T]):
    """Name -> factory(options) for one kind of provider (stt, tts, vad)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T] | None = None) -> Any:
        """Register ``factory(**options)``; usable as a decorator."""

        def add(f: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = f
            return f

        return add(factory) if factory is not None else add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, config: Mapping[str, Any] | str) -> T:
        """``{"provider": name, **options}`` (or just a name) -> provider instance."""
        options = {"provider": config} if isinstance(config, str) else dict(config)
        name = options.pop("provider", None)
        if name not in self._factories:
            known = ", ".join(self.names())
            raise ValueError(f"unknown {self.kind} provider {name!r}; known: {known}")
        return self._factories[name](**options)


STT_PROVIDERS: ProviderRegistry[SpeechToText] = ProviderRegistry("stt")
TTS_PROVIDERS: ProviderRegistry[TextToSpeech] = ProviderRegistry("tts")
VAD_PROVIDERS: ProviderRegistry[VoiceActivityDetector] = ProviderRegistry("vad")


# Offline defaults.  Imports happen inside the factories so that selecting a
# cloud provider never loads the offline models (and vice versa).
@STT_PROVIDERS.register("pocketsphinx")
def _pocketsphinx(**options: Any) -> SpeechToText:
    from .stt import PocketsphinxSTT

    return PocketsphinxSTT(**options)


@TTS_PROVIDERS.register("espeak")
def _espeak(**options: Any) -> TextToSpeech:
    from .tts import EspeakTTS

    return EspeakTTS(**options)


# Cloud providers (voice/pipeline/cloud).  Options: ``api_key``, ``url`` and the
# client's own; ``fallback`` (an offline provider config) wraps the client with a
# circuit breaker (``breaker``: CircuitBreaker options or instance) and that fallback.
@STT_PROVIDERS.register("deepgram")
def _deepgram(*, fallback: Any = None, breaker: Any = None, **options: Any) -> SpeechToText:
    from .cloud.deepgram import DeepgramSTT
    from .cloud.fallback import with_fallback

    return with_fallback("stt", "deepgram", DeepgramSTT(**options), fallback, breaker)


@TTS_PROVIDERS.register("cartesia")
def _cartesia(*, fallback: Any = None, breaker: Any = None, **options: Any) -> TextToSpeech:
    from .cloud.cartesia import CartesiaTTS
    from .cloud.fallback import with_fallback

    return with_fallback("tts", "cartesia", CartesiaTTS(**options), fallback, breaker)


@VAD_PROVIDERS.register("silero")
def _silero(sample_rate: int = 8000) -> VoiceActivityDetector:
    from .vad import SileroVAD

    return SileroVAD(sample_rate)


@VAD_PROVIDERS.register("webrtc")
def _webrtc(sample_rate: int = 8000, aggressiveness: int = 2) -> VoiceActivityDetector:
    from .vad import WebRtcVAD

    return WebRtcVAD(sample_rate, aggressiveness)


@VAD_PROVIDERS.register("energy")
def _energy(sample_rate: int = 8000, floor_dbfs: float = -45.0) -> VoiceActivityDetector:
    from .vad import EnergyVAD

    return EnergyVAD(sample_rate, floor_dbfs)


DEFAULT_CONFIG: Mapping[str, Mapping[str, Any]] = {
    "stt": {"provider": "pocketsphinx"},
    "tts": {"provider": "espeak"},
    "vad": {"provider": "silero"},
}


@dataclass
class Providers:
    """What one process needs.  STT/TTS are shared; VAD is stateful, so one per call."""

    stt: SpeechToText
    tts: TextToSpeech
    vad_config: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_CONFIG["vad"]))

    def new_vad(self) -> VoiceActivityDetector:
        return VAD_PROVIDERS.create(self.vad_config)


def build_providers(config: Mapping[str, Any] | None = None) -> Providers:
    """Build from ``{"stt": {...}, "tts": {...}, "vad": {...}}``.

    Missing kinds fall back to the offline defaults.
    """
    config = config or {}
    merged = {kind: config.get(kind, DEFAULT_CONFIG[kind]) for kind in DEFAULT_CONFIG}
    providers = Providers(
        stt=STT_PROVIDERS.create(merged["stt"]),
        tts=TTS_PROVIDERS.create(merged["tts"]),
        vad_config=(
            {"provider": merged["vad"]} if isinstance(merged["vad"], str) else dict(merged["vad"])
        ),
    )
    providers.new_vad()  # fail at start-up, not on the first call, if the VAD cannot load
    return providers


# ---------------------------------------------------------------------------
# Circuit breaker
# ---------------------------------------------------------------------------


class CircuitState(StrEnum):
    CLOSED = "closed"  # calls flow
    OPEN = "open"  # calls rejected until the cool-down elapses
    HALF_OPEN = "half_open"  # a limited number of trial calls decide


class CircuitOpenError(RuntimeError):
    """Raised instead of calling a provider whose circuit is open."""


@dataclass(frozen=True)
class StateChange:
    at: float
    old: CircuitState
    new: CircuitState
    reason: str


class CircuitBreaker:
    """Stops hammering a failing provider and lets the caller fall back fast.

    Opens after ``failure_threshold`` consecutive failures (exceptions of
    ``failure_exceptions`` or timeouts); after ``reset_timeout_s`` it goes
    half-open and lets ``half_open_max_calls`` trial calls through: a success
    closes it, a failure re-opens it for another cool-down.  Thread-safe, so
    it can guard calls made from executor threads as well as coroutines.
    """

    def __init__(
        self,
        name: str = "provider",
        *,
        failure_threshold: int = 3,
        reset_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        clock: Callable[[], float] = time.monotonic,
        on_state_change: Callable[[StateChange], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.half_open_max_calls = half_open_max_calls
        self.failure_exceptions = failure_exceptions
        self._clock = clock
        self._on_state_change = on_state_change
        self._lock = threading.RLock()
        self._state = CircuitState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._half_open_in_flight = 0
        self.history: list[StateChange] = []

    # -- state --------------------------------------------------------------
    @property
    def state(self) -> CircuitState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def _transition(self, new: CircuitState, reason: str) -> None:
        if new is self._state:
            return
        change = StateChange(self._clock(), self._state, new, reason)
        self._state = new
        self.history.append(change)
        if new is CircuitState.OPEN:
            self._opened_at = change.at
        if new is not CircuitState.HALF_OPEN:
            self._half_open_in_flight = 0
        if self._on_state_change is not None:
            self._on_state_change(change)

    def _maybe_half_open(self) -> None:
        cooled = self._clock() - self._opened_at >= self.reset_timeout_s
        if self._state is CircuitState.OPEN and cooled:
            self._transition(CircuitState.HALF_OPEN, "cool-down elapsed")

    # -- manual protocol (for callers that cannot use call()) -------------
    def allow_request(self) -> bool:
        """Reserve permission for one call; pair with record_success/record_failure."""
        with self._lock:
            self._maybe_half_open()
            if self._state is CircuitState.CLOSED:
                return True
            half_open = self._state is CircuitState.HALF_OPEN
            if half_open and self._half_open_in_flight < self.half_open_max_calls:
                self._half_open_in_flight += 1
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._consecutive_failures = 0
            if self._state is CircuitState.HALF_OPEN:
                self._transition(CircuitState.CLOSED, "trial call succeeded")

    def record_failure(self, reason: str = "failure") -> None:
        with self._lock:
            self._consecutive_failures += 1
            if self._state is CircuitState.HALF_OPEN:
                self._transition(CircuitState.OPEN, f"trial call failed: {reason}")
            elif (
                self._state is CircuitState.CLOSED
                and self._consecutive_failures >= self.failure_threshold
            ):
                n = self._consecutive_failures
                self._transition(CircuitState.OPEN, f"{n} consecutive failures: {reason}")

    def _release_unjudged(self) -> None:
        # An exception outside failure_exceptions (e.g. bad input) says nothing
        # about provider health: free the half-open slot without a verdict.
        with self._lock:
            if self._state is CircuitState.HALF_OPEN and self._half_open_in_flight > 0:
                self._half_open_in_flight -= 1

    def _reject(self) -> CircuitOpenError:
        return CircuitOpenError(f"circuit {self.name!r} is {self.state.value}")

    # -- wrappers ---------------------------------------------------------
    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        if not self.allow_request():
            raise self._reject()
        try:
            result = fn(*args, **kwargs)
        except self.failure_exceptions as exc:
            self.record_failure(type(exc).__name__)
            raise
        except BaseException:
            self._release_unjudged()
            raise
        self.record_success()
        return result

    async def call_async(
        self,
        fn: Callable[..., Awaitable[R]],
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> R:
        """Await ``fn(*args)``; a timeout counts as a failure (and raises TimeoutError)."""
        if not self.allow_request():
            raise self._reject()
        try:
            result = await asyncio.wait_for(fn(*args, **kwargs), timeout)
        except TimeoutError:
            self.record_failure("timeout")
            raise
        except asyncio.CancelledError:
            self._release_unjudged()  # our caller gave up (e.g. barge-in): not the provider's fault
            raise
        except self.failure_exceptions as exc:
            self.record_failure(type(exc).__name__)
            raise
        except BaseException:
            self._release_unjudged()
            raise
        self.record_success()
        return result


class FallbackSpeechToText:
    """Primary STT (e.g. cloud) guarded by a breaker, offline fallback otherwise."""

    def __init__(
        self, primary: SpeechToText, fallback: SpeechToText, breaker: CircuitBreaker | None = None
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker or CircuitBreaker("stt")

    def transcribe(
        self, pcm16: bytes, sample_rate: int, *, language: str, expects: str = ""
    ) -> Transcript:
        try:
            return self.breaker.call(
                self.primary.transcribe, pcm16, sample_rate, language=language, expects=expects
            )
        except Exception:
            return self.fallback.transcribe(pcm16, sample_rate, language=language, expects=expects)
