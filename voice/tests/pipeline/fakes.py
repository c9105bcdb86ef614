"""Loopback fakes of the Deepgram and Cartesia WebSocket protocols.

Only the transport is faked: the servers speak the providers' documented wire
protocols on 127.0.0.1, so the real clients (``voice.pipeline.cloud``) run
unchanged against them.  Each server runs its own event loop on a thread, so
blocking clients (``transcribe``, ``synthesize_stream``) and asyncio clients can
both use it.

- :class:`FakeDeepgram`: ``/v1/listen``.  Checks ``Authorization: Token``,
  validates the query, collects the audio, sends interim results while audio
  arrives, and on ``Finalize`` / ``CloseStream`` the final results (after
  ``delay_ms``), then ``Metadata`` and a normal close.  What it "hears" comes
  from ``transcript`` (fixed), ``script(...)`` (one per utterance, in order) or
  ``by_length({seconds: text})`` (nearest audio duration).
- :class:`FakeCartesia`: ``/tts/websocket``.  Checks ``X-API-Key`` +
  ``Cartesia-Version`` (or the query parameters), validates each request and
  streams base64 PCM ``chunk`` messages (a tone, or eSpeak speech) after
  ``delay_ms``, then ``done``; contexts are multiplexed and can be cancelled.

Failures on demand, for the next connections/requests (``fail_next(mode, n)``)
or always (``failure = mode``): ``"auth"`` (401 at the handshake),
``"unavailable"`` (503 at the handshake), ``"close"`` (close 1011 at once),
``"drop"`` (close 1011 after some audio), ``"error"`` (the protocol's error
message), ``"stall"`` (accept, then never answer), ``"garbage"`` (non-JSON).

Also a script, for benchmarks with fixed-delay cloud providers::

    python -m voice.tests.pipeline.fakes --deepgram-port 8701 --cartesia-port 8702 --delay-ms 150

prints one JSON line with both URLs, then serves until interrupted; then one more line
with the delays its answers really waited (the fixed delay plus any lateness of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

API_KEY = "test-key"
HANDSHAKE_FAILURES = ("auth", "unavailable")
FAILURE_MODES = (*HANDSHAKE_FAILURES, "close", "drop", "error", "stall", "garbage")


@dataclass
class FakeConnection:
    """What one client connection did (for assertions)."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    binary_frames: int = 0
    messages: list[Any] = field(default_factory=list)  # client text messages, parsed
    sent: list[dict[str, Any]] = field(default_factory=list)  # server messages, parsed
    failure: str | None = None
    closed: threading.Event = field(default_factory=threading.Event)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def message_types(self) -> list[str]:
        return [str(m.get("type", "")) for m in self.messages if isinstance(m, dict)]


