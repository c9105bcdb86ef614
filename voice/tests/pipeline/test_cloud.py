"""Cloud providers (Deepgram STT, Cartesia TTS) against loopback fakes of their protocols.

Only the transport is faked (``fakes.py``): the real clients speak WebSocket to
127.0.0.1.  Covers the wire protocol (auth, query, audio format, message
parsing, chunk decoding), timeouts and errors, the circuit breaker with the
offline fallback (opening, half-open recovery, what the call log gets), and
provider selection by settings in ``voice.runtime``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time

import pytest

pytest.importorskip("numpy", reason="voice pipeline needs numpy")
pytest.importorskip("websockets", reason="cloud providers need the websockets package")

import numpy as np

from voice.pipeline.cloud import (
    CloudProviderError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderProtocolError,
    ProviderTimeout,
)
from voice.pipeline.cloud.cartesia import CartesiaTTS, _decode_pcm
from voice.pipeline.cloud.deepgram import DeepgramResults, DeepgramSTT, deepgram_language
from voice.pipeline.cloud.fallback import (
    FallbackSTT,
    FallbackTTS,
    reset_shared_breakers,
    shared_breaker,
)
from voice.pipeline.codecs import pcm16_to_mulaw, resample
from voice.pipeline.providers import (
    STT_PROVIDERS,
    TTS_PROVIDERS,
    CircuitBreaker,
    CircuitState,
    build_providers,
)
from voice.pipeline.stt import SpeechToText, Transcript
from voice.pipeline.tts import TextToSpeech, telephony_frames
from voice.pipeline.vocabulary import ClinicVocabulary
from voice.tests.pipeline.fakes import (
    API_KEY,
    FakeCartesia,
    FakeDeepgram,
    by_length,
    script,
    tone_pcm,
)

FAST = {"connect_timeout_s": 1.0, "result_timeout_s": 0.5}
FAST_TTS = {"connect_timeout_s": 1.0, "first_chunk_timeout_s": 0.5, "chunk_timeout_s": 0.5}


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_shared_breakers()
    yield
    reset_shared_breakers()


@pytest.fixture
def deepgram():
    with FakeDeepgram(transcript="hello") as server:
        yield server


@pytest.fixture
def cartesia():
    with FakeCartesia() as server:
        yield server


def tone_8k(seconds: float = 1.0, rate: int = 8000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class OfflineSTT:
    name = "pocketsphinx"

    def __init__(self, text="offline"):
        self.text, self.calls, self.expects = text, 0, []

    def transcribe(self, pcm16, sample_rate, *, language, expects=""):
        self.calls += 1
        self.expects.append(expects)
        return Transcript(self.text, language, 0.5)


class OfflineTTS:
    """Stands in for eSpeak: 22.05 kHz tone, 10 ms chunks."""

    name = "espeak"
    sample_rate = 22050

    def __init__(self):
        self.calls = 0

    def synthesize_stream(self, text, *, language="en"):
        self.calls += 1
        pcm = tone_pcm(text, self.sample_rate)
        step = 441 * 2
        for i in range(0, len(pcm), step):
            yield pcm[i : i + step]

    def synthesize(self, text, *, language="en"):  # pragma: no cover - protocol only
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Deepgram: protocol
# ---------------------------------------------------------------------------


def test_clients_satisfy_the_provider_protocols(deepgram, cartesia):
    assert isinstance(DeepgramSTT(API_KEY, url=deepgram.url), SpeechToText)
    assert isinstance(CartesiaTTS(API_KEY, url=cartesia.url), TextToSpeech)
    assert isinstance(FallbackSTT(DeepgramSTT(API_KEY), OfflineSTT()), SpeechToText)
    assert isinstance(FallbackTTS(CartesiaTTS(API_KEY), OfflineTTS()), TextToSpeech)


def test_transcribe_speaks_the_listen_protocol(deepgram):
    deepgram.transcript = ["Book with Dr. Sharma.", "Tomorrow at 10 AM."]
    stt = DeepgramSTT(
        API_KEY, url=deepgram.url, vocabulary=ClinicVocabulary(doctor_names=("Sharma", "Rao"))
    )
    pcm = tone_8k(1.0)
    result = stt.transcribe(pcm, 8000, language="en")

    # Final segments joined; interim results ("uh") are provisional and dropped.
    assert result.text == "Book with Dr. Sharma. Tomorrow at 10 AM."
    assert "uh" not in result.text.split()
    assert result.words == ("book", "with", "dr", "sharma", "tomorrow", "at", "10", "am")
    assert result.confidence == pytest.approx(0.93) and result.language == "en"
    assert result.processing_ms > 0

    conn = deepgram.connections[-1]
    assert conn.path == "/v1/listen"
    assert conn.headers["authorization"] == f"Token {API_KEY}"
    assert {k: v[-1] for k, v in conn.query.items() if k != "keywords"} == {
        "model": "nova-2",
        "language": "en-IN",
        "encoding": "linear16",
        "sample_rate": "8000",
        "channels": "1",
        "interim_results": "true",
        "endpointing": "300",
        "smart_format": "true",
    }
    assert conn.query["keywords"] == ["Sharma:2", "Rao:2"]
    assert bytes(conn.audio) == pcm  # every byte, in order, as binary frames
    assert conn.binary_frames == 10  # 100 ms chunks
    assert conn.message_types == ["CloseStream"]
    sent = [(m["type"], m.get("is_final")) for m in conn.sent]
    assert ("Results", False) in sent and sent[-1] == ("Metadata", None)


def test_mulaw_encoding_sends_8k_mulaw(deepgram):
    stt = DeepgramSTT(API_KEY, url=deepgram.url, encoding="mulaw")
    pcm16k = tone_8k(0.5, rate=16000)
    stt.transcribe(pcm16k, 16000, language="hi")
    conn = deepgram.connections[-1]
    assert conn.param("encoding") == "mulaw" and conn.param("sample_rate") == "8000"
    assert conn.param("language") == "hi"
    assert bytes(conn.audio) == pcm16_to_mulaw(resample(pcm16k, 16000, 8000))


def test_language_mapping():
    assert deepgram_language("en", "nova-2") == "en-IN"
    assert deepgram_language("hi", "nova-2") == "hi"
    assert deepgram_language("hi-en", "nova-2") == "hi"  # nova-2 "multi" is English/Spanish
    assert deepgram_language("hi-en", "nova-3") == "multi"
    assert deepgram_language("hi-en", "nova-3", {"hi-en": "hi"}) == "hi"
    assert deepgram_language("en", "nova-2", {"en": "en-US"}) == "en-US"
    assert deepgram_language("ta", "nova-2") == "ta"
    stt = DeepgramSTT(API_KEY, model="nova-3", keywords=("Sharma",))
    url = stt.listen_url("hi-en", encoding="mulaw", sample_rate=8000)
    assert "language=multi" in url and "keyterm=Sharma" in url and "keywords" not in url


def test_the_doctors_names_are_not_boosted_while_the_caller_gives_a_name():
    # A boosted "Mehta" would turn a patient called Mehra into the doctor.
    for model, param in (("nova-3", "keyterm"), ("nova-2", "keywords")):
        stt = DeepgramSTT(API_KEY, model=model, keywords=("Sharma", "Mehta"))
        assert f"{param}=Mehta" in stt.listen_url("en", encoding="mulaw", sample_rate=8000)
        url = stt.listen_url("en", encoding="mulaw", sample_rate=8000, expects="name")
        assert param not in url and "Mehta" not in url
        assert "Mehta" not in stt.open_stream(language="en", expects="name").url
        assert "Mehta" in stt.open_stream(language="en", expects="yes_no").url


def test_results_parsing_interim_final_and_errors():
    results = DeepgramResults()

    def msg(text, final, **extra):
        alt = {"transcript": text, "confidence": 0.8, "words": [{"word": w} for w in text.split()]}
        alt.update(extra.pop("alt", {}))
        return json.dumps(
            {"type": "Results", "is_final": final, "channel": {"alternatives": [alt]}, **extra}
        )

    assert results.feed(msg("I want", False)) == "Results"
    assert results.interim == "I want" and results.segments == []
    results.feed(msg("I want to book", True, duration=1.0))
    results.feed(msg("", True, duration=0.5))  # silence: a final with no words
    results.feed(msg("tomorrow", True, duration=1.0, speech_final=True))
    assert results.feed(json.dumps({"type": "SpeechStarted"})) == "SpeechStarted"
    assert not results.done
    results.feed(json.dumps({"type": "Metadata", "request_id": "r-1"}))
    assert results.done and results.request_id == "r-1"
    t = results.transcript("en")
    assert t.text == "I want to book tomorrow" and t.confidence == pytest.approx(0.8)
    assert t.words == ("i", "want", "to", "book", "tomorrow")

    # language=multi reports what it heard.
    multi = DeepgramResults()
    multi.feed(msg("kal appointment", True, alt={"languages": ["hi", "en"]}))
    assert multi.transcript("en").language == "hi-en"

    # Only an interim: better than nothing, with no confidence.
    only = DeepgramResults()
    only.feed(msg("haan", False))
    assert only.transcript("hi").text == "haan" and only.transcript("hi").confidence == 0.0

    with pytest.raises(ProviderProtocolError, match="bad audio DATA-0000"):
        DeepgramResults().feed(
            json.dumps({"type": "Error", "description": "bad audio", "variant": "DATA-0000"})
        )
    for garbage in ("not json", "[1, 2]", b"\x00\x01"):
        with pytest.raises(ProviderProtocolError):
            DeepgramResults().feed(garbage)
    with pytest.raises(ProviderProtocolError, match="malformed"):
        DeepgramResults().feed(json.dumps({"type": "Results", "channel": {}}))


def test_fake_deepgram_hears_scripted_or_length_matched_transcripts(deepgram):
    stt = DeepgramSTT(API_KEY, url=deepgram.url)
    deepgram.respond = script("first", ["second,", "in two segments"], "last")
    heard = [stt.transcribe(tone_8k(0.2), 8000, language="en").text for _ in range(4)]
    assert heard == ["first", "second, in two segments", "last", "last"]
    deepgram.respond = by_length({0.5: "haan", 2.0: "I want to book an appointment"})
    assert stt.transcribe(tone_8k(0.4), 8000, language="en").text == "haan"
    assert stt.transcribe(tone_8k(1.8), 8000, language="en").text.startswith("I want")


def test_empty_audio_needs_no_connection(deepgram):
    result = DeepgramSTT(API_KEY, url=deepgram.url).transcribe(b"", 8000, language="en")
    assert result.is_empty and deepgram.handshakes == 0


def test_api_key_is_required():
    with pytest.raises(ValueError, match="DEEPGRAM_API_KEY"):
        DeepgramSTT("")
    with pytest.raises(ValueError, match="CARTESIA_API_KEY"):
        CartesiaTTS("")


# ---------------------------------------------------------------------------
# Deepgram: errors and timeouts
# ---------------------------------------------------------------------------


def test_wrong_key_is_an_auth_error(deepgram):
    with pytest.raises(ProviderAuthError, match="401"):
        DeepgramSTT("wrong", url=deepgram.url).transcribe(tone_8k(0.2), 8000, language="en")


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        ("unavailable", ProviderConnectionError, "HTTP 503"),
        ("close", ProviderConnectionError, "1011"),
        ("drop", ProviderConnectionError, "1011"),
        ("error", ProviderProtocolError, "Scripted failure"),
        ("garbage", ProviderProtocolError, "not JSON"),
    ],
)
def test_server_failures_raise_provider_errors(deepgram, mode, error, match):
    deepgram.fail_next(mode)
    stt = DeepgramSTT(API_KEY, url=deepgram.url, **FAST)
    with pytest.raises(error, match=match) as info:
        stt.transcribe(tone_8k(0.5), 8000, language="en")
    assert isinstance(info.value, CloudProviderError) and info.value.provider == "deepgram"
    # The failure was for one connection only: the next utterance works.
    assert stt.transcribe(tone_8k(0.5), 8000, language="en").text == "hello"


def test_connection_refused_is_a_connection_error():
    stt = DeepgramSTT(API_KEY, url=f"ws://127.0.0.1:{closed_port()}/v1/listen")
    with pytest.raises(ProviderConnectionError, match="cannot connect"):
        stt.transcribe(tone_8k(0.2), 8000, language="en")


def test_stalled_server_times_out(deepgram):
    deepgram.fail_next("stall")
    stt = DeepgramSTT(API_KEY, url=deepgram.url, **FAST)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"no final result within 0\.5 s"):
        stt.transcribe(tone_8k(0.5), 8000, language="en")
    assert 0.45 <= time.monotonic() - started < 1.5
    assert isinstance(ProviderTimeout("x", "y"), TimeoutError)


def test_answer_delay_within_and_beyond_the_timeout(deepgram):
    deepgram.delay_ms = 150
    stt = DeepgramSTT(API_KEY, url=deepgram.url, **FAST)
    started = time.monotonic()
    assert stt.transcribe(tone_8k(0.3), 8000, language="en").text == "hello"
    assert time.monotonic() - started >= 0.15
    deepgram.delay_ms = 800
    with pytest.raises(ProviderTimeout):
        stt.transcribe(tone_8k(0.3), 8000, language="en")


# ---------------------------------------------------------------------------
# Deepgram: streaming session
# ---------------------------------------------------------------------------


def test_streaming_session_sends_frames_live_and_returns_the_final(deepgram):
    deepgram.transcript = "haan kal subah"
    deepgram.delay_ms = 50
    stt = DeepgramSTT(API_KEY, url=deepgram.url, **FAST)
    mulaw = pcm16_to_mulaw(tone_8k(0.6))
    frames = [mulaw[i : i + 160] for i in range(0, len(mulaw), 160)]
    interims: list[str] = []

    async def scenario():
        stream = stt.open_stream(language="hi-en", on_interim=interims.append)
        stream.start()
        for frame in frames:  # 20 ms frames, as Twilio sends them
            stream.feed(frame)
            await asyncio.sleep(0.005)
        connected_before_end = deepgram.handshakes == 1
        started = time.monotonic()
        result = await stream.finish()
        return result, connected_before_end, time.monotonic() - started

    result, connected_before_end, finish_s = asyncio.run(scenario())
    assert result.text == "haan kal subah" and result.language == "hi-en"
    assert connected_before_end  # the handshake happened while the caller spoke
    assert finish_s < 0.5  # only the flush (50 ms fake delay) is left at end of speech
    conn = deepgram.connections[-1]
    assert bytes(conn.audio) == mulaw and conn.binary_frames == len(frames)
    assert conn.param("encoding") == "mulaw" and conn.param("language") == "hi"
    assert conn.message_types == ["CloseStream"]
    assert interims and set(interims) == {"uh"}


def test_streaming_session_errors_and_timeouts(deepgram):
    stt = DeepgramSTT(API_KEY, url=deepgram.url, **FAST)

    async def run(feed_s=0.1):
        stream = stt.open_stream(language="en")
        stream.start()
        stream.feed(b"\xff" * 1600)
        await asyncio.sleep(feed_s)
        return await stream.finish()

    deepgram.fail_next("drop")
    with pytest.raises(ProviderConnectionError, match="1011"):
        asyncio.run(run())
    deepgram.fail_next("stall")
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        asyncio.run(run())
    assert time.monotonic() - started < 1.5
    deepgram.fail_next("auth")
    with pytest.raises(ProviderAuthError):
        asyncio.run(run())
    assert asyncio.run(run()).text == "hello"


def test_streaming_session_abort_closes_the_socket(deepgram):
    stt = DeepgramSTT(API_KEY, url=deepgram.url)

    async def scenario():
        stream = stt.open_stream(language="en")
        stream.start()
        stream.feed(b"\xff" * 800)
        await asyncio.sleep(0.1)
        await stream.abort()
        await asyncio.sleep(0.1)

    asyncio.run(scenario())
    assert deepgram.connections[-1].closed.wait(2)
    assert deepgram.connections[-1].message_types == []  # no CloseStream: nothing billed twice


# ---------------------------------------------------------------------------
# Cartesia
# ---------------------------------------------------------------------------


def test_synthesize_stream_speaks_the_tts_websocket_protocol(cartesia):
    tts = CartesiaTTS(API_KEY, url=cartesia.url, voice_id="voice-en")
    text = "Your appointment is booked for tomorrow at ten."
    chunks = list(tts.synthesize_stream(text, language="en"))

    assert tts.sample_rate == 8000
    assert len(chunks) > 1 and all(len(c) % 2 == 0 for c in chunks)
    assert b"".join(chunks) == tone_pcm(text, 8000)  # base64 decoded, nothing lost or reordered
    conn = cartesia.connections[-1]
    assert conn.path == "/tts/websocket"
    assert conn.headers["x-api-key"] == API_KEY and conn.headers["cartesia-version"] == "2024-06-10"
    assert "api_key" not in conn.query  # the key stays out of URLs and logs
    (request,) = cartesia.requests
    assert request == {
        "model_id": "sonic-2",
        "transcript": text,
        "voice": {"mode": "id", "id": "voice-en"},
        "language": "en",
        "context_id": request["context_id"],
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000},
        "continue": False,
    }
    assert [m["type"] for m in conn.sent][-1] == "done"
    assert all(m["context_id"] == request["context_id"] for m in conn.sent)


def test_query_auth_languages_voices_and_rates(cartesia):
    tts = CartesiaTTS(
        API_KEY,
        url=cartesia.url,
        auth_in_query=True,
        sample_rate=16000,
        voices={"hi": "voice-hi"},
    )
    audio = tts.synthesize("Kal subah das baje aaiye.", language="hi-en")
    assert audio.sample_rate == 16000 and audio.pcm16 == tone_pcm(
        "Kal subah das baje aaiye.", 16000
    )
    conn = cartesia.connections[-1]
    assert conn.param("api_key") == API_KEY and conn.param("cartesia_version") == "2024-06-10"
    assert "x-api-key" not in conn.headers
    request = cartesia.requests[-1]
    assert request["language"] == "hi" and request["voice"]["id"] == "voice-hi"  # Hinglish
    with pytest.raises(ValueError, match="sample_rate"):
        CartesiaTTS(API_KEY, sample_rate=11025)


def test_telephony_frames_from_cartesia(cartesia):
    tts = CartesiaTTS(API_KEY, url=cartesia.url)
    frames = list(telephony_frames(tts, "Namaste, how can I help?", language="en"))
    assert frames and all(len(f) == 160 for f in frames)
    assert len(frames) == -(-len(tone_pcm("Namaste, how can I help?", 8000)) // 320)


def test_sockets_are_pooled_and_replaced_when_stale(cartesia):
    tts = CartesiaTTS(API_KEY, url=cartesia.url)
    for _ in range(3):
        assert tts.synthesize("One moment please.", language="en").pcm16
    assert len(cartesia.connections) == 1  # one handshake for three replies
    cartesia.disconnect_all()  # the provider closes idle sockets
    time.sleep(0.1)
    assert tts.synthesize("Still here.", language="en").pcm16
    assert len(cartesia.connections) == 2
    expired = CartesiaTTS(API_KEY, url=cartesia.url, idle_ttl_s=0)
    expired.synthesize("a", language="en")
    time.sleep(0.01)
    expired.synthesize("b", language="en")
    assert len(cartesia.connections) == 4
    tts.close()
    expired.close()


def test_barge_in_cancels_the_context_and_keeps_the_socket(cartesia):
    cartesia.chunk_interval_ms = 20  # a long reply, streamed in real time-ish
    tts = CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS)
    stream = tts.synthesize_stream("A long reply that the caller interrupts. " * 5, language="en")
    assert next(stream)
    stream.close()  # what the pacer does on barge-in
    deadline = time.monotonic() + 2
    while not cartesia.cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    first_context = cartesia.requests[0]["context_id"]
    assert cartesia.cancelled == [first_context]
    # The cancel runs off-thread and then returns the socket to the pool: wait for it,
    # or a loaded machine opens a second socket before the first is back.
    while not tts._pool._idle and time.monotonic() < deadline + 2:
        time.sleep(0.01)
    # The next reply reuses the socket; late chunks of the cancelled context are skipped.
    cartesia.chunk_interval_ms = 0
    assert tts.synthesize("Yes?", language="en").pcm16 == tone_pcm("Yes?", 8000)
    assert len(cartesia.connections) == 1


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        ("auth", ProviderAuthError, "401"),
        ("unavailable", ProviderConnectionError, "503"),
        ("error", ProviderProtocolError, "Scripted failure"),
        ("garbage", ProviderProtocolError, "not JSON"),
        ("close", ProviderConnectionError, "1011"),
        ("stall", ProviderTimeout, "no first audio chunk"),
    ],
)
def test_cartesia_failures_raise_provider_errors(cartesia, mode, error, match):
    cartesia.fail_next(mode)
    tts = CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS)
    with pytest.raises(error, match=match):
        list(tts.synthesize_stream("Hello", language="en"))
    assert tts.synthesize("Hello", language="en").pcm16 == tone_pcm("Hello", 8000)


def test_cartesia_drop_mid_reply_and_bad_requests(cartesia):
    tts = CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS)
    cartesia.fail_next("drop")
    got = []
    with pytest.raises(ProviderConnectionError):
        for chunk in tts.synthesize_stream("Your appointment is at ten.", language="en"):
            got.append(chunk)
    assert len(got) == 1  # audio already played stays played; the error still surfaces
    bad = CartesiaTTS(API_KEY, url=cartesia.url, voice_id="", **FAST_TTS)
    bad.voice_id = ""  # an unset voice: the server's error message comes through
    with pytest.raises(ProviderProtocolError, match="voice must be"):
        bad.synthesize("Hello", language="en")
    assert list(tts.synthesize_stream("   ", language="en")) == []  # nothing to say, no request


def test_cartesia_first_chunk_delay(cartesia):
    cartesia.delay_ms = 150
    tts = CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS)
    tts.prewarm()  # handshake before the reply, as at call start
    started = time.monotonic()
    next(tts.synthesize_stream("Hello", language="en"))
    assert 0.15 <= time.monotonic() - started < 1.0
    cartesia.delay_ms = 800
    with pytest.raises(ProviderTimeout):
        tts.synthesize("Hello", language="en")


def test_odd_length_chunks_keep_sample_alignment():
    pcm = np.arange(-5, 5, dtype="<i2").tobytes()  # 20 bytes
    first, carry = _decode_pcm("cartesia", base64.b64encode(pcm[:7]).decode(), b"")
    second, carry = _decode_pcm("cartesia", base64.b64encode(pcm[7:]).decode(), carry)
    assert (first, first + second, carry) == (pcm[:6], pcm, b"")
    with pytest.raises(ProviderProtocolError, match="base64"):
        _decode_pcm("cartesia", "***", b"")


# ---------------------------------------------------------------------------
# Breaker + offline fallback
# ---------------------------------------------------------------------------


def test_failing_stt_opens_the_breaker_and_falls_back_offline(deepgram):
    deepgram.failure = "unavailable"
    offline = OfflineSTT()
    breaker = CircuitBreaker("stt:deepgram", failure_threshold=2, clock=FakeClock())
    stt = FallbackSTT(
        DeepgramSTT(API_KEY, url=deepgram.url, **FAST),
        offline,
        breaker,
        primary_name="deepgram",
        fallback_name="pocketsphinx",
    ).for_call()
    texts = [stt.transcribe(tone_8k(0.2), 8000, language="en").text for _ in range(5)]
    assert texts == ["offline"] * 5
    assert deepgram.handshakes == 2  # after two failures the provider is left alone
    assert breaker.state is CircuitState.OPEN
    report = stt.usage_report()
    assert report == {
        "stt_served": {"pocketsphinx": 5},
        "stt_fallbacks": 5,
        "stt_breaker": "open",
        "stt_errors": {"ProviderConnectionError": 2},
        "stt_last_error": report["stt_last_error"],
        "stt_breaker_changes": [
            {"from": "closed", "to": "open", "reason": report["stt_breaker_changes"][0]["reason"]}
        ],
    }
    assert "503" in report["stt_last_error"]


def test_timeouts_count_and_half_open_recovery(deepgram):
    clock = FakeClock()
    breaker = CircuitBreaker("stt:deepgram", failure_threshold=2, reset_timeout_s=30, clock=clock)
    stt = FallbackSTT(DeepgramSTT(API_KEY, url=deepgram.url, **FAST), OfflineSTT(), breaker)
    deepgram.failure = "stall"
    for _ in range(2):
        started = time.monotonic()
        assert stt.transcribe(tone_8k(0.2), 8000, language="en").text == "offline"
        assert time.monotonic() - started < 1.5  # bounded by result_timeout_s
    assert breaker.state is CircuitState.OPEN
    assert stt.usage.errors == {"ProviderTimeout": 2}

    clock.now += 30  # cool-down over: one trial call; it fails, so it re-opens
    assert stt.transcribe(tone_8k(0.2), 8000, language="en").text == "offline"
    assert breaker.state is CircuitState.OPEN and deepgram.handshakes == 3

    deepgram.failure = None  # the provider recovers
    assert stt.transcribe(tone_8k(0.2), 8000, language="en").text == "offline"  # still cooling
    clock.now += 30
    assert stt.transcribe(tone_8k(0.2), 8000, language="en").text == "hello"  # trial succeeds
    assert breaker.state is CircuitState.CLOSED
    assert stt.transcribe(tone_8k(0.2), 8000, language="en").text == "hello"
    report = stt.usage_report()
    assert report["stt_served"] == {"pocketsphinx": 4, "deepgram": 2}
    assert [(c["from"], c["to"]) for c in report["stt_breaker_changes"]] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_guarded_stream_falls_back_with_the_utterance_pcm(deepgram):
    breaker = CircuitBreaker("stt:deepgram", failure_threshold=1, clock=FakeClock())
    stt = FallbackSTT(DeepgramSTT(API_KEY, url=deepgram.url, **FAST), OfflineSTT(), breaker)
    pcm = tone_8k(0.3)

    async def utterance():
        stream = stt.open_stream(language="en")
        streaming = stream.streaming
        stream.feed(pcm16_to_mulaw(pcm))
        await asyncio.sleep(0.05)
        return streaming, (await stream.finish(pcm, 8000)).text

    assert asyncio.run(utterance()) == (True, "hello")
    deepgram.fail_next("drop")
    assert asyncio.run(utterance()) == (True, "offline")
    assert breaker.state is CircuitState.OPEN
    handshakes = deepgram.handshakes
    assert asyncio.run(utterance()) == (False, "offline")  # open: no socket at all
    assert deepgram.handshakes == handshakes
    assert stt.usage_report()["stt_served"] == {"deepgram": 1, "pocketsphinx": 2}


def test_guarded_stream_over_a_primary_that_cannot_stream():
    stt = FallbackSTT(OfflineSTT("cloud"), OfflineSTT(), primary_name="batch-cloud")

    async def utterance():
        stream = stt.open_stream(language="en")
        stream.feed(b"\xff" * 160)  # ignored: nothing to stream to
        return stream.streaming, (await stream.finish(tone_8k(0.2), 8000)).text

    assert asyncio.run(utterance()) == (False, "cloud")  # the whole utterance, via transcribe
    assert stt.usage_report()["stt_served"] == {"batch-cloud": 1}


def test_failing_tts_falls_back_at_the_primary_rate(cartesia):
    offline = OfflineTTS()
    breaker = CircuitBreaker("tts:cartesia", failure_threshold=2, clock=FakeClock())
    tts = FallbackTTS(
        CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS), offline, breaker
    ).for_call()
    assert tts.sample_rate == 8000
    text = "Your appointment is confirmed."
    assert tts.synthesize(text, language="en").pcm16 == tone_pcm(text, 8000)  # cloud voice

    cartesia.failure = "error"
    for _ in range(3):
        audio = tts.synthesize(text, language="en")
        # eSpeak's 22.05 kHz output, resampled to the rate the wrapper promised.
        expected = len(tone_pcm(text, 22050)) // 2 * 8000 / 22050
        assert audio.sample_rate == 8000 and abs(len(audio.pcm16) // 2 - expected) <= 2
    assert breaker.state is CircuitState.OPEN and len(cartesia.requests) == 3
    report = tts.usage_report()
    assert report["tts_served"] == {"cartesia": 1, "espeak": 3}
    assert report["tts_fallbacks"] == 3 and report["tts_breaker"] == "open"
    assert report["tts_errors"] == {"ProviderProtocolError": 2}


def test_tts_failing_mid_reply_is_voiced_again_by_the_fallback(cartesia):
    offline = OfflineTTS()
    tts = FallbackTTS(CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS), offline)
    cartesia.fail_next("drop")
    chunks = list(tts.synthesize_stream("Your appointment is at ten.", language="en"))
    assert offline.calls == 1 and len(chunks) > 2
    assert tts.usage.fallbacks == 1 and tts.usage.errors == {"ProviderConnectionError": 1}


def test_barge_in_is_no_verdict_on_the_tts_provider(cartesia):
    clock = FakeClock()
    breaker = CircuitBreaker("tts:cartesia", failure_threshold=1, reset_timeout_s=5, clock=clock)
    tts = FallbackTTS(CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS), OfflineTTS(), breaker)
    breaker.record_failure("earlier outage")
    clock.now += 5
    stream = tts.synthesize_stream("Hello there", language="en")
    assert breaker.state is CircuitState.HALF_OPEN
    next(stream)  # the trial reply produced audio...
    stream.close()  # ...and the caller interrupted it
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure("again")
    clock.now += 5
    stream = tts.synthesize_stream("Hello there", language="en")
    stream.close()  # closed before it started: the trial slot is given back
    assert breaker.state is CircuitState.HALF_OPEN and breaker.allow_request()


def test_per_call_views_count_separately_and_share_the_breaker(deepgram):
    stt = FallbackSTT(DeepgramSTT(API_KEY, url=deepgram.url), OfflineSTT())
    call_a, call_b = stt.for_call(), stt.for_call()
    call_a.transcribe(tone_8k(0.2), 8000, language="en")
    assert call_a.usage_report()["stt_served"] == {"deepgram": 1}
    assert call_b.usage_report()["stt_served"] == {}
    assert call_a.breaker is call_b.breaker is stt.breaker and call_a.primary is stt.primary


# ---------------------------------------------------------------------------
# Registry and runtime
# ---------------------------------------------------------------------------


def test_registry_builds_cloud_providers_with_fallback(deepgram, cartesia, monkeypatch):
    monkeypatch.setitem(STT_PROVIDERS._factories, "offline-fake", lambda **o: OfflineSTT())
    monkeypatch.setitem(TTS_PROVIDERS._factories, "offline-fake", lambda **o: OfflineTTS())
    plain = STT_PROVIDERS.create({"provider": "deepgram", "api_key": "k", "model": "nova-3"})
    assert isinstance(plain, DeepgramSTT) and plain.model == "nova-3"
    providers = build_providers(
        {
            "stt": {
                "provider": "deepgram",
                "api_key": API_KEY,
                "url": deepgram.url,
                "fallback": "offline-fake",
                "breaker": {"failure_threshold": 5},
            },
            "tts": {
                "provider": "cartesia",
                "api_key": API_KEY,
                "url": cartesia.url,
                "fallback": {"provider": "offline-fake"},
            },
            "vad": {"provider": "energy"},
        }
    )
    assert isinstance(providers.stt, FallbackSTT) and isinstance(providers.tts, FallbackTTS)
    assert providers.stt.primary.url == deepgram.url
    assert providers.stt.breaker is shared_breaker("stt:deepgram")  # one per process
    assert providers.stt.breaker.failure_threshold == 5
    assert providers.stt.transcribe(tone_8k(0.2), 8000, language="en").text == "hello"
    assert providers.tts.synthesize("Hi", language="en").pcm16 == tone_pcm("Hi", 8000)
    again = STT_PROVIDERS.create(
        {"provider": "deepgram", "api_key": API_KEY, "fallback": "offline-fake"}
    )
    assert again.breaker is providers.stt.breaker


@pytest.fixture
def cloud_settings(settings, deepgram, cartesia, monkeypatch):
    from voice import runtime

    settings.VOICE_STT_PROVIDER = "deepgram"
    settings.VOICE_TTS_PROVIDER = "cartesia"
    settings.DEEPGRAM_API_KEY = settings.CARTESIA_API_KEY = API_KEY
    settings.DEEPGRAM_URL = deepgram.url
    settings.CARTESIA_URL = cartesia.url
    settings.CARTESIA_VOICE_ID = "clinic-voice"
    monkeypatch.setattr(runtime, "_stt_by_clinic", {})
    monkeypatch.setattr(runtime, "_tts", None)
    return settings


@pytest.mark.django_db
def test_runtime_uses_the_providers_chosen_by_settings(cloud_settings, clinic, deepgram, cartesia):
    from clinic.tests.factories import DoctorFactory
    from voice import runtime

    DoctorFactory(clinic=clinic, name="Dr. Anjali Mehta")
    stt = runtime.speech_to_text(clinic)
    assert isinstance(stt, FallbackSTT)
    assert isinstance(stt.primary, DeepgramSTT) and stt.primary.url == deepgram.url
    assert stt.primary.api_key == API_KEY and "Mehta" in stt.primary.keywords
    assert type(stt.fallback).__name__ == "PocketsphinxSTT"  # the offline default
    assert stt.transcribe(tone_8k(0.3), 8000, language="en").text == "hello"
    assert deepgram.connections[-1].headers["authorization"] == f"Token {API_KEY}"

    tts = runtime.text_to_speech()
    assert isinstance(tts, FallbackTTS) and isinstance(tts.primary, CartesiaTTS)
    assert type(tts.fallback).__name__ == "EspeakTTS"
    assert tts.primary.url == cartesia.url and tts.primary.voice_id == "clinic-voice"
    assert tts.synthesize("Namaste", language="hi").pcm16
    assert cartesia.requests[-1]["voice"]["id"] == "clinic-voice"

    # Each call gets its own view (counters) of the same shared clients and breaker.
    other = runtime.speech_to_text(clinic)
    assert other is not stt and other.primary is stt.primary and other.breaker is stt.breaker
    assert runtime.provider_report(stt, tts) == {
        "stt_served": {"deepgram": 1},
        "stt_fallbacks": 0,
        "stt_breaker": "closed",
        "tts_served": {"cartesia": 1},
        "tts_fallbacks": 0,
        "tts_breaker": "closed",
    }
    assert runtime.provider_report(other, runtime.text_to_speech())["stt_served"] == {}


@pytest.mark.django_db
def test_runtime_falls_back_when_the_cloud_is_down(cloud_settings, clinic, deepgram, cartesia):
    from voice import runtime

    deepgram.failure = "unavailable"
    cartesia.failure = "auth"
    stt, tts = runtime.speech_to_text(clinic), runtime.text_to_speech()
    assert isinstance(stt.transcribe(tone_8k(0.3), 8000, language="en"), Transcript)
    assert tts.synthesize("Hello", language="en").sample_rate == 8000
    report = runtime.provider_report(stt, tts)
    assert report["stt_served"] == {"pocketsphinx": 1} and report["stt_fallbacks"] == 1
    assert report["tts_served"] == {"espeak": 1} and report["tts_errors"] == {
        "ProviderAuthError": 1
    }


@pytest.mark.django_db
def test_runtime_without_cloud_settings_stays_offline(settings, monkeypatch):
    from voice import runtime

    settings.VOICE_TTS_PROVIDER = "espeak"
    monkeypatch.setattr(runtime, "_tts", None)
    assert runtime._cloud_options("pocketsphinx") == {}
    assert type(runtime.text_to_speech()).__name__ == "EspeakTTS"
    assert runtime.provider_report(runtime.text_to_speech()) == {}


# ---------------------------------------------------------------------------
# End to end: the Media Streams consumer with cloud providers
# ---------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_call_with_deepgram_down_books_offline_and_the_call_log_says_so(
    cloud_settings, clinic, deepgram, cartesia
):
    from asgiref.sync import async_to_sync

    from clinic.models import Appointment
    from clinic.tests.factories import ClinicPhoneNumberFactory, DoctorFactory, PatientFactory
    from voice.models import CallLog
    from voice.simulator import run_in_process

    ClinicPhoneNumberFactory(clinic=clinic, number="+911234567890")
    DoctorFactory(clinic=clinic, name="Dr. Priya Sharma")
    patient = PatientFactory(
        clinic=clinic, name="Ravi Verma", phone="+919812300001", language_preference="en"
    )
    deepgram.failure = "unavailable"  # every Deepgram handshake fails with 503
    cartesia.audio = "espeak"  # the fake Cartesia speaks, so the simulated caller's words are real
    sid = "CAcloudfallback0000000000000000001"
    async_to_sync(run_in_process)(
        clinic=clinic,
        caller_phone="+919812300001",
        sentences=["I want to book an appointment with Dr. Sharma tomorrow at 10 am", "yes"],
        language="en",
        call_sid=sid,
        to_number="+911234567890",
    )
    assert Appointment.objects.filter(patient=patient).exists()  # the call went on offline
    providers = CallLog.objects.get(call_sid=sid).providers
    assert providers["stt"] == "deepgram" and providers["tts"] == "cartesia"
    served = providers["stt_served"]
    assert set(served) == {"pocketsphinx"} and served["pocketsphinx"] >= 2
    assert providers["stt_fallbacks"] == served["pocketsphinx"]
    assert providers["stt_errors"] == {"ProviderConnectionError": min(3, served["pocketsphinx"])}
    assert providers["stt_breaker"] in ("closed", "open")
    assert providers["tts_served"]["cartesia"] >= 3 and providers["tts_fallbacks"] == 0
    assert providers["tts_breaker"] == "closed"


# ---------------------------------------------------------------------------
# The conversation streams the caller's speech to Deepgram while it is spoken
# ---------------------------------------------------------------------------

_LOUD = (np.random.default_rng(3).normal(0, 4000, 160)).astype("<i2").tobytes()  # 20 ms
_QUIET = bytes(320)


class _Agent:
    def __init__(self):
        self.heard: list[str] = []

    async def greet(self):
        from voice.pipeline.conversation import AgentTurn

        return AgentTurn("Hello", "en")

    async def respond(self, text, *, language, confidence):
        from voice.pipeline.conversation import AgentTurn

        self.heard.append(text)
        return AgentTurn("Sure", "en")


class _SilentTTS:
    sample_rate = 8000

    def synthesize_stream(self, text, *, language="en"):
        yield bytes(320)


async def _conversation_over(stt):
    from voice.pipeline.codecs import b64encode_frame
    from voice.pipeline.conversation import Conversation, SessionState
    from voice.pipeline.vad import EnergyVAD

    async def nothing(*_args):
        return None

    agent = _Agent()
    conversation = Conversation(
        stt=stt,
        tts=_SilentTTS(),
        vad=EnergyVAD(),
        agent=agent,
        send_twilio=nothing,
        publish=nothing,
        on_hangup=nothing,
        on_transfer=nothing,
        language="en",
    )
    ended = []
    process = conversation.segmenter.process

    def recording(pcm16):
        events = process(pcm16)
        ended.extend(e for e in events if type(e).__name__ == "SpeechEnded")
        return events

    conversation.segmenter.process = recording
    await conversation.start("MZcloudstream")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while conversation.state != SessionState.LISTENING:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)

    async def feed(pcm, frames, *, real_time=False):
        for _ in range(frames):
            await conversation.feed_media(b64encode_frame(pcm16_to_mulaw(pcm)))
            await asyncio.sleep(0.02 if real_time else 0)

    return conversation, agent, ended, feed


async def _until(condition, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_the_conversation_streams_speech_to_deepgram_while_it_is_spoken(deepgram):
    """Socket opened at speech start, pre-roll first, audio live; at the end only the final."""
    deepgram.transcript = "book an appointment"
    offline = OfflineSTT()
    stt = FallbackSTT(DeepgramSTT(API_KEY, url=deepgram.url, **FAST), offline).for_call()

    async def scenario():
        conversation, agent, ended, feed = await _conversation_over(stt)
        await feed(_QUIET, 15)  # becomes the pre-roll
        assert not deepgram.connections  # nothing is opened before the caller speaks
        await feed(_LOUD, 50, real_time=True)  # one second of speech, in real time
        await _until(lambda: deepgram.connections and len(deepgram.connections[0].audio) > 0)
        connection = deepgram.connections[0]
        await asyncio.sleep(0.15)  # the last batch on its way
        streamed_before_the_end = len(connection.audio)
        closed_before_the_end = "CloseStream" in connection.message_types
        await feed(_QUIET, 30)  # the end-of-speech silence
        await _until(lambda: agent.heard)
        await conversation.close()
        return agent, ended, connection, streamed_before_the_end, closed_before_the_end

    agent, ended, connection, before_end, closed_early = asyncio.run(scenario())
    assert agent.heard == ["book an appointment"] and offline.calls == 0
    (utterance,) = ended
    assert connection.param("encoding") == "mulaw" and connection.param("sample_rate") == "8000"
    # Exactly the utterance Deepgram was given, pre-roll first, in order.
    assert bytes(connection.audio) == pcm16_to_mulaw(utterance.pcm16)
    assert bytes(connection.audio).startswith(pcm16_to_mulaw(_QUIET))
    # Most of it went while the caller spoke (pre-roll + ~1 s); only CloseStream came after.
    assert not closed_early and before_end >= 8000 * 0.9
    assert connection.message_types == ["CloseStream"] and len(deepgram.connections) == 1
    assert stt.usage_report()["stt_served"] == {"deepgram": 1}


def test_the_conversation_falls_back_offline_when_the_deepgram_stream_fails(deepgram):
    """A stream that drops mid-utterance: offline recognises the same utterance; breaker told."""
    breaker = CircuitBreaker("stt:deepgram", failure_threshold=2, clock=FakeClock())
    offline = OfflineSTT("offline words")
    stt = FallbackSTT(DeepgramSTT(API_KEY, url=deepgram.url, **FAST), offline, breaker)

    async def one_call(expect):
        conversation, agent, ended, feed = await _conversation_over(stt)
        await feed(_QUIET, 15)
        await feed(_LOUD, 30, real_time=True)
        await feed(_QUIET, 30)
        await _until(lambda: agent.heard)
        await conversation.close()
        assert agent.heard == [expect]
        return ended

    deepgram.fail_next("drop", 2)
    asyncio.run(one_call("offline words"))
    assert breaker.state is CircuitState.CLOSED and breaker.consecutive_failures == 1
    asyncio.run(one_call("offline words"))
    assert breaker.state is CircuitState.OPEN
    handshakes = deepgram.handshakes
    asyncio.run(one_call("offline words"))  # open: straight to offline, no socket opened
    assert deepgram.handshakes == handshakes and offline.calls == 3
    report = stt.usage_report()
    assert report["stt_served"] == {"pocketsphinx": 3} and report["stt_fallbacks"] == 3
    assert report["stt_errors"] == {"ProviderConnectionError": 2}


def test_the_offline_fallback_listens_for_what_the_stream_listened_for(deepgram):
    # A name asked for on a cloud call, the stream lost: the offline recogniser
    # takes the utterance with its name search, not the clinic model.
    offline = OfflineSTT("meera nair")
    stt = FallbackSTT(DeepgramSTT(API_KEY, url=deepgram.url, **FAST), offline).for_call()
    deepgram.fail_next("drop", 1)

    async def scenario():
        stream = stt.open_stream(language="en", expects="name")
        stream.feed(pcm16_to_mulaw(_LOUD))
        return await stream.finish(_LOUD, 8000)

    assert asyncio.run(scenario()).text == "meera nair"
    assert offline.expects == ["name"]


# ---------------------------------------------------------------------------
# Cartesia on the event loop (astream): what live calls use
# ---------------------------------------------------------------------------


async def _collect(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


def test_astream_speaks_the_protocol_and_multiplexes_replies_on_one_socket(cartesia):
    tts = CartesiaTTS(API_KEY, url=cartesia.url, voice_id="voice-en", **FAST_TTS)
    texts = [f"Reply number {i} for a caller." for i in range(6)]

    async def scenario():
        replies = await asyncio.gather(*(_collect(tts.astream(t, language="en")) for t in texts))
        again = await _collect(tts.astream("And one more.", language="en"))
        await tts.aclose()
        return replies, again

    replies, again = asyncio.run(scenario())
    assert replies == [tone_pcm(t, 8000) for t in texts]  # each reply whole, none mixed up
    assert again == tone_pcm("And one more.", 8000)
    assert len(cartesia.connections) == 1  # six replies at once and one after: one socket
    assert len({r["context_id"] for r in cartesia.requests}) == 7
    assert cartesia.requests[0]["voice"] == {"mode": "id", "id": "voice-en"}
    assert cartesia.connections[0].headers["x-api-key"] == API_KEY


def test_astream_opens_another_socket_only_when_one_is_full(cartesia):
    cartesia.chunk_interval_ms = 20  # replies last a while: all five overlap
    tts = CartesiaTTS(API_KEY, url=cartesia.url, max_contexts_per_socket=2, **FAST_TTS)

    async def scenario():
        await asyncio.gather(*(_collect(tts.astream(f"Reply {i}.")) for i in range(5)))
        await tts.aclose()

    asyncio.run(scenario())
    assert len(cartesia.connections) == 3


def test_astream_barge_in_cancels_the_context_and_keeps_the_socket(cartesia):
    cartesia.chunk_interval_ms = 20  # a long reply, streamed in real time-ish
    tts = CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS)

    async def scenario():
        stream = tts.astream("A long reply that the caller interrupts. " * 5, language="en")
        assert await stream.__anext__()
        await stream.aclose()  # what the pacer does on barge-in
        deadline = asyncio.get_running_loop().time() + 2
        while not cartesia.cancelled:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        cartesia.chunk_interval_ms = 0
        # The next reply shares the socket; the cancelled context's late chunks are skipped.
        audio = await _collect(tts.astream("Yes?", language="en"))
        await tts.aclose()
        return audio

    assert asyncio.run(scenario()) == tone_pcm("Yes?", 8000)
    assert cartesia.cancelled == [cartesia.requests[0]["context_id"]]
    assert len(cartesia.connections) == 1


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        ("auth", ProviderAuthError, "401"),
        ("unavailable", ProviderConnectionError, "503"),
        ("error", ProviderProtocolError, "Scripted failure"),
        ("garbage", ProviderProtocolError, "not JSON"),
        ("close", ProviderConnectionError, "1011"),
        ("stall", ProviderTimeout, "no first audio chunk"),
        ("drop", ProviderConnectionError, "1011"),
    ],
)
def test_astream_failures_raise_provider_errors(cartesia, mode, error, match):
    cartesia.fail_next(mode)
    tts = CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS)

    async def scenario():
        with pytest.raises(error, match=match):
            await _collect(tts.astream("Hello there", language="en"))
        audio = await _collect(tts.astream("Hello", language="en"))  # and then it works again
        await tts.aclose()
        return audio

    assert asyncio.run(scenario()) == tone_pcm("Hello", 8000)


def test_astream_replaces_a_socket_the_server_closed(cartesia):
    tts = CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS)

    async def scenario():
        first = await _collect(tts.astream("One moment please.", language="en"))
        await asyncio.to_thread(cartesia.disconnect_all)  # the provider drops idle sockets
        await asyncio.sleep(0.05)
        second = await _collect(tts.astream("Still here.", language="en"))
        await tts.aclose()
        return first, second

    first, second = asyncio.run(scenario())
    assert first and second == tone_pcm("Still here.", 8000)
    assert len(cartesia.connections) == 2


def test_astream_first_chunk_delay_and_timeout(cartesia):
    cartesia.delay_ms = 150
    tts = CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS)

    async def scenario():
        await _collect(tts.astream("Warm up.", language="en"))  # the socket is open now
        loop = asyncio.get_running_loop()
        started = loop.time()
        stream = tts.astream("Hello", language="en")
        await stream.__anext__()
        waited = loop.time() - started
        await stream.aclose()
        cartesia.delay_ms = 800
        with pytest.raises(ProviderTimeout):
            await _collect(tts.astream("Hello", language="en"))
        await tts.aclose()
        return waited

    assert 0.15 <= asyncio.run(scenario()) < 1.0


def test_fallback_astream_uses_the_loop_and_falls_back_in_a_thread(cartesia):
    import threading

    offline = OfflineTTS()
    breaker = CircuitBreaker("tts:cartesia", failure_threshold=1, clock=FakeClock())
    tts = FallbackTTS(CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS), offline, breaker)
    threads_before = threading.active_count()

    async def scenario():
        cloud = await _collect(tts.astream("Hello", language="en"))
        no_new_thread = threading.active_count() == threads_before
        cartesia.fail_next("error")
        fallen_back = await _collect(tts.astream("Hello", language="en"))
        await tts.primary.aclose()
        return cloud, no_new_thread, fallen_back

    cloud, no_new_thread, fallen_back = asyncio.run(scenario())
    assert cloud == tone_pcm("Hello", 8000) and no_new_thread
    # The offline voice at the primary's rate (8 kHz), whole.
    assert fallen_back == resample(tone_pcm("Hello", 22050), 22050, 8000)
    assert offline.calls == 1 and breaker.state is CircuitState.OPEN
    report = tts.usage_report()
    assert report["tts_served"] == {"cartesia": 1, "espeak": 1}
    assert report["tts_errors"] == {"ProviderProtocolError": 1}


def test_fallback_astream_barge_in_is_no_verdict_without_audio(cartesia):
    cartesia.delay_ms = 300
    breaker = CircuitBreaker("tts:cartesia", failure_threshold=1, clock=FakeClock())
    tts = FallbackTTS(CartesiaTTS(API_KEY, url=cartesia.url, **FAST_TTS), OfflineTTS(), breaker)

    async def scenario():
        stream = tts.astream("Hello", language="en")
        task = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.aclose()
        await tts.primary.aclose()

    asyncio.run(scenario())
    assert breaker.state is CircuitState.CLOSED and breaker.consecutive_failures == 0
