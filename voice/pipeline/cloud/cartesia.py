"""Cartesia streaming text-to-speech (``wss://api.cartesia.ai/tts/websocket``).

Wire protocol (Cartesia TTS WebSocket, API version ``2024-06-10``):

- Connect with ``X-API-Key`` and ``Cartesia-Version`` headers (or the
  ``api_key`` / ``cartesia_version`` query parameters, for clients that cannot
  set headers).  A bad key fails the handshake (HTTP 401).
- Send one JSON request per reply: ``{"model_id", "transcript", "voice":
  {"mode": "id", "id"}, "language", "context_id", "output_format":
  {"container": "raw", "encoding": "pcm_s16le", "sample_rate"}}``.  One socket
  multiplexes many contexts; ``{"context_id", "cancel": true}`` stops one.
- Receive ``{"type": "chunk", "data": <base64 PCM>, "done": false,
  "context_id"}`` messages, then ``{"type": "done", "done": true}``; failures
  come as ``{"type": "error", "done": true, "error" | "title"/"message",
  "status_code"}``.  ``timestamps`` / ``flush_done`` messages are ignored.

Connections are pooled: Cartesia recommends many generations over one socket,
and reusing a warm socket saves the TLS + WebSocket handshake (one to two round
trips, the largest part of the time to first audio) on every reply.  A reply
takes a socket from the pool, and gives it back after ``done``; after a
barge-in the context is cancelled and the socket still goes back (late chunks
of the cancelled context are skipped by ``context_id``); after an error it is
closed.  A pooled socket that turns out dead is replaced once, transparently.

Two ways in, like Deepgram's client:

- :meth:`CartesiaTTS.synthesize_stream` (the blocking
  :class:`~voice.pipeline.tts.TextToSpeech` protocol): a worker thread per reply,
  one pooled ``websockets.sync`` socket per reply in flight (each with its own
  reader thread).
- :meth:`CartesiaTTS.astream`: on the event loop, what a live call uses.  Replies
  are multiplexed over a few shared sockets (``max_contexts_per_socket`` each), one
  reader task per socket hands each message to its reply by ``context_id``.  No
  thread at all: with threads, every reply's chunks crossed from the socket's reader
  thread to the reply's thread to the event loop, and each crossing could wait for
  the GIL while the event loop was pacing other calls' audio.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from ..tts import SynthesizedAudio
from ._ws import aclose_in_background, close_in_background
from .errors import (
    CloudProviderError,
    ProviderConnectionError,
    ProviderProtocolError,
    ProviderTimeout,
    closed_error,
    connect_error,
)

DEFAULT_URL = "wss://api.cartesia.ai/tts/websocket"
DEFAULT_VERSION = "2024-06-10"
DEFAULT_MODEL = "sonic-2"
# The voice of Cartesia's API reference examples; configure a voice that suits
# the clinic (``voice_id`` / per-language ``voices``, CARTESIA_VOICE_ID).
DEFAULT_VOICE_ID = "a0e99841-438c-4a64-b679-ae501e7d6091"
# Hinglish replies are romanised Hindi with English words: the Hindi voice
# model reads both, the English one mangles the Hindi.
DEFAULT_LANGUAGES: Mapping[str, str] = {"en": "en", "hi": "hi", "hi-en": "hi"}
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100)


class CartesiaTTS:
    """Cartesia Sonic as a :class:`~voice.pipeline.tts.TextToSpeech`.

    ``sample_rate`` defaults to 8 kHz: the phone line's rate, so nothing is
    resampled and a third of the bytes of 24 kHz cross the network.
    Timeouts: ``connect_timeout_s`` (handshake), ``first_chunk_timeout_s``
    (request -> first audio) and ``chunk_timeout_s`` (gap between chunks: a
    stalled stream).  Every failure raises a
    :class:`~voice.pipeline.cloud.errors.CloudProviderError`.
    """

    name = "cartesia"

    def __init__(
        self,
        api_key: str,
        *,
        url: str = DEFAULT_URL,
        version: str = DEFAULT_VERSION,
        model_id: str = DEFAULT_MODEL,
        voice_id: str = DEFAULT_VOICE_ID,
        voices: Mapping[str, str] | None = None,
        languages: Mapping[str, str] | None = None,
        sample_rate: int = 8000,
        auth_in_query: bool = False,
        connect_timeout_s: float = 1.5,
        first_chunk_timeout_s: float = 2.5,
        chunk_timeout_s: float = 2.0,
        close_timeout_s: float = 0.5,
        max_idle_connections: int = 4,
        idle_ttl_s: float = 60.0,
        max_contexts_per_socket: int = 16,
    ) -> None:
        if not api_key:
            raise ValueError("Cartesia needs an API key (CARTESIA_API_KEY)")
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {SAMPLE_RATES}")
        self.api_key = api_key
        self.url = url.rstrip("?")
        self.version = version
        self.model_id = model_id
        self.voice_id = voice_id or DEFAULT_VOICE_ID
        self.voices = dict(voices or {})
        self.languages = {**DEFAULT_LANGUAGES, **(languages or {})}
        self.sample_rate = sample_rate
        self.auth_in_query = auth_in_query
        self.connect_timeout_s = connect_timeout_s
        self.first_chunk_timeout_s = first_chunk_timeout_s
        self.chunk_timeout_s = chunk_timeout_s
        self.close_timeout_s = close_timeout_s
        self.idle_ttl_s = idle_ttl_s
        self.max_contexts_per_socket = max(1, max_contexts_per_socket)
        self._pool = _ConnectionPool(
            self._open, max_idle=max_idle_connections, idle_ttl_s=idle_ttl_s
        )
        # astream(): shared sockets per event loop (asyncio objects belong to one loop).
        self._muxes: weakref.WeakKeyDictionary[Any, _Multiplexer] = weakref.WeakKeyDictionary()

    # -- request ------------------------------------------------------------------------
    @property
    def connect_url(self) -> str:
        if not self.auth_in_query:
            return self.url
        query = urlencode({"api_key": self.api_key, "cartesia_version": self.version})
        return f"{self.url}?{query}"

    @property
    def headers(self) -> dict[str, str]:
        if self.auth_in_query:
            return {}
        return {"X-API-Key": self.api_key, "Cartesia-Version": self.version}

    def request(self, text: str, *, language: str, context_id: str) -> dict[str, Any]:
        code = self.languages.get(language, language or "en")
        voice = self.voices.get(language) or self.voices.get(code) or self.voice_id
        return {
            "model_id": self.model_id,
            "transcript": text,
            "voice": {"mode": "id", "id": voice},
            "language": code,
            "context_id": context_id,
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": self.sample_rate,
            },
            "continue": False,
        }

    def _open(self) -> Any:
        from websockets.sync.client import connect

        try:
            return connect(
                self.connect_url,
                additional_headers=self.headers,
                open_timeout=self.connect_timeout_s,
                close_timeout=self.close_timeout_s,
                compression=None,
                max_size=4 * 1024 * 1024,
                user_agent_header="vaani-voice",
                legacy=True,  # a plain connection object: the pool owns its lifetime
            )
        except Exception as exc:
            raise connect_error(self.name, exc) from exc

    def prewarm(self) -> None:
        """Open a socket now (e.g. at call start) so the first reply skips the handshake."""
        conn, _ = self._pool.acquire()
        self._pool.release(conn)

    def close(self) -> None:
        self._pool.close_all()

    # -- TextToSpeech ---------------------------------------------------------------------
    def synthesize(self, text: str, *, language: str = "en") -> SynthesizedAudio:
        return SynthesizedAudio(
            b"".join(self.synthesize_stream(text, language=language)), self.sample_rate
        )

    def synthesize_stream(self, text: str, *, language: str = "en") -> Iterator[bytes]:
        """PCM16 chunks at ``sample_rate`` as Cartesia sends them (blocking; worker thread).

        Closing the generator early (barge-in) cancels the context on the server.
        """
        from websockets.exceptions import ConnectionClosed

        text = text.strip()
        if not text:
            return
        context_id = uuid.uuid4().hex
        request = json.dumps(self.request(text, language=language, context_id=context_id))
        conn = None
        audio = _ReplyAudio(self)
        try:
            for attempt in (1, 2):
                conn, reused = self._pool.acquire()
                try:
                    conn.send(request)
                    message = self._next(conn, context_id, self.first_chunk_timeout_s, "first")
                    break
                except ProviderConnectionError:
                    if not reused or attempt == 2:
                        raise
                    # A pooled socket the server had closed: not the provider's fault.
                    close_in_background(conn)
                    conn = None
                except ConnectionClosed:
                    if not reused or attempt == 2:
                        raise
                    close_in_background(conn)
                    conn = None
            while True:
                pcm = audio.take(message)
                if pcm:
                    yield pcm
                if audio.finished:
                    break
                message = self._next(conn, context_id, *audio.wait())
        except GeneratorExit:
            # Barge-in: stop the generation; the socket stays usable.
            if conn is not None and not audio.finished:
                self._pool.cancel_and_release(conn, context_id)
                conn = None
            raise
        except CloudProviderError:
            raise
        except ConnectionClosed as exc:
            raise closed_error(self.name, exc) from exc
        except OSError as exc:
            raise connect_error(self.name, exc) from exc
        finally:
            if conn is not None:
                if audio.finished:
                    self._pool.release(conn)
                else:
                    close_in_background(conn)

    # -- on the event loop ----------------------------------------------------------------
    async def astream(self, text: str, *, language: str = "en") -> AsyncIterator[bytes]:
        """PCM16 chunks at ``sample_rate`` as Cartesia sends them, on the event loop.

        Same protocol, errors and timeouts as :meth:`synthesize_stream`; closing the
        generator early (barge-in) cancels the context, and its socket carries on.
        """
        text = text.strip()
        if not text:
            return
        loop = asyncio.get_running_loop()
        mux = self._muxes.get(loop)
        if mux is None:
            mux = self._muxes[loop] = _Multiplexer(self)
        context_id = uuid.uuid4().hex
        request = json.dumps(self.request(text, language=language, context_id=context_id))
        reply: _Reply | None = None
        audio = _ReplyAudio(self)
        try:
            for attempt in (1, 2):
                reply, reused = await mux.start(request, context_id)
                try:
                    message = await reply.next(self.first_chunk_timeout_s, "first")
                    break
                except ProviderConnectionError:
                    reply.close(cancel=False)
                    reply = None
                    if not reused or attempt == 2:
                        raise
                    # A shared socket the server had closed: not the provider's fault.
            while True:
                pcm = audio.take(message)
                if pcm:
                    yield pcm
                if audio.finished:
                    return
                message = await reply.next(*audio.wait())
        finally:
            if reply is not None:
                reply.close(cancel=not audio.finished)

    async def aclose(self) -> None:
        """Close this loop's shared sockets (tests; shutting down)."""
        mux = self._muxes.pop(asyncio.get_running_loop(), None)
        if mux is not None:
            await mux.close()

    def _next(self, conn: Any, context_id: str, timeout_s: float, which: str) -> dict[str, Any]:
        """The next message of this context (others' late messages are skipped)."""
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                raw = conn.recv(timeout=remaining)
            except TimeoutError as exc:
                raise ProviderTimeout(
                    self.name, f"no {which} audio chunk within {timeout_s:g} s"
                ) from exc
            except ConnectionClosed as exc:
                raise closed_error(self.name, exc) from exc
            if isinstance(raw, bytes):
                raise ProviderProtocolError(self.name, "unexpected binary message")
            try:
                message = json.loads(raw)
            except ValueError as exc:
                raise ProviderProtocolError(self.name, f"not JSON: {raw[:80]!r}") from exc
            if not isinstance(message, dict):
                raise ProviderProtocolError(self.name, f"unexpected message: {raw[:80]!r}")
            owner = message.get("context_id")
            if owner is not None and owner != context_id:
                continue  # a cancelled earlier reply on this socket
            return message


