"""A simulated Twilio caller: speaks synthesized sentences into a media stream.

It behaves like Twilio on a real call: after ``start`` it sends a 20 ms frame of
caller audio every 20 ms, paced in real time, speech when the caller talks and
silence otherwise (so end-of-speech detection sees real time pass); it echoes
every ``mark`` back once the audio before it has arrived, and drops queued audio
on ``clear``. Used by ``manage.py simulate_call``, the end-to-end tests and
``bench/voice.py``, over an in-process communicator or a real WebSocket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from voice.pipeline.codecs import pcm_to_telephony_frames

SILENCE_FRAME = b"\xff" * 160
# In the queued speech: the caller's speech ends here (see speak()).
END_OF_SPEECH = object()


def speech_end_index(frames: list[bytes], gate_db: float | None = None) -> int:
    """Where an utterance's speech ends: just after its last frame within ``gate_db`` of its
    loudest (the end-of-speech detector's own rule, ``SegmenterConfig.end_gate_db``).

    A synthesized clip ends with 20-60 ms of fading, near-silent audio; the server starts
    its end-of-speech wait at the last loud frame, so the caller's clock for "how long
    until the agent answered" starts there too, not at the end of the clip.
    """
    from voice.pipeline.codecs import mulaw_to_array
    from voice.pipeline.vad import SegmenterConfig

    if gate_db is None:
        gate_db = SegmenterConfig().end_gate_db
    if not frames:
        return 0
    if gate_db is None:
        return len(frames)
    powers = []
    for frame in frames:
        x = mulaw_to_array(frame).astype("float64")
        powers.append(float((x * x).mean()) if x.size else 0.0)
    threshold = max(powers) / 10 ** (gate_db / 10)
    return max(i for i, p in enumerate(powers) if p >= threshold) + 1


@dataclass
class AgentTurnHeard:
    text: str = ""
    frames: int = 0
    first_frame_at: float | None = None
    finished_at: float | None = None


@dataclass
class CallTranscript:
    events: list[dict] = field(default_factory=list)
    agent_turns: list[AgentTurnHeard] = field(default_factory=list)
    caller_lines: list[str] = field(default_factory=list)
    clears: int = 0
    closed: bool = False
    # Seconds from the end of each caller utterance to the agent's first frame.
    turn_latencies: list[float] = field(default_factory=list)
    late_frames: int = 0  # gaps of more than 60 ms between outbound frames mid-reply
    # Each such gap: (reply index, frame index in the reply, gap in ms, time.monotonic()).
    gaps: list[tuple[int, int, float, float]] = field(default_factory=list)
    # What the caller hears (see Playout): silences inside a reply because the audio
    # queued at Twilio ran out before the next frame came.  Same tuple as ``gaps``.
    underruns: list[tuple[int, int, float, float]] = field(default_factory=list)


class Playout:
    """Twilio's side of a reply: it queues the frames it is sent and plays them back to back.

    The caller hears a gap only when the queue runs dry before the next frame arrives: a
    frame that comes ``lead`` ms behind schedule is still on time if the sender was that
    far ahead (the pacer keeps a couple of frames of lead), while a frame that comes after
    the queued audio has finished playing leaves a silence of the difference.  Starts
    when a reply's first frame arrives; ``clear`` and the reply's end reset it.
    """

    def __init__(self, frame_s: float = 0.02, tolerance_s: float = 0.002) -> None:
        self.frame_s = frame_s
        self.tolerance_s = tolerance_s  # timer noise, not a gap anyone hears
        self._runs_out: float | None = None

    def reset(self) -> None:
        self._runs_out = None

    def frame(self, now: float) -> float:
        """One frame arrived at ``now``; returns the silence heard before it (s), or 0."""
        gap = 0.0
        if self._runs_out is None or now > self._runs_out:
            if self._runs_out is not None and now - self._runs_out > self.tolerance_s:
                gap = now - self._runs_out
            self._runs_out = now
        self._runs_out += self.frame_s
        return gap


class SimulatedCaller:
    def __init__(
        self,
        *,
        send: Callable[[str], Awaitable[None]],
        receive: Callable[[], Awaitable[str | None]],
        call_sid: str,
        token: str,
        caller_phone: str,
        tts=None,
        stream_sid: str = "MZsimulated000000000000000000000",
    ) -> None:
        self._send, self._receive = send, receive
        self.call_sid, self.token, self.caller_phone = call_sid, token, caller_phone
        self.stream_sid = stream_sid
        self.tts = tts
        self.log = CallTranscript()
        self._speech: deque[bytes] = deque()
        self._agent_done = asyncio.Event()
        self._utterance_end: float | None = None
        self._last_frame_at: float | None = None
        self._current: AgentTurnHeard | None = None
        self._playout = Playout()
        self._tasks: list[asyncio.Task] = []

    # --- the stream ------------------------------------------------------------------------

    async def start(self) -> None:
        await self._send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send_json(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": self.stream_sid,
                "start": {
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "accountSid": "ACsimulated",
                    "tracks": ["inbound"],
                    "customParameters": {"patient_phone": self.caller_phone, "token": self.token},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        self._tasks = [
            asyncio.create_task(self._microphone()),
            asyncio.create_task(self._listen()),
        ]

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._send_json({"event": "stop", "streamSid": self.stream_sid})
        await self.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _send_json(self, payload: dict) -> None:
        await self._send(json.dumps(payload))

    async def _microphone(self) -> None:
        """20 ms of audio every 20 ms, on a schedule that does not drift."""
        start = last_sent_at = time.monotonic()
        sent = 0
        chunk = 0
        while True:
            frame = self._speech.popleft() if self._speech else SILENCE_FRAME
            # A frame goes out when its 20 ms have been "captured", as Twilio sends them:
            # the audio of a frame ended when it was sent.
            if frame is END_OF_SPEECH:  # the previous frame ended the speech (see speak())
                self._utterance_end = last_sent_at
                frame = self._speech.popleft() if self._speech else SILENCE_FRAME
            sent += 1
            chunk += 1
            last_sent_at = time.monotonic()
            await self._send_json(
                {
                    "event": "media",
                    "sequenceNumber": str(sent + 1),
                    "streamSid": self.stream_sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(chunk),
                        "timestamp": str(chunk * 20),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
            )
            delay = start + sent * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _listen(self) -> None:
        while True:
            raw = await self._receive()
            if raw is None:
                self.log.closed = True
                self._agent_done.set()
                return
            message = json.loads(raw)
            event = message.get("event")
            now = time.monotonic()
            if event == "media":
                if self._current is None or self._current.finished_at is not None:
                    self._current = AgentTurnHeard()
                    self.log.agent_turns.append(self._current)
                reply = len(self.log.agent_turns) - 1
                if self._current.first_frame_at is None:
                    self._current.first_frame_at = now
                    self._playout.reset()
                    if self._utterance_end is not None:
                        self.log.turn_latencies.append(now - self._utterance_end)
                        self._utterance_end = None
                elif self._last_frame_at is not None and now - self._last_frame_at > 0.06:
                    self.log.late_frames += 1
                    self.log.gaps.append(
                        (reply, self._current.frames, (now - self._last_frame_at) * 1000, now)
                    )
                silence = self._playout.frame(now)
                if silence:
                    self.log.underruns.append((reply, self._current.frames, silence * 1000, now))
                self._current.frames += 1
                self._last_frame_at = now
            elif event == "mark":
                if self._current is not None:
                    self._current.finished_at = now
                self._last_frame_at = None
                await self._send_json(
                    {"event": "mark", "streamSid": self.stream_sid, "mark": message["mark"]}
                )
                self._agent_done.set()
            elif event == "clear":
                self.log.clears += 1
                self._playout.reset()
                if self._current is not None:
                    self._current.finished_at = now
                self._last_frame_at = None
            elif event in ("transcript", "session_state"):
                self.log.events.append(message)
                if event == "transcript" and message.get("direction") == "outbound":
                    if self._current is None or self._current.finished_at is not None:
                        self._current = AgentTurnHeard()
                        self.log.agent_turns.append(self._current)
                    self._current.text = message["text"]

    # --- what the caller does -------------------------------------------------------------------

    def say(self, text: str, *, language: str = "en") -> float:
        """Queues the sentence as caller speech; returns its duration in seconds."""
        audio = self.tts.synthesize(text, language=language)
        frames = pcm_to_telephony_frames(audio.pcm16, audio.sample_rate)
        self.speak(frames)
        self.log.caller_lines.append(text)
        return len(frames) * 0.02

    def speak(self, frames: list[bytes]) -> None:
        """Queues mu-law frames as caller speech.  The turn latency is measured from the
        end of its last loud frame (:func:`speech_end_index`); a quieter tail is sent as well."""
        end = speech_end_index(frames)
        self._speech.extend(frames[:end])
        self._speech.append(END_OF_SPEECH)
        self._speech.extend(frames[end:])

    async def press(self, digit: str) -> None:
        await self._send_json(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def wait_for_agent(self, timeout: float = 30.0) -> bool:
        """Until the agent finishes a reply (its mark arrives). False on timeout."""
        self._agent_done.clear()
        try:
            await asyncio.wait_for(self._agent_done.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def speak_and_wait(
        self, text: str, *, language: str = "en", timeout: float = 30.0
    ) -> bool:
        self._agent_done.clear()
        duration = self.say(text, language=language)
        await asyncio.sleep(duration)
        try:
            await asyncio.wait_for(self._agent_done.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def agent_lines(self) -> list[str]:
        return [turn.text for turn in self.log.agent_turns if turn.text]


async def communicator_transport(communicator):
    """send/receive callables over channels' in-process WebsocketCommunicator."""

    async def send(text: str) -> None:
        await communicator.send_to(text_data=text)

    async def receive() -> str | None:
        while True:
            try:
                message = await communicator.receive_output(timeout=600)
            except TimeoutError:
                continue
            if message["type"] == "websocket.close":
                communicator.close_message = message  # for anyone else waiting for the close
                return None
            if message["type"] == "websocket.send":
                return message.get("text")

    return send, receive


async def run_in_process(
    *,
    clinic,
    caller_phone: str,
    sentences: list[str],
    language: str = "en",
    call_sid: str,
    to_number: str,
    tts=None,
    turn_timeout: float = 30.0,
    hang_up: bool = True,
) -> SimulatedCaller:
    """A whole call through the real webhook service and the real consumer, in process."""
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from vaani.asgi import application
    from voice import runtime, services

    call = await database_sync_to_async(services.start_inbound_call)(
        clinic=clinic, call_sid=call_sid, from_number=caller_phone, to_number=to_number
    )
    communicator = WebsocketCommunicator(application, f"/api/v1/voice/stream/{call_sid}")
    connected, _ = await communicator.connect(timeout=10)
    if not connected:
        raise RuntimeError("The media stream refused the connection")
    send, receive = await communicator_transport(communicator)
    caller = SimulatedCaller(
        send=send,
        receive=receive,
        call_sid=call_sid,
        token=call.stream_token,
        caller_phone=caller_phone,
        tts=tts or runtime.text_to_speech(),
    )
    await caller.start()
    try:
        await caller.wait_for_agent(timeout=turn_timeout)  # the greeting
        for sentence in sentences:
            if caller.log.closed:
                break
            await caller.speak_and_wait(sentence, language=language, timeout=turn_timeout)
        if hang_up and not caller.log.closed:
            await caller.stop()
    finally:
        await caller.close()
        with contextlib.suppress(Exception):
            await communicator.disconnect()
    return caller
