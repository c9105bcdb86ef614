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
        start = time.monotonic()
        sent = 0
        chunk = 0
        while True:
            frame = self._speech.popleft() if self._speech else SILENCE_FRAME
            if not self._speech and frame is not SILENCE_FRAME:
                self._utterance_end = time.monotonic() + 0.02
            sent += 1
            chunk += 1
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
                if self._current.first_frame_at is None:
                    self._current.first_frame_at = now
                    if self._utterance_end is not None:
                        self.log.turn_latencies.append(now - self._utterance_end)
                        self._utterance_end = None
                elif self._last_frame_at is not None and now - self._last_frame_at > 0.06:
                    self.log.late_frames += 1
                    self.log.gaps.append(
                        (
                            len(self.log.agent_turns) - 1,
                            self._current.frames,
                            (now - self._last_frame_at) * 1000,
                            now,
                        )
                    )
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
        self._speech.extend(frames)
        self.log.caller_lines.append(text)
        return len(frames) * 0.02

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
