"""Where messages go: the console (default), Twilio (SMS and WhatsApp), or memory (tests).

``SMS_BACKEND`` names one: ``console``, ``twilio``, ``locmem`` or a dotted class path.
A backend sends one message and returns the provider's id for it, or raises
``SendError`` saying whether trying again later could help (``transient``).
"""

import logging
import uuid
from dataclasses import dataclass

import requests
from django.conf import settings
from django.utils.module_loading import import_string
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

logger = logging.getLogger(__name__)

WHATSAPP = "whatsapp"
TWILIO_TIMEOUT_SECONDS = 15


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


class SendError(Exception):
    def __init__(self, message: str, *, code: str = "", transient: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient


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


class LocmemBackend:
    """Tests: messages are kept in ``LocmemBackend.outbox``."""

    outbox: list[Outgoing] = []

    def send(self, message: Outgoing) -> SendResult:
        type(self).outbox.append(message)
        return SendResult(provider_id=f"SM{uuid.uuid4().hex}", provider_status="queued")


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
            # recipient, 63016 outside the WhatsApp session...) will not.
            transient = exc.status == 429 or exc.status >= 500
            raise SendError(
                str(exc.msg), code=str(exc.code or exc.status), transient=transient
            ) from exc
        except (requests.RequestException, TwilioException) as exc:
            raise SendError(f"Twilio unreachable: {exc}", code="network", transient=True) from exc
        return SendResult(provider_id=created.sid, provider_status=created.status or "queued")


BACKENDS = {"console": ConsoleBackend, "twilio": TwilioBackend, "locmem": LocmemBackend}


def get_backend():
    name = settings.SMS_BACKEND
    backend_class = BACKENDS.get(name) or import_string(name)
    return backend_class()
