"""A cloud provider with an offline fallback, behind a circuit breaker, that says who served.

``FallbackSTT`` / ``FallbackTTS`` call the primary (cloud) provider while its
breaker is closed; a failure or timeout falls back to the offline provider for
that utterance or reply, and after ``failure_threshold`` consecutive failures
the breaker opens and the primary is skipped altogether until a half-open trial
call succeeds.  One breaker per provider is shared by the whole process
(:func:`shared_breaker`): when Deepgram is down it is down for every clinic.

Reporting: the wrappers are shared by all calls, so :meth:`for_call` returns a
cheap per-call view (same clients, same breaker, its own counters) whose
:meth:`usage_report` goes into the call log::

    {"stt_served": {"deepgram": 3, "pocketsphinx": 2}, "stt_fallbacks": 2,
     "stt_breaker": "open", "stt_errors": {"ProviderTimeout": 2},
     "stt_breaker_changes": [{"from": "closed", "to": "open", "reason": "..."}]}
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from ..codecs import Resampler
from ..pacing import aiter_from_thread
from ..providers import (
    STT_PROVIDERS,
    TTS_PROVIDERS,
    CircuitBreaker,
    CircuitOpenError,
    FallbackSpeechToText,
)
from ..stt import SpeechToText, Transcript
from ..tts import SynthesizedAudio, TextToSpeech

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# Shared breakers
# ---------------------------------------------------------------------------

_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def shared_breaker(name: str, **options: Any) -> CircuitBreaker:
    """The process's breaker for ``name`` (e.g. ``"stt:deepgram"``); options apply on creation."""
    with _breakers_lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = _breakers[name] = CircuitBreaker(name, **options)
        return breaker


def breaker_states() -> dict[str, str]:
    """``{"stt:deepgram": "closed", ...}``: for health checks."""
    with _breakers_lock:
        return {name: b.state.value for name, b in _breakers.items()}


def reset_shared_breakers() -> None:
    """Forget every shared breaker (tests; a settings change)."""
    with _breakers_lock:
        _breakers.clear()


def with_fallback(
    kind: str,
    name: str,
    primary: Any,
    fallback: Mapping[str, Any] | str | None,
    breaker: CircuitBreaker | Mapping[str, Any] | None = None,
) -> Any:
    """``primary`` alone, or wrapped with the offline ``fallback`` provider config.

    Used by the registry factories: ``{"provider": "deepgram", "api_key": ...,
    "fallback": {"provider": "pocketsphinx", ...}, "breaker": {"failure_threshold": 3}}``.
    """
    if not fallback:
        return primary
    registry = STT_PROVIDERS if kind == "stt" else TTS_PROVIDERS
    secondary = registry.create(fallback)
    fallback_name = fallback if isinstance(fallback, str) else str(fallback.get("provider"))
    if not isinstance(breaker, CircuitBreaker):
        breaker = shared_breaker(f"{kind}:{name}", **dict(breaker or {}))
    wrapper = FallbackSTT if kind == "stt" else FallbackTTS
    return wrapper(primary, secondary, breaker, primary_name=name, fallback_name=fallback_name)


# ---------------------------------------------------------------------------
# Usage counters
# ---------------------------------------------------------------------------


class ProviderUsage:
    """Who served, how often the fallback did, and what the breaker did, for one call."""

    def __init__(self, kind: str, primary: str, fallback: str, breaker: CircuitBreaker) -> None:
        self.kind, self.primary, self.fallback, self.breaker = kind, primary, fallback, breaker
        self._lock = threading.Lock()
        self.served: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.fallbacks = 0
        self.last_error = ""
        self._history_start = len(breaker.history)

    def fresh(self) -> ProviderUsage:
        return ProviderUsage(self.kind, self.primary, self.fallback, self.breaker)

    def primary_served(self) -> None:
        with self._lock:
            self.served[self.primary] += 1

    def primary_failed(self, exc: BaseException) -> None:
        with self._lock:
            self.errors[type(exc).__name__] += 1
            self.last_error = str(exc)[:200]
        logger.warning(
            "%s provider %s failed, using %s: %s", self.kind, self.primary, self.fallback, exc
        )

    def fallback_served(self) -> None:
        with self._lock:
            self.served[self.fallback] += 1
            self.fallbacks += 1

    def report(self) -> dict[str, Any]:
        k = self.kind
        with self._lock:
            out: dict[str, Any] = {
                f"{k}_served": dict(self.served),
                f"{k}_fallbacks": self.fallbacks,
                f"{k}_breaker": self.breaker.state.value,
            }
            if self.errors:
                out[f"{k}_errors"] = dict(self.errors)
                out[f"{k}_last_error"] = self.last_error
        changes = self.breaker.history[self._history_start :]
        if changes:
            out[f"{k}_breaker_changes"] = [
                {"from": c.old.value, "to": c.new.value, "reason": c.reason} for c in changes
            ]
        return out


