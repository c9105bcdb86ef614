"""Acting on a live call through Twilio's REST API: hang up, hand over to a person.

Without Twilio credentials (the embedded default) a console implementation logs
what it would have done, so the simulator and tests run offline.
"""

import logging
from typing import Protocol

from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from voice import twiml

logger = logging.getLogger(__name__)

# Twilio answers these when the call is already over: for a hang-up that is success.
_ALREADY_ENDED_CODES = {20404, 21220}


class Telephony(Protocol):
    def hangup(self, call_sid: str) -> None: ...

    def transfer(self, call_sid: str, *, number: str, text: str, language: str) -> None: ...


class TwilioTelephony:
    def __init__(self, account_sid: str, auth_token: str, *, http_client=None):
        self.client = Client(account_sid, auth_token, http_client=http_client)

    def hangup(self, call_sid: str) -> None:
        try:
            self.client.calls(call_sid).update(status="completed")
        except TwilioRestException as exc:
            if exc.status == 404 or exc.code in _ALREADY_ENDED_CODES:
                logger.info("Call %s had already ended", call_sid)
                return
            raise

    def transfer(self, call_sid: str, *, number: str, text: str, language: str) -> None:
        self.client.calls(call_sid).update(twiml=twiml.dial(number, text=text, language=language))


class ConsoleTelephony:
    """What the embedded default does instead of calling Twilio."""

    def __init__(self):
        self.actions: list[tuple] = []

    def hangup(self, call_sid: str) -> None:
        self.actions.append(("hangup", call_sid))
        logger.info("[telephony] hang up %s", call_sid)

    def transfer(self, call_sid: str, *, number: str, text: str, language: str) -> None:
        self.actions.append(("transfer", call_sid, number))
        logger.info("[telephony] transfer %s to %s", call_sid, number)


_console = ConsoleTelephony()


def get_telephony() -> Telephony:
    if settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN:
        return TwilioTelephony(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
    return _console
