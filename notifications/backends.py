"""Where messages go: the console (default), Twilio (SMS and WhatsApp), or memory (tests).

``SMS_BACKEND`` names one: ``console``, ``twilio``, ``locmem`` or a dotted class path.
A backend sends one message and returns the provider's id for it, or raises
``SendError`` saying whether trying again later could help (``transient``) and whether
the provider may have taken the message all the same (``maybe_sent``: a timeout, a 5xx).

A backend also answers ``lookup(message, since=...)``: the messages the provider has
taken since then with the same recipient, sender and body (oldest first), so that a send
whose outcome is unknown (the worker died mid-send, the call timed out) is reconciled
with the provider before it is sent again. It raises ``SendError`` when the provider
cannot be asked. A backend without ``lookup`` cannot tell: such a send is failed
("interrupted") rather than risk a duplicate.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from django.conf import settings
from django.utils.module_loading import import_string
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

logger = logging.getLogger(__name__)

WHATSAPP = "whatsapp"
TWILIO_TIMEOUT_SECONDS = 15
# Messages read back from Twilio's list when reconciling: one page, newest first.
LOOKUP_LIMIT = 50


@dataclass(frozen=True)
class Outgoing:
    to: str  # E.164
    body: str
    channel: str = "sms"
    sender: str = ""  # E.164 or a Messaging Service SID (MG...)
    status_callback: str = ""


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    provider_status: str = "sent"
    # lookup() only: when the provider created it, and its error if it failed.
    created_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""


class SendError(Exception):
    def __init__(
        self, message: str, *, code: str = "", transient: bool = False, maybe_sent: bool = False
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient
        self.maybe_sent = maybe_sent


class ConsoleBackend:
    """Embedded mode: the message is logged, nothing leaves the machine."""

    def send(self, message: Outgoing) -> SendResult:
        logger.info(
            "%s to %s from %s:\n%s",
            message.channel.upper(),
            message.to,
            message.sender or "-",
            message.body,
        )
        return SendResult(provider_id=f"console-{uuid.uuid4().hex}", provider_status="sent")

    def lookup(self, message: Outgoing, *, since: datetime) -> list[SendResult]:
        # Nothing left the machine and no patient got anything, so there is nothing to
        # reconcile with: an interrupted send is simply logged again.
        return []


@dataclass(frozen=True)
class Accepted(Outgoing):
    """What the memory backend took: the message, its id and when."""

    provider_id: str = ""
    accepted_at: datetime | None = None


class LocmemBackend:
    """Tests: messages are kept in ``LocmemBackend.outbox`` (and looked up there)."""

    outbox: list[Outgoing] = []

    def send(self, message: Outgoing) -> SendResult:
        provider_id = f"SM{uuid.uuid4().hex}"
        fields = {name: getattr(message, name) for name in Outgoing.__dataclass_fields__}
        type(self).outbox.append(
            Accepted(**fields, provider_id=provider_id, accepted_at=datetime.now(UTC))
        )
        return SendResult(provider_id=provider_id, provider_status="queued")

    def lookup(self, message: Outgoing, *, since: datetime) -> list[SendResult]:
        return [
            SendResult(
                provider_id=m.provider_id, provider_status="queued", created_at=m.accepted_at
            )
            for m in type(self).outbox
            if isinstance(m, Accepted)
            and (m.to, m.channel, m.sender, m.body)
            == (message.to, message.channel, message.sender, message.body)
            and m.accepted_at >= since
        ]


def make_twilio_http_client() -> TwilioHttpClient:
    """The transport the Twilio client talks through (tests replace only this)."""
    return TwilioHttpClient(timeout=TWILIO_TIMEOUT_SECONDS)


class TwilioBackend:
    """Twilio's Messages API through its own client; WhatsApp is its ``whatsapp:`` channel."""

    def __init__(self, *, account_sid: str = "", auth_token: str = "", http_client=None):
        self.account_sid = account_sid or settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token or settings.TWILIO_AUTH_TOKEN
        self.http_client = http_client

    def _client(self) -> Client:
        return Client(
            self.account_sid,
            self.auth_token,
            http_client=self.http_client or make_twilio_http_client(),
        )

    def send(self, message: Outgoing) -> SendResult:
        if not (self.account_sid and self.auth_token):
            raise SendError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set", code="config")
        prefix = "whatsapp:" if message.channel == WHATSAPP else ""
        params = {"to": prefix + message.to, "body": message.body}
        if message.sender.startswith("MG"):
            params["messaging_service_sid"] = message.sender
        elif message.sender:
            params["from_"] = prefix + message.sender
        else:
            raise SendError(f"No {message.channel} sender is configured", code="config")
        if message.status_callback:
            params["status_callback"] = message.status_callback
        try:
            created = self._client().messages.create(**params)
        except TwilioRestException as exc:
            # 429 and 5xx may pass later; anything else (bad number, unsubscribed
            # recipient, 63016 outside the WhatsApp session...) will not. Only a 5xx
            # leaves it unknown whether Twilio created the message.
            transient = exc.status == 429 or exc.status >= 500
            raise SendError(
                str(exc.msg),
                code=str(exc.code or exc.status),
                transient=transient,
                maybe_sent=exc.status >= 500,
            ) from exc
        except (requests.RequestException, TwilioException) as exc:
            # A timeout may come after Twilio took the message.
            raise SendError(
                f"Twilio unreachable: {exc}", code="network", transient=True, maybe_sent=True
            ) from exc
        return SendResult(provider_id=created.sid, provider_status=created.status or "queued")

    def lookup(self, message: Outgoing, *, since: datetime) -> list[SendResult]:
        """Twilio's Messages list: to this recipient, from this sender, since ``since``;
        the body (and a Messaging Service's SID) compared here. Oldest first.

        ``DateSent>=`` is Twilio's filter; a message still waiting in Twilio's own queue
        may have no DateSent yet, which is why the caller waits a while (the claim's
        lease) before it asks.
        """
        if not (self.account_sid and self.auth_token):
            raise SendError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set", code="config")
        prefix = "whatsapp:" if message.channel == WHATSAPP else ""
        by_service = message.sender.startswith("MG")
        since = since.astimezone(UTC)  # the SDK writes the time as is, with a Z
        params = {"to": prefix + message.to, "date_sent_after": since, "limit": LOOKUP_LIMIT}
        if message.sender and not by_service:
            params["from_"] = prefix + message.sender
        try:
            listed = self._client().messages.list(**params)
        except TwilioRestException as exc:
            raise SendError(
                f"Twilio's message list failed: {exc.msg}",
                code=str(exc.code or exc.status),
                transient=True,
            ) from exc
        except (requests.RequestException, TwilioException) as exc:
            raise SendError(f"Twilio unreachable: {exc}", code="network", transient=True) from exc
        found = []
        for item in listed:
            if not str(item.direction or "").startswith("outbound"):
                continue
            if item.body != message.body:
                continue
            if by_service and item.messaging_service_sid != message.sender:
                continue
            created = item.date_created if isinstance(item.date_created, datetime) else None
            if created is not None and created < since.replace(microsecond=0):
                continue  # DateSent is filtered by Twilio, creation here
            found.append(
                SendResult(
                    provider_id=item.sid,
                    provider_status=item.status or "queued",
                    created_at=created,
                    error_code=str(item.error_code or ""),
                    error_message=item.error_message or "",
                )
            )
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(found, key=lambda r: (r.created_at or epoch, r.provider_id))


BACKENDS = {"console": ConsoleBackend, "twilio": TwilioBackend, "locmem": LocmemBackend}


def get_backend():
    name = settings.SMS_BACKEND
    backend_class = BACKENDS.get(name) or import_string(name)
    return backend_class()