def _release(breaker: CircuitBreaker) -> None:
    # The caller gave up (barge-in, discarded utterance): no verdict on the
    # provider, but a half-open trial slot must not stay taken.
    breaker._release_unjudged()


# ---------------------------------------------------------------------------
# Speech to text
# ---------------------------------------------------------------------------


class FallbackSTT(FallbackSpeechToText):
    """:class:`~voice.pipeline.providers.FallbackSpeechToText` that records who served."""

    def __init__(
        self,
        primary: SpeechToText,
        fallback: SpeechToText,
        breaker: CircuitBreaker | None = None,
        *,
        primary_name: str | None = None,
        fallback_name: str | None = None,
    ) -> None:
        primary_name = primary_name or _name_of(primary)
        super().__init__(primary, fallback, breaker or CircuitBreaker(f"stt:{primary_name}"))
        self.usage = ProviderUsage(
            "stt", primary_name, fallback_name or _name_of(fallback), self.breaker
        )

    def for_call(self) -> FallbackSTT:
        view = copy.copy(self)
        view.usage = self.usage.fresh()
        return view

    def usage_report(self) -> dict[str, Any]:
        return self.usage.report()

    def transcribe(
        self, pcm16: bytes, sample_rate: int, *, language: str, expects: str = ""
    ) -> Transcript:
        try:
            result = self.breaker.call(
                self.primary.transcribe, pcm16, sample_rate, language=language, expects=expects
            )
        except CircuitOpenError:
            pass  # known down: straight to the fallback
        except Exception as exc:
            self.usage.primary_failed(exc)
        else:
            self.usage.primary_served()
            return result
        result = self.fallback.transcribe(pcm16, sample_rate, language=language, expects=expects)
        self.usage.fallback_served()
        return result

    def open_stream(
        self,
        *,
        language: str,
        encoding: str = "mulaw",
        sample_rate: int = 8000,
        on_interim: Callable[[str], None] | None = None,
        expects: str = "",
    ) -> GuardedStream:
        """A live session on the primary while its breaker allows; see :class:`GuardedStream`."""
        return GuardedStream(
            self,
            language=language,
            encoding=encoding,
            sample_rate=sample_rate,
            on_interim=on_interim,
            expects=expects,
        )


