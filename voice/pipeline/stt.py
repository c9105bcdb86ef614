"""Speech-to-text: protocol plus an offline PocketSphinx recogniser biased to
the clinic's vocabulary with a small n-gram language model built at runtime.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .codecs import Resampler, resample
from .vocabulary import HINDI_WORDS, ClinicVocabulary, normalize_text, romanized_g2p

# ``Decoder.start_stream()`` resets the front end's noise statistics; PocketSphinx 5
# calls it "unnecessary", but without it a decoder's result depends on what it
# decoded before (the noise estimate carries over from the previous utterance).
warnings.filterwarnings(
    "ignore", message=r"start_stream\(\) is deprecated", category=DeprecationWarning
)


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


# What the agent's last question expects (``AgentReply.expects``): a provider
# may listen for it.  The offline recogniser switches to its name search for
# EXPECTS_NAME; "" (or anything else) is the general clinic model.
EXPECTS_NAME = "name"


@runtime_checkable
class SpeechToText(Protocol):
    def transcribe(
        self, pcm16: bytes, sample_rate: int, *, language: str, expects: str = ""
    ) -> Transcript:
        """Transcribe one utterance of mono int16 PCM (``expects``: see EXPECTS_NAME)."""
        ...


@runtime_checkable
class SpeechStream(Protocol):
    """One utterance recognised while it is spoken (blocking calls: use a worker thread).

    ``feed`` the utterance's audio in order as it arrives, then exactly one of
    ``finish()`` (the transcript; most of the work is already done by then) or
    ``cancel()`` (drop it: a backchannel, a cough, a hang-up).  ``feed`` and
    ``finish`` must not run concurrently with each other; ``cancel`` may be called
    from any thread at any time and never blocks.
    """

    def feed(self, pcm16: bytes) -> None: ...

    def finish(self) -> Transcript: ...

    def cancel(self) -> None: ...


@runtime_checkable
class StreamingSpeechToText(SpeechToText, Protocol):
    """Optional extension of :class:`SpeechToText`: recognition during the utterance.

    Providers without it are used through ``transcribe`` after the end of speech.
    """

    def stream(
        self, language: str, *, sample_rate: int = 8000, expects: str = ""
    ) -> SpeechStream: ...


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


class PronunciationTable(Mapping[str, tuple[str, ...]]):
    """Word -> pronunciations, stored as one string per word (variants joined by newlines).

    CMUdict has 126k words.  As a tuple each they were 126k objects the garbage
    collector tracks until its next collection: loading it (a call's first recognizer)
    set off two full collections walking them, 30-55 ms each with the GIL held, while
    other calls' audio waited.  A dict of strings is not tracked at all.
    """

    def __init__(self, joined: dict[str, str]) -> None:
        self._joined = joined

    def __getitem__(self, word: str) -> tuple[str, ...]:
        return tuple(self._joined[word].split("\n"))

    def __iter__(self):
        return iter(self._joined)

    def __len__(self) -> int:
        return len(self._joined)


@lru_cache(maxsize=2)
def _load_cmudict(path: str) -> PronunciationTable:
    """CMUdict word -> pronunciations (cached: the file is 3 MB, read once per process)."""
    prons: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(None, 1)
            if len(parts) != 2:
                continue
            word = parts[0].split("(", 1)[0]
            phones = parts[1].split("#", 1)[0].strip()
            known = prons.get(word)
            prons[word] = phones if known is None else known + "\n" + phones
    return PronunciationTable(prons)


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


_shared_models = tempfile.TemporaryDirectory(prefix="voice-lm-")


@lru_cache(maxsize=2)
def _names_lm(sentences: tuple[str, ...]) -> str:
    """The name search's model file: the same for every clinic, so built once (~0.5 s)."""
    path = os.path.join(_shared_models.name, f"names-{len(sentences)}-{hash(sentences)}.lm")
    build_arpa_lm(sentences, path)
    return path


# ---------------------------------------------------------------------------
# PocketSphinx recogniser
# ---------------------------------------------------------------------------


class PocketsphinxSTT:
    """Offline English/Hinglish recogniser biased to a clinic's vocabulary.

    Every call blocks (decoding runs at ~real time / 15 on one core): call it
    from a worker thread in async code.  PocketSphinx keeps the GIL while it
    decodes, so audio is handed to it in 40 ms blocks (a few ms of CPU each):
    the event loop and other threads never wait long for the GIL.

    Decoders are not thread-safe: a pool is kept, one decoder per utterance
    being recognised (~15 MB each with its probe, created on demand).  Up to
    ``max_decoders`` serve utterances while they are spoken; beyond that an
    utterance is buffered and decoded at ``finish()``, which never waits for
    the pool (it creates a decoder if none is free): a busy moment costs
    latency, never a stalled turn.

    :meth:`stream` recognises an utterance while it is spoken;
    :meth:`transcribe` runs the very same computation over complete audio, so
    both give the same transcript for the same audio.  See
    :class:`PocketsphinxStream` for how streaming keeps whole-utterance accuracy.
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
        rescoring_weight: float = 11.0,
        max_decoders: int = 8,
        noise_floor: float = 100.0,
        pad_s: float = 0.25,
        trim_db: float | None = 35.0,
        trim_margin_s: float = 0.0,
        stream_update_s: float = 0.3,
        stream_lookahead_s: float = 0.2,
        stream_min_s: float = 0.6,
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
        self.stream_update_s = stream_update_s
        self.stream_lookahead_s = stream_lookahead_s
        self.stream_min_s = stream_min_s
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
        self._names_lm_path = _names_lm(tuple(vocabulary.name_sentences()))

        self._config: dict[str, Any] = {
            "hmm": pocketsphinx.get_model_path("en-us/en-us"),
            "dict": self._dict_path,
            "lm": self._lm_path,
            "samprate": self.MODEL_RATE,
            # One frame-synchronous pass over a flat lexicon instead of the default
            # tree pass plus a flat second pass at the end of the utterance: with
            # ~200 words the flat pass is affordable live, and the second pass was
            # a 30-110 ms block of work (holding the GIL) after the end of speech.
            # The flat pass weighs the LM with ``fwdflatlw`` (default 8.5);
            # ``language_weight`` ("lw") only matters if the tree pass is turned
            # back on through ``decoder_options``.
            "lw": language_weight,
            "fwdtree": False,
            "fwdflat": True,
            # Pruning (defaults 1e-64 and no limit): a flat pass enters every word
            # every frame, so its beams mostly decide CPU.  Measured on 20 jittered
            # renditions of the eval set (+40 of "tomorrow at ten am") through the
            # 8 kHz channel: the same transcript for every one of 320 utterances,
            # ~7-10% less decoding CPU.  Tighter loses "ten": fwdflatwbeam 1e-24
            # (default 7e-29) kept it in 48/60, fwdflatbeam 1e-48 with it 48/60;
            # topn 2 57/60, ds 2 50/60 (all 60/60 now).
            "fwdflatbeam": 1e-52,
            "maxwpf": 10,
            # The transcript is the best path through the word lattice, rescored
            # with this LM weight (PocketSphinx default 9.5).  Measured on jittered
            # TTS renditions through the 8 kHz channel, averaged over noise seeds:
            # "tomorrow at ten am" kept "ten" in 88% (9.5: 48%; the previous
            # tree+flat pipeline: 65%); word accuracy 0.973 on the eval set (0.967
            # at 9.5, previous pipeline 0.968) and 0.722 on held-out sentences
            # (0.712, 0.709).  Higher weights start to cost short answers.
            "bestpathlw": rescoring_weight,
            "loglevel": "FATAL",
            **dict(decoder_options or {}),
        }
        # The "probe": same front end, a one-word grammar and a search that looks
        # at every 100th frame, so it computes batch cepstral means for ~1 ms per
        # second of audio (see PocketsphinxStream).
        probe_dict = os.path.join(self._tmpdir.name, "probe.dict")
        probe_grammar = os.path.join(self._tmpdir.name, "probe.gram")
        with open(probe_dict, "w", encoding="utf-8") as fh:
            fh.write("a AH\n")
        with open(probe_grammar, "w", encoding="utf-8") as fh:
            fh.write("#JSGF V1.0;\ngrammar probe;\npublic <utterance> = a;\n")
        # Priming (see _priming_audio) is for the front end's noise statistics only: a
        # one-word grammar hears it instead of the clinic LM (whose search was ~5% of
        # an utterance's CPU there, for a result nobody reads).
        prime_word = "a" if "a" in self.pronunciations else next(iter(self.pronunciations))
        self._priming_grammar = f"#JSGF V1.0;\ngrammar prime;\npublic <utterance> = {prime_word};\n"
        self._probe_config = {k: v for k, v in self._config.items() if k != "lm"}
        self._probe_config.update(dict=probe_dict, jsgf=probe_grammar, topn=1, ds=100)
        self._max_decoders = max(1, max_decoders)
        self._pool: queue.LifoQueue[_Decoders] = queue.LifoQueue()
        self._created = 0
        self._pool_lock = threading.Lock()
        self._pool.put(self._new_decoders())  # fail fast on a bad model/config

    # -- decoder pool -------------------------------------------------------------------
    def _new_decoders(self) -> _Decoders:
        import pocketsphinx

        with self._pool_lock:
            self._created += 1
        try:
            decoder = pocketsphinx.Decoder(**self._config)
            decoder.add_jsgf_string(_PRIMING_SEARCH, self._priming_grammar)
            decoder.add_lm_file(_NAMES_SEARCH, self._names_lm_path)
            return _Decoders(decoder, pocketsphinx.Decoder(**self._probe_config))
        except BaseException:
            with self._pool_lock:
                self._created -= 1
            raise

    def _acquire(self, *, force: bool) -> _Decoders | None:
        """A free decoder; a new one while under ``max_decoders`` (or if ``force``)."""
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._pool_lock:
            can_create = force or self._created < self._max_decoders
        return self._new_decoders() if can_create else None

    def _release(self, decoders: _Decoders) -> None:
        self._pool.put(decoders)

    # -- recognition --------------------------------------------------------------------
    def stream(
        self, language: str = "en", *, sample_rate: int = 8000, expects: str = ""
    ) -> PocketsphinxStream:
        """A session for one utterance, fed while it is spoken; see :class:`SpeechStream`.

        ``expects`` EXPECTS_NAME decodes with the name search (common Indian names,
        "my name is ...", yes/no), anything else with the clinic's model.
        """
        return PocketsphinxStream(
            self, language=language, sample_rate=sample_rate, names=expects == EXPECTS_NAME
        )

    def transcribe(
        self, pcm16: bytes, sample_rate: int, *, language: str = "en", expects: str = ""
    ) -> Transcript:
        session = self.stream(language, sample_rate=sample_rate, expects=expects)
        try:
            session.feed(pcm16)
            return session.finish()
        except BaseException:
            session.cancel()
            raise

    def _condition(self, pcm16: bytes, sample_rate: int) -> bytes:
        """Whole-utterance conditioning: resample to 16 kHz, trim, pad, add a noise floor.

        Why the noise: digitally silent stretches (TTS output, padding, codecs
        without comfort noise) give -inf log energies that wreck cepstral mean
        normalisation and the silence model; without it clean synthetic speech
        was only ~30% word-accurate.  Trimming plus a fixed pad (see
        ``_trim_silence``) keeps the speech/silence ratio constant.  Levels
        were tuned on jittered TTS renditions through the 8 kHz channel
        (30/30 key sentences and 90/90 short answers such as "yes" correct with
        std 100 = -50 dBFS and 0.25 s pads).  Seeded: a given input always
        decodes the same way.  Recognition uses the streaming equivalent in
        :class:`PocketsphinxStream`; this one-shot version is the reference.
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

    def close(self) -> None:
        self._tmpdir.cleanup()


_LEAD_S = 0.5  # audio that decides where speech starts (leading-silence trim)
_PAUSE_S = 0.1  # quiet audio after speech that triggers a decoding step (see _advance)
_DECODE_BLOCK = 640  # samples per process_raw call: 40 ms at 16 kHz, ~2 ms holding the GIL
_CMN_WINDOW_S = 6.0  # cepstral means over at most the last 6 s (bounds the probe's work)
_NOISE_SEED = 0x5EED
_PRIMING_SEARCH = "priming"
_NAMES_SEARCH = "names"


@lru_cache(maxsize=4)
def _priming_audio(noise_floor: float) -> bytes:
    """What a decoder hears before each utterance: one loud frame, then 0.15 s of floor noise.

    Why: PocketSphinx's noise suppression tracks the noise level across
    utterances and is reset only by ``start_stream()``.  Reset, it starts
    13 dB under the first frame and rises slowly, so the start of an utterance
    is suppressed too little: "yes" was heard as "pm" in ~20% of renditions.
    Carried over from the previous utterance it sits at the noise floor, which
    is what the recogniser was tuned with, but then results depend on what a
    decoder decoded before.  This fixed prelude brings the estimate down onto
    the floor from above, as the end of an utterance does: deterministic, and
    as accurate as the carried-over state on the eval set (~2 ms per utterance: it goes
    through a one-word grammar, not the clinic LM, which cost ~13 ms).
    """
    level = noise_floor if noise_floor > 0 else 100.0
    rng = np.random.default_rng(_NOISE_SEED + 1)
    x = np.concatenate([rng.normal(0.0, 10 * level, 410), rng.normal(0.0, level, 2400)])
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


@dataclass(eq=False)
class _Decoders:
    decoder: Any  # the recogniser (live CMN)
    probe: Any  # batch cepstral means only
    in_utterance: bool = False  # left mid-utterance by a cancelled session


class PocketsphinxStream:
    """One utterance recognised while it is spoken (:class:`SpeechStream`).

    Conditioning is that of :meth:`PocketsphinxSTT._condition`, done as audio
    arrives: stateful resampling to 16 kHz; trimming of silence relative to the
    loudest 10 ms (the leading edge decided on the first 0.5 s, the trailing
    edge by holding quiet audio back until louder audio follows or the
    utterance ends); a pad of ``pad_s`` at both ends; a seeded noise floor.

    Accuracy: the acoustic model wants cepstral mean normalisation over the
    whole utterance (batch CMN), which a live decoder cannot have; live CMN
    from PocketSphinx's built-in prior cost ~8 points of word accuracy on the
    8 kHz eval set, and a mean taken from the first second alone turned
    "ten am" into "eight am".  So the decoder runs ``stream_lookahead_s``
    behind the audio, and every ``stream_update_s`` its mean is set to the
    batch mean of all audio so far (the probe decoder computes it in ~1 ms per
    second of audio).  Decoding starts once ``stream_min_s`` is in (shorter
    utterances are decoded whole at ``finish()``); ``finish()`` decodes the
    remaining ~0.5-0.9 s with the mean of the whole utterance.  On the eval
    set this matched whole-utterance decoding (same word accuracy).

    Every step depends only on the audio, never on how it was split into
    ``feed()`` calls: a stream and :meth:`PocketsphinxSTT.transcribe` give the
    same transcript for the same audio.  A decoder is taken from the pool at
    the first decoding step (at ``finish()`` for short utterances), so a
    backchannel cancelled early never holds one.
    """

    def __init__(
        self, owner: PocketsphinxSTT, *, language: str, sample_rate: int, names: bool = False
    ) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        rate = owner.MODEL_RATE
        self._owner = owner
        self._search = _NAMES_SEARCH if names else None  # None: the clinic LM
        self.language = language
        self.sample_rate = sample_rate
        self._resampler = Resampler(sample_rate, rate) if sample_rate != rate else None
        self._carry = b""  # an odd trailing byte of fed PCM
        self._frame = rate // 100  # 10 ms: the trimming resolution
        self._lead_frames = int(_LEAD_S * 100)
        self._margin = int(owner.trim_margin_s * rate)
        self._update = max(self._frame, int(owner.stream_update_s * rate))
        self._lookahead = max(0, int(owner.stream_lookahead_s * rate))
        self._window = int(_CMN_WINDOW_S * rate)
        first = max(1, int(owner.stream_min_s * rate))
        self._min_point = first
        self._next_update = -(-first // self._update) * self._update
        self._pause_frames = max(1, int(_PAUSE_S * 100))
        self._pauses: deque[int] = deque()  # positions in _cond where a pause began
        self._quiet = 0  # frames since the last loud one
        # Received model-rate audio not yet released or dropped; _buf[0] is sample _buf_start.
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._received = 0
        self._examined = 0  # 10 ms frames whose loudness is known
        self._lead_rms: list[np.ndarray] = []
        self._start: int | None = None  # where the kept audio starts (None: undecided)
        self._peak = 0.0
        self._keep_end = 0  # kept audio ends here (end of the last loud frame + margin)
        self._released = 0  # audio up to here went into _cond
        self._cond = bytearray()  # what the decoder hears: pad + kept audio + noise (int16)
        self._rng = np.random.default_rng(_NOISE_SEED)
        self._decoded = 0  # samples of _cond given to the decoder
        self._decoders: _Decoders | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._finished = False
        self._busy_s = 0.0

    # -- SpeechStream ---------------------------------------------------------------------
    def feed(self, pcm16: bytes) -> None:
        started = time.perf_counter()
        with self._lock:
            if self._cancelled:
                return
            if self._finished:
                raise RuntimeError("feed() after finish()")
            try:
                self._push(self._to_model_rate(pcm16, flush=False))
                self._advance()
            finally:
                if self._cancelled:
                    self._give_back()
                self._busy_s += time.perf_counter() - started

    def finish(self) -> Transcript:
        started = time.perf_counter()
        with self._lock:
            if self._cancelled:
                raise RuntimeError("finish() after cancel()")
            if self._finished:
                raise RuntimeError("finish() called twice")
            self._finished = True
            try:
                self._push(self._to_model_rate(b"", flush=True), final=True)
                if self._decoders is None:
                    self._take(force=True)
                self._advance()
                self._release_audio(self._pad())  # the trailing pad (and the leading one)
                total = len(self._cond) // 2
                self._decode_to(total, mean_until=total)
                if self._cancelled:
                    raise RuntimeError("cancelled while finishing")
                decoders = self._decoders
                assert decoders is not None
                decoder = decoders.decoder
                decoder.end_utt()
                decoders.in_utterance = False
                hyp = decoder.hyp()
                words = tuple(
                    seg.word.split("(", 1)[0]
                    for seg in decoder.seg()
                    if not seg.word.startswith(("<", "[")) and seg.word != "<sil>"
                )
            finally:
                self._give_back()
                self._busy_s += time.perf_counter() - started
        text = " ".join(words) if words else (hyp.hypstr if hyp else "")
        return Transcript(
            text=text,
            language=self.language,
            confidence=self._owner.confidence if text else 0.0,
            words=tuple(text.split()),
            processing_ms=self._busy_s * 1000,
        )

    def cancel(self) -> None:
        self._cancelled = True
        if self._lock.acquire(blocking=False):  # else the running feed() gives the decoder back
            try:
                self._give_back()
            finally:
                self._lock.release()

    @property
    def decoded_s(self) -> float:
        """Seconds of (conditioned) audio already decoded: how far recognition has got."""
        return self._decoded / self._owner.MODEL_RATE

    # -- conditioning ---------------------------------------------------------------------
    def _to_model_rate(self, pcm16: bytes, *, flush: bool) -> np.ndarray:
        data = self._carry + bytes(pcm16) if self._carry else bytes(pcm16)
        if len(data) % 2:
            data, self._carry = data[:-1], data[-1:]
        else:
            self._carry = b""
        if self._resampler is not None:
            data = self._resampler.process(data) + (self._resampler.flush() if flush else b"")
        return np.frombuffer(data, dtype="<i2").astype(np.float32)

    def _push(self, x: np.ndarray, *, final: bool = False) -> None:
        if x.size:
            self._buf = np.concatenate([self._buf, x]) if self._buf.size else x
            self._received += x.size
        trim = self._owner.trim_db is not None
        if trim:
            self._examine()
        if self._start is None:
            if not trim:
                self._start, self._released = 0, 0
            elif final:
                self._decide_start(final=True)
            else:
                return
        end = self._received if not trim else min(self._keep_end, self._received)
        if end > self._released:
            self._release_audio(self._buf[self._released - self._buf_start : end - self._buf_start])
            self._released = end
        # Keep only what may still be released or examined.
        drop = min(self._released, self._examined * self._frame) - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop

    def _examine(self) -> None:
        """Loudness of each new complete 10 ms frame; extends the kept audio over loud ones."""
        frame = self._frame
        total = self._received // frame
        if total <= self._examined:
            return
        first = self._examined
        lo = first * frame - self._buf_start
        block = self._buf[lo : lo + (total - first) * frame].reshape(-1, frame)
        rms = np.sqrt(np.mean(block**2, axis=1) + 1e-9)
        self._examined = total
        if self._start is None:
            self._lead_rms.append(rms)
            if total >= self._lead_frames:
                self._decide_start(final=False)
            return
        self._extend(rms, first)

    def _decide_start(self, *, final: bool) -> None:
        """Leading edge: the first frame within ``trim_db`` of the loudest of the first 0.5 s."""
        rms = np.concatenate(self._lead_rms) if self._lead_rms else np.zeros(0, np.float32)
        self._lead_rms = []
        frame, margin, db = self._frame, self._margin, self._owner.trim_db
        if final and len(rms) < 3:  # too short to judge (as _trim_silence): keep it all
            self._start, self._released, self._keep_end = 0, 0, self._received
            return
        lead, rest = rms[: self._lead_frames], rms[self._lead_frames :]
        peak = lead.max()
        loud = 20 * np.log10(lead / peak) > -db
        first = int(np.argmax(loud))
        self._peak = float(peak)
        self._start = max(0, first * frame - margin)
        self._released = self._start
        self._keep_end = self._start
        self._follow(loud[first:], first)
        if len(rest):
            self._extend(rest, self._lead_frames)

    def _extend(self, rms: np.ndarray, first: int) -> None:
        """Trailing edge: keep up to the last frame within ``trim_db`` of the loudest so far."""
        peaks = np.maximum.accumulate(np.maximum(rms, np.float32(self._peak)))
        self._peak = float(peaks[-1])
        self._follow(20 * np.log10(rms / peaks) > -self._owner.trim_db, first)

    def _follow(self, loud: np.ndarray, first: int) -> None:
        """Extends the kept audio over loud frames; notes where quiet runs reach _PAUSE_S."""
        frame, margin, pad = self._frame, self._margin, len(self._pad())
        for i, is_loud in enumerate(loud.tolist(), first):
            if is_loud:
                self._quiet = 0
                self._keep_end = max(self._keep_end, (i + 1) * frame + margin)
            else:
                self._quiet += 1
                if self._quiet == self._pause_frames:
                    point = pad + self._keep_end - self._start
                    if point >= self._min_point:
                        self._pauses.append(point)

    def _pad(self) -> np.ndarray:
        return np.zeros(int(self._owner.pad_s * self._owner.MODEL_RATE), dtype=np.float32)

    def _release_audio(self, samples: np.ndarray) -> None:
        if not self._cond:
            self._add_conditioned(self._pad())  # the leading pad
        self._add_conditioned(samples)

    def _add_conditioned(self, x: np.ndarray) -> None:
        """Append to what the decoder hears, with the noise floor added."""
        if self._owner.noise_floor > 0 and len(x):
            x = x + self._rng.normal(0.0, self._owner.noise_floor, len(x)).astype(np.float32)
        self._cond += np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()

    # -- decoding -------------------------------------------------------------------------
    def _take(self, *, force: bool) -> bool:
        decoders = self._owner._acquire(force=force)
        if decoders is None:
            return False
        decoder = decoders.decoder
        if decoders.in_utterance:  # a cancelled session left it mid-utterance
            decoder.end_utt()
            decoders.in_utterance = False
        decoder.activate_search(_PRIMING_SEARCH)
        decoder.start_stream()  # noise statistics: reset, then primed
        decoder.start_utt()
        decoder.process_raw(_priming_audio(self._owner.noise_floor))
        decoder.end_utt()
        decoder.activate_search(self._search)  # the clinic LM, or the name search
        self._decoders = decoders
        return True

    def _give_back(self) -> None:
        decoders, self._decoders = self._decoders, None
        if decoders is not None:
            self._owner._release(decoders)

    def _advance(self) -> None:
        """Run every decoding step the audio so far allows, in order of position.

        Steps: every ``stream_update_s`` (decoding up to ``stream_lookahead_s``
        short of it), and where the caller pauses (quiet for ``_PAUSE_S``:
        decoding everything so far, no lookahead needed).  The pause step is
        what normally ends an utterance: it runs during the end-of-speech wait,
        leaving ``finish()`` only the trailing pad.
        """
        available = len(self._cond) // 2
        while not self._cancelled:
            pause = self._pauses[0] if self._pauses else None
            if pause is not None and pause <= self._next_update:
                point, target = pause, pause
            else:
                point, target = self._next_update, self._next_update - self._lookahead
            if point > available:
                return
            if target > self._decoded:
                if self._decoders is None and not self._take(force=False):
                    return  # pool exhausted: buffer; the steps run later, in the same order
                self._decode_to(target, mean_until=point)
            if point == pause:
                self._pauses.popleft()
            else:
                self._next_update += self._update

    def _decode_to(self, target: int, *, mean_until: int) -> None:
        decoders = self._decoders
        assert decoders is not None
        decoder = decoders.decoder
        decoder.set_cmn(self._batch_mean(decoders.probe, mean_until))
        if not decoders.in_utterance:
            decoder.start_utt()
            decoders.in_utterance = True
        while self._decoded < target and not self._cancelled:
            end = min(target, self._decoded + _DECODE_BLOCK)
            decoder.process_raw(bytes(self._cond[self._decoded * 2 : end * 2]))
            self._decoded = end

    def _batch_mean(self, probe: Any, until: int) -> str:
        """Batch cepstral mean of the conditioned audio up to ``until`` (last 6 s at most)."""
        audio = bytes(self._cond[max(0, until - self._window) * 2 : until * 2])
        probe.start_stream()  # the same front-end state as the decoder's
        probe.start_utt()
        probe.process_raw(_priming_audio(self._owner.noise_floor), no_search=True, full_utt=True)
        probe.end_utt()
        probe.start_utt()
        probe.process_raw(audio, no_search=True, full_utt=True)
        mean = probe.get_cmn()
        probe.end_utt()
        return mean


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
