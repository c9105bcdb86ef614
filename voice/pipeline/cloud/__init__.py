"""Cloud speech providers: Deepgram (speech-to-text) and Cartesia (text-to-speech).

Real clients of the providers' WebSocket protocols (``websockets`` library),
registered in :mod:`voice.pipeline.providers` as ``"deepgram"`` and
``"cartesia"``; with a ``fallback`` option they come wrapped in
:class:`~voice.pipeline.cloud.fallback.FallbackSTT` /
:class:`~voice.pipeline.cloud.fallback.FallbackTTS` (circuit breaker plus the
offline provider).  ORM-free like the rest of the pipeline.

- ``deepgram.py``: ``DeepgramSTT`` (``SpeechToText``; ``open_stream()`` for a
  live session per utterance), ``DeepgramResults`` (message parsing).
- ``cartesia.py``: ``CartesiaTTS`` (``TextToSpeech``; pooled sockets; ``astream()``
  on the event loop, replies multiplexed over shared sockets: what live calls use).
- ``fallback.py``: ``FallbackSTT``, ``GuardedStream`` (the live Deepgram session
  with breaker and offline fallback), ``FallbackTTS`` (also ``astream()``),
  ``ProviderUsage`` (what goes into the call log), shared breakers.
- ``errors.py``: ``CloudProviderError`` and its kinds.

Tests run the clients against loopback fakes of both protocols:
``voice/tests/pipeline/fakes.py``.
"""

from .errors import (
    CloudProviderError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderProtocolError,
    ProviderTimeout,
)

__all__ = [
    "CloudProviderError",
    "ProviderAuthError",
    "ProviderConnectionError",
    "ProviderProtocolError",
    "ProviderTimeout",
]
