"""Errors of the cloud providers, and their mapping from ``websockets`` exceptions.

Every failure of a cloud call surfaces as a :class:`CloudProviderError`, so
the circuit breaker (which counts any ``Exception`` by default) and the logs
see one family; the subclasses also derive from the matching built-ins
(``TimeoutError``, ``ConnectionError``) so generic handlers keep working.
"""

from __future__ import annotations


class CloudProviderError(RuntimeError):
    """A cloud provider call failed (network, auth, protocol or timeout)."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class ProviderConnectionError(CloudProviderError, ConnectionError):
    """Could not connect, or the connection dropped / closed with an error code."""

    def __init__(
        self, provider: str, message: str, *, code: int | None = None, reason: str = ""
    ) -> None:
        super().__init__(provider, message)
        self.code = code
        self.reason = reason


class ProviderAuthError(CloudProviderError):
    """The handshake was refused with 401/403: wrong or missing API key."""


class ProviderTimeout(CloudProviderError, TimeoutError):
    """No answer in time (connect, first result, or a stalled stream)."""


class ProviderProtocolError(CloudProviderError):
    """The provider reported an error message, or sent something we cannot parse."""


def connect_error(provider: str, exc: BaseException) -> CloudProviderError:
    """Map an exception raised while opening a WebSocket."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

    if isinstance(exc, CloudProviderError):
        return exc
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        body = (exc.response.body or b"")[:200].decode("utf-8", "replace").strip()
        detail = f"handshake refused with HTTP {status}" + (f": {body}" if body else "")
        if status in (401, 403):
            return ProviderAuthError(provider, detail)
        return ProviderConnectionError(provider, detail, code=status)
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(provider, "timed out opening the connection")
    if isinstance(exc, InvalidURI):  # not echoed: the URL may carry an API key
        return ProviderProtocolError(provider, "invalid provider URL")
    if isinstance(exc, InvalidHandshake):
        return ProviderProtocolError(provider, f"bad handshake: {exc}")
    if isinstance(exc, OSError):
        return ProviderConnectionError(provider, f"cannot connect: {exc}")
    return ProviderConnectionError(provider, f"cannot connect: {type(exc).__name__}: {exc}")


def closed_error(provider: str, exc: BaseException) -> ProviderConnectionError:
    """Map ``websockets.exceptions.ConnectionClosed`` (the server closed or the link broke)."""
    rcvd = getattr(exc, "rcvd", None)
    code = rcvd.code if rcvd is not None else None
    reason = rcvd.reason if rcvd is not None else ""
    what = f"closed with code {code}" if code is not None else "connection lost"
    return ProviderConnectionError(
        provider, what + (f": {reason}" if reason else ""), code=code, reason=reason
    )