class GuardedStream:
    """A streaming STT session with the breaker and the offline fallback around it.

    Call on the event loop: construct at speech start, ``feed()`` raw frames,
    then exactly one of ``await finish(pcm16, rate)`` (with the utterance's
    PCM, which the fallback transcribes if the stream fails or the breaker is
    open) or ``await abort()``.
    """

    def __init__(
        self,
        owner: FallbackSTT,
        *,
        language: str,
        encoding: str = "mulaw",
        sample_rate: int = 8000,
        on_interim: Callable[[str], None] | None = None,
        expects: str = "",
    ) -> None:
        self.owner = owner
        self.language = language
        self.expects = expects
        self._stream: Any = None
        self._direct = False  # primary cannot stream: finish() uses owner.transcribe
        opener = getattr(owner.primary, "open_stream", None)
        if opener is None:
            self._direct = True
        elif owner.breaker.allow_request():
            self._stream = opener(
                language=language,
                encoding=encoding,
                sample_rate=sample_rate,
                on_interim=on_interim,
                expects=expects,
            )
            self._stream.start()

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    def feed(self, audio: bytes) -> None:
        if self._stream is not None:
            self._stream.feed(audio)

    async def finish(self, pcm16: bytes, sample_rate: int) -> Transcript:
        owner, breaker = self.owner, self.owner.breaker
        if self._direct:
            return await asyncio.to_thread(
                owner.transcribe, pcm16, sample_rate, language=self.language, expects=self.expects
            )
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                result = await stream.finish()
            except asyncio.CancelledError:
                _release(breaker)
                raise
            except breaker.failure_exceptions as exc:
                breaker.record_failure(type(exc).__name__)
                owner.usage.primary_failed(exc)
            except BaseException:
                _release(breaker)
                raise
            else:
                breaker.record_success()
                owner.usage.primary_served()
                return result
        result = await asyncio.to_thread(
            owner.fallback.transcribe,
            pcm16,
            sample_rate,
            language=self.language,
            expects=self.expects,
        )
        owner.usage.fallback_served()
        return result

    async def abort(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.abort()
            _release(self.owner.breaker)


# ---------------------------------------------------------------------------
# Text to speech
# ---------------------------------------------------------------------------


class FallbackTTS:
    """Cloud TTS with an offline fallback; output always at the primary's ``sample_rate``.

    A reply the primary cannot start (error, timeout, open breaker) is voiced
    by the fallback.  A reply that fails midway is voiced again, whole, by the
    fallback: the caller hears a restart, but never a reply that stops in the
    middle of a date or a time.  Closing the stream early (barge-in) is no
    verdict on the provider unless audio had already come (then: success).
    ``synthesize_stream`` blocks (a worker thread); ``astream`` is the same on the
    event loop, which live calls use.
    """

    def __init__(
        self,
        primary: TextToSpeech,
        fallback: TextToSpeech,
        breaker: CircuitBreaker | None = None,
        *,
        primary_name: str | None = None,
        fallback_name: str | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        primary_name = primary_name or _name_of(primary)
        self.breaker = breaker or CircuitBreaker(f"tts:{primary_name}")
        self.sample_rate = primary.sample_rate
        self.usage = ProviderUsage(
            "tts", primary_name, fallback_name or _name_of(fallback), self.breaker
        )

    def for_call(self) -> FallbackTTS:
        view = copy.copy(self)
        view.usage = self.usage.fresh()
        return view

    def usage_report(self) -> dict[str, Any]:
        return self.usage.report()

    def synthesize(self, text: str, *, language: str = "en") -> SynthesizedAudio:
        return SynthesizedAudio(
            b"".join(self.synthesize_stream(text, language=language)), self.sample_rate
        )

    def synthesize_stream(self, text: str, *, language: str = "en") -> Iterator[bytes]:
        breaker = self.breaker
        if breaker.allow_request():
            stream = self.primary.synthesize_stream(text, language=language)
            got_audio = False
            try:
                for chunk in stream:
                    got_audio = True
                    yield chunk
            except GeneratorExit:
                self._closed_early(got_audio)
                raise
            except breaker.failure_exceptions as exc:
                self._primary_failed(exc)
            except BaseException:
                _release(breaker)
                raise
            else:
                self._primary_served()
                return
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        yield from self._from_fallback(text, language)

    async def astream(self, text: str, *, language: str = "en") -> AsyncIterator[bytes]:
        """:meth:`synthesize_stream` on the event loop: the primary's ``astream()`` when it
        has one (no thread), the fallback in a thread of its own (it blocks)."""
        if not callable(getattr(self.primary, "astream", None)):
            async for chunk in aiter_from_thread(self.synthesize_stream(text, language=language)):
                yield chunk
            return
        breaker = self.breaker
        if breaker.allow_request():
            stream = self.primary.astream(text, language=language)
            got_audio = False
            try:
                async for chunk in stream:
                    got_audio = True
                    yield chunk
            except GeneratorExit:
                self._closed_early(got_audio)
                raise
            except breaker.failure_exceptions as exc:
                self._primary_failed(exc)
            except BaseException:
                _release(breaker)
                raise
            else:
                self._primary_served()
                return
            finally:
                await stream.aclose()
        async for chunk in aiter_from_thread(self._from_fallback(text, language)):
            yield chunk

    # The breaker's verdict on one reply, the same for both ways in.
    def _primary_served(self) -> None:
        self.breaker.record_success()
        self.usage.primary_served()

    def _primary_failed(self, exc: BaseException) -> None:
        self.breaker.record_failure(type(exc).__name__)
        self.usage.primary_failed(exc)

    def _closed_early(self, got_audio: bool) -> None:
        """Barge-in: audio had come (the provider worked) or no verdict at all."""
        if got_audio:
            self._primary_served()
        else:
            _release(self.breaker)

    def _from_fallback(self, text: str, language: str) -> Iterator[bytes]:
        self.usage.fallback_served()
        chunks = self.fallback.synthesize_stream(text, language=language)
        if self.fallback.sample_rate == self.sample_rate:
            yield from chunks
            return
        resampler = Resampler(self.fallback.sample_rate, self.sample_rate)
        for chunk in chunks:
            out = resampler.process(chunk)
            if out:
                yield out
        tail = resampler.flush()
        if tail:
            yield tail


def _name_of(provider: Any) -> str:
    return str(getattr(provider, "name", "") or type(provider).__name__.lower())
