"""Speech-to-text: protocol plus an offline PocketSphinx recogniser biased to
the clinic's vocabulary with a small n-gram language model built at runtime.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .codecs import resample
from .vocabulary import HINDI_WORDS, ClinicVocabulary, normalize_text, romanized_g2p


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    confidence: float  # 0..1; providers differ in calibration
    words: tuple[str, ...] = ()
    processing_ms: float = 0.0

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


@runtime_checkable
class SpeechToText(Protocol):
    def transcribe(self, pcm16: bytes, sample_rate: int, *, language: str) -> Transcript:
        """Transcribe one utterance of mono int16 PCM."""
        ...


# ---------------------------------------------------------------------------
# Pronunciation dictionary
# ---------------------------------------------------------------------------

# Extra variants for how synthetic and Indian-English speech render these.
EXTRA_PRONUNCIATIONS: Mapping[str, Sequence[str]] = {
    "am": ("AE M",),
    "pm": ("P IY EH M",),
    "ok": ("OW K EY",),
    "okay": ("OW K EY",),
    "hmm": ("HH M", "HH AH M", "M"),
    "haan": ("HH AA N", "HH AA"),
    "doctor": ("D AA K T AH R",),
}


@lru_cache(maxsize=2)
def _load_cmudict(path: str) -> dict[str, tuple[str, ...]]:
    """CMUdict word -> pronunciations (cached: the file is 3 MB, read once per process)."""
    prons: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(None, 1)
            if len(parts) != 2:
                continue
            word = parts[0].split("(", 1)[0]
            phones = parts[1].split("#", 1)[0].strip()
            prons.setdefault(word, []).append(phones)
    return {w: tuple(p) for w, p in prons.items()}


def build_dictionary(
    words: Iterable[str],
    cmudict: Mapping[str, Sequence[str]],
    overrides: Mapping[str, Sequence[str]] | None = None,
    g2p_words: Iterable[str] = HINDI_WORDS,
) -> dict[str, list[str]]:
    """Pronunciations for exactly the words the language model can produce.

    CMUdict first; romanised Hindi words and Indian names (``g2p_words``)
    additionally get the G2P pronunciation, since CMUdict has only the
    American reading of them; anything unknown falls back to G2P so no word
    is dropped.
    """
    out: dict[str, list[str]] = {}
    g2p_set = set(g2p_words)
    overrides = {k.lower(): v for k, v in (overrides or {}).items()}
    for word in sorted(set(words)):
        prons: list[str] = list(overrides.get(word, ()))
        prons += list(cmudict.get(word, ()))
        prons += list(EXTRA_PRONUNCIATIONS.get(word, ()))
        if word in g2p_set or not prons:
            g2p = " ".join(romanized_g2p(word))
            if g2p:
                prons.append(g2p)
        seen: list[str] = []
        for p in prons:
            if p not in seen:
                seen.append(p)
        if seen:
            out[word] = seen
    return out


def write_dictionary(prons: Mapping[str, Sequence[str]], path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for word, variants in prons.items():
            for i, phones in enumerate(variants):
                fh.write(f"{word}{'' if i == 0 else f'({i + 1})'} {phones}\n")


def build_arpa_lm(sentences: Iterable[str], path: str, *, discount_mass: float = 0.05) -> None:
    """Write a trigram ARPA model for the sentences (fixed-discount back-off).

    Uses the builder shipped with the pocketsphinx package, so no extra
    toolkit (SRILM, KenLM) is needed at runtime.  The low discount mass keeps
    little probability for unseen word sequences: on narrowband phone audio
    the default 0.5 let acoustically plausible junk ("at am am") beat the
    in-domain phrase ("at ten am").  Measured on TTS speech through the
    8 kHz mu-law channel, 0.5 -> 0.05 (with lw 6) raised English word accuracy
    from ~0.89 to ~0.96; the price is that off-corpus word orders are harder
    to recognise, so feed the clinic's real phrases in.
    """
    from pocketsphinx.lm import ArpaBoLM

    lm = ArpaBoLM(text="\n".join(sentences), add_start=True, discount_mass=discount_mass)
    lm.compute()
    lm.write_file(path)


# ---------------------------------------------------------------------------
# PocketSphinx recogniser
# ---------------------------------------------------------------------------


class PocketsphinxSTT:
    """Offline English/Hinglish recogniser biased to a clinic's vocabulary.

    The decoder is not thread-safe, so a small pool is kept; ``transcribe``
    blocks (~real time / 5 on one core): call it from a worker thread in
    async code.
    """

    MODEL_RATE = 16000  # the bundled en-us acoustic model is wideband
    # PocketSphinx gives no usable utterance confidence here: on the eval set
    # neither the lattice posterior nor the acoustic score relative to a
    # phone loop separated right from wrong transcripts.  So a non-empty
    # result gets this neutral constant; cloud providers report real values.
    confidence = 0.6

    def __init__(
        self,
        phrases: Sequence[str] = (),
        *,
        vocabulary: ClinicVocabulary | None = None,
        doctor_names: Sequence[str] | None = None,
        pronunciations: Mapping[str, Sequence[str]] | None = None,
        language_weight: float = 6.0,
        max_decoders: int = 2,
        noise_floor: float = 100.0,
        pad_s: float = 0.25,
        trim_db: float | None = 35.0,
        trim_margin_s: float = 0.0,
        decoder_options: Mapping[str, Any] | None = None,
    ) -> None:
        import pocketsphinx

        if vocabulary is None:
            vocabulary = ClinicVocabulary(
                phrases=tuple(phrases), pronunciations=dict(pronunciations or {})
            )
            if doctor_names is not None:
                vocabulary.doctor_names = tuple(doctor_names)
        self.vocabulary = vocabulary
        self.noise_floor = noise_floor
        self.pad_s = pad_s
        self.trim_db = trim_db
        self.trim_margin_s = trim_margin_s
        sentences = vocabulary.sentences()
        cmudict = _load_cmudict(pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"))
        self.pronunciations = build_dictionary(
            vocabulary.words(), cmudict, vocabulary.pronunciations, g2p_words=vocabulary.g2p_words()
        )

        self._tmpdir = tempfile.TemporaryDirectory(prefix="clinic-lm-")
        self._dict_path = os.path.join(self._tmpdir.name, "clinic.dict")
        self._lm_path = os.path.join(self._tmpdir.name, "clinic.lm")
        write_dictionary(self.pronunciations, self._dict_path)
        build_arpa_lm(sentences, self._lm_path)

        self._config: dict[str, Any] = {
            "hmm": pocketsphinx.get_model_path("en-us/en-us"),
            "dict": self._dict_path,
            "lm": self._lm_path,
            "samprate": self.MODEL_RATE,
            "lw": language_weight,
            "loglevel": "FATAL",
            **dict(decoder_options or {}),
        }
        self._max_decoders = max(1, max_decoders)
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._created = 0
        self._pool_lock = threading.Lock()
        self._pool.put(self._new_decoder())  # fail fast on a bad model/config

    def _new_decoder(self) -> Any:
        import pocketsphinx

        decoder = pocketsphinx.Decoder(**self._config)
        self._created += 1
        return decoder

    def _acquire(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._pool_lock:
            if self._created < self._max_decoders:
                return self._new_decoder()
        return self._pool.get()

    def _condition(self, pcm16: bytes, sample_rate: int) -> bytes:
        """Resample to the model rate, trim, pad, and add a faint noise floor.

        Why the noise: digitally silent stretches (TTS output, padding, codecs
        without comfort noise) give -inf log energies that wreck cepstral mean
        normalisation and the silence model; without it clean synthetic speech
        was only ~30% word-accurate.  Trimming plus a fixed pad (see
        ``_trim_silence``) keeps the speech/silence ratio constant.  Levels
        were tuned on jittered TTS renditions through the 8 kHz channel
        (30/30 key sentences and 90/90 short answers such as "yes" correct with
        std 100 = -50 dBFS and 0.25 s pads).  Seeded: a given input always
        decodes the same way.
        """
        audio = (
            resample(pcm16, sample_rate, self.MODEL_RATE)
            if sample_rate != self.MODEL_RATE
            else pcm16
        )
        x = np.frombuffer(audio, dtype="<i2").astype(np.float32)
        if self.trim_db is not None:
            x = _trim_silence(x, self.MODEL_RATE, self.trim_db, self.trim_margin_s)
        pad = np.zeros(int(self.pad_s * self.MODEL_RATE), dtype=np.float32)
        x = np.concatenate([pad, x, pad])
        if self.noise_floor > 0:
            x += (
                np.random.default_rng(len(x))
                .normal(0.0, self.noise_floor, len(x))
                .astype(np.float32)
            )
        return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()

    def transcribe(self, pcm16: bytes, sample_rate: int, *, language: str = "en") -> Transcript:
        started = time.perf_counter()
        audio = self._condition(pcm16, sample_rate)
        decoder = self._acquire()
        try:
            decoder.start_utt()
            decoder.process_raw(audio, no_search=False, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            words = tuple(
                seg.word.split("(", 1)[0]
                for seg in decoder.seg()
                if not seg.word.startswith(("<", "[")) and seg.word != "<sil>"
            )
        finally:
            self._pool.put(decoder)
        text = " ".join(words) if words else (hyp.hypstr if hyp else "")
        return Transcript(
            text=text,
            language=language,
            confidence=self.confidence if text else 0.0,
            words=tuple(text.split()),
            processing_ms=(time.perf_counter() - started) * 1000,
        )

    def close(self) -> None:
        self._tmpdir.cleanup()


def _trim_silence(
    x: np.ndarray, rate: int, below_peak_db: float, margin_s: float = 0.05
) -> np.ndarray:
    """Cut leading/trailing audio quieter than ``below_peak_db`` under the loudest 10 ms.

    Why: batch cepstral mean normalisation averages over the whole utterance,
    so the amount of silence around the speech (pre-roll, trailing silence,
    padding) shifted the features enough to flip words ("yes" -> "pm").
    Trimming to the speech plus a fixed margin makes decoding independent of
    how the segmenter cut the utterance.
    """
    frame = rate // 100
    n = len(x) // frame
    if n < 3:
        return x
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-9)
    loud = np.nonzero(20 * np.log10(rms / rms.max()) > -below_peak_db)[0]
    margin = int(margin_s * rate)
    start = max(0, loud[0] * frame - margin)
    end = min(len(x), (loud[-1] + 1) * frame + margin)
    return x[start:end]


# ---------------------------------------------------------------------------
# Scoring helpers (used by tests and the benchmark)
# ---------------------------------------------------------------------------


def word_error_counts(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference length) after normalisation."""
    ref = normalize_text(reference).split()
    hyp = normalize_text(hypothesis).split()
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)


def word_accuracy(reference: str, hypothesis: str) -> float:
    """1 - WER, floored at 0."""
    errors, n = word_error_counts(reference, hypothesis)
    return max(0.0, 1.0 - errors / n) if n else float(not hypothesis.strip())
