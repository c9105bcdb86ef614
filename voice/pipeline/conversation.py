"""One phone conversation in real time: VAD -> speech-to-text -> agent -> text-to-speech.

ORM-free like the rest of the pipeline: the agent is injected (the consumer wraps
the Django agent for it), and everything sent out goes through two callbacks, one
for Twilio's Media Streams protocol and one for our custom events (§9.2).

Turn-taking rules:
- Inbound audio always runs through the end-of-speech detector, also while the
  agent speaks, so the caller can interrupt (barge-in). Only speech that lasts
  (``SpeechSustained``) interrupts: "haan", "ok", "hmm" over the agent do not.
- An utterance that ends while the agent is silent is always an answer, however
  short ("haan" to "shall I book it?").
- Recognition runs while the caller speaks: each utterance gets a streaming
  session at ``SpeechStarted`` (providers with ``stream()``, e.g. PocketSphinx,
  in a worker thread; with ``open_stream()``, e.g. Deepgram, on the loop), fed in
  ~200 ms batches, so at the end of speech only the last fraction of a second
  remains to decode.  Providers with neither get the whole utterance afterwards.
- Replies go out as 20 ms frames paced in real time, followed by a mark; the mark
  coming back means the caller heard the reply, a ``clear`` means they did not
  hear all of it. Both are recorded per turn.  Providers with ``astream()`` (the
  cloud ones) are read on the event loop; blocking ones (eSpeak) in a thread.
- Silence: after ``idle_timeout_s`` the agent asks if the caller is still there;
  the agent decides when to give up (its reply then ends the call).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import itertools
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from .codecs import b64decode_frame, b64encode_frame, mulaw_to_pcm16, pcm16_to_mulaw
from .pacing import FramePacer, aiter_from_thread
from .stt import SpeechToText, Transcript
from .tts import TextToSpeech, telephony_frames, telephony_frames_async
from .vad import EndOfSpeechDetector, SegmenterConfig, SpeechEnded, SpeechStarted, SpeechSustained

logger = logging.getLogger(__name__)

MULAW_FRAME_BYTES = 160
MAX_INBOUND_PAYLOAD = 8000  # one second of 8 kHz mu-law; Twilio sends 20 ms


class SessionState(StrEnum):
    IDLE = "idle"
    LISTENING = "listening"
    PROCESSING = "processing"
    THINKING = "thinking"
    SPEAKING = "speaking"


@dataclass
class AgentTurn:
    text: str
    language: str
    end_call: bool = False
    transfer: bool = False
    expects: str = ""  # what the reply asks for (AgentReply.expects): the recogniser's hint


class ConversationAgent(Protocol):
    """What the conversation needs of the agent (async; the consumer adapts the real one)."""

    async def greet(self) -> AgentTurn: ...

    async def respond(self, text: str, *, language: str, confidence: float) -> AgentTurn: ...

    async def respond_dtmf(self, digits: str) -> AgentTurn: ...

    async def still_there(self, attempt: int) -> AgentTurn: ...


@dataclass
class ConversationConfig:
    idle_timeout_s: float = 8.0
    stt_timeout_s: float = 6.0
    agent_timeout_s: float = 10.0
    mark_wait_s: float = 3.0  # how long to wait for the goodbye to be heard before hanging up
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    streaming_stt: bool = True  # recognise while the caller speaks, when the provider can
    stream_batch_ms: int = 200  # caller audio handed to a streaming recogniser at a time
    # Audio kept queued at Twilio ahead of real time (frames of 20 ms).  It absorbs the
    # jitter between us and Twilio's player (a busy event loop, the network): a frame
    # that comes up to this much late is still played on time.  It costs no latency (the
    # first frames go at once) and no barge-in time (``clear`` drops what is queued);
    # two frames (40 ms) left stalls of 45-50 ms audible on a busy core.
    playout_lead_frames: int = 5
    # Outbound frames sent per pacer wake-up (see FramePacer.frames_per_wake): 2 halves
    # the timers and socket writes of the audio going out, within the lead above.
    frames_per_wake: int = 2


@dataclass
class TurnLatency:
    """Milliseconds from the end of the caller's speech (the end-of-speech wait included)."""

    transcript_ms: float
    reply_ms: float
    first_audio_ms: float | None = None
    stt_ms: float = 0.0
    agent_ms: float = 0.0

    @property
    def total_ms(self) -> float | None:
        return self.first_audio_ms


