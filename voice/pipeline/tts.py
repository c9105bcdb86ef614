"""Text-to-speech: protocol plus an offline eSpeak NG implementation.

eSpeak NG comes from the PyPI wheel ``espeakng-loader`` (shared library plus
voice data), driven directly through ctypes so no system package is needed.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class SynthesizedAudio:
    """Mono little-endian int16 PCM plus its sample rate."""

    pcm16: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm16) / 2 / self.sample_rate


@runtime_checkable
class TextToSpeech(Protocol):
    """Anything that can voice a reply.  ``sample_rate`` is the native output rate."""

    sample_rate: int

    def synthesize(self, text: str, *, language: str) -> SynthesizedAudio:
        """Whole reply at once."""
        ...

    def synthesize_stream(self, text: str, *, language: str) -> Iterator[bytes]:
        """PCM16 chunks at ``sample_rate`` as soon as each is ready (first frame out early)."""
        ...


# ---------------------------------------------------------------------------
# Text segmentation: sentences, and script runs for Hinglish.
# ---------------------------------------------------------------------------

_DEVANAGARI = re.compile(r"[\u0900-\u097F\uA8E0-\uA8FF]")
_LATIN = re.compile(r"[A-Za-z0-9]")
# Sentence ends: ., !, ?, the Devanagari danda (।) and double danda (॥).
_SENTENCE_END = re.compile(r"(?<=[.!?\u0964\u0965])\s+")


def _script_of(token: str) -> str | None:
    if _DEVANAGARI.search(token):
        return "deva"
    if _LATIN.search(token):
        return "latn"
    return None  # punctuation / whitespace: sticks to its neighbour


def split_script_runs(text: str) -> list[tuple[str, str]]:
    """Split text into (script, chunk) runs, script in {"deva", "latn"}.

    Why: a Hinglish reply such as "आपका appointment कल 10 बजे है" must use
    the Hindi voice for Devanagari and the English voice for Latin words;
    a single voice mispronounces the other script badly.
    """
    runs: list[tuple[str, str]] = []
    for token in re.findall(r"\S+\s*", text):
        script = _script_of(token)
        if runs and (script is None or runs[-1][0] == script):
            runs[-1] = (runs[-1][0], runs[-1][1] + token)
        elif script is None:
            runs.append(("latn", token))
        else:
            runs.append((script, token))
    return [(s, t.strip()) for s, t in runs if t.strip()]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


# ---------------------------------------------------------------------------
# eSpeak NG through ctypes
# ---------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_VOLUME = 2
_ESPEAK_PITCH = 3

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _EspeakEngine:
    """Process-wide eSpeak NG instance.

    libespeak-ng keeps global state (one voice, one callback), so the library
    is initialised once and every synthesis runs under one lock.  Output is
    not bit-identical between runs (eSpeak adds random jitter; reseeding does
    not remove it), only perceptually identical.
    """

    _instance: _EspeakEngine | None = None
    _instance_lock = threading.Lock()

    def __init__(self, buffer_ms: int = 60) -> None:
        import espeakng_loader  # imported lazily: only the offline provider needs it

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int

        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, buffer_ms, espeakng_loader.get_data_path().encode(), 0
        )
        if rate <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self.sample_rate = int(rate)
        self._lib = lib
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._callback = _SynthCallback(self._on_audio)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> _EspeakEngine:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav: ctypes.Array, n_samples: int, _events: int) -> int:
        if n_samples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, n_samples * 2))
        return 0  # 0 = continue synthesis

    def synth(self, text: str, *, voice: str, rate_wpm: int, pitch: int) -> list[bytes]:
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"unknown eSpeak voice {voice!r}")
            self._lib.espeak_SetParameter(_ESPEAK_RATE, rate_wpm, 0)
            self._lib.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
            self._chunks = []
            err = self._lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with status {err}")
        return chunks


DEFAULT_VOICES: Mapping[str, str] = {
    # eSpeak NG has no Indian English voice; US English is the clearest and
    # matches the en-us acoustic model of the offline recogniser.
    "en": "en-us",
    "hi": "hi",
}


class EspeakTTS:
    """Offline TTS with eSpeak NG (22.05 kHz).  Hinglish: voice chosen per script run."""

    def __init__(
        self,
        *,
        voices: Mapping[str, str] | None = None,
        rate_wpm: int = 160,
        pitch: int = 50,
    ) -> None:
        self._engine = _EspeakEngine.get()
        self.sample_rate = self._engine.sample_rate
        self.voices = {**DEFAULT_VOICES, **(voices or {})}
        self.rate_wpm = rate_wpm
        self.pitch = pitch

    def voice_for(self, script: str, language: str) -> str:
        # Devanagari always needs the Hindi voice; Latin text uses English
        # even inside a Hindi/Hinglish reply (romanised words, numbers, names).
        del language  # the script decides; kept for providers that need it
        return self.voices["hi"] if script == "deva" else self.voices["en"]

    def synthesize_stream(self, text: str, *, language: str = "en") -> Iterator[bytes]:
        """Yield PCM chunks sentence by sentence, script run by script run.

        eSpeak renders a sentence in a few ms, so the first chunk is ready
        almost immediately and the rest is produced only as it is consumed
        (closing the generator on barge-in stops synthesis).
        """
        for sentence in split_sentences(text):
            for script, run in split_script_runs(sentence):
                voice = self.voice_for(script, language)
                yield from self._engine.synth(
                    run, voice=voice, rate_wpm=self.rate_wpm, pitch=self.pitch
                )

    def synthesize(self, text: str, *, language: str = "en") -> SynthesizedAudio:
        return SynthesizedAudio(
            b"".join(self.synthesize_stream(text, language=language)), self.sample_rate
        )


def telephony_frames(tts: TextToSpeech, text: str, *, language: str = "en") -> Iterator[bytes]:
    """Stream a reply as outbound Twilio frames (8 kHz mu-law, 160 bytes each).

    Frames are yielded as soon as the first synthesized chunk is resampled,
    so playback can start before the rest of the reply exists.
    """
    from .codecs import TelephonyEncoder

    encoder = TelephonyEncoder(tts.sample_rate)
    for chunk in tts.synthesize_stream(text, language=language):
        yield from encoder.push(chunk)
    yield from encoder.flush()


async def telephony_frames_async(
    tts: TextToSpeech, text: str, *, language: str = "en"
) -> AsyncIterator[bytes]:
    """:func:`telephony_frames` from a provider's ``astream()``, on the event loop."""
    from .codecs import TelephonyEncoder

    encoder = TelephonyEncoder(tts.sample_rate)
    stream = tts.astream(text, language=language)  # type: ignore[attr-defined]
    try:
        async for chunk in stream:
            for frame in encoder.push(chunk):
                yield frame
        for frame in encoder.flush():
            yield frame
    finally:
        await stream.aclose()


def rms_dbfs(pcm16: bytes) -> float:
    """Loudness helper (dBFS) used by tests and health checks."""
    x = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    if x.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(x * x)))
    return 20 * np.log10(rms / 32768.0) if rms > 0 else float("-inf")
