"""Deepgram streaming speech-to-text (``wss://api.deepgram.com/v1/listen``).

Wire protocol (Deepgram "Live Audio" API):

- Connect with the options in the query string (``model``, ``language``,
  ``encoding``, ``sample_rate``, ``channels``, ``interim_results``,
  ``endpointing``, ``smart_format``, ``keywords``/``keyterm``) and the header
  ``Authorization: Token <key>``.  A bad key fails the handshake (HTTP 401).
- Send audio as binary frames; ``{"type": "KeepAlive"}`` keeps an idle socket
  open, ``{"type": "Finalize"}`` flushes, ``{"type": "CloseStream"}`` flushes,
  then the server sends the last results, a ``Metadata`` message and closes.
- Receive ``{"type": "Results", "channel": {"alternatives": [{"transcript",
  "confidence", "words": [...]}]}, "is_final", "speech_final", ...}``.  With
  interim results on, ``is_final: false`` messages are provisional and are
  replaced by the ``is_final: true`` one for the same audio; the utterance is
  the concatenation of the final segments.  Errors arrive as a close frame with
  code 1008 (bad audio, ``DATA-0000``) or 1011 (``NET-0000``/``NET-0001``), or
  as a ``{"type": "Error"}`` message.

Two ways in:

- :meth:`DeepgramSTT.transcribe` (the :class:`~voice.pipeline.stt.SpeechToText`
  protocol): blocking, one connection per utterance.  The whole utterance is
  sent at once followed by ``CloseStream``.  Why not one connection per call:
  the recogniser object is shared by every call of a clinic (concurrent calls
  would have to share or pool sockets), an idle Deepgram socket must be kept
  alive with ``KeepAlive`` every few seconds or it is closed after 10 s, and a
  socket that carried one utterance starts the next one with state we do not
  control.  The price is one handshake per utterance (one TLS round trip or
  two); :class:`DeepgramStream` removes it from the critical path.
- :meth:`DeepgramSTT.open_stream` -> :class:`DeepgramStream`: open the socket
  when the caller starts speaking, ``feed()`` each 20 ms frame as it arrives,
  ``await finish()`` at end of speech.  By then Deepgram has already
  recognised almost everything, so only the flush remains (typically well under
  the time a whole-utterance request takes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..codecs import pcm16_to_mulaw, resample
from ..stt import EXPECTS_NAME, Transcript
from ._ws import aclose_in_background, close_in_background
from .errors import (
    CloudProviderError,
    ProviderProtocolError,
    ProviderTimeout,
    closed_error,
    connect_error,
)

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"
DEFAULT_MODEL = "nova-2"

# Our language codes -> Deepgram's.  "hi-en" (Hinglish) needs a model that
# recognises Hindi and English in one utterance: nova-3's "multi" does; nova-2's
# "multi" covers only English/Spanish, so there Hindi (which also writes the
# English loan words callers use) is the better choice.
DEFAULT_LANGUAGES: Mapping[str, str] = {"en": "en-IN", "hi": "hi", "hi-en": "hi"}
MULTILINGUAL_MODELS = ("nova-3",)

CLOSE_STREAM = json.dumps({"type": "CloseStream"})
FINALIZE = json.dumps({"type": "Finalize"})
KEEP_ALIVE = json.dumps({"type": "KeepAlive"})

_BYTES_PER_SAMPLE = {"linear16": 2, "mulaw": 1}


def deepgram_language(language: str, model: str, overrides: Mapping[str, str] | None = None) -> str:
    """Our language code ("en", "hi", "hi-en") -> Deepgram's ``language`` parameter."""
    table = {**DEFAULT_LANGUAGES, **(overrides or {})}
    multilingual = model.startswith(MULTILINGUAL_MODELS)
    if language == "hi-en" and "hi-en" not in (overrides or {}) and multilingual:
        return "multi"
    return table.get(language, language or "en")


# ---------------------------------------------------------------------------
# Parsing the server's messages (shared by the blocking and the streaming path)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One ``is_final`` result: a stretch of audio whose text will not change."""

    text: str
    confidence: float
    start: float
    duration: float
    words: tuple[str, ...]
    languages: tuple[str, ...] = ()
    speech_final: bool = False