class _ReplyAudio:
    """One reply's messages turned into audio, the same for both ways in: PCM from each
    ``chunk`` (an odd byte waits for the next), an ``error`` raised, ``done`` ends it.
    :meth:`wait` says how long to wait for the next message: the first chunk's timeout
    until audio has come, then the one between chunks."""

    def __init__(self, tts: CartesiaTTS) -> None:
        self.tts = tts
        self.carry = b""
        self.got_audio = False
        self.finished = False

    def take(self, message: dict[str, Any]) -> bytes:
        kind = message.get("type")
        pcm = b""
        if kind == "chunk":
            pcm, self.carry = _decode_pcm(self.tts.name, message.get("data"), self.carry)
            self.got_audio = self.got_audio or bool(pcm)
        elif kind == "error" or message.get("error"):
            raise ProviderProtocolError(self.tts.name, _error_text(message))
        if kind == "done" or message.get("done"):
            self.finished = True
        return pcm

    def wait(self) -> tuple[float, str]:
        if self.got_audio:
            return self.tts.chunk_timeout_s, "next"
        return self.tts.first_chunk_timeout_s, "first"


class _Reply:
    """One reply's messages, handed over by its socket's reader task."""

    def __init__(self, socket: _SharedSocket, context_id: str) -> None:
        self.socket = socket
        self.context_id = context_id
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    async def next(self, timeout_s: float, which: str) -> dict[str, Any]:
        provider = self.socket.provider
        try:
            async with asyncio.timeout(timeout_s):
                item = await self.queue.get()
        except TimeoutError as exc:
            raise ProviderTimeout(
                provider, f"no {which} audio chunk within {timeout_s:g} s"
            ) from exc
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self, *, cancel: bool) -> None:
        if not self.closed:
            self.closed = True
            self.socket.release(self.context_id, cancel=cancel)