@dataclass
class ConversationResult:
    turns: list[dict]
    latencies: list[TurnLatency]
    language: str
    end_reason: str
    barge_ins: int
    late_frames: int
    frames_sent: int


# --- recognition during the utterance -----------------------------------------------------


class _RecognitionWorker:
    """One thread for the streaming recognisers' blocking work, end-of-utterance first.

    PocketSphinx holds the GIL while it decodes, so more threads would not
    decode more at once; a single thread with a priority queue lets the
    ``finish()`` a caller is waiting for jump ahead of other calls' mid-speech
    feeding instead of queueing behind it in the default executor.
    """

    FINISH, FEED = 0, 1

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, priority: int, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="stt-stream", daemon=True)
                self._thread.start()
        self._queue.put((priority, next(self._order), future, fn, args))
        return asyncio.wrap_future(future)

    def _run(self) -> None:
        while True:
            _, _, future, fn, args = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)


_worker = _RecognitionWorker()


class _StreamFailed(Exception):
    """The streaming session cannot give a transcript: transcribe the utterance instead."""


class _ThreadedRecognition:
    """A blocking :class:`~voice.pipeline.stt.SpeechStream` fed from the event loop.

    At most one job per session is in flight; audio arriving meanwhile waits and
    goes with the next job, so a slow moment never piles up work.
    """

    def __init__(self, session: Any, batch_bytes: int) -> None:
        self._session = session
        self._batch_bytes = batch_bytes
        self._offered: list[bytes] = []  # everything offered, to check the final audio
        self._offered_bytes = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._job: asyncio.Future | None = None
        self._failed: BaseException | None = None
        self._cancelled = False
        self._finishing = False

    def offer(self, audio: bytes) -> None:
        if self._cancelled or self._finishing or self._failed is not None:
            return
        self._offered.append(audio)
        self._offered_bytes += len(audio)
        self._pending.append(audio)
        self._pending_bytes += len(audio)
        if self._job is None and self._pending_bytes >= self._batch_bytes:
            self._submit_feed()

    def _take_pending(self, limit: int | None = None) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        if limit is not None and len(data) > limit:
            limit -= limit % 2  # whole samples
            self._pending.append(data[limit:])
            data = data[:limit]
        self._pending_bytes = sum(map(len, self._pending))
        return data

    def _submit_feed(self) -> None:
        # At most one batch per job, even when the worker has fallen behind and more is
        # waiting: another call's finish() then waits for one short job, not for a
        # second or more of this call's audio (it goes in the next jobs, in order).
        batch = self._take_pending(self._batch_bytes)
        self._job = _worker.submit(_worker.FEED, self._session.feed, batch)
        self._job.add_done_callback(self._fed)

    def _fed(self, job: asyncio.Future) -> None:
        self._job = None
        if job.cancelled():
            return
        if job.exception() is not None:
            self._failed = job.exception()
            logger.warning("Streaming recognition failed: %r", self._failed)
            return
        if self._finishing or self._cancelled:
            return
        if self._pending_bytes >= self._batch_bytes:
            self._submit_feed()

    async def finish(self, pcm16: bytes, sample_rate: int) -> Transcript:
        self._finishing = True
        while self._job is not None:  # feeding must end before finishing starts
            job = self._job
            with contextlib.suppress(Exception):
                await asyncio.shield(job)
            if self._job is job:
                self._job = None
        if self._failed is not None or self._cancelled:
            raise _StreamFailed(repr(self._failed))
        if not pcm16.startswith(b"".join(self._offered)):
            raise _StreamFailed("the utterance audio does not continue what was streamed")
        tail = self._take_pending() + pcm16[self._offered_bytes :]
        session = self._session

        def finish() -> Transcript:
            if tail:
                session.feed(tail)
            return session.finish()

        try:
            return await _worker.submit(_worker.FINISH, finish)
        except asyncio.CancelledError:
            self.cancel()
            raise
        except Exception as exc:
            raise _StreamFailed(repr(exc)) from exc

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            self._pending.clear()
            self._session.cancel()