class DeepgramResults:
    """Accumulates ``Results`` messages into the utterance's transcript.

    Interim results only update :attr:`interim`; final ones are appended to
    :attr:`segments`.  ``Metadata`` (sent after ``CloseStream``) marks the end.
    """

    def __init__(self, provider: str = "deepgram") -> None:
        self.provider = provider
        self.segments: list[Segment] = []
        self.interim = ""
        self.interim_count = 0
        self.metadata: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.metadata is not None

    @property
    def request_id(self) -> str:
        return str((self.metadata or {}).get("request_id", ""))

    def feed(self, raw: str | bytes) -> str:
        """Parse one server message; returns its type.  Raises on ``Error`` or garbage."""
        if isinstance(raw, bytes):
            raise ProviderProtocolError(self.provider, "unexpected binary message")
        try:
            message = json.loads(raw)
        except ValueError as exc:
            raise ProviderProtocolError(self.provider, f"not JSON: {raw[:80]!r}") from exc
        if not isinstance(message, dict):
            raise ProviderProtocolError(self.provider, f"unexpected message: {raw[:80]!r}")
        kind = str(message.get("type", ""))
        if kind == "Results":
            self._on_results(message)
        elif kind == "Metadata":
            self.metadata = message
        elif kind == "Error":
            detail = message.get("description") or message.get("message") or "error"
            variant = message.get("variant") or message.get("err_code") or ""
            raise ProviderProtocolError(self.provider, f"{detail} {variant}".strip())
        # SpeechStarted, UtteranceEnd and future types carry nothing we need.
        return kind

    def _on_results(self, message: Mapping[str, Any]) -> None:
        try:
            alternatives = message["channel"]["alternatives"]
            best = alternatives[0] if alternatives else {}
            text = str(best.get("transcript", "") or "").strip()
            confidence = float(best.get("confidence", 0.0) or 0.0)
            words = tuple(
                str(w.get("word", "")).lower() for w in best.get("words") or () if w.get("word")
            )
            languages = tuple(str(x) for x in best.get("languages") or ())
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderProtocolError(self.provider, f"malformed Results: {exc!r}") from exc
        if not message.get("is_final"):
            self.interim = text
            self.interim_count += 1
            return
        self.interim = ""
        self.segments.append(
            Segment(
                text=text,
                confidence=confidence,
                start=float(message.get("start", 0.0) or 0.0),
                duration=float(message.get("duration", 0.0) or 0.0),
                words=words or tuple(text.lower().split()),
                languages=languages,
                speech_final=bool(message.get("speech_final")),
            )
        )

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    def transcript(self, language: str, *, processing_ms: float = 0.0) -> Transcript:
        spoken = [s for s in self.segments if s.text]
        if not spoken and self.interim:
            # The server closed without finalising: the last interim is all there is.
            return Transcript(
                self.interim, language, 0.0, tuple(self.interim.lower().split()), processing_ms
            )
        if not spoken:
            return Transcript("", language, 0.0, (), processing_ms)
        weights = [s.duration if s.duration > 0 else max(1, len(s.words)) for s in spoken]
        confidence = sum(w * s.confidence for w, s in zip(weights, spoken, strict=True)) / sum(
            weights
        )
        detected = {code.split("-")[0] for s in spoken for code in s.languages}
        if detected:  # "multi" tells which languages it heard
            language = (
                "hi-en" if {"hi", "en"} <= detected else "hi" if "hi" in detected else language
            )
        words = tuple(w for s in spoken for w in s.words)
        return Transcript(self.text, language, round(confidence, 4), words, processing_ms)


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


