"""Shared, cached test helpers (no conftest, so the suite also runs with --noconftest)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from voice.pipeline.codecs import (
    TELEPHONY_RATE,
    frame_mulaw,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    resample,
)

DOCTORS = ("Sharma", "Gupta", "Mehta", "Rao")
KEY_SENTENCE = "I want to book an appointment with doctor Sharma tomorrow at ten am"
KEY_WORDS = ("book", "appointment", "sharma", "tomorrow", "ten")


@lru_cache(maxsize=1)
def tts():
    from voice.pipeline.tts import EspeakTTS

    return EspeakTTS()


@lru_cache(maxsize=1)
def stt():
    from voice.pipeline.stt import PocketsphinxSTT

    return PocketsphinxSTT(doctor_names=DOCTORS)


def speech_8k_fresh(text: str, language: str = "en") -> bytes:
    """TTS speech as the phone delivers it: 8 kHz, through mu-law and back.

    eSpeak output jitters slightly between renditions; call this to get a new one.
    """
    audio = tts().synthesize(text, language=language)
    return mulaw_to_pcm16(pcm16_to_mulaw(resample(audio.pcm16, audio.sample_rate, TELEPHONY_RATE)))


@lru_cache(maxsize=32)
def speech_8k(text: str, language: str = "en") -> bytes:
    """Cached :func:`speech_8k_fresh` (one rendition per text per test session)."""
    return speech_8k_fresh(text, language)


def with_silence(
    pcm16: bytes, before_s: float, after_s: float, rate: int = TELEPHONY_RATE
) -> bytes:
    pad = lambda s: bytes(int(s * rate) * 2)  # noqa: E731
    return pad(before_s) + pcm16 + pad(after_s)


def speech_bounds_ms(
    pcm16: bytes, rate: int = TELEPHONY_RATE, threshold: int = 300
) -> tuple[float, float]:
    """(first, last) sample above threshold, in ms: the ground truth for VAD timing."""
    x = np.abs(np.frombuffer(pcm16, dtype="<i2").astype(np.int32))
    idx = np.nonzero(x > threshold)[0]
    return idx[0] * 1000 / rate, idx[-1] * 1000 / rate


def pcm_frames(pcm16: bytes, rate: int = TELEPHONY_RATE, frame_ms: int = 20) -> list[bytes]:
    step = rate * frame_ms // 1000 * 2
    frames = [pcm16[i : i + step] for i in range(0, len(pcm16), step)]
    if frames and len(frames[-1]) < step:
        frames[-1] = frames[-1] + bytes(step - len(frames[-1]))
    return frames


def phone_frames(pcm16_8k: bytes) -> list[bytes]:
    """What Twilio sends: 160-byte mu-law frames."""
    return frame_mulaw(pcm16_to_mulaw(pcm16_8k))


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))