class _SharedSocket:
    """An asyncio socket carrying several replies; one reader task routes the messages."""

    def __init__(self, ws: Any, provider: str) -> None:
        self.ws = ws
        self.provider = provider
        self.replies: dict[str, _Reply] = {}
        self.dead = False
        self.idle_since = time.monotonic()
        self._background: set[asyncio.Task[Any]] = set()
        self.reader = asyncio.get_running_loop().create_task(self._read(), name="cartesia-reader")

    @property
    def usable(self) -> bool:
        from websockets.protocol import State

        return not self.dead and self.ws.state is State.OPEN

    def register(self, context_id: str) -> _Reply:
        reply = self.replies[context_id] = _Reply(self, context_id)
        return reply

    def release(self, context_id: str, *, cancel: bool) -> None:
        self.replies.pop(context_id, None)
        if not self.replies:
            self.idle_since = time.monotonic()
        if cancel and self.usable:  # stop the generation; late chunks are skipped
            message = json.dumps({"context_id": context_id, "cancel": True})
            self._spawn(self._send_quietly(message))

    def fail_all(self, error: BaseException) -> None:
        self.dead = True
        replies, self.replies = self.replies, {}
        for reply in replies.values():
            reply.queue.put_nowait(error)

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self._fail_and_close(
                        ProviderProtocolError(self.provider, "unexpected binary message")
                    )
                    return
                try:
                    message = json.loads(raw)
                except ValueError:
                    self._fail_and_close(
                        ProviderProtocolError(self.provider, f"not JSON: {raw[:80]!r}")
                    )
                    return
                if not isinstance(message, dict):
                    self._fail_and_close(
                        ProviderProtocolError(self.provider, f"unexpected message: {raw[:80]!r}")
                    )
                    return
                owner = message.get("context_id")
                if owner is None:  # not about one reply (e.g. an unreadable request)
                    for reply in list(self.replies.values()):
                        reply.queue.put_nowait(message)
                    continue
                reply = self.replies.get(owner)
                if reply is not None:  # else: a cancelled reply's late chunk
                    reply.queue.put_nowait(message)
            self.fail_all(ProviderConnectionError(self.provider, "connection closed"))
        except ConnectionClosed as exc:
            self.fail_all(closed_error(self.provider, exc))
        except OSError as exc:
            self.fail_all(connect_error(self.provider, exc))

    def _fail_and_close(self, error: BaseException) -> None:
        self.fail_all(error)
        aclose_in_background(self.ws)

    async def _send_quietly(self, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send(message)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        self.fail_all(ProviderConnectionError(self.provider, "closed by the client"))
        self.reader.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()


class _Multiplexer:
    """The shared sockets of one event loop: the least busy one with room, else a new one."""

    def __init__(self, tts: CartesiaTTS) -> None:
        self.tts = tts
        self.sockets: list[_SharedSocket] = []
        self._opening = asyncio.Lock()
        self.opened = 0

    async def start(self, request: str, context_id: str) -> tuple[_Reply, bool]:
        """Send the request on a socket; returns (its reply, whether the socket was reused)."""
        from websockets.exceptions import ConnectionClosed

        socket, reused = await self._acquire()
        reply = socket.register(context_id)
        try:
            await socket.ws.send(request)
        except ConnectionClosed as exc:
            socket.fail_all(closed_error(self.tts.name, exc))
            if not reused:
                raise closed_error(self.tts.name, exc) from exc
            return await self.start(request, context_id)  # once more, on a fresh socket
        return reply, reused

    def _pick(self) -> _SharedSocket | None:
        now = time.monotonic()
        live = []
        for socket in self.sockets:
            stale = not socket.replies and now - socket.idle_since > self.tts.idle_ttl_s
            if socket.usable and not stale:
                live.append(socket)
            elif not socket.replies:
                aclose_in_background(socket.ws)
                socket.dead = True
        self.sockets = live
        roomy = [s for s in live if len(s.replies) < self.tts.max_contexts_per_socket]
        return min(roomy, key=lambda s: len(s.replies)) if roomy else None

    async def _acquire(self) -> tuple[_SharedSocket, bool]:
        socket = self._pick()
        if socket is not None:
            return socket, True
        async with self._opening:  # a burst of replies opens one socket, not one each
            socket = self._pick()
            if socket is not None:
                return socket, True
            socket = _SharedSocket(await self._open(), self.tts.name)
            self.sockets.append(socket)
            self.opened += 1
            return socket, False

    async def _open(self) -> Any:
        from websockets.asyncio.client import connect

        tts = self.tts
        try:
            return await connect(
                tts.connect_url,
                additional_headers=tts.headers,
                open_timeout=tts.connect_timeout_s,
                close_timeout=tts.close_timeout_s,
                compression=None,
                max_size=4 * 1024 * 1024,
                user_agent_header="vaani-voice",
            )
        except Exception as exc:
            raise connect_error(tts.name, exc) from exc

    async def close(self) -> None:
        sockets, self.sockets = self.sockets, []
        for socket in sockets:
            await socket.close()


def _decode_pcm(provider: str, data: Any, carry: bytes) -> tuple[bytes, bytes]:
    """base64 chunk -> whole int16 samples (an odd trailing byte waits for the next chunk)."""
    if not data:
        return b"", carry
    try:
        raw = carry + base64.b64decode(data, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ProviderProtocolError(provider, "audio chunk is not base64") from exc
    cut = len(raw) - len(raw) % 2
    return raw[:cut], raw[cut:]


def _error_text(message: Mapping[str, Any]) -> str:
    parts = [
        str(message.get(key))
        for key in ("title", "message", "error", "error_code")
        if message.get(key) and not isinstance(message.get(key), bool)
    ]
    status = message.get("status_code")
    return (" ".join(parts) or "error") + (f" (status {status})" if status else "")


class _ConnectionPool:
    """Idle sockets of one provider instance, newest first; thread-safe."""

    def __init__(
        self,
        open_connection: Callable[[], Any],
        *,
        max_idle: int = 4,
        idle_ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_connection
        self.max_idle = max_idle
        self.idle_ttl_s = idle_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._idle: list[tuple[float, Any]] = []
        self.opened = 0

    def acquire(self) -> tuple[Any, bool]:
        """(connection, reused)."""
        from websockets.protocol import State

        stale: list[Any] = []
        found = None
        with self._lock:
            now = self._clock()
            while self._idle:
                since, conn = self._idle.pop()
                if now - since <= self.idle_ttl_s and conn.state is State.OPEN:
                    found = conn
                    break
                stale.append(conn)
        for conn in stale:
            close_in_background(conn)
        if found is not None:
            return found, True
        conn = self._open()
        with self._lock:
            self.opened += 1
        return conn, False

    def release(self, conn: Any) -> None:
        from websockets.protocol import State

        if self.max_idle > 0 and conn.state is State.OPEN:
            with self._lock:
                if len(self._idle) < self.max_idle:
                    self._idle.append((self._clock(), conn))
                    return
        close_in_background(conn)

    def cancel_and_release(self, conn: Any, context_id: str) -> None:
        """Tell the server to stop a context, off the caller's thread, then keep the socket."""

        def cancel() -> None:
            try:
                conn.send(json.dumps({"context_id": context_id, "cancel": True}))
            except Exception:
                close_in_background(conn)
                return
            self.release(conn)

        threading.Thread(target=cancel, name="cartesia-cancel", daemon=True).start()

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, conn in idle:
            close_in_background(conn)

    def __len__(self) -> int:
        return len(self._idle)
