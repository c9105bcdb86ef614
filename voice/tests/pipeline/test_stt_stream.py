"""Streaming recognition with PocketSphinx: same transcript as transcribe, cancel, concurrency."""

from __future__ import annotations

import random
import threading

import pytest

from voice.pipeline.codecs import mulaw_to_pcm16
from voice.pipeline.stt import SpeechStream, StreamingSpeechToText

from .helpers import DOCTORS, KEY_SENTENCE, phone_frames, speech_8k, stt

needs_engines = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("pocketsphinx", "espeakng_loader")),
    reason="offline STT/TTS packages not installed",
)
pytestmark = needs_engines

SHORT = "Yes that is fine"
LONG = "Please cancel my appointment with doctor Gupta on Friday"


def _feed_in_pieces(session, pcm: bytes, seed: int) -> None:
    """Irregular pieces, odd byte counts included: results must not depend on the split."""
    rng = random.Random(seed)
    i = 0
    while i < len(pcm):
        n = rng.choice([1, 161, 320, 333, 1600, 4801])
        session.feed(pcm[i : i + n])
        i += n


def _phone_pcm(text: str) -> bytes:
    """The caller's audio as the consumer sees it: 20 ms mu-law frames decoded to PCM."""
    return b"".join(mulaw_to_pcm16(f) for f in phone_frames(speech_8k(text)))


@pytest.mark.parametrize("text", [KEY_SENTENCE, LONG, SHORT])
def test_stream_gives_the_same_transcript_as_transcribe(text):
    engine = stt()
    assert isinstance(engine, StreamingSpeechToText)
    pcm = _phone_pcm(text)
    session = engine.stream("en", sample_rate=8000)
    assert isinstance(session, SpeechStream)
    _feed_in_pieces(session, pcm, seed=len(text))
    streamed = session.finish()
    assert streamed.text == engine.transcribe(pcm, 8000, language="en").text
    assert streamed.language == "en" and streamed.words == tuple(streamed.text.split())


def test_recognition_runs_while_audio_arrives():
    engine = stt()
    pcm = _phone_pcm(KEY_SENTENCE)
    session = engine.stream("en")
    for i in range(0, len(pcm), 3200):  # 200 ms at a time, as the conversation feeds it
        session.feed(pcm[i : i + 3200])
    # All but the last ~0.7 s is decoded before the end of speech is known...
    assert session.decoded_s > len(pcm) / 16000 - 1.2
    transcript = session.finish()
    # ...and the words are those of the whole-utterance decoding.
    assert {"book", "appointment", "sharma", "tomorrow"} <= set(transcript.text.split())


def test_short_utterance_is_decoded_whole_at_finish():
    engine = stt()
    session = engine.stream("en")
    session.feed(_phone_pcm("yes"))
    assert session.decoded_s == 0  # under a second: nothing to gain from starting early
    assert session.finish().text == "yes"


def test_cancel_returns_the_decoder_and_ends_the_session():
    from voice.pipeline.stt import PocketsphinxSTT

    engine = PocketsphinxSTT(doctor_names=DOCTORS, max_decoders=1)
    pcm = _phone_pcm(LONG)
    session = engine.stream("en")
    session.feed(pcm[: len(pcm) // 2])
    assert session.decoded_s > 0  # holds the only decoder, mid-utterance
    session.cancel()
    session.cancel()  # idempotent
    session.feed(pcm[len(pcm) // 2 :])  # ignored
    with pytest.raises(RuntimeError):
        session.finish()
    # The decoder is back in the pool, and reusable although left mid-utterance.
    fresh = engine.stream("en")
    fresh.feed(pcm)
    assert fresh.decoded_s > 0
    assert fresh.finish().text == engine.transcribe(pcm, 8000, language="en").text
    assert engine._created == 1


def test_cancel_from_another_thread_while_feeding():
    from voice.pipeline.stt import PocketsphinxSTT

    engine = PocketsphinxSTT(doctor_names=DOCTORS, max_decoders=1)
    pcm = _phone_pcm(LONG) * 3
    session = engine.stream("en")
    worker = threading.Thread(target=session.feed, args=(pcm,))
    worker.start()
    session.cancel()  # never blocks, whatever the feeding thread is doing
    worker.join(10)
    assert not worker.is_alive()
    assert engine.transcribe(_phone_pcm(SHORT), 8000, language="en").text  # decoder reusable
    assert engine._created == 1


def test_concurrent_sessions_do_not_mix_up_audio():
    engine = stt()
    texts = [KEY_SENTENCE, LONG, "Can I reschedule to Monday at four thirty pm"]
    audio = [_phone_pcm(t) for t in texts]
    expected = [engine.transcribe(pcm, 8000, language="en").text for pcm in audio]
    results: dict[int, str] = {}

    def caller(i: int) -> None:
        session = engine.stream("en")
        _feed_in_pieces(session, audio[i], seed=i)
        results[i] = session.finish().text

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [results[i] for i in range(len(texts))] == expected


def test_exhausted_pool_defers_decoding_without_changing_the_result():
    from voice.pipeline.stt import PocketsphinxSTT

    engine = PocketsphinxSTT(doctor_names=DOCTORS, max_decoders=1)
    pcm = _phone_pcm(LONG)
    first, second = engine.stream("en"), engine.stream("en")
    first.feed(pcm)
    second.feed(pcm)  # no decoder free: buffered, not blocked
    assert first.decoded_s > 0 and second.decoded_s == 0
    assert second.finish().text == first.finish().text  # finish never waits for the pool