class _AsyncRecognition:
    """A provider's asyncio streaming session (``open_stream()``, e.g. Deepgram).

    It takes mu-law, what the phone sent (half the bytes of PCM, lossless here);
    ``finish`` gets the whole utterance as well when the session accepts it
    (the cloud wrapper falls back to offline recognition with it).
    """

    def __init__(self, stream: Any, batch_bytes: int) -> None:
        self._stream = stream
        self._batch_bytes = batch_bytes
        self._offered: list[bytes] = []
        self._offered_bytes = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._cancelled = False
        self._aborting: asyncio.Future | None = None
        try:
            self._finish_takes_audio = bool(inspect.signature(stream.finish).parameters)
        except (TypeError, ValueError):
            self._finish_takes_audio = False

    def offer(self, audio: bytes) -> None:
        if self._cancelled:
            return
        self._offered.append(audio)
        self._offered_bytes += len(audio)
        self._pending.append(audio)
        self._pending_bytes += len(audio)
        if self._pending_bytes >= self._batch_bytes:
            self._send(b"".join(self._pending))

    def _send(self, pcm16: bytes) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        if pcm16:
            self._stream.feed(pcm16_to_mulaw(pcm16))

    async def finish(self, pcm16: bytes, sample_rate: int) -> Transcript:
        if self._cancelled:
            raise _StreamFailed("cancelled")
        if not pcm16.startswith(b"".join(self._offered)):
            self.cancel()
            raise _StreamFailed("the utterance audio does not continue what was streamed")
        self._send(b"".join(self._pending) + pcm16[self._offered_bytes :])
        try:
            if self._finish_takes_audio:
                return await self._stream.finish(pcm16, sample_rate)
            return await self._stream.finish()
        except asyncio.CancelledError:
            self.cancel()
            raise
        except Exception as exc:
            raise _StreamFailed(repr(exc)) from exc

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            self._aborting = asyncio.ensure_future(self._stream.abort())
            self._aborting.add_done_callback(_log_failure)


