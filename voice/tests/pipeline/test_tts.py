"""eSpeak NG text-to-speech: English, Hindi, Hinglish routing, streaming."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy", reason="voice pipeline needs numpy")
pytest.importorskip("espeakng_loader", reason="offline TTS needs espeakng-loader")

from voice.pipeline.tts import (  # noqa: E402
    TextToSpeech,
    rms_dbfs,
    split_script_runs,
    split_sentences,
    telephony_frames,
)

from .helpers import tts  # noqa: E402


def _speech_seconds(pcm16: bytes, rate: int) -> float:
    x = np.abs(np.frombuffer(pcm16, dtype="<i2").astype(np.int32))
    frame = rate // 50
    n = len(x) // frame
    loud = x[: n * frame].reshape(n, frame).max(axis=1) > 1000
    return float(loud.sum()) / 50


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Your appointment with doctor Sharma is tomorrow at ten AM.", "en"),
        ("आपका अपॉइंटमेंट कल सुबह दस बजे है।", "hi"),
    ],
)
def test_synthesizes_audible_speech(text, language):
    engine = tts()
    assert isinstance(engine, TextToSpeech)
    audio = engine.synthesize(text, language=language)
    assert audio.sample_rate == engine.sample_rate == 22050
    assert 1.0 < audio.duration_s < 8.0
    assert rms_dbfs(audio.pcm16) > -30  # clearly not silence
    assert _speech_seconds(audio.pcm16, audio.sample_rate) > 0.8


def test_empty_text_gives_no_audio():
    audio = tts().synthesize("   ", language="en")
    assert audio.pcm16 == b""
    assert rms_dbfs(audio.pcm16) == float("-inf")


def test_script_runs_for_hinglish():
    assert split_script_runs("आपका appointment कल 10 बजे है.") == [
        ("deva", "आपका"),
        ("latn", "appointment"),
        ("deva", "कल"),
        ("latn", "10"),
        ("deva", "बजे है."),
    ]
    assert split_sentences("Hello. आप कैसे हैं। Bye!") == ["Hello.", "आप कैसे हैं।", "Bye!"]


class _VoiceSpy:
    """Wraps the eSpeak engine to record which voice rendered which text."""

    def __init__(self, engine):
        self.engine = engine
        self.calls: list[tuple[str, str]] = []

    def synth(self, text, *, voice, **kwargs):
        self.calls.append((voice, text))
        return self.engine.synth(text, voice=voice, **kwargs)


def test_hinglish_uses_hindi_voice_for_devanagari_and_english_for_latin(monkeypatch):
    engine = tts()
    spy = _VoiceSpy(engine._engine)
    monkeypatch.setattr(engine, "_engine", spy)
    audio = engine.synthesize("आपका appointment कल 10 बजे है। Thank you!", language="hi")
    assert spy.calls == [
        ("hi", "आपका"),
        ("en-us", "appointment"),
        ("hi", "कल"),
        ("en-us", "10"),
        ("hi", "बजे है।"),
        ("en-us", "Thank you!"),
    ]
    assert audio.duration_s > 2.0
    spy.calls.clear()
    engine.synthesize("नमस्ते", language="en")  # script wins over the requested language
    assert spy.calls == [("hi", "नमस्ते")]


def test_hindi_and_english_voices_sound_different():
    engine = tts()
    # Same Latin letters through each voice: different phonology, different audio length.
    hindi = engine._engine.synth("namaste doctor", voice="hi", rate_wpm=160, pitch=50)
    english = engine._engine.synth("namaste doctor", voice="en-us", rate_wpm=160, pitch=50)
    assert abs(len(b"".join(hindi)) - len(b"".join(english))) > 0.05 * len(b"".join(english))


def test_stream_yields_several_chunks_equal_to_whole():
    engine = tts()
    text = "Namaste. Your appointment is confirmed. Please arrive ten minutes early."
    stream = engine.synthesize_stream(text, language="en")
    first = next(stream)
    rest = list(stream)
    assert len(first) > 0 and len(rest) >= 2
    assert len(first) < len(first + b"".join(rest)) / 3  # first audio long before the end
    # Same speech as the one-shot call (eSpeak jitters by a few samples).
    whole = engine.synthesize(text, language="en").pcm16
    assert len(first + b"".join(rest)) == pytest.approx(len(whole), rel=0.01)


def test_stream_is_lazy_and_can_be_abandoned():
    engine = tts()
    stream = engine.synthesize_stream("One. Two. Three. Four.", language="en")
    next(stream)
    stream.close()  # barge-in: no further synthesis, engine still usable
    assert engine.synthesize("Five.", language="en").duration_s > 0.2


def test_telephony_frames_are_8khz_mulaw_20ms():
    engine = tts()
    text = "Thank you for calling."
    frames = list(telephony_frames(engine, text, language="en"))
    duration = engine.synthesize(text, language="en").duration_s
    assert all(len(f) == 160 for f in frames)
    # eSpeak jitters by a few samples between runs, and the last frame is padded.
    assert len(frames) == pytest.approx(duration * 50, abs=2)