class DeepgramSTT:
    """Deepgram ``/v1/listen`` as a :class:`~voice.pipeline.stt.SpeechToText`.

    Timeouts: ``connect_timeout_s`` for the handshake, ``result_timeout_s``
    from the last audio byte to the final result.  Keep their sum (plus the
    offline fallback's time) under the conversation's ``stt_timeout_s`` (6 s),
    so a stalled provider still leaves time to fall back within the turn.
    Every failure raises a :class:`~voice.pipeline.cloud.errors.CloudProviderError`.
    """

    name = "deepgram"

    def __init__(
        self,
        api_key: str,
        *,
        url: str = DEFAULT_URL,
        model: str = DEFAULT_MODEL,
        languages: Mapping[str, str] | None = None,
        encoding: str = "linear16",
        endpointing_ms: int | None = 300,
        interim_results: bool = True,
        smart_format: bool = True,
        keywords: Sequence[str] = (),
        keyword_boost: float = 2.0,
        vocabulary: Any = None,
        extra_params: Mapping[str, str] | None = None,
        connect_timeout_s: float = 1.5,
        result_timeout_s: float = 2.5,
        close_timeout_s: float = 0.5,
        chunk_ms: int = 100,
    ) -> None:
        if not api_key:
            raise ValueError("Deepgram needs an API key (DEEPGRAM_API_KEY)")
        if encoding not in _BYTES_PER_SAMPLE:
            raise ValueError(f"encoding must be one of {sorted(_BYTES_PER_SAMPLE)}")
        self.api_key = api_key
        self.url = url.rstrip("?")
        self.model = model
        self.languages = dict(languages or {})
        self.encoding = encoding
        self.endpointing_ms = endpointing_ms
        self.interim_results = interim_results
        self.smart_format = smart_format
        names = tuple(keywords)
        if vocabulary is not None:  # the clinic's doctors, so "Sharma" is not heard as "sharma's"
            names += tuple(getattr(vocabulary, "doctor_names", ()) or ())
        self.keywords = tuple(dict.fromkeys(k.strip() for k in names if k and k.strip()))
        self.keyword_boost = keyword_boost
        self.extra_params = dict(extra_params or {})
        self.connect_timeout_s = connect_timeout_s
        self.result_timeout_s = result_timeout_s
        self.close_timeout_s = close_timeout_s
        self.chunk_ms = chunk_ms

    # -- request ------------------------------------------------------------------------
    def language_code(self, language: str) -> str:
        return deepgram_language(language, self.model, self.languages)

    def listen_url(
        self, language: str, *, encoding: str, sample_rate: int, expects: str = ""
    ) -> str:
        """The streaming endpoint with this session's options.

        The clinic's keywords (doctors' names) are boosted, except when the caller is
        asked for a name: there a boosted "Mehta" would swallow a patient's "Mehra".
        """
        params: list[tuple[str, str]] = [
            ("model", self.model),
            ("language", self.language_code(language)),
            ("encoding", encoding),
            ("sample_rate", str(sample_rate)),
            ("channels", "1"),
            ("interim_results", _flag(self.interim_results)),
            (
                "endpointing",
                "false" if self.endpointing_ms is None else str(int(self.endpointing_ms)),
            ),
            ("smart_format", _flag(self.smart_format)),
        ]
        keywords = () if expects == EXPECTS_NAME else self.keywords
        if self.model.startswith("nova-3"):
            params += [("keyterm", k) for k in keywords]
        else:
            params += [("keywords", f"{k}:{self.keyword_boost:g}") for k in keywords]
        params += list(self.extra_params.items())
        return f"{self.url}?{urlencode(params)}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.api_key}"}

    def encode(self, pcm16: bytes, sample_rate: int) -> tuple[bytes, str, int]:
        """(payload, encoding, rate) for PCM16 input.  mu-law is lossless for phone audio."""
        if self.encoding == "mulaw":
            if sample_rate != 8000:
                pcm16, sample_rate = resample(pcm16, sample_rate, 8000), 8000
            return pcm16_to_mulaw(pcm16), "mulaw", 8000
        return pcm16, "linear16", sample_rate

    def _connect_options(self) -> dict[str, Any]:
        return {
            "additional_headers": self.headers,
            "open_timeout": self.connect_timeout_s,
            "close_timeout": self.close_timeout_s,
            "compression": None,  # audio does not deflate; save the CPU
            "user_agent_header": "vaani-voice",
        }

    # -- SpeechToText -------------------------------------------------------------------
    def transcribe(
        self, pcm16: bytes, sample_rate: int, *, language: str, expects: str = ""
    ) -> Transcript:
        """One utterance, blocking (call from a worker thread)."""
        from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
        from websockets.sync.client import connect

        started = time.perf_counter()
        if not pcm16:
            return Transcript("", language, 0.0)
        payload, encoding, rate = self.encode(pcm16, sample_rate)
        url = self.listen_url(language, encoding=encoding, sample_rate=rate, expects=expects)
        results = DeepgramResults(self.name)
        try:
            # legacy=True: a connection object we close ourselves (in the background).
            ws = connect(url, legacy=True, **self._connect_options())
        except Exception as exc:
            raise connect_error(self.name, exc) from exc
        try:
            for chunk in _chunks(payload, self._chunk_bytes(encoding, rate)):
                ws.send(chunk)
            ws.send(CLOSE_STREAM)
            deadline = time.monotonic() + self.result_timeout_s
            while not results.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                try:
                    raw = ws.recv(timeout=remaining)
                except ConnectionClosedOK:
                    break  # closed normally without Metadata: what we have is final
                results.feed(raw)
        except TimeoutError as exc:
            raise ProviderTimeout(
                self.name, f"no final result within {self.result_timeout_s:g} s"
            ) from exc
        except ConnectionClosed as exc:
            raise closed_error(self.name, exc) from exc
        except CloudProviderError:
            raise
        except OSError as exc:
            raise connect_error(self.name, exc) from exc
        finally:
            close_in_background(ws)
        return results.transcript(language, processing_ms=(time.perf_counter() - started) * 1000)

    def _chunk_bytes(self, encoding: str, rate: int) -> int:
        return max(1, rate * self.chunk_ms // 1000) * _BYTES_PER_SAMPLE[encoding]

    # -- streaming ----------------------------------------------------------------------
    def open_stream(
        self,
        *,
        language: str,
        encoding: str = "mulaw",
        sample_rate: int = 8000,
        on_interim: Callable[[str], None] | None = None,
        expects: str = "",
    ) -> DeepgramStream:
        """A live session for one utterance; see :class:`DeepgramStream`."""
        return DeepgramStream(
            self,
            language=language,
            encoding=encoding,
            sample_rate=sample_rate,
            on_interim=on_interim,
            expects=expects,
        )


class DeepgramStream:
    """One utterance streamed live (asyncio; all methods on the event loop).

    ``start()`` opens the socket in the background and returns at once;
    ``feed(audio)`` queues raw audio in the session's encoding (mu-law 8 kHz
    by default: Twilio's payload as is) and never blocks, also while the
    socket is still opening; ``await finish()`` sends ``CloseStream`` and
    returns the transcript; ``await abort()`` drops the session (e.g. the
    "utterance" was a cough).  Errors surface from ``finish()`` as
    :class:`~voice.pipeline.cloud.errors.CloudProviderError`.
    """

    _END = object()

    def __init__(
        self,
        stt: DeepgramSTT,
        *,
        language: str,
        encoding: str = "mulaw",
        sample_rate: int = 8000,
        on_interim: Callable[[str], None] | None = None,
        expects: str = "",
    ) -> None:
        if encoding not in _BYTES_PER_SAMPLE:
            raise ValueError(f"encoding must be one of {sorted(_BYTES_PER_SAMPLE)}")
        self.stt = stt
        self.language = language
        self.expects = expects
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.on_interim = on_interim
        self.results = DeepgramResults(stt.name)
        self.bytes_sent = 0
        self._queue: asyncio.Queue[Any] | None = None
        self._task: asyncio.Task[Transcript] | None = None
        self._connected = asyncio.Event()
        self._started_at = 0.0
        self._finished = False

    @property
    def url(self) -> str:
        return self.stt.listen_url(
            self.language,
            encoding=self.encoding,
            sample_rate=self.sample_rate,
            expects=self.expects,
        )

    def start(self) -> None:
        if self._task is not None:
            return
        self._started_at = time.perf_counter()
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="deepgram-stream")

    def feed(self, audio: bytes) -> None:
        if self._task is None:
            self.start()
        if audio and not self._finished and not self._task.done():  # type: ignore[union-attr]
            self._queue.put_nowait(bytes(audio))  # type: ignore[union-attr]

    async def finish(self) -> Transcript:
        """Flush and wait for the final transcript (bounded by the client's timeouts)."""
        if self._task is None:
            self.start()
        assert self._task is not None and self._queue is not None
        if not self._finished:
            self._finished = True
            self._queue.put_nowait(self._END)
        timeout = self.stt.result_timeout_s
        if not self._connected.is_set():
            timeout += self.stt.connect_timeout_s
        try:
            return await asyncio.wait_for(self._task, timeout)
        except TimeoutError as exc:
            raise ProviderTimeout(
                self.stt.name, f"no final result within {timeout:g} s of the end of speech"
            ) from exc

    async def abort(self) -> None:
        self._finished = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # -- internals ----------------------------------------------------------------------
    async def _run(self) -> Transcript:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        try:
            ws = await connect(self.url, **self.stt._connect_options())
        except Exception as exc:
            raise connect_error(self.stt.name, exc) from exc
        self._connected.set()
        sender = asyncio.ensure_future(self._send_all(ws))
        reader = asyncio.ensure_future(self._read_all(ws))
        try:
            done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done and sender.exception() is None:
                await reader  # CloseStream sent: wait for the last results
            else:
                first = reader if reader in done else sender
                first.result()  # raises the failure, if any
        except ConnectionClosed as exc:
            raise closed_error(self.stt.name, exc) from exc
        except OSError as exc:
            raise connect_error(self.stt.name, exc) from exc
        finally:
            for task in (sender, reader):
                task.cancel()
            aclose_in_background(ws)
        elapsed_ms = (time.perf_counter() - self._started_at) * 1000
        return self.results.transcript(self.language, processing_ms=elapsed_ms)

    async def _send_all(self, ws: Any) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            if item is self._END:
                await ws.send(CLOSE_STREAM)
                return
            await ws.send(item)
            self.bytes_sent += len(item)

    async def _read_all(self, ws: Any) -> None:
        async for raw in ws:  # ends on a normal close; raises on an error close
            kind = self.results.feed(raw)
            if kind == "Results" and self.on_interim is not None and self.results.interim:
                self.on_interim(self.results.interim)
            if self.results.done:
                return


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