class _FakeServer:
    """A websockets server on its own thread and event loop."""

    path = "/"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = API_KEY,
        delay_ms: float = 0.0,
    ) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.delay_ms = delay_ms
        self.failure: str | None = None  # applied to every connection/request
        self._failures: deque[str] = deque()
        self.connections: list[FakeConnection] = []
        self.handshakes = 0
        self.delays_ms: list[float] = []
        self._live: set[Any] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> _FakeServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # pragma: no cover - reported to start()
                errors.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    async def _serve(self, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()
        async with serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,
            max_size=8 * 1024 * 1024,
            close_timeout=1,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> _FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path}"

    # -- failures -----------------------------------------------------------------------
    def fail_next(self, mode: str, times: int = 1) -> None:
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; known: {FAILURE_MODES}")
        with self._lock:
            self._failures.extend([mode] * times)

    def _take_failure(self, handshake: bool) -> str | None:
        with self._lock:
            if self.failure is not None and (self.failure in HANDSHAKE_FAILURES) == handshake:
                return self.failure
            if self._failures and (self._failures[0] in HANDSHAKE_FAILURES) == handshake:
                return self._failures.popleft()
        return None

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self.failure = None
            self.connections.clear()
            self.handshakes = 0

    # -- handshake ----------------------------------------------------------------------
    def _process_request(self, connection: Any, request: Any) -> Any:
        self.handshakes += 1
        parts = urlsplit(request.path)
        if parts.path != self.path:
            return connection.respond(404, "Not Found\n")
        failure = self._take_failure(handshake=True)
        if failure == "unavailable":
            return connection.respond(503, "Service Unavailable\n")
        query = parse_qs(parts.query)
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        if failure == "auth" or not self._authorized(headers, query):
            return connection.respond(401, "Unauthorized\n")
        problem = self._validate_query(query, headers)
        if problem:
            return connection.respond(400, problem + "\n")
        return None

    def _authorized(self, headers: Mapping[str, str], query: Mapping[str, list[str]]) -> bool:
        raise NotImplementedError

    def _validate_query(
        self, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> str | None:
        return None

    def _record(self, connection: Any) -> FakeConnection:
        parts = urlsplit(connection.request.path)
        record = FakeConnection(
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in connection.request.headers.raw_items()},
        )
        with self._lock:
            self.connections.append(record)
        return record

    async def _handle(self, connection: Any) -> None:
        record = self._record(connection)
        self._live.add(connection)
        try:
            await self._session(connection, record)
        except Exception:  # the client went away: nothing to do
            pass
        finally:
            self._live.discard(connection)
            record.closed.set()

    def disconnect_all(self, code: int = 1001, reason: str = "going away") -> None:
        """Close every open connection from the server side (e.g. an idle timeout)."""

        async def close_all() -> None:
            await asyncio.gather(*(ws.close(code, reason) for ws in list(self._live)))

        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(5)

    async def _session(self, ws: Any, record: FakeConnection) -> None:
        raise NotImplementedError

    @staticmethod
    async def _send(ws: Any, record: FakeConnection, message: dict[str, Any]) -> None:
        record.sent.append(message)
        await ws.send(json.dumps(message))

    async def _delay(self) -> None:
        if self.delay_ms > 0:
            started = time.monotonic()
            await asyncio.sleep(self.delay_ms / 1000)
            # What the answer really waited (a busy fake answers late: not the client's time).
            self.delays_ms.append((time.monotonic() - started) * 1000)


# ---------------------------------------------------------------------------
# Deepgram
# ---------------------------------------------------------------------------

Responder = Callable[[FakeConnection, bytes], "str | Sequence[str]"]


def script(*texts: str | Sequence[str]) -> Responder:
    """One transcript per utterance, in order (the last one repeats)."""
    queue = list(texts)
    lock = threading.Lock()

    def respond(record: FakeConnection, audio: bytes) -> str | Sequence[str]:
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


def by_length(table: Mapping[float, str | Sequence[str]]) -> Responder:
    """The transcript whose key (seconds of audio) is nearest to the utterance's length."""
    items = sorted(table.items())

    def respond(record: FakeConnection, audio: bytes) -> str | Sequence[str]:
        seconds = audio_seconds(record, len(audio))
        return min(items, key=lambda kv: abs(kv[0] - seconds))[1]

    return respond


def audio_seconds(record: FakeConnection, n_bytes: int) -> float:
    width = 1 if record.param("encoding") == "mulaw" else 2
    rate = int(record.param("sample_rate") or 8000)
    return n_bytes / width / rate