_Recognition = _ThreadedRecognition | _AsyncRecognition


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Conversation:
    def __init__(
        self,
        *,
        stt: SpeechToText,
        tts: TextToSpeech,
        vad,
        agent: ConversationAgent,
        send_twilio: Callable[[dict], Awaitable[None]],
        publish: Callable[[dict], Awaitable[None]],
        on_hangup: Callable[[], Awaitable[None]],
        on_transfer: Callable[[AgentTurn], Awaitable[None]],
        language: str = "en",
        config: ConversationConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        send_media: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.stt, self.tts, self.agent = stt, tts, agent
        self.config = config or ConversationConfig()
        self.segmenter = EndOfSpeechDetector(vad, self.config.segmenter, sample_rate=8000)
        self._send_twilio, self._publish = send_twilio, publish
        # Outbound audio, 50 messages a second: ``send_media(stream_sid, base64 payload)``
        # when the transport serialises them itself (the consumer does, without building
        # and encoding a dict per frame); else a ``media`` dict through send_twilio.
        self._send_media = send_media
        self._on_hangup, self._on_transfer = on_hangup, on_transfer
        self.language = language
        self.expects = ""  # what the agent's last question asks for (the recogniser's hint)
        self._clock = clock
        self.stream_sid = ""
        self.state = SessionState.IDLE
        self.turns: list[dict] = []
        self.latencies: list[TurnLatency] = []
        self.barge_ins = 0
        self.late_frames = 0
        self.frames_sent = 0
        self.end_reason = ""
        self._queue: asyncio.Queue[tuple[str, object, float]] = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        self._idle_timer: asyncio.Task | None = None
        self._idle_attempts = 0
        self._pacer: FramePacer | None = None
        self._speaking_turn: dict | None = None
        self._marks: dict[str, dict] = {}
        self._mark_events: dict[str, asyncio.Event] = {}
        self._reply_count = 0
        self._closed = False
        self._ending: asyncio.Future | None = None
        self._live: _Recognition | None = None  # recognising the utterance being spoken
        self._live_frames = 0  # segmenter frames of that utterance already offered to it
        self._stream_batch_bytes = max(320, self.config.stream_batch_ms * 16)  # 8 kHz PCM16

    # --- inbound (called by the consumer) ------------------------------------------------

    async def start(self, stream_sid: str) -> None:
        self.stream_sid = stream_sid
        self._worker = asyncio.create_task(self._run_turns(), name=f"turns-{stream_sid}")
        await self._set_state(SessionState.IDLE)
        self._queue.put_nowait(("greet", None, self._clock()))

    async def feed_media(self, payload: str) -> None:
        """One inbound ``media`` payload (base64 mu-law). Malformed audio is dropped."""
        if self._closed:
            return
        try:
            audio = b64decode_frame(payload)
        except (ValueError, TypeError):
            return
        if not audio or len(audio) > MAX_INBOUND_PAYLOAD:
            return
        for event in self.segmenter.process(mulaw_to_pcm16(audio)):
            await self._on_speech_event(event)
        if self._live is not None:
            frames = self.segmenter.utterance_frames(self._live_frames)
            if frames:
                self._live_frames += len(frames)
                self._live.offer(frames[0] if len(frames) == 1 else b"".join(frames))

    async def feed_dtmf(self, digit: str) -> None:
        if self._closed or not digit:
            return
        self._cancel_idle_timer()
        if self.state == SessionState.SPEAKING:
            await self._barge_in()
        self._queue.put_nowait(("dtmf", digit[:8], self._clock()))

    async def on_mark(self, name: str) -> None:
        turn = self._marks.pop(name, None)
        if turn is not None and not turn.get("interrupted"):
            turn["heard"] = True
        event = self._mark_events.pop(name, None)
        if event is not None:
            event.set()

    async def close(self, reason: str = "stream stopped") -> ConversationResult:
        """Stops everything at once; safe to call twice."""
        if not self._closed:
            self._closed = True
            self.end_reason = self.end_reason or reason
            if self._pacer is not None:
                self._pacer.cancel()
            self._cancel_idle_timer()
            self._drop_live()
            close_vad = getattr(self.segmenter.vad, "close", None)
            if callable(close_vad):
                close_vad()  # e.g. Silero's model goes back to its pool
            while not self._queue.empty():  # utterances never handled: free their recognisers
                _, item, _ = self._queue.get_nowait()
                if isinstance(item, tuple) and item[1] is not None:
                    item[1].cancel()
            if self._worker is not None and self._worker is not asyncio.current_task():
                self._worker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._worker
        return ConversationResult(
            turns=self.turns,
            latencies=self.latencies,
            language=self.language,
            end_reason=self.end_reason,
            barge_ins=self.barge_ins,
            late_frames=self.late_frames,
            frames_sent=self.frames_sent,
        )

    # --- speech events ---------------------------------------------------------------------

    async def _on_speech_event(self, event) -> None:
        if isinstance(event, SpeechStarted):
            self._cancel_idle_timer()
            self._start_live()
            if self.state in (SessionState.IDLE, SessionState.LISTENING):
                await self._set_state(SessionState.LISTENING)
        elif isinstance(event, SpeechSustained):
            if self.state == SessionState.SPEAKING:
                await self._barge_in()
        elif isinstance(event, SpeechEnded):
            live, self._live = self._live, None
            if self.state == SessionState.SPEAKING and event.is_backchannel(
                self.config.segmenter.sustained_speech_ms
            ):
                if live is not None:
                    live.cancel()
                return  # "haan" / "ok" over the agent: keep talking
            # The caller stopped speaking (end_ms) before the silence wait decided it.
            waited_s = (event.at_ms - event.end_ms) / 1000
            self._queue.put_nowait(("speech", (event, live), self._clock() - waited_s))

    def _start_live(self) -> None:
        """A streaming recogniser for the utterance that just started (if the provider has one)."""
        self._drop_live()
        self._live_frames = 0
        if not self.config.streaming_stt:
            return
        try:
            if callable(getattr(self.stt, "stream", None)):
                session = self.stt.stream(
                    self.language, sample_rate=self.segmenter.sample_rate, expects=self.expects
                )
                self._live = _ThreadedRecognition(session, self._stream_batch_bytes)
            elif callable(getattr(self.stt, "open_stream", None)):
                stream = self.stt.open_stream(
                    language=self.language,
                    encoding="mulaw",
                    sample_rate=self.segmenter.sample_rate,
                    expects=self.expects,
                )
                self._live = _AsyncRecognition(stream, self._stream_batch_bytes // 2)
        except Exception:  # no streaming this time: the utterance is transcribed at the end
            logger.exception("Could not start streaming recognition")
            self._live = None

    def _drop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.cancel()

    async def _barge_in(self) -> None:
        if self._pacer is not None and not self._pacer.cancelled:
            self._pacer.cancel()
            self.barge_ins += 1
            if self._speaking_turn is not None:
                self._speaking_turn["interrupted"] = True
            await self._send_twilio({"event": "clear", "streamSid": self.stream_sid})
            await self._set_state(SessionState.LISTENING)

    # --- the turn loop ------------------------------------------------------------------------

    async def _run_turns(self) -> None:
        while True:
            kind, item, speech_end = await self._queue.get()
            try:
                if kind == "greet":
                    reply = await self._ask_agent(self.agent.greet())
                    await self._speak(reply, latency=None)
                elif kind == "idle":
                    reply = await self._ask_agent(self.agent.still_there(item))
                    await self._speak(reply, latency=None)
                elif kind == "dtmf":
                    self._add_turn("patient", f"[keypad {item}]", self.language, 1.0)
                    await self._set_state(SessionState.THINKING)
                    started = self._clock()
                    reply = await self._ask_agent(self.agent.respond_dtmf(item))
                    latency = TurnLatency(
                        0.0,
                        (self._clock() - speech_end) * 1000,
                        agent_ms=(self._clock() - started) * 1000,
                    )
                    await self._speak(reply, latency=latency, speech_end=speech_end)
                else:
                    event, live = item
                    await self._handle_utterance(event, live, speech_end)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad turn must not end the call
                logger.exception("Conversation turn failed")
                await self._set_state(SessionState.LISTENING)
            if self._queue.empty() and not self._closed and self.end_reason == "":
                self._start_idle_timer()

    async def _handle_utterance(
        self, event: SpeechEnded, live: _Recognition | None, speech_end: float
    ) -> None:
        await self._set_state(SessionState.PROCESSING)
        started = self._clock()
        try:
            transcript = await asyncio.wait_for(
                self._recognise(event, live), timeout=self.config.stt_timeout_s
            )
        except BaseException:
            if live is not None:
                live.cancel()
            raise
        stt_done = self._clock()
        if transcript.is_empty:
            await self._set_state(SessionState.LISTENING)
            return
        self._add_turn("patient", transcript.text, transcript.language, transcript.confidence)
        await self._set_state(SessionState.THINKING)
        reply = await self._ask_agent(
            self.agent.respond(
                transcript.text, language=transcript.language, confidence=transcript.confidence
            )
        )
        replied = self._clock()
        latency = TurnLatency(
            transcript_ms=(stt_done - speech_end) * 1000,
            reply_ms=(replied - speech_end) * 1000,
            stt_ms=(stt_done - started) * 1000,
            agent_ms=(replied - stt_done) * 1000,
        )
        await self._speak(reply, latency=latency, speech_end=speech_end)

    async def _recognise(self, event: SpeechEnded, live: _Recognition | None) -> Transcript:
        if live is not None:
            try:
                return await live.finish(event.pcm16, event.sample_rate)
            except _StreamFailed as exc:
                logger.warning("Streaming recognition failed, transcribing instead: %s", exc)
                live.cancel()
        return await asyncio.to_thread(
            self.stt.transcribe,
            event.pcm16,
            event.sample_rate,
            language=self.language,
            expects=self.expects,
        )

    async def _ask_agent(self, call: Awaitable[AgentTurn]) -> AgentTurn:
        return await asyncio.wait_for(call, timeout=self.config.agent_timeout_s)

    async def _speak(
        self, reply: AgentTurn, *, latency: TurnLatency | None, speech_end: float | None = None
    ) -> None:
        self.language = reply.language or self.language
        self.expects = reply.expects
        turn = self._add_turn("agent", reply.text, reply.language, None)
        await self._set_state(SessionState.SPEAKING)
        self._speaking_turn = turn
        first_frame_at: list[float] = []

        send_media, stream_sid = self._send_media, self.stream_sid

        async def send_frame(frame: bytes) -> None:
            if not first_frame_at:
                first_frame_at.append(self._clock())
            if send_media is not None:
                await send_media(stream_sid, b64encode_frame(frame))
                return
            await self._send_twilio(
                {
                    "event": "media",
                    "streamSid": stream_sid,
                    "media": {"payload": b64encode_frame(frame)},
                }
            )

        self._pacer = pacer = FramePacer(
            send_frame, prebuffer_frames=self.config.playout_lead_frames
        )
        if callable(getattr(self.tts, "astream", None)):  # a cloud provider: on the loop
            frames = telephony_frames_async(self.tts, reply.text, language=reply.language)
        else:  # blocking synthesis (eSpeak): a thread of its own
            frames = aiter_from_thread(
                telephony_frames(self.tts, reply.text, language=reply.language)
            )
        stats = await pacer.play(frames)
        self._pacer = None
        self._speaking_turn = None
        self.frames_sent += stats.frames_sent
        self.late_frames += stats.late_frames
        turn["played_ms"] = stats.frames_sent * 20
        if latency is not None:
            if first_frame_at and speech_end is not None:
                latency.first_audio_ms = (first_frame_at[0] - speech_end) * 1000
            turn["latency_ms"] = {
                "transcript": round(latency.transcript_ms),
                "reply": round(latency.reply_ms),
                "first_audio": round(latency.first_audio_ms) if latency.first_audio_ms else None,
            }
            self.latencies.append(latency)
        if stats.cancelled:
            return  # barged in: the caller is talking, state is already "listening"
        self._reply_count += 1
        mark = f"reply-{self._reply_count}"
        self._marks[mark] = turn
        heard = self._mark_events[mark] = asyncio.Event()
        await self._send_twilio(
            {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": mark}}
        )
        await self._set_state(SessionState.LISTENING)
        if reply.end_call or reply.transfer:
            self.end_reason = "transferred" if reply.transfer else "agent ended the call"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), timeout=self.config.mark_wait_s)
            # Its own task: ending the call closes this conversation, turn loop included.
            ending = self._on_transfer(reply) if reply.transfer else self._on_hangup()
            self._ending = asyncio.ensure_future(ending)
            self._ending.add_done_callback(_log_failure)

    # --- idle ------------------------------------------------------------------------------------

    def _start_idle_timer(self) -> None:
        self._cancel_idle_timer()
        self._idle_timer = asyncio.create_task(self._idle_wait())

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None and self._idle_timer is not asyncio.current_task():
            self._idle_timer.cancel()
        self._idle_timer = None

    async def _idle_wait(self) -> None:
        await asyncio.sleep(self.config.idle_timeout_s)
        if self._closed or self.segmenter.in_speech or not self._queue.empty():
            return
        self._idle_attempts += 1
        self._queue.put_nowait(("idle", self._idle_attempts, self._clock()))

    # --- events ---------------------------------------------------------------------------------

    def _add_turn(self, speaker: str, text: str, language: str, confidence: float | None) -> dict:
        if speaker == "patient":
            self._idle_attempts = 0
        turn = {"speaker": speaker, "text": text, "language": language, "time": _utc_now()}
        if confidence is not None:
            turn["confidence"] = round(confidence, 3)
        self.turns.append(turn)
        event = {
            "event": "transcript",
            "direction": "inbound" if speaker == "patient" else "outbound",
            "text": text,
            "language": language,
            "confidence": round(confidence, 3) if confidence is not None else 1.0,
            "timestamp": turn["time"],
        }
        self._fire(event)
        return turn

    async def _set_state(self, state: SessionState) -> None:
        if state != self.state:
            self.state = state
            self._fire({"event": "session_state", "state": state.value, "timestamp": _utc_now()})

    def _fire(self, event: dict) -> None:
        """Custom events must never hold up audio: published in the background."""
        task = asyncio.ensure_future(self._publish(event))
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("Publishing a conversation event failed: %s", task.exception())