class FakeDeepgram(_FakeServer):
    """Deepgram's ``/v1/listen`` streaming protocol."""

    path = "/v1/listen"
    ENCODINGS = ("linear16", "mulaw", "alaw", "opus", "flac")

    def __init__(
        self,
        *,
        transcript: str | Sequence[str] = "hello",
        respond: Responder | None = None,
        confidence: float = 0.93,
        interim_text: str = "uh",
        interim_every_s: float = 0.25,
        languages: Sequence[str] = (),
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.transcript = transcript
        self.respond = respond
        self.confidence = confidence
        self.interim_text = interim_text
        self.interim_every_s = interim_every_s
        self.languages = tuple(languages)  # reported as detected (language=multi)

    def _authorized(self, headers: Mapping[str, str], query: Mapping[str, list[str]]) -> bool:
        return headers.get("authorization") == f"Token {self.api_key}"

    def _validate_query(
        self, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> str | None:
        encoding = (query.get("encoding") or [""])[-1]
        if encoding and encoding not in self.ENCODINGS:
            return f"unsupported encoding {encoding!r}"
        if encoding and not (query.get("sample_rate") or [""])[-1].isdigit():
            return "sample_rate is required with encoding"
        return None

    async def _session(self, ws: Any, record: FakeConnection) -> None:
        failure = self._take_failure(handshake=False)
        record.failure = failure
        if failure == "close":
            await ws.close(1011, "NET-0000: internal server error")
            return
        pending = bytearray()  # audio not finalised yet
        next_interim = self.interim_every_s
        start = 0.0
        async for message in ws:
            if isinstance(message, bytes):
                record.audio.extend(message)
                record.binary_frames += 1
                pending.extend(message)
                if failure == "drop":
                    await ws.close(1011, "NET-0000: connection dropped")
                    return
                heard = audio_seconds(record, len(record.audio))
                if failure is None and heard >= next_interim:
                    next_interim += self.interim_every_s
                    interim = self._results(
                        record, self.interim_text, start, heard - start, final=False
                    )
                    await self._send(ws, record, interim)
                continue
            try:
                parsed = json.loads(message)
            except ValueError:
                parsed = {"type": "<not json>", "raw": message}
            record.messages.append(parsed)
            kind = parsed.get("type") if isinstance(parsed, dict) else None
            if kind == "KeepAlive":
                continue
            if kind not in ("Finalize", "CloseStream"):
                continue  # Deepgram ignores unknown control messages
            if failure == "stall":
                continue  # never answers; the client must time out
            await self._delay()
            if failure == "error":
                error = {
                    "type": "Error",
                    "description": "Scripted failure",
                    "message": "internal",
                    "variant": "NET-0000",
                }
                await self._send(ws, record, error)
                await ws.close(1011, "NET-0000")
                return
            if failure == "garbage":
                await ws.send("this is not json")
                continue
            if pending:
                duration = audio_seconds(record, len(pending))
                answer = self.respond(record, bytes(pending)) if self.respond else self.transcript
                segments = [answer] if isinstance(answer, str) else list(answer)
                step = duration / max(1, len(segments))
                for i, text in enumerate(segments):
                    last = i == len(segments) - 1
                    result = self._results(
                        record,
                        text,
                        start + i * step,
                        step,
                        final=True,
                        speech_final=last,
                        from_finalize=kind == "Finalize",
                    )
                    await self._send(ws, record, result)
                start += duration
                pending.clear()
            if kind == "CloseStream":
                await self._send(ws, record, self._metadata(record, start))
                await ws.close(1000, "")
                return

    def _results(
        self,
        record: FakeConnection,
        text: str,
        start: float,
        duration: float,
        *,
        final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> dict[str, Any]:
        tokens = text.split()
        per = duration / max(1, len(tokens))
        words = [
            {
                "word": tok.strip(".,?!").lower(),
                "start": round(start + i * per, 3),
                "end": round(start + (i + 1) * per, 3),
                "confidence": self.confidence,
                "punctuated_word": tok,
            }
            for i, tok in enumerate(tokens)
        ]
        alternative: dict[str, Any] = {
            "transcript": text,
            "confidence": self.confidence if final else self.confidence / 2,
            "words": words,
        }
        if self.languages:
            alternative["languages"] = list(self.languages)
        message: dict[str, Any] = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(duration, 3),
            "start": round(start, 3),
            "is_final": final,
            "speech_final": speech_final,
            "channel": {"alternatives": [alternative]},
            "metadata": {"request_id": str(uuid.uuid4()), "model_info": {"name": "fake"}},
        }
        if from_finalize:
            message["from_finalize"] = True
        return message

    @staticmethod
    def _metadata(record: FakeConnection, duration: float) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": str(uuid.uuid4()),
            "sha256": "0" * 64,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "duration": round(duration, 3),
            "channels": 1,
        }


# ---------------------------------------------------------------------------
# Cartesia
# ---------------------------------------------------------------------------


def tone_pcm(text: str, sample_rate: int, *, ms_per_char: float = 40.0) -> bytes:
    """A 440 Hz tone (330 Hz for Devanagari text) as long as the text would take to say."""
    seconds = min(10.0, max(0.2, len(text) * ms_per_char / 1000))
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    freq = 330.0 if any("\u0900" <= ch <= "\u097f" for ch in text) else 440.0
    return (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def espeak_pcm(text: str, sample_rate: int, language: str = "en") -> bytes:
    """Real speech from the offline eSpeak NG provider, at the requested rate."""
    from voice.pipeline.codecs import resample
    from voice.pipeline.tts import EspeakTTS

    audio = EspeakTTS().synthesize(text, language=language)
    return resample(audio.pcm16, audio.sample_rate, sample_rate)


class FakeCartesia(_FakeServer):
    """Cartesia's ``/tts/websocket`` protocol (contexts, chunks, done, cancel, errors)."""

    path = "/tts/websocket"
    SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100)

    def __init__(
        self,
        *,
        audio: str | Callable[[str, int, str], bytes] = "tone",
        chunk_ms: float = 40.0,
        chunk_interval_ms: float = 0.0,
        version: str = "2024-06-10",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.audio = audio
        self.chunk_ms = chunk_ms
        self.chunk_interval_ms = chunk_interval_ms
        self.version = version
        self.requests: list[dict[str, Any]] = []
        self.cancelled: list[str] = []

    def _authorized(self, headers: Mapping[str, str], query: Mapping[str, list[str]]) -> bool:
        key = headers.get("x-api-key") or (query.get("api_key") or [""])[-1]
        return key == self.api_key

    def _validate_query(
        self, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> str | None:
        version = headers.get("cartesia-version") or (query.get("cartesia_version") or [""])[-1]
        return None if version else "Cartesia-Version is required"

    def pcm_for(self, text: str, sample_rate: int, language: str) -> bytes:
        if callable(self.audio):
            return self.audio(text, sample_rate, language)
        if self.audio == "espeak":
            return espeak_pcm(text, sample_rate, language)
        return tone_pcm(text, sample_rate)

    async def _session(self, ws: Any, record: FakeConnection) -> None:
        contexts: dict[str, asyncio.Task[None]] = {}
        try:
            async for message in ws:
                try:
                    request = json.loads(message)
                except (TypeError, ValueError):
                    await self._send(ws, record, _cartesia_error(None, "invalid JSON"))
                    continue
                record.messages.append(request)
                if not isinstance(request, dict):
                    await self._send(ws, record, _cartesia_error(None, "expected an object"))
                    continue
                context_id = str(request.get("context_id") or uuid.uuid4())
                if request.get("cancel"):
                    self.cancelled.append(context_id)
                    task = contexts.pop(context_id, None)
                    if task is not None:
                        task.cancel()
                    continue
                self.requests.append(request)
                problem = _validate_tts_request(request, self.SAMPLE_RATES)
                if problem:
                    await self._send(ws, record, _cartesia_error(context_id, problem))
                    continue
                failure = self._take_failure(handshake=False)
                record.failure = record.failure or failure
                if failure == "close":
                    await ws.close(1011, "internal error")
                    return
                contexts[context_id] = asyncio.ensure_future(
                    self._generate(ws, record, request, context_id, failure)
                )
        finally:
            for task in contexts.values():
                task.cancel()

    async def _generate(
        self,
        ws: Any,
        record: FakeConnection,
        request: dict[str, Any],
        context_id: str,
        failure: str | None,
    ) -> None:
        if failure == "stall":
            return
        await self._delay()
        if failure == "error":
            await self._send(ws, record, _cartesia_error(context_id, "Scripted failure", 500))
            return
        if failure == "garbage":
            await ws.send("this is not json")
            return
        rate = int(request["output_format"]["sample_rate"])
        pcm = self.pcm_for(request["transcript"], rate, str(request.get("language", "en")))
        step = max(2, int(rate * self.chunk_ms / 1000) * 2)
        for i in range(0, len(pcm), step):
            chunk = {
                "type": "chunk",
                "data": base64.b64encode(pcm[i : i + step]).decode(),
                "done": False,
                "status_code": 206,
                "step_time": round(self.chunk_ms * 0.3, 1),
                "context_id": context_id,
            }
            await self._send(ws, record, chunk)
            if failure == "drop":
                await ws.close(1011, "internal error")
                return
            # Streams interleave, as Cartesia's do: one context's long reply must not hold
            # this loop (and every other context's first chunk) until it is all sent.
            await asyncio.sleep(self.chunk_interval_ms / 1000 if self.chunk_interval_ms > 0 else 0)
        await self._send(
            ws, record, {"type": "done", "done": True, "status_code": 206, "context_id": context_id}
        )


def _validate_tts_request(request: Mapping[str, Any], rates: Sequence[int]) -> str | None:
    for key in ("model_id", "transcript", "voice", "output_format"):
        if key not in request:
            return f"missing {key}"
    voice = request["voice"]
    if not isinstance(voice, dict) or voice.get("mode") != "id" or not voice.get("id"):
        return "voice must be {mode: id, id}"
    fmt = request["output_format"]
    if not isinstance(fmt, dict) or fmt.get("container") != "raw":
        return "only the raw container is supported here"
    if fmt.get("encoding") != "pcm_s16le":
        return f"unsupported encoding {fmt.get('encoding')!r}"
    if fmt.get("sample_rate") not in rates:
        return f"unsupported sample_rate {fmt.get('sample_rate')!r}"
    if not str(request["transcript"]).strip():
        return "transcript is empty"
    return None


def _cartesia_error(context_id: str | None, message: str, status: int = 400) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "error",
        "done": True,
        "error": message,
        "status_code": status,
    }
    if context_id is not None:
        out["context_id"] = context_id
    return out


# ---------------------------------------------------------------------------
# Script
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--deepgram-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--cartesia-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--delay-ms", type=float, default=150.0, help="answer delay (both)")
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--transcript", default="hello", help="what the fake Deepgram hears")
    parser.add_argument("--audio", choices=("tone", "espeak"), default="tone")
    parser.add_argument("--chunk-interval-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the fakes serve on loopback only")

    deepgram = FakeDeepgram(
        host=args.host,
        port=args.deepgram_port,
        api_key=args.api_key,
        delay_ms=args.delay_ms,
        transcript=args.transcript,
    ).start()
    cartesia = FakeCartesia(
        host=args.host,
        port=args.cartesia_port,
        api_key=args.api_key,
        delay_ms=args.delay_ms,
        audio=args.audio,
        chunk_interval_ms=args.chunk_interval_ms,
    ).start()
    print(
        json.dumps(
            {"deepgram_url": deepgram.url, "cartesia_url": cartesia.url, "api_key": args.api_key}
        ),
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        deepgram.stop()
        cartesia.stop()
        # One more line for whoever started the script (bench/voice.py): how long the
        # answers really waited, against the delay asked for.
        print(
            json.dumps(
                {"deepgram_delays_ms": deepgram.delays_ms, "cartesia_delays_ms": cartesia.delays_ms}
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
